//! `pith eval` and `pith tune` end to end, through the real binary and the real default model.
//!
//! The eval test drives a small generated Python workspace: tasks are the same on every run and
//! come only from held-out files, the JSON line has its fields, and `--lora` (a random adapter
//! from `scripts/make_test_lora.py`) changes the completions. The tune smoke test trains a few
//! steps on short sequences in the training environment (created under the cache when missing:
//! about 5.6 GB, a few minutes), checks that training never saw a held-out file, that the
//! adapter loads and changes greedy output on a fixed prompt, and that an interrupted run keeps
//! its checkpoint and `--resume` finishes it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn default_model() -> Option<PathBuf> {
    let path = pith::engine::model::default_model_path()?;
    if path.exists() {
        return Some(path);
    }
    eprintln!(
        "\n\n*** SKIPPED: the default model is not installed; run `pith model install` ***\n"
    );
    None
}

/// A workspace of five modules calling each other's functions, so that every file, held out
/// or not, has lines that use a name defined in another file.
fn fixture(dir: &Path) {
    let names = ["alpha", "beta", "gamma", "delta", "omega"];
    for (i, name) in names.iter().enumerate() {
        let next = names[(i + 1) % names.len()];
        let after = names[(i + 2) % names.len()];
        let text = format!(
            "from .{next} import {next}_scale, {next}_label\nfrom .{after} import {after}_total\n\n\n\
             def {name}_scale(value):\n    \"\"\"Scale a value for {name}.\"\"\"\n    base = value * {i} + 1\n    return base\n\n\n\
             def {name}_label(item):\n    \"\"\"Label an item for {name}.\"\"\"\n    text = str(item)\n    return \"{name}:\" + text\n\n\n\
             def {name}_total(items):\n    \"\"\"Sum the scaled items.\"\"\"\n    total = 0\n    for item in items:\n        \
             total += {next}_scale(item)\n    label = {next}_label(total)\n    rest = {after}_total(items[1:]) if items else 0\n    \
             return label, total + rest\n"
        );
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("pkg").join(format!("{name}.py")), text).unwrap();
    }
    std::fs::write(dir.join("pkg/__init__.py"), "").unwrap();
}

fn pith(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("PITH_TUNE_VENV", venv())
        .env_remove("PITH_MODEL")
        .output()
        .unwrap()
}

/// The training environment shared with real use (`~/.cache/pith/tune/…`), so that the tests
/// do not install torch into every temporary cache.
fn venv() -> PathBuf {
    pith::cli::tune::venv_dir().unwrap()
}

/// A Python with the `gguf` package: the training environment's when it exists, else the
/// system's, with `gguf` installed as tests/adapt.rs does.
fn gguf_python() -> PathBuf {
    let venv = venv();
    if venv.join("pith-ready").exists() {
        return venv.join("bin/python");
    }
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "gguf"])
        .status();
    PathBuf::from("python3")
}

fn eval_dir(cache: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(cache.join("pith/eval"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn last_json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn completions(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["got"].to_string())
        .collect()
}

#[test]
fn eval_tasks_are_deterministic_held_out_and_scored_with_and_without_an_adapter() {
    let Some(model) = default_model() else { return };
    let work = tempfile::tempdir().unwrap();
    let (root, cache) = (work.path().join("ws"), work.path().join("cache"));
    fixture(&root);
    let model = model.to_string_lossy().into_owned();
    let root_arg = root.to_string_lossy().into_owned();

    let first = pith(
        &cache,
        &[
            "eval",
            &root_arg,
            "--tasks",
            "4",
            "--json",
            "--compare",
            "--model",
            &model,
        ],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("4/4") && stderr.contains("ETA"), "{stderr}");
    let json = last_json(&first);
    for field in [
        "tasks",
        "em",
        "es",
        "em_no_context",
        "es_no_context",
        "p50_ms",
        "p95_ms",
        "model",
        "lora",
    ] {
        assert!(json.get(field).is_some(), "no {field} in {json}");
    }
    assert_eq!(json["tasks"], 4);
    assert!(json["lora"].is_null());
    assert_eq!(json["model"].as_str(), Some(model.as_str()));
    assert!(json["em_no_context"].is_number(), "{json}");
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(2), "{json}");
    let es = json["es"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&es), "{json}");

    let dir = eval_dir(&cache);
    let tasks = std::fs::read_to_string(dir.join("tasks.jsonl")).unwrap();
    let paths: Vec<String> = tasks
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(paths.len(), 4);
    // Held out: a fifth of the six files, by the same rule `pith tune` leaves them out with.
    let files: Vec<String> = ["__init__", "alpha", "beta", "gamma", "delta", "omega"]
        .iter()
        .map(|n| format!("pkg/{n}.py"))
        .collect();
    let held = pith::cli::eval::held_out(&files);
    assert!(
        paths.iter().all(|p| held.contains(p)),
        "{paths:?} not all in {held:?}"
    );
    assert!(
        !root.join(".pith").exists(),
        "eval wrote into the workspace"
    );

    // The same tasks again, now with a random adapter: it must change the completions.
    let adapters = work.path().join("adapters");
    let made = Command::new(gguf_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make_test_lora.py"))
        .arg(&model)
        .arg(&adapters)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let lora = adapters
        .join("lora-good.gguf")
        .to_string_lossy()
        .into_owned();
    let second = pith(
        &cache,
        &[
            "eval",
            &root_arg,
            "--tasks",
            "4",
            "--json",
            "--model",
            &model,
            "--lora",
            &lora,
            "--no-context",
        ],
    );
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tasks.jsonl")).unwrap(),
        tasks,
        "tasks changed"
    );
    let json = last_json(&second);
    assert_eq!(json["lora"].as_str(), Some(lora.as_str()));
    assert!(json["em_no_context"].is_number(), "{json}");
    assert_ne!(
        completions(&dir.join("no-context.jsonl")),
        completions(&dir.join("no-context+lora.jsonl")),
        "the adapter changed no completion"
    );
}

