//! Configuration: the `Config` type, its built-in defaults, and layered loading.
//!
//! Layers, lowest precedence first; each one is merged key by key over the ones before it
//! (tables merge recursively, any other value — arrays included — replaces the lower one):
//!
//! 1. built-in defaults (`Config::default()`, the prompt texts in [`crate::task::defaults`]);
//! 2. the user file: `$XDG_CONFIG_HOME/pith/config.toml`, else `~/.config/pith/config.toml`;
//! 3. the project file: `<root>/.pith/config.toml`;
//! 4. the client's settings: LSP `initializationOptions`, then each `didChangeConfiguration`
//!    (a JSON value of the same shape, merged the same way).
//!
//! Every file is validated on its own before merging, so that an error names the file, the line
//! and the key (from toml's spans). Prompt templates are checked at load: a `{placeholder}` the
//! task does not know is an error, not a silent empty string. [`Config::reload`] keeps the last
//! good configuration when the new one is broken and returns the error for display.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::engine::RemoteApi;

use crate::task::Task;

/// The whole configuration. Every section has a default, so an empty file is a valid config.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub model: ModelConfig,
    /// The model of chat requests (ask, explanations, code actions).
    pub chat: ChatConfig,
    /// A remote OpenAI-compatible server; absent means the embedded model.
    pub remote: Option<RemoteConfig>,
    pub index: IndexConfig,
    pub completion: CompletionConfig,
    pub hover: HoverConfig,
    pub prompt: PromptConfig,
    /// Examples shown to the model (few-shot), from the config or from the codebase.
    pub examples: Vec<Example>,
    /// Per-language overrides, keyed by language name (`python`, `rust`).
    pub languages: BTreeMap<String, LanguageConfig>,
}

/// Default most tokens of the buffer after the cursor in an inline completion prompt.
pub const SUFFIX_TOKENS: usize = 64;

/// The embedded model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// GGUF file; None means the installed default model. `~/` is expanded.
    pub path: Option<PathBuf>,
    /// CPU threads for generation; None means the number of physical cores.
    pub threads: Option<usize>,
    /// Context window in tokens.
    pub context: u32,
    /// Layers offloaded to a GPU (0 on a Raspberry Pi).
    pub gpu_layers: u32,
    /// Shortest run of cached prompt tokens worth moving instead of decoding again (0: off).
    pub cache_reuse: usize,
    /// LoRA adapters applied on top of the model, in order.
    pub lora: Vec<LoraConfig>,
    /// Keep each KV-cache slot on disk (under the cache directory) when pith stops, and after
    /// each chat request, so that the next process starts warm.
    pub keep_cache: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: None,
            threads: None,
            context: 4096,
            gpu_layers: 0,
            cache_reuse: 64,
            lora: Vec::new(),
            keep_cache: true,
        }
    }
}

/// The model of chat requests: ask, hover explanations, code actions (`[chat]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// `"auto"`: Qwen2.5-Coder-1.5B where it is installed, `[model]` is the default model and
    /// the machine has the memory for both (see [`crate::engine::route::auto_chat`]), else
    /// `[model]`; `"same"`: `[model]`; else a GGUF file or a published model's name.
    pub model: String,
    /// Draft model for speculative decoding of the chat model: `"none"` (the default), `"auto"`
    /// (the default model when the chat model is the 1.5B and both are installed), a file or
    /// a name.
    pub draft: String,
    /// Most tokens drafted per step.
    pub draft_tokens: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            // The 1.5B where it is installed and fits: on the dev questions it names the
            // function asked for in 85% of answers against the 0.5B's 70%, at 14.6 s a
            // question against 6.7 s (`../shared/eval/qa.py --per-corpus 10`).
            model: "auto".into(),
            // No draft: on two cores drafting with the 0.5B makes the 1.5B 0.46× as fast
            // (verifying a batch costs almost what decoding its tokens one by one does).
            draft: "none".into(),
            draft_tokens: 8,
        }
    }
}

