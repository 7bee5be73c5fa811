//! Two models behind one [`Engine`]: inline completion on one (`[model]`, the fast 0.5B), chat
//! requests — ask, hover explanations, code actions — on another (`[chat]`, e.g. the 1.5B with
//! the 0.5B as its draft). Requests are routed by their [`Slot`].
//!
//! Each model has its own thread, as llama.cpp requires, but the two share a [`Gate`] so that
//! they never compute at the same time (both would use every core) and a completion steps in
//! ahead of the chat model's request between two of its decode steps; the chat model's draft
//! reuses the completion model's weights when it is the same file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::gate::Gate;
use super::llama::{LlamaEngine, OpenOptions};
use super::{Engine, EngineError, EngineSettings, EngineStatus, Event, Request, Slot};

/// Memory the two models take beyond their files: KV caches (two slots each at the default
/// context), llama.cpp's compute buffers and the draft's context.
const OVERHEAD: u64 = 512 << 20;

/// Whether a machine with `total` bytes of memory, `available` of them free now, runs the
/// larger chat model (`large` bytes) beside the completion model (`small`): pith may take at
/// most half the memory with both (the editor, the desktop and the code need the rest), and
/// the larger model must fit in what is free.
pub fn fits(total: u64, available: u64, small: u64, large: u64) -> Result<(), String> {
    let both = small + large + OVERHEAD;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    if total < 2 * both {
        return Err(format!(
            "both models need {:.1} GiB, more than half of this machine's {:.1} GiB",
            gib(both),
            gib(total)
        ));
    }
    if available < large + OVERHEAD {
        return Err(format!(
            "only {:.1} GiB of memory is free, the larger model needs {:.1} GiB",
            gib(available),
            gib(large + OVERHEAD)
        ));
    }
    Ok(())
}

/// (MemTotal, MemAvailable) in bytes, from `/proc/meminfo`.
fn meminfo() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The chat model `[chat] model = "auto"` picks: Qwen2.5-Coder-1.5B when it is installed, the
/// completion model (`completion`, `None` = the default) is the default 0.5B, and the machine
/// has the memory for both ([`fits`]). Otherwise why not: chat then uses the completion model.
pub fn auto_chat(completion: Option<&Path>) -> Result<PathBuf, String> {
    let small = super::model::DEFAULT_MODEL;
    let large = super::model::PUBLISHED_MODELS[1];
    let small_path = small.path().ok_or("no models directory")?;
    if let Some(completion) = completion {
        let (path, _) = super::model::locate(completion);
        if !same_file(&path, &small_path) {
            return Err("the completion model is not the default one".into());
        }
    }
    let large_path = large.path().ok_or("no models directory")?;
    if !large_path.exists() || !small_path.exists() {
        return Err(format!("{} is not installed", large.name));
    }
    both_fit_here()?;
    Ok(large_path)
}

/// [`fits`] for the default model and the published 1.5B on this machine, now.
pub fn both_fit_here() -> Result<(), String> {
    let (small, large) = (
        super::model::DEFAULT_MODEL,
        super::model::PUBLISHED_MODELS[1],
    );
    let (total, available) = meminfo().ok_or("cannot read /proc/meminfo")?;
    fits(total, available, small.size, large.size)
}

/// The draft `[chat] draft = "auto"` picks for the chat model `model`: the default 0.5B for
/// the published 1.5B (same tokenizer), when both are installed.
pub fn auto_draft(model: &Path) -> Option<PathBuf> {
    let large = super::model::PUBLISHED_MODELS[1].path()?;
    let small = super::model::default_model_path()?;
    let (model, _) = super::model::locate(model);
    (same_file(&model, &large) && small.exists()).then_some(small)
}

/// Completion on one engine, chat on the other.
pub struct RoutedEngine {
    completion: Arc<dyn Engine>,
    chat: Arc<dyn Engine>,
}

/// Opens the completion model from `settings` and the chat model from `chat`.
pub fn open(
    settings: &EngineSettings,
    chat: &EngineSettings,
) -> Result<Arc<dyn Engine>, EngineError> {
    let gate = Arc::new(Gate::default());
    let completion = LlamaEngine::open_with(
        &EngineSettings {
            chat: None,
            ..settings.clone()
        },
        OpenOptions {
            gate: Some(gate.clone()),
            ..OpenOptions::default()
        },
    )?;
    let chat = LlamaEngine::open_with(
        &EngineSettings {
            chat: None,
            ..chat.clone()
        },
        OpenOptions {
            loaded: Some(completion.loaded()),
            gate: Some(gate),
        },
    )?;
    Ok(Arc::new(RoutedEngine {
        completion: Arc::new(completion),
        chat: Arc::new(chat),
    }))
}

impl RoutedEngine {
    pub fn new(completion: Arc<dyn Engine>, chat: Arc<dyn Engine>) -> Self {
        Self { completion, chat }
    }
}

impl Engine for RoutedEngine {
    fn submit(&self, request: Request) -> mpsc::UnboundedReceiver<Event> {
        match request.slot {
            Slot::Completion => self.completion.submit(request),
            Slot::Chat => self.chat.submit(request),
        }
    }

    /// The completion model's count: prompts are budgeted with it. Routed models are meant to
    /// share a tokenizer (Qwen2.5-Coder's), where the counts agree.
    fn count_tokens(&self, text: &str) -> usize {
        self.completion.count_tokens(text)
    }

    fn status(&self) -> EngineStatus {
        let (a, b) = (self.completion.status(), self.chat.status());
        EngineStatus {
            model: format!("{} (chat: {})", a.model, b.model),
            loaded: a.loaded && b.loaded,
            queued: a.queued + b.queued,
            running: a.running + b.running,
            completed: a.completed + b.completed,
            cancelled: a.cancelled + b.cancelled,
            superseded: a.superseded + b.superseded,
            prompt_tokens_decoded: a.prompt_tokens_decoded + b.prompt_tokens_decoded,
            prompt_tokens_reused: a.prompt_tokens_reused + b.prompt_tokens_reused,
            generated_tokens: a.generated_tokens + b.generated_tokens,
            draft_tokens: a.draft_tokens + b.draft_tokens,
            draft_accepted: a.draft_accepted + b.draft_accepted,
            preempted: a.preempted + b.preempted,
            last_error: b.last_error.or(a.last_error),
            unavailable: a.unavailable,
        }
    }

    fn model_name(&self, slot: Slot) -> String {
        match slot {
            Slot::Completion => self.completion.model_name(slot),
            Slot::Chat => self.chat.model_name(slot),
        }
    }

    /// The completion model's: completion sizes its context budget by it.
    fn parameters(&self) -> Option<u64> {
        self.completion.parameters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;
    const SMALL: u64 = 491 * MB;
    const LARGE: u64 = 1_117 * MB;

    #[test]
    fn a_pi_with_8_gb_runs_both_models_and_one_with_4_gb_does_not() {
        // MemTotal of a Raspberry Pi 5: a little under its nominal size.
        let pi4 = 4_040 * MB;
        let pi8 = 8_150 * MB;
        let err = fits(pi4, 3_000 * MB, SMALL, LARGE).unwrap_err();
        assert!(err.contains("more than half"), "{err}");
        assert_eq!(fits(pi8, 6_000 * MB, SMALL, LARGE), Ok(()));
        let err = fits(pi8, 1_000 * MB, SMALL, LARGE).unwrap_err();
        assert!(err.contains("free"), "{err}");
    }
}
