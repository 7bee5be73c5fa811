//! The buffer's own parse for retrieval: a tree-sitter pass over the editor's text that keeps
//! *every* occurrence of every identifier (the index keeps one per definition), which location
//! weights, qualifiers (`mod.f`, `Type::f`) and local-binding detection need; and the recovery
//! of definitions that a syntax error hid from the tree, applied to the buffer and to indexed
//! files alike. It fills the index's data model (`FileIndex`).

use std::path::Path;
use std::sync::Arc;

use tree_sitter::Node;

use crate::index::{FileIndex, Import, Reference, Span, Symbol, SymbolKind};
use crate::lang::Lang;
use crate::lang::analyze::span_of;

/// Parse `text` as the language of `path`; None for an unsupported extension or a parser
/// failure. Syntax errors do not fail: tree-sitter recovers and `parse_errors` counts them.
pub fn parse_file(path: &Path, text: &str) -> Option<FileIndex> {
    let lang = Lang::from_path(path)?;
    let tree = crate::lang::parse(lang, text, None)?;
    let mut extractor = Extractor {
        src: text,
        lang,
        symbols: Vec::new(),
        imports: Vec::new(),
        references: Vec::new(),
        parse_errors: 0,
    };
    extractor.visit(tree.root_node(), None, false);
    if extractor.parse_errors > 0 {
        recover_definitions(text, lang, &mut extractor.symbols);
    }
    Some(FileIndex {
        path: path.to_path_buf(),
        lang,
        text: Arc::from(text),
        content_hash: crate::lang::content_hash(text),
        symbols: extractor.symbols,
        imports: extractor.imports,
        references: extractor.references,
        parse_errors: extractor.parse_errors,
    })
}

/// `file` with the definitions its syntax errors hid (see [`recover_definitions`]) added; the
/// same `Arc` when it parsed cleanly.
pub fn with_recovered_definitions(file: Arc<FileIndex>) -> Arc<FileIndex> {
    if file.parse_errors == 0 {
        return file;
    }
    let mut symbols = file.symbols.clone();
    recover_definitions(&file.text, file.lang, &mut symbols);
    if symbols.len() == file.symbols.len() {
        return file;
    }
    Arc::new(FileIndex {
        symbols,
        ..(*file).clone()
    })
}

/// After a syntax error, tree-sitter may swallow the definitions that follow it into an
/// ERROR node. Lines that plainly open a definition (`def f(`, `pub fn f`, `struct S`) and
/// that the tree missed are added with a span found from indentation, so a file broken
/// mid-edit still lists what it defines.
fn recover_definitions(src: &str, lang: Lang, symbols: &mut Vec<Symbol>) {
    let known: std::collections::HashSet<u32> =
        symbols.iter().map(|s| s.name_span.start_line).collect();
    let lines: Vec<&str> = src.split('\n').collect();
    let mut offsets = Vec::with_capacity(lines.len());
    let mut offset = 0;
    for line in &lines {
        offsets.push(offset);
        offset += line.len() + 1;
    }
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    for (number, line) in lines.iter().enumerate() {
        if known.contains(&(number as u32)) {
            continue;
        }
        let Some((kind, name, name_col)) = definition_line(line, lang) else {
            continue;
        };
        let indent = indent_of(line);
        let mut end = number;
        for (later, text) in lines.iter().enumerate().skip(number + 1).take(400) {
            if text.trim().is_empty() {
                continue;
            }
            let later_indent = indent_of(text);
            match lang {
                Lang::Python if later_indent <= indent => break,
                Lang::Rust if later_indent <= indent => {
                    if text.trim_start().starts_with('}') {
                        end = later;
                    }
                    break;
                }
                _ => end = later,
            }
        }
        if lang == Lang::Rust && line.trim_end().ends_with(';') {
            end = number;
        }
        let parent = match lang {
            Lang::Python if indent > 0 => symbols
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.kind == SymbolKind::Class
                        && (s.span.start_line as usize) < number
                        && (s.span.start_col as usize) < indent
                })
                .max_by_key(|(_, s)| s.span.start_line)
                .map(|(i, _)| i),
            _ => None,
        };
        let kind = match (kind, parent) {
            (SymbolKind::Function, Some(_)) => SymbolKind::Method,
            (kind, _) => kind,
        };
        let start_byte = offsets[number] + indent;
        let end_byte = offsets[end] + lines[end].len();
        let name_start = offsets[number] + name_col;
        let container = parent.map(|p| symbols[p].name.clone());
        let qualified_name = match &container {
            Some(c) => format!("{c}.{name}").into(),
            None => name.as_str().into(),
        };
        symbols.push(Symbol {
            name: name.as_str().into(),
            kind,
            container,
            qualified_name,
            span: Span {
                start_byte,
                end_byte,
                start_line: number as u32,
                start_col: indent as u32,
                end_line: end as u32,
                end_col: lines[end].len() as u32,
            },
            name_span: Span {
                start_byte: name_start,
                end_byte: name_start + name.len(),
                start_line: number as u32,
                start_col: name_col as u32,
                end_line: number as u32,
                end_col: (name_col + name.len()) as u32,
            },
            signature: line.split_whitespace().collect::<Vec<_>>().join(" ").into(),
            doc: None,
            parent,
        });
    }
}

