//! Candidate generation and scoring: which definitions elsewhere in the workspace the code
//! around the cursor is likely to need, each with a score and the route that found it.

use std::collections::{HashMap, HashSet};

use super::table::{Binding, DefId, SymbolTable, is_package_file};
use crate::index::{FileIndex, SymbolKind};
use crate::lang::Lang;

/// A scored definition.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub def: DefId,
    pub score: f32,
    pub reason: &'static str,
    best: f32,
}

/// Where the cursor is, at the granularity that keeps the context stable: the outermost
/// function around it, the class/impl around that, the file.
#[derive(Debug, Clone, Copy)]
pub struct Focus {
    /// Byte range of the enclosing function (or a line window when there is none).
    pub function: (usize, usize),
    /// Byte range of the enclosing class/impl/trait, if any.
    pub container: Option<(usize, usize)>,
    /// Symbol number of that container in the buffer.
    pub container_symbol: Option<usize>,
    /// End of the enclosing function's header (its parameters), if there is a function.
    pub header_end: Option<usize>,
}

const FUNCTION_WEIGHT: f32 = 1.0;
const CONTAINER_WEIGHT: f32 = 0.5;
const FILE_WEIGHT: f32 = 0.25;
const IMPORT_ROUTE: f32 = 3.0;
const QUALIFIED_ROUTE: f32 = 3.0;
const MEMBER_ROUTE: f32 = 2.5;
const NAME_ROUTE: f32 = 1.0;
const UNUSED_IMPORT: f32 = 0.6;
const MODULE_MEMBER: f32 = 0.25;
const EXPANDED: usize = 8;
const EXPANSION: f32 = 0.2;
const GRAPH_BONUS: f32 = 1.3;
const RECENT_BONUS: f32 = 1.2;

/// Finds the focus for `cursor` in `buffer`.
pub fn focus(buffer: &FileIndex, cursor: usize) -> Focus {
    let text = &buffer.text;
    let cursor = cursor.min(text.len());
    let cursor_line = text[..floor_char(text, cursor)].matches('\n').count() as u32;
    let cursor_col = column_of(text, cursor);
    let is_function = |k: SymbolKind| matches!(k, SymbolKind::Function | SymbolKind::Method);
    // The outermost function that holds the cursor; a cursor on the blank lines just past a
    // function's last statement (still indented deeper than its header) belongs to it too.
    let holds = |s: &crate::index::Symbol| {
        if s.span.start_byte <= cursor && cursor <= s.span.end_byte {
            return true;
        }
        s.span.start_byte <= cursor
            && cursor_col > s.span.start_col as usize
            && text
                .get(s.span.end_byte..cursor)
                .is_some_and(|gap| gap.trim().is_empty())
    };
    let function = buffer
        .symbols
        .iter()
        .enumerate()
        .filter(|(_, s)| is_function(s.kind) && holds(s))
        .filter(|(_, s)| {
            // Outermost: no enclosing function of its own.
            let mut parent = s.parent;
            while let Some(p) = parent {
                if is_function(buffer.symbols[p].kind) {
                    return false;
                }
                parent = buffer.symbols[p].parent;
            }
            true
        })
        .max_by_key(|(_, s)| s.span.start_byte);
    let container_symbol = match function {
        Some((_, s)) => s.parent,
        None => buffer
            .symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                matches!(
                    s.kind,
                    SymbolKind::Class | SymbolKind::Impl | SymbolKind::Trait
                ) && holds(s)
            })
            .max_by_key(|(_, s)| s.span.start_byte)
            .map(|(i, _)| i),
    };
    let header_end = function.map(|(_, s)| header_end(text, s.span.start_byte, buffer.lang));
    let function = match function {
        Some((_, s)) => (s.span.start_byte, s.span.end_byte.max(cursor)),
        None => line_window(text, cursor_line, 30),
    };
    let container = container_symbol.map(|c| {
        let span = buffer.symbols[c].span;
        (span.start_byte, span.end_byte.max(function.1))
    });
    Focus {
        function,
        container,
        container_symbol,
        header_end,
    }
}

