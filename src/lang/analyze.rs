//! Turning a parsed file into a `FileIndex`: runs a language's `tags` and `imports` queries and
//! derives what queries cannot say (parents, qualified names, signatures, docs, methods, and
//! Python instance attributes: `self.x = …` in a method, which the tree walk meets anyway).
//!
//! References are deduplicated per enclosing definition: each definition (and, outside any,
//! each top-level item) records the first use of each name inside it. That is what retrieval and "who uses
//! this" need, at a fraction of the memory of every occurrence.

use std::path::Path;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use tree_sitter::{Node, QueryCursor, StreamingIterator, Tree};

use super::{CaptureRole, FileIndex, Lang};
use crate::syntax::{Import, Reference, Span, Symbol, SymbolKind};

/// Signatures longer than this (a constant holding a big literal) are cut.
const MAX_SIGNATURE_CHARS: usize = 200;

/// Builds the index entry of one file from its text and syntax tree.
pub fn analyze(path: &Path, lang: Lang, text: &str, tree: &Tree) -> FileIndex {
    analyze_with(path, lang, text, tree, &lang.queries().combined)
}

/// `analyze` with the given tags + imports query.
pub(crate) fn analyze_with(
    path: &Path,
    lang: Lang,
    text: &str,
    tree: &Tree,
    query: &super::CompiledQuery,
) -> FileIndex {
    let parts = analyze_parts(lang, text, tree, query, None);
    file_index(path, lang, text, tree, parts)
}

/// What analysis finds in a file or in some of its top-level items.
pub(crate) struct Parts {
    pub(crate) symbols: Vec<Symbol>,
    pub(crate) imports: Vec<Import>,
    pub(crate) references: Vec<Reference>,
}

pub(crate) fn file_index(
    path: &Path,
    lang: Lang,
    text: &str,
    tree: &Tree,
    parts: Parts,
) -> FileIndex {
    let Parts {
        mut symbols,
        mut imports,
        mut references,
    } = parts;
    // Vectors grown by doubling keep up to half their capacity unused; the index holds them
    // for the whole session.
    symbols.shrink_to_fit();
    imports.shrink_to_fit();
    references.shrink_to_fit();
    FileIndex {
        path: path.to_path_buf(),
        lang,
        text: Arc::from(text),
        content_hash: content_hash(text),
        symbols,
        imports,
        references,
        parse_errors: count_parse_errors(tree.root_node()),
    }
}

/// The byte ranges of the top-level items (children of the root), in order.
pub(crate) fn top_level_ranges(root: Node) -> Vec<std::ops::Range<usize>> {
    let mut walk = root.walk();
    root.children(&mut walk)
        .map(|child| child.byte_range())
        .collect()
}

