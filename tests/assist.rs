//! The AI features with the real default model (skipped, loudly, when it is not installed):
//! inline completion, hover explanation, code actions and workspace questions through the
//! core API on a small fixture workspace; the `pith complete --batch` / `pith ask` commands
//! through the binary; and the same features end to end over LSP (`pith serve` on stdio,
//! driven by the `tests/support` client).

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pith::assist::actions::{self, ActionInput, ActionKind};
use pith::assist::ask::{self, AskRequest};
use pith::assist::completion::{self, CompletionInput};
use pith::assist::explain;
use pith::config::Config;
use pith::engine::{EngineSettings, LlamaEngine, Priority};
use pith::index::WorkspaceIndex;
use tokio_util::sync::CancellationToken;

/// One engine for the whole file: loading the model is the slow part.
fn engine() -> Option<&'static LlamaEngine> {
    static ENGINE: OnceLock<Option<LlamaEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            if !model_installed() {
                eprintln!(
                    "\n\n*** SKIPPED: the default model is not installed; run `pith model install` ***\n"
                );
                return None;
            }
            let settings = EngineSettings {
                context_size: 3072,
                ..EngineSettings::default()
            };
            Some(LlamaEngine::open(&settings).expect("the default model loads"))
        })
        .as_ref()
}

fn model_installed() -> bool {
    pith::engine::model::default_model_path().is_some_and(|p| p.exists())
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

const LIB_RS: &str = r#"/// A 2D point.
pub struct Point {
    pub x: f64,
    pub y: f64,
}

pub fn manhattan(a: &Point, b: &Point) -> f64 {
    (a.x - b.x).abs() + (a.y - b.y).abs()
}
"#;

/// A temporary workspace with the fixture files, indexed.
struct Fixture {
    dir: tempfile::TempDir,
    index: WorkspaceIndex,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(&[
            ("shop/__init__.py", ""),
            ("shop/pricing.py", PRICING),
            ("shop/cart.py", CART),
            ("geo/src/lib.rs", LIB_RS),
        ])
    }

    /// A workspace of `files` (relative path, text), indexed.
    fn with(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let index = WorkspaceIndex::new(vec![root.clone()], Default::default());
        for &(path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            index.update_file(&path, text);
        }
        Fixture { dir, index }
    }

    fn path(&self, relative: &str) -> PathBuf {
        std::fs::canonicalize(self.dir.path())
            .unwrap()
            .join(relative)
    }
}

fn parses_cleanly(path: &Path, text: &str) -> bool {
    let file = pith::index::WorkspaceIndex::new(vec![], Default::default()).update_file(path, text);
    file.is_some_and(|f| f.parse_errors == 0)
}

fn apply(text: &str, edit: &actions::TextEdit) -> String {
    assert!(edit.range.start <= edit.range.end && edit.range.end <= text.len());
    let mut out = text.to_string();
    out.replace_range(edit.range.clone(), &edit.new_text);
    out
}

#[tokio::test]
async fn inline_completion_at_a_function_body_start_does_not_repeat_the_suffix() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("shop/cart.py");
    let cursor = CART.find("        \n        return").unwrap() + 8;
    let input = CompletionInput {
        path: &path,
        text: CART,
        cursor,
        recent: &[],
    };
    let result = completion::complete(
        engine,
        &fixture.index,
        &Config::default(),
        &input,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    eprintln!("completion: {:?} (raw {:?})", result.text, result.raw);
    assert!(result.multiline);
    assert!(!result.text.trim().is_empty(), "empty completion");
    assert!(
        !result.text.contains("return apply_tax(subtotal)"),
        "the completion repeats the suffix: {:?}",
        result.text
    );
    // The whole file still parses with the completion in.
    let mut completed = CART.to_string();
    completed.insert_str(cursor, &result.text);
    assert!(parses_cleanly(&path, &completed), "{completed}");
    // Retrieval brought the imported definitions along.
    assert!(result.snippets > 0);
}

#[tokio::test]
async fn single_line_completion_stops_at_the_end_of_the_line() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("geo/src/lib.rs");
    let text = LIB_RS.replace(
        "(a.x - b.x).abs() + (a.y - b.y).abs()",
        "let dx = (a.x - b.x).abs();\n    let dy = ",
    );
    let cursor = text.find("let dy = ").unwrap() + "let dy = ".len();
    let input = CompletionInput {
        path: &path,
        text: &text,
        cursor,
        recent: &[],
    };
    let result = completion::complete(
        engine,
        &fixture.index,
        &Config::default(),
        &input,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    eprintln!("completion: {:?}", result.text);
    assert!(!result.multiline);
    assert!(!result.text.contains('\n'));
    assert!(result.text.contains('y'), "{:?}", result.text);
}