/// Byte offset just past the header of the function starting at `start`: the line ending in
/// `:` (Python) or holding `{`/ending in `;` (Rust), within a few lines.
fn header_end(text: &str, start: usize, lang: Lang) -> usize {
    let mut offset = start;
    for line in text[start..].split_inclusive('\n').take(8) {
        offset += line.len();
        let code = line.trim_end();
        let ends = match lang {
            Lang::Python => code.ends_with(':'),
            Lang::Rust => code.contains('{') || code.ends_with(';'),
        };
        if ends {
            return offset;
        }
    }
    offset
}

/// Whether the identifier at `start..end` binds a local name there: a parameter of the focus
/// function, a `let`, an assignment target or a loop variable. Such names are not leads to
/// same-named definitions elsewhere.
fn binds_locally(
    text: &str,
    start: usize,
    end: usize,
    lang: Lang,
    header: Option<(usize, usize)>,
) -> bool {
    let line_start = text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let before = text[line_start..start].trim_end();
    let after = text[end..].split('\n').next().unwrap_or("").trim_start();
    let in_header = header.is_some_and(|(s, e)| s <= start && end <= e);
    match lang {
        Lang::Rust => {
            let param = in_header
                && after.starts_with(':')
                && !after.starts_with("::")
                && (before.ends_with('(') || before.ends_with(',') || before.ends_with("mut"));
            param
                || before.ends_with("let")
                || before.ends_with("let mut")
                || before.ends_with("for")
        }
        Lang::Python => {
            let param = in_header
                && (before.ends_with('(') || before.ends_with(',') || before.ends_with('*'))
                && [':', ',', ')', '='].iter().any(|c| after.starts_with(*c));
            let assigned = before.is_empty() && after.starts_with('=') && !after.starts_with("==");
            param || assigned || before.ends_with("for")
        }
    }
}