/// Analyzes the whole tree, or with `only` just the top-level items whose byte ranges are
/// listed (sorted, whole items): what lies outside is not looked at, except the root node's
/// own query matches, which are filtered. Results depend on nothing outside the top-level
/// item they come from (references are deduplicated per definition, or per top-level item
/// outside any), which is what lets `reanalyze` redo only the edited items.
pub(crate) fn analyze_parts(
    lang: Lang,
    text: &str,
    tree: &Tree,
    query: &super::CompiledQuery,
    only: Option<&[super::incremental::Region]>,
) -> Parts {
    let source = text.as_bytes();
    let rules = lang.reference_rules();
    let root = tree.root_node();
    let units = top_level_ranges(root);

    let mut found = Found::default();
    match (&query.root_kinds, only) {
        (Some(root_kinds), None) => walk(rules, root, text, query, root_kinds, &mut found),
        (Some(root_kinds), Some(only)) => {
            let inside = |byte: usize| only.iter().any(|region| region.bytes.contains(&byte));
            let mut at_root = Found::default();
            if root_kinds
                .get(usize::from(root.kind_id()))
                .copied()
                .unwrap_or(false)
            {
                let mut cursor = QueryCursor::new();
                cursor.set_max_start_depth(Some(0));
                let mut matches = cursor.matches(&query.query, root, source);
                while let Some(each) = matches.next() {
                    at_root.add_match(each.captures(), query, text);
                }
            }
            found.definitions.extend(
                at_root
                    .definitions
                    .into_iter()
                    .filter(|d| inside(d.0.start_byte())),
            );
            found.not_references = at_root.not_references;
            found.reference_ranges.extend(
                at_root
                    .reference_ranges
                    .into_iter()
                    .filter(|range| inside(range.start)),
            );
            let mut walk_units = root.walk();
            for unit in root.children(&mut walk_units) {
                if inside(unit.start_byte()) {
                    walk(rules, unit, text, query, root_kinds, &mut found);
                }
            }
            if !at_root.imports.is_empty() {
                found.imports.extend(
                    at_root.imports.into_iter().filter(|import| {
                        only.iter().any(|region| region.rows.contains(&import.line))
                    }),
                );
                found.import_ranges.extend(
                    at_root
                        .import_ranges
                        .into_iter()
                        .filter(|range| inside(range.start)),
                );
            }
        }
        (None, _) => {
            // A user query whose patterns do not all start with a plain node: run it over the
            // whole tree, then walk for references. (`reanalyze` never asks for part of it.)
            let mut cursor = QueryCursor::new();
            let mut matches = cursor.matches(&query.query, root, source);
            while let Some(each) = matches.next() {
                found.add_match(each.captures(), query, text);
            }
            walk(rules, root, text, query, &[], &mut found);
        }
    }
    let Found {
        definitions,
        attribute_targets,
        reference_ranges,
        mut not_references,
        mut imports,
        mut import_ranges,
    } = found;

    imports.sort_by_key(|import| import.line);
    import_ranges.sort_by_key(|range| (range.start, range.end));
    import_ranges.dedup();
    let mut definitions = definitions;
    definitions.extend(instance_attributes(text, &attribute_targets));
    let mut names = Names::default();
    let symbols = build_symbols(lang, text, definitions, &mut names);
    for symbol in &symbols {
        not_references.insert(symbol.name_span.start_byte);
    }
    let references = collect_references(
        lang,
        text,
        &symbols,
        &units,
        reference_ranges,
        &not_references,
        &import_ranges,
        &mut names,
    );
    Parts {
        symbols,
        imports,
        references,
    }
}

/// A 64-bit hash of a text (XXH3: stable across versions and platforms, and a few percent of
/// indexing time faster than the SHA-256 it replaced), which tells whether a file changed.
pub fn content_hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

fn node_text<'a>(node: Node, text: &'a str) -> &'a str {
    text.get(node.byte_range()).unwrap_or("")
}

pub(crate) fn span_of(node: Node) -> Span {
    let start = node.start_position();
    let end = node.end_position();
    Span {
        start_byte: node.start_byte(),
        end_byte: node.end_byte(),
        start_line: start.row as u32,
        start_col: start.column as u32,
        end_line: end.row as u32,
        end_col: end.column as u32,
    }
}

/// Names shared within a file: one allocation per distinct name, for its definitions and
/// references alike.
type Names<'a> = FxHashMap<&'a str, Arc<str>>;

