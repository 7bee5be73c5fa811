//! Adaptation tests: session memory durability across a killed process, the commands `pith
//! init` / `prompt` / `memory` / `dataset export` end to end (ignored files, secrets, config
//! errors), and LoRA adapters on the real default model (generated with
//! `scripts/make_test_lora.py`; skipped loudly when the model or the `gguf` package is missing).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pith::memory::{MemoryKind, MemoryStore, NewMemory};

const CHILD_ENV: &str = "PITH_TEST_DURABILITY_DB";

fn note(question: &str) -> NewMemory {
    NewMemory {
        kind: Some(MemoryKind::Ask),
        question: question.into(),
        answer: "an answer".into(),
        files: vec!["src/lib.rs".into()],
        symbols: vec!["thing".into()],
        code_hashes: vec![],
    }
}

/// The child half of `memory_survives_sigkill_mid_transaction`: commits, then holds a write
/// transaction open until it is killed. Does nothing when run as an ordinary test.
#[test]
fn memory_durability_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut store = MemoryStore::open_at(Path::new(&path)).unwrap();
    for i in 0..20 {
        store.remember(&note(&format!("committed {i}"))).unwrap();
    }
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..1000 {
        connection
            .execute(
                "INSERT INTO memories (kind, question, answer, files, symbols, code_hashes, created_at)
                 VALUES ('ask', ?1, 'lost', '[]', '[]', '[]', 0)",
                [format!("uncommitted {i}")],
            )
            .unwrap();
    }
    println!("IN-TRANSACTION");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn memory_survives_sigkill_mid_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_durability_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reached = false;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("IN-TRANSACTION") {
            reached = true;
            break;
        }
    }
    assert!(reached, "the child never reached its open transaction");
    // SIGKILL: no destructor, no rollback, no checkpoint.
    child.kill().unwrap();
    child.wait().unwrap();

    let store = MemoryStore::open_at(&path).unwrap();
    let memories = store.list(10_000).unwrap();
    assert_eq!(
        memories.len(),
        20,
        "every committed memory survives, nothing else"
    );
    assert!(memories.iter().all(|m| m.question.starts_with("committed")));
    assert_eq!(store.search("committed", 100).unwrap().len(), 20);
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("corrupt"));
    assert!(!aside, "a killed writer must not look like corruption");
}

/// `pith` with its caches and config under `home`.
fn pith(home: &Path, args: &[&str], cwd: &Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("PITH_MODEL", home.join("no-model.gguf"))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn workspace() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let root = dir.path().join("proj");
    std::fs::create_dir_all(&home).unwrap();
    // A token assembled at runtime: the repository holds no real-looking secret.
    let token = format!("{}_{}", "ghp", "Zq8Xw2Lm4Rt6Yp0Ks3Vn5Bh7Jd9Fg1Ca2Ee4u");
    write(&root.join(".gitignore"), "generated/\n");
    write(&root.join(".git/HEAD"), "ref: refs/heads/main\n");
    write(&root.join(".pith/ignore"), "private.py\n");
    write(
        &root.join("app/util.py"),
        &format!(
            "def slugify(title):\n    \"\"\"Turn a title into a URL slug.\"\"\"\n    return title.lower()\n\n\ndef headers():\n    \"\"\"Build the API request headers.\"\"\"\n    return {{\"Authorization\": \"token {token}\"}}\n"
        ),
    );
    let hidden =
        "def hidden_{}():\n    \"\"\"This function must never be exported.\"\"\"\n    return 1\n";
    write(
        &root.join("generated/gen.py"),
        &hidden.replace("{}", "generated"),
    );
    write(&root.join("private.py"), &hidden.replace("{}", "private"));
    (dir, home, root)
}

#[test]
fn dataset_export_skips_ignored_files_and_redacts_secrets() {
    let (_dir, home, root) = workspace();
    let out = root.join("../out");
    let (ok, stdout, stderr) = pith(
        &home,
        &["dataset", "export", "--out", out.to_str().unwrap()],
        &root,
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("redacted github_token at app/util.py:8"),
        "{stdout}"
    );
    let train = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
    let validation = std::fs::read_to_string(out.join("validation.jsonl")).unwrap();
    let all = format!("{train}{validation}");
    assert_eq!(all.lines().count(), 4, "{all}");
    for line in all.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in ["instruction", "input", "output"] {
            assert!(record[field].is_string(), "{line}");
        }
    }
    assert!(all.contains("Turn a title into a URL slug."));
    assert!(all.contains("<REDACTED:github_token>"));
    assert!(!all.contains("Zq8Xw2Lm4Rt6"), "secret leaked");
    assert!(
        !all.contains("hidden_"),
        "an ignored file was exported: {all}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["functions"], 2);
    assert!(!summary.to_string().contains("Zq8Xw2Lm4Rt6"));

    // Deterministic: a second export is byte-identical.
    let out2 = root.join("../out2");
    assert!(
        pith(
            &home,
            &["dataset", "export", "--out", out2.to_str().unwrap()],
            &root
        )
        .0
    );
    assert_eq!(
        train,
        std::fs::read_to_string(out2.join("train.jsonl")).unwrap()
    );
}

