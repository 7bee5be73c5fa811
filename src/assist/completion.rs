//! Inline completion, everything but the protocol: what shape of completion fits the cursor
//! (one line, or the body of a block), when generation should stop, and how to clean the
//! model's text so that accepting it leaves correct code (no repeated suffix, no doubled
//! indentation). `complete` runs the whole path: retrieval → FIM prompt → engine → cleanup.
//!
//! The prompt is laid out for KV-cache reuse: retrieved context first (retrieval keeps it
//! byte-identical while the cursor stays in one function), then the prefix, whose first line is
//! snapped to a multiple of [`PREFIX_ALIGN`] lines so that it does not slide with every cursor
//! move; only the end of the prefix and the suffix are decoded again when the cursor moves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::guide::{CodeGuide, SCOPE_BIAS};
use super::{Result, clamp_offset, line_end, line_start, relative_path, repo_name};
use crate::config::{Config, ContextLayout};
use crate::engine::{
    ContextFile, Engine, Guide, Priority, Prompt, Request, RequestStats, Slot, StopPredicate,
    format,
};
use crate::index::WorkspaceIndex;
use crate::lang::Lang;
use crate::prompt::{self, Budget, PromptInput, ResolvedExample, Task};
use crate::retrieve::{self, Snippet};

/// The prefix starts on a multiple of this many lines, so that it stays put while the cursor
/// moves within a few lines.
pub const PREFIX_ALIGN: usize = 16;

/// Knobs of inline completion (`[completion]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionSettings {
    /// Retrieved context budget, in tokens.
    pub budget_tokens: usize,
    /// Generation limit of a multi-line completion; a single line gets at most 64.
    pub max_tokens: u32,
    /// Budget of the buffer before the cursor.
    pub prefix_tokens: usize,
    /// Budget of the buffer after the cursor.
    pub suffix_tokens: usize,
    /// Whether to retrieve context from the rest of the workspace.
    pub use_context: bool,
    /// Index-guided decoding: members after a resolved receiver must exist.
    pub guided: bool,
    /// Retrieved code in the prefix as commented sections rather than as the model's
    /// repo-level files (`[completion] context_layout`).
    pub context_in_prefix: bool,
}

impl Default for CompletionSettings {
    fn default() -> Self {
        Self {
            budget_tokens: 1024,
            max_tokens: 128,
            prefix_tokens: 768,
            suffix_tokens: 192,
            use_context: true,
            guided: true,
            context_in_prefix: false,
        }
    }
}

/// What the cursor asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub multiline: bool,
    /// Multi-line: generated lines indented less than this (in bytes of leading whitespace)
    /// have left the block.
    pub min_indent: usize,
    /// Rust: an unmatched `}` ends the block.
    pub braces: bool,
    /// Text of the cursor line before the cursor.
    pub line_before: String,
    /// Text of the cursor line after the cursor.
    pub line_after: String,
    /// The next non-blank lines after the cursor line, trimmed (for overlap checks).
    pub next_lines: Vec<String>,
}

/// How many following lines `Shape::next_lines` keeps.
const NEXT_LINES: usize = 4;

/// Decides single- or multi-line completion at `cursor` (a byte offset into `text`).
///
/// Multi-line at the start of a block: on a blank line after a line ending in `:` (Python) or
/// `{` (Rust), at the end of such a line, or where a new paragraph starts inside an indented
/// body (after a blank line). Anywhere else one line: a line right after a statement is most
/// often one more statement, and each generated token costs the user ~30 ms on a Pi; the next
/// line comes warm from the KV cache once this one is accepted.
pub fn shape(lang: Option<Lang>, text: &str, cursor: usize) -> Shape {
    let cursor = clamp_offset(text, cursor);
    let start = line_start(text, cursor);
    let end = line_end(text, cursor);
    let line_before = &text[start..cursor];
    let line_after = &text[cursor..end];
    let next_lines: Vec<String> = text
        .get(end + 1..)
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(NEXT_LINES)
        .map(str::to_string)
        .collect();
    let previous = text[..start]
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let after_blank_line = text[..start]
        .lines()
        .next_back()
        .is_some_and(|l| l.trim().is_empty());
    let braces = lang != Some(Lang::Python);
    let mut shape = Shape {
        multiline: false,
        min_indent: 0,
        braces,
        line_before: line_before.to_string(),
        line_after: line_after.to_string(),
        next_lines,
    };
    if !line_after.trim().is_empty() {
        return shape;
    }
    if line_before.trim().is_empty() {
        if opens_block(lang, previous) {
            shape.multiline = true;
            shape.min_indent = (indent_width(previous) + 1).max(line_before.len());
        } else if !line_before.is_empty() && after_blank_line {
            shape.multiline = true;
            shape.min_indent = line_before.len();
        }
    } else if opens_block(lang, line_before) {
        shape.multiline = true;
        shape.min_indent = indent_width(line_before) + 1;
    }
    shape
}

