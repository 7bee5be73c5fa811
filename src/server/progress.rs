//! Work after `initialized`, off the main loop: the workspace scan reported through
//! `window/workDoneProgress` (`$/progress` begin/report/end), and the dynamic registration of
//! file watchers for the indexed languages.
//!
//! The scan itself is `ignore` walking the roots and `WorkspaceIndex::update_file` on each
//! source file in parallel; when `WorkspaceIndex::scan(progress, cancel)` lands in the core,
//! `scan_files` becomes a call to it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{self as lsp, NumberOrString};

use super::session::Session;
use crate::lang::Lang;

const WATCHER_GLOB: &str = "**/*.{py,pyi,rs}";
const PROGRESS_TOKEN: &str = "pith/indexing";
const REPORT_EVERY: Duration = Duration::from_millis(200);

/// Registers watchers, scans the workspace with progress, then re-applies open buffers.
pub async fn start(client: Client, session: Arc<Session>) {
    register_watchers(&client, &session).await;

    let supports_progress = session
        .capabilities
        .window
        .as_ref()
        .and_then(|window| window.work_done_progress)
        .unwrap_or(false);
    let token = NumberOrString::String(PROGRESS_TOKEN.into());
    let progress = if supports_progress
        && client
            .create_work_done_progress(token.clone())
            .await
            .is_ok()
    {
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
    let scan = tokio::task::spawn_blocking({
        let session = session.clone();
        let (done, total) = (done.clone(), total.clone());
        move || scan_files(&session, &done, &total)
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

/// Indexes every source file under the roots; returns how many were indexed. Blocking.
fn scan_files(session: &Session, done: &AtomicUsize, total: &AtomicUsize) -> usize {
    let roots = session.index.roots();
    let files: Vec<PathBuf> = roots
        .iter()
        .flat_map(|root| {
            ignore::WalkBuilder::new(root)
                .build()
                .filter_map(Result::ok)
                .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
                .map(ignore::DirEntry::into_path)
                .filter(|path| Lang::from_path(path).is_some())
        })
        .collect();
    total.store(files.len(), Ordering::Relaxed);
    files.par_iter().for_each(|path| {
        if !session.shutdown.is_cancelled() {
            session.index_from_disk(path);
        }
        done.fetch_add(1, Ordering::Relaxed);
    });
    // A buffer opened during the scan may have been overwritten by its disk copy.
    session.documents.mark_all_stale();
    session.index_stale_buffers();
    session.index.files().len()
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
