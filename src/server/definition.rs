//! `textDocument/definition`: the identifier under the cursor, resolved through the index.
//!
//! Until `WorkspaceIndex::goto_definition` lands in the core, `resolve` looks the identifier up
//! by name and orders the candidates: the definition under the cursor itself, then those in the
//! same file, then top-level ones (what an import can bind), then the rest.

use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::documents::LineIndex;
use super::session::{Session, lsp_range, path_uri};
use crate::index::{FileIndex, SymbolRef};

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
/// document is unknown or the cursor is not on an identifier.
pub fn resolve_at(session: &Session, uri: &Uri, position: lsp::Position) -> Option<Vec<SymbolRef>> {
    let file = session.indexed_file(uri)?;
    let snapshot = session.snapshot(uri)?;
    let offset = session.offset(&snapshot, position);
    // The index may lag the buffer by an edit; only trust it when it has this very text.
    if *file.text != *snapshot.text {
        return Some(resolve_name(
            session,
            &file,
            identifier_at(&snapshot.text, offset)?.1,
        ));
    }
    if let Some(index) = file.symbols.iter().position(|symbol| {
        symbol.name_span.start_byte <= offset && offset <= symbol.name_span.end_byte
    }) {
        return Some(vec![SymbolRef { file, index }]);
    }
    let (_, name) = identifier_at(&file.text, offset)?;
    Some(resolve_name(session, &file, name))
}

fn resolve_name(session: &Session, from: &std::sync::Arc<FileIndex>, name: &str) -> Vec<SymbolRef> {
    let mut candidates = session.index.definitions(name);
    let rank = |candidate: &SymbolRef| {
        if candidate.file.path == from.path {
            0
        } else if candidate.symbol().parent.is_none() {
            1
        } else {
            2
        }
    };
    candidates.sort_by_key(|candidate| (rank(candidate), candidate.file.path.clone()));
    if let Some(best) = candidates.first().map(rank) {
        candidates.retain(|candidate| rank(candidate) == best);
    }
    candidates
}

/// The identifier touching `offset` (a cursor just after a name counts), with its start.
pub fn identifier_at(text: &str, offset: usize) -> Option<(usize, &str)> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident(c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|&(_, c)| !is_ident(c))
        .map_or(text.len(), |(i, _)| offset + i);
    let word = &text[start..end];
    (!word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit())).then_some((start, word))
}

#[cfg(test)]
mod tests {
    use super::identifier_at;

    #[test]
    fn identifier_at_finds_unicode_names_and_touching_cursors() {
        let text = "x = größe_of(user) + 1";
        assert_eq!(identifier_at(text, 4), Some((4, "größe_of")));
        assert_eq!(identifier_at(text, 7), Some((4, "größe_of")));
        assert_eq!(identifier_at(text, 1), Some((0, "x")));
        assert_eq!(identifier_at(text, 2), None);
        assert_eq!(identifier_at(text, text.len()), None);
        assert_eq!(identifier_at(text, 999), None);
        assert_eq!(identifier_at(text, 14), Some((4, "größe_of")));
        assert_eq!(identifier_at(text, 15), Some((15, "user")));
    }
}