fn opens_block(lang: Option<Lang>, line: &str) -> bool {
    let code = match lang {
        Some(Lang::Python) => strip_python_comment(line),
        _ => line,
    };
    let code = code.trim_end();
    match lang {
        Some(Lang::Python) => code.ends_with(':'),
        Some(Lang::Rust) => code.ends_with('{'),
        None => code.ends_with(':') || code.ends_with('{'),
    }
}

/// The line without a trailing `# comment` (a `#` inside a string literal is kept).
fn strip_python_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' => return &line[..i],
            None => {}
        }
    }
    line
}

fn indent_width(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Where a multi-line completion ends, as the length of `generated` to keep; None while the
/// block goes on. Only complete lines are judged (the last, partial line may still change).
pub fn block_end(shape: &Shape, generated: &str) -> Option<usize> {
    if !shape.multiline {
        return generated.find('\n');
    }
    let mut depth: i64 = 0;
    let mut offset = 0;
    let mut blank_run = 0;
    let mut last_content_end = 0;
    let mut lines = generated.split_inclusive('\n').enumerate().peekable();
    while let Some((number, line)) = lines.next() {
        let complete = line.ends_with('\n');
        let content = line.trim_end_matches(['\n', '\r']);
        let line_offset = offset;
        offset += line.len();
        if !complete {
            break;
        }
        if shape.braces {
            let (new_depth, lowest) = brace_depth(depth, content);
            if lowest < 0 {
                return Some(last_content_end.max(cut_before(generated, line_offset)));
            }
            depth = new_depth;
        }
        if content.trim().is_empty() {
            blank_run += 1;
            if blank_run >= 2 && number > 0 {
                return Some(last_content_end);
            }
            continue;
        }
        blank_run = 0;
        // The first generated line continues the cursor line: its indentation is the cursor's.
        if number > 0 {
            if indent_width(content) < shape.min_indent {
                return Some(last_content_end);
            }
            if shape
                .next_lines
                .first()
                .is_some_and(|next| next == content.trim())
            {
                return Some(last_content_end);
            }
        }
        last_content_end = line_offset + content.len();
        if lines.peek().is_none() {
            break;
        }
    }
    None
}

/// The offset of the end of the last non-blank line before `offset`.
fn cut_before(text: &str, offset: usize) -> usize {
    text[..offset].trim_end().len()
}

/// Brace depth after `line`, starting from `depth`, and the lowest depth reached on the way.
/// Braces inside string and char literals and after `//` do not count.
fn brace_depth(mut depth: i64, line: &str) -> (i64, i64) {
    let mut lowest = depth;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' => quote = Some('"'),
            '/' if chars.peek() == Some(&'/') => break,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                lowest = lowest.min(depth);
            }
            _ => {}
        }
    }
    (depth, lowest)
}

/// Turns what the model generated into the text to insert at the cursor.
pub fn finish(shape: &Shape, generated: &str) -> String {
    let mut text = generated.replace("\r\n", "\n");
    if let Some(keep) = block_end(shape, &text) {
        text.truncate(keep);
    }
    if shape.multiline {
        text = drop_repeated_suffix_lines(shape, &text);
    }
    let mut text = text.trim_end().to_string();
    fix_leading_whitespace(shape, &mut text);
    if !shape.multiline {
        text = trim_line_overlap(&text, &shape.line_after);
    }
    if text.trim().is_empty() {
        return String::new();
    }
    text
}

