//! Packing ranked candidates into the token budget: full bodies for the few most likely,
//! signature + first doc line for the rest, no overlaps, then a deterministic order.

use super::Snippet;
use super::rank::Candidate;
use super::table::SymbolTable;
use crate::index::{FileIndex, Symbol, SymbolKind};
use crate::lang::Lang;

/// How many candidates may be shown whole.
const FULL_SLOTS: usize = 2;
/// A whole body may take at most this share of what is left of the budget.
const FULL_SHARE: usize = 4;
/// Lines of a whole body, at most.
const FULL_MAX_LINES: u32 = 60;
/// Member headers listed under a condensed class/trait.
const MAX_MEMBERS: usize = 6;
/// Candidates examined before giving up on filling the budget.
const MAX_EXAMINED: usize = 400;

pub fn pack(
    table: &SymbolTable,
    candidates: &[Candidate],
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Snippet> {
    let mut chosen: Vec<(Snippet, bool)> = Vec::new();
    let mut left = budget;
    let mut full_count = 0;
    for candidate in candidates.iter().take(MAX_EXAMINED) {
        if left == 0 {
            break;
        }
        let file = &table.files[candidate.def.0];
        let symbol = &file.symbols[candidate.def.1];
        let (start, end) = (symbol.span.start_line, symbol.span.end_line + 1);
        let overlaps = |full_only: bool| {
            chosen.iter().any(|(s, full)| {
                s.path == file.path
                    && (!full_only || *full)
                    && s.start_line < end
                    && start < s.end_line.max(s.start_line + 1)
            })
        };
        if overlaps(true)
            || chosen
                .iter()
                .any(|(s, _)| s.path == file.path && s.start_line == start)
        {
            continue;
        }
        let mut form = None;
        if full_count < FULL_SLOTS && end - start <= FULL_MAX_LINES && !overlaps(false) {
            let text = lines(&file.text, start, end);
            let tokens = count_tokens(&text);
            if tokens <= left / FULL_SHARE {
                form = Some((text, end, tokens, true));
            }
        }
        if form.is_none() {
            let (text, end) = condensed(file, candidate.def.1);
            let tokens = count_tokens(&text);
            if tokens <= left {
                form = Some((text, end, tokens, false));
            }
        }
        let Some((text, end_line, tokens, full)) = form else {
            continue;
        };
        if full {
            full_count += 1;
        }
        left -= tokens;
        chosen.push((
            Snippet {
                path: file.path.clone(),
                start_line: start,
                end_line,
                text,
                score: candidate.score,
                reason: candidate.reason.to_string(),
            },
            full,
        ));
    }
    let mut out: Vec<Snippet> = chosen.into_iter().map(|(s, _)| s).collect();
    out.sort_by(|a, b| a.path.cmp(&b.path).then(a.start_line.cmp(&b.start_line)));
    out
}

/// Lines `start..end` of `text`, each ending in a newline.
fn lines(text: &str, start: u32, end: u32) -> String {
    let mut out = String::new();
    for line in text
        .split('\n')
        .skip(start as usize)
        .take((end - start) as usize)
    {
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The definition's header lines (up to its body), the first docstring line for Python, and
/// for classes and traits the first line of each member. Returns the text and the exclusive
/// end line it stands for.
fn condensed(file: &FileIndex, index: usize) -> (String, u32) {
    let symbol = &file.symbols[index];
    let all: Vec<&str> = file
        .text
        .split('\n')
        .skip(symbol.span.start_line as usize)
        .take((symbol.span.end_line - symbol.span.start_line + 1) as usize)
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if matches!(symbol.kind, SymbolKind::Struct | SymbolKind::Enum) && all.len() <= 12 {
        return (join(&all), symbol.span.end_line + 1);
    }
    let header_len = header_lines(&all, file.lang, symbol);
    let mut out: Vec<&str> = all[..header_len].to_vec();
    if file.lang == Lang::Python
        && let Some(next) = all.get(header_len)
    {
        let trimmed = next
            .trim_start()
            .trim_start_matches(['r', 'b', 'u', 'R', 'B', 'U']);
        if trimmed.starts_with("\"\"\"") || trimmed.starts_with("'''") || trimmed.starts_with('"') {
            out.push(next);
        }
    }
    let mut end = symbol.span.start_line + out.len() as u32;
    let is_container = matches!(
        symbol.kind,
        SymbolKind::Class
            | SymbolKind::Trait
            | SymbolKind::Impl
            | SymbolKind::Struct
            | SymbolKind::Enum
    );
    if is_container {
        let mut members: Vec<&Symbol> = file
            .symbols
            .iter()
            .filter(|s| s.parent == Some(index))
            .collect();
        members.sort_by_key(|s| s.span.start_line);
        let mut listed = 0;
        for member in members {
            let offset = (member.span.start_line - symbol.span.start_line) as usize;
            if offset < out.len() || listed >= MAX_MEMBERS {
                continue;
            }
            if let Some(line) = all.get(offset) {
                out.push(line);
                listed += 1;
            }
        }
        if listed > 0 {
            end = symbol.span.end_line + 1;
        }
    }
    (join(&out), end)
}

fn join(lines: &[&str]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Number of lines the header of `symbol` takes (at least one).
fn header_lines(lines: &[&str], lang: Lang, symbol: &Symbol) -> usize {
    if matches!(symbol.kind, SymbolKind::Constant | SymbolKind::Field) {
        return 1;
    }
    for (i, line) in lines.iter().enumerate().take(8) {
        let code = match lang {
            Lang::Python => line.split('#').next().unwrap_or(line),
            Lang::Rust => line.split("//").next().unwrap_or(line),
        }
        .trim_end();
        let ends = match lang {
            Lang::Python => code.ends_with(':'),
            Lang::Rust => code.contains('{') || code.ends_with(';'),
        };
        if ends {
            return i + 1;
        }
    }
    1
}
