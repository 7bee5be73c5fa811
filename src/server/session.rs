//! The server's shared state, owned in one place: open documents, the workspace index (whose
//! roots are the current workspace folders: only files under them are read from disk), what the
//! client can do, the negotiated position encoding and the settings. Created by `initialize`;
//! handlers take an `Arc<Session>` snapshot and never hold a lock across `.await`.
//!
//! A client may name no root at all (Neovim on a file outside any project). Then the folder of
//! each file opened outside the roots becomes an implied root, as pyright and pylsp do, scanned
//! within `IMPLIED_ROOT_BOUND`; never `/`, `$HOME` or a folder above `$HOME`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::documents::{self, DocumentStore};
use crate::engine::Engine;
use crate::index::walk::ScanBound;
use crate::index::{FileIndex, IndexOptions, WorkspaceIndex};
use crate::lang::Lang;
use crate::text::{Document, PositionEncoding};

/// How many recently opened or edited files retrieval is told about.
const RECENT_FILES: usize = 16;

/// How far the scan of an implied root goes.
pub const IMPLIED_ROOT_BOUND: ScanBound = ScanBound {
    max_depth: 4,
    max_files: 1000,
};

/// What opening a file does to the roots.
#[derive(Debug, PartialEq)]
pub enum ImpliedRoot {
    /// Nothing: the file is under a root, or the client named roots.
    Covered,
    /// Its folder became an implied root, to be scanned.
    Added(PathBuf),
    /// Its folder (and why) is too broad to be a root: only the buffer is indexed.
    Refused(PathBuf, &'static str),
}

/// Settings from `initializationOptions` (camelCase keys).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Default token budget of `pith/context`.
    pub budget_tokens: usize,
    /// Files larger than this are not indexed from disk.
    pub max_file_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            budget_tokens: 1024,
            max_file_bytes: IndexOptions::default().max_file_bytes,
        }
    }
}

pub struct Session {
    pub index: Arc<WorkspaceIndex>,
    pub documents: DocumentStore,
    pub capabilities: lsp::ClientCapabilities,
    pub encoding: PositionEncoding,
    pub settings: Settings,
    /// Set at shutdown: stops the workspace scan.
    pub shutting_down: AtomicBool,
    /// Where the workspace scans stand, for `pith.status`.
    pub scan: ScanState,
    /// The model side: config, engine, memory, caches (`ai.rs`).
    pub ai: Arc<super::ai::Ai>,
    recent: Mutex<VecDeque<PathBuf>>,
    /// The client named no root: opened files bring their folders in (`imply_root`).
    rootless: bool,
    implied_roots: Mutex<Vec<PathBuf>>,
    /// Folders refused as implied roots (said once each).
    refused_roots: Mutex<Vec<PathBuf>>,
    /// Serializes buffer re-indexing so that an older version never overwrites a newer one.
    buffer_indexing: Mutex<()>,
}

/// Progress of the workspace scans (the one at `initialized` and those of folders added
/// later), written by `progress.rs` and read by `pith.status`.
#[derive(Debug, Default)]
pub struct ScanState {
    started: AtomicBool,
    running: AtomicUsize,
    scanned: AtomicUsize,
    total: AtomicUsize,
    failed: AtomicBool,
}

/// What [`ScanState::get`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanPhase {
    /// No scan has started (before `initialized`).
    NotStarted,
    /// Files scanned so far of those found.
    Scanning {
        scanned: usize,
        total: usize,
    },
    Ready,
    /// The last scan failed (the server logged why).
    Failed,
}

