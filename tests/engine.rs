//! Engine tests: the embedded llama.cpp backend with the real default model (skipped, loudly,
//! when it is not installed), GGUF validation, and the remote backend against a local server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use pith::engine::{
    ContextFile, Engine, EngineError, EngineSettings, Event, LlamaEngine, Message, Priority,
    Prompt, RemoteApi, RemoteEngine, RemoteSettings, Request, RequestStats, Role, Slot,
};

/// Model tests share one engine and its KV cache: they take turns.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One engine for the whole file: loading the model is the slow part.
fn engine() -> Option<&'static LlamaEngine> {
    static ENGINE: OnceLock<Option<LlamaEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let installed = pith::engine::model::default_model_path().is_some_and(|p| p.exists());
            if !installed {
                eprintln!(
                    "\n\n*** SKIPPED: the default model is not installed; run `pith model install` ***\n"
                );
                return None;
            }
            let settings = EngineSettings {
                context_size: 1024,
                ..EngineSettings::default()
            };
            Some(LlamaEngine::open(&settings).expect("the default model loads"))
        })
        .as_ref()
}

fn request(prompt: Prompt, max_tokens: u32, slot: Slot) -> Request {
    Request::new(prompt, max_tokens, slot)
}

fn chat(text: &str) -> Prompt {
    Prompt::Chat(vec![Message {
        role: Role::User,
        content: text.into(),
    }])
}

/// Collects a request's events: (text, how it ended).
fn run(
    engine: &dyn Engine,
    request: Request,
) -> (String, Result<RequestStats, Option<EngineError>>) {
    let mut events = engine.submit(request);
    let mut text = String::new();
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done(stats) => return (text, Ok(stats)),
            Event::Cancelled => return (text, Err(None)),
            Event::Failed(e) => return (text, Err(Some(e))),
        }
    }
    panic!("the event stream ended without a final event");
}

#[test]
fn chat_template_is_applied_and_answers() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let rendered = engine.render_prompt(&chat("Say hi")).unwrap();
    assert!(
        rendered.contains("<|im_start|>user\nSay hi<|im_end|>"),
        "{rendered}"
    );
    assert!(rendered.ends_with("<|im_start|>assistant\n"), "{rendered}");
    let (text, done) = run(
        engine,
        request(chat("What is 2+2? Answer with one number."), 8, Slot::Chat),
    );
    eprintln!("chat answer: {text:?} {done:?}");
    assert!(text.contains('4'), "{text:?}");
}

#[test]
fn the_default_model_is_small_and_gets_the_small_context_budget() {
    let Some(engine) = engine() else { return };
    // Qwen2.5-Coder-0.5B: llama.cpp counts 630M parameters in its GGUF (the 1.5B: 1.78B).
    let parameters = engine.parameters().unwrap();
    assert!(
        (400_000_000..pith::config::LARGE_MODEL_PARAMETERS).contains(&parameters),
        "{parameters}"
    );
    let completion = pith::config::CompletionConfig::default();
    assert_eq!(
        completion.context_budget(engine.parameters()),
        pith::config::SMALL_MODEL_BUDGET
    );
}

const PY_PREFIX: &str = "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    ";
const PY_SUFFIX: &str = "\n\n\ndef main():\n    print(add(1, 2))\n";

fn fim(prefix: &str, suffix: &str, context: Vec<ContextFile>) -> Prompt {
    Prompt::Fim {
        repo: "demo".into(),
        context,
        path: "demo/calc.py".into(),
        prefix: prefix.into(),
        suffix: suffix.into(),
    }
}

fn parses_as_python(source: &str) -> bool {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .unwrap();
    let tree = parser.parse(source, None).unwrap();
    !tree.root_node().has_error()
}

#[test]
fn fim_completes_a_python_function_body() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let mut req = request(fim(PY_PREFIX, PY_SUFFIX, Vec::new()), 24, Slot::Completion);
    // Stop at the first blank line: the body is one statement here.
    req.stop = vec!["\n\n".into()];
    let (text, done) = run(engine, req);
    let stats = done.expect("completion finishes");
    assert!(!text.trim().is_empty(), "empty completion");
    assert!(text.contains("return"), "{text:?}");
    let file = format!("{PY_PREFIX}{text}{PY_SUFFIX}");
    assert!(parses_as_python(&file), "does not parse:\n{file}");
    assert!(stats.generated_tokens <= 24);
}