fn build_symbols<'a>(
    lang: Lang,
    text: &'a str,
    mut found: Vec<(Node, Node, SymbolKind)>,
    names: &mut Names<'a>,
) -> Vec<Symbol> {
    // Outer definitions before inner ones that start at the same byte.
    found.sort_by_key(|(node, _, _)| (node.start_byte(), std::cmp::Reverse(node.end_byte())));
    // (`self.a, self.b = …` defines two names with one node.)
    found.dedup_by_key(|(node, name, _)| (node.byte_range(), name.start_byte()));

    let mut symbols: Vec<Symbol> = Vec::with_capacity(found.len());
    // Open definitions: (end byte, index into `symbols`).
    let mut open: Vec<(usize, usize)> = Vec::new();
    // (parent, name) of every member so far: an attribute is filed once per class.
    let mut members: FxHashSet<(usize, &str)> = FxHashSet::default();
    for (node, name_node, kind) in found {
        while open
            .last()
            .is_some_and(|&(end, _)| end <= node.start_byte() || end < node.end_byte())
        {
            open.pop();
        }
        let mut parent = open.last().map(|&(_, index)| index);
        if kind == SymbolKind::Field && text[..name_node.start_byte()].ends_with("self.") {
            // `self.x = …` belongs to the class of the method it is assigned in, once.
            let class = open
                .iter()
                .rev()
                .map(|&(_, index)| index)
                .find(|&index| symbols[index].kind == SymbolKind::Class);
            let name_text = node_text(name_node, text);
            let in_method = open
                .iter()
                .rev()
                .map(|&(_, index)| symbols[index].kind)
                .find(|&kind| kind != SymbolKind::Field)
                == Some(SymbolKind::Method);
            match class {
                Some(class) if in_method && !members.contains(&(class, name_text)) => {
                    parent = Some(class)
                }
                _ => continue,
            }
        }
        let kind = match (kind, parent.map(|index| symbols[index].kind)) {
            (
                SymbolKind::Function,
                Some(SymbolKind::Class | SymbolKind::Impl | SymbolKind::Trait),
            ) => SymbolKind::Method,
            (kind, _) => kind,
        };
        let name_text = node_text(name_node, text);
        if let Some(parent) = parent {
            members.insert((parent, name_text));
        }
        let name = names
            .entry(name_text)
            .or_insert_with(|| name_text.into())
            .clone();
        let (container, qualified_name) = match parent {
            Some(index) => {
                let parent = &symbols[index];
                let qualified =
                    format!("{}{}{}", parent.qualified_name, lang.path_separator(), name);
                (Some(parent.name.clone()), qualified.into_boxed_str())
            }
            None => (None, name_text.into()),
        };
        symbols.push(Symbol {
            signature: signature(lang, node, name_node, text).into_boxed_str(),
            doc: match lang {
                Lang::Python => python_doc(node, text),
                Lang::Rust => rust_doc(node, text),
            }
            .map(String::into_boxed_str),
            name,
            kind,
            container,
            qualified_name,
            span: span_of(node),
            name_span: span_of(name_node),
            parent,
        });
        open.push((node.end_byte(), symbols.len() - 1));
    }
    symbols
}

/// An attribute on the left of an assignment: `x.name = …`, `x.name, y = …`.
#[derive(Debug, Clone, Copy)]
struct AttributeTarget<'t> {
    assignment: Node<'t>,
    /// The assignment's `left`: the attribute, or the list of targets holding it.
    left: Node<'t>,
    attribute: Node<'t>,
    name: Node<'t>,
}

/// `self.name = …`, `self.name: T = …` and `self.a, self.b = …` among the walk's assignment
/// targets: the assignment and the name, as field definitions (`build_symbols` files them under
/// the method's class).
fn instance_attributes<'t>(
    text: &str,
    targets: &[AttributeTarget<'t>],
) -> Vec<(Node<'t>, Node<'t>, SymbolKind)> {
    targets
        .iter()
        .filter(|target| {
            text[..target.name.start_byte()].ends_with("self.")
                && target
                    .attribute
                    .child_by_field_name("object")
                    .is_some_and(|object| &text[object.byte_range()] == "self")
                && target.assignment.child_by_field_name("left") == Some(target.left)
        })
        .map(|target| (target.assignment, target.name, SymbolKind::Field))
        .collect()
}