const LEDGER: &str = "class Ledger:\n    def __init__(self):\n        self.rows = []\n\n    def tally_entries(self):\n        return len(self.rows)\n\n    def record_sale(self, amount):\n        self.rows.append(amount)\n";

const SUMMARY: &str = "from books.ledger import Ledger\n\n\ndef summary(ledger: Ledger):\n    \"\"\"How many entries the ledger holds.\"\"\"\n    count = ledger.";

/// The first identifier of `text`.
fn first_identifier(text: &str) -> &str {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|w| !w.is_empty())
        .unwrap_or("")
}

#[tokio::test]
async fn guided_decoding_turns_a_made_up_member_into_a_real_one() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::with(&[
        ("books/__init__.py", ""),
        ("books/ledger.py", LEDGER),
        ("books/report.py", SUMMARY),
    ]);
    let (index, path) = (&fixture.index, fixture.path("books/report.py"));
    let input = CompletionInput {
        path: &path,
        text: SUMMARY,
        cursor: SUMMARY.len(),
        recent: &[],
    };
    // No retrieved context: the model has only the buffer, so it guesses the member's name.
    let mut config = Config::default();
    config.completion.budget_tokens = Some(0);
    let mut complete = async |guided: bool| {
        config.completion.guided = guided;
        let result = completion::complete(engine, index, &config, &input, CancellationToken::new())
            .await
            .unwrap();
        eprintln!("guided={guided}: {:?}", result.text);
        result
    };
    let members = ["rows", "tally_entries", "record_sale"];
    let free = complete(false).await;
    assert!(
        !members.contains(&first_identifier(&free.text)),
        "the fixture no longer shows a made-up member without guidance: {:?}",
        free.text
    );
    assert_eq!(free.stats.guided_tokens, 0);
    let guided = complete(true).await;
    assert!(
        members.contains(&first_identifier(&guided.text)),
        "guided decoding wrote a member Ledger does not have: {:?}",
        guided.text
    );
    assert!(guided.stats.guided_tokens > 0);
}

#[tokio::test]
async fn hover_explanation_of_a_symbol_is_keyed_by_its_code() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let file = fixture
        .index
        .file(&fixture.path("shop/pricing.py"))
        .unwrap();
    let offset = PRICING.find("amount * (1 +").unwrap();
    let target = explain::symbol_at(&file, offset).unwrap();
    assert_eq!(&*target.symbol().name, "apply_tax");
    let usages = explain::usages(&fixture.index, &target, 8);
    assert!(
        usages.iter().any(|u| u.starts_with("shop/cart.py:")),
        "{usages:?}"
    );
    let explanation = explain::explain(
        engine,
        &Config::default(),
        &fixture.index,
        &target,
        Priority::Interactive,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    eprintln!("explanation: {}", explanation.text);
    assert!(explanation.text.split_whitespace().count() >= 5);
    assert!(explanation.text.to_lowercase().contains("tax"));
    assert_eq!(explanation.key, explain::explanation_key(&target));
    // Another symbol, or the same one edited, gets another key.
    let edited = fixture.index.update_file(
        &fixture.path("shop/pricing.py"),
        &PRICING.replace("(1 + TAX_RATE)", "(1.0 + TAX_RATE)"),
    );
    let edited = explain::symbol_at(&edited.unwrap(), offset).unwrap();
    assert_ne!(explain::explanation_key(&edited), explanation.key);
}

/// Runs one code action with the default config on the fixture's index.
async fn run_action(
    engine: &LlamaEngine,
    fixture: &Fixture,
    kind: ActionKind,
    input: &ActionInput<'_>,
) -> actions::ActionOutcome {
    actions::run(
        engine,
        &Config::default(),
        &fixture.index,
        kind,
        input,
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

fn action_input<'a>(path: &'a Path, text: &'a str, at: usize) -> ActionInput<'a> {
    ActionInput {
        path,
        text,
        range: at..at,
        instruction: None,
        diagnostic: None,
    }
}

#[tokio::test]
async fn docstring_action_writes_a_docstring_under_the_def_line() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("shop/pricing.py");
    let at = PRICING.find("percent / 100").unwrap();
    let outcome = run_action(
        engine,
        &fixture,
        ActionKind::Docstring,
        &action_input(&path, PRICING, at),
    )
    .await;
    let edit = &outcome.edits[0];
    let result = apply(PRICING, edit);
    eprintln!("{result}");
    let after_def = result
        .split("def discount(amount, percent):\n")
        .nth(1)
        .unwrap();
    assert!(after_def.starts_with("    \"\"\""), "{after_def}");
    assert!(parses_cleanly(&path, &result));
}

#[tokio::test]
async fn rust_doc_comment_action_writes_doc_lines_above_the_item() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("geo/src/lib.rs");
    let at = LIB_RS.find("abs() +").unwrap();
    let outcome = run_action(
        engine,
        &fixture,
        ActionKind::Docstring,
        &action_input(&path, LIB_RS, at),
    )
    .await;
    let result = apply(LIB_RS, &outcome.edits[0]);
    eprintln!("{result}");
    let before_fn = result.split("pub fn manhattan").next().unwrap();
    assert!(
        before_fn
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("///")
    );
    assert!(parses_cleanly(&path, &result));
}