#[test]
fn greedy_runs_are_reproducible_and_reuse_the_whole_prompt() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let prompt = fim("def is_even(n):\n    ", "\n", Vec::new());
    let (first, a) = run(engine, request(prompt.clone(), 12, Slot::Completion));
    let (second, b) = run(engine, request(prompt, 12, Slot::Completion));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(first, second);
    assert!(!first.is_empty());
    // Only the last prompt token is decoded again (its logits start generation).
    assert_eq!(b.reused_tokens + 1, b.prompt_tokens, "{a:?} {b:?}");
}

#[test]
fn warm_request_decodes_only_the_new_tokens() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let mut body = String::new();
    for i in 0..30 {
        body.push_str(&format!("def f{i}(x):\n    return x + {i}\n\n"));
    }
    let cold = format!("{body}def g(y):\n    ");
    let warm = format!("{body}def g(y, z):\n    ");
    let before = engine.status();
    let (_, cold_stats) = run(
        engine,
        request(fim(&cold, "\n", Vec::new()), 2, Slot::Completion),
    );
    let (_, warm_stats) = run(
        engine,
        request(fim(&warm, "\n", Vec::new()), 2, Slot::Completion),
    );
    let (cold_stats, warm_stats) = (cold_stats.unwrap(), warm_stats.unwrap());
    assert!(cold_stats.prompt_tokens > 300, "{cold_stats:?}");
    let decoded = warm_stats.prompt_tokens - warm_stats.reused_tokens;
    assert!(
        decoded <= 12,
        "warm decoded {decoded} tokens: {warm_stats:?}"
    );
    let after = engine.status();
    assert!(
        after.prompt_tokens_reused - before.prompt_tokens_reused
            >= u64::from(warm_stats.reused_tokens)
    );
    assert!(after.prompt_tokens_decoded > before.prompt_tokens_decoded);
}

#[test]
fn a_context_file_dropped_from_the_prompt_moves_the_cache_back() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let file = |name: &str, n: usize| {
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!("def {name}_{i}(x):\n    return x * {i}\n\n"));
        }
        ContextFile {
            path: format!("demo/{name}.py"),
            text,
        }
    };
    let (a, b) = (file("alpha", 12), file("beta", 20));
    let prefix = "from demo.beta import beta_3\n\ndef twice(y):\n    return ";
    let (_, cold) = run(
        engine,
        request(fim(prefix, "\n", vec![a, b.clone()]), 4, Slot::Completion),
    );
    let (text, warm) = run(
        engine,
        request(fim(prefix, "\n", vec![b]), 4, Slot::Completion),
    );
    let (cold, warm) = (cold.unwrap(), warm.unwrap());
    let decoded = warm.prompt_tokens - warm.reused_tokens;
    assert!(cold.prompt_tokens > 300, "{cold:?}");
    assert!(decoded <= 16, "decoded {decoded} tokens again: {warm:?}");
    assert!(!text.trim().is_empty());
}

#[test]
fn cancellation_stops_within_one_decode_step() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let req = request(
        chat("Count from 1 to 200, one number per line."),
        300,
        Slot::Chat,
    );
    let cancel = req.cancel.clone();
    let mut events = engine.submit(req);
    let mut after_cancel = 0;
    let mut cancelled = false;
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Text(_) if cancel.is_cancelled() => after_cancel += 1,
            Event::Text(_) => cancel.cancel(),
            Event::Cancelled => {
                cancelled = true;
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(cancelled);
    assert!(after_cancel <= 1, "{after_cancel} tokens after cancel");
}

