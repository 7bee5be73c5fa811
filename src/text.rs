//! Text documents: rope-backed buffers, LSP-style edits and position encodings.
//!
//! Positions inside the core are byte offsets or `(line, byte column)`; conversion from and to
//! the client's encoding (UTF-16 by default, UTF-8 when negotiated) happens here, once, at the
//! boundary. Every conversion clamps: a position past the end of a line or of the document maps
//! to the nearest valid place, never to a panic.
//!
//! Lines end at `\n` (so `\r\n` too, the `\r` belonging to the line's end), as tree-sitter
//! counts rows; a column past the end of a line clamps to before its `\r\n`. A column inside
//! a character (half of a UTF-16 surrogate pair) clamps to the start of that character.

use ropey::{Rope, RopeSlice};
use tree_sitter::{InputEdit, Point, Tree};

use crate::lang::{self, Lang};

/// How a client counts columns (`general.positionEncodings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionEncoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

/// A position as a client sends it: 0-based line and column in the negotiated encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

/// One content change of `didChange`: a replaced range, or the whole text when `range` is None.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub range: Option<(Position, Position)>,
    pub text: String,
}

/// Why a set of changes was refused; the document is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("change range ends before it starts ({start:?} > {end:?})")]
    InvertedRange { start: Position, end: Position },
    #[error("tree-sitter could not parse the document")]
    ParseFailed,
}

/// An open document: its text, the client's version, and (for a supported language) its
/// syntax tree, kept up to date incrementally.
#[derive(Debug, Clone)]
pub struct Document {
    rope: Rope,
    /// The client's version number (`didOpen`/`didChange`); pith does not interpret it.
    pub version: i32,
    lang: Option<Lang>,
    tree: Option<Tree>,
}

impl Document {
    pub fn new(text: &str, lang: Option<Lang>) -> Document {
        Document {
            rope: Rope::from_str(text),
            version: 0,
            lang,
            tree: lang.and_then(|lang| lang::parse(lang, text, None)),
        }
    }

    /// Applies `didChange` content changes in order, then reparses incrementally (each
    /// change becomes a tree-sitter `InputEdit` on the old tree). All or nothing: on error the
    /// document is unchanged.
    pub fn apply_changes(
        &mut self,
        changes: &[Change],
        encoding: PositionEncoding,
    ) -> Result<(), TextError> {
        let mut rope = self.rope.clone();
        let mut tree = self.tree.clone();
        for change in changes {
            let Some((start, end)) = change.range else {
                rope = Rope::from_str(&change.text);
                tree = None;
                continue;
            };
            if start > end {
                return Err(TextError::InvertedRange { start, end });
            }
            let start_byte = rope_offset_at(&rope, start, encoding);
            let old_end_byte = rope_offset_at(&rope, end, encoding).max(start_byte);
            let start_position = rope_point(&rope, start_byte);
            let old_end_position = rope_point(&rope, old_end_byte);
            let start_char = rope.byte_to_char(start_byte);
            rope.remove(start_char..rope.byte_to_char(old_end_byte));
            rope.insert(start_char, &change.text);
            let new_end_byte = start_byte + change.text.len();
            if let Some(tree) = tree.as_mut() {
                tree.edit(&InputEdit {
                    start_byte,
                    old_end_byte,
                    new_end_byte,
                    start_position,
                    old_end_position,
                    new_end_position: rope_point(&rope, new_end_byte),
                });
            }
        }
        let tree = match self.lang {
            Some(lang) => {
                let text = rope.to_string();
                Some(lang::parse(lang, &text, tree.as_ref()).ok_or(TextError::ParseFailed)?)
            }
            None => None,
        };
        self.rope = rope;
        self.tree = tree;
        Ok(())
    }

    /// The whole text.
    pub fn text(&self) -> String {
        self.rope.to_string()
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    pub fn lang(&self) -> Option<Lang> {
        self.lang
    }

    /// The syntax tree of the current text (None for an unsupported language).
    pub fn tree(&self) -> Option<&Tree> {
        self.tree.as_ref()
    }

    /// The byte offset of a client position, clamped into the document.
    pub fn offset_at(&self, position: Position, encoding: PositionEncoding) -> usize {
        rope_offset_at(&self.rope, position, encoding)
    }

    /// The client position of a byte offset, clamped into the document.
    pub fn position_at(&self, offset: usize, encoding: PositionEncoding) -> Position {
        rope_position_at(&self.rope, offset, encoding)
    }
}

/// Code units of `c` in `encoding`.
fn units(c: char, encoding: PositionEncoding) -> usize {
    match encoding {
        PositionEncoding::Utf8 => c.len_utf8(),
        PositionEncoding::Utf16 => c.len_utf16(),
        PositionEncoding::Utf32 => 1,
    }
}

/// Byte length of the prefix of `line` (without its line end) that is `character` units long.
fn column_to_bytes(
    line: impl Iterator<Item = char>,
    character: u32,
    encoding: PositionEncoding,
) -> usize {
    let mut bytes = 0;
    let mut counted = 0;
    let mut line = line.peekable();
    while let Some(c) = line.next() {
        if c == '\n' || (c == '\r' && line.peek() == Some(&'\n')) {
            break;
        }
        let width = units(c, encoding);
        if counted + width > character as usize {
            break;
        }
        counted += width;
        bytes += c.len_utf8();
    }
    bytes
}

fn rope_offset_at(rope: &Rope, position: Position, encoding: PositionEncoding) -> usize {
    let line = position.line as usize;
    if line >= rope.len_lines() {
        return rope.len_bytes();
    }
    let line_start = rope.line_to_byte(line);
    line_start + column_to_bytes(rope.line(line).chars(), position.character, encoding)
}

fn rope_position_at(rope: &Rope, offset: usize, encoding: PositionEncoding) -> Position {
    let offset = rope.char_to_byte(rope.byte_to_char(offset.min(rope.len_bytes())));
    let line = rope.byte_to_line(offset);
    let prefix: RopeSlice = rope.byte_slice(rope.line_to_byte(line)..offset);
    Position {
        line: line as u32,
        character: prefix.chars().map(|c| units(c, encoding)).sum::<usize>() as u32,
    }
}

/// The tree-sitter point (row, byte column) of a byte offset that lies on a char boundary.
fn rope_point(rope: &Rope, offset: usize) -> Point {
    let row = rope.byte_to_line(offset);
    Point {
        row,
        column: offset - rope.line_to_byte(row),
    }
}

/// `Document::offset_at` on a plain string.
pub fn offset_at(text: &str, position: Position, encoding: PositionEncoding) -> usize {
    let mut line_start = 0;
    for _ in 0..position.line {
        match memchr::memchr(b'\n', &text.as_bytes()[line_start..]) {
            Some(newline) => line_start += newline + 1,
            None => return text.len(),
        }
    }
    line_start + column_to_bytes(text[line_start..].chars(), position.character, encoding)
}

/// `Document::position_at` on a plain string.
pub fn position_at(text: &str, offset: usize, encoding: PositionEncoding) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = memchr::memrchr(b'\n', before.as_bytes()).map_or(0, |newline| newline + 1);
    Position {
        line: memchr::memchr_iter(b'\n', before.as_bytes()).count() as u32,
        character: before[line_start..]
            .chars()
            .map(|c| units(c, encoding))
            .sum::<usize>() as u32,
    }
}

#[cfg(test)]
mod tests;
