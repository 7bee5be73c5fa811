//! The code actions' core: explain a range, write a docstring / doc comment, generate unit
//! tests, refactor a selection, fix a diagnostic. Each builds a chat prompt, cleans what the
//! model wrote (fences stripped, only the code kept) and computes the exact edit: the model
//! writes content, never positions. Placement is decided here from a tree-sitter parse of the
//! buffer, so that a docstring lands under the `def` line with the body's indentation and a
//! doc comment above the item (below its attributes), replacing any existing one.

use std::ops::Range;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;
use tree_sitter::{Node, Parser, Tree};

use super::{
    AssistError, Result, TemplateParts, chat_prompt, extract_code, fence_lang, indentation,
    line_end, line_start, related_definitions, relative_path, root_of,
};
use crate::config::Config;
use crate::engine::{Engine, Prompt, Request, Slot};
use crate::index::WorkspaceIndex;
use crate::lang::Lang;
use crate::prompt::{SymbolInfo, Task};

/// Replace `range` (bytes) of the file at `path` with `new_text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEdit {
    pub path: PathBuf,
    pub range: Range<usize>,
    pub new_text: String,
}

/// Create a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub path: PathBuf,
    pub text: String,
}

/// What an action produced: edits and new files to apply, and/or markdown to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionOutcome {
    pub edits: Vec<TextEdit>,
    pub new_files: Vec<NewFile>,
    pub message: Option<String>,
}

/// The actions pith offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Explain,
    Docstring,
    Tests,
    Refactor,
    Fix,
}

impl ActionKind {
    pub const ALL: [ActionKind; 5] = [
        ActionKind::Explain,
        ActionKind::Docstring,
        ActionKind::Tests,
        ActionKind::Refactor,
        ActionKind::Fix,
    ];

    /// Stable identifier (for the protocol's `data`).
    pub fn id(self) -> &'static str {
        match self {
            ActionKind::Explain => "explain",
            ActionKind::Docstring => "docstring",
            ActionKind::Tests => "tests",
            ActionKind::Refactor => "refactor",
            ActionKind::Fix => "fix",
        }
    }

    pub fn from_id(id: &str) -> Option<ActionKind> {
        Self::ALL.into_iter().find(|kind| kind.id() == id)
    }

    /// The menu title; says it is the model's work.
    pub fn title(self, lang: Option<Lang>) -> &'static str {
        match (self, lang) {
            (ActionKind::Explain, _) => "pith: Explain this code",
            (ActionKind::Docstring, Some(Lang::Rust)) => "pith: Write doc comment",
            (ActionKind::Docstring, _) => "pith: Write docstring",
            (ActionKind::Tests, _) => "pith: Generate unit tests",
            (ActionKind::Refactor, _) => "pith: Refactor selection",
            (ActionKind::Fix, _) => "pith: Fix this problem",
        }
    }
}

/// The buffer an action works on.
#[derive(Debug, Clone)]
pub struct ActionInput<'a> {
    /// Absolute path of the file.
    pub path: &'a Path,
    pub text: &'a str,
    /// Selection or cursor (empty range), in bytes.
    pub range: Range<usize>,
    /// Refactor: what to do (a default instruction otherwise).
    pub instruction: Option<&'a str>,
    /// Fix: the diagnostic message under the cursor.
    pub diagnostic: Option<&'a str>,
}

/// The actions that make sense at `input`, cheaply (no model): listing must be instant.
pub fn available(input: &ActionInput<'_>) -> Vec<ActionKind> {
    let lang = Lang::from_path(input.path);
    let mut kinds = vec![ActionKind::Explain];
    let has_item = lang
        .and_then(|lang| parse(lang, input.text).map(|tree| (lang, tree)))
        .is_some_and(|(lang, tree)| {
            enclosing_item(lang, tree.root_node(), input.range.start).is_some()
        });
    if has_item {
        kinds.push(ActionKind::Docstring);
    }
    let has_function = lang
        .and_then(|lang| parse(lang, input.text).map(|tree| (lang, tree)))
        .is_some_and(|(lang, tree)| {
            enclosing_function(lang, tree.root_node(), input.range.start).is_some()
        });
    if has_function {
        kinds.push(ActionKind::Tests);
    }
    if !input.range.is_empty() {
        kinds.push(ActionKind::Refactor);
    }
    if input.diagnostic.is_some() {
        kinds.push(ActionKind::Fix);
    }
    kinds
}

