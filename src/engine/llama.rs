//! The embedded backend: llama.cpp in this process, driven by one dedicated OS thread.
//!
//! **Why in-process.** A `LlamaContext` cannot move between threads, so one thread owns it and
//! callers talk to it through a priority queue. Running the model in a child process would
//! isolate llama.cpp aborts, but costs a second copy of the tokenizer (needed synchronously for
//! `count_tokens`), IPC on every streamed token and a restart protocol. llama.cpp's aborts come
//! almost entirely from malformed model files and impossible parameters; both are checked here
//! before llama.cpp sees them (the GGUF header and tensor extents in [`super::gguf`], prompt
//! length against the context, LoRA architecture), so in-process is the simpler, faster choice.
//!
//! **KV-cache reuse.** The context holds one sequence per [`Slot`] (completion, chat), each with
//! its own `context_size` cells. The worker remembers the tokens in each sequence; a new prompt
//! keeps the longest common prefix and decodes only the rest. FIM prompts put the stable parts
//! (repo name, context files) first, so consecutive keystrokes share almost all of the prompt.
//!
//! **Preemption.** A completion queued while a request of lower priority generates in the other
//! slot (a hover explanation, an answer) runs at once, between two of its decode steps; the
//! paused request then resumes exactly where it was, its KV cache untouched.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::format::{self, FimLayout, Piece};
use super::gate::{Gate, Turn};
use super::guide::{self, VocabTrie};
use super::kv_file::KvFiles;
use super::kv_reuse;
use super::speculative::{self, Draft};
use super::{
    Engine, EngineError, EngineSettings, EngineStatus, Event, Priority, Prompt, Request,
    RequestStats, Slot, gguf,
};

/// llama.cpp's backend may be initialised once per process; every engine shares it.
pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let debug = std::env::var("PITH_LOG")
                .map(|v| v.contains("debug") || v.contains("trace"))
                .unwrap_or(false);
            llama_cpp_2::send_logs_to_tracing(
                llama_cpp_2::LogOptions::default().with_logs_enabled(debug),
            );
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Stopped(format!("llama.cpp backend: {e}")))
}

/// Physical cores (SMT siblings counted once), which is what llama.cpp runs best on.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cores = std::collections::HashSet::new();
    for cpu in 0..logical {
        let base = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let core = std::fs::read_to_string(format!("{base}/core_id"));
        let package = std::fs::read_to_string(format!("{base}/physical_package_id"));
        match (core, package) {
            (Ok(c), Ok(p)) => {
                cores.insert((p.trim().to_string(), c.trim().to_string()));
            }
            _ => return logical,
        }
    }
    cores.len().clamp(1, logical)
}

/// The model file the settings name (a path, or the name of a published model such as
/// `qwen2.5-coder-1.5b`, installed), or the installed default; checked before loading.
pub fn resolve_model(settings: &EngineSettings) -> Result<PathBuf, EngineError> {
    match &settings.model {
        Some(named) => match super::model::locate(named) {
            (path, _) if path.exists() => Ok(path),
            (_, Some(published)) => Err(EngineError::BadModel {
                path: published.name.to_string(),
                reason: format!("not installed: run `pith model install {}`", published.name),
            }),
            (path, None) => Err(EngineError::BadModel {
                path: path.display().to_string(),
                reason: "no such file".into(),
            }),
        },
        None => {
            let path = super::model::default_model_path().ok_or(EngineError::NoModel)?;
            if path.exists() {
                Ok(path)
            } else {
                Err(EngineError::NoModel)
            }
        }
    }
}

/// Loads the model and its LoRA adapters after validating every file.
pub fn load_model(
    path: &Path,
    settings: &EngineSettings,
) -> Result<(LlamaModel, Vec<(LlamaLoraAdapter, f32)>), EngineError> {
    let info = gguf::inspect(path)?;
    let backend = backend()?;
    // Read, not mapped: with a mapping, the file truncated or rewritten in place while pith
    // runs (`cp new.gguf model.gguf`, an interrupted download over it) kills the process with
    // SIGBUS on the next token. Reading costs a fraction of a second at start.
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(settings.gpu_layers)
        .with_use_mmap(false);
    let mut model =
        LlamaModel::load_from_file(backend, path, &params).map_err(|e| EngineError::BadModel {
            path: path.display().to_string(),
            reason: format!("llama.cpp could not load it: {e}"),
        })?;
    let mut adapters = Vec::new();
    for lora in &settings.lora {
        let bad = |reason: String| EngineError::BadModel {
            path: lora.path.display().to_string(),
            reason,
        };
        let adapter_info = gguf::inspect(&lora.path)?;
        if adapter_info.get_str("general.type") != Some("adapter") {
            return Err(bad(
                "not a LoRA adapter GGUF (general.type is not \"adapter\")".into(),
            ));
        }
        if adapter_info.architecture() != info.architecture() {
            return Err(bad(format!(
                "LoRA adapter is for architecture {:?} but the model is {:?}",
                adapter_info.architecture().unwrap_or("?"),
                info.architecture().unwrap_or("?")
            )));
        }
        let adapter = model
            .lora_adapter_init(&lora.path)
            .map_err(|e| bad(format!("llama.cpp rejected the LoRA adapter: {e}")))?;
        adapters.push((adapter, lora.scale));
    }
    if adapters.len() > 1 {
        return Err(EngineError::BadModel {
            path: settings.lora[1].path.display().to_string(),
            reason: "only one LoRA adapter can be applied at a time".into(),
        });
    }
    Ok((model, adapters))
}

/// The FIM layout of a model file, read from its vocabulary alone (no weights are loaded).
pub fn vocab_fim_layout(path: &Path) -> Result<Option<FimLayout>, EngineError> {
    gguf::inspect(path)?;
    let params = LlamaModelParams::default().with_vocab_only(true);
    let model = LlamaModel::load_from_file(backend()?, path, &params).map_err(|e| {
        EngineError::BadModel {
            path: path.display().to_string(),
            reason: format!("llama.cpp could not read the vocabulary: {e}"),
        }
    })?;
    Ok(FimLayout::detect(|t| is_special_token(&model, t)))
}

