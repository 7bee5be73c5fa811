//! Context retrieval: for a cursor in a (possibly unsaved) buffer, the pieces of the rest of the
//! workspace the model needs, ranked and packed into a token budget.
//!
//! **Candidates.** The buffer is parsed from the editor's text. Every identifier it uses is a
//! lead, weighted by where it sits: inside the function around the cursor (prefix *and* suffix),
//! inside the enclosing class/impl (what the siblings call), or elsewhere in the file. A lead
//! reaches definitions by one of several routes, strongest first: an import that binds it
//! (followed through `__init__.py`, `mod.rs`, `pub use` and `from x import *`), a qualifier that
//! is an imported module (`utils.f`, `de::f`) or a type (`Foo::new`, `Session.send`), membership
//! of a base class / implemented trait of the enclosing class (`self.x`), or its bare name across
//! the workspace. Imported names not used yet are weak leads of their own.
//!
//! **Ranking.** A definition's score sums its leads: location weight × route weight × the
//! name's specificity (an IDF over the files that mention it, so `new`/`get` weigh little) ÷
//! the number of definitions sharing the name. Graph proximity is a multiplier for files the
//! buffer's imports reach, and another for recently touched files. We chose this one-hop
//! import neighbourhood over a personalised PageRank of the whole reference graph: on a
//! single-file query, the first hop carries nearly all of PageRank's mass, and it costs no
//! whole-workspace iteration per keystroke.
//!
//! **Packing.** The two best candidates are shown whole when each fits a third of what is left
//! of the budget; everything else is condensed (header lines, first docstring line, member
//! headers of classes/traits), so that many definitions fit. Overlaps and the edited file are
//! skipped. The budget is counted with the caller's tokenizer and never exceeded.
//!
//! **Stability.** Location weights are by function, not by distance in lines, and the chosen
//! set is emitted ordered by path then line (not by score), so while the cursor moves inside
//! one function the context is byte-identical and the engine reuses its KV-cache prefix.

use std::path::{Path, PathBuf};

use crate::index::WorkspaceIndex;

pub mod extract;
mod rank;
mod render;
pub mod table;

pub use table::SymbolTable;

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
    index: &WorkspaceIndex,
    query: &Query<'_>,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Snippet> {
    let table = SymbolTable::new(index.files());
    retrieve_in(&table, query, count_tokens)
}

/// [`retrieve`] over a prepared [`SymbolTable`] (build it once for many queries).
pub fn retrieve_in(
    table: &SymbolTable,
    query: &Query<'_>,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Snippet> {
    let Some(buffer) = extract::parse_file(query.path, query.text) else {
        return Vec::new();
    };
    let focus = rank::focus(&buffer, query.cursor);
    let recent: Vec<usize> = query
        .recent
        .iter()
        .filter_map(|p| table.file_number(p))
        .collect();
    let candidates = rank::candidates(table, &buffer, &focus, &recent);
    render::pack(table, &candidates, query.budget_tokens, count_tokens)
}

/// Parses every Python and Rust file under `root` (gitignore rules apply) into a table. A
/// stand-in for `WorkspaceIndex::scan` for the batch CLI; unreadable files are skipped.
pub fn scan(root: &Path) -> SymbolTable {
    use rayon::prelude::*;
    let paths: Vec<PathBuf> = ignore::WalkBuilder::new(root)
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(|e| e.into_path())
        .filter(|p| crate::lang::Lang::from_path(p).is_some())
        .collect();
    let files = paths
        .par_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            if text.len() > 1 << 20 {
                return None;
            }
            extract::parse_file(path, &text).map(std::sync::Arc::new)
        })
        .collect();
    SymbolTable::new(files)
}

/// The snippets as JSON (`path` relative to `root` when inside it), as `pith context --batch`
/// prints them and the `pith/context` request returns them.
pub fn snippets_json(root: &Path, snippets: &[Snippet]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = snippets
        .iter()
        .map(|s| {
            let path = s.path.strip_prefix(root).unwrap_or(&s.path);
            let path = path
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            serde_json::json!({
                "path": path,
                "start_line": s.start_line,
                "end_line": s.end_line,
                "text": s.text,
                "score": s.score,
                "reason": s.reason,
            })
        })
        .collect();
    serde_json::Value::Array(items)
}
