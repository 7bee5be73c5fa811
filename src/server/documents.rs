//! Open documents at the protocol boundary.
//!
//! The editor's buffers live here (`DocumentStore`), keyed by URI, each a `text::Document` (rope,
//! version and incrementally reparsed tree) with the version the index last saw. Edits are
//! applied synchronously, in arrival order, and a version never goes backwards. Position
//! conversion is `text::Document`'s, in the negotiated encoding; this file only translates
//! between the LSP types and the core's.

use std::path::PathBuf;
use std::sync::Arc;

use dashmap::DashMap;
use tower_lsp_server::ls_types::{self as lsp, Uri};

use crate::index::FileIndex;
use crate::lang::Lang;
use crate::text::{self, Document, PositionEncoding, TextError};

/// One buffer the editor holds open.
#[derive(Debug, Clone)]
pub struct OpenDocument {
    /// The file path, when the URI is a `file:` URI.
    pub path: Option<PathBuf>,
    pub language_id: String,
    /// Text, client version and (for Python and Rust files) the syntax tree.
    pub document: Document,
    /// The version last handed to the index, if any.
    pub indexed_version: Option<i32>,
    /// What the index made of `indexed_version`: the base that the next edits re-analyze
    /// incrementally (`lang::reanalyze`) instead of analyzing the whole buffer again.
    pub analysis: Option<Arc<FileIndex>>,
}

impl OpenDocument {
    pub fn version(&self) -> i32 {
        self.document.version
    }
}

/// Why an edit was not applied; the buffer is left as it was.
#[derive(Debug, PartialEq, Eq)]
pub enum EditError {
    UnknownDocument,
    /// The edit's version is not newer than the buffer's (a reordered or replayed message).
    StaleVersion {
        current: i32,
        received: i32,
    },
    /// The core refused the changes (an inverted range).
    Refused(TextError),
}

/// All open documents. Every method is synchronous: callers never hold an entry across `.await`.
#[derive(Debug, Default)]
pub struct DocumentStore {
    documents: DashMap<Uri, OpenDocument>,
}

impl DocumentStore {
    pub fn open(&self, uri: Uri, language_id: String, version: i32, text: String) {
        let path = uri.to_file_path().map(|path| path.into_owned());
        let lang = path.as_deref().and_then(Lang::from_path);
        let mut document = Document::new(&text, lang);
        document.version = version;
        self.documents.insert(
            uri,
            OpenDocument {
                path,
                language_id,
                document,
                indexed_version: None,
                analysis: None,
            },
        );
    }

    pub fn close(&self, uri: &Uri) -> Option<OpenDocument> {
        self.documents.remove(uri).map(|(_, document)| document)
    }

    /// A snapshot of the document (cheap: the text is shared).
    pub fn get(&self, uri: &Uri) -> Option<OpenDocument> {
        self.documents.get(uri).map(|entry| entry.clone())
    }

    /// The open document backed by this file, if any.
    pub fn find_by_path(&self, path: &std::path::Path) -> Option<(Uri, OpenDocument)> {
        self.documents
            .iter()
            .find(|entry| entry.path.as_deref() == Some(path))
            .map(|entry| (entry.key().clone(), entry.value().clone()))
    }

    pub fn is_open(&self, path: &std::path::Path) -> bool {
        self.documents
            .iter()
            .any(|entry| entry.path.as_deref() == Some(path))
    }

    /// URIs whose current version the index has not seen yet.
    pub fn stale(&self) -> Vec<Uri> {
        self.documents
            .iter()
            .filter(|entry| entry.path.is_some() && entry.indexed_version != Some(entry.version()))
            .map(|entry| entry.key().clone())
            .collect()
    }

    /// Forgets what the index saw, so that every buffer is indexed again (after a disk scan).
    pub fn mark_all_stale(&self) {
        for mut entry in self.documents.iter_mut() {
            entry.indexed_version = None;
        }
    }

    /// Records that the index now holds `version` of the document (unless it moved on since).
    /// Records that `version` of the buffer is in the index as `analysis`. Ignored when newer
    /// edits arrived meanwhile: their tree edits must stay pending for the next re-analysis.
    pub fn mark_indexed(&self, uri: &Uri, version: i32, analysis: Arc<FileIndex>) {
        if let Some(mut entry) = self.documents.get_mut(uri) {
            if entry.version() == version {
                entry.indexed_version = Some(version);
                entry.analysis = Some(analysis);
                entry.document.mark_analyzed();
            }
        }
    }

    /// Applies `didChange` content changes in order, all or none, and reparses incrementally.
    pub fn apply_changes(
        &self,
        uri: &Uri,
        version: i32,
        changes: &[lsp::TextDocumentContentChangeEvent],
        encoding: PositionEncoding,
    ) -> Result<(), EditError> {
        let mut entry = self
            .documents
            .get_mut(uri)
            .ok_or(EditError::UnknownDocument)?;
        if version <= entry.version() {
            return Err(EditError::StaleVersion {
                current: entry.version(),
                received: version,
            });
        }
        let changes: Vec<text::Change> = changes
            .iter()
            .map(|change| text::Change {
                range: change
                    .range
                    .map(|range| (from_lsp(range.start), from_lsp(range.end))),
                text: change.text.clone(),
            })
            .collect();
        entry
            .document
            .apply_changes(&changes, encoding)
            .map_err(EditError::Refused)?;
        entry.document.version = version;
        Ok(())
    }
}

/// A client position as the core takes it.
pub fn from_lsp(position: lsp::Position) -> text::Position {
    text::Position {
        line: position.line,
        character: position.character,
    }
}

