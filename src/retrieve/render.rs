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
const FULL_SHARE: usize = 8;
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
        let same_file = |s: &Snippet| s.path == file.path;
        // Inside a body already shown whole, or already shown: nothing to add.
        let shown = chosen.iter().any(|(s, full)| {
            same_file(s)
                && (s.start_line == start || (*full && s.start_line <= start && end <= s.end_line))
        });
        if shown {
            continue;
        }
        // Sharing lines with another snippet: only the condensed form, whose header does not.
        let overlaps = chosen.iter().any(|(s, _)| {
            same_file(s) && s.start_line < end && start < s.end_line.max(s.start_line + 1)
        });
        let (short, short_end) = condensed(file, candidate.def.1);
        let mut form = None;
        // A definition whose condensed form is already all of it does not use a whole-body slot.
        let whole_is_longer = short_end < end || short.lines().count() < (end - start) as usize;
        if full_count < FULL_SLOTS && whole_is_longer && end - start <= FULL_MAX_LINES && !overlaps
        {
            let text = join(&symbol_lines(file, symbol));
            let tokens = count_tokens(&text);
            if tokens <= (budget / FULL_SHARE).min(left) {
                form = Some((text, end, tokens, true));
            }
        }
        if form.is_none() {
            let tokens = count_tokens(&short);
            if tokens <= left {
                form = Some((short, short_end, tokens, false));
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
    // A condensed member already listed in its condensed container would be shown twice, the
    // second time after the container's end, out of place.
    let listed_in_container = |member: &Snippet| {
        let header = member.text.lines().next().unwrap_or("").trim();
        chosen.iter().any(|(container, full)| {
            !full
                && container.path == member.path
                && container.start_line < member.start_line
                && member.end_line <= container.end_line
                && container
                    .text
                    .lines()
                    .any(|line| line.trim().starts_with(header))
        })
    };
    let keep: Vec<bool> = chosen
        .iter()
        .map(|(snippet, full)| *full || !listed_in_container(snippet))
        .collect();
    let mut out: Vec<Snippet> = chosen
        .into_iter()
        .zip(keep)
        .filter_map(|((snippet, _), keep)| keep.then_some(snippet))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path).then(a.start_line.cmp(&b.start_line)));
    out
}