#[tokio::test]
async fn tests_action_creates_a_pytest_file() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("shop/pricing.py");
    let at = PRICING.find("percent / 100").unwrap();
    let outcome = run_action(
        engine,
        &fixture,
        ActionKind::Tests,
        &action_input(&path, PRICING, at),
    )
    .await;
    let file = &outcome.new_files[0];
    eprintln!("{}", file.text);
    assert_eq!(file.path, fixture.path("tests/test_pricing.py"));
    assert!(file.text.starts_with("from shop.pricing import discount\n"));
    assert!(file.text.contains("def test"));
    assert!(parses_cleanly(&file.path, &file.text));
}

#[tokio::test]
async fn explain_refactor_and_fix_actions_give_a_message_or_a_clean_edit() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("shop/cart.py");
    let method = CART.find("    def add").unwrap();
    let method_end = CART.find("    def total").unwrap();

    let explain = run_action(
        engine,
        &fixture,
        ActionKind::Explain,
        &ActionInput {
            range: method..method_end,
            ..action_input(&path, CART, 0)
        },
    )
    .await;
    let message = explain.message.unwrap();
    eprintln!("explain: {message}");
    assert!(message.split_whitespace().count() >= 5);

    let refactor = run_action(
        engine,
        &fixture,
        ActionKind::Refactor,
        &ActionInput {
            range: method..method_end,
            instruction: Some("rename the parameter price to cost"),
            ..action_input(&path, CART, 0)
        },
    )
    .await;
    for edit in &refactor.edits {
        let result = apply(CART, edit);
        eprintln!("refactor:\n{result}");
        assert!(result.contains("cost"));
        assert!(parses_cleanly(&path, &result));
    }
    assert!(refactor.edits.len() == 1 || refactor.message.is_some());

    let line = CART.find("return apply_tax(subtotal)").unwrap();
    let fix = run_action(
        engine,
        &fixture,
        ActionKind::Fix,
        &ActionInput {
            range: line + 17..line + 25,
            diagnostic: Some("\"subtotal\" is not defined"),
            ..action_input(&path, CART, 0)
        },
    )
    .await;
    for edit in &fix.edits {
        let result = apply(CART, edit);
        eprintln!("fix:\n{result}");
        assert!(parses_cleanly(&path, &result));
        assert!(result.contains("class Cart"));
    }
}

#[tokio::test]
async fn ask_answers_from_the_right_code_and_checks_citations() {
    let _turn = support::MODEL_TURN.lock().await;
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let request = AskRequest {
        question: "How is the tax applied to an amount?",
        ..AskRequest::default()
    };
    let mut streamed = String::new();
    let answer = ask::ask(
        engine,
        &Config::default(),
        &fixture.index,
        &request,
        CancellationToken::new(),
        |piece| streamed.push_str(piece),
    )
    .await
    .unwrap();
    eprintln!("answer: {}\ncitations: {:?}", answer.text, answer.citations);
    assert_eq!(streamed.trim(), answer.text);
    assert_eq!(
        answer.sources.first().map(String::as_str),
        Some("shop/pricing.py:4")
    );
    assert!(answer.text.to_lowercase().contains("tax"));
    // Citations of files that do not exist are flagged, real ones accepted.
    let checked = ask::check_citations(
        &fixture.index,
        "See shop/pricing.py:5 and shop/nowhere.py:3, also pricing.py:99.",
    );
    let verdicts: Vec<(&str, bool)> = checked.iter().map(|c| (c.text.as_str(), c.valid)).collect();
    assert_eq!(
        verdicts,
        [
            ("shop/pricing.py:5", true),
            ("shop/nowhere.py:3", false),
            ("pricing.py:99", false)
        ]
    );
}

fn pith() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_pith"))
}

/// A query at the start of `Cart.total`'s body in the fixture's cart.py.
fn cart_query(id: &str) -> serde_json::Value {
    let cart_cursor_line = CART.lines().position(|l| l == "        ").unwrap();
    serde_json::json!({"id": id, "path": "shop/cart.py", "text": CART,
        "line": cart_cursor_line, "character": 8})
}