/// Removes the completion's last lines when they are the lines that already follow the cursor.
fn drop_repeated_suffix_lines(shape: &Shape, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let max = shape.next_lines.len().min(lines.len().saturating_sub(1));
    for m in (1..=max).rev() {
        let tail = &lines[lines.len() - m..];
        if tail
            .iter()
            .map(|l| l.trim())
            .eq(shape.next_lines[..m].iter().map(String::as_str))
        {
            return lines[..lines.len() - m].join("\n");
        }
    }
    text.to_string()
}

/// No doubled indentation or space: the cursor already sits after whitespace.
fn fix_leading_whitespace(shape: &Shape, text: &mut String) {
    let before = &shape.line_before;
    let after_whitespace = before.ends_with([' ', '\t']);
    let indented_enough = !shape.multiline || before.len() >= shape.min_indent;
    let only_indentation = before.trim().is_empty();
    if after_whitespace && (!only_indentation || indented_enough) {
        let first_line_lead = text.len() - text.trim_start_matches([' ', '\t']).len();
        text.drain(..first_line_lead);
    }
}

/// Drops the end of a one-line completion that the rest of the line already holds (`)`, `]:`,
/// …), but only where that leaves the completion's brackets balanced, so that `len(x)` typed
/// into `f(|)` keeps its own `)`.
pub fn trim_line_overlap(completion: &str, line_after: &str) -> String {
    let after = line_after.trim_start();
    let after = after.trim_end();
    if after.is_empty() {
        return completion.to_string();
    }
    let balanced_before = bracket_balance(completion) == 0;
    let mut k = after.len().min(completion.len());
    while k > 0 {
        if after.is_char_boundary(k) && completion.is_char_boundary(completion.len() - k) {
            let overlap = &after[..k];
            let kept = &completion[..completion.len() - k];
            let has_brackets = overlap.contains(['(', ')', '[', ']', '{', '}']);
            if completion.ends_with(overlap)
                && bracket_balance(kept) == 0
                && (!balanced_before || !has_brackets)
            {
                return kept.trim_end().to_string();
            }
        }
        k -= 1;
    }
    completion.to_string()
}

/// Opening minus closing brackets outside string literals.
fn bracket_balance(text: &str) -> i64 {
    let mut balance = 0;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => balance += 1,
            ')' | ']' | '}' => balance -= 1,
            _ => {}
        }
    }
    balance
}

/// The engine's stop predicate for `shape`.
pub fn stop_predicate(shape: &Shape) -> StopPredicate {
    let shape = shape.clone();
    std::sync::Arc::new(move |generated: &str| block_end(&shape, generated))
}

/// One inline completion request, as the editor holds the buffer.
#[derive(Debug, Clone, Copy)]
pub struct CompletionInput<'a> {
    /// Absolute path of the edited file.
    pub path: &'a Path,
    pub text: &'a str,
    /// Cursor as a byte offset into `text`.
    pub cursor: usize,
    /// Recently edited or opened files, most recent first.
    pub recent: &'a [PathBuf],
}

/// A finished inline completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Text to insert at the cursor (may be empty: nothing worth proposing).
    pub text: String,
    pub multiline: bool,
    /// What the model produced before cleanup.
    pub raw: String,
    pub stats: RequestStats,
    /// Tokens of the prompt as counted here (context + prefix + suffix).
    pub prompt_tokens: usize,
    pub snippets: usize,
    pub elapsed_ms: u64,
}

impl CompletionSettings {
    /// The `[completion]` section for a model of `parameters` (where known): the suffix gets
    /// at most `suffix_tokens` (and never more than half) of the buffer budget, the prefix the
    /// rest; an unset context budget is sized for the model.
    pub fn from_config(config: &Config, parameters: Option<u64>) -> Self {
        let completion = &config.completion;
        let suffix_tokens = completion.suffix_tokens.min(completion.buffer_tokens / 2);
        let budget_tokens = completion.context_budget(parameters);
        Self {
            budget_tokens,
            max_tokens: completion.max_tokens.max(1),
            prefix_tokens: completion.buffer_tokens - suffix_tokens,
            suffix_tokens,
            use_context: budget_tokens > 0,
            guided: completion.guided,
            context_in_prefix: completion.layout_for(parameters) == ContextLayout::Comments,
        }
    }
}

