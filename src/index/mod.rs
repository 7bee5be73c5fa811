//! The workspace index: per-file symbols, imports and references, and the global maps built
//! from them (name → definitions, file → importers).
//!
//! Files are parsed and analyzed by `lang` (tree-sitter plus the queries in `queries/<lang>/`)
//! into a `FileIndex` of `syntax` facts, both re-exported here; this module owns the global maps
//! and their concurrent updates. The workspace roots can change at runtime
//! (`add_root`, `remove_root`: the editor's workspace folders).

mod resolve;
pub(crate) use resolve::python_bases;
mod search;
pub mod walk;

pub use walk::{ScanSummary, SkipReason};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;
use smallvec::SmallVec;

pub use crate::lang::FileIndex;
pub use crate::syntax::{Import, Reference, Span, Symbol, SymbolKind};

use crate::lang::Lang;

/// A definition found through the global maps: the file it lives in and its position there.
#[derive(Debug, Clone)]
pub struct SymbolRef {
    pub file: Arc<FileIndex>,
    pub index: usize,
}

impl SymbolRef {
    pub fn symbol(&self) -> &Symbol {
        &self.file.symbols[self.index]
    }
}

/// Options of a workspace scan.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Files larger than this are skipped (default 1 MB).
    pub max_file_bytes: u64,
    /// Extra glob patterns to exclude (gitignore syntax).
    pub exclude: Vec<String>,
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: 1 << 20,
            exclude: Vec::new(),
        }
    }
}

/// The live index of all workspace roots. Cheap to share (`Arc<WorkspaceIndex>`); every method
/// takes `&self` and is safe to call while other threads update it.
///
/// Concurrency: the maps are `DashMap`s (sharded locks), so readers never wait for a whole
/// update, only for the shard they touch. Writers (`update_file`, `remove_file`) are serialized
/// by one mutex so that the per-file map and the name map never disagree for long; parsing and
/// analysis happen before that lock is taken, so a parallel scan only serializes the cheap map
/// insertions. A reader may see a file's new entry before its names are re-registered; every
/// `SymbolRef` carries the `Arc<FileIndex>` it was found in, so what it points at is always
/// consistent. The roots sit behind their own lock, taken only briefly and never while the
/// writer mutex is waited for.
#[derive(Debug, Default)]
pub struct WorkspaceIndex {
    /// Absolute (canonical where the path exists), without duplicates.
    roots: RwLock<Vec<PathBuf>>,
    options: IndexOptions,
    files: DashMap<PathBuf, Arc<FileIndex>>,
    /// Most names have one definition: it is held inline, with no allocation of its own.
    by_name: DashMap<Arc<str>, SmallVec<[SymbolRef; 1]>>,
    writer: Mutex<()>,
    /// Bumped on every change; caches derived from the whole index compare it.
    generation: AtomicU64,
    /// Bumped when a file appears or disappears (import resolution depends on the file set).
    file_set_generation: AtomicU64,
    resolve_cache: resolve::ResolveCache,
    search_list: search::SearchCache,
}

impl WorkspaceIndex {
    pub fn new(roots: Vec<PathBuf>, options: IndexOptions) -> Self {
        let mut unique: Vec<PathBuf> = Vec::new();
        for root in roots.into_iter().map(absolute_root) {
            if !unique.contains(&root) {
                unique.push(root);
            }
        }
        Self {
            roots: RwLock::new(unique),
            options,
            ..Self::default()
        }
    }

