//! Code actions backed by the model (`assist::actions`): listed at once with no model work,
//! computed in `codeAction/resolve` from the uri, version, range and kind kept in `data`.
//! Edits become a `WorkspaceEdit`; an explanation becomes a markdown file in the cache dir
//! shown with `window/showDocument`, or a `window/showMessage` where that is not supported.

use serde::{Deserialize, Serialize};
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::session::Session;
use super::shared::{memories, run_action, show_markdown, workspace_edit};
use crate::assist::actions::{self, ActionInput, ActionKind};
use crate::lang::Lang;

/// What `codeAction/resolve` needs, carried in the action's `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionData {
    pub uri: Uri,
    pub version: Option<i32>,
    pub range: lsp::Range,
    pub kind: String,
    #[serde(default)]
    pub diagnostic: Option<String>,
}

/// `textDocument/codeAction`: the actions that fit the place, unresolved.
pub fn code_actions(
    session: &Session,
    params: &lsp::CodeActionParams,
) -> Vec<lsp::CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let Some(snapshot) = session.snapshot(uri) else {
        return Vec::new();
    };
    let start = session.offset(&snapshot, params.range.start);
    let end = session.offset(&snapshot, params.range.end).max(start);
    let diagnostic = params
        .context
        .diagnostics
        .first()
        .map(|d| d.message.clone());
    let input = ActionInput {
        path: &snapshot.path,
        text: &snapshot.text,
        range: start..end,
        instruction: None,
        diagnostic: diagnostic.as_deref(),
    };
    let version = session.documents.get(uri).map(|d| d.version());
    let lang = Lang::from_path(&snapshot.path);
    let wanted = |kind: &lsp::CodeActionKind| {
        params
            .context
            .only
            .as_ref()
            .is_none_or(|only| only.iter().any(|o| kind.as_str().starts_with(o.as_str())))
    };
    actions::available(&input)
        .into_iter()
        .filter_map(|kind| {
            let action_kind = match kind {
                ActionKind::Fix => lsp::CodeActionKind::QUICKFIX,
                ActionKind::Refactor => lsp::CodeActionKind::REFACTOR_REWRITE,
                _ => lsp::CodeActionKind::new("refactor.pith"),
            };
            if !wanted(&action_kind) {
                return None;
            }
            let data = ActionData {
                uri: uri.clone(),
                version,
                range: params.range,
                kind: kind.id().to_string(),
                diagnostic: (kind == ActionKind::Fix)
                    .then(|| diagnostic.clone())
                    .flatten(),
            };
            Some(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: kind.title(lang).to_string(),
                kind: Some(action_kind),
                diagnostics: (kind == ActionKind::Fix).then(|| {
                    params
                        .context
                        .diagnostics
                        .first()
                        .cloned()
                        .into_iter()
                        .collect()
                }),
                data: serde_json::to_value(&data).ok(),
                ..Default::default()
            }))
        })
        .collect()
}

fn invalid(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: message.into().into(),
        data: None,
    }
}

/// `codeAction/resolve`: runs the model and fills in the edit (or shows the explanation).
pub async fn resolve(
    session: &Session,
    client: &Client,
    mut action: lsp::CodeAction,
) -> Result<lsp::CodeAction> {
    let data: ActionData = action
        .data
        .clone()
        .and_then(|d| serde_json::from_value(d).ok())
        .ok_or_else(|| invalid("pith: this code action carries no pith data"))?;
    let kind = ActionKind::from_id(&data.kind)
        .ok_or_else(|| invalid(format!("pith: unknown action {}", data.kind)))?;
    if let (Some(version), Some(document)) = (data.version, session.documents.get(&data.uri))
        && document.version() != version
    {
        return Err(Error {
            code: ErrorCode::ContentModified,
            message: "pith: the document changed since the action was offered".into(),
            data: None,
        });
    }
    let snapshot = session
        .snapshot(&data.uri)
        .ok_or_else(|| invalid("pith: unknown document"))?;
    let Some(engine) = session.ai.engine_for(client).await else {
        return Err(Error {
            code: ErrorCode::ServerError(-32803),
            message: "pith: the model is unavailable".into(),
            data: None,
        });
    };
    let start = session.offset(&snapshot, data.range.start);
    let end = session.offset(&snapshot, data.range.end).max(start);
    let input = ActionInput {
        path: &snapshot.path,
        text: &snapshot.text,
        range: start..end,
        instruction: None,
        diagnostic: data.diagnostic.as_deref(),
    };
    let outcome = run_action(session, client, &*engine, kind, &input, &action.title).await?;
    memories::remember_action(session, &action.title, &snapshot.path, start, &outcome);
    if let Some(message) = &outcome.message {
        let title = format!("{} — {}", action.title, snapshot.path.display());
        show_markdown(session, client, &title, message).await;
    }
    action.edit = workspace_edit(session, &outcome);
    Ok(action)
}