/// True when `text` is exactly one special (control) token of this model.
fn is_special_token(model: &LlamaModel, text: &str) -> bool {
    let tokens = model.vocab().tokenize(text.as_bytes(), false, true);
    tokens.len() == 1 && {
        let attrs = model.vocab().attr(tokens[0]);
        attrs.contains(llama_cpp_2::token_type::LlamaTokenAttr::Control)
            || attrs.contains(llama_cpp_2::token_type::LlamaTokenAttr::UserDefined)
    }
}

fn special_token(model: &LlamaModel, text: &str) -> Option<LlamaToken> {
    let tokens = model.vocab().tokenize(text.as_bytes(), false, true);
    (tokens.len() == 1 && is_special_token(model, text)).then(|| tokens[0])
}

/// How a model lays out prompts: its FIM layout and chat template.
pub struct Formatter {
    pub fim: Option<FimLayout>,
    template: Option<LlamaChatTemplate>,
}

impl Formatter {
    pub fn new(model: &LlamaModel) -> Self {
        let fim = FimLayout::detect(|t| is_special_token(model, t));
        let template = model.chat_template(None).ok();
        Self { fim, template }
    }

    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// The prompt as text, special tokens included (what `pith prompt` shows).
    pub fn render(&self, model: &LlamaModel, prompt: &Prompt) -> Result<String, EngineError> {
        Ok(match self.pieces(model, prompt)? {
            Laid::Pieces(pieces) => format::render(&pieces),
            Laid::Chat(text) => text,
        })
    }

    fn pieces(&self, model: &LlamaModel, prompt: &Prompt) -> Result<Laid, EngineError> {
        match prompt {
            Prompt::Fim {
                repo,
                context,
                path,
                prefix,
                suffix,
            } => {
                let layout = self.fim.ok_or_else(|| EngineError::BadModel {
                    path: String::new(),
                    reason: "this model has no fill-in-the-middle tokens".into(),
                })?;
                Ok(Laid::Pieces(
                    layout.layout(repo, context, path, prefix, suffix),
                ))
            }
            Prompt::Chat(messages) => {
                let templated = self.template.as_ref().and_then(|template| {
                    let chat: Option<Vec<_>> = messages
                        .iter()
                        .map(|m| {
                            LlamaChatMessage::new(
                                format::role_name(m.role).into(),
                                m.content.clone(),
                            )
                            .ok()
                        })
                        .collect();
                    model.apply_chat_template(template, &chat?, true).ok()
                });
                Ok(Laid::Chat(
                    templated.unwrap_or_else(|| format::plain_chat(messages)),
                ))
            }
        }
    }

    /// The prompt's tokens: text pieces never parse special tokens, chat templates do.
    pub fn tokenize(
        &self,
        model: &LlamaModel,
        prompt: &Prompt,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let vocab = model.vocab();
        let mut tokens = Vec::new();
        if vocab.should_add_bos() {
            tokens.push(vocab.bos());
        }
        match self.pieces(model, prompt)? {
            Laid::Pieces(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Special(text) => {
                            let token = special_token(model, text).ok_or_else(|| {
                                EngineError::BadModel {
                                    path: String::new(),
                                    reason: format!("the vocabulary lacks the token {text}"),
                                }
                            })?;
                            tokens.push(token);
                        }
                        Piece::Text(text) => {
                            tokens.extend(vocab.tokenize(text.as_bytes(), false, false))
                        }
                    }
                }
            }
            Laid::Chat(text) => tokens.extend(vocab.tokenize(text.as_bytes(), false, true)),
        }
        Ok(tokens)
    }
}

enum Laid {
    Pieces(Vec<Piece>),
    Chat(String),
}

struct Queued {
    request: Request,
    events: mpsc::UnboundedSender<Event>,
    order: u64,
}

#[derive(Default)]
struct Queue {
    items: Vec<Queued>,
    next_order: u64,
    shutdown: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    status: Mutex<EngineStatus>,
    /// Cancellation of the request on the model now, so that dropping the engine stops it.
    running: Mutex<Option<CancellationToken>>,
}