/// Runs `pith complete --batch` over `queries` in `root` with a 256-token budget, the prompts
/// shown, and `extra` arguments; its JSON lines.
fn complete_batch(
    root: &std::path::Path,
    queries: &[serde_json::Value],
    extra: &[&std::ffi::OsStr],
) -> Vec<serde_json::Value> {
    let batch = root.join("queries.jsonl");
    let lines: String = queries.iter().map(|q| format!("{q}\n")).collect();
    std::fs::write(&batch, lines).unwrap();
    let output = pith()
        .args(["complete", "--root"])
        .arg(root)
        .arg("--batch")
        .arg(&batch)
        .args(["--budget-tokens", "256", "--show-prompt"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn complete_batch_prints_one_line_per_query_in_order() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let fixture = Fixture::new();
    let queries = [
        cart_query("q1"),
        serde_json::json!({"id": "q2", "path": "geo/src/lib.rs", "text": LIB_RS,
            "line": 7, "character": 4}),
    ];
    let lines = complete_batch(&fixture.path(""), &queries, &[]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["id"], "q1");
    assert_eq!(lines[1]["id"], "q2");
    for line in &lines {
        assert!(line["completion"].is_string());
        assert!(line["prompt_tokens"].as_u64().unwrap() > 0);
        assert!(line["ms"].is_u64());
        // --show-prompt: the prompt's parts and what the model wrote before cleanup.
        let first_line = line["completion"].as_str().unwrap().lines().next();
        let raw = line["raw"].as_str().unwrap();
        assert!(raw.contains(first_line.unwrap_or("").trim()), "{raw:?}");
    }
    let prompt = lines[0]["prompt"].as_str().unwrap();
    assert!(prompt.contains("=== file: shop/cart.py"), "{prompt}");
    assert!(prompt.contains("=== prefix"), "{prompt}");
}

#[test]
fn complete_batch_takes_context_from_another_retriever() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let fixture = Fixture::new();
    let root = fixture.path("");
    // The context as files, where the prompt dump names each one.
    std::fs::create_dir_all(root.join(".pith")).unwrap();
    std::fs::write(
        root.join(".pith/config.toml"),
        "[completion]\ncontext_layout = \"files\"\n",
    )
    .unwrap();
    let given = serde_json::json!({"id": "q1", "snippets": [{"path": "shop/tax.py",
        "start_line": 0, "end_line": 2, "text": "def vat_rate(country):\n    return 0.2\n"}]});
    let snippets = root.join("snippets.jsonl");
    std::fs::write(&snippets, format!("{given}\n")).unwrap();
    let lines = complete_batch(
        &root,
        &[cart_query("q1")],
        &["--snippets".as_ref(), snippets.as_os_str()],
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    let prompt = lines[0]["prompt"].as_str().unwrap();
    // The given snippet is the whole context: nothing retrieved from the fixture joins it.
    let context: Vec<&str> = prompt
        .lines()
        .filter(|l| l.starts_with("=== context: "))
        .collect();
    assert_eq!(context, ["=== context: shop/tax.py"], "{prompt}");
    assert!(prompt.contains("def vat_rate(country):"), "{prompt}");
}

#[test]
fn ask_command_streams_an_answer() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let fixture = Fixture::new();
    let model = pith::engine::model::default_model_path().unwrap();
    let output = pith()
        .args(["ask", "What does discount compute?", "--root"])
        .arg(fixture.path(""))
        .arg("--model")
        .arg(model)
        .env("XDG_CACHE_HOME", fixture.path(".cache"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    eprintln!("{stdout}");
    assert!(stdout.split_whitespace().count() >= 5);
}

#[test]
fn ask_json_prints_one_object_with_the_answer_and_its_citations() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let fixture = Fixture::new();
    let model = pith::engine::model::default_model_path().unwrap();
    let output = pith()
        .args(["ask", "--json", "What does discount compute?", "--root"])
        .arg(fixture.path(""))
        .arg("--model")
        .arg(&model)
        .env("XDG_CACHE_HOME", fixture.path(".cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        answer["answer"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count()
            >= 5,
        "{answer}"
    );
    assert!(answer["prompt_tokens"].as_u64().unwrap() > 20, "{answer}");
    assert!(answer["ms"].as_u64().unwrap() > 0, "{answer}");
    let name = model.file_name().unwrap().to_str().unwrap();
    assert_eq!(answer["model"], name, "{answer}");
    // Every citation the answer makes is listed, as path and line, checked against the index.
    let citations = answer["citations"].as_array().unwrap();
    let text = answer["answer"].as_str().unwrap();
    for citation in citations {
        let (path, line) = (citation["path"].as_str().unwrap(), &citation["line"]);
        assert!(line.as_u64().is_some(), "{citation}");
        assert!(
            text.contains(&format!("{path}:{line}")) || citation["valid"] == true,
            "{citation} in {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// End to end over LSP

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{LspClient, position_of};

/// Model work under a loaded machine can take long; requests that reach the model wait this.
const MODEL_TIMEOUT: Duration = Duration::from_secs(600);

/// A server over a copy of the fixture workspace plus the shop files, initialized, scanned.
/// A session over the fixture shop; also returns the `initialize` result.
fn lsp_session(extra_capabilities: Value) -> (LspClient, support::Fixture, Value) {
    lsp_session_with(extra_capabilities, &[])
}

/// [`lsp_session`] with more files in the workspace (`.pith/config.toml`, …).
fn lsp_session_with(
    extra_capabilities: Value,
    files: &[(&str, &str)],
) -> (LspClient, support::Fixture, Value) {
    let fixture = support::Fixture::new();
    for (path, text) in files {
        fixture.write(path, text);
    }
    fixture.write("shop/__init__.py", "");
    fixture.write("shop/pricing.py", PRICING);
    fixture.write("shop/cart.py", CART);
    let cache = fixture.path(".cache");
    let model = pith::engine::model::default_model_path().unwrap();
    let mut client = LspClient::spawn_with(
        &[],
        &[
            ("PITH_MODEL", model.to_str().unwrap()),
            ("XDG_CACHE_HOME", cache.to_str().unwrap()),
            ("XDG_CONFIG_HOME", cache.to_str().unwrap()),
        ],
    );
    let mut capabilities = json!({
        "window": {"showDocument": {"support": true}},
        "workspace": {"workspaceEdit": {"documentChanges": true,
            "resourceOperations": ["create"]}},
    });
    support_merge(&mut capabilities, extra_capabilities);
    let initialized = client.initialize(Some(&fixture.root()), capabilities);
    client.wait_for_progress_end(Duration::from_secs(120));
    (client, fixture, initialized)
}

fn support_merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                support_merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

fn model_request(client: &mut LspClient, method: &str, params: Value) -> Value {
    let id = client.send_request(method, params.clone());
    let response = client.response(id, MODEL_TIMEOUT);
    if let Some(error) = response.get("error") {
        panic!(
            "{method} failed: {error}\nparams: {params}\nstderr:\n{}",
            client.stderr()
        );
    }
    response["result"].clone()
}

fn status(client: &mut LspClient) -> Value {
    client.request(
        "workspace/executeCommand",
        json!({"command": "pith.status", "arguments": []}),
    )
}

fn inline_params(uri: &str, position: Value) -> Value {
    json!({
        "textDocument": {"uri": uri},
        "position": position,
        "context": {"triggerKind": 2},
    })
}

fn inline_capabilities() -> Value {
    json!({"textDocument": {"inlineCompletion": {}}})
}

#[test]
fn lsp_completion_item_fallback_for_clients_without_inline_completion() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    // Like Helix: completion items, no inline completion. The item is awaited however long the
    // model takes (the budget has its own test below).
    let (mut client, fixture, initialized) = lsp_session_with(
        json!({"textDocument": {"completion": {}}}),
        &[(
            ".pith/config.toml",
            "[completion]\nitem_budget_ms = 600000\n",
        )],
    );
    assert!(initialized["capabilities"]["completionProvider"].is_object());
    let uri = fixture.uri("shop/cart.py");
    client.did_open(&uri, "python", 1, CART);
    let cursor = position_of(CART, "        \n        return", 8);
    let result = model_request(
        &mut client,
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": cursor}),
    );
    let item = &result["items"][0];
    assert!(item["label"].as_str().unwrap().starts_with('✦'), "{result}");
    assert!(item["detail"].as_str().unwrap().contains("pith"));
    assert!(!item["textEdit"]["newText"].as_str().unwrap().is_empty());
}

/// Issue 19: a completion item that the model cannot finish within `completion.item_budget_ms`
/// is answered at once, empty and incomplete, instead of running into the client's timeout;
/// generation goes on, and the next request at the same place gets the finished item from the
/// one generation.
#[test]
fn lsp_completion_item_past_its_budget_is_incomplete_and_comes_with_the_next_request() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let (mut client, fixture, _) = lsp_session_with(
        json!({"textDocument": {"completion": {}}}),
        &[(".pith/config.toml", "[completion]\nitem_budget_ms = 1\n")],
    );
    let uri = fixture.uri("shop/cart.py");
    client.did_open(&uri, "python", 1, CART);
    let cursor = position_of(CART, "        \n        return", 8);
    let params = json!({"textDocument": {"uri": uri}, "position": cursor});
    let first = model_request(&mut client, "textDocument/completion", params.clone());
    assert_eq!(first["isIncomplete"], true, "{first}");
    assert_eq!(first["items"], json!([]), "{first}");
    let started = Instant::now();
    let mut requests = 1;
    let item = loop {
        let result = model_request(&mut client, "textDocument/completion", params.clone());
        requests += 1;
        assert_eq!(result["isIncomplete"], true, "{result}");
        if let Some(item) = result["items"].get(0) {
            break item.clone();
        }
        assert!(
            started.elapsed() < MODEL_TIMEOUT,
            "no item after {requests} requests:\n{}",
            client.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(item["label"].as_str().unwrap().starts_with('✦'), "{item}");
    assert!(!item["textEdit"]["newText"].as_str().unwrap().is_empty());
    assert_eq!(
        status(&mut client)["completionsGenerated"],
        1,
        "{requests} requests at one place ran one generation"
    );
    eprintln!("the item came with request {requests}");
}

#[test]
fn lsp_inline_completion_burst_and_cancellation() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let (mut client, fixture, initialized) = lsp_session(inline_capabilities());
    let uri = fixture.uri("shop/cart.py");
    client.did_open(&uri, "python", 1, CART);
    let cursor = position_of(CART, "        \n        return", 8);

    // At the start of a function body: a completion that does not repeat the suffix.
    let result = model_request(
        &mut client,
        "textDocument/inlineCompletion",
        inline_params(&uri, cursor.clone()),
    );
    let items = result["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{result}");
    let text = items[0]["insertText"].as_str().unwrap();
    eprintln!("inline: {text:?}");
    assert!(!text.trim().is_empty());
    assert!(!text.contains("return apply_tax(subtotal)"), "{text:?}");
    assert_eq!(items[0]["range"]["start"], cursor);

    // A client with inline completion is not offered the completion-item fallback too.
    assert!(initialized["capabilities"]["completionProvider"].is_null());

    // A burst of 20 requests while typing: at most one reaches the model.
    let before = status(&mut client)["completionsGenerated"]
        .as_u64()
        .unwrap();
    let mut text = CART.to_string();
    let insert_at = CART.find("        \n        return").unwrap() + 8;
    let typed = "subtotal = sum(p for _, p in self.items)";
    let mut ids = Vec::new();
    for (n, c) in typed.chars().take(20).enumerate() {
        text.insert(insert_at + n, c);
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": n + 2},
                   "contentChanges": [{"text": text}]}),
        );
        let column = 8 + n as u32 + 1;
        let line = CART[..insert_at].matches('\n').count();
        ids.push(client.send_request(
            "textDocument/inlineCompletion",
            inline_params(&uri, json!({"line": line, "character": column})),
        ));
        std::thread::sleep(Duration::from_millis(20));
    }
    let during = status(&mut client);
    assert!(during["running"].as_u64().unwrap() <= 1, "{during}");
    let mut non_empty = 0;
    for id in ids {
        let response = client.response(id, MODEL_TIMEOUT);
        assert!(response.get("error").is_none(), "{response}");
        non_empty += response["result"]["items"]
            .as_array()
            .map_or(0, |i| i.len());
    }
    let after = status(&mut client);
    let generated = after["completionsGenerated"].as_u64().unwrap() - before;
    eprintln!("burst: {generated} generations, {non_empty} non-empty answers, {after}");
    assert!(generated <= 1, "{generated} generations for one burst");
    assert!(non_empty <= 1);
    assert!(after["running"].as_u64().unwrap() <= 1);

    // Cancellation: `$/cancelRequest` answers at once and costs no generation.
    let before = status(&mut client)["completionsGenerated"]
        .as_u64()
        .unwrap();
    let id = client.send_request(
        "textDocument/inlineCompletion",
        inline_params(&uri, cursor.clone()),
    );
    client.notify("$/cancelRequest", json!({"id": id}));
    let started = Instant::now();
    let response = client.response(id, Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(response["error"]["code"], -32800, "{response}");
    std::thread::sleep(Duration::from_millis(400));
    let after = status(&mut client)["completionsGenerated"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before);
    assert!(client.shutdown_and_exit().success());
}

#[test]
fn lsp_hover_explanation_arrives_on_a_later_hover() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let (mut client, fixture, _) = lsp_session(json!({}));
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"hover": {"timeout_ms": 0}}}),
    );
    let uri = fixture.uri("shop/cart.py");
    client.did_open(&uri, "python", 1, CART);
    let at = position_of(CART, "apply_tax(subtotal)", 2);
    let hover = |client: &mut LspClient| {
        let started = Instant::now();
        let result = client.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": at}),
        );
        (
            result["contents"]["value"].as_str().unwrap().to_string(),
            started.elapsed(),
        )
    };
    let (first, took) = hover(&mut client);
    assert!(first.contains("def apply_tax(amount)"), "{first}");
    assert!(!first.contains("---"), "{first}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let deadline = Instant::now() + MODEL_TIMEOUT;
    let explained = loop {
        std::thread::sleep(Duration::from_secs(2));
        let (text, _) = hover(&mut client);
        if text.contains("---") {
            break text;
        }
        assert!(Instant::now() < deadline, "no explanation came");
    };
    eprintln!("hover: {explained}");
    let explanation = explained.split("---").nth(1).unwrap();
    assert!(explanation.split_whitespace().count() >= 5);
    assert!(client.shutdown_and_exit().success());
}