/// A core position as the client takes it.
pub fn to_lsp(position: text::Position) -> lsp::Position {
    lsp::Position::new(position.line, position.character)
}

/// The client range of a core span of `document`'s text, clamped into it.
pub fn lsp_range(
    document: &Document,
    span: &crate::index::Span,
    encoding: PositionEncoding,
) -> lsp::Range {
    lsp::Range::new(
        to_lsp(document.position_at(span.start_byte, encoding)),
        to_lsp(document.position_at(span.end_byte, encoding)),
    )
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// (start line, start column), (end line, end column), new text; columns in UTF-16.
    type Edit<'a> = ((u32, u32), (u32, u32), &'a str);

    /// Applies each change to `input` in order and shows the result.
    fn check_edits(input: &str, changes: &[Edit<'_>], expect: Expect) {
        let store = DocumentStore::default();
        let uri: Uri = "file:///tmp/edit.py".parse().unwrap();
        store.open(uri.clone(), "python".into(), 1, input.into());
        for (version, ((l1, c1), (l2, c2), text)) in changes.iter().enumerate() {
            let change = lsp::TextDocumentContentChangeEvent {
                range: Some(lsp::Range::new(
                    lsp::Position::new(*l1, *c1),
                    lsp::Position::new(*l2, *c2),
                )),
                range_length: None,
                text: (*text).into(),
            };
            store
                .apply_changes(&uri, version as i32 + 2, &[change], PositionEncoding::Utf16)
                .unwrap();
        }
        let document = store.get(&uri).unwrap().document;
        // The tree follows the edits: it covers the new text.
        let tree = document.tree().unwrap();
        assert_eq!(tree.root_node().end_byte(), document.text().len());
        expect.assert_eq(&document.text());
    }

    #[test]
    fn edits_over_non_ascii_text_use_utf16_columns() {
        check_edits(
            "s = \"🌍 naïve\"\nx = 1\n",
            // 🌍 is two UTF-16 units: column 8 is after "🌍 ".
            &[((0, 8), (0, 13), "wise"), ((1, 0), (1, 1), "größe")],
            expect![[r#"
                s = "🌍 wise"
                größe = 1
            "#]],
        );
    }

    #[test]
    fn out_of_range_edits_clamp() {
        check_edits(
            "ab\ncd",
            &[((0, 99), (0, 120), "!"), ((7, 0), (9, 9), "?")],
            expect![[r#"
                ab!
                cd?"#]],
        );
    }

    #[test]
    fn an_inverted_range_is_refused_and_loses_nothing() {
        let store = DocumentStore::default();
        let uri: Uri = "file:///tmp/inverted.py".parse().unwrap();
        store.open(uri.clone(), "python".into(), 1, "ab\ncd".into());
        let change = |(l1, c1), (l2, c2), text: &str| lsp::TextDocumentContentChangeEvent {
            range: Some(lsp::Range::new(
                lsp::Position::new(l1, c1),
                lsp::Position::new(l2, c2),
            )),
            range_length: None,
            text: text.into(),
        };
        let refused = store.apply_changes(
            &uri,
            2,
            &[change((0, 0), (0, 1), "X"), change((1, 1), (0, 1), "-")],
            PositionEncoding::Utf16,
        );
        assert!(matches!(refused, Err(EditError::Refused(_))), "{refused:?}");
        let document = store.get(&uri).unwrap();
        assert_eq!(
            (document.document.text().as_str(), document.version()),
            ("ab\ncd", 1)
        );
    }

    #[test]
    fn versions_never_go_backwards() {
        let store = DocumentStore::default();
        let uri: Uri = "file:///tmp/v.py".parse().unwrap();
        store.open(uri.clone(), "python".into(), 5, "old".into());
        let full = |text: &str| lsp::TextDocumentContentChangeEvent {
            range: None,
            range_length: None,
            text: text.into(),
        };
        assert_eq!(
            store.apply_changes(&uri, 4, &[full("older")], PositionEncoding::Utf16),
            Err(EditError::StaleVersion {
                current: 5,
                received: 4
            })
        );
        store
            .apply_changes(&uri, 6, &[full("new")], PositionEncoding::Utf16)
            .unwrap();
        assert_eq!(store.get(&uri).unwrap().document.text(), "new");
    }

    fn check_positions(text: &str, encoding: PositionEncoding, expect: Expect) {
        let document = Document::new(text, None);
        let mut out = String::new();
        for (line, character) in [(0, 0), (0, 2), (0, 3), (0, 99), (1, 1), (5, 0)] {
            let offset =
                document.offset_at(from_lsp(lsp::Position::new(line, character)), encoding);
            let back = to_lsp(document.position_at(offset, encoding));
            out.push_str(&format!(
                "({line},{character}) -> {offset} -> ({},{})\n",
                back.line, back.character
            ));
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn positions_round_trip_in_both_encodings() {
        check_positions(
            "a🌍b\r\nxé\n",
            PositionEncoding::Utf16,
            expect![[r#"
                (0,0) -> 0 -> (0,0)
                (0,2) -> 1 -> (0,1)
                (0,3) -> 5 -> (0,3)
                (0,99) -> 6 -> (0,4)
                (1,1) -> 9 -> (1,1)
                (5,0) -> 12 -> (2,0)
            "#]],
        );
        check_positions(
            "a🌍b\r\nxé\n",
            PositionEncoding::Utf8,
            expect![[r#"
                (0,0) -> 0 -> (0,0)
                (0,2) -> 1 -> (0,1)
                (0,3) -> 1 -> (0,1)
                (0,99) -> 6 -> (0,6)
                (1,1) -> 9 -> (1,1)
                (5,0) -> 12 -> (2,0)
            "#]],
        );
    }
}