    /// Workspace roots, absolute.
    pub fn roots(&self) -> Vec<PathBuf> {
        self.roots
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Whether `path` lies under one of the current roots.
    pub fn in_roots(&self, path: &Path) -> bool {
        self.roots
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .any(|root| path.starts_with(root))
    }

    /// Adds a workspace root (canonicalized like those given to `new`) and returns it as
    /// stored; None if it was already a root. Nothing is indexed: scan it with `scan_roots`.
    pub fn add_root(&self, root: &Path) -> Option<PathBuf> {
        let root = absolute_root(root.to_path_buf());
        {
            let mut roots = self.roots_mut();
            if roots.contains(&root) {
                return None;
            }
            roots.push(root.clone());
        }
        self.roots_changed();
        Some(root)
    }

    /// Removes a workspace root and forgets every indexed file under it that no remaining
    /// root holds; returns the forgotten paths (empty if it was not a root).
    pub fn remove_root(&self, root: &Path) -> Vec<PathBuf> {
        let root = absolute_root(root.to_path_buf());
        {
            let mut roots = self.roots_mut();
            let before = roots.len();
            roots.retain(|kept| *kept != root);
            if roots.len() == before {
                return Vec::new();
            }
        }
        self.roots_changed();
        self.forget_outside_roots(&root)
    }

    fn roots_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<PathBuf>> {
        self.roots
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Python module names are relative to the roots: resolution caches start over.
    fn roots_changed(&self) {
        self.file_set_generation.fetch_add(1, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets the indexed files under `dir` that lie under no current root; returns them.
    /// Also what cleans up after a scan that raced with the removal of its root.
    pub fn forget_outside_roots(&self, dir: &Path) -> Vec<PathBuf> {
        let doomed: Vec<PathBuf> = self
            .files
            .iter()
            .map(|entry| entry.key().clone())
            .filter(|path| path.starts_with(dir) && !self.in_roots(path))
            .collect();
        for path in &doomed {
            self.remove_file(path);
        }
        doomed
    }

    pub fn options(&self) -> &IndexOptions {
        &self.options
    }

    /// Index (or re-index) one file from the given text; replaces any older entry. None when
    /// the path is not of a supported language.
    pub fn update_file(&self, path: &Path, text: &str) -> Option<Arc<FileIndex>> {
        let lang = Lang::from_path(path)?;
        let tree = crate::lang::parse(lang, text, None)?;
        Some(self.update_parsed(path, lang, text, &tree))
    }

    /// Like `update_file`, with a tree the caller already has (an open document's incremental
    /// tree), so nothing is parsed twice.
    pub fn update_parsed(
        &self,
        path: &Path,
        lang: Lang,
        text: &str,
        tree: &tree_sitter::Tree,
    ) -> Arc<FileIndex> {
        let file = Arc::new(crate::lang::analyze(path, lang, text, tree));
        self.insert(file.clone());
        file
    }

    /// Adds an analyzed file, replacing any older entry for its path.
    pub fn insert(&self, file: Arc<FileIndex>) {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let old = self.files.insert(file.path.clone(), file.clone());
        if let Some(old) = &old {
            self.unregister_names(old);
        } else {
            self.file_set_generation.fetch_add(1, Ordering::SeqCst);
        }
        for (index, symbol) in file.symbols.iter().enumerate() {
            self.by_name
                .entry(symbol.name.clone())
                .or_default()
                .push(SymbolRef {
                    file: file.clone(),
                    index,
                });
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn unregister_names(&self, old: &Arc<FileIndex>) {
        for symbol in &old.symbols {
            let now_empty = match self.by_name.get_mut(&*symbol.name) {
                Some(mut refs) => {
                    refs.retain(|r| !Arc::ptr_eq(&r.file, old));
                    refs.is_empty()
                }
                None => false,
            };
            if now_empty {
                self.by_name
                    .remove_if(&*symbol.name, |_, refs| refs.is_empty());
            }
        }
    }

    /// Forget a file (deleted or renamed away).
    pub fn remove_file(&self, path: &Path) {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, old)) = self.files.remove(path) {
            self.unregister_names(&old);
            self.file_set_generation.fetch_add(1, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub fn file(&self, path: &Path) -> Option<Arc<FileIndex>> {
        self.files.get(path).map(|entry| entry.value().clone())
    }

    /// All indexed files, in no particular order.
    pub fn files(&self) -> Vec<Arc<FileIndex>> {
        self.files
            .iter()
            .map(|entry| entry.value().clone())
            .collect()
    }

    /// Number of indexed files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// All definitions with exactly this name, across the workspace.
    pub fn definitions(&self, name: &str) -> Vec<SymbolRef> {
        self.by_name
            .get(name)
            .map(|refs| refs.value().to_vec())
            .unwrap_or_default()
    }

    /// A counter that changes whenever the index does; for callers' own caches.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// A root as stored: canonical if it exists (so that prefix tests on canonical paths work with
/// symlinked directories), else made absolute.
fn absolute_root(root: PathBuf) -> PathBuf {
    std::fs::canonicalize(&root)
        .or_else(|_| std::path::absolute(&root))
        .unwrap_or(root)
}
