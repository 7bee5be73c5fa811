//! What the server keeps in session memory besides `pith.ask` answers: the result of each
//! resolved code action and each inline completion the client reports accepted, with the file,
//! the enclosing symbol and a content hash of its code. When a file's code changes on disk (a
//! save, a watched change), memories about code that is no longer there are marked stale, so
//! recall ranks them down.

use std::collections::HashSet;
use std::path::Path;

use crate::assist::actions::ActionOutcome;
use crate::index::FileIndex;
use crate::memory::{MemoryKind, NewMemory, content_hash};
use crate::server::session::Session;

/// The command a client runs when the user accepts an inline completion (LSP 3.18 lets an
/// inline completion item carry one). Arguments: `[uri, position, text]`.
pub const COMPLETION_ACCEPTED: &str = "pith.completion.accepted";

/// Stores what a code action produced (the user picked it; the edit or message is its result).
pub fn remember_action(
    session: &Session,
    title: &str,
    path: &Path,
    offset: usize,
    outcome: &ActionOutcome,
) {
    let mut answer: Vec<String> = outcome.message.iter().cloned().collect();
    answer.extend(outcome.edits.iter().map(|e| e.new_text.clone()));
    answer.extend(outcome.new_files.iter().map(|f| f.text.clone()));
    remember(
        session,
        MemoryKind::CodeAction,
        title,
        path,
        offset,
        answer.join("\n"),
    );
}

/// Stores an inline completion the user accepted at `offset`.
pub fn remember_completion(session: &Session, path: &Path, offset: usize, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    remember(
        session,
        MemoryKind::Completion,
        "inline completion",
        path,
        offset,
        text.to_string(),
    );
}

fn remember(
    session: &Session,
    kind: MemoryKind,
    title: &str,
    path: &Path,
    offset: usize,
    answer: String,
) {
    session.index_stale_buffers();
    let relative = crate::assist::relative_path(&session.index, path);
    let file = session.index.file(path);
    let symbol = file.as_deref().and_then(|f| enclosing_symbol(f, offset));
    let (symbols, code_hashes) = match (&file, symbol) {
        (Some(file), Some((name, code))) => (vec![name], vec![content_hash(code_of(file, code))]),
        _ => (Vec::new(), Vec::new()),
    };
    let question = match symbols.first() {
        Some(name) => format!("{title}: {name} in {relative}"),
        None => format!("{title} in {relative}"),
    };
    let memory = NewMemory {
        kind: Some(kind),
        question,
        answer,
        files: vec![relative],
        symbols,
        code_hashes,
    };
    session.ai.with_memory(|m| {
        if let Err(error) = m.remember(&memory) {
            tracing::warn!(%error, "could not remember a {}", kind.name());
        }
    });
}

/// After `path` was re-indexed from a save or a change on disk: memories about its code that
/// is gone are marked stale.
pub fn mark_changed_code_stale(session: &Session, path: &Path) {
    let relative = crate::assist::relative_path(&session.index, path);
    let present: HashSet<String> = session
        .index
        .file(path)
        .map(|file| {
            (0..file.symbols.len())
                .map(|i| content_hash(code_of(&file, i)))
                .collect()
        })
        .unwrap_or_default();
    session
        .ai
        .with_memory(|m| match m.mark_stale_in_file(&relative, &present) {
            Ok(0) => {}
            Ok(marked) => tracing::debug!(marked, file = %relative, "memories marked stale"),
            Err(error) => tracing::warn!(%error, "could not mark memories stale"),
        });
}

/// The innermost symbol around `offset`: its name and index.
fn enclosing_symbol(file: &FileIndex, offset: usize) -> Option<(String, usize)> {
    file.symbols
        .iter()
        .enumerate()
        .filter(|(_, s)| s.span.start_byte <= offset && offset <= s.span.end_byte)
        .min_by_key(|(_, s)| s.span.end_byte - s.span.start_byte)
        .map(|(i, s)| (s.name.to_string(), i))
}

fn code_of(file: &FileIndex, symbol: usize) -> &str {
    let span = file.symbols[symbol].span;
    file.text.get(span.start_byte..span.end_byte).unwrap_or("")
}
