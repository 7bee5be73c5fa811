//! The remote backend against a real llama.cpp `llama-server` (built once by
//! `scripts/llama-server.sh`, cached under `~/.cache/pith-test/`) serving the default model on a
//! free loopback port: inline completion through `/infill` and `/v1/completions`, ask, a code
//! action and chat through `/v1/chat/completions`, cancellation that frees the server's slot,
//! KV reuse reported by the server, scrubbing checked in the server's own request log, a server
//! that dies mid-stream, restarts or answers 503, and many `pith serve` sharing one server.
//!
//! Without the server binary or the model each test says so loudly and returns.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use pith::engine::{
    ContextFile, Engine, Event, LlamaEngine, Message, Prompt, RemoteApi, RemoteEngine,
    RemoteSettings, Request, RequestStats, Role, Slot,
};
use serde_json::{Value, json};
use support::{LspClient, position_of};

const VERSION: &str = "11434.0.0";
/// Model work on a loaded 2-core machine can take long.
const MODEL_TIMEOUT: Duration = Duration::from_secs(300);

fn loud_skip(why: &str) {
    eprintln!("\n\n*** SKIPPED: {why} ***\n");
}

/// The cached `llama-server` (`PITH_LLAMA_SERVER` overrides), if it is built.
fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PITH_LLAMA_SERVER") {
        return Some(PathBuf::from(path)).filter(|p| p.exists());
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join(format!("pith-test/llama-server-{VERSION}/bin/llama-server")))
        .filter(|p| p.exists())
}

fn model() -> Option<PathBuf> {
    pith::engine::model::default_model_path().filter(|p| p.exists())
}

/// The server binary and the model, or a loud skip.
fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let Some(binary) = server_binary() else {
        loud_skip(
            "llama-server is not built: run scripts/llama-server.sh (scripts/test-deps.sh does)",
        );
        return None;
    };
    let Some(model) = model() else {
        loud_skip("the default model is not installed: run `pith model install`");
        return None;
    };
    Some((binary, model))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A `llama-server` child on a loopback port, its log in a file; killed on drop.
struct LlamaServer {
    binary: PathBuf,
    model: PathBuf,
    parallel: usize,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    child: Option<Child>,
}