struct Extractor<'s> {
    src: &'s str,
    lang: Lang,
    symbols: Vec<Symbol>,
    imports: Vec<Import>,
    references: Vec<Reference>,
    parse_errors: usize,
}

impl<'s> Extractor<'s> {
    fn text(&self, node: Node<'_>) -> &'s str {
        self.src.get(node.byte_range()).unwrap_or("")
    }

    fn visit(&mut self, node: Node<'_>, parent: Option<usize>, in_function: bool) {
        if node.is_error() || node.is_missing() {
            self.parse_errors += 1;
        }
        let kind = node.kind();
        match self.lang {
            Lang::Python => match kind {
                "import_statement" | "import_from_statement" | "future_import_statement" => {
                    if !in_function {
                        self.python_import(node);
                    }
                    return;
                }
                "identifier" => {
                    self.reference(node);
                    return;
                }
                _ => {}
            },
            Lang::Rust => match kind {
                "use_declaration" => {
                    if let Some(argument) = node.child_by_field_name("argument") {
                        let line = node.start_position().row as u32;
                        self.rust_use(argument, "", line);
                    }
                    return;
                }
                "identifier" | "type_identifier" | "field_identifier" => {
                    self.reference(node);
                    return;
                }
                _ => {}
            },
        }
        let (new_parent, name_node, is_function) = match self.definition(node, parent, in_function)
        {
            Some((index, name_node, is_function)) => (Some(index), Some(name_node), is_function),
            None => (parent, None, false),
        };
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if Some(child.id()) == name_node.map(|n| n.id()) {
                continue;
            }
            self.visit(child, new_parent, in_function || is_function);
        }
    }

    fn reference(&mut self, node: Node<'_>) {
        let name = self.text(node);
        if !name.is_empty() {
            let start = node.start_position();
            self.references.push(Reference {
                name: name.into(),
                start_byte: node.start_byte(),
                line: start.row as u32,
                col: start.column as u32,
            });
        }
    }