/// One LoRA adapter (GGUF, from llama.cpp's `convert_lora_to_gguf.py`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    pub path: PathBuf,
    #[serde(default = "one")]
    pub scale: f32,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Base URL, e.g. `http://localhost:8080`.
    pub url: String,
    #[serde(default)]
    pub api: RemoteApi,
    /// Model name sent with each request, when the server wants one.
    #[serde(default)]
    pub model: Option<String>,
    /// Name of the environment variable holding the API key (the key never sits in a file).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "default_remote_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_remote_timeout_ms() -> u64 {
    30_000
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Extra excludes, gitignore glob syntax.
    pub exclude: Vec<String>,
    pub max_file_bytes: u64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            exclude: Vec::new(),
            max_file_bytes: 1 << 20,
        }
    }
}

impl IndexConfig {
    pub fn index_options(&self) -> crate::index::IndexOptions {
        crate::index::IndexOptions {
            max_file_bytes: self.max_file_bytes,
            exclude: self.exclude.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompletionConfig {
    /// Tokens of retrieved context (the buffer's prefix and suffix have their own share);
    /// unset, it is sized for the model ([`CompletionConfig::context_budget`]).
    pub budget_tokens: Option<usize>,
    /// Tokens of the edited buffer around the cursor, prefix and suffix together.
    pub buffer_tokens: usize,
    /// Of those, the most that go after the cursor. The suffix follows the prefix in a FIM
    /// prompt, so every suffix token is decoded again whenever the text before it changes:
    /// this is the price of each keystroke.
    pub suffix_tokens: usize,
    pub debounce_ms: u64,
    pub max_tokens: u32,
    /// Offer the suggestion as a `textDocument/completion` item even to clients that have
    /// inline completion (those without it, like Helix, always get the item).
    pub completion_item_fallback: bool,
    /// Index-guided decoding: after a receiver whose members the index knows (`self.`,
    /// `module.`, `Type::`, a local of a known class), the model may only write one of them.
    pub guided: bool,
    /// Longest wait of a completion-item request for the model, in ms. Past it the reply is an
    /// incomplete list with nothing in it while generation goes on; the client's next request
    /// at the same place (typing, or asking again) gets the finished suggestion. Keep it below
    /// the client's request timeout (Helix gives up after 20 s by default).
    pub item_budget_ms: u64,
    /// How retrieved code goes into a completion prompt: `files`, the model's repo-level
    /// layout (one `<|file_sep|>` section per file before the edited one); `comments`, in the
    /// edited file's prefix, each file under a comment that names it; `auto` picks by model
    /// size ([`CompletionConfig::layout_for`]).
    pub context_layout: ContextLayout,
}

/// `[completion] context_layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextLayout {
    Auto,
    Files,
    Comments,
}

/// Models from this size up get [`LARGE_MODEL_BUDGET`] tokens of retrieved context by default.
pub const LARGE_MODEL_PARAMETERS: u64 = 1_000_000_000;
/// The default context budget of a model under [`LARGE_MODEL_PARAMETERS`] or of unknown size.
pub const SMALL_MODEL_BUDGET: usize = 512;
pub const LARGE_MODEL_BUDGET: usize = 1024;

impl CompletionConfig {
    /// Tokens of retrieved context for a model of `parameters` (where known): the configured
    /// budget, else one sized for the model. On 80 of the eval's dev tasks Qwen2.5-Coder-1.5B
    /// completes 1.5× as many lines exactly with 1024 tokens of context as with none (on the
    /// 40 of them also run at 512: 2× against 1.4×); the 0.5B gains nothing from more, not even
    /// from the exact definition it needs, so it keeps the cheaper 512 (each context token
    /// costs it ~9 ms on a cold prompt).
    pub fn context_budget(&self, parameters: Option<u64>) -> usize {
        self.budget_tokens.unwrap_or(match parameters {
            Some(n) if n >= LARGE_MODEL_PARAMETERS => LARGE_MODEL_BUDGET,
            _ => SMALL_MODEL_BUDGET,
        })
    }

    /// The context layout for a model of `parameters` (where known): the configured one, else
    /// the one measured best for the model's size. On 40 dev tasks the 0.5B writes lines less
    /// like the user's with 512 tokens of context as files than with none (ES 0.446 against
    /// 0.476), and more like them with the same context as comments in the prefix (0.498;
    /// 256 tokens as comments: 0.457). The 1.5B gains from files (0.622 → 0.673 at 1024), and
    /// a model of unknown size (behind a server) gets its own repo-level layout.
    pub fn layout_for(&self, parameters: Option<u64>) -> ContextLayout {
        match self.context_layout {
            ContextLayout::Auto => match parameters {
                Some(n) if n < LARGE_MODEL_PARAMETERS => ContextLayout::Comments,
                _ => ContextLayout::Files,
            },
            chosen => chosen,
        }
    }
}

impl Default for CompletionConfig {
    fn default() -> Self {
        Self {
            budget_tokens: None,
            buffer_tokens: 1024,
            suffix_tokens: SUFFIX_TOKENS,
            debounce_ms: 150,
            max_tokens: 64,
            completion_item_fallback: false,
            guided: true,
            item_budget_ms: 15_000,
            context_layout: ContextLayout::Auto,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoverConfig {
    /// Add a model explanation to hovers.
    pub explain: bool,
    /// Hover waits this long for the explanation, then shows what it has.
    pub timeout_ms: u64,
}

impl Default for HoverConfig {
    fn default() -> Self {
        Self {
            explain: true,
            timeout_ms: 1500,
        }
    }
}

/// Prompt texts. Every field is optional so that the same shape serves as a per-language
/// override; [`Config::prompt_for`] resolves them against the built-in defaults.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptConfig {
    /// The system prompt of chat tasks (and the head of the FIM instructions file).
    pub system: Option<String>,
    /// House style rules, one per entry, given to every task.
    pub style: Option<Vec<String>>,
    pub templates: Templates,
}

/// Per-task templates: text with named `{placeholders}` (`{{`/`}}` for literal braces).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Templates {
    pub completion: Option<String>,
    pub hover: Option<String>,
    pub explain: Option<String>,
    pub docstring: Option<String>,
    pub tests: Option<String>,
    pub refactor: Option<String>,
    pub fix: Option<String>,
    pub ask: Option<String>,
}

impl Templates {
    pub fn get(&self, task: Task) -> Option<&str> {
        match task {
            Task::Completion => self.completion.as_deref(),
            Task::Hover => self.hover.as_deref(),
            Task::Explain => self.explain.as_deref(),
            Task::Docstring => self.docstring.as_deref(),
            Task::Tests => self.tests.as_deref(),
            Task::Refactor => self.refactor.as_deref(),
            Task::Fix => self.fix.as_deref(),
            Task::Ask => self.ask.as_deref(),
        }
    }
}

/// A prompt with every part resolved for one language.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPrompt {
    pub system: String,
    pub style: Vec<String>,
    templates: Templates,
    language_templates: Templates,
}

impl ResolvedPrompt {
    /// The template of `task`: the language's, else the config's, else the built-in one.
    pub fn template(&self, task: Task) -> &str {
        self.language_templates
            .get(task)
            .or_else(|| self.templates.get(task))
            .unwrap_or_else(|| crate::task::defaults::template(task))
    }
}

/// One example. Exactly one of `code`, `glob`, `symbol` says where its text comes from.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Example {
    /// A short description shown above the code.
    pub description: Option<String>,
    /// The example text itself.
    pub code: Option<String>,
    /// Files of the workspace whose whole text is the example (gitignore glob syntax).
    pub glob: Option<String>,
    /// A symbol name whose definition is the example.
    pub symbol: Option<String>,
    /// Tasks it applies to; empty means all.
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageConfig {
    pub prompt: PromptConfig,
    /// Replaces the global examples for this language when non-empty.
    pub examples: Vec<Example>,
}

/// Where the layers come from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The user file; None to skip it (tests).
    pub user_file: Option<PathBuf>,
    /// The workspace root, whose `.pith/config.toml` is the project file.
    pub project_root: Option<PathBuf>,
    /// Client settings: initializationOptions merged with later didChangeConfiguration values.
    pub client: Option<serde_json::Value>,
}

impl ConfigSources {
    /// The standard places: the user file from the environment and the given project root.
    pub fn standard(project_root: Option<&Path>) -> Self {
        Self {
            user_file: user_config_path(),
            project_root: project_root.map(Path::to_path_buf),
            client: None,
        }
    }
}

/// `$XDG_CONFIG_HOME/pith/config.toml`, else `~/.config/pith/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    Some(crate::dirs::config_dir()?.join("config.toml"))
}

