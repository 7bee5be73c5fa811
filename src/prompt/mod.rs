//! Prompt building: the layer between retrieval and the engine. From the config, the retrieved
//! snippets, session memories, examples and the buffer it builds the `engine::Prompt` of every
//! task, within token budgets:
//!
//! - completion is FIM: the buffer's prefix and suffix trimmed to whole lines around the cursor
//!   (the prefix gets three quarters of the buffer budget plus what the suffix leaves), and the
//!   context files: `.pith/instructions` (system prompt/style rules as comments, from the
//!   completion template), `.pith/examples`, then snippets grouped by file. Context is ordered
//!   most-stable first (instructions, examples, then files by path) so that the KV prefix is
//!   reused while the cursor moves;
//! - every other task is a chat: a system message (system prompt plus style rules) and a user
//!   message rendered from the task's template.

pub use crate::task::{Task, defaults, template};

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use crate::config::Config;
use crate::engine::{ContextFile, Message, Prompt, Role};
use crate::lang::Lang;
use crate::memory::Memory;
use crate::retrieve::Snippet;

/// An example with its text resolved (from the config, a file, or a symbol's code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedExample {
    pub description: Option<String>,
    pub text: String,
}

/// The symbol a task is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolInfo {
    pub name: String,
    pub signature: String,
    /// Byte range of the definition in the buffer.
    pub range: Range<usize>,
}

/// Everything a prompt is built from.
#[derive(Debug, Clone)]
pub struct PromptInput<'a> {
    pub task: Task,
    /// Project name, for repo-level FIM layouts.
    pub repo: &'a str,
    /// Workspace root: context paths are made relative to it.
    pub root: &'a Path,
    /// Absolute path of the edited file.
    pub path: &'a Path,
    /// The buffer as the editor holds it.
    pub text: &'a str,
    /// Cursor, a byte offset into `text`.
    pub cursor: usize,
    /// Selected byte range, if any (code actions on a selection).
    pub selection: Option<Range<usize>>,
    pub symbol: Option<SymbolInfo>,
    /// The user's question (`ask`) or instruction (`refactor`).
    pub question: Option<&'a str>,
    /// Diagnostics messages (`fix`).
    pub diagnostics: &'a [String],
    pub snippets: &'a [Snippet],
    pub memories: &'a [Memory],
    pub examples: &'a [ResolvedExample],
}

/// Token budgets of one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The edited buffer around the cursor (prefix + suffix, or the code of a chat task).
    pub buffer_tokens: usize,
    /// Everything else: instructions, examples, snippets, memories.
    pub context_tokens: usize,
}

impl Budget {
    /// The `[completion]` budgets for a model of `parameters` (where known).
    pub fn from_config(config: &Config, parameters: Option<u64>) -> Self {
        Self {
            buffer_tokens: config.completion.buffer_tokens,
            context_tokens: config.completion.context_budget(parameters),
        }
    }
}

/// Path of the context file that carries instructions in FIM prompts.
pub const INSTRUCTIONS_PATH: &str = ".pith/instructions";
/// Path of the context file that carries examples in FIM prompts.
pub const EXAMPLES_PATH: &str = ".pith/examples";

