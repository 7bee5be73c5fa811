//! `workspace/executeCommand`: `pith.ask` (a question about the workspace, answered with
//! checked `path:line` citations), `pith.explain` (a range, shown as markdown), `pith.status`
//! (model, index size, queue depth, engine counters), `pith.memory.list`, `pith.memory.clear`.

use serde_json::{Value, json};
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::session::Session;
use super::shared::{self, memories};
use crate::assist::actions::{ActionInput, ActionKind};
use crate::assist::ask::{self, AskRequest, AskSettings};
use crate::memory::{MemoryKind, NewMemory};

pub const COMMANDS: [&str; 6] = [
    "pith.ask",
    "pith.explain",
    "pith.status",
    "pith.memory.list",
    "pith.memory.clear",
    memories::COMPLETION_ACCEPTED,
];

fn invalid(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: message.into().into(),
        data: None,
    }
}

fn failed(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: message.into().into(),
        data: None,
    }
}

pub async fn execute(
    session: &Session,
    client: &Client,
    params: lsp::ExecuteCommandParams,
) -> Result<Option<Value>> {
    let arguments = params.arguments;
    match params.command.as_str() {
        "pith.ask" => {
            let question = arguments
                .first()
                .and_then(Value::as_str)
                .filter(|q| !q.trim().is_empty())
                .ok_or_else(|| invalid("pith.ask takes one argument: the question"))?;
            ask_command(session, client, question).await.map(Some)
        }
        "pith.explain" => {
            let uri: Uri = arguments
                .first()
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .ok_or_else(|| invalid("pith.explain takes [uri, range]"))?;
            let range: lsp::Range = arguments
                .get(1)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .ok_or_else(|| invalid("pith.explain takes [uri, range]"))?;
            explain_command(session, client, &uri, range)
                .await
                .map(Some)
        }
        "pith.status" => Ok(Some(status(session))),
        "pith.memory.list" => {
            let memories = session
                .ai
                .with_memory(|m| m.list(100))
                .transpose()
                .map_err(|e| failed(format!("pith: memory: {e}")))?
                .unwrap_or_default();
            Ok(Some(json!({ "memories": memories })))
        }
        "pith.memory.clear" => {
            let cleared = session
                .ai
                .with_memory(|m| m.clear())
                .transpose()
                .map_err(|e| failed(format!("pith: memory: {e}")))?
                .unwrap_or(0);
            Ok(Some(json!({ "cleared": cleared })))
        }
        memories::COMPLETION_ACCEPTED => {
            let usage = || invalid("pith.completion.accepted takes [uri, position, text]");
            let uri: Uri = arguments
                .first()
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .ok_or_else(usage)?;
            let position: lsp::Position = arguments
                .get(1)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .ok_or_else(usage)?;
            let text = arguments.get(2).and_then(Value::as_str).ok_or_else(usage)?;
            let snapshot = session
                .snapshot(&uri)
                .ok_or_else(|| invalid("pith.completion.accepted: unknown document"))?;
            let offset = session.offset(&snapshot, position);
            memories::remember_completion(session, &snapshot.path, offset, text);
            Ok(None)
        }
        other => Err(invalid(format!("pith: unknown command {other}"))),
    }
}

