//! `textDocument/inlineCompletion` and its `textDocument/completion` fallback: the model's
//! completion at the cursor (`assist::completion`).
//!
//! Typing sends a request per keystroke. Each new request for a document cancels the previous
//! one at once, then waits `completion.debounce_ms`; only a request that survives the wait
//! reaches the engine, where it supersedes anything still queued for the same document. So a
//! burst of keystrokes costs at most one generation.

use std::time::Duration;

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::ai::document_key;
use super::session::Session;
use super::shared::memories;
use crate::assist::completion::{self, Completion, CompletionInput};

/// The method name (tower-lsp has no trait method for it).
pub const INLINE_METHOD: &str = "textDocument/inlineCompletion";

/// Runs one completion at `position`; None when superseded, cancelled or unavailable.
async fn complete_at(
    session: &Session,
    client: &Client,
    uri: &Uri,
    position: lsp::Position,
) -> Option<(Completion, lsp::Position)> {
    let key = document_key(uri);
    let (number, cancel) = session.ai.supersede_completion(&key);
    // The request future is dropped on `$/cancelRequest`: that cancels the generation too.
    let _cancel_on_drop = cancel.clone().drop_guard();
    let config = session.ai.config();
    let debounce = Duration::from_millis(config.completion.debounce_ms);
    tokio::select! {
        _ = cancel.cancelled() => return None,
        _ = tokio::time::sleep(debounce) => {}
    }
    let engine = session.ai.engine_for(client).await?;
    if cancel.is_cancelled() {
        return None;
    }
    let snapshot = session.snapshot(uri)?;
    let cursor = session.offset(&snapshot, position);
    let recent = session.recent();
    session
        .ai
        .completions_generated
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let input = CompletionInput {
        path: &snapshot.path,
        text: &snapshot.text,
        cursor,
        recent: &recent,
    };
    let work = completion::complete(&*engine, &session.index, &config, &input, cancel.clone());
    let result = session
        .ai
        .with_progress(client, &session.capabilities, "pith: completing", work)
        .await;
    session.ai.finish_completion(&key, number);
    match result {
        Ok(completion) if !completion.text.is_empty() => Some((completion, position)),
        Ok(_) => None,
        Err(crate::assist::AssistError::Cancelled) => None,
        Err(error) => {
            tracing::warn!(%error, "inline completion failed");
            None
        }
    }
}

/// `textDocument/inlineCompletion`.
pub async fn inline_completion(
    session: &Session,
    client: &Client,
    params: lsp::InlineCompletionParams,
) -> Option<lsp::InlineCompletionResponse> {
    let position = params.text_document_position;
    let uri = position.text_document.uri;
    let items = match complete_at(session, client, &uri, position.position).await {
        Some((completion, at)) => vec![lsp::InlineCompletionItem {
            command: Some(lsp::Command {
                title: "pith: remember this completion".into(),
                command: memories::COMPLETION_ACCEPTED.into(),
                arguments: Some(vec![
                    serde_json::json!(uri.as_str()),
                    serde_json::json!(at),
                    serde_json::json!(completion.text),
                ]),
            }),
            insert_text: completion.text,
            filter_text: None,
            range: Some(lsp::Range::new(at, at)),
            insert_text_format: Some(lsp::InsertTextFormat::PLAIN_TEXT),
        }],
        None => Vec::new(),
    };
    Some(lsp::InlineCompletionResponse::List(
        lsp::InlineCompletionList { items },
    ))
}

/// Whether to answer `textDocument/completion` with the model's completion: for clients
/// without inline completion, or when `completion.completion_item_fallback` is set.
pub fn fallback_enabled(session: &Session) -> bool {
    let inline = session
        .capabilities
        .text_document
        .as_ref()
        .and_then(|t| t.inline_completion.as_ref())
        .is_some();
    !inline || session.ai.config().completion.completion_item_fallback
}

/// `textDocument/completion`: one item, labelled as the model's.
pub async fn completion_item(
    session: &Session,
    client: &Client,
    params: lsp::CompletionParams,
) -> Option<lsp::CompletionResponse> {
    if !fallback_enabled(session) {
        return None;
    }
    let position = params.text_document_position;
    let uri = position.text_document.uri;
    let (completion, at) = complete_at(session, client, &uri, position.position).await?;
    let first_line = completion.text.lines().find(|l| !l.trim().is_empty())?;
    let item = lsp::CompletionItem {
        label: format!("✦ {}", first_line.trim()),
        label_details: Some(lsp::CompletionItemLabelDetails {
            detail: None,
            description: Some("pith (local model)".into()),
        }),
        kind: Some(lsp::CompletionItemKind::SNIPPET),
        detail: Some("pith: completion by the local model".into()),
        documentation: Some(lsp::Documentation::MarkupContent(lsp::MarkupContent {
            kind: lsp::MarkupKind::Markdown,
            value: format!("```\n{}\n```", completion.text),
        })),
        sort_text: Some("0".into()),
        filter_text: Some(first_line.trim().to_string()),
        insert_text_format: Some(lsp::InsertTextFormat::PLAIN_TEXT),
        text_edit: Some(lsp::CompletionTextEdit::Edit(lsp::TextEdit {
            range: lsp::Range::new(at, at),
            new_text: completion.text.clone(),
        })),
        ..Default::default()
    };
    Some(lsp::CompletionResponse::List(lsp::CompletionList {
        is_incomplete: true,
        items: vec![item],
    }))
}
