//! `FileIndex`: everything `lang` extracts from one file, what the index stores per file.

use std::path::PathBuf;
use std::sync::Arc;

use super::Lang;
use crate::syntax::{Import, Reference, Symbol};

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