impl Shared {
    fn status(&self) -> MutexGuard<'_, EngineStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// llama.cpp embedded in the process. See the module documentation.
pub struct LlamaEngine {
    shared: Arc<Shared>,
    model: Arc<LlamaModel>,
    path: PathBuf,
    formatter: Arc<Formatter>,
    context_size: usize,
    worker: Option<JoinHandle<()>>,
}

/// What engines opened together share (see [`super::route`]).
#[derive(Default, Clone)]
pub struct OpenOptions {
    /// An already loaded model (its file, its weights) used as the draft when
    /// `settings.draft` names that file, instead of loading it a second time.
    pub loaded: Option<(PathBuf, Arc<LlamaModel>)>,
    /// Taken while a request runs, so that engines sharing it never compute at once.
    pub gate: Option<Arc<Gate>>,
}

/// Loads and checks the draft model `settings.draft` names, for the target model at `path`.
fn load_draft(
    path: &Path,
    model: &LlamaModel,
    settings: &EngineSettings,
    options: &OpenOptions,
) -> Result<Option<Arc<LlamaModel>>, EngineError> {
    let Some(named) = &settings.draft else {
        return Ok(None);
    };
    let draft_path = resolve_model(&EngineSettings {
        model: Some(named.clone()),
        ..EngineSettings::default()
    })?;
    let refuse = |reason: String| EngineError::BadModel {
        path: draft_path.display().to_string(),
        reason: format!("cannot be the draft model: {reason}"),
    };
    speculative::check_tokenizers(&gguf::inspect(path)?, &gguf::inspect(&draft_path)?)
        .map_err(refuse)?;
    let draft = match &options.loaded {
        Some((loaded, draft)) if same_file(loaded, &draft_path) => draft.clone(),
        _ => Arc::new(
            load_model(
                &draft_path,
                &EngineSettings {
                    lora: Vec::new(),
                    ..settings.clone()
                },
            )?
            .0,
        ),
    };
    speculative::check_vocabularies(model, &draft).map_err(refuse)?;
    Ok(Some(draft))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

impl LlamaEngine {
    /// Validates and loads the model, creates the context on the worker thread and returns
    /// once the engine can take requests.
    pub fn open(settings: &EngineSettings) -> Result<Self, EngineError> {
        Self::open_with(settings, OpenOptions::default())
    }

    /// [`Self::open`], sharing a loaded draft model and a gate with other engines.
    pub fn open_with(settings: &EngineSettings, options: OpenOptions) -> Result<Self, EngineError> {
        let path = resolve_model(settings)?;
        let (model, adapters) = load_model(&path, settings)?;
        let model = Arc::new(model);
        let draft = load_draft(&path, &model, settings, &options)?;
        let formatter = Arc::new(Formatter::new(&model));
        let mut name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        if let Some(draft) = &draft {
            name.push_str(&format!(
                " (draft: {})",
                draft
                    .meta_val_str("general.name")
                    .unwrap_or_else(|_| "?".into())
            ));
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            status: Mutex::new(EngineStatus {
                model: name,
                loaded: true,
                ..EngineStatus::default()
            }),
            running: Mutex::new(None),
        });
        let context_size = settings.context_size.max(64) as usize;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let worker = {
            let shared = shared.clone();
            let model = model.clone();
            let formatter = formatter.clone();
            let settings = settings.clone();
            let gate = options.gate.clone();
            let kv_files = KvFiles::new(&path, &settings);
            std::thread::Builder::new()
                .name("pith-llama".into())
                .spawn(move || {
                    let mut adapters = adapters;
                    let draft = draft.as_deref();
                    match Worker::new(&model, &formatter, &settings, &mut adapters, shared, draft) {
                        Ok(mut worker) => {
                            worker.gate = gate;
                            worker.kv_files = kv_files;
                            worker.restore();
                            let _ = ready_tx.send(Ok(()));
                            worker.run();
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                })
                .map_err(|e| EngineError::Stopped(format!("cannot start the model thread: {e}")))?
        };
        ready_rx
            .recv()
            .map_err(|_| EngineError::Stopped("the model thread died while starting".into()))??;
        Ok(Self {
            shared,
            model,
            path,
            formatter,
            context_size,
            worker: Some(worker),
        })
    }

    /// The model file and its loaded weights, for another engine to use as its draft.
    pub fn loaded(&self) -> (PathBuf, Arc<LlamaModel>) {
        (self.path.clone(), self.model.clone())
    }

    /// The FIM layout detected from the vocabulary, if any.
    pub fn fim_layout(&self) -> Option<FimLayout> {
        self.formatter.fim
    }

    /// The exact prompt text the model would see.
    pub fn render_prompt(&self, prompt: &Prompt) -> Result<String, EngineError> {
        self.formatter.render(&self.model, prompt)
    }

    /// Tokens per slot.
    pub fn context_size(&self) -> usize {
        self.context_size
    }
}

impl Drop for LlamaEngine {
    fn drop(&mut self) {
        {
            let mut queue = self.shared.queue();
            queue.shutdown = true;
            for item in queue.items.drain(..) {
                item.request.cancel.cancel();
                let _ = item.events.send(Event::Cancelled);
            }
        }
        if let Some(running) = &*self
            .shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
        {
            running.cancel();
        }
        self.shared.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Engine for LlamaEngine {
    fn submit(&self, request: Request) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut queue = self.shared.queue();
        if queue.shutdown {
            let _ = tx.send(Event::Failed(EngineError::Stopped(
                "engine shut down".into(),
            )));
            return rx;
        }
        let mut superseded = 0;
        if let Some(key) = &request.supersede_key {
            queue.items.retain(|item| {
                let stale = item.request.supersede_key.as_ref() == Some(key);
                if stale {
                    let _ = item.events.send(Event::Cancelled);
                    superseded += 1;
                }
                !stale
            });
        }
        let order = queue.next_order;
        queue.next_order += 1;
        queue.items.push(Queued {
            request,
            events: tx,
            order,
        });
        let queued = queue.items.len();
        drop(queue);
        {
            let mut status = self.shared.status();
            status.superseded += superseded;
            status.queued = queued;
        }
        self.shared.wake.notify_one();
        rx
    }

    fn parameters(&self) -> Option<u64> {
        Some(self.model.n_params())
    }

    fn count_tokens(&self, text: &str) -> usize {
        // The model is only read here; llama.cpp's tokenizer is safe to call concurrently.
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }

    fn status(&self) -> EngineStatus {
        self.shared.status().clone()
    }
}

const SLOTS: usize = 2;

fn seq_of(slot: Slot) -> usize {
    match slot {
        Slot::Completion => 0,
        Slot::Chat => 1,
    }
}

/// Whether llama.cpp can shift this model's KV cache: plain RoPE architectures. llama.cpp
/// aborts the process on a shift it cannot do (M-RoPE, some per-layer RoPE models), so
/// anything not known to be safe is left alone.
fn can_shift_cache(model: &LlamaModel) -> bool {
    const PLAIN_ROPE: &[&str] = &[
        "llama",
        "qwen2",
        "qwen3",
        "qwen2moe",
        "qwen3moe",
        "starcoder2",
        "gemma",
        "gemma2",
        "gemma3",
        "phi3",
        "granite",
        "mistral3",
        "deepseek2",
        "stablelm",
    ];
    model
        .meta_val_str("general.architecture")
        .is_ok_and(|arch| PLAIN_ROPE.contains(&arch.as_str()))
}

/// State owned by the model thread.
struct Worker<'m> {
    model: &'m LlamaModel,
    formatter: &'m Formatter,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    slot_size: usize,
    /// Tokens currently in each sequence's KV cache.
    cached: [Vec<LlamaToken>; SLOTS],
    /// Shortest cached run moved instead of decoded again (0: off); see [`kv_reuse`].
    move_min_run: usize,
    stop_tokens: Vec<LlamaToken>,
    /// Every token's text and the vocabulary trie, built on the first guided request.
    vocab_pieces: Option<VocabPieces>,
    shared: Arc<Shared>,
    /// A request is running inside another one's generation ([`Worker::serve_urgent`]).
    interrupted: bool,
    /// The draft model's context, for speculative decoding of greedy requests.
    draft: Option<Draft<'m>>,
    /// Taken while a request runs (see [`OpenOptions::gate`]).
    gate: Option<Arc<Gate>>,
    /// The running request's turn on the gate.
    turn: Option<Turn>,
    /// Where the slots' caches are kept between runs.
    kv_files: Option<KvFiles>,
    /// The tokens each slot's kept file holds: a slot that still holds them is not written
    /// again.
    kept: [Vec<LlamaToken>; SLOTS],
}

/// The vocabulary as guided decoding needs it.
struct VocabPieces {
    pieces: Vec<String>,
    trie: VocabTrie,
}

impl VocabPieces {
    fn new(model: &LlamaModel) -> Self {
        let raw: Vec<Vec<u8>> = model.tokens(false).map(|(_, bytes)| bytes).collect();
        let trie = VocabTrie::new(raw.iter().map(Vec::as_slice));
        let pieces = raw
            .iter()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .collect();
        VocabPieces { pieces, trie }
    }
}

/// Why generation ended.
enum Outcome {
    Done(RequestStats),
    Cancelled,
}

impl<'m> Worker<'m> {
    fn new(
        model: &'m LlamaModel,
        formatter: &'m Formatter,
        settings: &EngineSettings,
        adapters: &mut [(LlamaLoraAdapter, f32)],
        shared: Arc<Shared>,
        draft: Option<&'m LlamaModel>,
    ) -> Result<Self, EngineError> {
        let slot_size = settings.context_size.max(64);
        let n_batch = settings.batch_size.clamp(1, slot_size);
        let threads = settings.threads.unwrap_or_else(physical_cores).max(1) as i32;
        let flash = if settings.flash_attention {
            llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED
        } else {
            llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED
        };
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(slot_size * SLOTS as u32))
            .with_n_seq_max(SLOTS as u32)
            .with_kv_unified(false)
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(flash);
        // The target checks a draft in one batch with the token before it.
        let draft = match draft {
            Some(draft_model) if n_batch >= 2 => Some(Draft::new(
                draft_model,
                params.clone(),
                SLOTS,
                n_batch as usize,
                settings.draft_tokens.clamp(1, n_batch as usize - 1),
            )?),
            _ => None,
        };
        let mut ctx = model.new_context(backend()?, params).map_err(|e| {
            EngineError::Stopped(format!("cannot create the llama.cpp context: {e}"))
        })?;
        for (adapter, scale) in adapters.iter_mut() {
            ctx.lora_adapter_set(adapter, *scale)
                .map_err(|e| EngineError::Stopped(format!("cannot apply the LoRA adapter: {e}")))?;
        }
        let mut stop_tokens: Vec<LlamaToken> = formatter
            .fim
            .map(|layout| layout.stop_tokens())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| special_token(model, t))
            .collect();
        let vocab = model.vocab();
        for token in [vocab.fim_pad(), vocab.fim_sep(), vocab.fim_rep()] {
            if token.0 >= 0 {
                stop_tokens.push(token);
            }
        }
        Ok(Self {
            model,
            formatter,
            ctx,
            batch: LlamaBatch::new(n_batch as usize, 1),
            n_batch: n_batch as usize,
            slot_size: slot_size as usize,
            cached: Default::default(),
            move_min_run: if can_shift_cache(model) {
                settings.cache_reuse
            } else {
                0
            },
            stop_tokens,
            vocab_pieces: None,
            shared,
            interrupted: false,
            draft,
            gate: None,
            turn: None,
            kv_files: None,
            kept: Default::default(),
        })
    }

    fn next(&self) -> Option<Queued> {
        let mut queue = self.shared.queue();
        loop {
            if queue.shutdown {
                return None;
            }
            // Highest priority first, then oldest.
            let best = queue
                .items
                .iter()
                .enumerate()
                .max_by_key(|(_, q)| (q.request.priority, std::cmp::Reverse(q.order)))
                .map(|(i, _)| i);
            if let Some(i) = best {
                let item = queue.items.swap_remove(i);
                *self
                    .shared
                    .running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(item.request.cancel.clone());
                let mut status = self.shared.status();
                status.queued = queue.items.len();
                status.running = 1;
                return Some(item);
            }
            queue = self
                .shared
                .wake
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn run(&mut self) {
        while let Some(job) = self.next() {
            self.serve(&job);
            self.shared.status().running = 0;
            // A chat request takes seconds: keeping its cache costs little beside it, and the
            // next process (`pith ask` again) starts from its system prompt.
            if job.request.slot == Slot::Chat {
                self.keep(seq_of(Slot::Chat));
            }
        }
        for seq in 0..SLOTS {
            self.keep(seq);
        }
    }

    /// Loads the slots' caches the last run kept ([`super::kv_file`]).
    fn restore(&mut self) {
        let Some(files) = self.kv_files.clone() else {
            return;
        };
        for seq in 0..SLOTS {
            let path = files.path(seq);
            if !path.exists() {
                continue;
            }
            match self
                .ctx
                .state_seq_load_file(&path, seq as i32, self.slot_size)
            {
                Ok((tokens, _)) if !tokens.is_empty() && tokens.len() < self.slot_size => {
                    tracing::debug!(seq, tokens = tokens.len(), "restored a kept KV cache");
                    self.kept[seq] = tokens.clone();
                    self.cached[seq] = tokens;
                }
                result => {
                    tracing::debug!(
                        seq,
                        error = result.err().map(|e| e.to_string()),
                        "dropped a kept KV cache llama.cpp cannot use"
                    );
                    let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }

    /// Writes slot `seq`'s cache for the next run; a failure only costs that run the prompt.
    fn keep(&mut self, seq: usize) {
        let Some(files) = &self.kv_files else {
            return;
        };
        let tokens = &self.cached[seq];
        if tokens.is_empty()
            || *tokens == self.kept[seq]
            || std::fs::create_dir_all(files.dir()).is_err()
        {
            return;
        }
        let partial = files.partial(seq);
        let kept = self
            .ctx
            .state_seq_save_file(&partial, seq as i32, tokens)
            .map_err(|e| e.to_string())
            .and_then(|_| std::fs::rename(&partial, files.path(seq)).map_err(|e| e.to_string()));
        match kept {
            Ok(()) => self.kept[seq] = tokens.clone(),
            Err(error) => {
                tracing::debug!(seq, %error, "could not keep the KV cache");
                let _ = std::fs::remove_file(&partial);
            }
        }
    }

    /// Runs one job to its end and sends its final event.
    fn serve(&mut self, job: &Queued) {
        let result = if job.request.cancel.is_cancelled() || job.events.is_closed() {
            Ok(Outcome::Cancelled)
        } else {
            // A nested request runs inside a job that already holds the gate.
            if !self.interrupted {
                self.turn = self.gate.as_ref().map(|g| g.enter(job.request.priority));
            }
            let result = self.generate(&job.request, &job.events);
            if !self.interrupted {
                self.turn = None;
            }
            result
        };
        let priority = job.request.priority;
        let mut status = self.shared.status();
        match result {
            Ok(Outcome::Done(stats)) => {
                tracing::debug!(
                    ?priority,
                    slot = ?job.request.slot,
                    prompt = stats.prompt_tokens,
                    reused = stats.reused_tokens,
                    generated = stats.generated_tokens,
                    prompt_ms = stats.prompt_ms,
                    generate_ms = stats.generate_ms,
                    "request done"
                );
                status.completed += 1;
                let _ = job.events.send(Event::Done(stats));
            }
            Ok(Outcome::Cancelled) => {
                tracing::debug!(?priority, "request cancelled");
                status.cancelled += 1;
                let _ = job.events.send(Event::Cancelled);
            }
            Err(error) => {
                tracing::debug!(?priority, %error, "request failed");
                status.last_error = Some(error.to_string());
                let _ = job.events.send(Event::Failed(error));
            }
        }
    }

    /// The queued request that may interrupt `running`: of higher priority, in the other slot
    /// (so that running it leaves `running`'s KV cache alone). Never while already nested.
    fn take_urgent(&self, running: &Request) -> Option<Queued> {
        if self.interrupted {
            return None;
        }
        let mut queue = self.shared.queue();
        let urgent = queue
            .items
            .iter()
            .enumerate()
            .filter(|(_, q)| {
                q.request.priority > running.priority && q.request.slot != running.slot
            })
            .max_by_key(|(_, q)| (q.request.priority, std::cmp::Reverse(q.order)))
            .map(|(i, _)| i)?;
        let item = queue.items.swap_remove(urgent);
        self.shared.status().queued = queue.items.len();
        Some(item)
    }

    /// Whether `running` is background work that a queued request of higher priority waits
    /// for: in the same slot, where it cannot be paused without losing its KV cache.
    fn outranked_in_slot(&self, running: &Request) -> bool {
        running.priority == Priority::Background
            && !self.interrupted
            && self
                .shared
                .queue()
                .items
                .iter()
                .any(|q| q.request.slot == running.slot && q.request.priority > running.priority)
    }

    /// Preemption: a completion that arrives while an explanation (or any request of lower
    /// priority in the other slot) generates runs at once, in its own KV slot, instead of
    /// waiting behind it; then `running` resumes where it was. Called between decode steps.
    /// The context's logits then belong to the other sequence: when `logits` is given (the
    /// paused request samples next), the paused sequence's last token is decoded again so that
    /// they are its own, and `logits` becomes that token's batch index.
    ///
    /// False when `running` must give way instead: background work (a hover's explanation)
    /// that a request someone waits on needs the slot of (an ask after the hover). It ends as
    /// cancelled; a later hover generates it again.
    fn serve_urgent(
        &mut self,
        running: &Request,
        seq: usize,
        logits: Option<&mut i32>,
    ) -> Result<bool, EngineError> {
        if self.outranked_in_slot(running) {
            tracing::debug!(slot = ?running.slot, "background request gives its slot up");
            return Ok(false);
        }
        // The other model's request of higher priority runs while this one waits; this
        // context, its logits and its KV cache stay as they are.
        if !self.interrupted && self.turn.as_mut().is_some_and(Turn::yield_to_higher) {
            tracing::debug!(paused = ?running.priority, "stepped aside for the other model");
            self.shared.status().preempted += 1;
        }
        let Some(urgent) = self.take_urgent(running) else {
            return Ok(true);
        };
        tracing::debug!(
            urgent = ?urgent.request.priority,
            paused = ?running.priority,
            "preempting the running request"
        );
        let running_cancel = running.cancel.clone();
        self.interrupted = true;
        self.set_running(Some(urgent.request.cancel.clone()));
        self.serve(&urgent);
        if self.shared.queue().shutdown {
            // The engine was dropped during the urgent request: it cancelled only that one.
            running_cancel.cancel();
        }
        self.set_running(Some(running_cancel));
        self.interrupted = false;
        self.shared.status().preempted += 1;
        let Some(logits) = logits else {
            return Ok(true);
        };
        let Some(&last) = self.cached[seq].last() else {
            return Ok(true);
        };
        let position = self.cached[seq].len() - 1;
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), Some(position as u32), None)
            .map_err(|e| EngineError::Stopped(e.to_string()))?;
        self.batch.clear();
        self.batch
            .add(last, position as i32, &[seq as i32], true)
            .map_err(|e| EngineError::Stopped(e.to_string()))?;
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| EngineError::Stopped(format!("decode failed: {e}")))?;
        *logits = 0;
        Ok(true)
    }

    fn set_running(&self, cancel: Option<CancellationToken>) {
        *self
            .shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = cancel;
    }

    /// Makes the slot's KV cache hold exactly `tokens`, decoding only what is not already
    /// there (see [`kv_reuse`]). Returns (reused, decoded), or `None` when cancelled.
    fn prefill(
        &mut self,
        seq: usize,
        tokens: &[LlamaToken],
        request: &Request,
    ) -> Result<Option<(usize, usize)>, EngineError> {
        let mut plan = kv_reuse::plan(&self.cached[seq], tokens, self.move_min_run);
        if !self.arrange_cache(seq, &plan) {
            // Partial removal refused (should not happen for plain transformer caches).
            self.ctx
                .clear_kv_cache_seq(Some(seq as u32), None, None)
                .map_err(|e| EngineError::Stopped(e.to_string()))?;
            plan = kv_reuse::ReusePlan::default();
        }
        let reused = plan.reused();
        self.cached[seq].clear();
        self.cached[seq].extend_from_slice(&tokens[..reused]);
        if !self.decode_span(seq, tokens, reused..tokens.len(), request)? {
            return Ok(None);
        }
        Ok(Some((reused, tokens.len() - reused)))
    }

    /// Drops what `plan` does not keep from the slot's cache and moves its runs into place.
    /// False if llama.cpp refused a partial removal.
    fn arrange_cache(&mut self, seq: usize, plan: &kv_reuse::ReusePlan) -> bool {
        let seq_id = seq as i32;
        for run in &plan.moves {
            let (from, to, len) = (run.from as u32, run.to as u32, run.len as u32);
            let moved = self
                .ctx
                .kv_cache_seq_rm(seq_id, Some(to), Some(from))
                .is_ok()
                && self
                    .ctx
                    .kv_cache_seq_add(
                        seq_id,
                        Some(from),
                        Some(from + len),
                        to as i32 - from as i32,
                    )
                    .is_ok();
            if !moved {
                return false;
            }
        }
        self.ctx
            .kv_cache_seq_rm(seq_id, Some(plan.reused() as u32), None)
            .is_ok()
    }

    /// Decodes `tokens[span]` at their own positions, with logits for the prompt's last token
    /// only. False when cancelled.
    fn decode_span(
        &mut self,
        seq: usize,
        tokens: &[LlamaToken],
        span: std::ops::Range<usize>,
        request: &Request,
    ) -> Result<bool, EngineError> {
        let mut position = span.start;
        for (i, chunk) in tokens[span].chunks(self.n_batch).enumerate() {
            let go_on = i == 0 || self.serve_urgent(request, seq, None)?;
            if !go_on || request.cancel.is_cancelled() {
                return Ok(false);
            }
            decode_chunk(
                &mut self.ctx,
                &mut self.batch,
                (seq, position, tokens.len()),
                chunk,
                "decode",
            )?;
            self.cached[seq].extend_from_slice(chunk);
            position += chunk.len();
        }
        Ok(true)
    }

    fn generate(
        &mut self,
        request: &Request,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<Outcome, EngineError> {
        let started = Instant::now();
        let tokens = self.formatter.tokenize(self.model, &request.prompt)?;
        if tokens.is_empty() {
            return Err(EngineError::Stopped("the prompt is empty".into()));
        }
        if tokens.len() >= self.slot_size {
            return Err(EngineError::PromptTooLong {
                tokens: tokens.len(),
                limit: self.slot_size,
            });
        }
        let seq = seq_of(request.slot);
        tracing::debug!(
            priority = ?request.priority,
            slot = ?request.slot,
            prompt = tokens.len(),
            max_tokens = request.max_tokens,
            guided = request.guide.is_some(),
            "request started"
        );
        let Some((reused, decoded)) = self.prefill(seq, &tokens, request)? else {
            return Ok(Outcome::Cancelled);
        };
        {
            let mut status = self.shared.status();
            status.prompt_tokens_reused += reused as u64;
            status.prompt_tokens_decoded += decoded as u64;
        }
        let prompt_ms = started.elapsed().as_millis() as u64;
        let generating = Instant::now();
        if self.draft.is_some() && request.sampling.temperature <= 0.0 {
            return self.generate_speculative(request, events, &tokens, reused, prompt_ms);
        }

        let mut sampler = make_sampler(request);
        let vocab = self.model.vocab();
        let room = self.slot_size - tokens.len();
        let max_tokens = (request.max_tokens as usize).min(room);
        let mut text = TextStream::new(request);
        let mut logits_index = self.batch.n_tokens() - 1;
        let mut position = tokens.len();
        let mut generated = 0usize;
        let mut guided = 0u32;
        let mut written: Vec<u8> = Vec::new();
        let mut cancelled = false;
        if request.guide.is_some() && self.vocab_pieces.is_none() {
            self.vocab_pieces = Some(VocabPieces::new(self.model));
        }
        while generated < max_tokens {
            let go_on = self.serve_urgent(request, seq, Some(&mut logits_index))?;
            if !go_on || request.cancel.is_cancelled() || events.is_closed() {
                cancelled = true;
                break;
            }
            let token = match self.guided_token(request, &written, logits_index, &mut sampler) {
                Some((token, overruled)) => {
                    guided += overruled as u32;
                    token
                }
                None => sampler.sample(&self.ctx, logits_index),
            };
            if vocab.is_eog(token) || self.stop_tokens.contains(&token) {
                break;
            }
            generated += 1;
            let piece = vocab.token_to_piece(token, false, None);
            written.extend_from_slice(&piece);
            if text.push(&piece, events) {
                break;
            }
            if generated == max_tokens {
                break;
            }
            self.batch.clear();
            self.batch
                .add(token, position as i32, &[seq as i32], true)
                .map_err(|e| EngineError::Stopped(e.to_string()))?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| EngineError::Stopped(format!("decode failed: {e}")))?;
            self.cached[seq].push(token);
            position += 1;
            logits_index = 0;
        }
        self.shared.status().generated_tokens += generated as u64;
        if cancelled {
            return Ok(Outcome::Cancelled);
        }
        text.finish(events);
        Ok(Outcome::Done(RequestStats {
            prompt_tokens: tokens.len() as u32,
            reused_tokens: reused as u32,
            generated_tokens: generated as u32,
            prompt_ms,
            generate_ms: generating.elapsed().as_millis() as u64,
            guided_tokens: guided,
        }))
    }

    /// The next token under the request's guide: the best token its rule allows among the
    /// model's likeliest (see [`guide`]). `None` without a guide, where the rule allows
    /// anything, or where it allows nothing reachable (the caller samples freely). The flag
    /// tells whether the guide overruled the model's first choice.
    fn guided_token(
        &self,
        request: &Request,
        written: &[u8],
        logits_index: i32,
        sampler: &mut LlamaSampler,
    ) -> Option<(LlamaToken, bool)> {
        let logits = self.ctx.get_logits_ith(logits_index);
        guided_choice(
            request,
            self.vocab_pieces.as_ref(),
            written,
            logits,
            sampler,
        )
    }
}

/// [`Worker::guided_token`] on given logits (the speculative path checks several positions).
fn guided_choice(
    request: &Request,
    vocab: Option<&VocabPieces>,
    written: &[u8],
    logits: &[f32],
    sampler: &mut LlamaSampler,
) -> Option<(LlamaToken, bool)> {
    {
        let guide = request.guide.as_ref()?;
        let vocab = vocab?;
        let rule = guide.rule(&String::from_utf8_lossy(written))?;
        let piece = |token: u32| {
            vocab
                .pieces
                .get(token as usize)
                .cloned()
                .unwrap_or_default()
        };
        // Most steps the model's favourite is allowed and nothing is favoured: no ranking.
        let greedy = request.sampling.temperature <= 0.0;
        if greedy && !rule.favours() {
            let best = guide::top_k(logits, 1);
            if let Some(&token) = best.first()
                && rule.score(&piece(token)) == 0.0
            {
                return Some((LlamaToken(token as i32), false));
            }
        }
        let candidates = guide::top_k(logits, guide::CANDIDATES);
        let allowed = guide::allowed(logits, &candidates, &piece, rule.as_ref(), &vocab.trie);
        let first = *allowed.first()?;
        let token = if request.sampling.temperature <= 0.0 {
            LlamaToken(first.0 as i32)
        } else {
            let mut data = LlamaTokenDataArray::from_iter(
                allowed
                    .iter()
                    .map(|&(t, logit)| LlamaTokenData::new(LlamaToken(t as i32), logit, 0.0)),
                false,
            );
            data.apply_sampler(sampler);
            data.selected_token().unwrap_or(LlamaToken(first.0 as i32))
        };
        Some((token, candidates.first() != Some(&(token.0 as u32))))
    }
}

impl Worker<'_> {
    /// The rest of [`Worker::generate`] with the draft model (see [`speculative`]), after the
    /// prompt is in the cache.
    fn generate_speculative(
        &mut self,
        request: &Request,
        events: &mpsc::UnboundedSender<Event>,
        tokens: &[LlamaToken],
        reused: usize,
        prompt_ms: u64,
    ) -> Result<Outcome, EngineError> {
        let generating = Instant::now();
        let seq = seq_of(request.slot);
        let max_tokens = (request.max_tokens as usize).min(self.slot_size - tokens.len());
        let mut text = TextStream::new(request);
        if request.guide.is_some() && self.vocab_pieces.is_none() {
            self.vocab_pieces = Some(VocabPieces::new(self.model));
        }
        let Some(draft) = self.draft.as_mut() else {
            return Err(EngineError::Stopped("no draft model".into()));
        };
        // The guide picks the token at a position from the text written before it, exactly
        // as in the plain loop.
        let (model, pieces) = (self.model, self.vocab_pieces.as_ref());
        let mut greedy = LlamaSampler::greedy();
        let mut guide_hook = |generated: &[LlamaToken], logits: &[f32]| {
            let written: Vec<u8> = generated
                .iter()
                .flat_map(|&t| model.vocab().token_to_piece(t, false, None))
                .collect();
            guided_choice(request, pieces, &written, logits, &mut greedy).map(|(t, _)| t)
        };
        let hook: Option<&mut speculative::LogitsHook<'_>> = match request.guide {
            Some(_) => Some(&mut guide_hook),
            None => None,
        };
        let logits_index = self.batch.n_tokens() - 1;
        let target = speculative::Target {
            model: self.model,
            prompt: tokens,
            ctx: &mut self.ctx,
            batch: &mut self.batch,
            cached: &mut self.cached[seq],
            seq,
            stop_tokens: &self.stop_tokens,
            logits_index,
            turn: self.turn.as_mut().filter(|_| !self.interrupted),
        };
        let counts = if max_tokens == 0 {
            speculative::Counts::default()
        } else {
            speculative::generate(target, draft, max_tokens, request, events, &mut text, hook)?
        };
        {
            let mut status = self.shared.status();
            status.generated_tokens += counts.generated as u64;
            status.draft_tokens += counts.drafted as u64;
            status.draft_accepted += counts.accepted as u64;
            status.preempted += counts.yielded as u64;
        }
        if counts.cancelled {
            return Ok(Outcome::Cancelled);
        }
        text.finish(events);
        Ok(Outcome::Done(RequestStats {
            prompt_tokens: tokens.len() as u32,
            reused_tokens: reused as u32,
            generated_tokens: counts.generated as u32,
            prompt_ms,
            generate_ms: generating.elapsed().as_millis() as u64,
            guided_tokens: counts.guided as u32,
        }))
    }
}

/// Decodes `chunk` into sequence `seq` at positions from `start`, with logits only for the
/// prompt's last token (position `total - 1`). `what` names the step in the error.
pub(super) fn decode_chunk(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch<'static>,
    (seq, start, total): (usize, usize, usize),
    chunk: &[LlamaToken],
    what: &str,
) -> Result<(), EngineError> {
    batch.clear();
    for (i, token) in chunk.iter().enumerate() {
        let last = start + i + 1 == total;
        batch
            .add(*token, (start + i) as i32, &[seq as i32], last)
            .map_err(|e| EngineError::Stopped(e.to_string()))?;
    }
    ctx.decode(batch)
        .map_err(|e| EngineError::Stopped(format!("{what} failed: {e}")))
}

fn make_sampler(request: &Request) -> LlamaSampler {
    let s = request.sampling;
    if s.temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    LlamaSampler::chain_simple([
        LlamaSampler::top_p(s.top_p.clamp(0.0, 1.0), 1),
        LlamaSampler::temp(s.temperature),
        LlamaSampler::dist(s.seed),
    ])
}

/// Turns token bytes into streamed text: completes UTF-8 sequences split across tokens, holds
/// back what could still become a stop string, and cuts at stop strings or the predicate.
pub(crate) struct TextStream {
    pending: Vec<u8>,
    text: String,
    sent: usize,
    stop: Vec<String>,
    longest_stop: usize,
    stop_when: Option<super::StopPredicate>,
}

impl TextStream {
    pub(crate) fn new(request: &Request) -> Self {
        let stop: Vec<String> = request
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        Self {
            pending: Vec::new(),
            text: String::new(),
            sent: 0,
            longest_stop: stop.iter().map(String::len).max().unwrap_or(0),
            stop,
            stop_when: request.stop_when.clone(),
        }
    }

