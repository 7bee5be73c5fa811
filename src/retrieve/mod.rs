//! Context retrieval: for a cursor in a (possibly unsaved) buffer, the pieces of the rest of the
//! workspace the model needs, ranked and packed into a token budget.

use std::path::{Path, PathBuf};

use crate::index::WorkspaceIndex;

/// One piece of context, exactly as it goes to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Snippet {
    /// Absolute path of the file it comes from.
    pub path: PathBuf,
    /// 0-based first line, inclusive.
    pub start_line: u32,
    /// 0-based end line, exclusive.
    pub end_line: u32,
    pub text: String,
    /// Ranking score (higher is better); for display and tests.
    pub score: f32,
    /// Why it was picked (`import`, `near-cursor`, `self-member`, …); for display and tests.
    pub reason: String,
}

/// A retrieval query: the buffer as the editor holds it and the cursor in it.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// Absolute path of the edited file.
    pub path: &'a Path,
    /// The buffer text (overrides the file on disk).
    pub text: &'a str,
    /// Cursor as a byte offset into `text`.
    pub cursor: usize,
    pub budget_tokens: usize,
    /// Recently edited or opened files, most recent first.
    pub recent: &'a [PathBuf],
}

/// Ranked snippets for `query`, whose token count (by `count_tokens`) fits the budget.
pub fn retrieve(
    _index: &WorkspaceIndex,
    _query: &Query<'_>,
    _count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Snippet> {
    Vec::new()
}