    /// Records `node` when it is a definition; returns its index, its name node and whether it
    /// opens a function body.
    fn definition<'t>(
        &mut self,
        node: Node<'t>,
        parent: Option<usize>,
        in_function: bool,
    ) -> Option<(usize, Node<'t>, bool)> {
        let parent_kind = parent.map(|p| self.symbols[p].kind);
        let in_type = matches!(
            parent_kind,
            Some(SymbolKind::Class | SymbolKind::Impl | SymbolKind::Trait)
        );
        let (kind, name_node) = match (self.lang, node.kind()) {
            (Lang::Python, "function_definition") => (
                if in_type {
                    SymbolKind::Method
                } else {
                    SymbolKind::Function
                },
                node.child_by_field_name("name")?,
            ),
            (Lang::Python, "class_definition") => {
                (SymbolKind::Class, node.child_by_field_name("name")?)
            }
            (Lang::Python, "expression_statement") if !in_function => {
                let assignment = node.named_child(0)?;
                if assignment.kind() != "assignment" {
                    return None;
                }
                let left = assignment.child_by_field_name("left")?;
                if left.kind() != "identifier" {
                    return None;
                }
                let kind = if in_type {
                    SymbolKind::Field
                } else {
                    SymbolKind::Constant
                };
                (kind, left)
            }
            (Lang::Rust, "function_item" | "function_signature_item") => (
                if in_type {
                    SymbolKind::Method
                } else {
                    SymbolKind::Function
                },
                node.child_by_field_name("name")?,
            ),
            (Lang::Rust, "struct_item" | "union_item") => {
                (SymbolKind::Struct, node.child_by_field_name("name")?)
            }
            (Lang::Rust, "enum_item") => (SymbolKind::Enum, node.child_by_field_name("name")?),
            (Lang::Rust, "trait_item") => (SymbolKind::Trait, node.child_by_field_name("name")?),
            (Lang::Rust, "impl_item") => (SymbolKind::Impl, node.child_by_field_name("type")?),
            (Lang::Rust, "const_item" | "static_item") => {
                (SymbolKind::Constant, node.child_by_field_name("name")?)
            }
            (Lang::Rust, "type_item") => (SymbolKind::TypeAlias, node.child_by_field_name("name")?),
            (Lang::Rust, "macro_definition") => {
                (SymbolKind::Macro, node.child_by_field_name("name")?)
            }
            (Lang::Rust, "mod_item") => (SymbolKind::Module, node.child_by_field_name("name")?),
            _ => return None,
        };
        let name = match kind {
            // `impl<T> Foo<T>` is named by its base type.
            SymbolKind::Impl => base_type_name(self.text(name_node)),
            _ => self.text(name_node).to_string(),
        };
        if name.is_empty() {
            return None;
        }
        let container = parent.map(|p| self.symbols[p].name.clone());
        let qualified_name = match parent {
            Some(p) => {
                let sep = if self.lang == Lang::Python { "." } else { "::" };
                format!("{}{sep}{name}", self.symbols[p].qualified_name).into()
            }
            None => name.as_str().into(),
        };
        let signature = self.signature(node);
        let doc = match self.lang {
            Lang::Python => self.python_docstring(node),
            Lang::Rust => self.rust_doc(node),
        };
        self.symbols.push(Symbol {
            name: name.into(),
            kind,
            container,
            qualified_name,
            span: span_of(node),
            name_span: span_of(name_node),
            signature: signature.into(),
            doc: doc.map(String::into_boxed_str),
            parent,
        });
        let is_function = matches!(kind, SymbolKind::Function | SymbolKind::Method);
        Some((self.symbols.len() - 1, name_node, is_function))
    }

    fn signature(&self, node: Node<'_>) -> String {
        let end = node
            .child_by_field_name("body")
            .map(|body| body.start_byte())
            .unwrap_or_else(|| node.end_byte());
        let header = self.src.get(node.start_byte()..end).unwrap_or("");
        // Without a body, or with one that error recovery stretched, the first line stands in.
        let header = if node.child_by_field_name("body").is_none() || header.lines().count() > 6 {
            header.lines().next().unwrap_or("")
        } else {
            header
        };
        header.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn python_docstring(&self, node: Node<'_>) -> Option<String> {
        let body = node.child_by_field_name("body")?;
        let first = body.named_child(0)?;
        let string = first.named_child(0)?;
        if first.kind() != "expression_statement" || string.kind() != "string" {
            return None;
        }
        let raw = self.text(string);
        let trimmed = raw
            .trim_start_matches(['r', 'b', 'u', 'R', 'B', 'U'])
            .trim_matches(|c| c == '"' || c == '\'');
        Some(trimmed.trim().to_string())
    }

    fn rust_doc(&self, node: Node<'_>) -> Option<String> {
        let mut lines = Vec::new();
        let mut sibling = node.prev_sibling();
        while let Some(prev) = sibling {
            match prev.kind() {
                "attribute_item" => {}
                "line_comment" if self.text(prev).starts_with("///") => {
                    lines.push(self.text(prev).trim_start_matches('/').trim().to_string());
                }
                _ => break,
            }
            sibling = prev.prev_sibling();
        }
        if lines.is_empty() {
            return None;
        }
        lines.reverse();
        Some(lines.join("\n"))
    }

    /// The name node and alias of one entry of an import list (`x` or `x as y`).
    fn name_and_alias<'t>(&self, entry: Node<'t>) -> (Option<Node<'t>>, Option<String>) {
        match entry.kind() {
            "aliased_import" => (
                entry.child_by_field_name("name"),
                entry
                    .child_by_field_name("alias")
                    .map(|alias| self.text(alias).to_string()),
            ),
            _ => (Some(entry), None),
        }
    }

    fn python_import(&mut self, node: Node<'_>) {
        let line = node.start_position().row as u32;
        let mut cursor = node.walk();
        if node.kind() == "import_statement" {
            for child in node.children_by_field_name("name", &mut cursor) {
                let (module, alias) = self.name_and_alias(child);
                if let Some(module) = module {
                    self.imports.push(Import {
                        module: self.text(module).to_string(),
                        name: None,
                        alias,
                        glob: false,
                        line,
                    });
                }
            }
            return;
        }
        let module = node
            .child_by_field_name("module_name")
            .map(|m| self.text(m).to_string())
            .unwrap_or_else(|| "__future__".to_string());
        let mut glob = false;
        let mut walk = node.walk();
        for child in node.children(&mut walk) {
            if child.kind() == "wildcard_import" {
                glob = true;
            }
        }
        if glob {
            self.imports.push(Import {
                module,
                name: None,
                alias: None,
                glob: true,
                line,
            });
            return;
        }
        for child in node.children_by_field_name("name", &mut cursor) {
            let (name, alias) = self.name_and_alias(child);
            if let Some(name) = name {
                self.imports.push(Import {
                    module: module.clone(),
                    name: Some(self.text(name).to_string()),
                    alias,
                    glob: false,
                    line,
                });
            }
        }
    }

    fn rust_use(&mut self, node: Node<'_>, prefix: &str, line: u32) {
        let join = |rest: &str| {
            if prefix.is_empty() {
                rest.to_string()
            } else if rest.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}::{rest}")
            }
        };
        match node.kind() {
            "scoped_identifier" => {
                let path = node
                    .child_by_field_name("path")
                    .map(|p| self.text(p))
                    .unwrap_or("");
                let name = node
                    .child_by_field_name("name")
                    .map(|n| self.text(n))
                    .unwrap_or("");
                self.push_use(join(path), Some(name.to_string()), None, false, line);
            }
            "identifier" | "crate" | "super" | "self" => {
                let name = self.text(node);
                if prefix.is_empty() {
                    self.push_use(name.to_string(), None, None, false, line);
                } else if name == "self" {
                    self.push_use(prefix.to_string(), None, None, false, line);
                } else {
                    self.push_use(
                        prefix.to_string(),
                        Some(name.to_string()),
                        None,
                        false,
                        line,
                    );
                }
            }
            "use_as_clause" => {
                let alias = node
                    .child_by_field_name("alias")
                    .map(|a| self.text(a).to_string());
                let Some(path) = node.child_by_field_name("path") else {
                    return;
                };
                let before = self.imports.len();
                self.rust_use(path, prefix, line);
                for import in &mut self.imports[before..] {
                    import.alias = alias.clone();
                }
            }
            "scoped_use_list" => {
                let path = node
                    .child_by_field_name("path")
                    .map(|p| self.text(p))
                    .unwrap_or("");
                let joined = join(path);
                if let Some(list) = node.child_by_field_name("list") {
                    self.rust_use(list, &joined, line);
                }
            }
            "use_list" => {
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    self.rust_use(child, prefix, line);
                }
            }
            "use_wildcard" => {
                let path = node.named_child(0).map(|p| self.text(p)).unwrap_or("");
                self.push_use(join(path), None, None, true, line);
            }
            _ => {}
        }
    }

    fn push_use(
        &mut self,
        module: String,
        name: Option<String>,
        alias: Option<String>,
        glob: bool,
        line: u32,
    ) {
        self.imports.push(Import {
            module,
            name,
            alias,
            glob,
            line,
        });
    }
}