/// Builds the prompt of `input.task`.
pub fn build(
    config: &Config,
    input: &PromptInput<'_>,
    budget: Budget,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Prompt {
    match input.task {
        Task::Completion => build_fim(config, input, budget, count_tokens),
        _ => build_chat(config, input, budget, count_tokens),
    }
}

fn language_of(path: &Path) -> Option<Lang> {
    Lang::from_path(path)
}

fn line_comment(lang: Option<Lang>) -> &'static str {
    match lang {
        Some(Lang::Rust) => "//",
        Some(Lang::Python) | None => "#",
    }
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn style_text(style: &[String]) -> String {
    style.iter().map(|rule| format!("- {rule}\n")).collect()
}

fn examples_text(examples: &[ResolvedExample]) -> String {
    let mut out = String::new();
    for example in examples {
        if let Some(description) = &example.description {
            out.push_str(description.trim_end());
            out.push('\n');
        }
        out.push_str(example.text.trim_end());
        out.push_str("\n\n");
    }
    out
}

fn build_fim(
    config: &Config,
    input: &PromptInput<'_>,
    budget: Budget,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Prompt {
    let lang = language_of(input.path);
    let resolved = config.prompt_for(lang.map(Lang::name));
    let mut remaining = budget.context_tokens;
    let mut context = Vec::new();

    let instructions = template::render(resolved.template(Task::Completion), &|name| match name {
        "language" => lang.map_or("", Lang::name).to_string(),
        "path" => relative(input.root, input.path),
        "system" => resolved.system.clone(),
        "style" => style_text(&resolved.style),
        "examples" => examples_text(input.examples),
        _ => String::new(),
    });
    if !instructions.trim().is_empty() {
        let marker = line_comment(lang);
        let text: String = instructions
            .trim_end()
            .lines()
            .map(|line| match line.is_empty() {
                true => format!("{marker}\n"),
                false => format!("{marker} {line}\n"),
            })
            .collect();
        push_if_fits(
            &mut context,
            &mut remaining,
            INSTRUCTIONS_PATH,
            text,
            count_tokens,
        );
    }
    // Examples go in as code (not comments) unless the template already placed them.
    if !input.examples.is_empty() && !resolved.template(Task::Completion).contains("{examples}") {
        let text = examples_text(input.examples);
        push_if_fits(
            &mut context,
            &mut remaining,
            EXAMPLES_PATH,
            text,
            count_tokens,
        );
    }
    let marker = line_comment(lang);
    for (path, text) in pack_snippets(
        input,
        &mut remaining,
        count_tokens,
        &format!("{marker} ⋮\n"),
    ) {
        context.push(ContextFile { path, text });
    }

    let (prefix, suffix) =
        trim_around(input.text, input.cursor, budget.buffer_tokens, count_tokens);
    Prompt::Fim {
        repo: input.repo.to_string(),
        context,
        path: relative(input.root, input.path),
        prefix: prefix.to_string(),
        suffix: suffix.to_string(),
    }
}

fn push_if_fits(
    context: &mut Vec<ContextFile>,
    remaining: &mut usize,
    path: &str,
    text: String,
    count_tokens: &dyn Fn(&str) -> usize,
) {
    let tokens = count_tokens(&text);
    if tokens <= *remaining {
        *remaining -= tokens;
        context.push(ContextFile {
            path: path.to_string(),
            text,
        });
    }
}

/// Picks snippets by score while they fit, then lays them out stably: grouped by file, files in
/// path order, snippets in line order, gaps marked with `gap`. Returns (relative path, text).
fn pack_snippets(
    input: &PromptInput<'_>,
    remaining: &mut usize,
    count_tokens: &dyn Fn(&str) -> usize,
    gap: &str,
) -> Vec<(String, String)> {
    let mut ranked: Vec<&Snippet> = input.snippets.iter().collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut chosen: BTreeMap<String, Vec<&Snippet>> = BTreeMap::new();
    for snippet in ranked {
        let tokens = count_tokens(&snippet.text) + 1;
        if tokens > *remaining {
            continue;
        }
        *remaining -= tokens;
        chosen
            .entry(relative(input.root, &snippet.path))
            .or_default()
            .push(snippet);
    }
    chosen
        .into_iter()
        .map(|(path, mut snippets)| {
            snippets.sort_by_key(|s| (s.start_line, s.end_line));
            let mut text = String::new();
            let mut last_end = 0;
            for snippet in snippets {
                if snippet.start_line > last_end {
                    text.push_str(gap);
                }
                text.push_str(&snippet.text);
                if !snippet.text.ends_with('\n') {
                    text.push('\n');
                }
                last_end = last_end.max(snippet.end_line);
            }
            (path, text)
        })
        .collect()
}

/// The prefix and suffix around `cursor`, trimmed to whole lines to fit `budget` tokens. The
/// cursor's own line is always kept; the prefix gets three quarters and whatever the suffix
/// leaves unused.
pub fn trim_around<'t>(
    text: &'t str,
    cursor: usize,
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> (&'t str, &'t str) {
    let mut cursor = cursor.min(text.len());
    while !text.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let (before, after) = text.split_at(cursor);
    // The cursor line's two halves are kept whole whatever the budget.
    let prefix_line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let suffix_line_end = after.find('\n').map_or(after.len(), |i| i + 1);
    let fixed =
        count_tokens(&before[prefix_line_start..]) + count_tokens(&after[..suffix_line_end]);
    let spare = budget.saturating_sub(fixed);
    let suffix_share = spare / 4;

    let mut suffix_end = suffix_line_end;
    let mut used = 0;
    while suffix_end < after.len() {
        let next = after[suffix_end..]
            .find('\n')
            .map_or(after.len(), |i| suffix_end + i + 1);
        let tokens = count_tokens(&after[suffix_end..next]);
        if used + tokens > suffix_share {
            break;
        }
        used += tokens;
        suffix_end = next;
    }
    let prefix_share = spare - used;
    let mut prefix_start = prefix_line_start;
    let mut used = 0;
    while prefix_start > 0 {
        let previous = before[..prefix_start - 1].rfind('\n').map_or(0, |i| i + 1);
        let tokens = count_tokens(&before[previous..prefix_start]);
        if used + tokens > prefix_share {
            break;
        }
        used += tokens;
        prefix_start = previous;
    }
    (&before[prefix_start..], &after[..suffix_end])
}

fn build_chat(
    config: &Config,
    input: &PromptInput<'_>,
    budget: Budget,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Prompt {
    let lang = language_of(input.path);
    let language = lang.map_or("", Lang::name);
    let resolved = config.prompt_for(lang.map(Lang::name));
    let template_text = resolved.template(input.task);

    let mut system = resolved.system.clone();
    if !resolved.style.is_empty() {
        system.push_str("\n\nStyle rules of this project:\n");
        system.push_str(&style_text(&resolved.style));
    }

    let code = chat_code(input, budget.buffer_tokens, count_tokens);
    let mut remaining = budget.context_tokens;
    let examples = if template_text.contains("{examples}") && !input.examples.is_empty() {
        let text = format!(
            "Examples from this project:\n\n{}",
            examples_text(input.examples)
        );
        take_if_fits(text, &mut remaining, count_tokens)
    } else {
        String::new()
    };
    let fence =
        |path: &str, text: &str| format!("{path}:\n```{language}\n{}\n```\n\n", text.trim_end());
    let context = if template_text.contains("{context}") {
        pack_snippets(input, &mut remaining, count_tokens, "⋮\n")
            .iter()
            .map(|(path, text)| fence(path, text))
            .collect::<String>()
    } else {
        String::new()
    };
    let memories = if template_text.contains("{memories}") {
        let mut out = String::new();
        for memory in input.memories {
            let text = format!(
                "Earlier Q: {}\nEarlier A: {}\n\n",
                memory.question.trim(),
                memory.answer.trim()
            );
            out.push_str(&take_if_fits(text, &mut remaining, count_tokens));
        }
        out
    } else {
        String::new()
    };
    let symbol = input.symbol.as_ref();
    let user = template::render(template_text, &|name| match name {
        "language" => language.to_string(),
        "path" => relative(input.root, input.path),
        "context" => context.clone(),
        "memories" => memories.clone(),
        "examples" => examples.clone(),
        "style" => style_text(&resolved.style),
        "symbol" => symbol.map_or(String::new(), |s| s.name.clone()),
        "signature" => symbol.map_or(String::new(), |s| s.signature.clone()),
        "code" => code.to_string(),
        "question" | "instruction" => input.question.unwrap_or_default().to_string(),
        "diagnostics" => input
            .diagnostics
            .iter()
            .map(|d| format!("- {d}\n"))
            .collect(),
        _ => String::new(),
    });
    Prompt::Chat(vec![
        Message {
            role: Role::System,
            content: system.trim_end().to_string(),
        },
        Message {
            role: Role::User,
            content: user.trim().to_string(),
        },
    ])
}

fn take_if_fits(
    text: String,
    remaining: &mut usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let tokens = count_tokens(&text);
    if tokens > *remaining {
        return String::new();
    }
    *remaining -= tokens;
    text
}

/// The code a chat task is about: the selection, else the symbol's definition, else the lines
/// around the cursor; trimmed to the buffer budget around the cursor.
fn chat_code<'t>(
    input: &PromptInput<'t>,
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let text = input.text;
    let clamp = |range: &Range<usize>| {
        let start = range.start.min(text.len());
        let end = range.end.clamp(start, text.len());
        text.get(start..end)
    };
    let whole = input
        .selection
        .as_ref()
        .and_then(clamp)
        .or_else(|| input.symbol.as_ref().and_then(|s| clamp(&s.range)));
    match whole {
        Some(code) if count_tokens(code) <= budget => code.trim_end().to_string(),
        Some(code) => {
            let (prefix, suffix) = trim_around(code, 0, budget, count_tokens);
            format!("{prefix}{suffix}").trim_end().to_string()
        }
        None => {
            let (prefix, suffix) = trim_around(text, input.cursor, budget, count_tokens);
            format!("{prefix}{suffix}").trim_end().to_string()
        }
    }
}

/// The examples of the config that apply to `language` and `task`, with their text: given
/// inline, or the indexed files matching a glob (relative to `root`), or the definitions of a
/// symbol name. Only indexed files are used, so ignored files never end up in a prompt.
pub fn resolve_examples(
    config: &Config,
    language: Option<Lang>,
    task: Task,
    root: &Path,
    files: &[std::sync::Arc<crate::index::FileIndex>],
) -> Vec<ResolvedExample> {
    let mut out = Vec::new();
    for example in config.examples_for(language.map(Lang::name), task) {
        let description = example.description.clone();
        if let Some(code) = &example.code {
            out.push(ResolvedExample {
                description,
                text: code.clone(),
            });
        } else if let Some(glob) = &example.glob {
            let Ok(matcher) = globset::Glob::new(glob).map(|g| g.compile_matcher()) else {
                continue;
            };
            for file in files {
                if matcher.is_match(relative(root, &file.path)) {
                    out.push(ResolvedExample {
                        description: description.clone(),
                        text: file.text.to_string(),
                    });
                }
            }
        } else if let Some(name) = &example.symbol {
            for file in files {
                for symbol in file.symbols.iter().filter(|s| *s.name == **name) {
                    if let Some(code) = file.text.get(symbol.span.start_byte..symbol.span.end_byte)
                    {
                        out.push(ResolvedExample {
                            description: description.clone(),
                            text: code.to_string(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Lays a prompt out for display (`pith prompt`): the structured parts, labelled.
pub fn render_parts(prompt: &Prompt) -> String {
    let mut out = String::new();
    match prompt {
        Prompt::Fim {
            repo,
            context,
            path,
            prefix,
            suffix,
        } => {
            out.push_str(&format!("=== repo: {repo}\n"));
            for file in context {
                out.push_str(&format!("=== context: {}\n{}", file.path, file.text));
            }
            out.push_str(&format!(
                "=== file: {path}\n=== prefix\n{prefix}\n=== suffix\n{suffix}\n"
            ));
        }
        Prompt::Chat(messages) => {
            for message in messages {
                let role = match message.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                out.push_str(&format!("=== {role}\n{}\n", message.content));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
