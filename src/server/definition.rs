//! `textDocument/definition`: the identifier under the cursor, resolved by
//! `WorkspaceIndex::goto_definition`.

use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::documents::lsp_range;
use super::session::{Session, path_uri};
use super::shared::resolve_at;
use crate::text::Document;

pub fn definition(session: &Session, uri: &Uri, position: lsp::Position) -> Vec<lsp::Location> {
    let Some(targets) = resolve_at(session, uri, position) else {
        return Vec::new();
    };
    targets
        .iter()
        .filter_map(|target| {
            let file = &target.file;
            let text = Document::new(&file.text, None);
            let range = lsp_range(&text, &target.symbol().name_span, session.encoding);
            Some(lsp::Location::new(path_uri(&file.path)?, range))
        })
        .collect()
}
