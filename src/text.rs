//! Text documents: rope-backed buffers, LSP-style edits and position encodings.
//!
//! Positions inside the core are byte offsets or `(line, byte column)`; conversion from and to
//! the client's encoding (UTF-16 by default, UTF-8 when negotiated) happens here, once, at the
//! boundary. Every conversion clamps: a position past the end of a line or of the document maps
//! to the nearest valid place, never to a panic.

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