/// The whole lines the symbol's span covers, found from its byte span (no scan of the file).
fn symbol_lines<'f>(file: &'f FileIndex, symbol: &Symbol) -> Vec<&'f str> {
    let text: &str = &file.text;
    let span = symbol.span;
    let begin = span.start_byte.saturating_sub(span.start_col as usize);
    let finish = text
        .get(span.end_byte..)
        .and_then(|rest| rest.find('\n'))
        .map(|i| span.end_byte + i)
        .unwrap_or(text.len());
    text.get(begin..finish)
        .unwrap_or("")
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// The definition's header lines (up to its body), the first docstring line for Python, and
/// for classes and traits the first line of each member. Returns the text and the exclusive
/// end line it stands for.
///
/// The result stays valid code, because a small model reads what follows an unclosed `"""` or
/// `{` as more of the same: a cut docstring is closed, a Python header without its body gets
/// `...`, a Rust body becomes `{ /* … */ }` and a Rust container gets its closing brace.
fn condensed(file: &FileIndex, index: usize) -> (String, u32) {
    let symbol = &file.symbols[index];
    let all = symbol_lines(file, symbol);
    if matches!(symbol.kind, SymbolKind::Struct | SymbolKind::Enum) && all.len() <= 12 {
        return (join(&all), symbol.span.end_line + 1);
    }
    let header_len = header_lines(&all, file.lang, symbol);
    let mut out: Vec<String> = match file.lang {
        // A long parameter list, one per line, reads as well on one line for far fewer tokens.
        Lang::Python if header_len > 3 => vec![one_line(&all[..header_len])],
        _ => all[..header_len].iter().map(|l| l.to_string()).collect(),
    };
    // `has_doc`: a docstring follows the header; `shown_doc`: a line of it is in `out`.
    let (mut has_doc, mut shown_doc) = (false, false);
    if file.lang == Lang::Python
        && let Some(next) = all.get(header_len)
    {
        let trimmed = next
            .trim_start()
            .trim_start_matches(['r', 'b', 'u', 'R', 'B', 'U']);
        if trimmed.starts_with("\"\"\"") || trimmed.starts_with("'''") || trimmed.starts_with('"') {
            if let Some(doc) = docstring_summary(next, all.get(header_len + 1).copied()) {
                out.push(doc);
                shown_doc = true;
            }
            has_doc = true;
        }
    }
    let mut end = symbol.span.start_line + (header_len + usize::from(has_doc)) as u32;
    let is_container = matches!(
        symbol.kind,
        SymbolKind::Class
            | SymbolKind::Trait
            | SymbolKind::Impl
            | SymbolKind::Struct
            | SymbolKind::Enum
    );
    let mut listed = 0;
    if is_container {
        let mut members: Vec<&Symbol> = file
            .symbols
            .iter()
            .filter(|s| s.parent == Some(index))
            .collect();
        members.sort_by_key(|s| s.span.start_line);
        // `self.x = …` attributes are members found inside a method: not a line of the class.
        let mut inside_until = 0;
        for member in members {
            let offset = (member.span.start_line - symbol.span.start_line) as usize;
            let nested = member.span.start_line < inside_until;
            inside_until = inside_until.max(member.span.end_line + 1);
            if offset < header_len + usize::from(has_doc) || listed >= MAX_MEMBERS || nested {
                continue;
            }
            if let Some(line) = all.get(offset) {
                out.push(without_body(line, file.lang));
                listed += 1;
            }
        }
        if listed > 0 {
            end = symbol.span.end_line + 1;
        }
    }
    match file.lang {
        Lang::Python if !shown_doc && listed == 0 => {
            if let Some(last) = out.last_mut() {
                *last = without_body(last, Lang::Python);
            }
        }
        Lang::Rust if header_len > 0 && out[header_len - 1].trim_end().ends_with('{') => {
            if is_container {
                let indent = indentation(&out[0]).to_string();
                out.push(format!("{indent}}}"));
            } else {
                out[header_len - 1] = without_body(&out[header_len - 1], Lang::Rust);
            }
        }
        _ => {}
    }
    let lines: Vec<&str> = out.iter().map(String::as_str).collect();
    (join(&lines), end)
}

/// A header spread over several lines, joined into one: `def f(\n    a,\n    b,\n):` becomes
/// `def f(a, b):`.
fn one_line(lines: &[&str]) -> String {
    let mut out = indentation(lines[0]).to_string();
    for line in lines {
        let code = line.split('#').next().unwrap_or(line).trim();
        if code.is_empty() {
            continue;
        }
        if !out.trim().is_empty() && !out.ends_with(['(', '[']) && !code.starts_with([')', ']']) {
            out.push(' ');
        }
        out.push_str(code);
    }
    out.replace(",)", ")").replace(",]", "]")
}

/// The first line of a docstring that opens on `line`, closed; a docstring whose text starts
/// on the `next` line gives that line instead. None when there is no text to show.
fn docstring_summary(line: &str, next: Option<&str>) -> Option<String> {
    let trimmed = line.trim();
    let quote = ["\"\"\"", "'''"]
        .into_iter()
        .find(|q| trimmed.trim_start_matches(['r', 'b', 'u', 'R', 'B', 'U']) == *q);
    match (quote, next) {
        (Some(quote), Some(next)) => {
            let text = next.trim().trim_end_matches(quote).trim_end();
            (!text.is_empty() && !text.contains(quote))
                .then(|| format!("{}{quote}{text}{quote}", indentation(line)))
        }
        (Some(_), None) => None,
        (None, _) => Some(closed_docstring(line)),
    }
}

/// A docstring's first line, closed if the docstring goes on.
fn closed_docstring(line: &str) -> String {
    let trimmed = line
        .trim()
        .trim_start_matches(['r', 'b', 'u', 'R', 'B', 'U']);
    for quote in ["\"\"\"", "'''"] {
        if let Some(rest) = trimmed.strip_prefix(quote)
            && !rest.contains(quote)
        {
            return format!("{}{quote}", line.trim_end());
        }
    }
    line.to_string()
}