impl LlamaServer {
    /// Starts `llama-server -m MODEL --port P --parallel N --cache-reuse 256` and waits until
    /// it has loaded the model.
    fn start(binary: &Path, model: &Path, parallel: usize) -> LlamaServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = LlamaServer {
            binary: binary.to_path_buf(),
            model: model.to_path_buf(),
            parallel,
            port: free_port(),
            log: dir.path().join("llama-server.log"),
            _dir: dir,
            child: None,
        };
        server.spawn();
        server.wait_ready(MODEL_TIMEOUT);
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let err = log.try_clone().expect("clone the log handle");
        // Each slot gets a 4096-token context; -v logs every request body (the request log). One
        // thread: on a machine shared with builds, llama.cpp's spinning thread pool is ~50x slower.
        let context = (4096 * self.parallel).to_string();
        let child = Command::new(&self.binary)
            .args(["-m"])
            .arg(&self.model)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--parallel",
                &self.parallel.to_string(),
                "--cache-reuse",
                "256",
            ])
            .args(["-c", &context, "-t", "1", "--slots", "-v", "--no-webui"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn llama-server");
        self.child = Some(child);
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/health` answers 200.
    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = http_get(self.port, "/health") {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("llama-server exited ({status}):\n{}", self.log_text());
                }
            }
            assert!(
                Instant::now() < deadline,
                "llama-server not ready:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/slots`: how many slots are generating now.
    fn busy_slots(&self) -> usize {
        let Some((200, body)) = http_get(self.port, "/slots") else {
            return usize::MAX;
        };
        let slots: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        slots.as_array().map_or(usize::MAX, |s| {
            s.iter().filter(|s| s["is_processing"] == true).count()
        })
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same server again on the same port (the model loads anew).
    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback proxy in front of the server that keeps every request body as it goes to the
/// server: the request log (llama-server's own request logger is disabled in this version).
/// One request per connection; the answer is relayed byte for byte as it streams.
struct RequestLog {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl RequestLog {
    fn start(upstream: u16) -> RequestLog {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the request log");
        let port = listener.local_addr().expect("addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || relay(client, upstream, &kept));
            }
        });
        RequestLog { port, bodies }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn text(&self) -> String {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

fn relay(client: TcpStream, upstream: u16, bodies: &Mutex<Vec<String>>) -> Option<()> {
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    bodies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(String::from_utf8_lossy(&body).into_owned());
    let mut server = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    server
        .write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .ok()?;
    server.write_all(&body).ok()?;
    let mut client = client;
    std::io::copy(&mut server, &mut client).ok()?;
    client.shutdown(std::net::Shutdown::Both).ok()
}

/// A plain HTTP/1.1 GET on the loopback: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn remote(url: &str, api: RemoteApi) -> RemoteEngine {
    RemoteEngine::new(RemoteSettings {
        url: url.into(),
        api,
        model: String::new(),
        api_key_env: None,
        timeout_ms: 120_000,
    })
    .expect("remote engine")
}

/// Runs a request to the end: the text and the stats, or the error.
fn finish(engine: &dyn Engine, request: Request) -> Result<(String, RequestStats), String> {
    let mut events = engine.submit(request);
    let mut text = String::new();
    loop {
        match events.blocking_recv() {
            Some(Event::Text(piece)) => text.push_str(&piece),
            Some(Event::Done(stats)) => return Ok((text, stats)),
            Some(Event::Cancelled) => return Err("cancelled".into()),
            Some(Event::Failed(error)) => return Err(error.to_string()),
            None => return Err("channel closed".into()),
        }
    }
}

const PRICING: &str = r#"TAX_RATE = 0.2


def apply_tax(amount):
    """Return the amount with tax added."""
    return amount * (1 + TAX_RATE)


def discount(amount, percent):
    return amount * (1 - percent / 100)
"#;

const CART: &str = r#"from shop.pricing import apply_tax, discount


class Cart:
    def __init__(self):
        self.items = []

    def add(self, name, price):
        self.items.append((name, price))

    def total(self):
        
        return apply_tax(subtotal)
"#;

/// A FIM request on the cart with pricing as context; `line` is typed into `total`.
fn cart_fim(line: &str, max_tokens: u32) -> Request {
    let at = CART.find("        \n        return").expect("cursor") + 8;
    let prefix = format!("{}{line}", &CART[..at]);
    Request::new(
        Prompt::Fim {
            repo: "shop".into(),
            context: vec![ContextFile {
                path: "shop/pricing.py".into(),
                text: PRICING.into(),
            }],
            path: "shop/cart.py".into(),
            prefix,
            suffix: CART[at..].into(),
        },
        max_tokens,
        Slot::Completion,
    )
}

/// A chat request that runs for a long time unless stopped: counting to 400.
fn long_chat() -> Request {
    Request::new(
        Prompt::Chat(vec![Message {
            role: Role::User,
            content: "Count from 1 to 400, one number per line, nothing else.".into(),
        }]),
        3000,
        Slot::Chat,
    )
}

/// Waits for the first text of a running request.
fn first_text(events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) {
    match events.blocking_recv() {
        Some(Event::Text(_)) => {}
        other => panic!("no text came first: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The engine against the server

#[test]
fn completion_chat_and_kv_reuse_through_a_real_llama_server() {
    let Some((binary, model)) = prerequisites() else {
        return;
    };
    let _turn = support::MODEL_TURN.blocking_lock();
    let server = LlamaServer::start(&binary, &model, 2);
    let requests = RequestLog::start(server.port);

    // /infill with the context file as input_extra.
    let logged = remote(&requests.url(), RemoteApi::Infill);
    let (text, _) = finish(&logged, cart_fim("", 24)).expect("infill");
    eprintln!("infill: {text:?}");
    assert!(!text.trim().is_empty(), "no suggestion from /infill");
    let body: Value = serde_json::from_str(&requests.text()).expect("one JSON request");
    assert_eq!(
        body["input_extra"][0]["filename"], "shop/pricing.py",
        "{body}"
    );
    assert_eq!(body["input_extra"][0]["text"], PRICING, "{body}");
    assert!(server.log_text().contains("creating infill tasks"));
    let infill = remote(&server.url(), RemoteApi::Infill);

    // /v1/completions with the FIM laid out as text.
    let openai = remote(&server.url(), RemoteApi::Openai);
    let (text, _) = finish(&openai, cart_fim("", 24)).expect("v1/completions");
    eprintln!("completions: {text:?}");
    assert!(
        !text.trim().is_empty(),
        "no suggestion from /v1/completions"
    );

    // Chat, streamed: more than one piece arrives.
    let mut events = openai.submit(Request::new(
        Prompt::Chat(vec![
            Message {
                role: Role::System,
                content: "You are a terse Python expert.".into(),
            },
            Message {
                role: Role::User,
                content: format!("What does apply_tax return?\n\n{PRICING}"),
            },
        ]),
        48,
        Slot::Chat,
    ));
    let mut pieces = 0;
    let mut answer = String::new();
    loop {
        match events.blocking_recv() {
            Some(Event::Text(piece)) => {
                pieces += 1;
                answer.push_str(&piece);
            }
            Some(Event::Done(_)) => break,
            other => panic!("chat: {other:?}"),
        }
    }
    eprintln!("chat ({pieces} pieces): {answer}");
    assert!(pieces > 1, "the chat answer was not streamed");
    assert!(answer.split_whitespace().count() >= 3, "{answer}");

    // KV reuse: a completion one line further in the same function finds most of its prompt
    // in the server's cache. The same two requests on the embedded engine, for comparison.
    let (_, cold) = finish(&infill, cart_fim("items = self.items\n        ", 8)).expect("cold");
    let (_, warm) = finish(
        &infill,
        cart_fim(
            "items = self.items\n        count = len(items)\n        ",
            8,
        ),
    )
    .expect("warm");
    let ratio = |s: RequestStats| f64::from(s.reused_tokens) / f64::from(s.prompt_tokens.max(1));
    eprintln!(
        "server: cold {}/{} cached, warm {}/{} cached ({:.0}%)",
        cold.reused_tokens,
        cold.prompt_tokens,
        warm.reused_tokens,
        warm.prompt_tokens,
        100.0 * ratio(warm)
    );
    assert!(warm.prompt_tokens > 50, "{warm:?}");
    assert!(
        ratio(warm) > 0.6,
        "the server re-decoded the prompt: {warm:?}"
    );
    let embedded = LlamaEngine::open(&pith::engine::EngineSettings {
        model: Some(model.clone()),
        threads: Some(1),
        ..Default::default()
    })
    .expect("embedded engine");
    let _ = finish(&embedded, cart_fim("items = self.items\n        ", 8)).expect("cold");
    let (_, local) = finish(
        &embedded,
        cart_fim(
            "items = self.items\n        count = len(items)\n        ",
            8,
        ),
    )
    .expect("warm");
    eprintln!(
        "kv reuse, warm completion one line further: server {:.0}% of the prompt cached, \
         embedded engine {:.0}% ({}/{})",
        100.0 * ratio(warm),
        100.0 * ratio(local),
        local.reused_tokens,
        local.prompt_tokens
    );
}

#[test]
fn a_cancelled_completion_frees_its_slot_on_the_server() {
    let Some((binary, model)) = prerequisites() else {
        return;
    };
    let _turn = support::MODEL_TURN.blocking_lock();
    let server = LlamaServer::start(&binary, &model, 2);
    let engine = remote(&server.url(), RemoteApi::Infill);
    // Long enough that it would run for a minute if nobody stopped it.
    let request = long_chat();
    let cancel = request.cancel.clone();
    let mut events = engine.submit(request);
    first_text(&mut events);
    assert_eq!(
        server.busy_slots(),
        1,
        "the completion is not running on the server"
    );
    let cancelled_at = Instant::now();
    cancel.cancel();
    let released = loop {
        if server.busy_slots() == 0 {
            break cancelled_at.elapsed();
        }
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(10),
            "the server kept generating after the cancel:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("slot released {} ms after the cancel", released.as_millis());
    assert!(released < Duration::from_secs(3), "{released:?}");
    // pith reports it as cancelled, not as an error.
    loop {
        match events.blocking_recv() {
            Some(Event::Cancelled) => break,
            Some(Event::Text(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_server_that_dies_mid_stream_or_is_loading_gives_clear_errors_then_recovers() {
    let Some((binary, model)) = prerequisites() else {
        return;
    };
    let _turn = support::MODEL_TURN.blocking_lock();
    let mut server = LlamaServer::start(&binary, &model, 1);
    let engine = remote(&server.url(), RemoteApi::Infill);
    finish(&engine, cart_fim("", 4)).expect("the server answers");

    // It dies in the middle of an answer.
    let mut events = engine.submit(long_chat());
    first_text(&mut events);
    server.kill();
    let died = loop {
        match events.blocking_recv() {
            Some(Event::Text(_)) => {}
            Some(Event::Failed(error)) => break error.to_string(),
            other => panic!("the death went unnoticed: {other:?}"),
        }
    };
    eprintln!("died: {died}");
    assert!(died.contains("remote backend"), "{died}");
    assert!(
        died.contains("broke off") || died.contains("ended before"),
        "{died}"
    );

    // It restarts on the same port.
    server.restart();
    // Between binding its port and loading the model, llama-server answers 503.
    let deadline = Instant::now() + Duration::from_secs(60);
    let error = loop {
        if let Some((503, _)) = http_get(server.port, "/health") {
            break finish(&engine, cart_fim("", 4)).expect_err("503 while loading");
        }
        assert!(
            Instant::now() < deadline,
            "the restarted server never answered 503"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    eprintln!("503: {error}");
    assert!(error.contains("remote backend"), "{error}");
    assert!(
        error.contains("503") && error.contains("Loading model"),
        "{error}"
    );
    assert!(error.contains("tries again"), "{error}");
    // The same engine recovers by itself once the model is loaded.
    server.wait_ready(MODEL_TIMEOUT);
    let (text, _) = finish(&engine, cart_fim("", 8)).expect("answers again");
    assert!(!text.trim().is_empty());
}

// ---------------------------------------------------------------------------------------------
// `pith serve` against the server

/// A `pith serve` over a fresh shop workspace whose config points at `url`.
fn session(url: &str, api: &str, extra_files: &[(&str, &str)]) -> (LspClient, support::Fixture) {
    let fixture = support::Fixture::new();
    fixture.write("shop/__init__.py", "");
    fixture.write("shop/pricing.py", PRICING);
    fixture.write("shop/cart.py", CART);
    for (path, text) in extra_files {
        fixture.write(path, text);
    }
    fixture.write(
        ".pith/config.toml",
        &format!("[remote]\nurl = \"{url}\"\napi = \"{api}\"\ntimeout_ms = 120000\n"),
    );
    let cache = fixture.path(".cache");
    let mut client = LspClient::spawn_with(
        &[],
        &[
            ("XDG_CACHE_HOME", cache.to_str().expect("utf-8 path")),
            ("XDG_CONFIG_HOME", cache.to_str().expect("utf-8 path")),
        ],
    );
    client.initialize(
        Some(&fixture.root()),
        json!({"textDocument": {"inlineCompletion": {}},
               "workspace": {"workspaceEdit": {"documentChanges": true}}}),
    );
    client.wait_for_progress_end(Duration::from_secs(120));
    (client, fixture)
}

fn model_request(client: &mut LspClient, method: &str, params: Value) -> Value {
    let id = client.send_request(method, params.clone());
    let response = client.response(id, MODEL_TIMEOUT);
    if let Some(error) = response.get("error") {
        panic!("{method} failed: {error}\nstderr:\n{}", client.stderr());
    }
    response["result"].clone()
}

fn inline(client: &mut LspClient, uri: &str, position: Value) -> Vec<Value> {
    let result = model_request(
        client,
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": uri}, "position": position,
               "context": {"triggerKind": 2}}),
    );
    result["items"].as_array().cloned().unwrap_or_default()
}

fn status(client: &mut LspClient) -> Value {
    client.request(
        "workspace/executeCommand",
        json!({"command": "pith.status", "arguments": []}),
    )
}

const AWS: &str = "AKIAZ7QK3PLM4XNV2RTB";
const GITHUB: &str = "ghp_Zq8v3Lk2Xw9Rt6Yp1Mn4Bc7Df0Gh5Jk8Ls2A";

#[test]
fn editor_features_go_through_the_server_and_secrets_never_reach_it() {
    let Some((binary, model)) = prerequisites() else {
        return;
    };
    let _turn = support::MODEL_TURN.blocking_lock();
    let server = LlamaServer::start(&binary, &model, 2);
    let requests = RequestLog::start(server.port);
    // A planted secret in the workspace (retrieved as context) and in the open buffer.
    let settings = format!(
        "AWS_ACCESS_KEY_ID = \"{AWS}\"\nGITHUB_TOKEN = \"{GITHUB}\"\n\n\ndef tax_region():\n    return \"eu\"\n"
    );
    let cart = CART.replace(
        "class Cart:",
        &format!("from shop.settings import tax_region\n\nDEPLOY_KEY = \"{AWS}\"\n\n\nclass Cart:"),
    );
    let (mut client, fixture) = session(
        &requests.url(),
        "infill",
        &[("shop/settings.py", &settings), ("shop/cart.py", &cart)],
    );
    let uri = fixture.uri("shop/cart.py");
    client.did_open(&uri, "python", 1, &cart);

    // Inline completion through /infill.
    let items = inline(
        &mut client,
        &uri,
        position_of(&cart, "        \n        return", 8),
    );
    assert_eq!(items.len(), 1, "no suggestion: {}", client.stderr());
    eprintln!("inline: {}", items[0]["insertText"]);

    // Ask, through /v1/chat/completions.
    let answer = model_request(
        &mut client,
        "workspace/executeCommand",
        json!({"command": "pith.ask", "arguments": ["Where do the tax region and the deploy key come from?"]}),
    );
    eprintln!("ask: {answer}");
    assert!(
        answer["answer"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .count()
            >= 5
    );

    // A code action (docstring), through /v1/chat/completions.
    let pricing = fixture.uri("shop/pricing.py");
    client.did_open(&pricing, "python", 1, PRICING);
    let at = position_of(PRICING, "percent / 100", 0);
    let listed = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": pricing}, "range": {"start": at, "end": at},
               "context": {"diagnostics": []}}),
    );
    let docstring = listed
        .as_array()
        .and_then(|a| a.iter().find(|a| a["title"] == "pith: Write docstring"))
        .cloned()
        .expect("a docstring action");
    let resolved = model_request(&mut client, "codeAction/resolve", docstring);
    assert!(resolved["edit"].is_object(), "{resolved}");

    // The status names the server, counts the requests, and says what the remote lacks.
    let status = status(&mut client);
    eprintln!("status: {status}");
    assert!(
        status["model"]
            .as_str()
            .unwrap_or("")
            .contains(&requests.url()),
        "{status}"
    );
    assert!(status["completed"].as_u64().unwrap_or(0) >= 3, "{status}");
    assert_eq!(
        status["unavailable"],
        json!(["guided decoding: off (remote)"])
    );

    // What the server received has the prompts, but not the secrets.
    let log = requests.text();
    assert!(
        log.contains("input_prefix") && log.contains("\"messages\""),
        "{log}"
    );
    assert!(
        log.contains("def apply_tax"),
        "the request bodies are not in the log"
    );
    assert!(
        log.contains("def tax_region()"),
        "the settings file was never sent as context, so the check proves nothing"
    );
    for secret in [AWS, GITHUB] {
        assert!(!log.contains(secret), "{secret} reached the server");
    }
    assert!(client.shutdown_and_exit().success());
}

#[test]
fn a_server_that_dies_or_restarts_is_reported_and_recovered_without_restarting_pith() {
    let Some((binary, model)) = prerequisites() else {
        return;
    };
    let _turn = support::MODEL_TURN.blocking_lock();
    let mut server = LlamaServer::start(&binary, &model, 1);
    let (mut client, fixture) = session(&server.url(), "infill", &[]);
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"completion": {"max_tokens": 1500, "debounce_ms": 0}}}),
    );
    let uri = fixture.uri("shop/cart.py");
    client.did_open(&uri, "python", 1, CART);
    let cursor = position_of(CART, "        \n        return", 8);
    assert_eq!(
        inline(&mut client, &uri, cursor.clone()).len(),
        1,
        "{}",
        client.stderr()
    );

    // The server dies while it streams a completion.
    let id = client.send_request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": uri}, "position": cursor.clone(),
               "context": {"triggerKind": 2}}),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.busy_slots() != 1 {
        assert!(Instant::now() < deadline, "the completion never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    let response = client.response(id, MODEL_TIMEOUT);
    assert_eq!(response["result"]["items"], json!([]), "{response}");
    let warning = client.wait_for_notification(
        "window/showMessage",
        |m| {
            m["message"]
                .as_str()
                .unwrap_or("")
                .contains("remote backend")
        },
        Duration::from_secs(30),
    );
    eprintln!("died: {warning}");
    assert_eq!(warning["params"]["type"], 2, "a warning: {warning}");

    // While it is down: empty answers, and no second message for the same outage.
    assert!(inline(&mut client, &uri, cursor.clone()).is_empty());
    let warnings = client
        .notifications("window/showMessage")
        .iter()
        .filter(|m| {
            m["message"]
                .as_str()
                .unwrap_or("")
                .contains("remote backend")
        })
        .count();
    assert_eq!(warnings, 1);

    // It comes back on the same port: the next request is answered, pith was not restarted.
    server.restart();
    server.wait_ready(MODEL_TIMEOUT);
    assert_eq!(
        inline(&mut client, &uri, cursor).len(),
        1,
        "{}",
        client.stderr()
    );
    let back = client.wait_for_notification(
        "window/showMessage",
        |m| {
            m["message"]
                .as_str()
                .unwrap_or("")
                .contains("answers again")
        },
        Duration::from_secs(10),
    );
    assert_eq!(back["params"]["type"], 3, "{back}");
    assert!(client.shutdown_and_exit().success());
}

// ---------------------------------------------------------------------------------------------
// Many editors, one server

/// One scripted editing session: opens its own module, types a function a few characters at a
/// time at human speed asking for a completion after each burst, hovers once (which starts an
/// explanation on the server), and every fourth editor asks a question.
/// Returns the time to each suggestion and every answer it got.
fn editing_session(url: String, editor: usize, completions: usize) -> (Vec<Duration>, Vec<String>) {
    let tag = format!("ledger{editor}");
    let module = format!(
        "def {tag}_total(entries):\n    \"\"\"Sum of the {tag} entries.\"\"\"\n    return sum(entries)\n\n\ndef {tag}_report(entries):\n    \n"
    );
    let path = format!("shop/{tag}.py");
    let (mut client, fixture) = session(&url, "infill", &[(path.as_str(), module.as_str())]);
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"completion": {"max_tokens": 24}, "hover": {"timeout_ms": 0}}}),
    );
    let uri = fixture.uri(&path);
    client.did_open(&uri, "python", 1, &module);
    let mut text = module.clone();
    let mut times = Vec::new();
    let mut answers = Vec::new();
    let typed = [
        format!("total = {tag}_total(entries)\n    "),
        "lines = []\n    ".to_string(),
        "for entry in entries:\n        ".to_string(),
        "lines.append(str(entry))\n    ".to_string(),
        "return \"\\n\".join(lines)\n    ".to_string(),
    ];
    for (n, chunk) in typed.iter().cycle().take(completions).enumerate() {
        let at = text.len() - 1;
        // A fast typist, 10 characters a second; the editor sends a change per keystroke.
        for (k, c) in chunk.char_indices() {
            text.insert(at + k, c);
            client.notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": uri, "version": n * 100 + k + 2},
                       "contentChanges": [{"text": text}]}),
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let before = &text[..text.len() - 1];
        let line = before.matches('\n').count();
        let character = before.rsplit('\n').next().unwrap_or("").len();
        let started = Instant::now();
        let items = inline(
            &mut client,
            &uri,
            json!({"line": line, "character": character}),
        );
        times.push(started.elapsed());
        for item in items {
            answers.push(item["insertText"].as_str().unwrap_or("").to_string());
        }
    }
    let hover_at = position_of(&text, &format!("{tag}_total(entries)\n"), 2);
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": hover_at}),
    );
    answers.push(
        hover["contents"]["value"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    );
    // An occasional question: every fourth editor asks one.
    if editor % 4 == 0 {
        let ask = model_request(
            &mut client,
            "workspace/executeCommand",
            json!({"command": "pith.ask", "arguments": [format!("What does {tag}_report return?")]}),
        );
        answers.push(ask["answer"].as_str().unwrap_or("").to_string());
    }
    let _ = client.shutdown_and_exit();
    (times, answers)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// `editors` sessions of `completions` completions each against one `--parallel 4` server.
fn load_test(editors: usize, completions: usize) {
    let Some((binary, model)) = prerequisites() else {
        return;
    };
    let _turn = support::MODEL_TURN.blocking_lock();
    let server = LlamaServer::start(&binary, &model, 4);
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    for editor in 0..editors {
        let (url, tx) = (server.url(), tx.clone());
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(|| editing_session(url, editor, completions));
            let _ = tx.send((editor, result.map_err(|_| "the session panicked")));
        });
    }
    drop(tx);
    let mut times = Vec::new();
    let mut answered = 0;
    for (editor, result) in rx {
        let (editor_times, answers) = result.unwrap_or_else(|e| panic!("editor {editor}: {e}"));
        times.extend(editor_times);
        answered += answers.iter().filter(|a| !a.trim().is_empty()).count();
        // No answer names another editor's module (each session only knows its own).
        for answer in &answers {
            for other in (0..editors).filter(|&o| o != editor) {
                assert!(
                    !answer.contains(&format!("ledger{other}_")),
                    "editor {editor} got editor {other}'s answer: {answer}"
                );
            }
        }
    }
    times.sort();
    let requests = editors * (completions + 1) + editors.div_ceil(4);
    eprintln!(
        "load test: {editors} editors, {requests} requests ({} completions), {answered} answered \
         with text, time to suggestion p50 {} ms p95 {} ms, {} s in all",
        times.len(),
        percentile(&times, 0.5).as_millis(),
        percentile(&times, 0.95).as_millis(),
        started.elapsed().as_secs()
    );
    assert_eq!(times.len(), editors * completions);
    assert!(answered >= editors, "most requests got nothing: {answered}");
}

/// The bounded version that runs in CI: 8 editors, 3 completions and a hover each, 2 asks.
#[test]
fn eight_editors_share_one_server() {
    load_test(8, 3);
}

/// The bigger run reported in the README (`cargo test --release --test remote_server -- --ignored`).
#[test]
#[ignore]
fn eight_editors_share_one_server_longer() {
    load_test(8, 10);
}
