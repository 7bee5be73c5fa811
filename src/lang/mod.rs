//! The language registry: for each supported language its tree-sitter grammar, its queries
//! (compiled in from `queries/<lang>/*.scm`, overridable from the config directory) and its file
//! extensions. Adding a language is a folder of queries plus one entry here.

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    Python,
    Rust,
}

impl Lang {
    /// The language of a path, from its extension.
    pub fn from_path(path: &std::path::Path) -> Option<Lang> {
        match path.extension()?.to_str()? {
            "py" | "pyi" => Some(Lang::Python),
            "rs" => Some(Lang::Rust),
            _ => None,
        }
    }

    /// The LSP language id / the name used in config files and queries folders.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Rust => "rust",
        }
    }
}