/// A definition's header line with its body replaced: `def f(x): ...`, `fn f(x) { /* … */ }`.
fn without_body(line: &str, lang: Lang) -> String {
    let code = line.trim_end();
    match lang {
        Lang::Python if code.ends_with(':') => format!("{code} ..."),
        Lang::Rust if code.ends_with('{') => format!("{code} /* … */ }}"),
        _ => line.to_string(),
    }
}

fn indentation(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
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
    // A long Python header is joined onto one line (see `condensed`); a Rust one is kept as
    // written, so past a few lines its first line has to do.
    let look = match lang {
        Lang::Python => 24,
        Lang::Rust => 8,
    };
    for (i, line) in lines.iter().enumerate().take(look) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieve::extract::parse_file;
    use expect_test::{Expect, expect};
    use std::path::Path;

    /// The condensed form of the symbol called `name` in `source`, with its line range.
    fn check(path: &str, source: &str, name: &str, expect: Expect) {
        let file = parse_file(Path::new(path), source).expect("supported language");
        let index = file
            .symbols
            .iter()
            .position(|s| *s.name == *name && s.kind != SymbolKind::Impl)
            .expect("symbol");
        let (text, end) = condensed(&file, index);
        let start = file.symbols[index].span.start_line;
        expect.assert_eq(&format!("{start}-{end}\n{text}"));
    }

    #[test]
    fn python_function_keeps_header_and_first_doc_line() {
        check(
            "a.py",
            "@cached\ndef get(url,\n        params=None):\n    \"\"\"Sends a GET request.\n\n    More.\n    \"\"\"\n    return request('get', url)\n",
            "get",
            expect![[r#"
                1-4
                def get(url,
                        params=None):
                    """Sends a GET request."""
            "#]],
        );
    }

    #[test]
    fn python_long_header_is_joined_and_docstring_text_taken_from_its_next_line() {
        check(
            "a.py",
            "def request(\n    self,\n    method,\n    url,  # absolute\n    params=None,\n):\n    \"\"\"\n    Constructs a Request.\n    \"\"\"\n    return 1\n",
            "request",
            expect![[r#"
                0-7
                def request(self, method, url, params=None):
                    """Constructs a Request."""
            "#]],
        );
    }

    #[test]
    fn python_empty_docstring_shows_no_doc_line() {
        check(
            "a.py",
            "def session():\n    \"\"\"\n    \"\"\"\n    return Session()\n",
            "session",
            expect![[r#"
                0-2
                def session(): ...
            "#]],
        );
    }

    #[test]
    fn python_class_lists_member_headers() {
        check(
            "a.py",
            "class Session(Base):\n    \"\"\"A session.\"\"\"\n\n    def __init__(self):\n        self.x = 1\n\n    def send(self, request, **kwargs):\n        return request\n",
            "Session",
            expect![[r#"
                0-8
                class Session(Base):
                    """A session."""
                    def __init__(self): ...
                    def send(self, request, **kwargs): ...
            "#]],
        );
    }

    #[test]
    fn rust_function_header_spans_where_clause() {
        check(
            "a.rs",
            "pub fn from_reader<R, T>(rdr: R) -> Result<T>\nwhere\n    R: io::Read,\n{\n    todo()\n}\n",
            "from_reader",
            expect![[r#"
                0-4
                pub fn from_reader<R, T>(rdr: R) -> Result<T>
                where
                    R: io::Read,
                { /* … */ }
            "#]],
        );
    }

    #[test]
    fn short_rust_struct_is_kept_whole() {
        check(
            "a.rs",
            "pub struct Position {\n    pub line: usize,\n    pub column: usize,\n}\n",
            "Position",
            expect![[r#"
                0-4
                pub struct Position {
                    pub line: usize,
                    pub column: usize,
                }
            "#]],
        );
    }
}
