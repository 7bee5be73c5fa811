//! A small LSP client for integration tests: it spawns the real `pith serve` binary, frames
//! JSON-RPC messages over its stdio, waits for responses by id with a timeout, answers the
//! server's own requests (registerCapability, workDoneProgress/create, configuration) and keeps
//! every notification it receives. `Fixture` copies `tests/fixtures/workspace` into a tempdir.
//!
//! Use it from a test file with `mod support;`. Everything panics with a readable message on
//! failure (tests want that), including the server's stderr so far.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tower_lsp_server::ls_types::Uri;

/// Tests that run the model take their turn here first. Two llama.cpp engines on the same
/// cores slow each other down far more than twice (their thread pools busy-wait at every
/// barrier): one CI run took ten minutes for a single request that way. Cargo runs test
/// binaries one after another, so one turn per binary is enough. A tokio mutex, because a
/// std one poisons when a test fails and async tests hold it across awaits.
pub static MODEL_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a request may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A running `pith serve` and the client side of its stdio.
pub struct LspClient {
    child: Child,
    /// The server's own XDG folders (see `isolate`), removed with the client.
    _home: tempfile::TempDir,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    incoming: Receiver<Value>,
    next_id: i64,
    /// Responses that arrived while waiting for something else, by id.
    responses: HashMap<i64, Value>,
    /// Every server→client notification, in arrival order.
    notifications: Vec<Value>,
    /// Every server→client request, in arrival order (already answered).
    server_requests: Vec<Value>,
    /// How many of `notifications` are responses with a non-numeric id.
    unnumbered: usize,
    stderr: Arc<Mutex<String>>,
}