/// The header of a definition up to its body, whitespace-collapsed.
fn signature(lang: Lang, node: Node, name_node: Node, text: &str) -> String {
    let end = match node.child_by_field_name("body") {
        // A tuple struct's fields are its signature.
        Some(body) if body.kind() == "ordered_field_declaration_list" => node.end_byte(),
        Some(body) => match lang {
            // Up to and including the `:`; a comment may sit between it and the block.
            Lang::Python => {
                let mut walk = node.walk();
                node.children(&mut walk)
                    .filter(|child| child.kind() == ":" && child.end_byte() <= body.start_byte())
                    .last()
                    .map_or(body.start_byte(), |colon| colon.end_byte())
            }
            Lang::Rust => body.start_byte(),
        },
        None if node.kind() == "macro_definition" => name_node.end_byte(),
        None => node.end_byte(),
    };
    let header = text.get(node.start_byte()..end).unwrap_or("");
    let mut signature = String::with_capacity(header.len().min(MAX_SIGNATURE_CHARS + 4));
    for word in header.split_whitespace() {
        if !signature.is_empty() {
            signature.push(' ');
        }
        signature.push_str(word);
    }
    if lang == Lang::Rust && signature.ends_with(';') {
        signature.pop();
    }
    if let Some((cut, _)) = signature.char_indices().nth(MAX_SIGNATURE_CHARS) {
        signature.truncate(cut);
        signature.push('…');
    }
    signature.shrink_to_fit();
    signature
}

/// The docstring of a class/function (first statement of its body), or of a module-level or
/// class-level assignment (a string statement right after it, the Sphinx convention).
fn python_doc(node: Node, text: &str) -> Option<String> {
    let statement = match node.child_by_field_name("body") {
        Some(body) => {
            let mut walk = body.walk();
            body.named_children(&mut walk)
                .find(|child| child.kind() != "comment")?
        }
        None => {
            // Most assignments have no docstring: look at the text before asking the tree for
            // the parent and sibling (each a walk down from the root).
            let after = text.get(node.end_byte()..).unwrap_or("").trim_start();
            let after = after.trim_start_matches(['r', 'R', 'b', 'B', 'u', 'U', 'f', 'F']);
            if !after.starts_with(['"', '\'']) {
                return None;
            }
            let statement = node
                .parent()
                .filter(|p| p.kind() == "expression_statement")?;
            statement.next_named_sibling()?
        }
    };
    if statement.kind() != "expression_statement" || statement.named_child_count() != 1 {
        return None;
    }
    let mut string = statement.named_child(0)?;
    if string.kind() == "concatenated_string" {
        string = string.named_child(0)?;
    }
    if string.kind() != "string" {
        return None;
    }
    let value = python_string_value(node_text(string, text))?;
    let doc = clean_docstring(value);
    (!doc.is_empty()).then_some(doc)
}

/// The characters between the quotes of a Python string literal, prefixes (`r`, `b`, `f`...)
/// dropped. Escapes are left as written.
fn python_string_value(literal: &str) -> Option<&str> {
    let body = literal.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    ["\"\"\"", "'''", "\"", "'"].into_iter().find_map(|quote| {
        let inner = body.strip_prefix(quote)?.strip_suffix(quote)?;
        Some(inner)
    })
}

/// `inspect.cleandoc`: strip the common indentation of all lines but the first, and leading
/// and trailing blank lines.
fn clean_docstring(value: &str) -> String {
    let lines: Vec<&str> = value.lines().collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let cleaned: Vec<&str> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                line.trim()
            } else {
                line.get(indent..)
                    .unwrap_or_else(|| line.trim_start())
                    .trim_end()
            }
        })
        .collect();
    let first = cleaned.iter().position(|line| !line.is_empty());
    let last = cleaned.iter().rposition(|line| !line.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => cleaned[first..=last].join("\n"),
        _ => String::new(),
    }
}