async fn ask_command(session: &Session, client: &Client, question: &str) -> Result<Value> {
    let engine = session
        .ai
        .engine_for(client)
        .await
        .ok_or_else(|| failed("pith: the model is unavailable"))?;
    session.index_stale_buffers();
    let memories = session
        .ai
        .with_memory(|m| m.recall(question, &[], &[], 2).unwrap_or_default())
        .unwrap_or_default();
    let config = session.ai.config();
    let request = AskRequest {
        question,
        memories: &memories,
        settings: AskSettings::default(),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    let work = ask::ask(
        &*engine,
        &config,
        &session.index,
        &request,
        cancel.clone(),
        |_| {},
    );
    let answer = session
        .ai
        .with_progress(client, &session.capabilities, "pith: answering", work)
        .await
        .map_err(|e| failed(format!("pith: {e}")))?;
    let citations: Vec<Value> = answer
        .citations
        .iter()
        .map(|c| {
            json!({
                "text": c.text,
                "path": c.file.as_ref().map(|p| p.display().to_string()),
                "uri": c.file.as_ref().and_then(Uri::from_file_path).map(|u| u.as_str().to_string()),
                "line": c.line,
                "valid": c.valid,
            })
        })
        .collect();
    let files: Vec<String> = answer
        .citations
        .iter()
        .filter(|c| c.valid)
        .filter_map(|c| c.file.as_ref())
        .map(|f| crate::assist::relative_path(&session.index, f))
        .collect();
    session.ai.with_memory(|m| {
        let remembered = m.remember(&NewMemory {
            kind: Some(MemoryKind::Ask),
            question: question.to_string(),
            answer: answer.text.clone(),
            files,
            ..NewMemory::default()
        });
        if let Err(error) = remembered {
            tracing::warn!(%error, "could not remember the answer");
        }
    });
    // A small model often forgets to cite: then name the code the answer was drawn from.
    let mut text = answer.text.clone();
    if !answer.citations.iter().any(|c| c.valid) && !answer.sources.is_empty() {
        let shown: Vec<&str> = answer.sources.iter().take(3).map(String::as_str).collect();
        text.push_str(&format!("\n\nSources: {}", shown.join(", ")));
    }
    Ok(json!({
        "answer": text,
        "citations": citations,
        "sources": answer.sources,
    }))
}

async fn explain_command(
    session: &Session,
    client: &Client,
    uri: &Uri,
    range: lsp::Range,
) -> Result<Value> {
    let snapshot = session
        .snapshot(uri)
        .ok_or_else(|| invalid("pith.explain: unknown document"))?;
    let engine = session
        .ai
        .engine_for(client)
        .await
        .ok_or_else(|| failed("pith: the model is unavailable"))?;
    let start = session.offset(&snapshot, range.start);
    let end = session.offset(&snapshot, range.end).max(start);
    let input = ActionInput {
        path: &snapshot.path,
        text: &snapshot.text,
        range: start..end,
        instruction: None,
        diagnostic: None,
    };
    let outcome = shared::run_action(
        session,
        client,
        &*engine,
        ActionKind::Explain,
        &input,
        "pith: explaining",
    )
    .await?;
    let markdown = outcome.message.unwrap_or_default();
    let title = format!(
        "pith: {}:{}",
        crate::assist::relative_path(&session.index, &snapshot.path),
        range.start.line + 1
    );
    let file = shared::show_markdown(session, client, &title, &markdown).await;
    Ok(json!({
        "markdown": markdown,
        "path": file.map(|f| f.display().to_string()),
    }))
}

/// The model, the index and the engine's counters.
pub fn status(session: &Session) -> Value {
    let engine = session.ai.engine_status();
    json!({
        "model": engine.as_ref().map(|s| s.model.clone()),
        "loaded": engine.as_ref().is_some_and(|s| s.loaded),
        "error": session.ai.engine_error(),
        "indexedFiles": session.index.len(),
        "queued": engine.as_ref().map_or(0, |s| s.queued),
        "running": engine.as_ref().map_or(0, |s| s.running),
        "completed": engine.as_ref().map_or(0, |s| s.completed),
        "cancelled": engine.as_ref().map_or(0, |s| s.cancelled),
        "superseded": engine.as_ref().map_or(0, |s| s.superseded),
        "promptTokensDecoded": engine.as_ref().map_or(0, |s| s.prompt_tokens_decoded),
        "promptTokensReused": engine.as_ref().map_or(0, |s| s.prompt_tokens_reused),
        "generatedTokens": engine.as_ref().map_or(0, |s| s.generated_tokens),
        "lastError": engine.as_ref().and_then(|s| s.last_error.clone()),
        "completionsGenerated": session
            .ai
            .completions_generated
            .load(std::sync::atomic::Ordering::Relaxed),
    })
}
