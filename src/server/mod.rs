//! The language server: the `LanguageServer` impl (thin dispatch and capabilities) over a
//! `Session` that owns the state. Each feature family lives in its own file and calls the core;
//! this is the only module that knows LSP. The files form a star (`ARCHITECTURE.md`, enforced by
//! `tests/layers.rs`): `session` (with `documents` and `ai`, the state it is made of) at the
//! centre, `shared` for the helpers feature files share, and feature files that never import
//! each other; only this hub sees them all.
//!
//! Every request runs through `run_blocking`: off the async loop, with a panic turned into an
//! `InternalError` reply (the server stays up), and with a cancellation token that fires when
//! the client cancels (tower-lsp drops the handler future on `$/cancelRequest`).
//! Notifications that change documents or workspace folders apply their change synchronously,
//! before any `.await`, because tower-lsp runs up to four messages concurrently; an added
//! folder is then scanned in the background like the workspace at `initialized`.
//!
//! Adding a feature (inline completion, code actions, commands): a file beside these with a
//! function over `&Session` (a helper another feature needs goes to `shared`), a method on `Backend` that calls it through `Backend::run`, and
//! its capability in `capabilities()` in the same commit, never before it works.

mod ai;
mod code_actions;
mod commands;
mod completion;
mod context;
mod definition;
mod documents;
mod hover;
mod progress;
mod session;
mod shared;
mod symbols;
mod transport;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::{self as lsp, Uri};
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

pub use context::{ContextParams, ContextResult, ContextSnippet};
pub use session::{Session, Settings};

use crate::text::PositionEncoding;

/// Runs the server on stdin/stdout until `exit` or the end of input. Returns whether a
/// `shutdown` request came first (the spec's exit code is 0 then, 1 otherwise).
pub async fn serve_stdio() -> bool {
    let shut_down = Arc::new(AtomicBool::new(false));
    let (service, socket) = LspService::build(|client| Backend::new(client, shut_down.clone()))
        .custom_method(context::METHOD, Backend::pith_context)
        .custom_method(completion::INLINE_METHOD, Backend::inline_completion)
        .custom_method(transport::MALFORMED_METHOD, Backend::malformed_message)
        .custom_method(transport::UNSUPPORTED_METHOD, Backend::unsupported_method)
        .finish();
    let (sanitized, stdin_for_server) = tokio::io::duplex(1 << 16);
    tokio::spawn(transport::sanitize(tokio::io::stdin(), sanitized));
    Server::new(stdin_for_server, tokio::io::stdout(), socket)
        .serve(service)
        .await;
    shut_down.load(Ordering::SeqCst)
}

pub struct Backend {
    client: Client,
    session: OnceLock<Arc<Session>>,
    shut_down: Arc<AtomicBool>,
    /// Set by the first `initialized`: a repeated one must not start another scan.
    scan_started: AtomicBool,
}

impl Backend {
    fn new(client: Client, shut_down: Arc<AtomicBool>) -> Self {
        Self {
            client,
            session: OnceLock::new(),
            shut_down,
            scan_started: AtomicBool::new(false),
        }
    }

    fn session(&self) -> Result<Arc<Session>> {
        self.session.get().cloned().ok_or_else(|| Error {
            code: ErrorCode::ServerError(-32002),
            message: "pith: server not initialized".into(),
            data: None,
        })
    }