/// The guide of index-guided decoding at the cursor (see [`super::guide`]).
pub fn code_guide(index: &WorkspaceIndex, input: &CompletionInput<'_>) -> Arc<dyn Guide> {
    let cursor = clamp_offset(input.text, input.cursor);
    guide_from(
        retrieve::scope_at(index, input.path, input.text, cursor),
        input,
    )
}

/// [`code_guide`] over a prepared retrieval table (`pith complete --batch`).
pub fn code_guide_in(
    table: &retrieve::table::SymbolTable,
    input: &CompletionInput<'_>,
) -> Arc<dyn Guide> {
    let cursor = clamp_offset(input.text, input.cursor);
    guide_from(
        retrieve::scope_in(table, input.path, input.text, cursor),
        input,
    )
}

fn guide_from(
    (receivers, scope): (retrieve::receivers::Receivers, Vec<String>),
    input: &CompletionInput<'_>,
) -> Arc<dyn Guide> {
    let cursor = clamp_offset(input.text, input.cursor);
    let lang = Lang::from_path(input.path).unwrap_or(Lang::Python);
    let line_before = &input.text[line_start(input.text, cursor)..cursor];
    Arc::new(CodeGuide::new(
        lang,
        line_before,
        receivers,
        scope,
        SCOPE_BIAS,
    ))
}

/// Retrieved context for `input` from the index (none when context is off).
pub fn retrieve_context(
    index: &WorkspaceIndex,
    settings: &CompletionSettings,
    input: &CompletionInput<'_>,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Snippet> {
    if !settings.use_context || settings.budget_tokens == 0 {
        return Vec::new();
    }
    let query = retrieve::Query {
        path: input.path,
        text: input.text,
        cursor: clamp_offset(input.text, input.cursor),
        budget_tokens: settings.budget_tokens,
        recent: input.recent,
    };
    retrieve::retrieve(index, &query, count_tokens)
}

/// The FIM prompt for `input` with `snippets` as context: `prompt::build` lays out the
/// instructions, examples and snippets from the config; the prefix is then re-cut at an
/// aligned line (see the module doc) and the suffix to its own budget.
pub fn fim_prompt(
    config: &Config,
    workspace: &Workspace<'_>,
    settings: &CompletionSettings,
    input: &CompletionInput<'_>,
    snippets: &[Snippet],
    count_tokens: &dyn Fn(&str) -> usize,
) -> Prompt {
    let cursor = clamp_offset(input.text, input.cursor);
    let prompt_input = PromptInput {
        task: Task::Completion,
        repo: workspace.repo,
        root: workspace.root,
        path: input.path,
        text: input.text,
        cursor,
        selection: None,
        symbol: None,
        question: None,
        diagnostics: &[],
        snippets,
        memories: &[],
        examples: workspace.examples,
    };
    let budget = Budget {
        buffer_tokens: settings.prefix_tokens + settings.suffix_tokens,
        // Retrieval already fitted the snippets; the margin pays for the separators.
        context_tokens: settings.budget_tokens + 2 * snippets.len() + 64,
    };
    let mut prompt = prompt::build(config, &prompt_input, budget, count_tokens);
    if let Prompt::Fim {
        prefix,
        suffix,
        context,
        path,
        ..
    } = &mut prompt
    {
        let window = prefix_window(&input.text[..cursor], settings.prefix_tokens, count_tokens);
        *prefix = if settings.context_in_prefix {
            let inlined = format::commented_context(context, path);
            context.clear();
            inlined + window
        } else {
            window.to_string()
        };
        *suffix = super::head_lines(&input.text[cursor..], settings.suffix_tokens, count_tokens);
    }
    prompt
}