#[test]
fn superseded_queued_request_never_reaches_the_model() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let mut busy = request(chat("Write a long story about a cat."), 200, Slot::Chat);
    // Of the completions' own priority, so that they wait in the queue instead of preempting it.
    busy.priority = Priority::Completion;
    let busy_cancel = busy.cancel.clone();
    let mut busy_events = engine.submit(busy);
    // Wait until the long request is running.
    assert!(matches!(busy_events.blocking_recv(), Some(Event::Text(_))));
    let before = engine.status().superseded;
    let keyed = |text: &str| {
        let mut r = request(fim(text, "\n", Vec::new()), 2, Slot::Completion);
        r.priority = Priority::Completion;
        r.supersede_key = Some("file:///demo.py".into());
        r
    };
    let mut old = engine.submit(keyed("def a():\n    "));
    let mut new = engine.submit(keyed("def b():\n    "));
    assert!(matches!(old.blocking_recv(), Some(Event::Cancelled)));
    assert_eq!(engine.status().superseded, before + 1);
    busy_cancel.cancel();
    let mut done = false;
    while let Some(event) = new.blocking_recv() {
        if let Event::Done(_) = event {
            done = true;
        }
    }
    assert!(done, "the newest request runs");
    while busy_events.blocking_recv().is_some() {}
}

/// A cold completion request (its own repo name: nothing of it is in the KV cache).
fn cold_completion(repo: &str) -> Request {
    let prompt = Prompt::Fim {
        repo: repo.into(),
        context: Vec::new(),
        path: "calc.py".into(),
        prefix: PY_PREFIX.into(),
        suffix: PY_SUFFIX.into(),
    };
    let mut req = request(prompt, 16, Slot::Completion);
    req.priority = Priority::Completion;
    req.stop = vec!["\n\n".into()];
    req
}

/// Issue 19: a completion sent while an explanation generates does not wait behind it. It
/// runs at once in its own slot, and the explanation then resumes exactly where it was (greedy:
/// the same text as without the interruption).
#[test]
fn a_completion_preempts_a_running_explanation_which_then_resumes_unchanged() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    completion_preempts_explanation(engine);
}

/// The same with chat on the 1.5B and completion on the 0.5B (`[chat] model = "auto"` where
/// both are installed): the two models take turns on the CPU, and the explanation steps aside
/// for the completion between two of its decode steps.
#[test]
fn a_completion_on_the_small_model_preempts_the_larger_models_explanation() {
    let Some((base, large)) = both_models(1024) else {
        return;
    };
    let _turn = serial();
    let routed = pith::engine::open(&EngineSettings {
        chat: Some(Box::new(EngineSettings {
            model: Some(large),
            ..base.clone()
        })),
        ..base.clone()
    })
    .expect("both models load");
    completion_preempts_explanation(&*routed);
}

fn completion_preempts_explanation(engine: &dyn Engine) {
    let explanation = || {
        let mut req = request(
            chat("Count from 1 to 60, one number per line."),
            120,
            Slot::Chat,
        );
        req.priority = Priority::Interactive;
        req
    };
    let started = Instant::now();
    let (alone_text, alone) = run(engine, explanation());
    let alone = alone.expect("the explanation finishes");
    let explanation_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let (_, done) = run(engine, cold_completion("alone"));
    done.expect("the completion finishes");
    let completion_alone_ms = started.elapsed().as_millis();

    let preempted_before = engine.status().preempted;
    let mut chat_events = engine.submit(explanation());
    // Wait until the explanation is generating.
    let mut chat_text = match chat_events.blocking_recv() {
        Some(Event::Text(text)) => text,
        other => panic!("the explanation did not start: {other:?}"),
    };
    let submitted = Instant::now();
    let mut completion_events = engine.submit(cold_completion("during"));
    let mut completion_done = None;
    while let Some(event) = completion_events.blocking_recv() {
        match event {
            Event::Text(_) => {}
            Event::Done(stats) => {
                completion_done = Some(stats);
                break;
            }
            other => panic!("the completion ended with {other:?}"),
        }
    }
    let completion_during_ms = submitted.elapsed().as_millis();
    assert!(completion_done.is_some());
    // The explanation had not finished when the completion did: without preemption its end
    // would already be in the channel, since the completion would have waited for it.
    let mut waiting = false;
    let (chat_stats, ended_before_completion) = loop {
        let event = if waiting {
            chat_events.blocking_recv()
        } else {
            match chat_events.try_recv() {
                Ok(event) => Some(event),
                Err(_) => {
                    waiting = true;
                    continue;
                }
            }
        };
        match event {
            Some(Event::Text(text)) => chat_text.push_str(&text),
            Some(Event::Done(stats)) => break (stats, !waiting),
            other => panic!("the explanation ended with {other:?}"),
        }
    };
    assert!(
        !ended_before_completion,
        "the completion waited for the explanation to end"
    );
    assert_eq!(engine.status().preempted, preempted_before + 1);
    assert_eq!(chat_text, alone_text, "the explanation resumed differently");
    assert_eq!(chat_stats.generated_tokens, alone.generated_tokens);
    eprintln!(
        "completion latency: alone {completion_alone_ms} ms, during an explanation \
         {completion_during_ms} ms (the explanation alone takes {explanation_ms} ms)"
    );
}

