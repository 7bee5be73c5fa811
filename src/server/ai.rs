//! The model side of the server: the config, the engine (loaded once, lazily, off the loop),
//! session memory, the explanation cache, the live inline completion of each document, and the
//! helpers every AI feature shares (progress after 300 ms, one clear message when the model is
//! unavailable).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{self as lsp, NumberOrString};

use crate::config::{Config, ConfigSources};
use crate::engine::{self, Engine, EngineStatus};
use crate::memory::MemoryStore;

/// Work that takes longer than this shows `$/progress`.
const PROGRESS_AFTER: Duration = Duration::from_millis(300);

/// Hover explanations generated at once, at most (see [`Ai::start_explaining`]).
pub const MAX_EXPLAINING: usize = 2;

/// The AI state of a session. Cheap to reach from every handler (`Session::ai`).
#[derive(Default)]
pub struct Ai {
    config: RwLock<Config>,
    /// The first workspace root: the project config and the memory database belong to it.
    root: RwLock<Option<PathBuf>>,
    engine: OnceLock<Result<Arc<dyn Engine>, String>>,
    loading: Mutex<()>,
    /// Async callers (the load started at `initialized`, the first completions) wait here for
    /// one load: without it each loaded its own copy of the model at once (twice the memory).
    async_loading: tokio::sync::Mutex<()>,
    unavailable_reported: AtomicBool,
    memory: Mutex<Option<MemoryStore>>,
    memory_opened: AtomicBool,
    /// Explanations by symbol content key (the persistent copy is in `memory`).
    explanations: DashMap<String, String>,
    /// Explanations being generated, oldest first.
    explaining: Mutex<Vec<(String, CancellationToken)>>,
    /// The live inline completion of each document (by URI), cancelled by the next one.
    completions: DashMap<String, (u64, CancellationToken)>,
    completion_counter: AtomicU64,
    /// Inline completions that reached the model (past debounce and supersession).
    pub completions_generated: AtomicU64,
    progress_counter: AtomicU64,
}

impl Ai {
    /// Loads the config of `roots[0]` with the client's `initializationOptions` on top. A bad
    /// config is reported and the built-in defaults are used.
    pub fn configure(
        &self,
        roots: &[PathBuf],
        options: Option<serde_json::Value>,
    ) -> Option<String> {
        let root = roots.first().cloned();
        let mut sources = ConfigSources::standard(root.as_deref());
        sources.client = options.filter(|o| o.is_object());
        let (config, error) = match Config::load(&sources) {
            Ok(config) => (config, None),
            Err(error) => (Config::default(), Some(format!("pith: config: {error}"))),
        };
        *write(&self.config) = config;
        *write(&self.root) = root;
        error
    }

    /// Applies `workspace/didChangeConfiguration` settings; keeps the last good config on error.
    pub fn reconfigure(&self, options: serde_json::Value) -> Option<String> {
        let root = read(&self.root).clone();
        let mut sources = ConfigSources::standard(root.as_deref());
        sources.client = Some(options).filter(|o| o.is_object());
        let mut config = read(&self.config).clone();
        match config.reload(&sources) {
            Ok(()) => {
                *write(&self.config) = config;
                None
            }
            Err(error) => Some(format!("pith: config: {error}")),
        }
    }

    pub fn config(&self) -> Config {
        read(&self.config).clone()
    }

    /// The engine if it is loaded already: never blocks, never starts a load.
    pub fn loaded(&self) -> Option<Arc<dyn Engine>> {
        self.engine
            .get()
            .and_then(|result| result.as_ref().ok().cloned())
    }

    /// Uses `engine` instead of loading one from the config; false if one was already set.
    pub fn set_engine(&self, engine: Arc<dyn Engine>) -> bool {
        self.engine.set(Ok(engine)).is_ok()
    }

    /// The engine, loading it on first use. Blocking (loading takes a second or two).
    pub fn engine(&self) -> Result<Arc<dyn Engine>, String> {
        if let Some(engine) = self.engine.get() {
            return engine.clone();
        }
        let _one_loader = lock(&self.loading);
        self.engine
            .get_or_init(|| {
                let settings = crate::assist::engine_settings(
                    &self.config(),
                    std::env::var_os("PITH_MODEL").map(PathBuf::from),
                );
                match engine::open(&settings) {
                    Ok(engine) => {
                        tracing::info!(model = %engine.status().model, "model loaded");
                        Ok(engine)
                    }
                    Err(error) => {
                        tracing::error!(%error, "model unavailable");
                        Err(error.to_string())
                    }
                }
            })
            .clone()
    }