/// Runs one action with the model.
pub async fn run(
    engine: &dyn Engine,
    config: &Config,
    index: &WorkspaceIndex,
    kind: ActionKind,
    input: &ActionInput<'_>,
    cancel: CancellationToken,
) -> Result<ActionOutcome> {
    let input = ActionInput {
        range: clamp_range(input.text, input.range.clone()),
        ..input.clone()
    };
    let count_tokens = |text: &str| engine.count_tokens(text);
    match kind {
        ActionKind::Explain => {
            let range = subject_range(&input);
            let prompt = chat_prompt(
                config,
                index,
                parts(Task::Explain, &input, Some(range), None, &[]),
                || explain_range_user(index, &input, &count_tokens),
                &count_tokens,
            );
            let text = ask_model(engine, prompt, 300, cancel).await?;
            Ok(ActionOutcome {
                message: Some(text.trim().to_string()),
                ..Default::default()
            })
        }
        ActionKind::Docstring => {
            let plan = docstring_plan(&input)?;
            let symbol = symbol_info(&plan.name, input.text, &plan.item);
            let prompt = chat_prompt(
                config,
                index,
                parts(Task::Docstring, &input, None, Some(symbol), &[]),
                || docstring_user(index, &input, &plan, &count_tokens),
                &count_tokens,
            );
            let text = ask_model(engine, prompt, 200, cancel).await?;
            let doc = clean_docstring(&text);
            if doc.is_empty() {
                return Err(AssistError::NotApplicable(
                    "the model wrote no documentation".into(),
                ));
            }
            Ok(edit_outcome(docstring_edit(&input, &plan, &doc)))
        }
        ActionKind::Tests => {
            let plan = tests_plan(index, &input)?;
            let symbol = symbol_info(&plan.function, input.text, &plan.item);
            let prompt = chat_prompt(
                config,
                index,
                parts(Task::Tests, &input, None, Some(symbol), &[]),
                || tests_user(index, &input, &plan, &count_tokens),
                &count_tokens,
            );
            let text = ask_model(engine, prompt, 700, cancel).await?;
            tests_outcome(&input, &plan, &extract_code(&text))
        }
        ActionKind::Refactor | ActionKind::Fix => {
            let target = rewrite_target(&input, kind)?;
            let task = if kind == ActionKind::Fix {
                Task::Fix
            } else {
                Task::Refactor
            };
            let diagnostics: Vec<String> =
                input.diagnostic.map(str::to_string).into_iter().collect();
            let prompt = chat_prompt(
                config,
                index,
                parts(task, &input, Some(target.clone()), None, &diagnostics),
                || rewrite_user(index, &input, kind, &target, &count_tokens),
                &count_tokens,
            );
            let budget = (count_tokens(&input.text[target.clone()]) * 3 / 2 + 96).min(1200);
            let text = ask_model(engine, prompt, budget as u32, cancel).await?;
            let original = &input.text[target.clone()];
            let code = reindent(&extract_code(&text), indentation(original));
            if code.trim().is_empty() {
                return Err(AssistError::NotApplicable("the model wrote no code".into()));
            }
            if code.trim_end() == original.trim_end() {
                return Ok(ActionOutcome {
                    message: Some("The model proposed no change.".into()),
                    ..Default::default()
                });
            }
            Ok(edit_outcome(TextEdit {
                path: input.path.to_path_buf(),
                range: target,
                new_text: code,
            }))
        }
    }
}

fn edit_outcome(edit: TextEdit) -> ActionOutcome {
    ActionOutcome {
        edits: vec![edit],
        ..Default::default()
    }
}

async fn ask_model(
    engine: &dyn Engine,
    prompt: Prompt,
    max_tokens: u32,
    cancel: CancellationToken,
) -> Result<String> {
    let request = Request {
        cancel,
        guide: Some(super::guide::answer_guide(&prompt)),
        ..Request::new(prompt, max_tokens, Slot::Chat)
    };
    Ok(super::generate(engine, request, |_| {}).await?.text)
}

fn clamp_range(text: &str, range: Range<usize>) -> Range<usize> {
    let start = super::clamp_offset(text, range.start);
    let end = super::clamp_offset(text, range.end.max(start));
    start..end
}

/// The range, or the enclosing item when the range is empty, widened to whole lines.
fn subject_range(input: &ActionInput<'_>) -> Range<usize> {
    let range = if input.range.is_empty() {
        Lang::from_path(input.path)
            .and_then(|lang| {
                let tree = parse(lang, input.text)?;
                let node = enclosing_item(lang, tree.root_node(), input.range.start)?;
                Some(node.start_byte()..node.end_byte())
            })
            .unwrap_or_else(|| {
                line_start(input.text, input.range.start)..line_end(input.text, input.range.end)
            })
    } else {
        input.range.clone()
    };
    line_start(input.text, range.start)..line_end(input.text, range.end)
}

/// Template parts of an action on `input` (for user templates).
fn parts<'a>(
    task: Task,
    input: &ActionInput<'a>,
    selection: Option<Range<usize>>,
    symbol: Option<SymbolInfo>,
    diagnostics: &'a [String],
) -> TemplateParts<'a> {
    TemplateParts {
        task,
        path: input.path,
        text: input.text,
        cursor: input.range.start,
        selection,
        symbol,
        question: input.instruction,
        diagnostics,
        snippets: &[],
        memories: &[],
    }
}