/// The kind, name and name column of a line that opens a definition, by its leading keywords.
fn definition_line(line: &str, lang: Lang) -> Option<(SymbolKind, String, usize)> {
    let mut rest = line.trim_start();
    let keywords: &[(&str, SymbolKind)] = match lang {
        Lang::Python => &[
            ("def ", SymbolKind::Function),
            ("async def ", SymbolKind::Function),
            ("class ", SymbolKind::Class),
        ],
        Lang::Rust => &[
            ("fn ", SymbolKind::Function),
            ("struct ", SymbolKind::Struct),
            ("enum ", SymbolKind::Enum),
            ("trait ", SymbolKind::Trait),
            ("const ", SymbolKind::Constant),
            ("static ", SymbolKind::Constant),
            ("type ", SymbolKind::TypeAlias),
            ("macro_rules! ", SymbolKind::Macro),
        ],
    };
    if lang == Lang::Rust {
        for prefix in ["pub(crate) ", "pub(super) ", "pub ", "unsafe ", "async "] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        if rest.starts_with("const fn ") {
            rest = &rest["const ".len()..];
        }
    }
    let (keyword, kind) = keywords.iter().find(|(k, _)| rest.starts_with(k))?;
    let after = &rest[keyword.len()..];
    let name: String = after
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        return None;
    }
    let name_col = line.len() - after.len();
    Some((*kind, name, name_col))
}