/// Outer doc comments (`///`, `/** */`) before the item, attributes in between skipped; for an
/// inline `mod`, the inner doc comments (`//!`) at the top of its body follow them.
fn rust_doc(node: Node, text: &str) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    // Only a doc comment or an attribute can end right before a documented item: check the
    // text before asking the tree for siblings (each a walk down from the root).
    let before_text = text.get(..node.start_byte()).unwrap_or("").trim_end();
    let last_line = before_text.rsplit('\n').next().unwrap_or("").trim_start();
    let may_have_doc = before_text.ends_with([']', '/']) || last_line.starts_with("//");
    let mut sibling = if may_have_doc {
        node.prev_sibling()
    } else {
        None
    };
    let mut before: Vec<Node> = Vec::new();
    while let Some(previous) = sibling {
        match previous.kind() {
            "attribute_item" => {}
            "line_comment" | "block_comment"
                if doc_comment_body(previous, text, false).is_some() =>
            {
                before.push(previous)
            }
            _ => break,
        }
        sibling = previous.prev_sibling();
    }
    for comment in before.iter().rev() {
        if let Some(body) = doc_comment_body(*comment, text, false) {
            lines.extend(body);
        }
    }
    if node.kind() == "mod_item"
        && let Some(body) = node.child_by_field_name("body")
    {
        let mut walk = body.walk();
        for child in body.named_children(&mut walk) {
            match doc_comment_body(child, text, true) {
                Some(body) => lines.extend(body),
                None if child.kind().ends_with("comment") => {}
                None => break,
            }
        }
    }
    let doc = lines.join("\n");
    let doc = doc.trim_matches('\n');
    (!doc.is_empty()).then(|| doc.to_string())
}

/// The lines of a doc comment without its markers, or None if `node` is not a doc comment of
/// the wanted kind (outer `///`, `/** */`; inner `//!`, `/*! */`).
fn doc_comment_body(node: Node, text: &str, inner: bool) -> Option<Vec<String>> {
    let raw = node_text(node, text).trim_end_matches(['\n', '\r']);
    let (line_marker, block_marker) = if inner {
        ("//!", "/*!")
    } else {
        ("///", "/**")
    };
    if let Some(rest) = raw.strip_prefix(line_marker) {
        if !inner && rest.starts_with('/') {
            return None; // `////` is an ordinary comment
        }
        return Some(vec![rest.strip_prefix(' ').unwrap_or(rest).to_string()]);
    }
    let rest = raw.strip_prefix(block_marker)?.strip_suffix("*/")?;
    if !inner && (rest.starts_with('*') || rest.is_empty()) {
        return None; // `/***` and `/**/` are ordinary comments
    }
    Some(
        rest.lines()
            .map(|line| {
                let line = line.trim();
                let line = line.strip_prefix('*').unwrap_or(line);
                line.strip_prefix(' ').unwrap_or(line).to_string()
            })
            .collect(),
    )
}

fn is_import_role(role: CaptureRole) -> bool {
    matches!(
        role,
        CaptureRole::Import
            | CaptureRole::ImportModule
            | CaptureRole::ImportName
            | CaptureRole::ImportAlias
            | CaptureRole::ImportGlob
            | CaptureRole::ImportUseTree
            | CaptureRole::ImportMod
    )
}

/// Turns one match of the imports patterns into imports; records the statement's byte range
/// (identifiers inside it are not references).
fn import_from_match(
    captures: &[tree_sitter::QueryCapture],
    query: &super::CompiledQuery,
    text: &str,
    imports: &mut Vec<Import>,
    ranges: &mut Vec<std::ops::Range<usize>>,
) {
    let mut statement = None;
    let mut module = None;
    let mut name = None;
    let mut alias = None;
    let mut glob = false;
    let mut use_tree = None;
    let mut mod_name = None;
    for capture in captures {
        match query.role(capture.index) {
            CaptureRole::Import => statement = Some(capture.node),
            CaptureRole::ImportModule => module = Some(path_text(capture.node, text)),
            CaptureRole::ImportName => name = Some(path_text(capture.node, text)),
            CaptureRole::ImportAlias => alias = Some(path_text(capture.node, text)),
            CaptureRole::ImportGlob => glob = true,
            CaptureRole::ImportUseTree => use_tree = Some(capture.node),
            CaptureRole::ImportMod => mod_name = Some(path_text(capture.node, text)),
            _ => {}
        }
    }
    let Some(anchor) = statement.or(use_tree) else {
        return;
    };
    let line = anchor.start_position().row as u32;
    ranges.push(anchor.byte_range());
    if let Some(tree) = use_tree {
        flatten_use_tree(tree, "", text, line, imports);
    } else if let Some(mod_name) = mod_name {
        imports.push(Import {
            module: format!("self::{mod_name}"),
            name: None,
            alias: None,
            glob: false,
            line,
        });
    } else if let Some(module) = module {
        imports.push(Import {
            module,
            name,
            alias,
            glob,
            line,
        });
    }
}

