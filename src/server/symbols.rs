//! `textDocument/documentSymbol` (hierarchical, from `Symbol::parent`) and `workspace/symbol`.

use std::collections::HashMap;
use std::path::PathBuf;

use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::documents::lsp_range;
use super::session::{Session, path_uri};
use crate::index::{FileIndex, SymbolKind};
use crate::text::Document;

/// At most this many `workspace/symbol` results: a picker shows a screenful anyway.
const MAX_WORKSPACE_SYMBOLS: usize = 256;

pub fn document_symbols(session: &Session, uri: &Uri) -> Vec<lsp::DocumentSymbol> {
    let Some(file) = session.indexed_file(uri) else {
        return Vec::new();
    };
    let text = Document::new(&file.text, None);
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); file.symbols.len()];
    let mut roots = Vec::new();
    // Broken code can yield a symbol with no name, which clients reject (the spec forbids
    // blank names): it is left out, and its children move up to its nearest named ancestor.
    let named = |index: usize| !file.symbols[index].name.trim().is_empty();
    let named_parent = |mut index: usize| loop {
        match file.symbols[index].parent.filter(|&parent| parent < index) {
            Some(parent) if named(parent) => return Some(parent),
            Some(parent) => index = parent,
            None => return None,
        }
    };
    for index in (0..file.symbols.len()).filter(|&index| named(index)) {
        match named_parent(index) {
            Some(parent) => children[parent].push(index),
            None => roots.push(index),
        }
    }
    roots
        .into_iter()
        .map(|index| build(session, &file, &text, &children, index))
        .collect()
}

/// Parents precede their children (checked above), so the recursion is bounded by the file.
fn build(
    session: &Session,
    file: &FileIndex,
    text: &Document,
    children: &[Vec<usize>],
    index: usize,
) -> lsp::DocumentSymbol {
    let symbol = &file.symbols[index];
    let range = lsp_range(text, &symbol.span, session.encoding);
    let mut selection_range = lsp_range(text, &symbol.name_span, session.encoding);
    // Clients reject a selection outside the symbol's range.
    if selection_range.start < range.start || selection_range.end > range.end {
        selection_range = lsp::Range::new(range.start, range.start);
    }
    let kids: Vec<lsp::DocumentSymbol> = children[index]
        .iter()
        .map(|&child| build(session, file, text, children, child))
        .collect();
    #[allow(deprecated)]
    lsp::DocumentSymbol {
        name: symbol.name.to_string(),
        detail: Some(symbol.signature.to_string()).filter(|s| !s.is_empty()),
        kind: lsp_kind(symbol.kind),
        tags: None,
        deprecated: None,
        range,
        selection_range,
        children: (!kids.is_empty()).then_some(kids),
    }
}

/// Fuzzy search over every symbol name in the workspace, best first.
pub fn workspace_symbols(session: &Session, query: &str) -> Vec<lsp::WorkspaceSymbol> {
    session.index_stale_buffers();
    // Hits cluster in few files: build each file's rope once.
    let mut texts: HashMap<PathBuf, Document> = HashMap::new();
    session
        .index
        .search_symbols(query, MAX_WORKSPACE_SYMBOLS)
        .into_iter()
        .filter_map(|hit| {
            let symbol = hit.symbol();
            if symbol.name.trim().is_empty() {
                return None;
            }
            let file = &hit.file;
            let text = texts
                .entry(file.path.clone())
                .or_insert_with(|| Document::new(&file.text, None));
            let range = lsp_range(text, &symbol.name_span, session.encoding);
            Some(lsp::WorkspaceSymbol {
                name: symbol.name.to_string(),
                kind: lsp_kind(symbol.kind),
                tags: None,
                container_name: symbol.container.as_deref().map(str::to_string),
                location: lsp::OneOf::Left(lsp::Location::new(path_uri(&file.path)?, range)),
                data: None,
            })
        })
        .collect()
}

pub fn lsp_kind(kind: SymbolKind) -> lsp::SymbolKind {
    match kind {
        SymbolKind::Module => lsp::SymbolKind::MODULE,
        SymbolKind::Class => lsp::SymbolKind::CLASS,
        SymbolKind::Struct => lsp::SymbolKind::STRUCT,
        SymbolKind::Enum => lsp::SymbolKind::ENUM,
        SymbolKind::Trait => lsp::SymbolKind::INTERFACE,
        SymbolKind::Impl => lsp::SymbolKind::NAMESPACE,
        SymbolKind::Function => lsp::SymbolKind::FUNCTION,
        SymbolKind::Method => lsp::SymbolKind::METHOD,
        SymbolKind::Constant => lsp::SymbolKind::CONSTANT,
        SymbolKind::Field => lsp::SymbolKind::FIELD,
        SymbolKind::TypeAlias => lsp::SymbolKind::TYPE_PARAMETER,
        SymbolKind::Macro => lsp::SymbolKind::FUNCTION,
    }
}
