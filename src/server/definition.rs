//! `textDocument/definition`: the identifier under the cursor, resolved by
//! `WorkspaceIndex::goto_definition`.

use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::documents::LineIndex;
use super::session::{Session, lsp_range, path_uri};
use crate::index::SymbolRef;

pub fn definition(session: &Session, uri: &Uri, position: lsp::Position) -> Vec<lsp::Location> {
    let Some(targets) = resolve_at(session, uri, position) else {
        return Vec::new();
    };
    targets
        .iter()
        .filter_map(|target| {
            let file = &target.file;
            let lines = LineIndex::new(&file.text);
            let range = lsp_range(
                &file.text,
                &lines,
                &target.symbol().name_span,
                session.encoding,
            );
            Some(lsp::Location::new(path_uri(&file.path)?, range))
        })
        .collect()
}

/// The definitions the identifier at a client position may refer to, best first; None when the
/// document is unknown. The position is read against the very text the index holds.
pub fn resolve_at(session: &Session, uri: &Uri, position: lsp::Position) -> Option<Vec<SymbolRef>> {
    let file = session.indexed_file(uri)?;
    let lines = LineIndex::new(&file.text);
    let offset = lines.offset(&file.text, position, session.encoding);
    Some(session.index.goto_definition(&file, offset))
}