    /// Adds bytes; returns true when a stop condition ended the text.
    pub(crate) fn push(&mut self, bytes: &[u8], events: &mpsc::UnboundedSender<Event>) -> bool {
        self.pending.extend_from_slice(bytes);
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    self.text.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe: `valid` bytes were just checked.
                    self.text
                        .push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or(""));
                    match e.error_len() {
                        // Incomplete sequence: wait for the next token's bytes.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        Some(bad) => {
                            self.text.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
        let search_from = floor_char(&self.text, self.sent.saturating_sub(self.longest_stop));
        let mut cut = self
            .stop
            .iter()
            .filter_map(|s| {
                self.text[search_from..]
                    .find(s.as_str())
                    .map(|i| i + search_from)
            })
            .min();
        if let Some(predicate) = &self.stop_when
            && let Some(keep) = predicate(&self.text)
        {
            let keep = floor_char(&self.text, keep.min(self.text.len()));
            cut = Some(cut.map_or(keep, |c| c.min(keep)));
        }
        if let Some(cut) = cut {
            self.text.truncate(cut.max(self.sent));
            return true;
        }
        // With a predicate the kept length is only known at the end: stream nothing until then.
        if self.stop_when.is_none() {
            let hold = self.longest_stop.saturating_sub(1);
            let safe = floor_char(&self.text, self.text.len().saturating_sub(hold));
            if safe > self.sent {
                let _ = events.send(Event::Text(self.text[self.sent..safe].to_string()));
                self.sent = safe;
            }
        }
        false
    }

