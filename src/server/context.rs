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
    // The budget is in the model's tokens: the engine's tokenizer when loaded.
    let snippets = retrieve(&session.index, &query, &|text| session.count_tokens(text));
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use tokio::sync::mpsc;

    use super::*;
    use crate::engine::{Engine, EngineStatus, Event, Request};
    use crate::server::Settings;
    use crate::text::PositionEncoding;

    /// Counts one token per byte, four times the estimate; generates nothing.
    struct ByteTokens;

    impl Engine for ByteTokens {
        fn submit(&self, _: Request) -> mpsc::UnboundedReceiver<Event> {
            mpsc::unbounded_channel().1
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.len()
        }
        fn status(&self) -> EngineStatus {
            EngineStatus::default()
        }
    }

    fn session_with_helpers(root: &Path) -> (Session, ContextParams) {
        let session = Session::new(
            vec![root.to_path_buf()],
            lsp::ClientCapabilities::default(),
            PositionEncoding::Utf16,
            Settings::default(),
        );
        let mut main = String::from("from helpers import *\n\ndef main():\n");
        for n in 0..12 {
            let helper = format!(
                "def helper_{n}(value, scale):\n    \"\"\"Scales value number {n}.\"\"\"\n    return value * scale + {n}\n\n"
            );
            session
                .index
                .update_file(&root.join(format!("helpers_{n}.py")), &helper);
            main.push_str(&format!("    helper_{n}(1, 2)\n"));
        }
        let path = root.join("main.py");
        session.index.update_file(&path, &main);
        let params = ContextParams {
            text_document: lsp::TextDocumentIdentifier {
                uri: Uri::from_file_path(&path).unwrap(),
            },
            position: lsp::Position::new(3, 4),
            budget_tokens: Some(160),
        };
        (session, params)
    }

    fn tokens(snippets: &[ContextSnippet], count: impl Fn(&str) -> usize) -> usize {
        snippets.iter().map(|snippet| count(&snippet.text)).sum()
    }

    #[test]
    fn the_budget_is_counted_with_the_engine_tokenizer_once_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let (session, params) = session_with_helpers(dir.path());
        let estimated = context(&session, &params).snippets;
        assert!(session.set_engine(Arc::new(ByteTokens)));
        let counted = context(&session, &params).snippets;

        // With the estimate, more fits than the byte tokenizer allows.
        assert!(tokens(&estimated, |text| text.len()) > 160);
        assert!(tokens(&counted, |text| text.len()) <= 160);
        assert!(!counted.is_empty() && counted.len() < estimated.len());
    }
}
