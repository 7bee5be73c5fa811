//! Work after `initialized`, off the main loop: the workspace scan reported through
//! `window/workDoneProgress` (`$/progress` begin/report/end), and the dynamic registration of
//! file watchers for the indexed languages. Workspace folders added later are scanned the same
//! way, each scan under its own progress token.
//!
//! The scan itself is `WorkspaceIndex::scan_roots_within`; this only relays its progress.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{self as lsp, NumberOrString};

use super::session::Session;
use crate::index::walk::ScanBound;

const WATCHER_GLOB: &str = "**/*.{py,pyi,rs}";
const PROGRESS_TOKEN: &str = "pith/indexing";
const REPORT_EVERY: Duration = Duration::from_millis(200);
/// How long to wait for the client to answer a request of ours before going on without it.
const CLIENT_REPLY: Duration = Duration::from_secs(5);

/// Scans started so far: a token must not be reused while another scan's progress is open.
static SCANS: AtomicUsize = AtomicUsize::new(0);

/// Registers watchers, scans the workspace with progress, then re-applies open buffers.
pub async fn start(client: Client, session: Arc<Session>) {
    // A client that never answers must not hold up the scan.
    tokio::spawn({
        let (client, session) = (client.clone(), session.clone());
        async move {
            if tokio::time::timeout(CLIENT_REPLY, register_watchers(&client, &session))
                .await
                .is_err()
            {
                tracing::warn!("the client did not answer registerCapability");
            }
        }
    });

    // Not an implied root a file opened meanwhile added: that one has its own bounded scan.
    let roots = session.workspace_roots();
    scan(client, session, roots, None).await;
}

/// Scans `roots` (all of the workspace, or folders just added, or an implied root within its
/// `bound`) with work-done progress when the client supports it, then re-applies open buffers
/// over what was read from disk.
pub async fn scan(
    client: Client,
    session: Arc<Session>,
    roots: Vec<PathBuf>,
    bound: Option<ScanBound>,
) {
    let supports_progress = session
        .capabilities
        .window
        .as_ref()
        .and_then(|window| window.work_done_progress)
        .unwrap_or(false);
    let token = match SCANS.fetch_add(1, Ordering::Relaxed) {
        0 => NumberOrString::String(PROGRESS_TOKEN.into()),
        nth => NumberOrString::String(format!("{PROGRESS_TOKEN}/{nth}")),
    };
    let created = supports_progress
        && matches!(
            tokio::time::timeout(
                CLIENT_REPLY,
                client.create_work_done_progress(token.clone())
            )
            .await,
            Ok(Ok(()))
        );
    let progress = if created {
        Some(
            client
                .progress(token, "pith: indexing")
                .with_message("finding files")
                .with_percentage(0)
                .begin()
                .await,
        )
    } else {
        None
    };

    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    session.scan.begin();
    let scan = tokio::task::spawn_blocking({
        let session = session.clone();
        let (done, total) = (done.clone(), total.clone());
        move || scan_files(&session, &roots, bound, &done, &total)
    });
    tokio::pin!(scan);
    let mut ticker = tokio::time::interval(REPORT_EVERY);
    let outcome = loop {
        tokio::select! {
            outcome = &mut scan => break outcome,
            _ = ticker.tick() => {
                if let Some(progress) = &progress {
                    let (done, total) = (done.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
                    let percentage = (done * 100).checked_div(total).unwrap_or(0) as u32;
                    progress
                        .report_with_message(format!("{done}/{total} files"), percentage)
                        .await;
                }
            }
        }
    };
    session.scan.end(outcome.is_ok());
    let message = match outcome {
        Ok(indexed) => {
            tracing::info!(
                "indexed {indexed} files in {:.2}s",
                started.elapsed().as_secs_f64()
            );
            format!("{indexed} files indexed")
        }
        Err(error) => {
            tracing::error!("workspace scan failed: {error}");
            client
                .log_message(
                    lsp::MessageType::ERROR,
                    format!("pith: workspace scan failed: {error}"),
                )
                .await;
            "indexing failed".to_string()
        }
    };
    if let Some(progress) = progress {
        progress.finish_with_message(message).await;
    }
}

/// Indexes every source file under `roots`; returns how many were indexed. Blocking.
fn scan_files(
    session: &Session,
    roots: &[PathBuf],
    bound: Option<ScanBound>,
    done: &AtomicUsize,
    total: &AtomicUsize,
) -> usize {
    let summary = session.index.scan_roots_within(
        roots,
        bound,
        &|scanned, of| {
            done.store(scanned, Ordering::Relaxed);
            total.store(of, Ordering::Relaxed);
            session.scan.progress(scanned, of);
        },
        &session.shutting_down,
    );
    tracing::info!(
        files = summary.files,
        symbols = summary.symbols(),
        skipped = ?summary.skipped,
        cancelled = summary.cancelled,
        ?roots,
        "workspace scan"
    );
    if let Some(bound) = bound {
        tracing::info!(
            "implied root scanned: {} files{}",
            summary.files,
            if summary.capped {
                format!(
                    " (stopped at {} files, {} folder levels: open a project folder for more)",
                    bound.max_files, bound.max_depth
                )
            } else {
                String::new()
            }
        );
    }
    // A buffer opened during the scan may have been overwritten by its disk copy.
    session.documents.mark_all_stale();
    session.index_stale_buffers();
    summary.files
}

/// Asks the client to report changes to source files, if it supports dynamic registration.
async fn register_watchers(client: &Client, session: &Session) {
    let dynamic = session
        .capabilities
        .workspace
        .as_ref()
        .and_then(|workspace| workspace.did_change_watched_files.as_ref())
        .and_then(|watched| watched.dynamic_registration)
        .unwrap_or(false);
    if !dynamic {
        return;
    }
    let options = lsp::DidChangeWatchedFilesRegistrationOptions {
        watchers: vec![lsp::FileSystemWatcher {
            glob_pattern: lsp::GlobPattern::String(WATCHER_GLOB.into()),
            kind: None,
        }],
    };
    let registration = lsp::Registration {
        id: "pith/watched-files".into(),
        method: "workspace/didChangeWatchedFiles".into(),
        register_options: serde_json::to_value(options).ok(),
    };
    if let Err(error) = client.register_capability(vec![registration]).await {
        tracing::warn!("could not register file watchers: {error}");
    }
}