/// A hover's explanation is background work: an ask for the same (chat) slot does not wait
/// for it to end; it ends as cancelled at the next decode step, and the ask runs at once.
#[test]
fn a_background_explanation_gives_the_chat_slot_to_an_ask() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let mut hover = request(
        chat("Count from 1 to 60, one number per line."),
        120,
        Slot::Chat,
    );
    hover.priority = Priority::Background;
    let mut hover_events = engine.submit(hover);
    match hover_events.blocking_recv() {
        Some(Event::Text(_)) => {}
        other => panic!("the explanation did not start: {other:?}"),
    }
    let (answer, ask) = run(engine, request(chat("Say hi."), 8, Slot::Chat));
    ask.expect("the ask finishes");
    assert!(!answer.is_empty());
    let mut hover_text = String::new();
    let ended = loop {
        match hover_events.blocking_recv() {
            Some(Event::Text(text)) => hover_text.push_str(&text),
            other => break other,
        }
    };
    assert!(
        matches!(ended, Some(Event::Cancelled)),
        "the explanation should have given way, it ended with {ended:?} after {hover_text:?}"
    );
    // An explanation nobody outranks runs to its end.
    let mut alone = request(chat("Say hello."), 8, Slot::Chat);
    alone.priority = Priority::Background;
    let (_, done) = run(engine, alone);
    done.expect("a background request alone finishes");
}

/// A chat prompt with the project's system prompt first, as ask and explanations send it.
fn with_system(question: &str) -> Prompt {
    Prompt::Chat(vec![
        Message {
            role: Role::System,
            content: "You are a coding assistant working inside the user's own project. Answer \
                      briefly and precisely. Use the project's code shown to you; do not invent \
                      APIs. Style rules of this project: snake_case names, type hints on every \
                      function, no wildcard imports, docstrings in the imperative mood."
                .into(),
        },
        Message {
            role: Role::User,
            content: question.into(),
        },
    ])
}

/// The next process starts where the last one stopped: the chat slot's cache (system prompt
/// first) is kept on disk, so a second `pith ask` does not decode the system prompt again. A
/// kept file llama.cpp cannot read is dropped, and the request runs cold.
#[test]
fn a_new_engine_reuses_the_chat_prefix_the_last_one_kept() {
    let Some(model) = pith::engine::model::default_model_path().filter(|p| p.exists()) else {
        return;
    };
    let _turn = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = EngineSettings {
        model: Some(model),
        context_size: 1024,
        kv_dir: Some(dir.path().to_path_buf()),
        ..EngineSettings::default()
    };
    let ask = |engine: &LlamaEngine, question: &str| {
        let (_, stats) = run(engine, request(with_system(question), 4, Slot::Chat));
        stats.expect("the answer finishes")
    };
    let first = {
        let engine = LlamaEngine::open(&settings).expect("the model loads");
        ask(&engine, "What does `parse_header` return?")
    };
    assert_eq!(first.reused_tokens, 0, "nothing was kept yet");
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the folder exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "kv"))
        .collect();
    assert_eq!(kept.len(), 1, "one slot had tokens: {kept:?}");
    let modified = || {
        std::fs::metadata(&kept[0])
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let written = modified();
    drop(LlamaEngine::open(&settings).expect("the model loads"));
    assert_eq!(
        modified(),
        written,
        "a restored slot nobody used is not written again"
    );
    let second = {
        let engine = LlamaEngine::open(&settings).expect("the model loads");
        ask(&engine, "Where is the retry limit set?")
    };
    assert!(
        second.reused_tokens >= 40,
        "the system prompt should come from the kept cache: {second:?}"
    );
    assert!(second.reused_tokens < second.prompt_tokens);

    std::fs::write(&kept[0], b"not a llama.cpp state file").expect("write");
    let engine = LlamaEngine::open(&settings).expect("a bad kept cache does not stop the model");
    let cold = ask(&engine, "Where is the retry limit set?");
    assert_eq!(cold.reused_tokens, 0);
}