/// The project file of a workspace root.
pub fn project_config_path(root: &Path) -> PathBuf {
    root.join(".pith").join("config.toml")
}

/// A configuration error, precise enough to fix without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, or `client settings` for the LSP layer.
    pub source_name: String,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key, when known (`prompt.templates.hover`).
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Config {
    /// Loads every layer of `sources` over the defaults.
    pub fn load(sources: &ConfigSources) -> Result<Config, ConfigError> {
        let mut merged = serde_json::Value::Object(Default::default());
        let files = [
            sources.user_file.clone(),
            sources.project_root.as_deref().map(project_config_path),
        ];
        for path in files.into_iter().flatten() {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(ConfigError {
                        source_name: path.display().to_string(),
                        line: None,
                        column: None,
                        key: None,
                        message: format!("cannot read: {error}"),
                    });
                }
            };
            let layer = parse_layer(&path.display().to_string(), &text)?;
            merge_json(&mut merged, layer);
        }
        if let Some(client) = &sources.client {
            let name = "client settings";
            let layer = client.clone();
            check_config_value(name, &layer)?;
            merge_json(&mut merged, layer);
        }
        serde_json::from_value::<Config>(merged).map_err(|error| ConfigError {
            source_name: "merged configuration".into(),
            line: None,
            column: None,
            key: None,
            message: error.to_string(),
        })
    }

    /// Parses one TOML text as a whole configuration over the defaults (tests, `pith init`).
    pub fn from_toml(source_name: &str, text: &str) -> Result<Config, ConfigError> {
        let layer = parse_layer(source_name, text)?;
        serde_json::from_value(layer).map_err(|error| ConfigError {
            source_name: source_name.into(),
            line: None,
            column: None,
            key: None,
            message: error.to_string(),
        })
    }

    /// Loads again; on error `self` stays as it was (the last good config) and the error is
    /// returned for display.
    pub fn reload(&mut self, sources: &ConfigSources) -> Result<(), ConfigError> {
        *self = Config::load(sources)?;
        Ok(())
    }

    /// The prompt texts for a language (by name), with overrides applied.
    pub fn prompt_for(&self, language: Option<&str>) -> ResolvedPrompt {
        let language_prompt = language
            .and_then(|name| self.languages.get(name))
            .map(|l| &l.prompt);
        let system = language_prompt
            .and_then(|p| p.system.clone())
            .or_else(|| self.prompt.system.clone())
            .unwrap_or_else(|| crate::task::defaults::SYSTEM.to_string());
        let style = language_prompt
            .and_then(|p| p.style.clone())
            .or_else(|| self.prompt.style.clone())
            .unwrap_or_default();
        ResolvedPrompt {
            system,
            style,
            templates: self.prompt.templates.clone(),
            language_templates: language_prompt
                .map(|p| p.templates.clone())
                .unwrap_or_default(),
        }
    }

    /// The examples for a language and task: the language's own list if it has one.
    pub fn examples_for(&self, language: Option<&str>, task: Task) -> Vec<&Example> {
        let list = language
            .and_then(|name| self.languages.get(name))
            .map(|l| &l.examples)
            .filter(|examples| !examples.is_empty())
            .unwrap_or(&self.examples);
        list.iter()
            .filter(|e| e.tasks.is_empty() || e.tasks.contains(&task))
            .collect()
    }
}

