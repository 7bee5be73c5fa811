//! The custom request `pith/context`: the snippets retrieval would give the model at a position.
//!
//! Params `{textDocument, position, budgetTokens?}`, result `{snippets: [{uri, path, startLine,
//! endLine, text, reason, score}]}` (lines 0-based, end exclusive).

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::session::{Session, path_uri};
use crate::retrieve::{Query, retrieve};

pub const METHOD: &str = "pith/context";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextParams {
    pub text_document: lsp::TextDocumentIdentifier,
    pub position: lsp::Position,
    pub budget_tokens: Option<usize>,
}

#[derive(Debug, Serialize, Default)]
pub struct ContextResult {
    pub snippets: Vec<ContextSnippet>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextSnippet {
    pub uri: Option<Uri>,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub text: String,
    pub reason: String,
    pub score: f32,
}

pub fn context(session: &Session, params: &ContextParams) -> ContextResult {
    session.index_stale_buffers();
    let Some(snapshot) = session.snapshot(&params.text_document.uri) else {
        return ContextResult::default();
    };
    let cursor = session.offset(&snapshot, params.position);
    let recent = session.recent();
    let query = Query {
        path: &snapshot.path,
        text: &snapshot.text,
        cursor,
        budget_tokens: params
            .budget_tokens
            .unwrap_or(session.settings.budget_tokens),
        recent: &recent,
    };
    let snippets = retrieve(&session.index, &query, &approximate_tokens);
    ContextResult {
        snippets: snippets
            .into_iter()
            .map(|snippet| ContextSnippet {
                uri: path_uri(&snippet.path),
                path: snippet.path.to_string_lossy().into_owned(),
                start_line: snippet.start_line,
                end_line: snippet.end_line,
                text: snippet.text,
                reason: snippet.reason,
                score: snippet.score,
            })
            .collect(),
    }
}

/// About four bytes per token for code: the model's tokenizer is not loaded just to answer this.
fn approximate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}