#[test]
fn prompt_larger_than_the_context_is_a_clear_error() {
    let _turn = serial();
    let Some(engine) = engine() else { return };
    let huge = "word ".repeat(3000);
    let (_, done) = run(engine, request(chat(&huge), 4, Slot::Chat));
    match done {
        Err(Some(EngineError::PromptTooLong { tokens, limit })) => {
            assert!(tokens > limit, "{tokens} {limit}")
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    assert!(engine.count_tokens(&huge) > 1024);
}

fn open_model(path: &std::path::Path) -> Result<LlamaEngine, EngineError> {
    LlamaEngine::open(&EngineSettings {
        model: Some(path.to_path_buf()),
        context_size: 256,
        ..EngineSettings::default()
    })
}

#[test]
fn missing_corrupt_and_truncated_models_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = open_model(&dir.path().join("absent.gguf")).err().unwrap();
    assert!(missing.to_string().contains("no such file"), "{missing}");

    let corrupt = dir.path().join("corrupt.gguf");
    std::fs::write(&corrupt, vec![7u8; 4096]).unwrap();
    let err = open_model(&corrupt).err().unwrap();
    assert!(matches!(err, EngineError::BadModel { .. }), "{err}");
    assert!(err.to_string().contains("bad magic"), "{err}");

    let unknown = open_model(std::path::Path::new("qwen2.5-coder-7b"))
        .err()
        .unwrap();
    assert!(unknown.to_string().contains("no such file"), "{unknown}");

    let Some(real) = pith::engine::model::default_model_path().filter(|p| p.exists()) else {
        eprintln!("*** SKIPPED truncated-model case: default model not installed ***");
        return;
    };
    // A published model's name stands for its installed file.
    let by_name = pith::engine::llama::resolve_model(&EngineSettings {
        model: Some("qwen2.5-coder-0.5b".into()),
        ..EngineSettings::default()
    });
    assert_eq!(by_name.unwrap(), real);
    let truncated = dir.path().join("truncated.gguf");
    let mut bytes = Vec::new();
    std::fs::File::open(&real)
        .unwrap()
        .take(50 << 20)
        .read_to_end(&mut bytes)
        .unwrap();
    std::fs::write(&truncated, bytes).unwrap();
    let err = open_model(&truncated).err().unwrap();
    assert!(err.to_string().contains("truncated"), "{err}");
}

/// The (path, JSON body) of each request a test server saw.
type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A one-shot HTTP server: answers each connection with `respond(path, body)`; returns the URL
/// and the requests it saw.
fn serve(respond: impl Fn(&str, &serde_json::Value) -> String + Send + 'static) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let answer = respond(&path, &body);
            log.lock().unwrap().push((path, body));
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            );
        }
    });
    (url, seen)
}

fn remote(url: &str, api: RemoteApi) -> RemoteEngine {
    RemoteEngine::new(RemoteSettings {
        url: url.into(),
        api,
        model: "test-model".into(),
        api_key_env: None,
        timeout_ms: 2000,
    })
    .unwrap()
}

fn sse(chunks: &[serde_json::Value], done: bool) -> String {
    let mut out: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out
}