    /// Runs `work` on the session in a blocking task (see the module doc).
    async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(&Session, &CancellationToken) -> T + Send + 'static,
    ) -> Result<T> {
        let session = self.session()?;
        run_blocking(what, move |cancel| work(&session, cancel)).await
    }

    async fn inline_completion(
        &self,
        params: lsp::InlineCompletionParams,
    ) -> Result<Option<lsp::InlineCompletionResponse>> {
        let session = self.session()?;
        let client = self.client.clone();
        ai::spawn_guarded("inlineCompletion", async move {
            Ok(completion::inline_completion(&session, &client, params).await)
        })
        .await
    }

    async fn pith_context(&self, params: ContextParams) -> Result<ContextResult> {
        self.run("pith/context", move |session, _| {
            context::context(session, &params)
        })
        .await
    }

    /// What a malformed message from the client becomes (see `transport`): a parse error.
    async fn malformed_message(&self, params: serde_json::Value) -> Result<()> {
        Err(Error {
            code: ErrorCode::ParseError,
            message: format!(
                "pith: malformed message: {}",
                params["reason"].as_str().unwrap_or("unreadable")
            )
            .into(),
            data: None,
        })
    }

    /// A `$/` request (see `transport`): the spec's MethodNotFound.
    async fn unsupported_method(&self, params: serde_json::Value) -> Result<()> {
        Err(Error {
            code: ErrorCode::MethodNotFound,
            message: format!(
                "pith: unsupported method {}",
                params["method"].as_str().unwrap_or("?")
            )
            .into(),
            data: None,
        })
    }

    /// Re-indexes a buffer off the loop; edits to it were already applied.
    fn index_buffer_soon(&self, session: Arc<Session>, uri: Uri) {
        tokio::task::spawn_blocking(move || session.index_buffer(&uri));
    }
}

/// Runs blocking work off the async loop; a panic becomes an `InternalError`. The token is
/// cancelled when the returned future is dropped (the request was cancelled).
pub async fn run_blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce(&CancellationToken) -> T + Send + 'static,
) -> Result<T> {
    let cancel = CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    match tokio::task::spawn_blocking(move || work(&cancel)).await {
        Ok(value) => Ok(value),
        Err(error) => {
            let reason = if error.is_panic() {
                panic_message(error.into_panic())
            } else {
                "task cancelled".to_string()
            };
            tracing::error!("{what} failed: {reason}");
            Err(Error {
                code: ErrorCode::InternalError,
                message: format!("pith: {what} failed: {reason}").into(),
                data: None,
            })
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic".to_string()
    }
}

/// UTF-8 if the client offers it (no conversion needed), else UTF-16, which all clients speak.
fn negotiate_encoding(capabilities: &lsp::ClientCapabilities) -> PositionEncoding {
    let offered = capabilities
        .general
        .as_ref()
        .and_then(|general| general.position_encodings.as_ref());
    match offered {
        Some(kinds) if kinds.contains(&lsp::PositionEncodingKind::UTF8) => PositionEncoding::Utf8,
        _ => PositionEncoding::Utf16,
    }
}

fn lsp_encoding(encoding: PositionEncoding) -> lsp::PositionEncodingKind {
    match encoding {
        PositionEncoding::Utf8 => lsp::PositionEncodingKind::UTF8,
        PositionEncoding::Utf16 => lsp::PositionEncodingKind::UTF16,
        PositionEncoding::Utf32 => lsp::PositionEncodingKind::UTF32,
    }
}

/// Workspace folders (multi-root), else the deprecated rootUri / rootPath.
fn workspace_roots(params: &lsp::InitializeParams) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = params
        .workspace_folders
        .iter()
        .flatten()
        .filter_map(|folder| folder.uri.to_file_path().map(|path| path.into_owned()))
        .collect();
    #[allow(deprecated)]
    if roots.is_empty() {
        if let Some(path) = params.root_uri.as_ref().and_then(|uri| uri.to_file_path()) {
            roots.push(path.into_owned());
        } else if let Some(path) = &params.root_path {
            roots.push(PathBuf::from(path));
        }
    }
    // Canonical roots make prefix tests on paths from URIs reliable (symlinked temp dirs).
    roots
        .into_iter()
        .map(|root| root.canonicalize().unwrap_or(root))
        .collect()
}