    /// The engine from async code: loads it on a blocking thread. On failure, tells the user
    /// once (`window/showMessage`) how to fix it; later calls fail quietly.
    pub async fn engine_for(self: &Arc<Self>, client: &Client) -> Option<Arc<dyn Engine>> {
        let result = match self.engine.get() {
            Some(engine) => engine.clone(),
            None => {
                let _one_async_loader = self.async_loading.lock().await;
                if let Some(engine) = self.engine.get() {
                    return self.report_unavailable(engine.clone(), client).await;
                }
                let config = self.config();
                let loaded = tokio::task::spawn_blocking(move || {
                    let settings = crate::assist::engine_settings(
                        &config,
                        std::env::var_os("PITH_MODEL").map(PathBuf::from),
                    );
                    engine::open(&settings).map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(format!("loading the model failed: {e}")));
                let _one_loader = lock(&self.loading);
                self.engine.get_or_init(|| loaded).clone()
            }
        };
        self.report_unavailable(result, client).await
    }

    /// The engine, or None after telling the user once why there is none.
    async fn report_unavailable(
        &self,
        result: Result<Arc<dyn Engine>, String>,
        client: &Client,
    ) -> Option<Arc<dyn Engine>> {
        match result {
            Ok(engine) => Some(engine),
            Err(error) => {
                if !self.unavailable_reported.swap(true, Ordering::SeqCst) {
                    client
                        .show_message(
                            lsp::MessageType::ERROR,
                            format!(
                                "pith: the model is unavailable, so AI features are off: {error}. \
                                 Run `pith model install`, or set model.path (or PITH_MODEL) to \
                                 a GGUF file, or remote.url to a server; then restart the server."
                            ),
                        )
                        .await;
                }
                None
            }
        }
    }

    /// Engine counters, without loading it.
    pub fn engine_status(&self) -> Option<EngineStatus> {
        match self.engine.get() {
            Some(Ok(engine)) => Some(engine.status()),
            _ => None,
        }
    }

    pub fn engine_error(&self) -> Option<String> {
        match self.engine.get() {
            Some(Err(error)) => Some(error.clone()),
            _ => None,
        }
    }

    /// Runs `work` on the session memory, opened on first use; None when memory is off.
    pub fn with_memory<T>(&self, work: impl FnOnce(&mut MemoryStore) -> T) -> Option<T> {
        let mut memory = lock(&self.memory);
        if memory.is_none() && !self.memory_opened.swap(true, Ordering::SeqCst) {
            let root = read(&self.root).clone()?;
            *memory = MemoryStore::open_or_off(&root);
        }
        memory.as_mut().map(work)
    }

    /// A cached explanation (memory first, then the persistent cache).
    pub fn cached_explanation(&self, key: &str) -> Option<String> {
        if let Some(text) = self.explanations.get(key) {
            return Some(text.clone());
        }
        let stored = self
            .with_memory(|m| m.explanation_get(key).ok().flatten())
            .flatten()?;
        self.explanations.insert(key.to_string(), stored.clone());
        Some(stored)
    }

    pub fn store_explanation(&self, key: &str, text: &str) {
        self.explanations.insert(key.to_string(), text.to_string());
        self.with_memory(|m| {
            if let Err(error) = m.explanation_put(key, text) {
                tracing::warn!(%error, "could not cache the explanation");
            }
        });
    }

    /// Marks `key` as being explained; false if it already is.
    /// A cancellation token for a new explanation of `key`, or `None` when one is already
    /// being generated. Hovering across many symbols must not queue minutes of model time:
    /// beyond [`MAX_EXPLAINING`] the oldest is cancelled (the newest hover is what the user
    /// looks at).
    pub fn start_explaining(&self, key: &str) -> Option<CancellationToken> {
        let mut explaining = self.explaining.lock().unwrap_or_else(|e| e.into_inner());
        if explaining.iter().any(|(k, _)| k == key) {
            return None;
        }
        let token = CancellationToken::new();
        explaining.push((key.to_string(), token.clone()));
        if explaining.len() > MAX_EXPLAINING {
            let (_, oldest) = explaining.remove(0);
            oldest.cancel();
        }
        Some(token)
    }

    pub fn done_explaining(&self, key: &str) {
        let mut explaining = self.explaining.lock().unwrap_or_else(|e| e.into_inner());
        explaining.retain(|(k, _)| k != key);
    }

    /// A new token for the inline completion of `document` (and its number); the previous
    /// one is cancelled.
    pub fn supersede_completion(&self, document: &str) -> (u64, CancellationToken) {
        let number = self.completion_counter.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let previous = self
            .completions
            .insert(document.to_string(), (number, token.clone()));
        if let Some((_, previous)) = previous {
            previous.cancel();
        }
        (number, token)
    }

    /// Forgets completion `number` of `document` if it is still the live one.
    pub fn finish_completion(&self, document: &str, number: u64) {
        self.completions
            .remove_if(document, |_, (live, _)| *live == number);
    }

    /// Where generated markdown (explanations) is written.
    pub fn cache_dir(&self) -> PathBuf {
        crate::dirs::explanations_dir()
    }

    /// Shows `$/progress` for `work` if it runs longer than 300 ms and the client supports it.
    pub async fn with_progress<T>(
        &self,
        client: &Client,
        capabilities: &lsp::ClientCapabilities,
        title: &str,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let supported = capabilities
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false);
        if !supported {
            return work.await;
        }
        tokio::pin!(work);
        tokio::select! {
            value = &mut work => return value,
            _ = tokio::time::sleep(PROGRESS_AFTER) => {}
        }
        let number = self.progress_counter.fetch_add(1, Ordering::Relaxed);
        let token = NumberOrString::String(format!("pith/generate/{number}"));
        let progress = match client.create_work_done_progress(token.clone()).await {
            Ok(()) => Some(client.progress(token, title.to_string()).begin().await),
            Err(_) => None,
        };
        let value = work.await;
        if let Some(progress) = progress {
            progress.finish().await;
        }
        value
    }
}