#[test]
fn remote_chat_streams_openai_deltas() {
    let (url, seen) = serve(|_, _| {
        sse(
            &[
                serde_json::json!({"choices": [{"delta": {"content": "Hel"}, "finish_reason": null}]}),
                serde_json::json!({"choices": [{"delta": {"content": "lo"}, "finish_reason": null}]}),
                serde_json::json!({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
            ],
            true,
        )
    });
    let engine = remote(&url, RemoteApi::Openai);
    let (text, done) = run(&engine, request(chat("hi"), 16, Slot::Chat));
    assert_eq!(text, "Hello");
    assert_eq!(done.unwrap().generated_tokens, 2);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "/v1/chat/completions");
    assert_eq!(seen[0].1["messages"][0]["content"], "hi");
    assert_eq!(seen[0].1["stream"], true);
}

#[test]
fn remote_fim_uses_infill_with_context_files() {
    let (url, seen) = serve(|_, _| {
        sse(
            &[
                serde_json::json!({"content": "return a", "stop": false}),
                serde_json::json!({"content": " + b", "stop": false}),
                serde_json::json!({"content": "", "stop": true}),
            ],
            false,
        )
    });
    let engine = remote(&url, RemoteApi::Infill);
    let context = vec![ContextFile {
        path: "demo/util.py".into(),
        text: "X = 1\n".into(),
    }];
    let (text, done) = run(
        &engine,
        request(fim(PY_PREFIX, PY_SUFFIX, context), 16, Slot::Completion),
    );
    assert_eq!(text, "return a + b");
    done.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "/infill");
    assert_eq!(seen[0].1["input_prefix"], PY_PREFIX);
    assert_eq!(seen[0].1["input_extra"][0]["filename"], "demo/util.py");
    assert_eq!(seen[0].1["cache_prompt"], true);
    assert_eq!(seen[0].1["stream"], true);
    assert_eq!(seen[0].1["n_predict"], 16);
}

#[test]
fn remote_fim_over_completions_lays_out_the_prompt_and_applies_stops() {
    let (url, seen) = serve(|_, _| {
        sse(
            &[
                serde_json::json!({"choices": [{"text": "return a + b\n", "finish_reason": null}]}),
                serde_json::json!({"choices": [{"text": "\ndef other", "finish_reason": null}]}),
            ],
            true,
        )
    });
    let engine = remote(&url, RemoteApi::Openai);
    let mut req = request(fim(PY_PREFIX, PY_SUFFIX, Vec::new()), 16, Slot::Completion);
    req.stop = vec!["\n\n".into()];
    let (text, _) = run(&engine, req);
    assert_eq!(text, "return a + b");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "/v1/completions");
    let prompt = seen[0].1["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("<|fim_prefix|>def add"), "{prompt}");
    assert!(prompt.ends_with("<|fim_middle|>"), "{prompt}");
}

/// Secrets of three kinds, assembled at run time so that no scanner flags this file.
fn planted_secrets() -> Vec<String> {
    vec![
        format!("ghp_{}", "x7Kq".repeat(9)),
        format!("AKIA{}", "Q7ZX".repeat(4)),
        format!("hunter{}", 42 * 1009),
    ]
}

