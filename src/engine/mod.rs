//! The model engine: one interface, two backends — llama.cpp embedded in the process
//! (`llama`), or an OpenAI-compatible HTTP server (`remote`). Nothing outside this module knows
//! which one is running.
//!
//! Callers build a [`Request`] from structured parts (FIM prefix/suffix/context, or chat
//! messages) and the backend lays it out in its model's own format, so that the same request
//! works with Qwen's FIM tokens, llama-server's `/infill`, or a chat endpoint.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub mod format;
pub mod gate;
pub mod gguf;
pub mod guide;
pub mod kv_file;
pub mod kv_reuse;
pub mod llama;
pub mod model;
pub mod remote;
pub mod route;
pub mod speculative;

pub use guide::{Guide, Rule};
pub use llama::LlamaEngine;
pub use remote::RemoteEngine;

/// Who is waiting for the result; the queue serves higher first and drops superseded work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Prefetch, cache warming, hover explanations. Gives its slot up (ends as cancelled)
    /// when a request of higher priority is queued for the same slot.
    Background,
    /// A person is waiting (ask, a code action, an explanation asked for, chat).
    Interactive,
    /// Inline completion: waited on at typing speed, superseded often. Preempts a running
    /// request of lower priority in the other slot (the embedded backend).
    Completion,
}

/// The KV-cache slot a request runs in: requests of different kinds keep separate sequences so
/// that a hover does not evict the completion prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Completion,
    Chat,
}

/// A file given to the model as context (Qwen's repo-level `<|file_sep|>` layout and
/// llama-server's `input_extra` both take this shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path relative to the workspace root, `/`-separated.
    pub path: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Fill in the middle of a file.
    Fim {
        /// Project name for repo-level FIM layouts.
        repo: String,
        /// Retrieved context, most stable first (it forms the reusable KV prefix).
        context: Vec<ContextFile>,
        /// Path of the edited file, relative to the root.
        path: String,
        prefix: String,
        suffix: String,
    },
    /// A conversation, laid out with the model's chat template.
    Chat(Vec<Message>),
}

/// Sampling settings. The default is greedy (deterministic completions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0.0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// Decides, from the text generated so far, that generation is complete (block ended,
/// completion now repeats the suffix, …). Returns the length of the text to keep.
pub type StopPredicate = Arc<dyn Fn(&str) -> Option<usize> + Send + Sync>;

/// One generation request.
#[derive(Clone)]
pub struct Request {
    pub prompt: Prompt,
    pub max_tokens: u32,
    /// Stop strings; the text before the first match is kept.
    pub stop: Vec<String>,
    pub stop_when: Option<StopPredicate>,
    pub sampling: Sampling,
    pub priority: Priority,
    pub slot: Slot,
    /// Cancelled by the caller (superseded, `$/cancelRequest`); checked between decode steps.
    pub cancel: CancellationToken,
    /// Requests with the same key supersede each other while queued (e.g. one per document).
    pub supersede_key: Option<String>,
    /// Constrains the identifiers the model may write (index-guided decoding); backends that
    /// cannot apply it decode without it.
    pub guide: Option<Arc<dyn Guide>>,
}

impl Request {
    /// An interactive request with the defaults: greedy, no stop strings, nothing superseding
    /// it, a fresh cancellation token. Callers adjust the public fields from there.
    pub fn new(prompt: Prompt, max_tokens: u32, slot: Slot) -> Request {
        Request {
            prompt,
            max_tokens,
            stop: Vec::new(),
            stop_when: None,
            sampling: Sampling::default(),
            priority: Priority::Interactive,
            slot,
            cancel: CancellationToken::new(),
            supersede_key: None,
            guide: None,
        }
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("prompt", &self.prompt)
            .field("max_tokens", &self.max_tokens)
            .field("priority", &self.priority)
            .field("slot", &self.slot)
            .field("guided", &self.guide.is_some())
            .finish_non_exhaustive()
    }
}

/// Counters of one finished request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub prompt_tokens: u32,
    /// Prompt tokens that were found in the KV cache and not decoded again.
    pub reused_tokens: u32,
    pub generated_tokens: u32,
    pub prompt_ms: u64,
    pub generate_ms: u64,
    /// Tokens where the guide overruled the model's first choice.
    pub guided_tokens: u32,
}

/// What a request streams back.
#[derive(Debug)]
pub enum Event {
    /// A piece of generated text.
    Text(String),
    /// Generation finished normally (stop condition or max tokens).
    Done(RequestStats),
    /// The request was cancelled or superseded before or during generation.
    Cancelled,
    Failed(EngineError),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("no model is configured: run `pith model install`, or set model.path / PITH_MODEL")]
    NoModel,
    #[error("model file {path}: {reason}")]
    BadModel { path: String, reason: String },
    #[error("the prompt has {tokens} tokens but the context holds {limit}")]
    PromptTooLong { tokens: usize, limit: usize },
    #[error("remote backend {url}: {reason}")]
    Remote { url: String, reason: String },
    #[error("engine stopped: {0}")]
    Stopped(String),
}

