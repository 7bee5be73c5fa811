//! The layer order of `ARCHITECTURE.md`, enforced (in the spirit of rust-analyzer's `tidy`
//! tests). The order is written once, in `ARCHITECTURE.md`'s two lists (`<!-- layers: crate -->`
//! for the top-level modules, `<!-- layers: server -->` for the files of `server/`); this test
//! reads them from there, parses every file of `src/` and fails on each path (`crate::…`,
//! `super::…`, `self::…`, in `use` lines or inline) that points at a module not on an earlier
//! line, naming the file and the line. It also fails where any module but `server` names the LSP
//! crate: the core knows nothing of LSP.
//!
//! Comments, string and char literals and `#[cfg(test)]` items (test modules, inline or in their
//! own file) are left out: tests may reach across layers. Inline non-test `mod x { … }` blocks
//! are read as part of their file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The only top-level module that may name the LSP crate.
const LSP_MODULE: &str = "server";
/// Names of the LSP crate and its types module, as they appear in paths.
const LSP_NAMES: [&str; 3] = ["tower_lsp_server", "ls_types", "lsp_types"];

/// One layer list: each name's line (0 = the bottom). `*` stands for every name not listed.
#[derive(Debug, Default)]
struct Order {
    rank: BTreeMap<String, usize>,
    rows: Vec<Vec<String>>,
}

impl Order {
    fn rank(&self, name: &str) -> Option<usize> {
        self.rank.get(name).or_else(|| self.rank.get("*")).copied()
    }

    fn row_of(&self, name: &str) -> String {
        match self.rank(name) {
            Some(rank) => format!("line {}", rank + 1),
            None => "not listed".into(),
        }
    }
}

#[derive(Debug)]
struct Layers {
    /// Top-level modules of the crate.
    crate_order: Order,
    /// Files (direct submodules) of `server/`; `mod` is `server/mod.rs`.
    server_order: Order,
}

/// Reads the numbered list that follows `<!-- layers: {which} -->`: one line per layer, the
/// names in backticks before ` — `.
fn parse_order(architecture: &str, which: &str) -> Result<Order, String> {
    let marker = format!("<!-- layers: {which} -->");
    let lines = architecture
        .lines()
        .skip_while(|line| line.trim() != marker)
        .skip(1)
        .skip_while(|line| line.trim().is_empty());
    let mut order = Order::default();
    for line in lines {
        let line = line.trim();
        let Some((number, rest)) = line.split_once(". ") else {
            break;
        };
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        let names_part = rest.split(" — ").next().unwrap_or(rest);
        let names: Vec<String> = names_part
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            return Err(format!("layer line without `names`: {line}"));
        }
        for name in &names {
            if order.rank.insert(name.clone(), order.rows.len()).is_some() {
                return Err(format!("`{name}` is listed twice in the {which} layers"));
            }
        }
        order.rows.push(names);
    }
    if order.rows.is_empty() {
        return Err(format!("no layer list after `{marker}` in ARCHITECTURE.md"));
    }
    Ok(order)
}

fn parse_layers(architecture: &str) -> Result<Layers, String> {
    Ok(Layers {
        crate_order: parse_order(architecture, "crate")?,
        server_order: parse_order(architecture, "server")?,
    })
}