/// Applies an LSP `WorkspaceEdit` (documentChanges) to `text` of `uri`, checking that it is
/// well formed; returns the new text and the files it creates.
fn apply_workspace_edit(edit: &Value, uri: &str, text: &str) -> (String, Vec<(String, String)>) {
    let mut result = text.to_string();
    let mut created = Vec::new();
    let operations = edit["documentChanges"].as_array().expect("documentChanges");
    let mut pending_create: Option<String> = None;
    for op in operations {
        if op["kind"] == "create" {
            pending_create = Some(op["uri"].as_str().unwrap().to_string());
            continue;
        }
        let target = op["textDocument"]["uri"].as_str().unwrap();
        let edits = op["edits"].as_array().unwrap();
        if pending_create.as_deref() == Some(target) {
            created.push((
                target.to_string(),
                edits[0]["newText"].as_str().unwrap().to_string(),
            ));
            continue;
        }
        assert_eq!(target, uri);
        for e in edits {
            let start = offset_of(&result, &e["range"]["start"]);
            let end = offset_of(&result, &e["range"]["end"]);
            assert!(start <= end && end <= result.len(), "{e}");
            result.replace_range(start..end, e["newText"].as_str().unwrap());
        }
    }
    (result, created)
}

/// Byte offset of an LSP position (UTF-16 columns; the fixtures are ASCII).
fn offset_of(text: &str, position: &Value) -> usize {
    let line = position["line"].as_u64().unwrap() as usize;
    let character = position["character"].as_u64().unwrap() as usize;
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    (start + character).min(text.len())
}

