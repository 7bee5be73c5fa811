//! The workspace index: per-file symbols, imports and references, and the global maps built
//! from them (name → definitions, file → importers).
//!
//! Files are parsed by `lang` (tree-sitter plus the queries in `queries/<lang>/`); this module
//! owns the data model and its concurrent updates.

use std::path::PathBuf;
use std::sync::Arc;

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
    pub name: String,
    pub kind: SymbolKind,
    /// Name of the enclosing class/impl/module/function, if any (`Foo` for `Foo.bar`).
    pub container: Option<String>,
    /// Dotted (Python) or `::` (Rust) path from the file's module, e.g. `Session.request`.
    pub qualified_name: String,
    /// The whole definition, decorators/attributes and doc comments excluded.
    pub span: Span,
    /// Just the name identifier.
    pub name_span: Span,
    /// The header as written, up to the body (`def f(a, b) -> int:` / `pub fn f(a: u8) -> u8`),
    /// whitespace-collapsed onto one line.
    pub signature: String,
    /// The docstring or doc comment, without quotes or `///` markers.
    pub doc: Option<String>,
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

/// An identifier used (not defined) in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub span: Span,
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
#[derive(Debug, Default)]
pub struct WorkspaceIndex {
    // Implementation detail of the index issue.
}

impl WorkspaceIndex {
    pub fn new(_roots: Vec<PathBuf>, _options: IndexOptions) -> Self {
        todo!("index issue")
    }

    /// Workspace roots, absolute.
    pub fn roots(&self) -> Vec<PathBuf> {
        todo!("index issue")
    }

    /// Index (or re-index) one file from the given text; replaces any older entry.
    pub fn update_file(&self, _path: &std::path::Path, _text: &str) -> Option<Arc<FileIndex>> {
        todo!("index issue")
    }

    /// Forget a file (deleted or renamed away).
    pub fn remove_file(&self, _path: &std::path::Path) {
        todo!("index issue")
    }

    pub fn file(&self, _path: &std::path::Path) -> Option<Arc<FileIndex>> {
        todo!("index issue")
    }

    /// All indexed files, in no particular order.
    pub fn files(&self) -> Vec<Arc<FileIndex>> {
        todo!("index issue")
    }

    /// All definitions with exactly this name, across the workspace.
    pub fn definitions(&self, _name: &str) -> Vec<SymbolRef> {
        todo!("index issue")
    }

    /// Files whose imports resolve to `path`.
    pub fn importers(&self, _path: &std::path::Path) -> Vec<PathBuf> {
        todo!("index issue")
    }
}
