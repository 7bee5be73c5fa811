//! The AI features, protocol-free: inline completion (`completion`), hover explanations
//! (`explain`), the code actions' core (`actions`) and workspace questions (`ask`).
//!
//! Each feature turns the index, retrieval and the buffer into one `engine::Request`, runs it,
//! and cleans what the model wrote into plain core results (text, byte-range edits, new files,
//! markdown). The server (`server/`) translates those to LSP; the CLI prints them.

pub mod actions;
pub mod ask;
pub mod completion;
pub mod explain;
pub mod guide;

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{Engine, EngineError, EngineSettings, Event, Prompt, Request, RequestStats};
use crate::index::WorkspaceIndex;
use crate::lang::Lang;
use crate::memory::Memory;
use crate::prompt::{self, Budget, PromptInput, SymbolInfo, Task};
use crate::retrieve::Snippet;

/// Why a feature produced nothing.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AssistError {
    /// Superseded or cancelled by the caller; not worth showing to anyone.
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The request makes no sense at this place (no function under the cursor, …).
    #[error("{0}")]
    NotApplicable(String),
}

pub type Result<T, E = AssistError> = std::result::Result<T, E>;

/// What one generation produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generated {
    pub text: String,
    pub stats: RequestStats,
}

/// Runs `request` to the end, handing each piece of text to `on_text` as it arrives.
pub async fn generate(
    engine: &dyn Engine,
    request: Request,
    mut on_text: impl FnMut(&str),
) -> Result<Generated> {
    let cancel = request.cancel.clone();
    let mut events = engine.submit(request);
    let mut text = String::new();
    loop {
        let event = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(AssistError::Cancelled),
            event = events.recv() => event,
        };
        match event {
            Some(Event::Text(piece)) => {
                on_text(&piece);
                text.push_str(&piece);
            }
            Some(Event::Done(stats)) => return Ok(Generated { text, stats }),
            Some(Event::Cancelled) => return Err(AssistError::Cancelled),
            Some(Event::Failed(error)) => return Err(error.into()),
            None => {
                return Err(EngineError::Stopped("the engine dropped the request".into()).into());
            }
        }
    }
}

/// Engine settings from the config (`[model]`, `[remote]`); `model` overrides the path.
pub fn engine_settings(config: &Config, model: Option<PathBuf>) -> EngineSettings {
    let mut settings = config.engine_settings();
    if model.is_some() {
        settings.model = model;
    }
    settings
}

/// A cancellation token that is never cancelled, for one-shot CLI calls.
pub fn never_cancelled() -> CancellationToken {
    CancellationToken::new()
}

/// The workspace root that holds `path` (the longest matching root), if any.
pub fn root_of(index: &WorkspaceIndex, path: &Path) -> Option<PathBuf> {
    index
        .roots()
        .into_iter()
        .filter(|root| path.starts_with(root))
        .max_by_key(|root| root.as_os_str().len())
}

/// `path` relative to its workspace root, `/`-separated; the file name alone outside any root.
pub fn relative_path(index: &WorkspaceIndex, path: &Path) -> String {
    let relative = root_of(index, path)
        .and_then(|root| path.strip_prefix(root).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.file_name().map(PathBuf::from).unwrap_or_default());
    slash_path(&relative)
}