#[test]
fn lsp_code_actions_are_listed_at_once_and_resolve_to_edits_or_messages() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let (mut client, fixture, _) = lsp_session(json!({}));
    let uri = fixture.uri("shop/pricing.py");
    client.did_open(&uri, "python", 1, PRICING);
    let at = position_of(PRICING, "percent / 100", 0);
    let started = Instant::now();
    let listed = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": at, "end": at},
               "context": {"diagnostics": []}}),
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let titles: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "pith: Explain this code",
            "pith: Write docstring",
            "pith: Generate unit tests"
        ]
    );
    for action in listed.as_array().unwrap() {
        assert!(action.get("edit").is_none_or(Value::is_null));
        let resolved = model_request(&mut client, "codeAction/resolve", action.clone());
        let title = resolved["title"].as_str().unwrap();
        eprintln!("{title}: {resolved}");
        match title {
            "pith: Explain this code" => {
                let shown = client.wait_for_message(
                    |m| m["method"] == "window/showMessage" || m["method"] == "window/showDocument",
                    Duration::from_secs(10),
                );
                assert!(!shown.is_null());
            }
            "pith: Write docstring" => {
                let (text, _) = apply_workspace_edit(&resolved["edit"], &uri, PRICING);
                assert!(
                    text.contains("def discount(amount, percent):\n    \"\"\""),
                    "{text}"
                );
                assert!(parses_cleanly(Path::new("x.py"), &text), "{text}");
            }
            "pith: Generate unit tests" => {
                let (_, created) = apply_workspace_edit(&resolved["edit"], &uri, PRICING);
                assert_eq!(created.len(), 1);
                assert!(created[0].0.ends_with("/tests/test_pricing.py"));
                assert!(created[0].1.contains("def test"));
            }
            other => panic!("unexpected action {other}"),
        }
    }

    // A selection offers refactoring; a diagnostic offers a fix.
    let cart = fixture.uri("shop/cart.py");
    client.did_open(&cart, "python", 1, CART);
    let line = CART[..CART.find("return apply_tax").unwrap()]
        .matches('\n')
        .count();
    let diagnostic = json!({
        "range": {"start": {"line": line, "character": 25}, "end": {"line": line, "character": 33}},
        "message": "\"subtotal\" is not defined", "severity": 1,
    });
    let listed = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": cart},
               "range": {"start": {"line": line - 2, "character": 0},
                         "end": {"line": line, "character": 33}},
               "context": {"diagnostics": [diagnostic]}}),
    );
    let actions = listed.as_array().unwrap();
    for title in ["pith: Refactor selection", "pith: Fix this problem"] {
        let action = actions
            .iter()
            .find(|a| a["title"] == title)
            .unwrap_or_else(|| panic!("{title} not offered: {listed}"));
        let resolved = model_request(&mut client, "codeAction/resolve", action.clone());
        eprintln!("{title}: {resolved}");
        if !resolved["edit"].is_null() {
            let (text, _) = apply_workspace_edit(&resolved["edit"], &cart, CART);
            assert!(text.contains("class Cart"), "{text}");
        }
    }
    assert!(client.shutdown_and_exit().success());
}