/// The text of a path node with whitespace removed (`a :: b` and multi-line paths).
fn path_text(node: Node, text: &str) -> String {
    node_text(node, text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Flattens a Rust use tree into one import per name.
fn flatten_use_tree(node: Node, prefix: &str, text: &str, line: u32, out: &mut Vec<Import>) {
    let join = |path: &str| -> String {
        match (prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}::{path}"),
        }
    };
    match node.kind() {
        "use_as_clause" => {
            let path = node
                .child_by_field_name("path")
                .map(|path| path_text(path, text))
                .unwrap_or_default();
            let alias = node
                .child_by_field_name("alias")
                .map(|alias| path_text(alias, text));
            push_use_path(&join(&path), alias, line, out);
        }
        "use_wildcard" => {
            let path = node
                .named_child(0)
                .filter(|child| !child.kind().ends_with("comment"))
                .map(|path| path_text(path, text))
                .unwrap_or_default();
            out.push(Import {
                module: join(&path).trim_start_matches("::").to_string(),
                name: None,
                alias: None,
                glob: true,
                line,
            });
        }
        "scoped_use_list" => {
            let path = node
                .child_by_field_name("path")
                .map(|path| path_text(path, text))
                .unwrap_or_default();
            if let Some(list) = node.child_by_field_name("list") {
                flatten_use_tree(list, &join(&path), text, line, out);
            }
        }
        "use_list" => {
            let mut walk = node.walk();
            for child in node.named_children(&mut walk) {
                if !child.kind().ends_with("comment") {
                    flatten_use_tree(child, prefix, text, line, out);
                }
            }
        }
        kind if kind.ends_with("comment") => {}
        _ => push_use_path(&join(&path_text(node, text)), None, line, out),
    }
}

/// `a::b::C` → module `a::b`, name `C`; `a::b::self` → module `a`, name `b`; `serde` → module
/// `serde`, no name.
fn push_use_path(path: &str, alias: Option<String>, line: u32, out: &mut Vec<Import>) {
    let path = path.trim_start_matches("::");
    let path = path.strip_suffix("::self").unwrap_or(path);
    let (module, name) = match path.rsplit_once("::") {
        Some((module, name)) => (module.to_string(), Some(name.to_string())),
        None => (path.to_string(), None),
    };
    out.push(Import {
        module,
        name,
        alias,
        glob: false,
        line,
    });
}

/// What the query matches and the reference walk found in a tree, before symbols are built.
#[derive(Default)]
struct Found<'t> {
    definitions: Vec<(Node<'t>, Node<'t>, SymbolKind)>,
    /// Each `x.name = …` (or `x.name, y = …`) the walk met (Python).
    attribute_targets: Vec<AttributeTarget<'t>>,
    /// Byte ranges of identifiers that may be uses.
    reference_ranges: Vec<std::ops::Range<usize>>,
    not_references: FxHashSet<usize>,
    imports: Vec<Import>,
    import_ranges: Vec<std::ops::Range<usize>>,
}