pub(crate) fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The name of the project a path belongs to (its root's folder name), for FIM repo headers.
pub fn repo_name(index: &WorkspaceIndex, path: &Path) -> String {
    root_of(index, path)
        .and_then(|root| root.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "workspace".to_string())
}

/// The code a model wrote, without markdown around it: the first fenced block if there is one
/// (an unterminated fence runs to the end), else the whole text. Trailing whitespace trimmed.
pub fn extract_code(output: &str) -> String {
    let mut lines = output.lines();
    let mut in_block = false;
    let mut block = Vec::new();
    for line in lines.by_ref() {
        let fence = line.trim_start().starts_with("```");
        if !in_block {
            if fence {
                in_block = true;
            }
            continue;
        }
        if fence {
            break;
        }
        block.push(line);
    }
    let code = if in_block {
        block.join("\n")
    } else {
        output.to_string()
    };
    let code = code.trim_end();
    // Leading blank lines only: leading indentation of the first line is meaningful.
    let start = code
        .char_indices()
        .take_while(|(_, c)| c.is_whitespace())
        .filter(|(_, c)| *c == '\n')
        .last()
        .map_or(0, |(i, _)| i + 1);
    code[start..].to_string()
}

/// The whitespace that starts `line`.
pub fn indentation(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// Byte offset of the start of the line containing `offset`.
pub(crate) fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// Byte offset of the end of the line containing `offset` (before its `\n`).
pub(crate) fn line_end(text: &str, offset: usize) -> usize {
    text[offset..].find('\n').map_or(text.len(), |i| offset + i)
}

/// 0-based line number of `offset`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &text.as_bytes()[..offset]).count()
}

/// Clamps `offset` into `text` and back onto a char boundary.
pub(crate) fn clamp_offset(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// `text` cut to at most `budget` tokens, keeping whole lines from the start.
pub(crate) fn head_lines(
    text: &str,
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let mut used = 0;
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        used += count_tokens(line);
        if used > budget {
            break;
        }
        out.push_str(line);
    }
    out
}

/// The system prompt of the chat tasks, and its style rules, from the config.
pub fn system_prompt(config: &Config, lang: Option<Lang>) -> String {
    let resolved = config.prompt_for(lang.map(Lang::name));
    let mut system = resolved.system;
    if !resolved.style.is_empty() {
        system.push_str("\n\nStyle rules of this project:\n");
        for rule in &resolved.style {
            system.push_str(&format!("- {rule}\n"));
        }
    }
    system.trim_end().to_string()
}

/// Whether the user wrote their own template for `task` (for `lang` or for all languages). The
/// built-in prompts of this module are richer than the generic defaults of `prompt::`, so they
/// are used unless the user asked for something else.
pub fn custom_template(config: &Config, lang: Option<Lang>, task: Task) -> bool {
    let language = lang
        .and_then(|l| config.languages.get(l.name()))
        .is_some_and(|l| l.prompt.templates.get(task).is_some());
    language || config.prompt.templates.get(task).is_some()
}

/// What a user template can draw on (see `prompt::PromptInput`).
pub(crate) struct TemplateParts<'a> {
    pub task: Task,
    pub path: &'a Path,
    pub text: &'a str,
    pub cursor: usize,
    pub selection: Option<std::ops::Range<usize>>,
    pub symbol: Option<SymbolInfo>,
    pub question: Option<&'a str>,
    pub diagnostics: &'a [String],
    pub snippets: &'a [Snippet],
    pub memories: &'a [Memory],
}

/// The chat prompt of a task: the user's template through `prompt::build` when there is one,
/// else the system prompt from the config and `default_user`.
pub(crate) fn chat_prompt(
    config: &Config,
    index: &WorkspaceIndex,
    parts: TemplateParts<'_>,
    default_user: impl FnOnce() -> String,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Prompt {
    let lang = Lang::from_path(parts.path);
    let examples = examples(config, index, parts.path, parts.task);
    if !custom_template(config, lang, parts.task) {
        let mut system = system_prompt(config, lang);
        if !examples.is_empty() {
            system.push_str("\n\nExamples of how this project writes code:\n\n");
            for example in &examples {
                if let Some(description) = &example.description {
                    system.push_str(description.trim_end());
                    system.push('\n');
                }
                system.push_str(&format!("```\n{}\n```\n", example.text.trim_end()));
            }
        }
        return chat(&system, default_user());
    }
    let root = root_of(index, parts.path).unwrap_or_default();
    let repo = repo_name(index, parts.path);
    let input = PromptInput {
        task: parts.task,
        repo: &repo,
        root: &root,
        path: parts.path,
        text: parts.text,
        cursor: parts.cursor,
        selection: parts.selection,
        symbol: parts.symbol,
        question: parts.question,
        diagnostics: parts.diagnostics,
        snippets: parts.snippets,
        memories: parts.memories,
        examples: &examples,
    };
    // Chat tasks retrieve within their own budgets: this only caps what a user template adds,
    // at the small-model size.
    prompt::build(
        config,
        &input,
        Budget::from_config(config, None),
        count_tokens,
    )
}

/// The config's in-context examples for `task` in the language of `path`, resolved against the
/// index (globs and symbol names become code). No work when none are configured.
pub fn examples(
    config: &Config,
    index: &WorkspaceIndex,
    path: &Path,
    task: Task,
) -> Vec<crate::prompt::ResolvedExample> {
    let lang = Lang::from_path(path);
    if config.examples_for(lang.map(Lang::name), task).is_empty() {
        return Vec::new();
    }
    let root = root_of(index, path).unwrap_or_default();
    crate::prompt::resolve_examples(config, lang, task, &root, &index.files())
}

/// A two-message chat prompt.
pub fn chat(system: &str, user: String) -> Prompt {
    use crate::engine::{Message, Role};
    Prompt::Chat(vec![
        Message {
            role: Role::System,
            content: system.to_string(),
        },
        Message {
            role: Role::User,
            content: user,
        },
    ])
}

/// The markdown fence language of a path.
pub fn fence_lang(path: &Path) -> &'static str {
    Lang::from_path(path).map_or("", |lang| lang.name())
}

/// Identifiers in `code`, in order of first appearance, without duplicates.
pub(crate) fn identifiers(code: &str) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
        .filter(|w| seen.insert(*w))
        .collect()
}

