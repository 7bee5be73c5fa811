//! Context retrieval: for a cursor in a (possibly unsaved) buffer, the pieces of the rest of the
//! workspace the model needs, ranked and packed into a token budget.
//!
//! **Candidates.** The buffer is parsed from the editor's text (every occurrence of every
//! identifier; definitions a syntax error hid are recovered from their header lines). Each
//! identifier it uses is a lead, weighted by where it sits: inside the function around the
//! cursor (prefix *and* suffix), inside the enclosing class/impl (what the siblings call), or
//! elsewhere in the file; parameters and local bindings are not leads. A lead reaches
//! definitions by one of several routes, strongest first: an import that binds it (followed
//! through `__init__.py`, `mod.rs`, `pub use` and `from x import *`), a qualifier that is a
//! module (`utils.f`, `super::ser::f`, followed through re-exports) or a type (`Foo::new`,
//! `Session.send`), membership of a base class / implemented trait of the enclosing class
//! (`self.x`), or its bare name across the workspace. Weaker leads fill the rest: imported names
//! not used yet, the other items of modules the code imports whole or names in paths, and the
//! members of the strongest types (the receiver's other methods).
//!
//! **Ranking.** A definition's score sums its leads: location weight × route weight × the
//! name's specificity (an IDF over the files that mention it, so `new`/`get` weigh little) ÷
//! the number of definitions sharing the name. Graph proximity is a multiplier for the files the
//! buffer's imports reach, and another for recently touched files. We chose this one-hop
//! neighbourhood over a personalised PageRank of the file graph: the leads already weight the
//! first hop by what the buffer actually uses, PageRank would mostly add second-hop files, and
//! it costs a whole-graph iteration per query. It is the next step if deep call chains miss.
//!
//! **Packing.** At most two candidates are shown whole, each within an eighth of the budget;
//! everything else is condensed (header lines, first docstring line, member headers of
//! classes/traits), so that many definitions fit. Fields and enum variants come with their type,
//! never alone. Overlaps and the edited file are skipped. The budget is counted with the
//! caller's tokenizer and never exceeded.
//!
//! **Stability.** Location weights are by function, not by distance in lines, and the chosen
//! set is emitted ordered by path then line (not by score), so while the cursor moves inside
//! one function the context is byte-identical and the engine reuses its KV-cache prefix.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crate::index::{IndexOptions, WorkspaceIndex};

pub mod extract;
mod rank;
pub mod receivers;
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
    let table = table_for(index);
    retrieve_in(&table, query, count_tokens)
}

/// What index-guided decoding needs at the cursor: the receivers in scope with their complete
/// member lists, and the names the buffer binds (see [`receivers`]).
pub fn scope_at(
    index: &WorkspaceIndex,
    path: &Path,
    text: &str,
    cursor: usize,
) -> (receivers::Receivers, Vec<String>) {
    scope_in(&table_for(index), path, text, cursor)
}

/// [`scope_at`] over a prepared table.
pub fn scope_in(
    table: &SymbolTable,
    path: &Path,
    text: &str,
    cursor: usize,
) -> (receivers::Receivers, Vec<String>) {
    let Some(buffer) = receivers::analyze(path, text) else {
        return Default::default();
    };
    (
        receivers::receivers(table, &buffer, cursor),
        receivers::names_in_scope(&buffer),
    )
}

/// The table of `index`, rebuilt only when the index's files changed since the last call
/// (keystrokes in one buffer do not change the index; saves and rescans do). The key is a
/// fingerprint of every file's path and content hash, so two indexes never share a table.
fn table_for(index: &WorkspaceIndex) -> Arc<SymbolTable> {
    use std::hash::{Hash, Hasher};
    static CACHE: Mutex<Option<(u64, usize, Arc<SymbolTable>)>> = Mutex::new(None);
    let files = index.files();
    let fingerprint = files.iter().fold(0u64, |sum, file| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        file.path.hash(&mut hasher);
        file.content_hash.hash(&mut hasher);
        sum.wrapping_add(hasher.finish())
    });
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((seen, count, table)) = cache.as_ref()
        && *seen == fingerprint
        && *count == files.len()
    {
        return table.clone();
    }
    drop(files);
    let table = Arc::new(table_of(index));
    *cache = Some((fingerprint, table.files.len(), table.clone()));
    table
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
    let mut candidates = rank::candidates(table, &buffer, &focus, &recent);
    // A Python buffer cannot call a Rust function of the same name (and the reverse): such
    // matches only cost tokens and mislead the model.
    candidates.retain(|c| table.files[c.def.0].lang == buffer.lang);
    render::pack(table, &candidates, query.budget_tokens, count_tokens)
}

/// Indexes `root` with the workspace index's scan (its ignore rules and size limits) and builds
/// the retrieval table from it, with definitions hidden by syntax errors recovered.
pub fn scan(root: &Path) -> SymbolTable {
    let index = WorkspaceIndex::new(vec![root.to_path_buf()], IndexOptions::default());
    let summary = index.scan(&|_, _| {}, &AtomicBool::new(false));
    tracing::debug!(files = summary.files, "scanned");
    table_of(&index)
}

fn table_of(index: &WorkspaceIndex) -> SymbolTable {
    let files = index
        .files()
        .into_iter()
        .map(extract::with_recovered_definitions)
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