fn symbol_info(name: &str, text: &str, item: &Range<usize>) -> SymbolInfo {
    let signature = text[item.clone()].lines().next().unwrap_or("").trim();
    SymbolInfo {
        name: name.to_string(),
        signature: signature.to_string(),
        range: item.clone(),
    }
}

fn explain_range_user(
    index: &WorkspaceIndex,
    input: &ActionInput<'_>,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let range = subject_range(input);
    let code = super::head_lines(&input.text[range.clone()], 900, count_tokens);
    let related = related_definitions(
        index,
        &code,
        Some((input.path, range.clone())),
        250,
        count_tokens,
    );
    let mut user = format!(
        "Explain this code from {} (line {}) in a short paragraph or a few bullet points: what \
         it does, and anything surprising.\n\n```{}\n{}\n```\n",
        relative_path(index, input.path),
        super::line_of(input.text, range.start) + 1,
        fence_lang(input.path),
        code.trim_end()
    );
    if !related.is_empty() {
        user.push_str("\nDefinitions it uses:\n");
        user.push_str(&related);
    }
    user
}

// ---------------------------------------------------------------------------------------------
// Syntax helpers

fn parse(lang: Lang, text: &str) -> Option<Tree> {
    let mut parser = Parser::new();
    let language: tree_sitter::Language = match lang {
        Lang::Python => tree_sitter_python::LANGUAGE.into(),
        Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
    };
    parser.set_language(&language).ok()?;
    parser.parse(text, None)
}

const PYTHON_FUNCTIONS: &[&str] = &["function_definition"];
const PYTHON_ITEMS: &[&str] = &["function_definition", "class_definition"];
const RUST_FUNCTIONS: &[&str] = &["function_item"];
const RUST_ITEMS: &[&str] = &[
    "function_item",
    "function_signature_item",
    "struct_item",
    "enum_item",
    "union_item",
    "trait_item",
    "impl_item",
    "mod_item",
    "const_item",
    "static_item",
    "type_item",
    "macro_definition",
];

/// The innermost node of one of `kinds` containing `offset`.
fn enclosing<'t>(root: Node<'t>, offset: usize, kinds: &[&str]) -> Option<Node<'t>> {
    let mut node = root.descendant_for_byte_range(offset, offset)?;
    loop {
        if kinds.contains(&node.kind()) {
            return Some(node);
        }
        node = node.parent()?;
    }
}