/// Engine-wide counters, for `pith.status`, tests and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStatus {
    /// Human-readable name of the model or server.
    pub model: String,
    pub loaded: bool,
    pub queued: usize,
    pub running: usize,
    pub completed: u64,
    pub cancelled: u64,
    /// Requests dropped from the queue because a newer one superseded them.
    pub superseded: u64,
    /// Requests that ran at once inside the generation of a lower-priority one (a completion
    /// during a hover explanation), which then resumed.
    pub preempted: u64,
    pub prompt_tokens_decoded: u64,
    pub prompt_tokens_reused: u64,
    pub generated_tokens: u64,
    /// Speculative decoding: tokens the draft model proposed, and how many the model kept.
    pub draft_tokens: u64,
    pub draft_accepted: u64,
    pub last_error: Option<String>,
    /// Features this backend does not offer, in words (e.g. `guided decoding: off (remote)`).
    pub unavailable: Vec<String>,
}

/// A model backend. Implementations run generation off the caller's thread.
pub trait Engine: Send + Sync {
    /// Queue a request; events arrive on the returned channel, ending with `Done`, `Cancelled`
    /// or `Failed`.
    fn submit(&self, request: Request) -> mpsc::UnboundedReceiver<Event>;
    /// Tokens in `text` with this model's tokenizer (an estimate where none is available).
    fn count_tokens(&self, text: &str) -> usize;
    fn status(&self) -> EngineStatus;
    /// The model's parameter count, where the backend knows it.
    fn parameters(&self) -> Option<u64> {
        None
    }
    /// The name of the model that serves requests of `slot`.
    fn model_name(&self, slot: Slot) -> String {
        let _ = slot;
        self.status().model
    }
}

/// Token estimate used when no tokenizer is at hand: about 4 characters per token for code.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// Settings of the engine (`[engine]` in the config). With `remote` set, the HTTP backend is
/// used and the local-model fields are ignored.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// GGUF model file; `None` = the installed default model.
    pub model: Option<PathBuf>,
    /// CPU threads for generation; `None` = the number of physical cores.
    pub threads: Option<usize>,
    /// Tokens of context per slot (completion and chat each get this many).
    pub context_size: u32,
    /// Prompt tokens decoded per `llama_decode` call.
    pub batch_size: u32,
    pub gpu_layers: u32,
    pub flash_attention: bool,
    /// Cached runs of at least this many tokens are moved back instead of decoded again when
    /// text disappears from the middle of a prompt (llama-server's `--cache-reuse`); 0 turns it
    /// off. Used only for models whose KV cache llama.cpp can shift.
    pub cache_reuse: usize,
    pub lora: Vec<LoraSettings>,
    pub remote: Option<RemoteSettings>,
    /// A smaller model with the same tokenizer that drafts tokens for this one (speculative
    /// decoding, greedy requests only); `None` = off.
    pub draft: Option<PathBuf>,
    /// Most tokens drafted per step (the length adapts below it).
    pub draft_tokens: usize,
    /// Chat requests ([`Slot::Chat`]: ask, explanations, code actions) run on this model
    /// instead; `None` = the same model for everything.
    pub chat: Option<Box<EngineSettings>>,
    /// Folder where the embedded engine keeps each slot's KV cache between runs
    /// ([`kv_file`]); `None` = not kept.
    pub kv_dir: Option<PathBuf>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            model: None,
            threads: None,
            context_size: 4096,
            batch_size: 512,
            gpu_layers: 0,
            flash_attention: false,
            cache_reuse: 64,
            lora: Vec::new(),
            remote: None,
            draft: None,
            draft_tokens: 8,
            chat: None,
            kv_dir: None,
        }
    }
}

/// A LoRA adapter (GGUF) applied on top of the model.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoraSettings {
    pub path: PathBuf,
    #[serde(default = "one")]
    pub scale: f32,
}

fn one() -> f32 {
    1.0
}

/// Which HTTP dialect a remote server speaks.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RemoteApi {
    /// llama.cpp `llama-server`: `/infill` for FIM, `/v1/chat/completions` for chat.
    Infill,
    /// Any OpenAI-compatible server (Ollama, vLLM, …): `/v1/completions` with the FIM laid out
    /// as text, `/v1/chat/completions` for chat.
    #[default]
    Openai,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteSettings {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub api: RemoteApi,
    /// Model name sent to the server.
    pub model: String,
    /// Name of the environment variable that holds the API key (never the key itself).
    pub api_key_env: Option<String>,
    /// Longest wait for the connection or for the next piece of the stream.
    pub timeout_ms: u64,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8080".into(),
            api: RemoteApi::default(),
            model: String::new(),
            api_key_env: None,
            timeout_ms: 30_000,
        }
    }
}

/// Opens the backend the settings name: remote when `remote` is set, else the embedded model.
pub fn open(settings: &EngineSettings) -> Result<Arc<dyn Engine>, EngineError> {
    match &settings.remote {
        Some(remote) => Ok(Arc::new(RemoteEngine::new(remote.clone())?)),
        None => match &settings.chat {
            Some(chat) => route::open(settings, chat),
            None => Ok(Arc::new(LlamaEngine::open(settings)?)),
        },
    }
}