#[test]
fn remote_prompts_never_carry_secrets() {
    let secrets = planted_secrets();
    let leaky = |where_: &str| {
        format!(
            "# {where_}\nTOKEN = \"{}\"\nAWS_ID = \"{}\"\ndb_password = \"{}\"\n",
            secrets[0], secrets[1], secrets[2]
        )
    };
    let answer = |path: &str, _: &serde_json::Value| match path {
        "/infill" => sse(&[serde_json::json!({"content": "", "stop": true})], false),
        "/v1/completions" => sse(
            &[serde_json::json!({"choices": [{"text": "", "finish_reason": "stop"}]})],
            true,
        ),
        _ => sse(
            &[serde_json::json!({"choices": [{"delta": {}, "finish_reason": "stop"}]})],
            true,
        ),
    };
    let (url, seen) = serve(answer);
    let fim_prompt = || {
        fim(
            &format!("{}{PY_PREFIX}", leaky("prefix")),
            &format!("{PY_SUFFIX}{}", leaky("suffix")),
            vec![ContextFile {
                path: "demo/settings.py".into(),
                text: leaky("context"),
            }],
        )
    };
    for api in [RemoteApi::Infill, RemoteApi::Openai] {
        let (_, done) = run(
            &remote(&url, api),
            request(fim_prompt(), 8, Slot::Completion),
        );
        done.unwrap();
    }
    let (_, done) = run(
        &remote(&url, RemoteApi::Openai),
        request(chat(&leaky("question")), 8, Slot::Chat),
    );
    done.unwrap();

    let seen = seen.lock().unwrap();
    let paths: Vec<&str> = seen.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        ["/infill", "/v1/completions", "/v1/chat/completions"]
    );
    for (path, body) in seen.iter() {
        let body = body.to_string();
        for secret in &secrets {
            assert!(!body.contains(secret.as_str()), "{path} received a secret");
        }
        // Redacted, not dropped: the code around the secrets still arrives.
        assert!(body.contains("<REDACTED:github_token>"), "{path}: {body}");
        assert!(body.contains("<REDACTED:aws_access_key>"), "{path}: {body}");
        assert!(
            body.contains("<REDACTED:password_assignment>"),
            "{path}: {body}"
        );
    }
    assert!(
        seen[0].1["input_prefix"]
            .as_str()
            .unwrap()
            .contains("def add")
    );
    assert!(
        seen[0].1["input_suffix"]
            .as_str()
            .unwrap()
            .contains("def main")
    );
    let context = seen[0].1["input_extra"][0]["text"].as_str().unwrap();
    assert!(
        context.starts_with("# context\nTOKEN = \"<REDACTED"),
        "{context}"
    );
}