impl Config {
    /// The engine's settings: `[model]` for the embedded model, `[remote]` for a server.
    pub fn engine_settings(&self) -> crate::engine::EngineSettings {
        crate::engine::EngineSettings {
            model: self.model.path.as_deref().map(expand_home),
            threads: self.model.threads,
            context_size: self.model.context,
            gpu_layers: self.model.gpu_layers,
            cache_reuse: self.model.cache_reuse,
            lora: self
                .model
                .lora
                .iter()
                .map(|lora| crate::engine::LoraSettings {
                    path: expand_home(&lora.path),
                    scale: lora.scale,
                })
                .collect(),
            remote: self
                .remote
                .as_ref()
                .map(|remote| crate::engine::RemoteSettings {
                    url: remote.url.clone(),
                    api: remote.api,
                    model: remote.model.clone().unwrap_or_default(),
                    api_key_env: remote.api_key_env.clone(),
                    timeout_ms: remote.timeout_ms,
                }),
            kv_dir: self
                .model
                .keep_cache
                .then(|| crate::dirs::cache_dir().map(|dir| dir.join("kv")))
                .flatten(),
            ..Default::default()
        }
        .with_chat(&self.chat)
    }
}

impl crate::engine::EngineSettings {
    /// These settings with the chat model `chat` chooses (none when it is this model).
    pub fn with_chat(mut self, chat: &ChatConfig) -> Self {
        self.chat = None;
        if self.remote.is_some() {
            return self;
        }
        let model = match chat.model.as_str() {
            "same" => return self,
            "auto" => match crate::engine::route::auto_chat(self.model.as_deref()) {
                Ok(path) => path,
                Err(why) => {
                    tracing::debug!("chat uses the completion model: {why}");
                    return self;
                }
            },
            named => expand_home(Path::new(named)),
        };
        let draft = match chat.draft.as_str() {
            "none" => None,
            "auto" => crate::engine::route::auto_draft(&model),
            named => Some(expand_home(Path::new(named))),
        };
        let chat_settings = crate::engine::EngineSettings {
            model: Some(model),
            draft,
            draft_tokens: chat.draft_tokens,
            // Adapters are trained for the completion model.
            lora: Vec::new(),
            ..self.clone()
        };
        self.chat = Some(Box::new(chat_settings));
        self
    }
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// Validates one TOML layer against the schema and templates; returns it as JSON for merging.
fn parse_layer(source_name: &str, text: &str) -> Result<serde_json::Value, ConfigError> {
    let error_at = |span: Option<std::ops::Range<usize>>, message: String| {
        let (line, column, key) = match span {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                (Some(line), Some(column), key_at(text, span.start))
            }
            None => (None, None, None),
        };
        ConfigError {
            source_name: source_name.into(),
            line,
            column,
            key,
            message,
        }
    };
    // Deserializing into `Config` checks types and rejects unknown keys, with spans.
    let config: Config = toml::from_str(text)
        .map_err(|error| error_at(error.span(), error.message().trim().to_string()))?;
    let table: toml::Table = toml::from_str(text)
        .map_err(|error| error_at(error.span(), error.message().trim().to_string()))?;
    if let Err((key, message, needle)) = check_semantics(&config) {
        let span = needle
            .and_then(|needle| text.find(&needle))
            .map(|at| at..at);
        let mut error = error_at(span, message);
        error.key = Some(key);
        return Err(error);
    }
    serde_json::to_value(table).map_err(|error| error_at(None, error.to_string()))
}