#[test]
fn eval_and_tune_refuse_bad_input_clearly() {
    let work = tempfile::tempdir().unwrap();
    let (root, cache) = (work.path().join("ws"), work.path().join("cache"));
    fixture(&root);
    let root_arg = root.to_string_lossy().into_owned();

    let missing = pith(
        &cache,
        &["eval", &root_arg, "--model", "/nonexistent/model.gguf"],
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("/nonexistent/model.gguf"), "{stderr}");

    let missing = pith(
        &cache,
        &[
            "tune",
            &root_arg,
            "--out",
            "/tmp/x.gguf",
            "--model",
            "/nonexistent/model.gguf",
        ],
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("/nonexistent/model.gguf"), "{stderr}");

    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("a.py"), "X = 1\n").unwrap();
    std::fs::write(empty.join("b.py"), "Y = 2\n").unwrap();
    let Some(model) = default_model() else { return };
    let none = pith(
        &cache,
        &[
            "eval",
            &empty.to_string_lossy(),
            "--model",
            &model.to_string_lossy(),
        ],
    );
    assert!(!none.status.success());
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(stderr.contains("no eligible lines"), "{stderr}");
}

/// Greedy chat output of the default model with an optional adapter.
fn greedy(lora: Option<&Path>) -> String {
    use pith::engine::{Engine, Event, Message, Prompt, Request, Role, Slot};
    let toml = match lora {
        Some(path) => format!("[model]\ncontext = 512\nlora = [{{ path = {path:?} }}]\n"),
        None => "[model]\ncontext = 512\n".into(),
    };
    let config = pith::config::Config::from_toml("test", &toml).unwrap();
    let engine = pith::engine::LlamaEngine::open(&config.engine_settings()).unwrap();
    let prompt = Prompt::Chat(vec![Message {
        role: Role::User,
        content: "Write a Python function that adds two numbers.".into(),
    }]);
    let mut events = engine.submit(Request::new(prompt, 24, Slot::Chat));
    let mut text = String::new();
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Text(piece) => text.push_str(&piece),
            Event::Done(_) => return text,
            other => panic!("generation did not finish: {other:?}"),
        }
    }
    panic!("the event stream ended without a final event")
}

#[test]
fn tune_smoke_writes_an_adapter_that_loads_and_changes_output_and_resumes() {
    let Some(model) = default_model() else { return };
    let work = tempfile::tempdir().unwrap();
    let (root, cache) = (work.path().join("ws"), work.path().join("cache"));
    fixture(&root);
    let root_arg = root.to_string_lossy().into_owned();
    let adapter = work.path().join("out/adapter.gguf");
    let adapter_arg = adapter.to_string_lossy().into_owned();
    let model_arg = model.to_string_lossy().into_owned();
    // A few steps on short sequences; a large learning rate so that so few steps move the
    // weights enough to show in greedy output.
    let args = [
        "tune",
        &root_arg,
        "--out",
        &adapter_arg,
        "--model",
        &model_arg,
        "--max-steps",
        "4",
        "--seq-len",
        "48",
        "--lr",
        "0.02",
        "--checkpoint-every",
        "1",
        "--eval-tasks",
        "0",
    ];

    // Interrupted after its first step: the checkpoint stays, the adapter is not written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(args)
        .env("XDG_CACHE_HOME", &cache)
        .env("PITH_TUNE_VENV", venv())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.starts_with("step 1/4") {
            // SIGINT to the process group's trainer: `pith` passes it on by exiting 130.
            let _ = Command::new("pkill")
                .args(["-INT", "-P", &child.id().to_string()])
                .status();
            break;
        }
    }
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "{log}");
    assert!(log.contains("--resume"), "{log}");
    assert!(!adapter.exists());
    let checkpoint = eval_dir(&cache).join("tune-work/checkpoint.pt");
    assert!(checkpoint.exists(), "{log}");

    let mut resumed: Vec<&str> = args.to_vec();
    resumed.push("--resume");
    let output = pith(&cache, &resumed);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resumed at step"), "{stderr}");
    assert!(stderr.contains("step 4/4"), "{stderr}");
    assert!(adapter.exists());

    // Training never saw a held-out file.
    let code = std::fs::read_to_string(eval_dir(&cache).join("tune-data/code.jsonl")).unwrap();
    let trained: Vec<String> = code
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let files: Vec<String> = ["__init__", "alpha", "beta", "gamma", "delta", "omega"]
        .iter()
        .map(|n| format!("pkg/{n}.py"))
        .collect();
    let held = pith::cli::eval::held_out(&files);
    assert_eq!(trained.len() + held.len(), files.len(), "{trained:?}");
    assert!(trained.iter().all(|p| !held.contains(p)), "{trained:?}");

    let base = greedy(None);
    let tuned = greedy(Some(&adapter));
    eprintln!("base:  {base:?}\ntuned: {tuned:?}");
    assert_ne!(
        base, tuned,
        "the trained adapter did not change greedy output"
    );
}