#[test]
fn remote_server_down_or_malformed_is_a_remote_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let engine = remote(&format!("http://127.0.0.1:{port}"), RemoteApi::Openai);
    let started = Instant::now();
    let (_, done) = run(&engine, request(chat("hi"), 4, Slot::Chat));
    assert!(
        matches!(done, Err(Some(EngineError::Remote { .. }))),
        "{done:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let (url, _) = serve(|_, _| "data: {not json\n\n".into());
    let (_, done) = run(
        &remote(&url, RemoteApi::Openai),
        request(chat("hi"), 4, Slot::Chat),
    );
    match done {
        Err(Some(EngineError::Remote { reason, .. })) => {
            assert!(reason.contains("malformed"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    let (url, _) = serve(|_, _| {
        sse(
            &[serde_json::json!({"choices": [{"delta": {"content": "x"}}]})],
            false,
        )
    });
    let (_, done) = run(
        &remote(&url, RemoteApi::Openai),
        request(chat("hi"), 4, Slot::Chat),
    );
    match done {
        Err(Some(EngineError::Remote { reason, .. })) => {
            assert!(reason.contains("ended"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// A minimal GGUF: string metadata and one small F32 tensor.
fn tiny_gguf(metadata: &[(&str, &str)]) -> Vec<u8> {
    let string = |b: &mut Vec<u8>, s: &str| {
        b.extend_from_slice(&(s.len() as u64).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
    };
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        string(&mut b, key);
        b.extend_from_slice(&8u32.to_le_bytes());
        string(&mut b, value);
    }
    string(&mut b, "w");
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&4u64.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend_from_slice(&[0u8; 16]);
    b
}

#[test]
fn lora_for_another_architecture_is_a_clear_error() {
    let Some(model) = pith::engine::model::default_model_path().filter(|p| p.exists()) else {
        eprintln!("*** SKIPPED: default model not installed ***");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("llama-adapter.gguf");
    std::fs::write(
        &adapter,
        tiny_gguf(&[
            ("general.architecture", "llama"),
            ("general.type", "adapter"),
        ]),
    )
    .unwrap();
    let settings = EngineSettings {
        model: Some(model),
        context_size: 256,
        lora: vec![pith::engine::LoraSettings {
            path: adapter,
            scale: 1.0,
        }],
        ..EngineSettings::default()
    };
    let err = LlamaEngine::open(&settings)
        .err()
        .expect("the adapter is refused");
    let text = err.to_string();
    assert!(
        text.contains("\"llama\"") && text.contains("\"qwen2\""),
        "{text}"
    );
}

#[test]
fn a_draft_with_another_tokenizer_is_refused() {
    let Some(model) = pith::engine::model::default_model_path().filter(|p| p.exists()) else {
        eprintln!("*** SKIPPED: default model not installed ***");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let draft = dir.path().join("llama-draft.gguf");
    std::fs::write(
        &draft,
        tiny_gguf(&[
            ("general.architecture", "llama"),
            ("tokenizer.ggml.model", "llama"),
            ("tokenizer.ggml.pre", "llama-bpe"),
        ]),
    )
    .unwrap();
    let settings = EngineSettings {
        model: Some(model),
        context_size: 256,
        draft: Some(draft.clone()),
        ..EngineSettings::default()
    };
    let err = LlamaEngine::open(&settings)
        .err()
        .expect("the draft is refused");
    let text = err.to_string();
    assert!(
        text.contains(&draft.display().to_string())
            && text.contains("cannot be the draft model")
            && text.contains("tokenizer.ggml.model: \"llama\" in the draft, \"gpt2\""),
        "{text}"
    );
}

/// The published 1.5B, installed by `scripts/test-deps.sh`.
/// Settings for the default model with `context_size`, and the 1.5B's path, when both are
/// installed.
fn both_models(context_size: u32) -> Option<(EngineSettings, std::path::PathBuf)> {
    let small = pith::engine::model::default_model_path().filter(|p| p.exists())?;
    let large = larger_model()?;
    let base = EngineSettings {
        model: Some(small),
        context_size,
        ..EngineSettings::default()
    };
    Some((base, large))
}

fn larger_model() -> Option<std::path::PathBuf> {
    let path = pith::engine::model::PUBLISHED_MODELS[1]
        .path()
        .filter(|p| p.exists());
    if path.is_none() {
        eprintln!(
            "\n\n*** SKIPPED: qwen2.5-coder-1.5b is not installed; run `pith model install \
             qwen2.5-coder-1.5b` (scripts/test-deps.sh does) ***\n"
        );
    }
    path
}

#[test]
fn chat_routed_to_the_larger_model_with_a_draft_equals_its_own_greedy_output() {
    let Some((base, large)) = both_models(512) else {
        return;
    };
    let _turn = serial();
    let large_settings = EngineSettings {
        model: Some(large.clone()),
        ..base.clone()
    };
    // Completion on the 0.5B, chat on the 1.5B drafted by the 0.5B (its weights shared).
    let routed = pith::engine::open(&EngineSettings {
        chat: Some(Box::new(EngineSettings {
            draft: Some(base.model.clone().unwrap()),
            ..large_settings.clone()
        })),
        ..base.clone()
    })
    .expect("both models load");
    let large_alone = LlamaEngine::open(&large_settings).expect("the 1.5B loads");
    assert!(
        routed.model_name(Slot::Chat).contains("1.5b")
            && routed.model_name(Slot::Completion).contains("0.5b"),
        "{} / {}",
        routed.model_name(Slot::Chat),
        routed.model_name(Slot::Completion)
    );
    let prompt = chat(
        "In Python, write a function `median(values)` that returns the median of a list of \
         numbers, then explain it in two sentences.",
    );
    let (expected, stats) = run(&large_alone, request(prompt.clone(), 40, Slot::Chat));
    assert!(stats.unwrap().generated_tokens > 20, "{expected:?}");
    let (spoken, stats) = run(&*routed, request(prompt, 40, Slot::Chat));
    stats.unwrap();
    assert_eq!(spoken, expected, "speculative decoding changed the text");
    let status = routed.status();
    assert!(
        status.draft_tokens > 0 && status.draft_accepted > 0,
        "the draft was not used: {status:?}"
    );
    // A completion request goes to the completion model, which has no draft.
    let (completed, stats) = run(
        &*routed,
        request(
            fim("def add(a, b):\n    return ", "\n", Vec::new()),
            8,
            Slot::Completion,
        ),
    );
    assert!(stats.is_ok() && !completed.is_empty(), "{completed:?}");
    assert_eq!(routed.status().draft_tokens, status.draft_tokens);
}