impl<'t> Found<'t> {
    fn add_match(
        &mut self,
        captures: &[tree_sitter::QueryCapture<'t>],
        query: &super::CompiledQuery,
        text: &str,
    ) {
        if captures
            .iter()
            .any(|capture| is_import_role(query.role(capture.index)))
        {
            import_from_match(
                captures,
                query,
                text,
                &mut self.imports,
                &mut self.import_ranges,
            );
            return;
        }
        let mut definition = None;
        let mut name = None;
        for capture in captures {
            match query.role(capture.index) {
                CaptureRole::Definition(kind) => definition = Some((capture.node, kind)),
                CaptureRole::Name => name = Some(capture.node),
                CaptureRole::Reference => self.reference_ranges.push(capture.node.byte_range()),
                CaptureRole::ReferenceIgnore => {
                    self.not_references.insert(capture.node.start_byte());
                }
                _ => {}
            }
        }
        if let (Some((node, kind)), Some(name)) = (definition, name) {
            self.definitions.push((node, name, kind));
        }
    }
}

/// One cursor walk over the tree: collects the identifiers that are uses, not bindings
/// (`lang.reference_rules`), and runs `query` at each node whose kind starts one of its
/// patterns (`root_kinds`, indexed by kind id), limited to matches rooted there. A query
/// cursor walks the whole tree on its own, and a tree-sitter walk costs about a fifth of the
/// parse: one walk instead of two (and no catch-all identifier pattern) is most of the
/// indexing time saved. Expressions a language can lex (`ReferenceRules::lexer_for`) are not
/// descended: the lexer reads their uses off the text, which takes a third off what indexing
/// adds to the parse.
fn walk<'t>(
    rules: &super::ReferenceRules,
    root: Node<'t>,
    text: &str,
    query: &super::CompiledQuery,
    root_kinds: &[bool],
    found: &mut Found<'t>,
) {
    let mut query_cursor = QueryCursor::new();
    query_cursor.set_max_start_depth(Some(0));
    let mut cursor = root.walk();
    // Kinds of the nodes above the cursor's node.
    let mut parents: Vec<(u16, Node<'t>)> = Vec::new();
    let self_attributes = rules.self_attributes;
    'visit: loop {
        let node = cursor.node();
        let kind = node.kind_id();
        if root_kinds.get(usize::from(kind)).copied().unwrap_or(false) {
            let mut matches = query_cursor.matches(&query.query, node, text.as_bytes());
            while let Some(each) = matches.next() {
                found.add_match(each.captures(), query, text);
            }
        }
        let parent = parents.last().map_or(u16::MAX, |&(kind, _)| kind);
        if rules.is_identifier(kind) {
            if !rules.is_binding(parent, cursor.field_id()) {
                found.reference_ranges.push(node.byte_range());
                // `….name = …`: a candidate instance attribute, checked by `instance_attributes`.
                if let Some(kinds) = self_attributes
                    && parent == kinds.attribute
                {
                    match parents[..] {
                        [.., (assignment, assignment_node), (_, attribute_node)]
                            if assignment == kinds.assignment =>
                        {
                            found.attribute_targets.push(AttributeTarget {
                                assignment: assignment_node,
                                left: attribute_node,
                                attribute: attribute_node,
                                name: node,
                            });
                        }
                        [
                            ..,
                            (assignment, assignment_node),
                            (list, list_node),
                            (_, attribute_node),
                        ] if assignment == kinds.assignment
                            && kinds.target_lists.contains(&list) =>
                        {
                            found.attribute_targets.push(AttributeTarget {
                                assignment: assignment_node,
                                left: list_node,
                                attribute: attribute_node,
                                name: node,
                            });
                        }
                        _ => {}
                    }
                }
            }
        } else if rules.is_opaque(kind, node, text) {
            // A string literal or comment: no names inside.
        } else if rules
            .lexer_for(kind, parent)
            .is_some_and(|lex| lex(text, node.byte_range(), &mut found.reference_ranges))
        {
            // The lexer found the uses.
        } else if cursor.goto_first_child() {
            parents.push((kind, node));
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'visit;
            }
            if !cursor.goto_parent() {
                break 'visit;
            }
            parents.pop();
        }
    }
}