/// The path of `uri` as a string key.
pub fn document_key(uri: &lsp::Uri) -> String {
    uri.as_str().to_string()
}

/// Writes `markdown` under the cache dir as `<name>.md`; returns the file.
pub fn write_markdown(dir: &Path, name: &str, markdown: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.md"));
    std::fs::write(&path, markdown)?;
    Ok(path)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs an async handler as its own task: a panic in it becomes an `InternalError` reply, and
/// dropping the returned future (`$/cancelRequest`) aborts the task, which drops its
/// cancellation guards and so cancels the model work.
pub async fn spawn_guarded<T: Send + 'static>(
    what: &'static str,
    work: impl std::future::Future<Output = tower_lsp_server::jsonrpc::Result<T>> + Send + 'static,
) -> tower_lsp_server::jsonrpc::Result<T> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let task = tokio::spawn(work);
    let _abort = AbortOnDrop(task.abort_handle());
    match task.await {
        Ok(result) => result,
        Err(error) => {
            let reason = if error.is_panic() {
                "panic".to_string()
            } else {
                "task cancelled".to_string()
            };
            tracing::error!("{what} failed: {reason}");
            Err(tower_lsp_server::jsonrpc::Error {
                code: tower_lsp_server::jsonrpc::ErrorCode::InternalError,
                message: format!("pith: {what} failed: {reason}").into(),
                data: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations_are_deduplicated_and_the_oldest_beyond_the_cap_is_cancelled() {
        let ai = Ai::default();
        let first = ai.start_explaining("a").expect("a starts");
        assert!(ai.start_explaining("a").is_none(), "a is already running");
        let second = ai.start_explaining("b").expect("b starts");
        let third = ai.start_explaining("c").expect("c starts");
        assert!(first.is_cancelled(), "the oldest gives way");
        assert!(!second.is_cancelled() && !third.is_cancelled());
        ai.done_explaining("b");
        assert!(ai.start_explaining("b").is_some(), "b may start again");
        assert!(!third.is_cancelled(), "one slot was free");
    }
}