#[test]
fn lsp_ask_cites_a_real_file_and_status_and_memory_commands_work() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let _turn = support::MODEL_TURN.blocking_lock();
    let (mut client, fixture, _) = lsp_session(json!({}));
    let answer = model_request(
        &mut client,
        "workspace/executeCommand",
        json!({"command": "pith.ask", "arguments": ["How is tax applied to an amount?"]}),
    );
    eprintln!("ask: {answer}");
    let text = answer["answer"].as_str().unwrap();
    assert!(text.split_whitespace().count() >= 5);
    assert!(text.contains("shop/pricing.py:"), "{text}");
    for citation in answer["citations"].as_array().unwrap() {
        if citation["valid"] == true {
            let path = citation["path"].as_str().unwrap();
            assert!(Path::new(path).exists(), "{path}");
        }
    }
    let status = status(&mut client);
    assert_eq!(status["loaded"], true, "{status}");
    assert!(
        status["model"].as_str().unwrap().contains("qwen")
            || status["model"].as_str().unwrap().contains("Qwen"),
        "{status}"
    );
    assert!(status["indexedFiles"].as_u64().unwrap() >= 3);
    assert!(status["completed"].as_u64().unwrap() >= 1);
    assert_eq!(status["modelState"], "loaded", "{status}");
    assert_eq!(status["modelName"], status["model"], "{status}");
    assert_eq!(status["index"]["state"], "ready", "{status}");
    assert_eq!(status["index"]["files"], status["indexedFiles"], "{status}");

    let listed = client.request(
        "workspace/executeCommand",
        json!({"command": "pith.memory.list", "arguments": []}),
    );
    assert_eq!(listed["memories"].as_array().unwrap().len(), 1, "{listed}");
    let cleared = client.request(
        "workspace/executeCommand",
        json!({"command": "pith.memory.clear", "arguments": []}),
    );
    assert_eq!(cleared["cleared"], 1);
    let _ = fixture;
    assert!(client.shutdown_and_exit().success());
}