fn enclosing_item(lang: Lang, root: Node<'_>, offset: usize) -> Option<Node<'_>> {
    match lang {
        Lang::Python => enclosing(root, offset, PYTHON_ITEMS),
        Lang::Rust => enclosing(root, offset, RUST_ITEMS),
    }
}

fn enclosing_function(lang: Lang, root: Node<'_>, offset: usize) -> Option<Node<'_>> {
    match lang {
        Lang::Python => enclosing(root, offset, PYTHON_FUNCTIONS),
        Lang::Rust => enclosing(root, offset, RUST_FUNCTIONS),
    }
}

fn node_name<'a>(node: Node<'_>, text: &'a str) -> &'a str {
    node.child_by_field_name("name")
        .and_then(|n| text.get(n.start_byte()..n.end_byte()))
        .unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Docstrings and doc comments

/// Where documentation goes, decided before asking the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocPlan {
    pub lang: Lang,
    /// Bytes replaced by the new documentation.
    pub range: Range<usize>,
    /// Indentation of the documentation lines.
    pub indent: String,
    /// Python: text before the docstring (a newline and indentation for one-line bodies).
    pub lead: String,
    /// Python: text after the docstring.
    pub trail: String,
    /// Rust: attribute lines kept between the doc comment's old place and the item.
    pub keep_above: String,
    /// The item's text (for the prompt).
    pub item: Range<usize>,
    pub name: String,
}

/// Where the docstring / doc comment of the item at the cursor goes.
pub fn docstring_plan(input: &ActionInput<'_>) -> Result<DocPlan> {
    let not_here = || AssistError::NotApplicable("no function or type at the cursor".into());
    let lang = Lang::from_path(input.path).ok_or_else(not_here)?;
    let tree = parse(lang, input.text).ok_or_else(not_here)?;
    let item = enclosing_item(lang, tree.root_node(), input.range.start).ok_or_else(not_here)?;
    let name = node_name(item, input.text).to_string();
    let text = input.text;
    match lang {
        Lang::Python => {
            let body = item.child_by_field_name("body").ok_or_else(not_here)?;
            let header_indent = indentation(&text[line_start(text, item.start_byte())..]);
            let mut cursor = body.walk();
            let first = body
                .named_children(&mut cursor)
                .find(|n| n.kind() != "comment");
            let existing = first.filter(|statement| {
                statement.kind() == "expression_statement"
                    && statement
                        .named_child(0)
                        .is_some_and(|n| n.kind() == "string")
            });
            let body_on_header_line = body.start_position().row == item.start_position().row;
            let (range, indent, lead, trail) = if let Some(doc) = existing {
                let indent = indentation(&text[line_start(text, doc.start_byte())..]);
                (
                    doc.start_byte()..doc.end_byte(),
                    indent.to_string(),
                    String::new(),
                    String::new(),
                )
            } else if body_on_header_line {
                let indent = format!("{header_indent}    ");
                let colon = text[item.start_byte()..body.start_byte()]
                    .rfind(':')
                    .map_or(body.start_byte(), |i| item.start_byte() + i + 1);
                (
                    colon..body.start_byte(),
                    indent.clone(),
                    format!("\n{indent}"),
                    format!("\n{indent}"),
                )
            } else {
                let first_line = line_start(text, body.start_byte());
                let indent = indentation(&text[first_line..]).to_string();
                (
                    first_line..first_line,
                    indent.clone(),
                    indent,
                    "\n".to_string(),
                )
            };
            Ok(DocPlan {
                lang,
                range,
                indent,
                lead,
                trail,
                keep_above: String::new(),
                item: item.start_byte()..item.end_byte(),
                name,
            })
        }
        Lang::Rust => {
            let item_line = line_start(text, item.start_byte());
            let indent = indentation(&text[item_line..]).to_string();
            // The run of attributes and doc comments right above the item.
            let mut first_above = item_line;
            let mut attributes = Vec::new();
            let mut has_docs = false;
            let mut node = item;
            while let Some(previous) = node.prev_sibling() {
                let previous_text = &text[previous.start_byte()..previous.end_byte()];
                let is_doc = matches!(previous.kind(), "line_comment")
                    && previous_text.starts_with("///")
                    && !previous_text.starts_with("////");
                let is_attribute = previous.kind() == "attribute_item";
                let adjacent = previous.end_position().row + 1 >= node.start_position().row;
                if !(is_doc || is_attribute) || !adjacent {
                    break;
                }
                if is_attribute {
                    attributes.push(previous_text.to_string());
                }
                has_docs |= is_doc;
                first_above = line_start(text, previous.start_byte());
                node = previous;
            }
            attributes.reverse();
            let keep_above: String = attributes
                .iter()
                .map(|a| format!("{indent}{}\n", a.trim()))
                .collect();
            let range = if has_docs { first_above } else { item_line }..item_line;
            Ok(DocPlan {
                lang,
                range,
                indent,
                lead: String::new(),
                trail: String::new(),
                keep_above: if has_docs { keep_above } else { String::new() },
                item: item.start_byte()..item.end_byte(),
                name,
            })
        }
    }
}

fn docstring_user(
    index: &WorkspaceIndex,
    input: &ActionInput<'_>,
    plan: &DocPlan,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let code = super::head_lines(&input.text[plan.item.clone()], 900, count_tokens);
    let what = match plan.lang {
        Lang::Python => "a docstring",
        Lang::Rust => "a Rust doc comment",
    };
    let related = related_definitions(
        index,
        &code,
        Some((input.path, plan.item.clone())),
        200,
        count_tokens,
    );
    let mut user = format!(
        "Write {what} for `{}`: one summary line, then, only if useful, a short paragraph on \
         arguments, return value and errors. Reply with the documentation text only: no \
         quotes, no comment markers, no code.\n\n```{}\n{}\n```\n",
        plan.name,
        plan.lang.name(),
        code.trim_end()
    );
    if !related.is_empty() {
        user.push_str("\nDefinitions it uses:\n");
        user.push_str(&related);
    }
    user
}

/// The documentation text the model meant, without quotes, comment markers or fences.
pub fn clean_docstring(output: &str) -> String {
    let mut text = extract_code(output);
    // The whole function came back: keep its docstring.
    for quotes in ["\"\"\"", "'''"] {
        if let Some(start) = text.find(quotes) {
            let rest = &text[start + 3..];
            let end = rest.find(quotes).unwrap_or(rest.len());
            text = rest[..end].to_string();
            break;
        }
    }
    let doc_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("///") || l.trim_start().starts_with("//!"))
        .collect();
    if !doc_lines.is_empty() {
        text = doc_lines
            .iter()
            .map(|l| {
                let l = l.trim_start();
                let l = &l[3..];
                l.strip_prefix(' ').unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    let lines: Vec<&str> = text.lines().collect();
    let common = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = if i == 0 {
            line.trim()
        } else {
            line.get(common..).unwrap_or(line.trim()).trim_end()
        };
        out.push(line.to_string());
    }
    out.join("\n").trim().to_string()
}

/// The edit that puts `doc` where `plan` says.
pub fn docstring_edit(input: &ActionInput<'_>, plan: &DocPlan, doc: &str) -> TextEdit {
    let indent = &plan.indent;
    let new_text = match plan.lang {
        Lang::Python => {
            let doc = doc.replace("\"\"\"", "\\\"\\\"\\\"");
            let body = if doc.contains('\n') {
                let lines: Vec<String> = doc
                    .lines()
                    .map(|l| {
                        if l.is_empty() {
                            String::new()
                        } else {
                            format!("{indent}{l}")
                        }
                    })
                    .collect();
                format!(
                    "\"\"\"{}\n{}\n{indent}\"\"\"",
                    lines[0].trim_start(),
                    lines[1..].join("\n")
                )
            } else {
                format!("\"\"\"{doc}\"\"\"")
            };
            format!("{}{body}{}", plan.lead, plan.trail)
        }
        Lang::Rust => {
            let comment: String = doc
                .lines()
                .map(|l| {
                    if l.trim().is_empty() {
                        format!("{indent}///\n")
                    } else {
                        format!("{indent}/// {l}\n")
                    }
                })
                .collect();
            format!("{}{comment}", plan.keep_above)
        }
    };
    TextEdit {
        path: input.path.to_path_buf(),
        range: plan.range.clone(),
        new_text,
    }
}

// ---------------------------------------------------------------------------------------------
// Unit tests

/// Where generated tests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestsPlan {
    pub lang: Lang,
    pub function: String,
    pub item: Range<usize>,
    /// Python: the test file and its current text (None: to be created); Rust: the edited file.
    pub file: PathBuf,
    pub existing: Option<String>,
    /// Python: the module to import the function from.
    pub module: String,
    /// Rust: where to insert inside an existing `mod tests` (before its closing brace).
    pub insert_at: Option<usize>,
}

/// Decides where the tests for the function at the cursor go.
pub fn tests_plan(index: &WorkspaceIndex, input: &ActionInput<'_>) -> Result<TestsPlan> {
    let not_here = || AssistError::NotApplicable("no function at the cursor".into());
    let lang = Lang::from_path(input.path).ok_or_else(not_here)?;
    let tree = parse(lang, input.text).ok_or_else(not_here)?;
    let function =
        enclosing_function(lang, tree.root_node(), input.range.start).ok_or_else(not_here)?;
    let name = node_name(function, input.text).to_string();
    let item = function.start_byte()..function.end_byte();
    match lang {
        Lang::Python => {
            let root = root_of(index, input.path)
                .or_else(|| input.path.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            let module = python_module(&root, input.path);
            let stem = module.rsplit('.').next().unwrap_or("module").to_string();
            let file = root.join("tests").join(format!("test_{stem}.py"));
            let existing = index
                .file(&file)
                .map(|f| f.text.to_string())
                .or_else(|| std::fs::read_to_string(&file).ok());
            Ok(TestsPlan {
                lang,
                function: name,
                item,
                file,
                existing,
                module,
                insert_at: None,
            })
        }
        Lang::Rust => {
            let mut cursor = tree.root_node().walk();
            let tests_module = tree
                .root_node()
                .named_children(&mut cursor)
                .filter(|n| n.kind() == "mod_item" && node_name(*n, input.text) == "tests")
                .last();
            let insert_at = tests_module
                .and_then(|m| m.child_by_field_name("body"))
                .map(|body| body.end_byte().saturating_sub(1));
            Ok(TestsPlan {
                lang,
                function: name,
                item,
                file: input.path.to_path_buf(),
                existing: Some(input.text.to_string()),
                module: String::new(),
                insert_at,
            })
        }
    }
}

/// `pkg.sub.mod` for `ROOT/[src/]pkg/sub/mod.py` (`pkg.sub` for its `__init__.py`).
fn python_module(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let relative = relative.strip_prefix("src").unwrap_or(relative);
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "__init__") && parts.len() > 1 {
        parts.pop();
    }
    parts.join(".")
}

fn tests_user(
    index: &WorkspaceIndex,
    input: &ActionInput<'_>,
    plan: &TestsPlan,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let code = super::head_lines(&input.text[plan.item.clone()], 1000, count_tokens);
    let related = related_definitions(
        index,
        &code,
        Some((input.path, plan.item.clone())),
        200,
        count_tokens,
    );
    let how = match plan.lang {
        Lang::Python => format!(
            "Write pytest unit tests for `{}` (imported with `from {} import {}`). Reply with \
             one Python code block holding only the test functions (named test_...), plain \
             asserts, no fixtures from elsewhere.",
            plan.function, plan.module, plan.function
        ),
        Lang::Rust => format!(
            "Write Rust unit tests for `{}`. Reply with one Rust code block holding only the \
             test functions, each marked #[test], using assert_eq!/assert!; they will be put \
             inside `mod tests {{ use super::*; }}`.",
            plan.function
        ),
    };
    let mut user = format!(
        "{how}\n\nFrom {}:\n```{}\n{}\n```\n",
        relative_path(index, input.path),
        plan.lang.name(),
        code.trim_end()
    );
    if !related.is_empty() {
        user.push_str("\nDefinitions it uses:\n");
        user.push_str(&related);
    }
    user
}

/// Places generated test code per `plan`.
pub fn tests_outcome(
    input: &ActionInput<'_>,
    plan: &TestsPlan,
    code: &str,
) -> Result<ActionOutcome> {
    let empty = || AssistError::NotApplicable("the model wrote no tests".into());
    match plan.lang {
        Lang::Python => {
            let (imports, body) = split_python_imports(code);
            if !body.contains("def test") {
                return Err(empty());
            }
            let mut header = vec![format!("from {} import {}", plan.module, plan.function)];
            for import in imports {
                let referenced_module = import.contains(&plan.module) && !plan.module.is_empty();
                if !header.contains(&import) && !referenced_module {
                    header.push(import);
                }
            }
            match &plan.existing {
                Some(existing) => {
                    let missing: Vec<&String> = header
                        .iter()
                        .filter(|line| !existing.lines().any(|l| l.trim() == line.as_str()))
                        .collect();
                    let mut text = String::new();
                    if !existing.ends_with('\n') && !existing.is_empty() {
                        text.push('\n');
                    }
                    text.push_str("\n\n");
                    for line in missing {
                        text.push_str(line);
                        text.push('\n');
                    }
                    text.push_str(body.trim_end());
                    text.push('\n');
                    Ok(ActionOutcome {
                        edits: vec![TextEdit {
                            path: plan.file.clone(),
                            range: existing.len()..existing.len(),
                            new_text: text,
                        }],
                        ..Default::default()
                    })
                }
                None => Ok(ActionOutcome {
                    new_files: vec![NewFile {
                        path: plan.file.clone(),
                        text: format!("{}\n\n\n{}\n", header.join("\n"), body.trim_end()),
                    }],
                    ..Default::default()
                }),
            }
        }
        Lang::Rust => {
            let functions = rust_test_functions(code);
            if !functions.contains("fn ") {
                return Err(empty());
            }
            let indented = reindent(&functions, "    ");
            let text = input.text;
            let (at, new_text) = match plan.insert_at {
                Some(at) => {
                    let before_brace = text[..at].trim_end().len();
                    (before_brace..at, format!("\n\n{indented}\n"))
                }
                None => {
                    let mut new_text = String::new();
                    if !text.ends_with('\n') && !text.is_empty() {
                        new_text.push('\n');
                    }
                    new_text.push_str(&format!(
                        "\n#[cfg(test)]\nmod tests {{\n    use super::*;\n\n{indented}\n}}\n"
                    ));
                    (text.len()..text.len(), new_text)
                }
            };
            Ok(edit_outcome(TextEdit {
                path: plan.file.clone(),
                range: at,
                new_text,
            }))
        }
    }
}

/// Leading `import`/`from` lines of a Python block, and the rest.
fn split_python_imports(code: &str) -> (Vec<String>, String) {
    let mut imports = Vec::new();
    let mut body = Vec::new();
    for line in code.lines() {
        let trimmed = line.trim();
        let is_import = !line.starts_with([' ', '\t'])
            && (trimmed.starts_with("import ") || trimmed.starts_with("from "));
        if is_import {
            imports.push(trimmed.to_string());
        } else {
            body.push(line);
        }
    }
    let body = body.join("\n");
    (imports, body.trim_matches('\n').to_string())
}

/// The test functions of a Rust block, without a `mod tests { use super::*; … }` wrapper.
fn rust_test_functions(code: &str) -> String {
    let mut lines: Vec<&str> = code.lines().collect();
    if let Some(start) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("mod tests"))
    {
        lines.drain(..=start);
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        if lines.last().is_some_and(|l| l.trim() == "}") {
            lines.pop();
        }
    }
    let lines: Vec<&str> = lines
        .into_iter()
        .filter(|l| {
            let t = l.trim();
            t != "use super::*;" && t != "#[cfg(test)]"
        })
        .collect();
    lines.join("\n").trim_matches('\n').to_string()
}

// ---------------------------------------------------------------------------------------------
// Refactor and fix

/// Whole lines to rewrite: the selection, or for a fix the enclosing function when it is not
/// too long, else the diagnostic's lines with a little context.
fn rewrite_target(input: &ActionInput<'_>, kind: ActionKind) -> Result<Range<usize>> {
    let text = input.text;
    if kind == ActionKind::Refactor {
        if input.range.is_empty() {
            return Err(AssistError::NotApplicable(
                "select the code to refactor".into(),
            ));
        }
        return Ok(line_start(text, input.range.start)..line_end(text, input.range.end));
    }
    if input.diagnostic.is_none() {
        return Err(AssistError::NotApplicable(
            "no diagnostic at the cursor".into(),
        ));
    }
    let function = Lang::from_path(input.path).and_then(|lang| {
        let tree = parse(lang, text)?;
        let node = enclosing_function(lang, tree.root_node(), input.range.start)?;
        let lines = node.end_position().row - node.start_position().row;
        (lines <= 60).then(|| line_start(text, node.start_byte())..line_end(text, node.end_byte()))
    });
    Ok(function.unwrap_or_else(|| {
        let mut start = line_start(text, input.range.start);
        for _ in 0..3 {
            if start == 0 {
                break;
            }
            start = line_start(text, start - 1);
        }
        let mut end = line_end(text, input.range.end);
        for _ in 0..3 {
            if end >= text.len() {
                break;
            }
            end = line_end(text, end + 1);
        }
        start..end
    }))
}

fn rewrite_user(
    index: &WorkspaceIndex,
    input: &ActionInput<'_>,
    kind: ActionKind,
    target: &Range<usize>,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let code = &input.text[target.clone()];
    let related = related_definitions(
        index,
        code,
        Some((input.path, target.clone())),
        250,
        count_tokens,
    );
    let lang = fence_lang(input.path);
    let task = match kind {
        ActionKind::Fix => {
            let line = super::line_of(input.text, input.range.start)
                - super::line_of(input.text, target.start)
                + 1;
            format!(
                "Fix this problem reported on line {line} of the code below: {}\nChange only \
                 what the fix needs.",
                input.diagnostic.unwrap_or("").trim()
            )
        }
        _ => format!(
            "Refactor the code below: {}. Keep its behaviour.",
            input
                .instruction
                .unwrap_or("make it simpler and clearer")
                .trim()
                .trim_end_matches('.')
        ),
    };
    let mut user = format!(
        "{task}\nReply with the complete rewritten code in one ```{lang} block and nothing \
         else.\n\n```{lang}\n{}\n```\n",
        code.trim_end()
    );
    if !related.is_empty() {
        user.push_str("\nDefinitions it uses:\n");
        user.push_str(&related);
    }
    user
}

/// `code` moved so that its least indented line starts at `base` (tabs and spaces kept).
pub fn reindent(code: &str, base: &str) -> String {
    let common = code
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    code.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{base}{}", &l[common.min(l.len() - l.trim_start().len())..])
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// Applies the docstring edit for the item at `$0` with `doc` and shows the result.
    fn check_doc(file: &str, input: &str, doc: &str, expect: Expect) {
        let cursor = input.find("$0").unwrap();
        let text = input.replace("$0", "");
        let path = PathBuf::from(file);
        let action = ActionInput {
            path: &path,
            text: &text,
            range: cursor..cursor,
            instruction: None,
            diagnostic: None,
        };
        let plan = docstring_plan(&action).unwrap();
        let edit = docstring_edit(&action, &plan, &clean_docstring(doc));
        let mut result = text.clone();
        result.replace_range(edit.range, &edit.new_text);
        expect.assert_eq(&result);
    }

    #[test]
    fn python_docstring_goes_under_the_def_line() {
        check_doc(
            "m.py",
            "class A:\n    def f(self, x):\n        $0return x\n",
            "Return x unchanged.",
            expect![[r#"
                class A:
                    def f(self, x):
                        """Return x unchanged."""
                        return x
            "#]],
        );
    }

    #[test]
    fn python_docstring_replaces_an_existing_one() {
        check_doc(
            "m.py",
            "def f(x):\n    '''Old.'''\n    return $0x\n",
            "```\nDouble x.\n\nArgs:\n    x: a number.\n```",
            expect![[r#"
                def f(x):
                    """Double x.

                    Args:
                        x: a number.
                    """
                    return x
            "#]],
        );
    }

    #[test]
    fn python_docstring_of_a_one_line_body() {
        check_doc(
            "m.py",
            "def f$0(x): return x\n",
            "\"\"\"Identity.\"\"\"",
            expect![[r#"
                def f(x):
                    """Identity."""
                    return x
            "#]],
        );
    }

    #[test]
    fn rust_doc_comment_goes_below_attributes() {
        check_doc(
            "m.rs",
            "impl A {\n    #[inline]\n    pub fn f(&self) -> u8 {\n        $01\n    }\n}\n",
            "/// Returns one.",
            expect![[r#"
                impl A {
                    #[inline]
                    /// Returns one.
                    pub fn f(&self) -> u8 {
                        1
                    }
                }
            "#]],
        );
    }

    #[test]
    fn rust_doc_comment_replaces_existing_ones_anywhere_above() {
        check_doc(
            "m.rs",
            "/// Old.\n/// Older.\n#[derive(Debug)]\n/// Also old.\npub struct S$0;\n",
            "A marker.\n\nCarries nothing.",
            expect![[r#"
                #[derive(Debug)]
                /// A marker.
                ///
                /// Carries nothing.
                pub struct S;
            "#]],
        );
    }

    #[test]
    fn clean_docstring_pulls_the_docstring_out_of_a_whole_function() {
        assert_eq!(
            clean_docstring("```python\ndef f(x):\n    \"\"\"Double x.\"\"\"\n    return 2*x\n```"),
            "Double x."
        );
    }

    #[test]
    fn rust_tests_go_into_a_new_or_existing_tests_module() {
        let path = PathBuf::from("lib.rs");
        let text = "pub fn one() -> u8 {\n    1\n}\n";
        let input = ActionInput {
            path: &path,
            text,
            range: 22..22,
            instruction: None,
            diagnostic: None,
        };
        let plan = TestsPlan {
            lang: Lang::Rust,
            function: "one".into(),
            item: 0..text.len(),
            file: path.clone(),
            existing: Some(text.into()),
            module: String::new(),
            insert_at: None,
        };
        let code = "#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn one_is_one() {\n        assert_eq!(one(), 1);\n    }\n}";
        let outcome = tests_outcome(&input, &plan, code).unwrap();
        let edit = &outcome.edits[0];
        let mut result = text.to_string();
        result.replace_range(edit.range.clone(), &edit.new_text);
        expect![[r#"
            pub fn one() -> u8 {
                1
            }

            #[cfg(test)]
            mod tests {
                use super::*;

                #[test]
                fn one_is_one() {
                    assert_eq!(one(), 1);
                }
            }
        "#]]
        .assert_eq(&result);

        // A second run appends to the module that is now there.
        let with_module = result.clone();
        let index = WorkspaceIndex::default();
        let input = ActionInput {
            text: &with_module,
            ..input
        };
        let plan = tests_plan(&index, &input).unwrap();
        let outcome =
            tests_outcome(&input, &plan, "#[test]\nfn two() {\n    assert!(true);\n}").unwrap();
        let edit = &outcome.edits[0];
        let mut result = with_module.clone();
        result.replace_range(edit.range.clone(), &edit.new_text);
        expect![[r#"
            pub fn one() -> u8 {
                1
            }

            #[cfg(test)]
            mod tests {
                use super::*;

                #[test]
                fn one_is_one() {
                    assert_eq!(one(), 1);
                }

                #[test]
                fn two() {
                    assert!(true);
                }
            }
        "#]]
        .assert_eq(&result);
    }

    #[test]
    fn python_tests_create_or_extend_the_test_file() {
        let path = PathBuf::from("/w/src/pkg/util.py");
        let text = "def double(x):\n    return 2 * x\n";
        let input = ActionInput {
            path: &path,
            text,
            range: 20..20,
            instruction: None,
            diagnostic: None,
        };
        assert_eq!(python_module(Path::new("/w"), &path), "pkg.util");
        let mut plan = TestsPlan {
            lang: Lang::Python,
            function: "double".into(),
            item: 0..text.len(),
            file: PathBuf::from("/w/tests/test_util.py"),
            existing: None,
            module: "pkg.util".into(),
            insert_at: None,
        };
        let code = "import pytest\nfrom pkg.util import double\n\ndef test_double():\n    assert double(2) == 4\n";
        let outcome = tests_outcome(&input, &plan, code).unwrap();
        expect![[r#"
            from pkg.util import double
            import pytest


            def test_double():
                assert double(2) == 4
        "#]]
        .assert_eq(&outcome.new_files[0].text);

        plan.existing = Some("import pytest\n\ndef test_old():\n    pass\n".into());
        let outcome = tests_outcome(&input, &plan, code).unwrap();
        expect![[r#"


            from pkg.util import double
            def test_double():
                assert double(2) == 4
        "#]]
        .assert_eq(&outcome.edits[0].new_text);
    }

    #[test]
    fn available_actions_depend_on_the_place() {
        let path = PathBuf::from("m.py");
        let text = "import os\n\ndef f(x):\n    return x\n";
        let at = |range: Range<usize>, diagnostic: Option<&str>| {
            available(&ActionInput {
                path: &path,
                text,
                range,
                instruction: None,
                diagnostic,
            })
            .iter()
            .map(|k| k.id())
            .collect::<Vec<_>>()
            .join(",")
        };
        assert_eq!(at(3..3, None), "explain");
        assert_eq!(at(25..25, None), "explain,docstring,tests");
        assert_eq!(
            at(11..30, Some("bad")),
            "explain,docstring,tests,refactor,fix"
        );
    }

    #[test]
    fn reindent_moves_a_block_to_the_base_indentation() {
        assert_eq!(
            reindent("def f():\n    pass\n\n", "    "),
            "    def f():\n        pass\n"
        );
    }
}