fn floor_char(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn column_of(text: &str, at: usize) -> usize {
    let at = floor_char(text, at);
    let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    at - line_start
}

/// Byte range of the lines `line - radius ..= line + radius`, aligned to a multiple of the
/// radius so that it does not slide with every cursor move.
fn line_window(text: &str, line: u32, radius: u32) -> (usize, usize) {
    let first = (line / radius).saturating_sub(1) * radius;
    let last = (line / radius + 2) * radius;
    let mut start = 0;
    let mut end = text.len();
    for (number, (offset, _)) in text.match_indices('\n').enumerate() {
        let number = number as u32 + 1;
        if number == first {
            start = offset + 1;
        }
        if number == last {
            end = offset;
            break;
        }
    }
    (start, end)
}

/// How names are used in the buffer, aggregated per name.
#[derive(Debug, Default)]
struct NameUse {
    best: f32,
    count: u32,
    /// Identifiers written before it as `q.name` / `q::name`.
    qualifiers: HashSet<String>,
    /// Bound in the focus function (parameter, `let`, assignment).
    local: bool,
}

fn qualifier(text: &str, start: usize) -> Option<&str> {
    let before = text.get(..start)?;
    let before = before
        .strip_suffix('.')
        .or_else(|| before.strip_suffix("::"))?;
    let begin = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map(|(i, _)| i)?;
    Some(&before[begin..])
}

struct Scores {
    /// The edited file's number in the table: never a candidate.
    own: Option<usize>,
    map: HashMap<DefId, Candidate>,
}

impl Scores {
    fn add(&mut self, def: DefId, score: f32, reason: &'static str) {
        if Some(def.0) == self.own || score <= 0.0 {
            return;
        }
        let entry = self.map.entry(def).or_insert(Candidate {
            def,
            score: 0.0,
            reason,
            best: 0.0,
        });
        entry.score += score;
        if score > entry.best {
            entry.best = score;
            entry.reason = reason;
        }
    }
}

/// Scores the definitions the buffer's focus needs. `buffer` is the parsed editor text;
/// `recent` lists file numbers of recently touched files.
pub fn candidates(
    table: &SymbolTable,
    buffer: &FileIndex,
    focus: &Focus,
    recent: &[usize],
) -> Vec<Candidate> {
    let own = table.file_number(&buffer.path);
    let module = table.module_for(&buffer.path, buffer.lang);
    let is_package = is_package_file(&buffer.path);
    let text: &str = &buffer.text;

    // What the buffer's imports bind.
    let mut bound: HashMap<&str, Binding> = HashMap::new();
    let mut globs: HashSet<usize> = HashSet::new();
    let mut import_lines: HashSet<u32> = HashSet::new();
    for import in &buffer.imports {
        import_lines.insert(import.line);
        match table.resolve_import(import, &module, buffer.lang, is_package) {
            Some(Binding::Glob(file)) => {
                globs.insert(file);
            }
            Some(binding) => {
                bound.insert(import.local_name(), binding);
            }
            None => {}
        }
    }
    // Graph proximity: the files this buffer reaches through its imports.
    let mut neighbours: HashSet<usize> = globs.clone();
    for binding in bound.values() {
        match binding {
            Binding::Module(file) | Binding::Glob(file) => {
                neighbours.insert(*file);
            }
            Binding::Defs(defs) => neighbours.extend(defs.iter().map(|d| d.0)),
        }
    }

    let local_names: HashSet<&str> = buffer.symbols.iter().map(|s| &*s.name).collect();
    let container_names: HashSet<String> = focus
        .container_symbol
        .map(|c| {
            let symbol = &buffer.symbols[c];
            let mut names: HashSet<String> = symbol
                .signature
                .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            names.remove(&*symbol.name);
            names
        })
        .unwrap_or_default();

    let mut uses: HashMap<&str, NameUse> = HashMap::new();
    for reference in &buffer.references {
        if import_lines.contains(&reference.line) {
            continue;
        }
        let at = reference.start_byte;
        let weight = if focus.function.0 <= at && at < focus.function.1 {
            FUNCTION_WEIGHT
        } else if focus.container.is_some_and(|(s, e)| s <= at && at < e) {
            CONTAINER_WEIGHT
        } else {
            FILE_WEIGHT
        };
        let entry = uses.entry(&*reference.name).or_default();
        entry.best = entry.best.max(weight);
        entry.count += 1;
        if weight >= FUNCTION_WEIGHT
            && binds_locally(
                text,
                at,
                reference.end_byte(),
                buffer.lang,
                focus.header_end.map(|e| (focus.function.0, e)),
            )
        {
            entry.local = true;
        }
        if weight >= CONTAINER_WEIGHT
            && let Some(q) = qualifier(text, at)
        {
            entry.qualifiers.insert(q.to_string());
        }
    }

    let total_files = table.files.len().max(1) as f32;
    let specificity = |name: &str| -> f32 {
        let df = table.doc_freq(name) as f32;
        let idf = ((total_files + 1.0) / (df + 0.5)).ln() / (total_files + 1.5).ln().max(1.0);
        idf.clamp(0.05, 1.5)
    };

    let mut scores = Scores {
        own,
        map: HashMap::new(),
    };

    let mut names: Vec<(&str, &NameUse)> = uses.iter().map(|(n, u)| (*n, u)).collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    // Modules the focus function names in paths (`ser::to_writer`): their other items too.
    let mut path_modules: Vec<usize> = Vec::new();
    for (name, usage) in names {
        let base = usage.best * (1.0 + 0.15 * (usage.count as f32).ln());
        let spec = specificity(name);
        if let Some(Binding::Defs(defs)) = bound.get(name) {
            for &def in defs {
                scores.add(def, base * IMPORT_ROUTE * (0.5 + 0.5 * spec), "import");
            }
        }
        for q in &usage.qualifiers {
            let module_files: Vec<usize> = match bound.get(q.as_str()) {
                Some(Binding::Module(file)) => vec![*file],
                Some(_) => Vec::new(),
                // A path written out in the code (`super::ser::f`, `crate::de::g`).
                None => table.modules_named(q).to_vec(),
            };
            if usage.best >= FUNCTION_WEIGHT && module_files.len() <= 2 {
                path_modules.extend(module_files.iter().copied());
            }
            for file in module_files {
                for def in table.member_of_module(file, name) {
                    scores.add(def, base * QUALIFIED_ROUTE, "module-member");
                }
            }
            match bound.get(q.as_str()) {
                Some(Binding::Module(_)) => {}
                Some(Binding::Defs(_)) | None => {
                    for &def in table.definitions(name) {
                        let symbol = &table.files[def.0].symbols[def.1];
                        if symbol.container.as_deref() == Some(q.as_str()) {
                            scores.add(def, base * MEMBER_ROUTE * spec.max(0.3), "type-member");
                        }
                    }
                }
                _ => {}
            }
        }
        let defs = table.definitions(name);
        let foreign: Vec<DefId> = defs.iter().copied().filter(|d| Some(d.0) != own).collect();
        if foreign.is_empty() || foreign.len() > 12 || usage.local {
            continue;
        }
        let shadowed = if local_names.contains(name) { 0.3 } else { 1.0 };
        let share = 1.0 / foreign.len() as f32;
        for def in foreign {
            let symbol = &table.files[def.0].symbols[def.1];
            let in_base = symbol
                .container
                .as_ref()
                .is_some_and(|c| container_names.contains(&**c));
            if in_base {
                scores.add(def, base * MEMBER_ROUTE * spec.max(0.3), "self-member");
            } else if globs.contains(&def.0) && symbol.parent.is_none() {
                scores.add(def, base * IMPORT_ROUTE * (0.5 + 0.5 * spec), "import");
            } else {
                let reason = if usage.best >= FUNCTION_WEIGHT {
                    "near-cursor"
                } else {
                    "file-ref"
                };
                scores.add(def, base * NAME_ROUTE * spec * share * shadowed, reason);
            }
        }
    }
    // Imported names the buffer does not (yet) use elsewhere: likely about to be. Modules it
    // imports whole (or by `*`) lend their top-level definitions a weaker lead.
    let mut imported: Vec<(&&str, &Binding)> = bound.iter().collect();
    imported.sort_by(|a, b| a.0.cmp(b.0));
    let mut whole_modules: Vec<usize> = globs.iter().copied().collect();
    whole_modules.extend(path_modules);
    for (name, binding) in imported {
        match binding {
            Binding::Defs(defs) if !uses.contains_key(*name) => {
                for &def in defs {
                    scores.add(def, UNUSED_IMPORT, "import");
                }
            }
            Binding::Module(file) => whole_modules.push(*file),
            _ => {}
        }
    }
    whole_modules.sort_unstable();
    whole_modules.dedup();
    for file in whole_modules {
        for (index, symbol) in table.files[file].symbols.iter().enumerate() {
            // Only what another module can name: `pub` items in Rust, no `_private` in Python.
            let visible = match table.files[file].lang {
                Lang::Rust => symbol.signature.starts_with("pub"),
                Lang::Python => !symbol.name.starts_with('_'),
            };
            if visible
                && symbol.parent.is_none()
                && !matches!(symbol.kind, SymbolKind::Impl | SymbolKind::Module)
            {
                scores.add(
                    (file, index),
                    MODULE_MEMBER * specificity(&symbol.name),
                    "module-item",
                );
            }
        }
    }
    // The rest of the types in play: members of the strongest types, siblings of the strongest
    // methods (the receiver's other methods).
    let mut strongest: Vec<(DefId, f32)> = scores.map.iter().map(|(d, c)| (*d, c.score)).collect();
    strongest.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (def, score) in strongest.into_iter().take(EXPANDED) {
        let symbol = &table.files[def.0].symbols[def.1];
        let container = match symbol.kind {
            SymbolKind::Class | SymbolKind::Struct | SymbolKind::Enum | SymbolKind::Trait => {
                Some(&*symbol.name)
            }
            SymbolKind::Method => symbol.container.as_deref(),
            _ => None,
        };
        let Some(container) = container else { continue };
        let members = table.members(container);
        let share = score * EXPANSION / (members.len() as f32).sqrt().max(1.0);
        for &member in members {
            if member != def {
                scores.add(member, share, "type-member");
            }
        }
    }

    let mut out: Vec<Candidate> = scores.map.into_values().collect();
    for candidate in &mut out {
        let symbol = &table.files[candidate.def.0].symbols[candidate.def.1];
        if neighbours.contains(&candidate.def.0) {
            candidate.score *= GRAPH_BONUS;
        }
        if recent.contains(&candidate.def.0) {
            candidate.score *= RECENT_BONUS;
        }
        if symbol.kind == SymbolKind::Field {
            candidate.score *= 0.5;
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.def.cmp(&b.def)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieve::extract::parse_file;
    use expect_test::{Expect, expect};
    use std::path::Path;

    /// The focus function and container found for the `$0` cursor in `source`.
    fn check(path: &str, source: &str, expect: Expect) {
        let cursor = source.find("$0").expect("cursor");
        let text = source.replacen("$0", "", 1);
        let file = parse_file(Path::new(path), &text).expect("supported language");
        let focus = focus(&file, cursor);
        let function = text[focus.function.0..focus.function.1]
            .lines()
            .next()
            .unwrap_or("");
        let container = focus
            .container_symbol
            .map(|c| &*file.symbols[c].name)
            .unwrap_or("-");
        expect.assert_eq(&format!("{} | {container}", function.trim()));
    }

    #[test]
    fn focus_is_the_outermost_function() {
        check(
            "a.py",
            "class A:\n    def outer(self):\n        def inner():\n            $0pass\n        return inner\n",
            expect!["def outer(self): | A"],
        );
    }

    #[test]
    fn blank_line_past_the_last_statement_stays_in_the_function() {
        check(
            "a.py",
            "def f():\n    x = 1\n    $0\n\ndef g():\n    pass\n",
            expect!["def f(): | -"],
        );
    }

    #[test]
    fn rust_method_in_impl() {
        check(
            "a.rs",
            "impl Read for Bytes {\n    fn next(&mut self) -> u8 {\n        $0\n    }\n}\n",
            expect!["fn next(&mut self) -> u8 { | Bytes"],
        );
    }

    #[test]
    fn outside_any_function_is_a_line_window() {
        check("a.py", "import os\n$0\n", expect!["import os | -"]);
    }

    #[test]
    fn local_bindings_are_recognised() {
        let text = "def f(self, request, *args):\n    data = request.body\n    for item in data:\n        use(item)\n";
        let header = Some((0, text.find('\n').unwrap_or(0) + 1));
        let at = |needle: &str, nth: usize| {
            let start = text
                .match_indices(needle)
                .nth(nth)
                .map(|(i, _)| i)
                .unwrap_or(0);
            binds_locally(text, start, start + needle.len(), Lang::Python, header)
        };
        assert!(at("request", 0));
        assert!(!at("request", 1));
        assert!(at("args", 0));
        assert!(at("data", 0));
        assert!(!at("data", 1));
        assert!(at("item", 0));
        assert!(!at("use", 0));
        let rust =
            "fn f(line: usize, mut v: Vec<u8>) -> Error {\n    let x = Error::syntax(line);\n}\n";
        let header = Some((0, rust.find('\n').unwrap_or(0) + 1));
        let at = |needle: &str, nth: usize| {
            let start = rust
                .match_indices(needle)
                .nth(nth)
                .map(|(i, _)| i)
                .unwrap_or(0);
            binds_locally(rust, start, start + needle.len(), Lang::Rust, header)
        };
        assert!(at("line", 0));
        assert!(at("v", 0));
        assert!(!at("Error", 0));
        assert!(at("x", 0));
        assert!(!at("line", 1));
    }
}