/// `Foo<T>` → `Foo`, `crate::a::Foo` → `Foo`, `&'a Foo` → `Foo`.
fn base_type_name(text: &str) -> String {
    let without_generics = text.split('<').next().unwrap_or(text);
    let last = without_generics
        .rsplit("::")
        .next()
        .unwrap_or(without_generics);
    last.trim_start_matches(['&', '*'])
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(path: &str, source: &str, expect: Expect) {
        let file = parse_file(Path::new(path), source).expect("supported language");
        let mut out = String::new();
        for symbol in &file.symbols {
            out.push_str(&format!(
                "{:?} {} @{}-{} | {}\n",
                symbol.kind,
                symbol.qualified_name,
                symbol.span.start_line,
                symbol.span.end_line,
                symbol.signature
            ));
        }
        for import in &file.imports {
            out.push_str(&format!(
                "import {} {:?} as {:?} glob={}\n",
                import.module, import.name, import.alias, import.glob
            ));
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn python_definitions_and_imports() {
        check(
            "a.py",
            "from .models import Request as Req, Response\nimport os.path\nfrom x import *\nLIMIT = 3\n@decorator\nclass A(Base):\n    \"\"\"Doc.\"\"\"\n    def m(self, x):\n        return x\n",
            expect![[r#"
                Constant LIMIT @3-3 | LIMIT = 3
                Class A @5-8 | class A(Base):
                Method A.m @7-8 | def m(self, x):
                import .models Some("Request") as Some("Req") glob=false
                import .models Some("Response") as None glob=false
                import os.path None as None glob=false
                import x None as None glob=true
            "#]],
        );
    }

    #[test]
    fn definitions_after_a_syntax_error_are_recovered() {
        check(
            "a.rs",
            "fn broken() {\n    let x = 1;\n}\n}\n\nfn a() -> u8 {\n    2 +\n}\n\npub const fn after(x: u8) -> u8 {\n    x\n}\n",
            expect![[r#"
                Function broken @0-2 | fn broken()
                Function a @5-7 | fn a() -> u8
                Function after @9-11 | pub const fn after(x: u8) -> u8
            "#]],
        );
        check(
            "a.py",
            "class A:\n    def m(self:\n        pass\n\n    def n(self):\n        return 1\n\ndef after():\n    return 2\n",
            expect![[r#"
                Class A @0-8 | class A:
                Method A.m @1-2 | def m(self:
                Method A.n @4-5 | def n(self):
                Function after @7-8 | def after():
            "#]],
        );
    }

    #[test]
    fn rust_definitions_and_uses() {
        check(
            "lib.rs",
            "use crate::de::{self, Deserializer as D, read::{Read, StrRead}};\nuse super::*;\n/// Docs.\npub struct S { a: u8 }\nimpl<T> Tr for S<T> {\n    fn go(&self) -> u8 { 1 }\n}\ntrait Tr { fn go(&self) -> u8; }\n",
            expect![[r#"
                Struct S @3-3 | pub struct S
                Impl S @4-6 | impl<T> Tr for S<T>
                Method S::go @5-5 | fn go(&self) -> u8
                Trait Tr @7-7 | trait Tr
                Method Tr::go @7-7 | fn go(&self) -> u8;
                import crate::de None as None glob=false
                import crate::de Some("Deserializer") as Some("D") glob=false
                import crate::de::read Some("Read") as None glob=false
                import crate::de::read Some("StrRead") as None glob=false
                import super None as None glob=true
            "#]],
        );
    }
}