/// Signatures (and first doc line) of the workspace definitions that `code` uses, one per
/// line with `path:line`, within `budget` tokens. Names defined in many places are skipped:
/// they would say little and cost much. Definitions inside `exclude` (the code itself) too.
pub fn related_definitions(
    index: &WorkspaceIndex,
    code: &str,
    exclude: Option<(&Path, std::ops::Range<usize>)>,
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let mut out = String::new();
    let mut used = 0;
    for name in identifiers(code) {
        if name.len() < 3 || KEYWORDS.contains(&name) {
            continue;
        }
        let definitions = index.definitions(name);
        if definitions.is_empty() || definitions.len() > 3 {
            continue;
        }
        for definition in definitions {
            let symbol = definition.symbol();
            let inside_exclude = exclude.as_ref().is_some_and(|(path, range)| {
                definition.file.path == *path
                    && range.start <= symbol.span.start_byte
                    && symbol.span.end_byte <= range.end
            });
            if inside_exclude {
                continue;
            }
            let mut line = format!(
                "{}  # {}:{}",
                symbol.signature,
                relative_path(index, &definition.file.path),
                symbol.span.start_line + 1
            );
            let doc = symbol.doc.as_deref().and_then(|d| d.lines().next());
            if let Some(doc) = doc.map(str::trim).filter(|d| !d.is_empty()) {
                line.push_str(" — ");
                line.push_str(doc);
            }
            line.push('\n');
            used += count_tokens(&line);
            if used > budget {
                return out;
            }
            out.push_str(&line);
        }
    }
    out
}

/// Words that are never worth a lookup.
const KEYWORDS: &[&str] = &[
    "self",
    "Self",
    "def",
    "class",
    "return",
    "None",
    "True",
    "False",
    "and",
    "not",
    "for",
    "while",
    "with",
    "import",
    "from",
    "pass",
    "raise",
    "try",
    "except",
    "finally",
    "lambda",
    "yield",
    "async",
    "await",
    "elif",
    "else",
    "fn",
    "let",
    "mut",
    "pub",
    "impl",
    "struct",
    "enum",
    "trait",
    "use",
    "mod",
    "match",
    "crate",
    "super",
    "where",
    "const",
    "static",
    "loop",
    "break",
    "continue",
    "ref",
    "move",
    "dyn",
    "type",
    "str",
    "int",
    "bool",
    "float",
    "dict",
    "list",
    "tuple",
    "set",
    "len",
    "print",
    "isinstance",
    "String",
    "Vec",
    "Option",
    "Some",
    "Ok",
    "Err",
    "Result",
    "Box",
    "usize",
    "u8",
    "u32",
    "u64",
    "i32",
    "i64",
    "f64",
];

#[cfg(test)]
pub(crate) mod testing {
    //! A scripted engine for plumbing tests: it answers every request with the next canned
    //! output, honouring `stop` strings and `stop_when` like the real engines do.
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use tokio::sync::mpsc;

    use crate::engine::{Engine, EngineStatus, Event, Request, RequestStats, estimate_tokens};

    #[derive(Default)]
    pub struct ScriptedEngine {
        pub outputs: Mutex<VecDeque<String>>,
        pub requests: Mutex<Vec<Request>>,
    }

    impl ScriptedEngine {
        pub fn new(outputs: &[&str]) -> Self {
            Self {
                outputs: Mutex::new(outputs.iter().map(|s| s.to_string()).collect()),
                requests: Mutex::default(),
            }
        }

        pub fn last_request(&self) -> Request {
            self.requests.lock().unwrap().last().cloned().unwrap()
        }
    }

    impl Engine for ScriptedEngine {
        fn submit(&self, request: Request) -> mpsc::UnboundedReceiver<Event> {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut output = self.outputs.lock().unwrap().pop_front().unwrap_or_default();
            if let Some(at) = request
                .stop
                .iter()
                .filter_map(|s| output.find(s.as_str()))
                .min()
            {
                output.truncate(at);
            }
            // Feed the predicate char by char, as a streaming engine would.
            if let Some(stop_when) = &request.stop_when {
                for (i, c) in output.char_indices() {
                    let end = i + c.len_utf8();
                    if let Some(keep) = stop_when(&output[..end]) {
                        output.truncate(keep.min(end));
                        break;
                    }
                }
            }
            if request.cancel.is_cancelled() {
                let _ = tx.send(Event::Cancelled);
            } else {
                let _ = tx.send(Event::Text(output.clone()));
                let _ = tx.send(Event::Done(RequestStats {
                    generated_tokens: estimate_tokens(&output) as u32,
                    ..RequestStats::default()
                }));
            }
            self.requests.lock().unwrap().push(request);
            rx
        }

        fn count_tokens(&self, text: &str) -> usize {
            estimate_tokens(text)
        }

        fn status(&self) -> EngineStatus {
            EngineStatus::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_code_keeps_only_the_fenced_block() {
        let output = "Here you go:\n```python\ndef f():\n    return 1\n```\nThis works.";
        assert_eq!(extract_code(output), "def f():\n    return 1");
        assert_eq!(extract_code("\n\n    x = 1\n"), "    x = 1");
        assert_eq!(extract_code("```rust\nfn f() {}"), "fn f() {}");
    }
}
