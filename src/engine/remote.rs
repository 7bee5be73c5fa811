//! The HTTP backend: an OpenAI-compatible server (llama.cpp `llama-server`, Ollama, vLLM, …).
//!
//! FIM goes to llama-server's `/infill` (context files as `input_extra`) with `api = "infill"`,
//! else to `/v1/completions` with the prompt laid out as Qwen2.5-Coder FIM text; chat goes to
//! `/v1/chat/completions`. Answers are streamed (server-sent events) and read on a worker thread
//! per request, so a slow server never blocks the caller. Stop strings and the stop predicate are
//! applied here as well, so both backends cut text the same way.
//!
//! Privacy: every text part of a prompt passes through `scrub::scrub_text` before it is
//! put in a request body, so credentials in the buffer or the retrieved context never leave the
//! machine (see `scrubbed`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::format::{self, FimLayout};
use super::llama::TextStream;
use super::{
    Engine, EngineError, EngineStatus, Event, Prompt, RemoteApi, RemoteSettings, Request,
    RequestStats, estimate_tokens,
};
use crate::scrub::{self, Finding};

struct Shared {
    status: Mutex<EngineStatus>,
    /// Cancellation of the newest in-flight request per supersede key.
    in_flight: Mutex<HashMap<String, CancellationToken>>,
}

impl Shared {
    fn status(&self) -> MutexGuard<'_, EngineStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A model behind an HTTP server.
pub struct RemoteEngine {
    settings: RemoteSettings,
    agent: ureq::Agent,
    shared: Arc<Shared>,
}

impl RemoteEngine {
    pub fn new(settings: RemoteSettings) -> Result<Self, EngineError> {
        if !(settings.url.starts_with("http://") || settings.url.starts_with("https://")) {
            return Err(EngineError::Remote {
                url: settings.url.clone(),
                reason: "the URL must start with http:// or https://".into(),
            });
        }
        let timeout = Some(Duration::from_millis(settings.timeout_ms.max(1)));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(super::model::tls_config())
            .timeout_connect(timeout)
            .timeout_recv_response(timeout)
            .timeout_per_read(timeout)
            .build()
            .new_agent();
        let name = if settings.model.is_empty() {
            settings.url.clone()
        } else {
            format!("{} at {}", settings.model, settings.url)
        };
        Ok(Self {
            shared: Arc::new(Shared {
                status: Mutex::new(EngineStatus {
                    model: name,
                    loaded: true,
                    ..EngineStatus::default()
                }),
                in_flight: Mutex::new(HashMap::new()),
            }),
            settings,
            agent,
        })
    }
}

impl Engine for RemoteEngine {
    fn submit(&self, request: Request) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(key) = &request.supersede_key {
            let mut in_flight = self
                .shared
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(older) = in_flight.insert(key.clone(), request.cancel.clone()) {
                if !older.is_cancelled() {
                    older.cancel();
                    self.shared.status().superseded += 1;
                }
            }
        }
        self.shared.status().running += 1;
        let settings = self.settings.clone();
        let agent = self.agent.clone();
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("pith-remote".into())
            .spawn(move || {
                let result = stream(&agent, &settings, &request, &tx);
                let mut status = shared.status();
                status.running = status.running.saturating_sub(1);
                match result {
                    Ok(Some(stats)) => {
                        status.completed += 1;
                        status.prompt_tokens_decoded += u64::from(stats.prompt_tokens);
                        status.generated_tokens += u64::from(stats.generated_tokens);
                        let _ = tx.send(Event::Done(stats));
                    }
                    Ok(None) => {
                        status.cancelled += 1;
                        let _ = tx.send(Event::Cancelled);
                    }
                    Err(error) => {
                        status.last_error = Some(error.to_string());
                        let _ = tx.send(Event::Failed(error));
                    }
                }
            });
        if let Err(e) = spawned {
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(Event::Failed(EngineError::Stopped(format!(
                "cannot start a request thread: {e}"
            ))));
            return rx;
        }
        rx
    }

    fn count_tokens(&self, text: &str) -> usize {
        estimate_tokens(text)
    }

    fn status(&self) -> EngineStatus {
        self.shared.status().clone()
    }
}

/// `prompt` with the secrets of every text part (paths included) redacted, and what was found.
fn scrubbed(prompt: &Prompt) -> (Prompt, Vec<Finding>) {
    let mut findings = Vec::new();
    // A context file is scrubbed as a whole file: `.env`-style files are redacted by name too.
    let mut clean = |text: &str, file: Option<&str>| {
        let (clean, found) = match file {
            Some(path) => scrub::scrub_file(std::path::Path::new(path), text),
            None => scrub::scrub_text(text),
        };
        findings.extend(found);
        clean
    };
    let prompt = match prompt {
        Prompt::Fim {
            repo,
            context,
            path,
            prefix,
            suffix,
        } => Prompt::Fim {
            repo: clean(repo, None),
            context: context
                .iter()
                .map(|file| super::ContextFile {
                    text: clean(&file.text, Some(&file.path)),
                    path: clean(&file.path, None),
                })
                .collect(),
            path: clean(path, None),
            prefix: clean(prefix, None),
            suffix: clean(suffix, None),
        },
        Prompt::Chat(messages) => Prompt::Chat(
            messages
                .iter()
                .map(|message| super::Message {
                    role: message.role,
                    content: clean(&message.content, None),
                })
                .collect(),
        ),
    };
    (prompt, findings)
}