fn check_config_value(source_name: &str, value: &serde_json::Value) -> Result<(), ConfigError> {
    let config: Config = serde_json::from_value(value.clone()).map_err(|error| ConfigError {
        source_name: source_name.into(),
        line: None,
        column: None,
        key: None,
        message: error.to_string(),
    })?;
    check_semantics(&config).map_err(|(key, message, _)| ConfigError {
        source_name: source_name.into(),
        line: None,
        column: None,
        key: Some(key),
        message,
    })
}

/// Checks what the schema cannot: template placeholders and example sources. On error returns
/// the key, the message and a piece of text to locate it by.
fn check_semantics(config: &Config) -> Result<(), (String, String, Option<String>)> {
    let mut prompts: Vec<(String, &PromptConfig)> = vec![("prompt".into(), &config.prompt)];
    let mut examples: Vec<(String, &Vec<Example>)> = vec![("examples".into(), &config.examples)];
    for (name, language) in &config.languages {
        prompts.push((format!("languages.{name}.prompt"), &language.prompt));
        examples.push((format!("languages.{name}.examples"), &language.examples));
    }
    for (prefix, prompt) in prompts {
        for task in Task::ALL {
            let Some(template) = prompt.templates.get(task) else {
                continue;
            };
            let key = format!("{prefix}.templates.{}", task.name());
            if let Err(error) = crate::task::template::check(template, task) {
                let needle = error.placeholder.as_ref().map(|p| format!("{{{p}}}"));
                return Err((key, error.to_string(), needle));
            }
        }
    }
    for (prefix, list) in examples {
        for (i, example) in list.iter().enumerate() {
            let sources = [&example.code, &example.glob, &example.symbol]
                .iter()
                .filter(|s| s.is_some())
                .count();
            if sources != 1 {
                return Err((
                    format!("{prefix}[{i}]"),
                    "an example needs exactly one of `code`, `glob`, `symbol`".into(),
                    None,
                ));
            }
            if let Some(glob) = &example.glob
                && let Err(error) = globset::Glob::new(glob)
            {
                return Err((
                    format!("{prefix}[{i}].glob"),
                    format!("bad glob: {error}"),
                    Some(glob.clone()),
                ));
            }
        }
    }
    Ok(())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted key of the line holding `offset`: the nearest `[table]` header above plus the
/// key of that line, when the line is a `key = value` pair.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let header = |line: &str| {
        let line = line.trim();
        line.strip_prefix("[[")
            .and_then(|l| l.strip_suffix("]]"))
            .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
            .map(|h| h.trim().to_string())
    };
    if let Some(table) = header(line) {
        return Some(table);
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"'));
    let table = text[..line_start].lines().rev().find_map(header);
    match (table, key) {
        (Some(table), Some(key)) => Some(format!("{table}.{key}")),
        (None, Some(key)) => Some(key.to_string()),
        (Some(table), None) => Some(table),
        (None, None) => None,
    }
}