    pub(crate) fn finish(&mut self, events: &mpsc::UnboundedSender<Event>) {
        if self.text.len() > self.sent {
            let _ = events.send(Event::Text(self.text[self.sent..].to_string()));
            self.sent = self.text.len();
        }
    }
}

fn floor_char(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// Raw llama.cpp speed on this model, measured like `llama-bench`: `pp` prompt tokens decoded
/// in one batch, then `tg` tokens generated one at a time; each test repeated `reps` times.
pub struct RawBench {
    pub pp_tokens_per_s: f64,
    pub tg_tokens_per_s: f64,
}

pub fn raw_bench(
    settings: &EngineSettings,
    pp: usize,
    tg: usize,
    reps: usize,
) -> Result<RawBench, EngineError> {
    let path = resolve_model(settings)?;
    let (model, _) = load_model(
        &path,
        &EngineSettings {
            lora: Vec::new(),
            ..settings.clone()
        },
    )?;
    let threads = settings.threads.unwrap_or_else(physical_cores).max(1) as i32;
    let n_ctx = (pp + tg).max(256) as u32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(pp as u32)
        .with_n_ubatch(pp as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(if settings.flash_attention {
            llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED
        } else {
            llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED
        });
    let mut ctx = model
        .new_context(backend()?, params)
        .map_err(|e| EngineError::Stopped(e.to_string()))?;
    let n_vocab = model.n_vocab().max(2);
    let mut batch = LlamaBatch::new(pp.max(1), 1);
    let decode_err = |e: llama_cpp_2::DecodeError| EngineError::Stopped(e.to_string());
    let add_err = |e: llama_cpp_2::llama_batch::BatchAddError| EngineError::Stopped(e.to_string());
    let mut rng = 12345u64;
    let mut random_token = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        LlamaToken(((rng >> 33) % n_vocab as u64) as i32)
    };
    // Warm-up run, as llama-bench does.
    batch.clear();
    batch.add(random_token(), 0, &[0], true).map_err(add_err)?;
    ctx.decode(&mut batch).map_err(decode_err)?;
    let mut pp_times = BTreeMap::new();
    let mut tg_times = BTreeMap::new();
    for rep in 0..reps {
        ctx.clear_kv_cache();
        batch.clear();
        for i in 0..pp {
            batch
                .add(random_token(), i as i32, &[0], i + 1 == pp)
                .map_err(add_err)?;
        }
        let t = Instant::now();
        ctx.decode(&mut batch).map_err(decode_err)?;
        pp_times.insert(rep, t.elapsed().as_secs_f64());

        ctx.clear_kv_cache();
        let t = Instant::now();
        for i in 0..tg {
            batch.clear();
            batch
                .add(random_token(), i as i32, &[0], true)
                .map_err(add_err)?;
            ctx.decode(&mut batch).map_err(decode_err)?;
        }
        tg_times.insert(rep, t.elapsed().as_secs_f64());
    }
    let mean = |m: &BTreeMap<usize, f64>| m.values().sum::<f64>() / m.len().max(1) as f64;
    Ok(RawBench {
        pp_tokens_per_s: pp as f64 / mean(&pp_times),
        tg_tokens_per_s: tg as f64 / mean(&tg_times),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stop: &[&str]) -> Request {
        Request {
            stop: stop.iter().map(|s| s.to_string()).collect(),
            ..Request::new(Prompt::Chat(Vec::new()), 10, Slot::Chat)
        }
    }

    /// Feeds byte chunks; returns (streamed text, stopped early).
    fn check(stop: &[&str], chunks: &[&[u8]]) -> (String, bool) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut stream = TextStream::new(&request(stop));
        let mut stopped = false;
        for chunk in chunks {
            if stream.push(chunk, &tx) {
                stopped = true;
                break;
            }
        }
        stream.finish(&tx);
        let mut out = String::new();
        while let Ok(Event::Text(t)) = rx.try_recv() {
            out.push_str(&t);
        }
        (out, stopped)
    }

    #[test]
    fn utf8_split_across_tokens_is_joined() {
        let snow = "é☃".as_bytes();
        assert_eq!(
            check(&[], &[&snow[..1], &snow[1..3], &snow[3..]]),
            ("é☃".into(), false)
        );
    }

    #[test]
    fn stop_string_across_token_boundary_keeps_text_before_it() {
        assert_eq!(
            check(&["\ndef "], &[b"x = 1", b"\nd", b"ef", b" g"]),
            ("x = 1".into(), true)
        );
        assert_eq!(check(&["END"], &[b"aEN", b"D"]), ("a".into(), true));
    }
}