/// Blanks comments, string literals and char literals, keeping every newline (so that line
/// numbers stay) and every other byte's position.
fn strip(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && next == Some('r')))
            && (i == 0 || !ident(chars[i - 1]))
            && {
                let mut j = i + if c == 'b' { 2 } else { 1 };
                while chars.get(j) == Some(&'#') {
                    j += 1;
                }
                chars.get(j) == Some(&'"')
            }
        {
            // A raw string: r"…", r#"…"#, br"…".
            let mut j = i + if c == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while chars[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(chars[i..j.min(chars.len())].iter().map(|&c| blank(c)));
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\''); a lifetime ('a) is left alone.
            out.push(' ');
            i += 1;
            if chars.get(i) == Some(&'\\') {
                // The backslash and the escaped character (which may be a quote).
                out.push_str("  ");
                i += 2;
            }
            while i < chars.len() && chars[i] != '\'' {
                out.push(blank(chars[i]));
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Blanks every `#[cfg(test)]` item of stripped source; returns the names of test modules
/// declared without a body (`#[cfg(test)] mod tests;`), whose files are test code too.
fn remove_test_items(stripped: &mut String) -> Vec<String> {
    let mut test_files = Vec::new();
    let attribute: Vec<usize> = stripped
        .match_indices("#[cfg(test)]")
        .map(|(i, _)| i)
        .collect();
    let mut bytes = stripped.clone().into_bytes();
    for start in attribute {
        let mut i = start + "#[cfg(test)]".len();
        // Further attributes, then the item up to `;` or its `{ … }`.
        loop {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if bytes.get(i) == Some(&b'#') {
                while i < bytes.len() && bytes[i] != b']' {
                    i += 1;
                }
                i += 1;
            } else {
                break;
            }
        }
        let item_start = i;
        while i < bytes.len() && bytes[i] != b';' && bytes[i] != b'{' {
            i += 1;
        }
        if bytes.get(i) == Some(&b'{') {
            let mut depth = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let head = String::from_utf8_lossy(&bytes[item_start..i]).to_string();
            let words: Vec<&str> = head.split_whitespace().collect();
            if let Some(position) = words.iter().position(|w| *w == "mod")
                && let Some(name) = words.get(position + 1)
            {
                test_files.push(name.to_string());
            }
        }
        let end = (i + 1).min(bytes.len());
        for byte in &mut bytes[start..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
    // Each blanked range starts at `#` and ends at `;` or `}`, so whole characters were
    // replaced by spaces and the bytes are still UTF-8.
    *stripped = String::from_utf8_lossy(&bytes).into_owned();
    test_files
}

/// A path that starts at `crate`, `super` or `self`: its segments (groups `{a, b::c}` expanded)
/// and the line of its first named segment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathRef {
    segments: Vec<String>,
    line: usize,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The paths of stripped source that start with `crate::`, `super::` or `self::`.
fn paths(text: &str) -> Vec<PathRef> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate", "super", "self"]
            .into_iter()
            .find(|root| text[i..].starts_with(root));
        let boundary_before = i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b'$');
        let after_path = i >= 2 && &text[i - 2..i] == "::";
        match starts {
            Some(root) if boundary_before && !after_path => {
                let end = i + root.len();
                let mut j = end;
                while j < bytes.len() && bytes[j] == b' ' {
                    j += 1;
                }
                if text[j..].starts_with("::") {
                    let mut parsed = Vec::new();
                    parse_path(text, &mut i.clone(), vec![], &mut parsed);
                    out.extend(parsed);
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Parses the path at `*at` (segments, `::`, `{…}` groups) into `out`, each with `prefix` in
/// front; leaves `*at` after it.
fn parse_path(text: &str, at: &mut usize, prefix: Vec<String>, out: &mut Vec<PathRef>) {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let skip_space = |at: &mut usize| {
        while *at < bytes.len() && bytes[*at].is_ascii_whitespace() {
            *at += 1;
        }
    };
    let mut segments = prefix;
    let mut line = None;
    loop {
        skip_space(at);
        if *at >= bytes.len() {
            break;
        }
        if bytes[*at] == b'{' {
            *at += 1;
            loop {
                skip_space(at);
                if *at >= bytes.len() {
                    return;
                }
                if bytes[*at] == b'}' {
                    *at += 1;
                    return;
                }
                if bytes[*at] == b',' {
                    *at += 1;
                    continue;
                }
                let before = *at;
                parse_path(text, at, segments.clone(), out);
                if *at == before {
                    *at += 1;
                }
            }
        }
        let start = *at;
        while *at < bytes.len() && (ident(bytes[*at]) || bytes[*at] == b'*') {
            *at += 1;
        }
        if *at == start {
            break;
        }
        if line.is_none() && !matches!(&text[start..*at], "crate" | "super" | "self") {
            line = Some(line_of(text, start));
        }
        segments.push(text[start..*at].to_string());
        let mut j = *at;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if text[j..].starts_with("::") {
            *at = j + 2;
        } else {
            break;
        }
    }
    if !segments.is_empty() {
        let line = line.unwrap_or_else(|| line_of(text, (*at).min(text.len())));
        out.push(PathRef { segments, line });
    }
}

/// The module path of a file under `src/` (`server/hover/explain.rs` → server, hover,
/// explain; `lang/mod.rs` → lang; `lib.rs` → nothing).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let top_level = parts.len() == 1;
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        let root_file = top_level && (stem == "lib" || stem == "main");
        if stem != "mod" && !root_file {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// Resolves `crate::`/`super::`/`self::` against the module the path is written in; None for
/// anything else.
fn absolute(module: &[String], segments: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// One import against the order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    line: usize,
    message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Checks `files` (path relative to the crate root, e.g. `src/lang/mod.rs`, and source).
fn check(layers: &Layers, files: &BTreeMap<String, String>) -> Vec<Violation> {
    let mut violations = Vec::new();
    // Modules: the top-level ones and the files of server/.
    let mut top_modules = BTreeSet::new();
    let mut server_units = BTreeSet::new();
    for path in files.keys() {
        let Some(relative) = path.strip_prefix("src/") else {
            continue;
        };
        let module = module_path(Path::new(relative));
        if let Some(top) = module.first() {
            top_modules.insert(top.clone());
            if top == LSP_MODULE
                && let Some(unit) = module.get(1)
            {
                server_units.insert(unit.clone());
            }
        }
    }
    for module in &top_modules {
        if layers.crate_order.rank(module).is_none() {
            violations.push(Violation {
                file: "ARCHITECTURE.md".into(),
                line: 0,
                message: format!("module `{module}` is not in the crate layer list"),
            });
        }
    }
    // Test modules in their own file (`#[cfg(test)] mod tests;`): the file, or the folder.
    let mut test_files = BTreeSet::new();
    let mut test_dirs = BTreeSet::new();
    let mut stripped_files = BTreeMap::new();
    for (path, source) in files {
        let mut stripped = strip(source);
        let tests = remove_test_items(&mut stripped);
        let file = Path::new(path);
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs" | "main.rs") => file.parent().map(Path::to_path_buf),
            _ => Some(file.with_extension("")),
        };
        if let Some(dir) = dir {
            for name in tests {
                let slashes = |p: PathBuf| p.to_string_lossy().replace('\\', "/");
                test_files.insert(slashes(dir.join(format!("{name}.rs"))));
                test_dirs.insert(format!("{}/", slashes(dir.join(&name))));
            }
        }
        stripped_files.insert(path.clone(), stripped);
    }
    for (path, text) in &stripped_files {
        let Some(relative) = path.strip_prefix("src/") else {
            continue;
        };
        if test_files.contains(path) || test_dirs.iter().any(|dir| path.starts_with(dir)) {
            continue;
        }
        let module = module_path(Path::new(relative));
        let Some(own_top) = module.first().cloned() else {
            continue; // lib.rs and main.rs only declare and start.
        };
        // The LSP crate: one violation per line that names it.
        if own_top != LSP_MODULE {
            for (number, line) in text.lines().enumerate() {
                let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
                if let Some(name) = words.into_iter().find(|w| LSP_NAMES.contains(w)) {
                    violations.push(Violation {
                        file: path.clone(),
                        line: number + 1,
                        message: format!(
                            "`{own_top}` names `{name}`: only `{LSP_MODULE}` may use the LSP crate"
                        ),
                    });
                }
            }
        }
        for reference in paths(text) {
            let Some(target) = absolute(&module, &reference.segments) else {
                continue;
            };
            let Some(target_top) = target.first() else {
                continue;
            };
            if !top_modules.contains(target_top) {
                continue; // an item of the crate root, or `*`
            }
            let shown = reference.segments.join("::");
            if *target_top != own_top {
                let (own_rank, target_rank) = (
                    layers.crate_order.rank(&own_top),
                    layers.crate_order.rank(target_top),
                );
                let allowed =
                    matches!((own_rank, target_rank), (Some(own), Some(target)) if target < own);
                if !allowed {
                    violations.push(Violation {
                        file: path.clone(),
                        line: reference.line,
                        message: format!(
                            "`{own_top}` ({}) imports `{target_top}` ({}) through `{shown}`: \
                             a module may import only modules on earlier lines of ARCHITECTURE.md's crate layers",
                            layers.crate_order.row_of(&own_top),
                            layers.crate_order.row_of(target_top),
                        ),
                    });
                }
                continue;
            }
            if own_top != LSP_MODULE {
                continue;
            }
            // Inside server/: the file (direct submodule) level.
            let unit = |module: &[String]| match module.get(1) {
                Some(name) if server_units.contains(name) => name.clone(),
                _ => "mod".to_string(),
            };
            let own_unit = unit(&module);
            let target_unit = unit(&target);
            if own_unit == target_unit {
                continue;
            }
            let (own_rank, target_rank) = (
                layers.server_order.rank(&own_unit),
                layers.server_order.rank(&target_unit),
            );
            let allowed =
                matches!((own_rank, target_rank), (Some(own), Some(target)) if target < own);
            if !allowed {
                violations.push(Violation {
                    file: path.clone(),
                    line: reference.line,
                    message: format!(
                        "server file `{own_unit}` ({}) imports `{target_unit}` ({}) through `{shown}`: \
                         feature files use only session, its state and shared, never each other",
                        layers.server_order.row_of(&own_unit),
                        layers.server_order.row_of(&target_unit),
                    ),
                });
            }
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn repository_layers() -> Layers {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md is readable");
    parse_layers(&architecture).unwrap_or_else(|e| panic!("ARCHITECTURE.md: {e}"))
}

#[test]
fn src_follows_the_layer_order_of_architecture_md() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = repository_layers();
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    let files: BTreeMap<String, String> = paths
        .iter()
        .map(|path| {
            let relative = path
                .strip_prefix(root)
                .expect("under the crate root")
                .to_string_lossy()
                .replace('\\', "/");
            let source = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (relative, source)
        })
        .collect();
    assert!(files.len() > 50, "src/ was read ({} files)", files.len());
    let violations = check(&layers, &files);
    assert!(
        violations.is_empty(),
        "{} import(s) against the layer order of ARCHITECTURE.md:\n{}",
        violations.len(),
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn architecture_md_lists_the_layers() {
    let layers = repository_layers();
    let bottom = &layers.crate_order.rows[0];
    assert!(bottom.contains(&"syntax".to_string()), "{bottom:?}");
    assert!(
        layers.crate_order.rank("lang") < layers.crate_order.rank("index"),
        "lang is below index"
    );
    assert!(layers.crate_order.rank("cli") > layers.crate_order.rank("server"));
    assert!(
        layers.server_order.rank("*").is_some(),
        "server features row"
    );
    assert!(layers.server_order.rank("session") < layers.server_order.rank("shared"));
}

// The checker itself, on inline fixtures: it must be able to fail.

const FIXTURE_LAYERS: &str = "\
Some prose.

<!-- layers: crate -->
1. `syntax` — bottom
2. `lang`
3. `index` `text` — two independent modules
4. `server`

<!-- layers: server -->
1. `session` — state
2. `shared`
3. `*` — features
4. `mod` — the hub
";

fn fixture(files: &[(&str, &str)]) -> Vec<String> {
    let layers = parse_layers(FIXTURE_LAYERS).expect("fixture layers parse");
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect();
    check(&layers, &files)
        .iter()
        .map(|v| format!("{}:{}", v.file, v.line))
        .collect()
}

#[test]
fn a_back_edge_is_caught_with_its_file_and_line() {
    let violations = fixture(&[
        ("src/syntax.rs", "pub struct Span;\n"),
        (
            "src/lang/analyze.rs",
            "//! Analysis.\n\nuse crate::syntax::Span;\nuse crate::index::FileIndex;\n",
        ),
        ("src/index/mod.rs", "use crate::lang::analyze;\n"),
        ("src/text.rs", "pub fn f() {}\n"),
    ]);
    assert_eq!(violations, ["src/lang/analyze.rs:4"]);
}

#[test]
fn modules_on_one_line_may_not_import_each_other() {
    let violations = fixture(&[
        ("src/index/mod.rs", "pub fn f() { crate::text::g() }\n"),
        ("src/text.rs", "pub fn g() {}\n"),
    ]);
    assert_eq!(violations, ["src/index/mod.rs:1"]);
}

#[test]
fn groups_super_paths_and_inline_paths_are_resolved() {
    let violations = fixture(&[
        ("src/syntax.rs", "pub struct Span;\n"),
        (
            "src/lang/mod.rs",
            "mod file;\nuse crate::{\n    syntax::Span,\n    index::FileIndex,\n};\n",
        ),
        (
            "src/lang/file.rs",
            "use super::super::syntax::Span;\nfn f() -> super::super::server::X { todo!() }\n",
        ),
        ("src/index/mod.rs", "pub struct FileIndex;\n"),
        ("src/server/mod.rs", "pub struct X;\n"),
    ]);
    assert_eq!(violations, ["src/lang/file.rs:2", "src/lang/mod.rs:4"]);
}

#[test]
fn comments_strings_and_test_code_are_left_out() {
    let violations = fixture(&[
        ("src/syntax.rs", "pub struct Span;\n"),
        (
            "src/lang/mod.rs",
            "//! Uses `crate::index` in prose.\n\
             /* crate::index::A /* nested */ crate::index::B */\n\
             const S: &str = \"crate::index::C\";\n\
             const R: &str = r#\"crate::index::D \"quoted\"\"#;\n\
             const Q: char = '\"';\n\
             fn f<'a>(x: &'a str) -> &'a str { x }\n\
             #[cfg(test)]\n\
             mod tests;\n\
             #[cfg(test)]\n\
             mod more {\n    use crate::index::E;\n    fn g() { if true { crate::index::F; } }\n}\n\
             use crate::index::G;\n",
        ),
        ("src/lang/tests.rs", "use crate::index::H;\n"),
        ("src/index/mod.rs", "pub struct A;\n"),
    ]);
    assert_eq!(violations, ["src/lang/mod.rs:14"]);
}

#[test]
fn the_lsp_crate_is_caught_outside_server() {
    let violations = fixture(&[
        ("src/syntax.rs", "pub struct Span;\n"),
        (
            "src/index/mod.rs",
            "// tower_lsp_server in a comment is fine\nuse tower_lsp_server::ls_types::Uri;\n",
        ),
        (
            "src/server/mod.rs",
            "use tower_lsp_server::ls_types::Uri;\n",
        ),
    ]);
    assert_eq!(violations, ["src/index/mod.rs:2"]);
}

#[test]
fn server_feature_files_form_a_star() {
    let violations = fixture(&[
        ("src/syntax.rs", "pub struct Span;\n"),
        (
            "src/server/mod.rs",
            "mod session;\nmod shared;\nmod hover;\nmod definition;\nuse definition::definition;\n",
        ),
        ("src/server/session.rs", "pub struct Session;\n"),
        (
            "src/server/shared.rs",
            "use super::session::Session;\npub fn resolve_at() {}\n",
        ),
        (
            "src/server/definition.rs",
            "use super::session::Session;\nuse super::shared::resolve_at;\npub fn definition() {}\n",
        ),
        (
            "src/server/hover/mod.rs",
            "mod explain;\nuse super::definition::definition;\nuse super::shared::resolve_at;\n",
        ),
        (
            "src/server/hover/explain.rs",
            "use super::super::session::Session;\nuse crate::server::definition::definition;\nuse super::Thing;\n",
        ),
        (
            "src/server/session_helper.rs",
            "use crate::server::shared::resolve_at;\n",
        ),
    ]);
    // hover → definition twice (a feature importing a feature), and nothing else: features may
    // use session and shared, the hub may use anything, a feature's own submodules are its own.
    assert_eq!(
        violations,
        ["src/server/hover/explain.rs:2", "src/server/hover/mod.rs:2"]
    );
    let state_uses_shared = fixture(&[
        ("src/server/mod.rs", "mod session;\nmod shared;\n"),
        ("src/server/session.rs", "use super::shared::helper;\n"),
        ("src/server/shared.rs", "pub fn helper() {}\n"),
    ]);
    assert_eq!(state_uses_shared, ["src/server/session.rs:1"]);
}

#[test]
fn a_module_missing_from_the_list_is_caught() {
    let violations = fixture(&[("src/newthing.rs", "pub fn f() {}\n")]);
    assert_eq!(violations, ["ARCHITECTURE.md:0"]);
}