/// Merges `layer` over `base`: objects recursively, everything else replaced.
pub fn merge_json(base: &mut serde_json::Value, layer: serde_json::Value) {
    match (base, layer) {
        (serde_json::Value::Object(base), serde_json::Value::Object(layer)) => {
            for (key, value) in layer {
                match base.get_mut(&key) {
                    Some(existing) => merge_json(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, layer) => *base = layer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check_error(input: &str, expect: Expect) {
        let error = Config::from_toml("config.toml", input).unwrap_err();
        expect.assert_eq(&error.to_string());
    }

    #[test]
    fn unset_context_budget_is_sized_for_the_model_and_a_set_one_wins() {
        let unset = Config::from_toml("c", "").unwrap().completion;
        assert_eq!(unset.context_budget(Some(494_000_000)), SMALL_MODEL_BUDGET);
        assert_eq!(
            unset.context_budget(Some(1_540_000_000)),
            LARGE_MODEL_BUDGET
        );
        assert_eq!(unset.context_budget(None), SMALL_MODEL_BUDGET);
        let set = Config::from_toml("c", "[completion]\nbudget_tokens = 256\n")
            .unwrap()
            .completion;
        assert_eq!(set.context_budget(Some(1_540_000_000)), 256);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::from_toml("c", "").unwrap(), Config::default());
    }

    #[test]
    fn full_file_parses() {
        let config = Config::from_toml(
            "c",
            r#"
[model]
path = "/m.gguf"
threads = 4
context = 2048
lora = [{ path = "a.gguf", scale = 0.5 }, { path = "b.gguf" }]

[remote]
url = "http://localhost:8080"
api = "infill"
api_key_env = "PITH_KEY"

[index]
exclude = ["vendor/**"]

[completion]
budget_tokens = 300

[hover]
explain = false

[prompt]
system = "Be terse."
style = ["snake_case"]
templates.hover = "Explain {symbol} in {language}."

[[examples]]
symbol = "parse_config"
tasks = ["completion", "docstring"]

[languages.python.prompt]
style = ["PEP 8"]
"#,
        )
        .unwrap();
        assert_eq!(config.model.lora[1].scale, 1.0);
        assert_eq!(config.model.context, 2048);
        assert_eq!(config.remote.as_ref().unwrap().api, RemoteApi::Infill);
        assert_eq!(config.remote.as_ref().unwrap().timeout_ms, 30_000);
        assert_eq!(config.completion.max_tokens, 64);
        assert_eq!(config.hover.timeout_ms, 1500);
        let python = config.prompt_for(Some("python"));
        assert_eq!(python.style, vec!["PEP 8".to_string()]);
        assert_eq!(python.system, "Be terse.");
        assert_eq!(
            python.template(Task::Hover),
            "Explain {symbol} in {language}."
        );
        let rust = config.prompt_for(Some("rust"));
        assert_eq!(rust.style, vec!["snake_case".to_string()]);
        assert_eq!(config.examples_for(None, Task::Docstring).len(), 1);
        assert_eq!(config.examples_for(None, Task::Hover).len(), 0);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        check_error(
            "[completion]\nbudget_tokens = 10\ndebounce = 5\n",
            expect![[
                r#"config.toml:3:1: key `completion.debounce`: unknown field `debounce`, expected one of `budget_tokens`, `buffer_tokens`, `suffix_tokens`, `debounce_ms`, `max_tokens`, `completion_item_fallback`, `guided`, `item_budget_ms`, `context_layout`"#
            ]],
        );
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        check_error(
            "[hover]\n\ntimeout_ms = \"soon\"\n",
            expect![[
                r#"config.toml:3:14: key `hover.timeout_ms`: invalid type: string "soon", expected u64"#
            ]],
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        check_error(
            "[model]\npath = \n",
            expect![[
                r#"config.toml:2:8: key `model.path`: string values must be quoted, expected literal string"#
            ]],
        );
    }

    #[test]
    fn unknown_placeholder_is_rejected() {
        check_error(
            "[languages.rust.prompt.templates]\nhover = \"\"\"\nExplain\n{symbl} please\"\"\"\n",
            expect![
                "config.toml:4:1: key `languages.rust.prompt.templates.hover`: unknown placeholder `{symbl}` (known for hover: {language}, {path}, {context}, {memories}, {examples}, {style}, {symbol}, {signature}, {code})"
            ],
        );
    }

    #[test]
    fn example_needs_one_source() {
        check_error(
            "[[examples]]\ncode = \"x\"\nsymbol = \"y\"\n",
            expect![
                "config.toml: key `examples[0]`: an example needs exactly one of `code`, `glob`, `symbol`"
            ],
        );
    }

    #[test]
    fn layers_merge_in_order_and_reload_keeps_last_good() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.toml");
        std::fs::write(
            &user,
            "[completion]\nbudget_tokens = 100\nmax_tokens = 10\n[index]\nexclude = [\"a\"]\n",
        )
        .unwrap();
        let root = dir.path().join("proj");
        std::fs::create_dir_all(root.join(".pith")).unwrap();
        std::fs::write(
            project_config_path(&root),
            "[completion]\nbudget_tokens = 200\n[index]\nexclude = [\"b\"]\n",
        )
        .unwrap();
        let mut sources = ConfigSources {
            user_file: Some(user),
            project_root: Some(root.clone()),
            client: Some(serde_json::json!({"completion": {"debounce_ms": 7}})),
        };
        let mut config = Config::load(&sources).unwrap();
        assert_eq!(config.completion.budget_tokens, Some(200));
        assert_eq!(config.completion.max_tokens, 10);
        assert_eq!(config.completion.debounce_ms, 7);
        assert_eq!(config.index.exclude, vec!["b".to_string()]);

        std::fs::write(project_config_path(&root), "[completion\n").unwrap();
        let error = config.reload(&sources).unwrap_err();
        assert!(error.source_name.ends_with("config.toml"), "{error}");
        assert_eq!(error.line, Some(1));
        assert_eq!(
            config.completion.budget_tokens,
            Some(200),
            "last good config kept"
        );

        std::fs::write(project_config_path(&root), "").unwrap();
        sources.client = Some(serde_json::json!({"completion": {"max_tokens": "many"}}));
        let error = config.reload(&sources).unwrap_err();
        expect![[r#"client settings: invalid type: string "many", expected u32"#]]
            .assert_eq(&error.to_string());
        sources.client = None;
        config.reload(&sources).unwrap();
        assert_eq!(config.completion.budget_tokens, Some(100));
    }
}
