//! Helpers the feature files share, the one place for them: a feature file uses `session` (the
//! state), this module and the core, never another feature file. Running a code action with
//! progress and turning its outcome into a `WorkspaceEdit`, showing markdown, resolving the
//! identifier at a client position, and recording into session memory (`memories`).

pub mod memories;

use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::documents::from_lsp;
use super::session::Session;
use crate::assist::actions::{self, ActionInput, ActionKind, ActionOutcome};
use crate::index::SymbolRef;
use crate::text::Document;

/// The definitions the identifier at a client position may refer to, best first; None when the
/// document is unknown. The position is read against the very text the index holds.
pub fn resolve_at(session: &Session, uri: &Uri, position: lsp::Position) -> Option<Vec<SymbolRef>> {
    let file = session.indexed_file(uri)?;
    let offset = Document::new(&file.text, None).offset_at(from_lsp(position), session.encoding);
    Some(session.index.goto_definition(&file, offset))
}

/// Runs `kind` on `input` with `$/progress` titled `title`; dropping the request cancels it.
pub async fn run_action(
    session: &Session,
    client: &Client,
    engine: &dyn crate::engine::Engine,
    kind: ActionKind,
    input: &ActionInput<'_>,
    title: &str,
) -> Result<ActionOutcome> {
    let config = session.ai.config();
    let cancel = tokio_util::sync::CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    let work = actions::run(engine, &config, &session.index, kind, input, cancel);
    session
        .ai
        .with_progress(client, &session.capabilities, title, work)
        .await
        .map_err(|error| Error {
            code: ErrorCode::ServerError(-32803),
            message: format!("pith: {error}").into(),
            data: None,
        })
}

/// The edits and new files of an outcome as one `WorkspaceEdit` (None when there are none).
pub fn workspace_edit(session: &Session, outcome: &ActionOutcome) -> Option<lsp::WorkspaceEdit> {
    if outcome.edits.is_empty() && outcome.new_files.is_empty() {
        return None;
    }
    let mut operations = Vec::new();
    for file in &outcome.new_files {
        let uri = Uri::from_file_path(&file.path)?;
        operations.push(lsp::DocumentChangeOperation::Op(lsp::ResourceOp::Create(
            lsp::CreateFile {
                uri: uri.clone(),
                options: Some(lsp::CreateFileOptions {
                    overwrite: Some(false),
                    ignore_if_exists: Some(true),
                }),
                annotation_id: None,
            },
        )));
        operations.push(lsp::DocumentChangeOperation::Edit(lsp::TextDocumentEdit {
            text_document: lsp::OptionalVersionedTextDocumentIdentifier { uri, version: None },
            edits: vec![lsp::OneOf::Left(lsp::TextEdit {
                range: lsp::Range::default(),
                new_text: file.text.clone(),
            })],
        }));
    }
    for edit in &outcome.edits {
        let uri = Uri::from_file_path(&edit.path)?;
        let snapshot = session.snapshot(&uri)?;
        let version = session.documents.get(&uri).map(|d| d.version());
        let range = lsp::Range::new(
            session.position(&snapshot, edit.range.start),
            session.position(&snapshot, edit.range.end),
        );
        operations.push(lsp::DocumentChangeOperation::Edit(lsp::TextDocumentEdit {
            text_document: lsp::OptionalVersionedTextDocumentIdentifier { uri, version },
            edits: vec![lsp::OneOf::Left(lsp::TextEdit {
                range,
                new_text: edit.new_text.clone(),
            })],
        }));
    }
    Some(lsp::WorkspaceEdit {
        document_changes: Some(lsp::DocumentChanges::Operations(operations)),
        ..Default::default()
    })
}

/// Shows markdown: as a file in the cache dir opened with `window/showDocument`, else as a
/// message. Returns the file written, if any.
pub async fn show_markdown(
    session: &Session,
    client: &Client,
    title: &str,
    markdown: &str,
) -> Option<std::path::PathBuf> {
    let text = format!("# {title}\n\n{markdown}\n");
    let name = {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
    };
    let written = super::ai::write_markdown(&session.ai.cache_dir(), &name, &text);
    let supports_show_document = session
        .capabilities
        .window
        .as_ref()
        .and_then(|w| w.show_document.as_ref())
        .is_some_and(|s| s.support);
    if let (Ok(path), true) = (&written, supports_show_document)
        && let Some(uri) = Uri::from_file_path(path)
    {
        let shown = client
            .show_document(lsp::ShowDocumentParams {
                uri,
                external: Some(false),
                take_focus: Some(true),
                selection: None,
            })
            .await;
        if shown.unwrap_or(false) {
            return Some(path.clone());
        }
    }
    client
        .show_message(lsp::MessageType::INFO, format!("{title}\n\n{markdown}"))
        .await;
    written.ok()
}