/// Where a file sits: its workspace root and the project name.
#[derive(Debug, Clone, Copy)]
pub struct Workspace<'a> {
    pub root: &'a Path,
    pub repo: &'a str,
    /// The config's in-context examples for completion (`super::examples`).
    pub examples: &'a [ResolvedExample],
}

/// Snippets grouped into one context file per path, in retrieval order.
pub fn context_files(index: &WorkspaceIndex, snippets: &[Snippet]) -> Vec<ContextFile> {
    let mut files: Vec<ContextFile> = Vec::new();
    for snippet in snippets {
        let path = relative_path(index, &snippet.path);
        match files.iter_mut().find(|f| f.path == path) {
            Some(file) => {
                file.text.push_str("\n\n");
                file.text.push_str(snippet.text.trim_end());
            }
            None => files.push(ContextFile {
                path,
                text: snippet.text.trim_end().to_string(),
            }),
        }
    }
    for file in &mut files {
        file.text.push('\n');
    }
    files
}

/// The end of `before` that fits `budget` tokens, starting on a line that is a multiple of
/// [`PREFIX_ALIGN`] (so that it stays the same while the cursor moves a little).
pub fn prefix_window<'a>(
    before: &'a str,
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> &'a str {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', before.as_bytes()).map(|i| i + 1))
        .collect();
    let cursor_line = starts.len() - 1;
    let mut used = count_tokens(&before[starts[cursor_line]..]);
    let mut first = cursor_line;
    while first > 0 {
        let line = &before[starts[first - 1]..starts[first]];
        used += count_tokens(line);
        if used > budget {
            break;
        }
        first -= 1;
    }
    if first > 0 {
        let aligned = first.div_ceil(PREFIX_ALIGN) * PREFIX_ALIGN;
        if aligned <= cursor_line {
            first = aligned;
        }
    }
    &before[starts[first]..]
}