impl LspClient {
    /// Spawns `pith serve` with extra arguments and environment variables.
    pub fn spawn_with(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pith"));
        command
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PITH_LOG", "info")
            // The suites' expectations are the default model's: chat stays on it even where
            // the 1.5B is installed (tests/engine.rs covers routing chat to it).
            .env("PITH_CHAT_MODEL", "same");
        let home = tempfile::tempdir().expect("tempdir for the server's XDG folders");
        isolate(&mut command, home.path());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn pith serve");
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr_pipe = child.stderr.take().expect("stderr piped");

        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_sink = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if std::env::var_os("PITH_TEST_STDERR").is_some() {
                    eprint!("[pith] {line}");
                }
                lock(&stderr_sink).push_str(&line);
                line.clear();
            }
        });

        let (sender, incoming) = channel();
        let answer_stdin = stdin.clone();
        std::thread::spawn(move || read_messages(stdout, sender, answer_stdin));

        Self {
            child,
            _home: home,
            stdin,
            incoming,
            next_id: 1,
            responses: HashMap::new(),
            notifications: Vec::new(),
            server_requests: Vec::new(),
            unnumbered: 0,
            stderr,
        }
    }

    pub fn spawn() -> Self {
        Self::spawn_with(&[], &[])
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Writes raw bytes to the server's stdin (for malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut stdin = lock(&self.stdin);
        let stdin = stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).expect("write to server");
        stdin.flush().expect("flush to server");
    }

    /// Frames and sends one JSON-RPC message.
    pub fn send(&mut self, message: &Value) {
        write_message(&self.stdin, message);
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its id without waiting.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// The whole response message for `id` (with `result` or `error`).
    pub fn response(&mut self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(response) = self.responses.remove(&id) {
                return response;
            }
            let message = self.next_message(deadline, &format!("response to request {id}"));
            self.file(message);
        }
    }

    /// Sends a request and waits for its response: `Ok(result)` or `Err(error object)`.
    pub fn try_request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.send_request(method, params);
        let response = self.response(id, TIMEOUT);
        match response.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(response.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// Sends a request and returns its result; fails the test on an error response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        match self.try_request(method, params.clone()) {
            Ok(result) => result,
            Err(error) => panic!(
                "{method} failed: {error}\nparams: {params}\nstderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Waits for a notification of `method` matching `pred` that arrives or arrived (a
    /// notification is returned at most once per call, the first match wins).
    pub fn wait_for_notification(
        &mut self,
        method: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        if let Some(found) = self
            .notifications
            .iter()
            .find(|n| n["method"] == method && pred(&n["params"]))
        {
            return found.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.next_message(deadline, &format!("notification {method}"));
            let matches = message.get("id").is_none()
                && message["method"] == method
                && pred(&message["params"]);
            let found = message.clone();
            self.file(message);
            if matches {
                return found;
            }
        }
    }

    /// Waits for any unsolicited message (notification, or a response with a null id) for which
    /// `pred` holds, looking first at those already received.
    pub fn wait_for_message(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        self.drain();
        if let Some(found) = self.notifications.iter().find(|m| pred(m)) {
            return found.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.next_message(deadline, "a matching message");
            let found = message.clone();
            self.file(message);
            if pred(&found) && self.notifications.last() == Some(&found) {
                return found;
            }
        }
    }

    /// Waits until the server has sent at least one request of `method`; returns their params.
    pub fn wait_for_server_request(&mut self, method: &str, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.server_requests(method);
            if !found.is_empty() {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {method} request from the server\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads whatever arrived so far without blocking.
    pub fn drain(&mut self) {
        while let Ok(message) = self.incoming.try_recv() {
            self.file(message);
        }
    }

    /// Notifications received so far with this method (their params).
    pub fn notifications(&mut self, method: &str) -> Vec<Value> {
        self.drain();
        self.notifications
            .iter()
            .filter(|n| n["method"] == method)
            .map(|n| n["params"].clone())
            .collect()
    }

    /// Server→client requests received so far with this method (their params).
    pub fn server_requests(&mut self, method: &str) -> Vec<Value> {
        self.drain();
        self.server_requests
            .iter()
            .filter(|n| n["method"] == method)
            .map(|n| n["params"].clone())
            .collect()
    }

    /// `initialize` + `initialized` with the given workspace root and client capabilities
    /// (merged over a typical editor's). Returns the `initialize` result.
    pub fn initialize(&mut self, root: Option<&Path>, capabilities: Value) -> Value {
        let mut caps = json!({
            "general": {"positionEncodings": ["utf-16"]},
            "window": {"workDoneProgress": true},
            "workspace": {
                "workspaceFolders": true,
                "didChangeWatchedFiles": {"dynamicRegistration": true},
                "symbol": {},
            },
            "textDocument": {
                "hover": {"contentFormat": ["markdown", "plaintext"]},
                "documentSymbol": {"hierarchicalDocumentSymbolSupport": true},
                "synchronization": {"didSave": true},
            }
        });
        merge(&mut caps, capabilities);
        let folders = root.map(|root| json!([{"uri": file_uri(root), "name": "fixture"}]));
        let result = self.request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "rootUri": root.map(file_uri),
                "capabilities": caps,
                "workspaceFolders": folders,
                "clientInfo": {"name": "pith-tests"},
            }),
        );
        self.notify("initialized", json!({}));
        result
    }

    /// Waits until the server reports the end of a `$/progress` sequence (the workspace scan).
    pub fn wait_for_progress_end(&mut self, timeout: Duration) -> Value {
        self.wait_for_notification(
            "$/progress",
            |params| params["value"]["kind"] == "end",
            timeout,
        )
    }

    pub fn did_open(&mut self, uri: &str, language_id: &str, version: i32, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {
                "uri": uri, "languageId": language_id, "version": version, "text": text
            }}),
        );
    }

    /// `shutdown` then `exit`; returns the process's exit status.
    pub fn shutdown_and_exit(mut self) -> ExitStatus {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        self.wait_exit(TIMEOUT)
    }

    /// Waits for the process to end; fails the test if it does not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit\nstderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id (for /proc measurements and signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many responses arrived whose id is not a number: answers to malformed messages
    /// (id null) or to requests with a string id.
    pub fn unnumbered_count(&mut self) -> usize {
        self.drain();
        self.unnumbered
    }

    /// Those responses themselves (for failure messages).
    pub fn unnumbered_responses(&mut self) -> Vec<Value> {
        self.drain();
        self.notifications
            .iter()
            .filter(|m| m.get("method").is_none())
            .cloned()
            .collect()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(left) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => panic!(
                "timed out waiting for {waiting_for}\nstderr:\n{}",
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "server closed stdout while waiting for {waiting_for}\nstderr:\n{}",
                self.stderr()
            ),
        }
    }

    fn file(&mut self, message: Value) {
        match (message.get("id"), message.get("method")) {
            (Some(id), None) => match id.as_i64() {
                Some(id) => {
                    self.responses.insert(id, message);
                }
                // A response with a null id answers a message the server could not parse.
                None => {
                    self.unnumbered += 1;
                    self.notifications.push(message);
                }
            },
            (Some(_), Some(_)) => self.server_requests.push(message),
            (None, _) => self.notifications.push(message),
        }
    }
}

