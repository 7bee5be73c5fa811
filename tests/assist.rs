//! The AI features with the real default model (skipped, loudly, when it is not installed):
//! inline completion, hover explanation, code actions and workspace questions through the
//! core API on a small fixture workspace, and the `pith complete --batch` / `pith ask` commands
//! through the binary.

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
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let index = WorkspaceIndex::new(vec![root.clone()], Default::default());
        for (path, text) in [
            ("shop/__init__.py", ""),
            ("shop/pricing.py", PRICING),
            ("shop/cart.py", CART),
            ("geo/src/lib.rs", LIB_RS),
        ] {
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

#[tokio::test]
async fn hover_explanation_of_a_symbol_is_keyed_by_its_code() {
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let file = fixture
        .index
        .file(&fixture.path("shop/pricing.py"))
        .unwrap();
    let offset = PRICING.find("amount * (1 +").unwrap();
    let target = explain::symbol_at(&file, offset).unwrap();
    assert_eq!(target.symbol().name, "apply_tax");
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
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("shop/pricing.py");
    let at = PRICING.find("percent / 100").unwrap();
    let outcome = actions::run(
        engine,
        &Config::default(),
        &fixture.index,
        ActionKind::Docstring,
        &action_input(&path, PRICING, at),
        CancellationToken::new(),
    )
    .await
    .unwrap();
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
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("geo/src/lib.rs");
    let at = LIB_RS.find("abs() +").unwrap();
    let outcome = actions::run(
        engine,
        &Config::default(),
        &fixture.index,
        ActionKind::Docstring,
        &action_input(&path, LIB_RS, at),
        CancellationToken::new(),
    )
    .await
    .unwrap();
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
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let path = fixture.path("shop/pricing.py");
    let at = PRICING.find("percent / 100").unwrap();
    let outcome = actions::run(
        engine,
        &Config::default(),
        &fixture.index,
        ActionKind::Tests,
        &action_input(&path, PRICING, at),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let file = &outcome.new_files[0];
    eprintln!("{}", file.text);
    assert_eq!(file.path, fixture.path("tests/test_pricing.py"));
    assert!(file.text.starts_with("from shop.pricing import discount\n"));
    assert!(file.text.contains("def test"));
    assert!(parses_cleanly(&file.path, &file.text));
}

#[tokio::test]
async fn explain_refactor_and_fix_actions_give_a_message_or_a_clean_edit() {
    let Some(engine) = engine() else { return };
    let fixture = Fixture::new();
    let config = Config::default();
    let path = fixture.path("shop/cart.py");
    let method = CART.find("    def add").unwrap();
    let method_end = CART.find("    def total").unwrap();

    let explain = actions::run(
        engine,
        &config,
        &fixture.index,
        ActionKind::Explain,
        &ActionInput {
            range: method..method_end,
            ..action_input(&path, CART, 0)
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let message = explain.message.unwrap();
    eprintln!("explain: {message}");
    assert!(message.split_whitespace().count() >= 5);

    let refactor = actions::run(
        engine,
        &config,
        &fixture.index,
        ActionKind::Refactor,
        &ActionInput {
            range: method..method_end,
            instruction: Some("rename the parameter price to cost"),
            ..action_input(&path, CART, 0)
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    for edit in &refactor.edits {
        let result = apply(CART, edit);
        eprintln!("refactor:\n{result}");
        assert!(result.contains("cost"));
        assert!(parses_cleanly(&path, &result));
    }
    assert!(refactor.edits.len() == 1 || refactor.message.is_some());

    let line = CART.find("return apply_tax(subtotal)").unwrap();
    let fix = actions::run(
        engine,
        &config,
        &fixture.index,
        ActionKind::Fix,
        &ActionInput {
            range: line + 17..line + 25,
            diagnostic: Some("\"subtotal\" is not defined"),
            ..action_input(&path, CART, 0)
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    for edit in &fix.edits {
        let result = apply(CART, edit);
        eprintln!("fix:\n{result}");
        assert!(parses_cleanly(&path, &result));
        assert!(result.contains("class Cart"));
    }
}

#[tokio::test]
async fn ask_answers_from_the_right_code_and_checks_citations() {
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

#[test]
fn complete_batch_prints_one_line_per_query_in_order() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
    let fixture = Fixture::new();
    let root = fixture.path("");
    let cart_cursor_line = CART.lines().position(|l| l == "        ").unwrap();
    let queries: String = [
        serde_json::json!({"id": "q1", "path": "shop/cart.py", "text": CART,
            "line": cart_cursor_line, "character": 8}),
        serde_json::json!({"id": "q2", "path": "geo/src/lib.rs", "text": LIB_RS,
            "line": 7, "character": 4}),
    ]
    .iter()
    .map(|q| format!("{q}\n"))
    .collect();
    let batch = root.join("queries.jsonl");
    std::fs::write(&batch, queries).unwrap();
    let output = pith()
        .args(["complete", "--root"])
        .arg(&root)
        .arg("--batch")
        .arg(&batch)
        .args(["--budget-tokens", "256"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["id"], "q1");
    assert_eq!(lines[1]["id"], "q2");
    for line in &lines {
        assert!(line["completion"].is_string());
        assert!(line["prompt_tokens"].as_u64().unwrap() > 0);
        assert!(line["ms"].is_u64());
    }
}

#[test]
fn ask_command_streams_an_answer() {
    if !model_installed() {
        eprintln!("\n\n*** SKIPPED: the default model is not installed ***\n");
        return;
    }
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