#[test]
fn init_writes_a_config_that_loads_and_prompt_reports_config_errors() {
    let (_dir, home, root) = workspace();
    let (ok, stdout, stderr) = pith(&home, &["init"], &root);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(".pith/config.toml"));
    let written = std::fs::read_to_string(root.join(".pith/config.toml")).unwrap();
    assert!(written.contains("[languages.python.prompt]"), "{written}");
    assert!(
        !pith(&home, &["init"], &root).0,
        "init must not overwrite without --force"
    );

    let (ok, stdout, stderr) = pith(
        &home,
        &[
            "prompt",
            "app/util.py",
            "--line",
            "2",
            "--character",
            "4",
            "--task",
            "docstring",
        ],
        &root,
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("=== user\n"), "{stdout}");
    assert!(
        stdout.contains("Write the docstring for `slugify`"),
        "{stdout}"
    );

    write(
        &root.join(".pith/config.toml"),
        "[prompt.templates]\nask = \"{question}\"\nhover = \"Explain {symbl}\"\n",
    );
    let (ok, _, stderr) = pith(&home, &["prompt", "app/util.py", "--task", "hover"], &root);
    assert!(!ok);
    assert!(
        stderr.contains("config.toml:3:") && stderr.contains("prompt.templates.hover"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown placeholder `{symbl}`"), "{stderr}");
    let (ok, _, stderr) = pith(&home, &["prompt", "app/util.py", "--task", "poem"], &root);
    assert!(!ok && stderr.contains("unknown task `poem`"), "{stderr}");
}

#[test]
fn memory_commands_list_search_delete_clear() {
    let (_dir, home, root) = workspace();
    // The store the CLI opens for this root, under the test's cache dir.
    let path = home
        .join("cache/pith/memory")
        .join(pith_memory_file_name(&root));
    {
        let mut store = MemoryStore::open_at(&path).unwrap();
        store.remember(&note("how are slugs made")).unwrap();
        store.remember(&note("where is the config loaded")).unwrap();
    }
    let (ok, stdout, stderr) = pith(&home, &["memory", "list"], &root);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("#2 ask  where is the config loaded"),
        "{stdout}"
    );
    let (_, stdout, _) = pith(&home, &["memory", "search", "slugs"], &root);
    assert!(stdout.contains("#1") && !stdout.contains("#2"), "{stdout}");
    assert!(pith(&home, &["memory", "delete", "1"], &root).0);
    let (ok, _, stderr) = pith(&home, &["memory", "delete", "1"], &root);
    assert!(!ok && stderr.contains("no memory #1"), "{stderr}");
    let (_, stdout, _) = pith(&home, &["memory", "clear"], &root);
    assert!(stdout.contains("cleared 1"), "{stdout}");
    assert!(
        !root.join(".pith/memory").exists(),
        "nothing is written into the repository"
    );
}

/// The database name `pith` uses for `root` (computed the way `memory::database_path` does).
fn pith_memory_file_name(root: &Path) -> String {
    use sha2::Digest;
    let root = root.canonicalize().unwrap();
    let digest = sha2::Sha256::digest(root.to_string_lossy().as_bytes());
    format!("{}.sqlite", &hex::encode(digest)[..16])
}

// ---- LoRA -----------------------------------------------------------------------------------

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

/// Generates the test adapters into `dir`: (good, wrong architecture).
fn make_adapters(model: &Path, dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let has_gguf = || {
        Command::new("python3")
            .args(["-c", "import gguf, numpy"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_gguf() {
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "gguf"])
            .status();
    }
    if !has_gguf() {
        eprintln!(
            "\n\n*** SKIPPED: the Python `gguf` package is missing and cannot be installed (pip install gguf) ***\n"
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make_test_lora.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(model)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "make_test_lora.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some((dir.join("lora-good.gguf"), dir.join("lora-wrong-arch.gguf")))
}

fn greedy(engine: &pith::engine::LlamaEngine, question: &str) -> String {
    use pith::engine::{Engine, Event, Message, Prompt, Request, Role, Slot};
    let question = Prompt::Chat(vec![Message {
        role: Role::User,
        content: question.into(),
    }]);
    let request = Request::new(question, 24, Slot::Chat);
    let mut events = engine.submit(request);
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

fn settings(lora: Option<&Path>) -> pith::engine::EngineSettings {
    let config = pith::config::Config::from_toml(
        "test",
        &match lora {
            Some(path) => format!("[model]\ncontext = 512\nlora = [{{ path = {path:?} }}]\n"),
            None => "[model]\ncontext = 512\n".into(),
        },
    )
    .unwrap();
    config.engine_settings()
}

#[test]
fn lora_adapter_changes_greedy_output_and_wrong_architecture_is_refused() {
    let Some(model) = default_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some((good, wrong)) = make_adapters(&model, dir.path()) else {
        return;
    };
    let question = "Write a Python function that adds two numbers.";

    let base = pith::engine::LlamaEngine::open(&settings(None)).unwrap();
    let base_text = greedy(&base, question);
    assert_eq!(
        base_text,
        greedy(&base, question),
        "greedy output is deterministic"
    );
    drop(base);

    let adapted = pith::engine::LlamaEngine::open(&settings(Some(&good))).unwrap();
    let adapted_text = greedy(&adapted, question);
    eprintln!("base:    {base_text:?}\nadapted: {adapted_text:?}");
    assert_ne!(
        base_text, adapted_text,
        "the adapter must change the model's output"
    );
    drop(adapted);

    let Err(error) = pith::engine::LlamaEngine::open(&settings(Some(&wrong))) else {
        panic!("an adapter for another architecture was accepted");
    };
    let message = error.to_string();
    assert!(
        message.contains("lora-wrong-arch.gguf") && message.contains("architecture"),
        "{message}"
    );
}
