//! The syntax facts of one file, as `lang` extracts them and `index` stores them: definitions
//! (`Symbol`, `SymbolKind`), their `Span`s, `Import`s and `Reference`s. Plain data, no parsing:
//! the bottom of the core, so that `lang` and `index` share it without depending on each other.

use std::sync::Arc;

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