fn capabilities(encoding: PositionEncoding) -> lsp::ServerCapabilities {
    lsp::ServerCapabilities {
        position_encoding: Some(lsp_encoding(encoding)),
        text_document_sync: Some(lsp::TextDocumentSyncCapability::Options(
            lsp::TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(lsp::TextDocumentSyncKind::INCREMENTAL),
                save: Some(lsp::TextDocumentSyncSaveOptions::Supported(true)),
                ..Default::default()
            },
        )),
        hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
        definition_provider: Some(lsp::OneOf::Left(true)),
        document_symbol_provider: Some(lsp::OneOf::Left(true)),
        workspace_symbol_provider: Some(lsp::OneOf::Left(true)),
        workspace: Some(lsp::WorkspaceServerCapabilities {
            workspace_folders: Some(lsp::WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(lsp::OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        experimental: Some(serde_json::json!({ "pithContext": true })),
        ..Default::default()
    }
}

/// The AI capabilities: inline completion, the completion-item fallback where wanted, code
/// actions resolved lazily, and the `pith.*` commands.
fn add_ai_capabilities(capabilities: &mut lsp::ServerCapabilities, completion_fallback: bool) {
    capabilities.inline_completion_provider = Some(lsp::OneOf::Left(true));
    if completion_fallback {
        capabilities.completion_provider = Some(lsp::CompletionOptions {
            resolve_provider: Some(false),
            ..Default::default()
        });
    }
    capabilities.code_action_provider = Some(lsp::CodeActionProviderCapability::Options(
        lsp::CodeActionOptions {
            code_action_kinds: Some(vec![
                lsp::CodeActionKind::QUICKFIX,
                lsp::CodeActionKind::REFACTOR_REWRITE,
                lsp::CodeActionKind::new("refactor.pith"),
            ]),
            resolve_provider: Some(true),
            work_done_progress_options: Default::default(),
        },
    ));
    capabilities.execute_command_provider = Some(lsp::ExecuteCommandOptions {
        commands: commands::COMMANDS.iter().map(|c| c.to_string()).collect(),
        work_done_progress_options: Default::default(),
    });
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: lsp::InitializeParams) -> Result<lsp::InitializeResult> {
        let encoding = negotiate_encoding(&params.capabilities);
        let roots = workspace_roots(&params);
        let settings: Settings = params
            .initialization_options
            .clone()
            .and_then(|options| match serde_json::from_value(options) {
                Ok(settings) => Some(settings),
                Err(error) => {
                    tracing::warn!("ignoring invalid initializationOptions: {error}");
                    None
                }
            })
            .unwrap_or_default();
        tracing::info!(?roots, ?encoding, "initialize");
        let client_capabilities = params.capabilities;
        let options = params.initialization_options;
        let session = run_blocking("initialize", move |_| {
            let ai_roots = roots.clone();
            let session = Session::new(roots, client_capabilities, encoding, settings);
            if let Some(error) = session.ai.configure(&ai_roots, options) {
                tracing::warn!("{error}");
            }
            session
        })
        .await?;
        let session = Arc::new(session);
        let mut server_capabilities = capabilities(encoding);
        add_ai_capabilities(
            &mut server_capabilities,
            completion::fallback_enabled(&session),
        );
        if self.session.set(session).is_err() {
            return Err(Error::invalid_request());
        }
        Ok(lsp::InitializeResult {
            capabilities: server_capabilities,
            server_info: Some(lsp::ServerInfo {
                name: "pith".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: lsp::InitializedParams) {
        let Ok(session) = self.session() else {
            return;
        };
        if self.scan_started.swap(true, Ordering::SeqCst) {
            tracing::warn!("ignoring a repeated `initialized`");
            return;
        }
        // Load the model while the workspace is scanned; say so once if it cannot be loaded.
        let client = self.client.clone();
        let ai = session.ai.clone();
        tokio::spawn(async move {
            ai.engine_for(&client).await;
        });
        tokio::spawn(progress::start(self.client.clone(), session));
    }

    async fn did_change_configuration(&self, params: lsp::DidChangeConfigurationParams) {
        let Ok(session) = self.session() else {
            return;
        };
        if let Some(error) = session.ai.reconfigure(params.settings) {
            self.client
                .show_message(lsp::MessageType::WARNING, error)
                .await;
        }
    }

    async fn did_change_workspace_folders(&self, params: lsp::DidChangeWorkspaceFoldersParams) {
        let Ok(session) = self.session() else {
            return;
        };
        let folder_paths = |folders: Vec<lsp::WorkspaceFolder>| -> Vec<PathBuf> {
            folders
                .into_iter()
                .filter_map(|folder| folder.uri.to_file_path().map(|path| path.into_owned()))
                .collect()
        };
        let removed = folder_paths(params.event.removed);
        let added = folder_paths(params.event.added);
        // The roots change before any await, so the requests that follow see the new
        // workspace (confinement included); scans and parses happen off the loop.
        let mut buffers_forgotten = false;
        for root in &removed {
            buffers_forgotten |= session.remove_folder(root);
        }
        let added: Vec<PathBuf> = added
            .iter()
            .filter_map(|root| session.index.add_root(root))
            .collect();
        if !added.is_empty() {
            tracing::info!(roots = ?added, "workspace folders added");
            tokio::spawn(progress::scan(self.client.clone(), session.clone(), added));
        }
        if buffers_forgotten {
            let _ = run_blocking("didChangeWorkspaceFolders", move |_| {
                session.index_stale_buffers();
            })
            .await;
        }
    }

    async fn completion(
        &self,
        params: lsp::CompletionParams,
    ) -> Result<Option<lsp::CompletionResponse>> {
        let session = self.session()?;
        let client = self.client.clone();
        ai::spawn_guarded("completion", async move {
            Ok(completion::completion_item(&session, &client, params).await)
        })
        .await
    }

    async fn code_action(
        &self,
        params: lsp::CodeActionParams,
    ) -> Result<Option<lsp::CodeActionResponse>> {
        self.run("codeAction", move |session, _| {
            Some(code_actions::code_actions(session, &params))
        })
        .await
    }

    async fn code_action_resolve(&self, action: lsp::CodeAction) -> Result<lsp::CodeAction> {
        let session = self.session()?;
        let client = self.client.clone();
        ai::spawn_guarded("codeAction/resolve", async move {
            code_actions::resolve(&session, &client, action).await
        })
        .await
    }

    async fn execute_command(
        &self,
        params: lsp::ExecuteCommandParams,
    ) -> Result<Option<serde_json::Value>> {
        let session = self.session()?;
        let client = self.client.clone();
        ai::spawn_guarded("executeCommand", async move {
            commands::execute(&session, &client, params).await
        })
        .await
    }

    async fn shutdown(&self) -> Result<()> {
        self.shut_down.store(true, Ordering::SeqCst);
        if let Ok(session) = self.session() {
            session.shutting_down.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn did_open(&self, params: lsp::DidOpenTextDocumentParams) {
        let Ok(session) = self.session() else {
            return;
        };
        let document = params.text_document;
        session.documents.open(
            document.uri.clone(),
            document.language_id,
            document.version,
            document.text,
        );
        if let Some(path) = document.uri.to_file_path() {
            session.touch(&path);
        }
        self.index_buffer_soon(session, document.uri);
    }

    async fn did_change(&self, params: lsp::DidChangeTextDocumentParams) {
        let Ok(session) = self.session() else {
            return;
        };
        let uri = params.text_document.uri;
        // Synchronous, before any await: edits apply in the order they arrived.
        let applied = session.documents.apply_changes(
            &uri,
            params.text_document.version,
            &params.content_changes,
            session.encoding,
        );
        match applied {
            Ok(()) => {
                if let Some(path) = uri.to_file_path() {
                    session.touch(&path);
                }
                self.index_buffer_soon(session, uri);
            }
            Err(error) => tracing::warn!("didChange on {} ignored: {error:?}", uri.as_str()),
        }
    }

    async fn did_save(&self, params: lsp::DidSaveTextDocumentParams) {
        let Ok(session) = self.session() else {
            return;
        };
        // An open buffer is already indexed; a file saved without being open comes from disk.
        if let Some(path) = params
            .text_document
            .uri
            .to_file_path()
            .map(|p| p.into_owned())
        {
            let _ = run_blocking("didSave", move |_| {
                session.index_stale_buffers();
                session.index_from_disk(&path);
                shared::memories::mark_changed_code_stale(&session, &path);
            })
            .await;
        }
    }

    async fn did_close(&self, params: lsp::DidCloseTextDocumentParams) {
        let Ok(session) = self.session() else {
            return;
        };
        let uri = params.text_document.uri;
        if session.documents.close(&uri).is_none() {
            return;
        }
        let Some(path) = uri.to_file_path().map(|p| p.into_owned()) else {
            return;
        };
        // Fall back to the disk copy; a buffer from outside the workspace leaves with its editor.
        let _ = run_blocking("didClose", move |_| {
            if session.in_workspace(&path) {
                session.index_from_disk(&path);
            } else {
                session.index.remove_file(&path);
            }
        })
        .await;
    }

    async fn did_change_watched_files(&self, params: lsp::DidChangeWatchedFilesParams) {
        let Ok(session) = self.session() else {
            return;
        };
        let _ = run_blocking("didChangeWatchedFiles", move |_| {
            for change in params.changes {
                let Some(path) = change.uri.to_file_path().map(|p| p.into_owned()) else {
                    continue;
                };
                if change.typ == lsp::FileChangeType::DELETED {
                    session.forget(&path);
                } else {
                    session.index_from_disk(&path);
                }
                shared::memories::mark_changed_code_stale(&session, &path);
            }
        })
        .await;
    }

    async fn document_symbol(
        &self,
        params: lsp::DocumentSymbolParams,
    ) -> Result<Option<lsp::DocumentSymbolResponse>> {
        let uri = params.text_document.uri;
        self.run("documentSymbol", move |session, _| {
            Some(lsp::DocumentSymbolResponse::Nested(
                symbols::document_symbols(session, &uri),
            ))
        })
        .await
    }

    async fn symbol(
        &self,
        params: lsp::WorkspaceSymbolParams,
    ) -> Result<Option<lsp::WorkspaceSymbolResponse>> {
        self.run("workspace/symbol", move |session, _| {
            Some(lsp::WorkspaceSymbolResponse::Nested(
                symbols::workspace_symbols(session, &params.query),
            ))
        })
        .await
    }

    async fn goto_definition(
        &self,
        params: lsp::GotoDefinitionParams,
    ) -> Result<Option<lsp::GotoDefinitionResponse>> {
        let position = params.text_document_position_params;
        self.run("definition", move |session, _| {
            let locations =
                definition::definition(session, &position.text_document.uri, position.position);
            (!locations.is_empty()).then_some(lsp::GotoDefinitionResponse::Array(locations))
        })
        .await
    }

    async fn hover(&self, params: lsp::HoverParams) -> Result<Option<lsp::Hover>> {
        let position = params.text_document_position_params;
        self.run("hover", move |session, _| {
            hover::hover(session, &position.text_document.uri, position.position)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_internal_error() {
        let error = run_blocking("hover", |_| -> u8 { panic!("boom at 3:4") })
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InternalError);
        assert_eq!(error.message, "pith: hover failed: boom at 3:4");
        assert_eq!(run_blocking("hover", |_| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn dropping_the_request_cancels_its_token() {
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let request = run_blocking("slow", move |cancel| {
            let started = std::time::Instant::now();
            while !cancel.is_cancelled() && started.elapsed().as_secs() < 5 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = seen_tx.send(cancel.is_cancelled());
        });
        // Poll once so the blocking task starts, then drop it as tower-lsp does on cancel.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), request).await;
        let cancelled = tokio::task::spawn_blocking(move || seen_rx.recv().unwrap())
            .await
            .unwrap();
        assert!(cancelled);
    }

    #[test]
    fn utf8_is_chosen_only_when_offered() {
        let offer = |kinds: Vec<lsp::PositionEncodingKind>| lsp::ClientCapabilities {
            general: Some(lsp::GeneralClientCapabilities {
                position_encodings: Some(kinds),
                ..Default::default()
            }),
            ..Default::default()
        };
        use lsp::PositionEncodingKind as Kind;
        assert_eq!(
            negotiate_encoding(&offer(vec![Kind::UTF16, Kind::UTF8])),
            PositionEncoding::Utf8
        );
        assert_eq!(
            negotiate_encoding(&offer(vec![Kind::UTF32])),
            PositionEncoding::Utf16
        );
        assert_eq!(
            negotiate_encoding(&lsp::ClientCapabilities::default()),
            PositionEncoding::Utf16
        );
    }
}