impl ScanState {
    pub fn begin(&self) {
        self.started.store(true, Ordering::SeqCst);
        self.scanned.store(0, Ordering::SeqCst);
        self.total.store(0, Ordering::SeqCst);
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    pub fn progress(&self, scanned: usize, total: usize) {
        self.scanned.store(scanned, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    pub fn end(&self, ok: bool) {
        self.failed.store(!ok, Ordering::SeqCst);
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn get(&self) -> ScanPhase {
        if self.running.load(Ordering::SeqCst) > 0 {
            ScanPhase::Scanning {
                scanned: self.scanned.load(Ordering::Relaxed),
                total: self.total.load(Ordering::Relaxed),
            }
        } else if !self.started.load(Ordering::SeqCst) {
            ScanPhase::NotStarted
        } else if self.failed.load(Ordering::SeqCst) {
            ScanPhase::Failed
        } else {
            ScanPhase::Ready
        }
    }
}

/// A document's text as the client sees it: the open buffer, else the indexed copy.
pub struct TextSnapshot {
    pub path: PathBuf,
    pub text: Arc<str>,
    /// The same text, for position conversion (no tree for a copy from the index or disk).
    pub document: Document,
}

impl Session {
    pub fn new(
        roots: Vec<PathBuf>,
        capabilities: lsp::ClientCapabilities,
        encoding: PositionEncoding,
        settings: Settings,
    ) -> Self {
        let options = IndexOptions {
            max_file_bytes: settings.max_file_bytes,
            ..IndexOptions::default()
        };
        let rootless = roots.is_empty();
        Self {
            index: Arc::new(WorkspaceIndex::new(roots, options)),
            documents: DocumentStore::default(),
            capabilities,
            encoding,
            settings,
            shutting_down: AtomicBool::new(false),
            scan: ScanState::default(),
            ai: Arc::default(),
            recent: Mutex::new(VecDeque::new()),
            rootless,
            implied_roots: Mutex::new(Vec::new()),
            refused_roots: Mutex::new(Vec::new()),
            buffer_indexing: Mutex::new(()),
        }
    }

    /// For a file just opened: when the client named no root and the file is under none, its
    /// folder becomes a root (the caller scans it), unless that folder is `/`, `$HOME` or
    /// above `$HOME`.
    pub fn imply_root(&self, path: &Path) -> ImpliedRoot {
        if !self.rootless {
            return ImpliedRoot::Covered;
        }
        let Some(dir) = path.parent().and_then(|dir| dir.canonicalize().ok()) else {
            return ImpliedRoot::Covered;
        };
        if self.in_workspace(&dir) {
            return ImpliedRoot::Covered;
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .map(|home| home.canonicalize().unwrap_or(home));
        let too_broad = if dir.parent().is_none() {
            Some("is the root of the file system")
        } else if home.as_ref().is_some_and(|home| *home == dir) {
            Some("is your home folder")
        } else if home.as_ref().is_some_and(|home| home.starts_with(&dir)) {
            Some("holds your home folder")
        } else {
            None
        };
        if let Some(why) = too_broad {
            let mut refused = lock(&self.refused_roots);
            if refused.contains(&dir) {
                return ImpliedRoot::Covered;
            }
            refused.push(dir.clone());
            return ImpliedRoot::Refused(dir, why);
        }
        // Under the lock: `workspace_roots` must never see the root without knowing it is implied.
        let mut implied = lock(&self.implied_roots);
        match self.index.add_root(&dir) {
            Some(root) => {
                implied.push(root.clone());
                ImpliedRoot::Added(root)
            }
            None => ImpliedRoot::Covered,
        }
    }

    /// The roots the client named (the index's roots but the implied ones, which are scanned
    /// within their bound on their own).
    pub fn workspace_roots(&self) -> Vec<PathBuf> {
        let implied = lock(&self.implied_roots);
        let mut roots = self.index.roots();
        roots.retain(|root| !implied.contains(root));
        roots
    }

    /// The roots pith chose itself (`imply_root`), in the order they came.
    pub fn implied_roots(&self) -> Vec<PathBuf> {
        lock(&self.implied_roots).clone()
    }

    /// The loaded engine, if any; never waits for a load in progress.
    pub fn engine(&self) -> Option<Arc<dyn Engine>> {
        self.ai.loaded()
    }

    /// Hands the session an engine (instead of loading one); false if it already had one.
    pub fn set_engine(&self, engine: Arc<dyn Engine>) -> bool {
        self.ai.set_engine(engine)
    }

    /// Tokens in `text` as the model counts them: the engine's tokenizer once it is loaded,
    /// the estimate until then (so that `pith/context` answers before the model is up).
    pub fn count_tokens(&self, text: &str) -> usize {
        match self.engine() {
            Some(engine) => engine.count_tokens(text),
            None => crate::engine::estimate_tokens(text),
        }
    }

    /// Puts `path` at the front of the recently used files.
    pub fn touch(&self, path: &Path) {
        let mut recent = lock(&self.recent);
        recent.retain(|p| p != path);
        recent.push_front(path.to_path_buf());
        recent.truncate(RECENT_FILES);
    }

    pub fn recent(&self) -> Vec<PathBuf> {
        lock(&self.recent).iter().cloned().collect()
    }

    /// Hands the current text of an open buffer to the index, unless it already has it.
    /// Blocking (parses): call it from a blocking task.
    pub fn index_buffer(&self, uri: &Uri) {
        let _in_order = lock(&self.buffer_indexing);
        let Some(document) = self.documents.get(uri) else {
            return;
        };
        let Some(path) = &document.path else {
            return;
        };
        if document.indexed_version == Some(document.version()) {
            return;
        }
        // The buffer's incremental tree is current: the index reuses it instead of parsing, and
        // after edits only the touched top-level items are analyzed again.
        let text = &document.document;
        let (Some(lang), Some(tree)) = (text.lang(), text.tree()) else {
            return;
        };
        let source = text.text();
        let analysis = match (&document.analysis, text.edits_since_analysis()) {
            (Some(previous), Some((old_tree, edits))) => {
                let file = Arc::new(crate::lang::reanalyze(
                    previous, old_tree, edits, &source, tree,
                ));
                self.index.insert(file.clone());
                file
            }
            _ => self.index.update_parsed(path, lang, &source, tree),
        };
        self.documents
            .mark_indexed(uri, document.version(), analysis);
    }

    /// Brings the index up to date with every open buffer. Blocking.
    pub fn index_stale_buffers(&self) {
        for uri in self.documents.stale() {
            self.index_buffer(&uri);
        }
    }

    /// Re-indexes a file from disk, or forgets it if it is gone or unreadable. Open buffers win
    /// over the disk: they are left alone. Blocking.
    pub fn index_from_disk(&self, path: &Path) {
        if Lang::from_path(path).is_none() || self.documents.is_open(path) {
            return;
        }
        if !self.readable(path) {
            // A client may name any path (didSave, watched files): only the roots are read.
            self.index.remove_file(path);
            return;
        }
        match read_source(path, self.settings.max_file_bytes) {
            Some(text) => {
                self.index.update_file(path, &text);
            }
            None => self.index.remove_file(path),
        }
    }

    /// Forgets a file, or every file under a deleted directory, unless a buffer holds it.
    pub fn forget(&self, path: &Path) {
        let doomed: Vec<PathBuf> = self
            .index
            .files()
            .iter()
            .filter(|file| file.path.starts_with(path))
            .map(|file| file.path.clone())
            .collect();
        for file in doomed {
            if !self.documents.is_open(&file) {
                self.index.remove_file(&file);
            }
        }
    }

    /// Whether `path` lies under one of the current workspace roots.
    pub fn in_workspace(&self, path: &Path) -> bool {
        self.index.in_roots(path)
    }

    /// Stops treating a workspace folder as part of the workspace: its files are forgotten
    /// (unless another root holds them) and no longer read. Returns whether an open buffer was
    /// among them: `index_stale_buffers` then puts it back, as buffers from outside the
    /// workspace are indexed too. Quick (no parsing): callable on the async loop.
    pub fn remove_folder(&self, root: &Path) -> bool {
        let forgotten = self.index.remove_root(root);
        tracing::info!(root = %root.display(), files = forgotten.len(), "workspace folder removed");
        let buffers_forgotten = forgotten.iter().any(|path| self.documents.is_open(path));
        if buffers_forgotten {
            self.documents.mark_all_stale();
        }
        buffers_forgotten
    }

    /// Whether pith may read `path` from disk: its real location (symlinks resolved) lies under
    /// a workspace root. A symlink or `..` leading out of the workspace is never followed.
    pub fn readable(&self, path: &Path) -> bool {
        path.canonicalize()
            .is_ok_and(|real| self.in_workspace(&real))
    }

    /// The indexed file behind a URI, after bringing open buffers up to date. Blocking.
    pub fn indexed_file(&self, uri: &Uri) -> Option<Arc<FileIndex>> {
        self.index_stale_buffers();
        let path = uri.to_file_path()?;
        self.index.file(&path)
    }

    /// The text of a document: the open buffer, else the indexed copy, else the disk.
    pub fn snapshot(&self, uri: &Uri) -> Option<TextSnapshot> {
        let path = uri.to_file_path()?.into_owned();
        if let Some(open) = self.documents.get(uri) {
            let text = open.document.text().into();
            return Some(TextSnapshot {
                path,
                text,
                document: open.document,
            });
        }
        let text: Arc<str> = match self.index.file(&path) {
            Some(file) => file.text.clone(),
            None if self.readable(&path) => {
                read_source(&path, self.settings.max_file_bytes)?.into()
            }
            None => return None,
        };
        let document = Document::new(&text, None);
        Some(TextSnapshot {
            path,
            text,
            document,
        })
    }

    /// Converts a client position in `snapshot` to a byte offset (clamped).
    pub fn offset(&self, snapshot: &TextSnapshot, position: lsp::Position) -> usize {
        snapshot
            .document
            .offset_at(documents::from_lsp(position), self.encoding)
    }

    /// Converts a byte offset in `snapshot` to a client position (clamped).
    pub fn position(&self, snapshot: &TextSnapshot, offset: usize) -> lsp::Position {
        documents::to_lsp(snapshot.document.position_at(offset, self.encoding))
    }
}

/// The content of a source file, or None if it is missing, too large, binary or not UTF-8.
pub fn read_source(path: &Path, max_bytes: u64) -> Option<String> {
    crate::index::walk::read_source(path, max_bytes)
        .inspect_err(|reason| tracing::debug!("not indexing {}: {}", path.display(), reason.name()))
        .ok()
}

/// The URI of an absolute path.
pub fn path_uri(path: &Path) -> Option<Uri> {
    Uri::from_file_path(path)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_state_reports_progress_while_a_scan_runs() {
        let scan = ScanState::default();
        assert_eq!(scan.get(), ScanPhase::NotStarted);
        scan.begin();
        assert_eq!(
            scan.get(),
            ScanPhase::Scanning {
                scanned: 0,
                total: 0
            }
        );
        scan.progress(3, 12);
        assert_eq!(
            scan.get(),
            ScanPhase::Scanning {
                scanned: 3,
                total: 12
            }
        );
        scan.end(true);
        assert_eq!(scan.get(), ScanPhase::Ready);
        scan.begin();
        scan.end(false);
        assert_eq!(scan.get(), ScanPhase::Failed);
    }
}