/// Runs the whole inline-completion path for `input`: retrieval from the index, prompt,
/// engine, cleanup.
pub async fn complete(
    engine: &dyn Engine,
    index: &WorkspaceIndex,
    config: &Config,
    input: &CompletionInput<'_>,
    cancel: CancellationToken,
) -> Result<Completion> {
    let started = Instant::now();
    let settings = CompletionSettings::from_config(config, engine.parameters());
    let count_tokens = |text: &str| engine.count_tokens(text);
    let snippets = retrieve_context(index, &settings, input, &count_tokens);
    let root = super::root_of(index, input.path)
        .or_else(|| input.path.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let repo = repo_name(index, input.path);
    let examples = super::examples(config, index, input.path, Task::Completion);
    let workspace = Workspace {
        root: &root,
        repo: &repo,
        examples: &examples,
    };
    let guide = settings.guided.then(|| code_guide(index, input));
    let mut completion =
        complete_with(engine, config, &workspace, input, &snippets, guide, cancel).await?;
    completion.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(completion)
}

/// The inline-completion path after retrieval: prompt, engine, cleanup.
pub async fn complete_with(
    engine: &dyn Engine,
    config: &Config,
    workspace: &Workspace<'_>,
    input: &CompletionInput<'_>,
    snippets: &[Snippet],
    guide: Option<Arc<dyn Guide>>,
    cancel: CancellationToken,
) -> Result<Completion> {
    let started = Instant::now();
    let settings = CompletionSettings::from_config(config, engine.parameters());
    let count_tokens = |text: &str| engine.count_tokens(text);
    let prompt = fim_prompt(config, workspace, &settings, input, snippets, &count_tokens);
    let prompt_tokens = prompt_token_count(&prompt, &count_tokens);
    let shape = shape(
        Lang::from_path(input.path),
        input.text,
        clamp_offset(input.text, input.cursor),
    );
    let max_tokens = if shape.multiline {
        settings.max_tokens
    } else {
        settings.max_tokens.min(64)
    };
    let request = Request {
        stop_when: Some(stop_predicate(&shape)),
        priority: Priority::Completion,
        cancel,
        supersede_key: Some(format!("complete:{}", input.path.display())),
        guide,
        ..Request::new(prompt, max_tokens, Slot::Completion)
    };
    let generated = super::generate(engine, request, |_| {}).await?;
    Ok(Completion {
        text: finish(&shape, &generated.text),
        multiline: shape.multiline,
        raw: generated.text,
        stats: generated.stats,
        prompt_tokens,
        snippets: snippets.len(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Tokens of a prompt's parts (the engine's layout adds a few special tokens).
pub fn prompt_token_count(prompt: &Prompt, count_tokens: &dyn Fn(&str) -> usize) -> usize {
    match prompt {
        Prompt::Fim {
            context,
            prefix,
            suffix,
            ..
        } => {
            context
                .iter()
                .map(|f| count_tokens(&f.path) + count_tokens(&f.text))
                .sum::<usize>()
                + count_tokens(prefix)
                + count_tokens(suffix)
        }
        Prompt::Chat(messages) => messages.iter().map(|m| count_tokens(&m.content)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// `input` marks the cursor with `$0`; renders the shape as one line.
    fn check_shape(lang: Lang, input: &str, expect: Expect) {
        let cursor = input.find("$0").unwrap();
        let text = input.replace("$0", "");
        let shape = shape(Some(lang), &text, cursor);
        let rendered = if shape.multiline {
            format!("multi min_indent={}", shape.min_indent)
        } else {
            "single".to_string()
        };
        expect.assert_eq(&rendered);
    }

    #[test]
    fn shape_multiline_at_block_starts() {
        check_shape(
            Lang::Python,
            "def f(x):\n    $0\n",
            expect!["multi min_indent=4"],
        );
        check_shape(
            Lang::Python,
            "def f(x):  # doc: later\n$0",
            expect!["multi min_indent=1"],
        );
        check_shape(
            Lang::Python,
            "def f(x):$0\n    pass\n",
            expect!["multi min_indent=1"],
        );
        check_shape(
            Lang::Rust,
            "fn f() {\n    $0\n}\n",
            expect!["multi min_indent=4"],
        );
        check_shape(
            Lang::Python,
            "def f(x):\n    y = 1\n\n    $0\n    return y\n",
            expect!["multi min_indent=4"],
        );
    }

    #[test]
    fn shape_single_line_mid_line_and_at_top_level() {
        check_shape(
            Lang::Python,
            "def f(x):\n    return $0\n",
            expect!["single"],
        );
        check_shape(Lang::Python, "import os\n$0\n", expect!["single"]);
        check_shape(Lang::Rust, "fn f() {\n    g($0);\n}\n", expect!["single"]);
        check_shape(
            Lang::Python,
            "x = {'a': 1}  # not a block:\n$0",
            expect!["single"],
        );
        check_shape(
            Lang::Python,
            "def f(x):\n    y = 1\n    $0\n    return y\n",
            expect!["single"],
        );
        check_shape(
            Lang::Rust,
            "fn f() {\n    let a = 1;\n    $0\n}\n",
            expect!["single"],
        );
    }

    /// Cursor `$0` in `input`, the model's raw output, the text proposed (`⏎` for newlines).
    fn check_finish(lang: Lang, input: &str, generated: &str, expect: Expect) {
        let cursor = input.find("$0").unwrap();
        let text = input.replace("$0", "");
        let shape = shape(Some(lang), &text, cursor);
        expect.assert_eq(&finish(&shape, generated).replace('\n', "⏎"));
    }

    #[test]
    fn python_block_ends_at_dedent() {
        check_finish(
            Lang::Python,
            "def f(x):\n    $0\n",
            "y = x + 1\n    return y\n\ndef g():\n    pass\n",
            expect!["y = x + 1⏎    return y"],
        );
    }

    #[test]
    fn python_block_ends_before_repeating_the_suffix() {
        check_finish(
            Lang::Python,
            "def f(x):\n    $0\n    return y\n",
            "y = x * 2\n    return y\n",
            expect!["y = x * 2"],
        );
        // The engine stopped early but the repeated tail is still there: trimmed afterwards.
        check_finish(
            Lang::Python,
            "def f(x):\n    $0\n    z = y\n    return z\n",
            "y = x * 2\n    z = y\n    return z",
            expect!["y = x * 2"],
        );
    }

    #[test]
    fn two_blank_lines_end_a_block() {
        check_finish(
            Lang::Python,
            "class A:\n    $0\n",
            "x = 1\n\n\n    y = 2\n",
            expect!["x = 1"],
        );
    }

    #[test]
    fn rust_block_ends_at_unmatched_brace() {
        check_finish(
            Lang::Rust,
            "fn f(v: &[u8]) -> usize {\n    $0\n}\n",
            "let n = v.len();\n    if n > 2 { n } else { 0 }\n}\n\nfn g() {}\n",
            expect!["let n = v.len();⏎    if n > 2 { n } else { 0 }"],
        );
        check_finish(
            Lang::Rust,
            "fn f() {\n    $0\n}\n",
            "let s = \"}\";\n    s.len();\n}\n",
            expect![[r#"let s = "}";⏎    s.len();"#]],
        );
    }

    #[test]
    fn end_of_header_line_completes_the_body() {
        check_finish(
            Lang::Python,
            "def double(x):$0",
            "\n    return 2 * x\n",
            expect!["⏎    return 2 * x"],
        );
    }

    #[test]
    fn single_line_stops_at_newline_and_trims_the_rest_of_the_line() {
        check_finish(
            Lang::Python,
            "print($0)\n",
            "a, b)\nprint(c)\n",
            expect!["a, b"],
        );
        check_finish(Lang::Python, "print($0)\n", "len(x))", expect!["len(x)"]);
        check_finish(Lang::Python, "f($0)\n", "len(x)", expect!["len(x)"]);
        check_finish(Lang::Python, "if $0:\n", "x > 0:", expect!["x > 0"]);
        check_finish(Lang::Python, "d[$0]\n", "\"key\"]", expect![[r#""key""#]]);
        check_finish(Lang::Python, "x = $0\n", " 5", expect!["5"]);
        check_finish(Lang::Python, "x =$0\n", " 5", expect![" 5"]);
    }

    #[test]
    fn indentation_is_not_doubled() {
        check_finish(
            Lang::Python,
            "def f():\n    $0\n",
            "    return 1\n",
            expect!["return 1"],
        );
        // At column 0 of an empty body line the model's indentation is kept.
        check_finish(
            Lang::Python,
            "def f():\n$0\n",
            "    return 1\n",
            expect!["    return 1"],
        );
    }

    #[test]
    fn prefix_window_is_stable_while_the_cursor_moves() {
        let text: String = (0..100).map(|i| format!("line_{i} = {i}\n")).collect();
        let count = |s: &str| s.len().div_ceil(4);
        let at = |line: usize| {
            let offset = text.match_indices('\n').nth(line - 1).unwrap().0 + 1;
            let window = prefix_window(&text[..offset], 120, &count);
            window.lines().next().unwrap().to_string()
        };
        assert_eq!(at(70), at(71));
        assert!(count(prefix_window(&text[..text.len()], 120, &count)) <= 120);
        assert_eq!(prefix_window("abc", 0, &count), "abc");
    }

    #[tokio::test]
    async fn complete_sends_a_completion_request_and_cleans_the_answer() {
        use crate::assist::testing::ScriptedEngine;
        let dir = tempfile::tempdir().unwrap();
        let index = WorkspaceIndex::new(vec![dir.path().to_path_buf()], Default::default());
        let engine = ScriptedEngine::new(&["    total = a + b\n    return total\n"]);
        let text = "def add(a, b):\n    \n    return total\n";
        let path = dir.path().join("m.py");
        let input = CompletionInput {
            path: &path,
            text,
            cursor: "def add(a, b):\n    ".len(),
            recent: &[],
        };
        let config = Config::default();
        let completion = complete(&engine, &index, &config, &input, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(completion.text, "total = a + b");
        assert!(completion.multiline);
        let request = engine.last_request();
        assert_eq!(request.priority, Priority::Completion);
        assert_eq!(request.slot, Slot::Completion);
        assert_eq!(
            request.supersede_key.as_deref(),
            Some(format!("complete:{}", path.display()).as_str())
        );
        let Prompt::Fim {
            path,
            prefix,
            suffix,
            ..
        } = &request.prompt
        else {
            panic!("not a FIM prompt")
        };
        assert_eq!(path, "m.py");
        assert_eq!(prefix, "def add(a, b):\n    ");
        assert_eq!(suffix, "\n    return total\n");
    }

    /// An empty workspace, the path of `m.py` in it, and a config with one in-context example
    /// (`def ping`), described by `description`: the example is the prompt's only context.
    fn workspace_with_an_example(
        description: Option<&str>,
    ) -> (tempfile::TempDir, WorkspaceIndex, PathBuf, Config) {
        let dir = tempfile::tempdir().unwrap();
        let index = WorkspaceIndex::new(vec![dir.path().to_path_buf()], Default::default());
        let path = dir.path().join("m.py");
        let mut config = Config::default();
        config.examples.push(crate::config::Example {
            description: description.map(str::to_owned),
            code: Some("def ping(request):\n    return ok(request, 'pong')".into()),
            ..Default::default()
        });
        (dir, index, path, config)
    }

    #[tokio::test]
    async fn the_comments_layout_puts_the_context_in_the_prefix() {
        use crate::assist::testing::ScriptedEngine;
        let (_dir, index, path, mut config) = workspace_with_an_example(None);
        let engine = ScriptedEngine::new(&["pass\n", "pass\n"]);
        let text = "def handler(request):\n    ";
        let input = CompletionInput {
            path: &path,
            text,
            cursor: text.len(),
            recent: &[],
        };
        for (layout, inlined) in [
            (ContextLayout::Files, false),
            (ContextLayout::Comments, true),
        ] {
            config.completion.context_layout = layout;
            complete(&engine, &index, &config, &input, CancellationToken::new())
                .await
                .unwrap();
            let Prompt::Fim {
                context, prefix, ..
            } = &engine.last_request().prompt
            else {
                panic!("not a FIM prompt")
            };
            assert_eq!(context.is_empty(), inlined, "{layout:?}: {context:?}");
            assert_eq!(
                prefix.contains("return ok(request, 'pong')"),
                inlined,
                "{prefix}"
            );
            assert!(prefix.ends_with(text), "{prefix}");
            if inlined {
                assert!(
                    prefix.starts_with(&format!("# {}\n", prompt::EXAMPLES_PATH)),
                    "{prefix}"
                );
                assert!(prefix.contains("\n# m.py\ndef handler"), "{prefix}");
            }
        }
    }

    #[tokio::test]
    async fn configured_examples_reach_the_completion_prompt() {
        use crate::assist::testing::ScriptedEngine;
        let (_dir, index, path, config) = workspace_with_an_example(Some("How we write handlers"));
        let engine = ScriptedEngine::new(&["pass\n"]);
        let text = "def handler(request):\n    ";
        let input = CompletionInput {
            path: &path,
            text,
            cursor: text.len(),
            recent: &[],
        };
        complete(&engine, &index, &config, &input, CancellationToken::new())
            .await
            .unwrap();
        let Prompt::Fim { context, .. } = &engine.last_request().prompt else {
            panic!("not a FIM prompt")
        };
        let examples = context
            .iter()
            .find(|file| file.path == prompt::EXAMPLES_PATH)
            .expect("an examples context file");
        assert!(
            examples.text.contains("return ok(request, 'pong')"),
            "{examples:?}"
        );
    }

    #[tokio::test]
    async fn a_cancelled_completion_is_an_error_not_text() {
        use crate::assist::testing::ScriptedEngine;
        let dir = tempfile::tempdir().unwrap();
        let index = WorkspaceIndex::new(vec![dir.path().to_path_buf()], Default::default());
        let engine = ScriptedEngine::new(&["x"]);
        let path = dir.path().join("m.py");
        let input = CompletionInput {
            path: &path,
            text: "x = ",
            cursor: 4,
            recent: &[],
        };
        let cancel = CancellationToken::new();
        cancel.cancel();
        let result = complete(&engine, &index, &Config::default(), &input, cancel).await;
        assert_eq!(result, Err(crate::assist::AssistError::Cancelled));
    }
}