/// `pith.status` before `initialized` (nothing loaded or scanned yet), then once the scan is done
/// and the model failed to load: each state and the model's name, as the editors show them.
#[test]
fn lsp_status_says_where_the_model_and_the_index_stand() {
    let fixture = support::Fixture::new();
    let mut client = LspClient::spawn_with(&[], &[("PITH_MODEL", "/nonexistent/model.gguf")]);
    let root = support::file_uri(&fixture.root());
    client.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": root,
            "capabilities": {"window": {"workDoneProgress": true}},
            "workspaceFolders": [{"uri": root, "name": "fixture"}],
        }),
    );
    let before = status(&mut client);
    assert_eq!(before["modelState"], "notLoaded", "{before}");
    assert_eq!(before["modelName"], "model.gguf", "{before}");
    assert_eq!(before["model"], Value::Null, "{before}");
    assert_eq!(before["index"]["state"], "notStarted", "{before}");

    client.notify("initialized", json!({}));
    client.wait_for_progress_end(Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let after = loop {
        let after = status(&mut client);
        if after["modelState"] != "loading" && after["modelState"] != "notLoaded" {
            break after;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the load never ended: {after}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(after["modelState"], "error", "{after}");
    assert!(
        after["error"]
            .as_str()
            .is_some_and(|error| error.contains("/nonexistent/model.gguf")),
        "{after}"
    );
    assert_eq!(after["index"]["state"], "ready", "{after}");
    let files = after["index"]["files"].as_u64().expect("index.files");
    assert!(files >= 3, "{after}");
    assert_eq!(after["indexedFiles"], files, "{after}");
    assert!(client.shutdown_and_exit().success());
}

#[test]
fn lsp_without_a_model_says_so_once_and_keeps_working() {
    let fixture = support::Fixture::new();
    let mut client = LspClient::spawn_with(&[], &[("PITH_MODEL", "/nonexistent/model.gguf")]);
    client.initialize(Some(&fixture.root()), inline_capabilities());
    client.wait_for_progress_end(Duration::from_secs(60));
    let uri = fixture.uri("app.py");
    let text = fixture.read("app.py");
    client.did_open(&uri, "python", 1, &text);
    for _ in 0..3 {
        let result = client.request(
            "textDocument/inlineCompletion",
            inline_params(&uri, json!({"line": 0, "character": 0})),
        );
        assert_eq!(result["items"], json!([]));
    }
    let messages: Vec<Value> = client
        .notifications("window/showMessage")
        .into_iter()
        .filter(|m| m["message"].as_str().unwrap_or("").contains("model"))
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0]["message"]
            .as_str()
            .unwrap()
            .contains("pith model install")
    );
    // The index features do not depend on the model.
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert!(!symbols.as_array().unwrap().is_empty());
    assert!(client.shutdown_and_exit().success());
}