/// Gives the server XDG config, data, state and cache folders of its own under `home`, so that
/// parallel tests never share or race on `~/.cache/pith` (memories, explanations) and a user's
/// `~/.config/pith` never changes a test. The installed models stay visible through a link, so
/// the default model is found the way a user's server finds it. A test's own `envs` win.
pub fn isolate(command: &mut Command, home: &Path) {
    let models = pith::engine::model::models_dir().filter(|dir| dir.is_dir());
    for (variable, folder) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        let path = home.join(folder);
        std::fs::create_dir_all(&path).expect("create an XDG folder");
        command.env(variable, path);
    }
    if let Some(models) = models {
        std::fs::create_dir_all(home.join("cache/pith")).expect("create the cache folder");
        std::os::unix::fs::symlink(&models, home.join("cache/pith/models"))
            .expect("link the installed models");
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads framed messages from the server, answers its requests at once, forwards everything.
fn read_messages(stdout: impl Read, sender: Sender<Value>, stdin: Arc<Mutex<Option<ChildStdin>>>) {
    let mut reader = BufReader::new(stdout);
    while let Some(message) = read_message(&mut reader) {
        if let (Some(id), Some(method)) = (message.get("id"), message.get("method")) {
            let result = match method.as_str() {
                Some("workspace/configuration") => {
                    let count = message["params"]["items"]
                        .as_array()
                        .map_or(0, |items| items.len());
                    Value::Array(vec![Value::Null; count])
                }
                _ => Value::Null,
            };
            write_message(
                &stdin,
                &json!({"jsonrpc": "2.0", "id": id, "result": result}),
            );
        }
        if sender.send(message).is_err() {
            return;
        }
    }
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    match serde_json::from_slice(&body) {
        Ok(value) => Some(value),
        Err(error) => panic!(
            "server sent invalid JSON ({error}): {}",
            String::from_utf8_lossy(&body)
        ),
    }
}

fn write_message(stdin: &Mutex<Option<ChildStdin>>, message: &Value) {
    let body = message.to_string();
    let mut stdin = lock(stdin);
    if let Some(stdin) = stdin.as_mut() {
        // The server may have exited (exit tests); a failed write then is not the test's concern.
        let _ = write!(stdin, "Content-Length: {}\r\n\r\n{}", body.len(), body);
        let _ = stdin.flush();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Deep-merges `patch` into `base` (objects merge, everything else replaces).
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

/// The `file://` URI of an absolute path, percent-encoded as editors send it.
pub fn file_uri(path: &Path) -> String {
    Uri::from_file_path(path)
        .unwrap_or_else(|| panic!("not an absolute path: {}", path.display()))
        .to_string()
}

/// A private copy of `tests/fixtures/workspace`, removed when dropped.
pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create tempdir");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workspace");
        copy_dir(&source, dir.path());
        Self { dir }
    }

    /// The workspace root (canonical, so it compares equal to what the server reports).
    pub fn root(&self) -> PathBuf {
        self.dir
            .path()
            .canonicalize()
            .expect("canonicalize fixture root")
    }

    /// Absolute path of a file relative to the root.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub fn uri(&self, relative: &str) -> String {
        file_uri(&self.path(relative))
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).expect("read fixture file")
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture dir");
        }
        std::fs::write(path, text).expect("write fixture file");
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// The 0-based (line, UTF-16 column) of the first occurrence of `needle` in `text`, plus
/// `offset` characters: where a test wants to put the cursor.
pub fn position_of(text: &str, needle: &str, offset: usize) -> Value {
    let byte = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let before = &text[..byte];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column: usize = text[line_start..byte]
        .chars()
        .chain(needle.chars().take(offset))
        .map(char::len_utf16)
        .sum();
    json!({"line": line, "character": column})
}
