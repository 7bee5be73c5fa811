//! The workspace index: per-file symbols, imports and references, and the global maps built
//! from them (name → definitions, file → importers).
//!
//! Files are parsed by `lang` (tree-sitter plus the queries in `queries/<lang>/`); this module
//! owns the data model and its concurrent updates. The workspace roots can change at runtime
//! (`add_root`, `remove_root`: the editor's workspace folders).

mod resolve;
mod search;
pub mod walk;

pub use walk::{ScanSummary, SkipReason};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;
use smallvec::SmallVec;

use crate::lang::Lang;

/// What a definition is. Kept small and language-neutral; `lang` maps query captures onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolKind {
    Module,
    Class,
    Struct,
    Enum,
    Trait,
    Impl,
    Function,
    Method,
    Constant,
    Field,
    TypeAlias,
    Macro,
}

/// A half-open span of a file: bytes `start_byte..end_byte`, lines `start_line..=end_line`
/// (0-based). Lines are kept beside bytes so that rendering and LSP ranges need no text scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start_byte: usize,
    pub end_byte: usize,
    pub start_line: u32,
    /// Byte column of `start_byte` within its line.
    pub start_col: u32,
    pub end_line: u32,
    /// Byte column of `end_byte` within its line.
    pub end_col: u32,
}

/// One definition in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Shared with the index's name map (and `container` of the symbol's children).
    pub name: Arc<str>,
    pub kind: SymbolKind,
    /// Name of the enclosing class/impl/module/function, if any (`Foo` for `Foo.bar`).
    pub container: Option<Arc<str>>,
    /// Dotted (Python) or `::` (Rust) path from the file's module, e.g. `Session.request`.
    pub qualified_name: Box<str>,
    /// The whole definition, decorators/attributes and doc comments excluded.
    pub span: Span,
    /// Just the name identifier.
    pub name_span: Span,
    /// The header as written, up to the body (`def f(a, b) -> int:` / `pub fn f(a: u8) -> u8`),
    /// whitespace-collapsed onto one line.
    pub signature: Box<str>,
    /// The docstring or doc comment, without quotes or `///` markers.
    pub doc: Option<Box<str>>,
    /// Index into the same file's `symbols` of the parent symbol, for hierarchy.
    pub parent: Option<usize>,
}

/// One import / `use` declaration, flattened to one imported name per entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The module path as written: `os.path`, `.models`, `crate::de` (for `use crate::de::Foo`).
    pub module: String,
    /// The imported name (`Foo` in `from m import Foo`, `use m::Foo`); None for `import m`.
    pub name: Option<String>,
    /// The local alias (`as x`), if any.
    pub alias: Option<String>,
    /// `from m import *` / `use m::*`.
    pub glob: bool,
    pub line: u32,
}

impl Import {
    /// The name this import binds in the file.
    pub fn local_name(&self) -> &str {
        if let Some(alias) = &self.alias {
            return alias;
        }
        match &self.name {
            Some(name) => name,
            None => self
                .module
                .rsplit(['.', ':'])
                .find(|s| !s.is_empty())
                .unwrap_or(&self.module),
        }
    }
}

/// An identifier used (not defined) in a file. An identifier is one token on one line whose
/// text is its name, so its start and the name's length make its whole span: a reference is
/// 32 bytes, and a file's references to one name share one allocation (there are about six
/// references per definition, the largest part of the index after the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: Arc<str>,
    pub start_byte: usize,
    /// 0-based line.
    pub line: u32,
    /// Byte column of `start_byte` within its line.
    pub col: u32,
}

impl Reference {
    pub fn end_byte(&self) -> usize {
        self.start_byte + self.name.len()
    }

    pub fn span(&self) -> Span {
        let len = u32::try_from(self.name.len()).unwrap_or(u32::MAX);
        Span {
            start_byte: self.start_byte,
            end_byte: self.end_byte(),
            start_line: self.line,
            start_col: self.col,
            end_line: self.line,
            end_col: self.col.saturating_add(len),
        }
    }
}

/// Everything the index knows about one file.
#[derive(Debug, Clone)]
pub struct FileIndex {
    /// Absolute path.
    pub path: PathBuf,
    pub lang: Lang,
    /// The text the index was built from: retrieval renders from it without touching the disk.
    pub text: Arc<str>,
    /// Hash of `text`, for caches keyed by content.
    pub content_hash: u64,
    pub symbols: Vec<Symbol>,
    pub imports: Vec<Import>,
    pub references: Vec<Reference>,
    /// Number of ERROR/MISSING nodes in the tree.
    pub parse_errors: usize,
}

impl FileIndex {
    /// A readable outline: one line per definition, indented by nesting (`line:col kind
    /// qualified_name — signature`, the doc's first line under it), then the imports and counts.
    /// What `pith symbols` prints.
    pub fn outline(&self) -> String {
        let file = self;
        let mut out = String::new();
        for symbol in &file.symbols {
            let mut depth = 0;
            let mut parent = symbol.parent;
            while let Some(index) = parent {
                depth += 1;
                parent = file.symbols.get(index).and_then(|s| s.parent);
            }
            out.push_str(&format!(
                "{}{}:{} {} {} — {}\n",
                "  ".repeat(depth),
                symbol.span.start_line + 1,
                symbol.span.start_col + 1,
                symbol.kind.name(),
                symbol.qualified_name,
                symbol.signature
            ));
            if let Some(doc) = &symbol.doc {
                let first = doc.lines().next().unwrap_or("");
                out.push_str(&format!("{}    \"{first}\"\n", "  ".repeat(depth)));
            }
        }
        for import in &file.imports {
            out.push_str(&format!(
                "import {}:{} module={} name={} alias={}{}\n",
                import.line + 1,
                import.local_name(),
                import.module,
                import.name.as_deref().unwrap_or("-"),
                import.alias.as_deref().unwrap_or("-"),
                if import.glob { " glob" } else { "" }
            ));
        }
        out.push_str(&format!(
            "{} symbols, {} imports, {} references, {} parse errors\n",
            file.symbols.len(),
            file.imports.len(),
            file.references.len(),
            file.parse_errors
        ));
        out
    }
}

impl SymbolKind {
    /// Lower-case name, as printed by the CLI.
    pub fn name(self) -> &'static str {
        match self {
            SymbolKind::Module => "module",
            SymbolKind::Class => "class",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::Trait => "trait",
            SymbolKind::Impl => "impl",
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Constant => "constant",
            SymbolKind::Field => "field",
            SymbolKind::TypeAlias => "type",
            SymbolKind::Macro => "macro",
        }
    }
}

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