/// The endpoint and JSON body for a request, from its prompt after scrubbing.
fn endpoint(settings: &RemoteSettings, request: &Request) -> (String, Value, u32) {
    let base = settings.url.trim_end_matches('/');
    let (prompt, findings) = scrubbed(&request.prompt);
    if !findings.is_empty() {
        let rules: Vec<&str> = findings.iter().map(|finding| finding.rule).collect();
        tracing::debug!(
            redactions = findings.len(),
            ?rules,
            "secrets redacted from a prompt for {base}"
        );
    }
    match &prompt {
        Prompt::Fim {
            repo,
            context,
            path,
            prefix,
            suffix,
        } => match settings.api {
            RemoteApi::Infill => {
                let extra: Vec<Value> = context
                    .iter()
                    .map(|f| json!({"filename": f.path, "text": f.text}))
                    .collect();
                let body = with_sampling(
                    json!({
                        "input_prefix": prefix,
                        "input_suffix": suffix,
                        "input_extra": extra,
                        "n_predict": request.max_tokens,
                        "cache_prompt": true,
                    }),
                    request,
                );
                let tokens = estimate_tokens(prefix) + estimate_tokens(suffix);
                (format!("{base}/infill"), body, tokens as u32)
            }
            RemoteApi::Openai => {
                let text =
                    format::render(&FimLayout::Qwen.layout(repo, context, path, prefix, suffix));
                let body = with_sampling(
                    json!({
                        "model": settings.model,
                        "prompt": text,
                        "max_tokens": request.max_tokens,
                    }),
                    request,
                );
                (
                    format!("{base}/v1/completions"),
                    body,
                    estimate_tokens(&text) as u32,
                )
            }
        },
        Prompt::Chat(messages) => {
            let messages: Vec<Value> = messages
                .iter()
                .map(|m| json!({"role": format::role_name(m.role), "content": m.content}))
                .collect();
            let tokens: usize = messages
                .iter()
                .map(|m| estimate_tokens(m["content"].as_str().unwrap_or("")))
                .sum();
            let body = with_sampling(
                json!({
                    "model": settings.model,
                    "messages": messages,
                    "max_tokens": request.max_tokens,
                }),
                request,
            );
            (format!("{base}/v1/chat/completions"), body, tokens as u32)
        }
    }
}

/// `body` with the fields every endpoint shares: sampling, stop strings, streaming.
fn with_sampling(mut body: Value, request: &Request) -> Value {
    let sampling = request.sampling;
    if let Value::Object(fields) = &mut body {
        fields.insert("temperature".into(), json!(sampling.temperature));
        fields.insert("top_p".into(), json!(sampling.top_p));
        fields.insert("seed".into(), json!(sampling.seed));
        fields.insert("stop".into(), json!(request.stop));
        fields.insert("stream".into(), json!(true));
    }
    body
}

/// Runs one request; `Ok(None)` when cancelled.
fn stream(
    agent: &ureq::Agent,
    settings: &RemoteSettings,
    request: &Request,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<Option<RequestStats>, EngineError> {
    let fail = |reason: String| EngineError::Remote {
        url: settings.url.clone(),
        reason,
    };
    if request.cancel.is_cancelled() {
        return Ok(None);
    }
    let started = Instant::now();
    let (url, body, prompt_tokens) = endpoint(settings, request);
    let mut call = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "text/event-stream");
    if let Some(var) = &settings.api_key_env {
        let key = std::env::var(var)
            .map_err(|_| fail(format!("the API key variable {var} is not set")))?;
        call = call.header("Authorization", &format!("Bearer {key}"));
    }
    let response = call
        .send(body.to_string().as_bytes())
        .map_err(|e| fail(format!("request to {url} failed: {e}")))?;
    let code = response.status();
    if !code.is_success() {
        let mut body = response.into_body();
        let text = body.read_to_string().unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        return Err(fail(format!("{url} answered {code}: {text}")));
    }
    let prompt_ms = started.elapsed().as_millis() as u64;
    let generating = Instant::now();
    let reader = BufReader::new(response.into_body().into_reader());
    let mut text = TextStream::new(request);
    let mut generated = 0u32;
    let mut finished = false;
    for line in reader.lines() {
        if request.cancel.is_cancelled() || events.is_closed() {
            return Ok(None);
        }
        let line = line.map_err(|e| fail(format!("the stream broke off: {e}")))?;
        let Some(data) = line.strip_prefix("data:") else {
            continue; // blank separators, comments, `event:` lines
        };
        let data = data.trim();
        if data == "[DONE]" {
            finished = true;
            break;
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| fail(format!("malformed stream data ({e}): {data:.120}")))?;
        if let Some(error) = chunk.get("error") {
            return Err(fail(format!("server error: {error}")));
        }
        let choice = chunk.get("choices").and_then(|c| c.get(0));
        let piece = choice
            .and_then(|c| c.pointer("/delta/content").or_else(|| c.get("text")))
            .or_else(|| chunk.get("content"))
            .and_then(Value::as_str);
        let ended = chunk.get("stop").and_then(Value::as_bool) == Some(true)
            || choice
                .and_then(|c| c.get("finish_reason"))
                .is_some_and(|r| !r.is_null());
        if piece.is_none() && !ended && choice.is_none() {
            return Err(fail(format!("unexpected stream data: {data:.120}")));
        }
        if let Some(piece) = piece.filter(|p| !p.is_empty()) {
            generated += 1;
            if text.push(piece.as_bytes(), events) {
                finished = true;
                break;
            }
        }
        if ended {
            finished = true;
            break;
        }
    }
    if !finished {
        return Err(fail(
            "the stream ended before the answer was complete".into(),
        ));
    }
    text.finish(events);
    Ok(Some(RequestStats {
        prompt_tokens,
        reused_tokens: 0,
        generated_tokens: generated,
        prompt_ms,
        generate_ms: generating.elapsed().as_millis() as u64,
        guided_tokens: 0,
    }))
}