/// The byte ranges of the uses the walk finds in `tree`, lexing expressions where the language
/// can and walking every node: the two must agree.
#[cfg(test)]
pub(crate) fn uses_lexed_and_walked(
    lang: Lang,
    text: &str,
    tree: &Tree,
) -> [Vec<std::ops::Range<usize>>; 2] {
    let lexing = lang.reference_rules();
    let walking = super::ReferenceRules {
        lexed: None,
        ..lexing.clone()
    };
    [lexing, &walking].map(|rules| {
        let mut found = Found::default();
        let query = &lang.queries().combined;
        walk(rules, tree.root_node(), text, query, &[], &mut found);
        let mut uses = found.reference_ranges;
        uses.sort_by_key(|range| (range.start, range.end));
        uses.dedup();
        uses
    })
}

/// Keeps the first use of each name per innermost enclosing definition (or top-level item).
#[allow(clippy::too_many_arguments)]
fn collect_references<'a>(
    lang: Lang,
    text: &'a str,
    symbols: &[Symbol],
    units: &[std::ops::Range<usize>],
    mut ranges: Vec<std::ops::Range<usize>>,
    not_references: &FxHashSet<usize>,
    import_ranges: &[std::ops::Range<usize>],
    names: &mut Names<'a>,
) -> Vec<Reference> {
    ranges.sort_unstable_by_key(|range| range.start);
    ranges.dedup_by_key(|range| range.start);
    // Scope of a use: its innermost definition, else the top-level item it is in.
    let mut seen: FxHashSet<(Result<usize, usize>, &str)> = FxHashSet::default();
    let mut references = Vec::new();
    let mut next_symbol = 0;
    let mut open: Vec<usize> = Vec::new();
    let mut next_import = 0;
    let mut lines = LineCounter::default();
    for range in ranges {
        let start = range.start;
        if not_references.contains(&start) {
            continue;
        }
        while next_import < import_ranges.len() && import_ranges[next_import].end <= start {
            next_import += 1;
        }
        if import_ranges
            .get(next_import)
            .is_some_and(|range| range.contains(&start))
        {
            continue;
        }
        while next_symbol < symbols.len() && symbols[next_symbol].span.start_byte <= start {
            open.push(next_symbol);
            next_symbol += 1;
        }
        while open
            .last()
            .is_some_and(|&index| symbols[index].span.end_byte <= start)
        {
            open.pop();
        }
        // A symbol that ended before a later sibling opened can linger below it: skip it.
        let enclosing = open
            .iter()
            .rev()
            .copied()
            .find(|&index| symbols[index].span.end_byte > start);
        let scope = enclosing.ok_or_else(|| units.partition_point(|unit| unit.end <= start));
        let name = text.get(range).unwrap_or("");
        if name.is_empty() || lang.receiver_names().contains(&name) || !seen.insert((scope, name)) {
            continue;
        }
        let name = names.entry(name).or_insert_with(|| name.into()).clone();
        let (line, col) = lines.position(text, start);
        references.push(Reference {
            name,
            start_byte: start,
            line,
            col,
        });
    }
    references
}

/// Line and column of byte offsets visited in increasing order, counting newlines once.
#[derive(Default)]
struct LineCounter {
    counted_to: usize,
    line: u32,
    line_start: usize,
}

impl LineCounter {
    fn position(&mut self, text: &str, byte: usize) -> (u32, u32) {
        let byte = byte.min(text.len());
        if byte < self.counted_to {
            // Out of order: count again from the start.
            *self = LineCounter::default();
        }
        let skipped = &text.as_bytes()[self.counted_to..byte];
        for newline in memchr::memchr_iter(b'\n', skipped) {
            self.line += 1;
            self.line_start = self.counted_to + newline + 1;
        }
        self.counted_to = byte;
        (self.line, (byte - self.line_start) as u32)
    }
}

/// Counts ERROR and MISSING nodes, descending only into subtrees that contain one.
fn count_parse_errors(root: Node) -> usize {
    if !root.has_error() {
        return 0;
    }
    let mut count = 0;
    let mut cursor = root.walk();
    'visit: loop {
        let node = cursor.node();
        if node.is_error() || node.is_missing() {
            count += 1;
        }
        if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'visit;
            }
            if !cursor.goto_parent() {
                break 'visit;
            }
        }
    }
    count
}
