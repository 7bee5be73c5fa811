//! Open documents and position conversion at the protocol boundary.
//!
//! The editor's buffers live here (`DocumentStore`), keyed by URI, each with its version and the
//! version the index last saw. Edits are applied synchronously, in arrival order, and a version
//! never goes backwards. `LineIndex` converts between the client's positions (UTF-16 or UTF-8
//! columns, negotiated) and the byte offsets / (line, byte column) pairs the core uses; every
//! conversion clamps, so an out-of-range position lands on the nearest valid place.
//!
//! When `text::Document` lands in the core, `LineIndex` and the edit code move behind it.

use std::path::PathBuf;
use std::sync::Arc;

use dashmap::DashMap;
use tower_lsp_server::ls_types::{self as lsp, Uri};

use crate::text::PositionEncoding;

/// One buffer the editor holds open.
#[derive(Debug, Clone)]
pub struct OpenDocument {
    /// The file path, when the URI is a `file:` URI.
    pub path: Option<PathBuf>,
    pub language_id: String,
    pub version: i32,
    pub text: Arc<str>,
    /// The version last handed to the index, if any.
    pub indexed_version: Option<i32>,
}

/// Why an edit was not applied.
#[derive(Debug, PartialEq, Eq)]
pub enum EditError {
    UnknownDocument,
    /// The edit's version is not newer than the buffer's (a reordered or replayed message).
    StaleVersion {
        current: i32,
        received: i32,
    },
}

/// All open documents. Every method is synchronous: callers never hold an entry across `.await`.
#[derive(Debug, Default)]
pub struct DocumentStore {
    documents: DashMap<Uri, OpenDocument>,
}

impl DocumentStore {
    pub fn open(&self, uri: Uri, language_id: String, version: i32, text: String) {
        let path = uri.to_file_path().map(|path| path.into_owned());
        self.documents.insert(
            uri,
            OpenDocument {
                path,
                language_id,
                version,
                text: text.into(),
                indexed_version: None,
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
            .filter(|entry| entry.path.is_some() && entry.indexed_version != Some(entry.version))
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
    pub fn mark_indexed(&self, uri: &Uri, version: i32) {
        if let Some(mut entry) = self.documents.get_mut(uri) {
            if entry.version == version {
                entry.indexed_version = Some(version);
            }
        }
    }

    /// Applies `didChange` content changes in order.
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
        if version <= entry.version {
            return Err(EditError::StaleVersion {
                current: entry.version,
                received: version,
            });
        }
        let mut text = String::from(&*entry.text);
        for change in changes {
            apply_change(&mut text, change, encoding);
        }
        entry.text = text.into();
        entry.version = version;
        Ok(())
    }
}

/// Applies one change; a range is clamped to the text and its ends put in order.
fn apply_change(
    text: &mut String,
    change: &lsp::TextDocumentContentChangeEvent,
    encoding: PositionEncoding,
) {
    match change.range {
        None => {
            text.clone_from(&change.text);
        }
        Some(range) => {
            let lines = LineIndex::new(text);
            let start = lines.offset(text, range.start, encoding);
            let end = lines.offset(text, range.end, encoding);
            let (start, end) = (start.min(end), start.max(end));
            text.replace_range(start..end, &change.text);
        }
    }
}

/// Line starts of a text, for conversions in both directions without rescanning.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Self { starts }
    }

    /// The byte range of line `line`'s content, without its line break; None past the end.
    fn line_range(&self, text: &str, line: usize) -> Option<(usize, usize)> {
        let start = *self.starts.get(line)?;
        let mut end = self
            .starts
            .get(line + 1)
            .map_or(text.len(), |next| next - 1);
        if end > start && text.as_bytes()[end - 1] == b'\r' {
            end -= 1;
        }
        Some((start, end))
    }

    /// The byte offset of a client position, clamped to the line's end and the text's end, and
    /// rounded down to a character boundary.
    pub fn offset(&self, text: &str, position: lsp::Position, encoding: PositionEncoding) -> usize {
        let Some((start, end)) = self.line_range(text, position.line as usize) else {
            return text.len();
        };
        let line = &text[start..end];
        let wanted = position.character as usize;
        let mut units = 0;
        for (byte, ch) in line.char_indices() {
            if units >= wanted {
                return start + byte;
            }
            units += match encoding {
                PositionEncoding::Utf8 => ch.len_utf8(),
                PositionEncoding::Utf16 => ch.len_utf16(),
                PositionEncoding::Utf32 => 1,
            };
            if units > wanted {
                // Inside a character: stay at its start.
                return start + byte;
            }
        }
        end
    }

    /// The client position of a (line, byte column) pair; the column is clamped to the line.
    pub fn position(
        &self,
        text: &str,
        line: u32,
        byte_column: u32,
        encoding: PositionEncoding,
    ) -> lsp::Position {
        let Some((start, end)) = self.line_range(text, line as usize) else {
            let last = self.starts.len().saturating_sub(1);
            return match self.line_range(text, last) {
                Some((start, end)) => {
                    lsp::Position::new(last as u32, units(&text[start..end], end - start, encoding))
                }
                None => lsp::Position::new(0, 0),
            };
        };
        let line_text = &text[start..end];
        lsp::Position::new(line, units(line_text, byte_column as usize, encoding))
    }

    /// The client position of a byte offset.
    pub fn position_of_offset(
        &self,
        text: &str,
        offset: usize,
        encoding: PositionEncoding,
    ) -> lsp::Position {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&start| start <= offset) - 1;
        let column = offset - self.starts[line];
        self.position(text, line as u32, column as u32, encoding)
    }
}

/// Code units of `line[..byte_column]` in `encoding`; the column is clamped and rounded down to a
/// character boundary.
fn units(line: &str, byte_column: usize, encoding: PositionEncoding) -> u32 {
    let mut column = byte_column.min(line.len());
    while !line.is_char_boundary(column) {
        column -= 1;
    }
    let prefix = &line[..column];
    let count = match encoding {
        PositionEncoding::Utf8 => prefix.len(),
        PositionEncoding::Utf16 => prefix.chars().map(char::len_utf16).sum(),
        PositionEncoding::Utf32 => prefix.chars().count(),
    };
    u32::try_from(count).unwrap_or(u32::MAX)
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
        expect.assert_eq(&store.get(&uri).unwrap().text);
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
            &[
                ((0, 99), (0, 120), "!"),
                ((7, 0), (9, 9), "?"),
                ((1, 1), (0, 1), "-"),
            ],
            expect!["a-d?"],
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
        assert_eq!(&*store.get(&uri).unwrap().text, "new");
    }

    fn check_positions(text: &str, encoding: PositionEncoding, expect: Expect) {
        let lines = LineIndex::new(text);
        let mut out = String::new();
        for (line, character) in [(0, 0), (0, 2), (0, 3), (0, 99), (1, 1), (5, 0)] {
            let offset = lines.offset(text, lsp::Position::new(line, character), encoding);
            let back = lines.position_of_offset(text, offset, encoding);
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
