//! Context retrieval on small fixture workspaces written into a tempdir: which definitions come
//! back for representative cursors, the budget, odd input, and stability while the cursor moves.

use expect_test::{Expect, expect};
use pith::engine::estimate_tokens;
use pith::retrieve::{Query, Snippet, SymbolTable, retrieve_in, scan};

const CURSOR: &str = "$0";

struct Fixture {
    dir: tempfile::TempDir,
    table: SymbolTable,
}

/// Writes `files` (path, text) under a fresh tempdir and indexes them.
fn workspace(files: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(&full, text).expect("write");
    }
    let table = scan(dir.path());
    Fixture { dir, table }
}

impl Fixture {
    /// Retrieves for `buffer` (with `$0` at the cursor) as the text of `path`.
    fn query(&self, path: &str, buffer: &str, budget: usize) -> Vec<Snippet> {
        let cursor = buffer.find(CURSOR).expect("buffer has a $0 cursor");
        let text = buffer.replacen(CURSOR, "", 1);
        let path = self.dir.path().join(path);
        let query = Query {
            path: &path,
            text: &text,
            cursor,
            budget_tokens: budget,
            recent: &[],
        };
        retrieve_in(&self.table, &query, &estimate_tokens)
    }

    fn render(&self, snippets: &[Snippet]) -> String {
        let mut out = String::new();
        for s in snippets {
            let path = s.path.strip_prefix(self.dir.path()).unwrap_or(&s.path);
            let first = s.text.lines().next().unwrap_or("");
            out.push_str(&format!(
                "{}:{}-{} {} | {}\n",
                path.display(),
                s.start_line,
                s.end_line,
                s.reason,
                first.trim()
            ));
        }
        out
    }
}

/// Indexes `files`, retrieves for `buffer` edited as `path`, and compares the snippets (path,
/// line range, reason, first line) with `expect`.
fn check(files: &[(&str, &str)], path: &str, buffer: &str, budget: usize, expect: Expect) {
    let fixture = workspace(files);
    let snippets = fixture.query(path, buffer, budget);
    assert_budget(&snippets, budget);
    expect.assert_eq(&fixture.render(&snippets));
}

fn assert_budget(snippets: &[Snippet], budget: usize) {
    let used: usize = snippets.iter().map(|s| estimate_tokens(&s.text)).sum();
    assert!(used <= budget, "{used} tokens over a budget of {budget}");
}

const PY_MODELS: &str = r#"class Request:
    """A user-created request."""

    def __init__(self, method, url):
        self.method = method
        self.url = url

    def prepare(self):
        return PreparedRequest()


class PreparedRequest:
    """The request as sent."""

    def prepare_body(self, data):
        self.body = data
"#;

const PY_UTILS: &str = r#"DEFAULT_TIMEOUT = 30


def slugify(text):
    """Lower-case, dash-separated."""
    return text.lower().replace(" ", "-")


def to_key_val_list(value):
    return list(value)
"#;

const PY_BASE: &str = r#"class BaseAdapter:
    """The base transport."""

    def send_bytes(self, payload):
        raise NotImplementedError

    def close(self):
        pass
"#;

fn python_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("pkg/__init__.py", "from .models import Request\n"),
        ("pkg/models.py", PY_MODELS),
        ("pkg/utils.py", PY_UTILS),
        ("pkg/base.py", PY_BASE),
        (
            "pkg/api.py",
            "from .models import Request\n\ndef request(method, url):\n    return Request(method, url)\n",
        ),
    ]
}

#[test]
fn python_imported_names_come_first() {
    check(
        &python_files(),
        "pkg/api.py",
        "from .models import Request\nfrom .utils import to_key_val_list\n\ndef request(method, url):\n    $0\n    return Request(method, url)\n",
        1024,
        expect![[r#"
            pkg/models.py:0-9 import | class Request:
            pkg/utils.py:8-10 import | def to_key_val_list(value):
        "#]],
    );
}

#[test]
fn python_package_reexport_is_followed() {
    // `from . import Request` reaches models.py through the package's `__init__.py`.
    check(
        &python_files(),
        "pkg/sessions.py",
        "from . import Request\n\ndef make():\n    r = Request('GET', '/')\n    $0\n",
        1024,
        expect![[r#"
            pkg/models.py:0-9 import | class Request:
        "#]],
    );
}

#[test]
fn python_call_through_module_alias() {
    check(
        &python_files(),
        "pkg/views.py",
        "from . import utils\n\ndef title(page):\n    $0\n    return utils.slugify(page.name)\n",
        1024,
        expect![[r#"
            pkg/utils.py:0-1 module-item | DEFAULT_TIMEOUT = 30
            pkg/utils.py:3-6 module-member | def slugify(text):
            pkg/utils.py:8-10 module-item | def to_key_val_list(value):
        "#]],
    );
}

#[test]
fn python_self_method_from_base_class() {
    check(
        &python_files(),
        "pkg/adapters.py",
        "from .base import BaseAdapter\n\nclass HTTPAdapter(BaseAdapter):\n    def send(self, request):\n        data = request.body\n        $0\n        return self.send_bytes(data)\n",
        1024,
        expect![[r#"
            pkg/base.py:0-8 import | class BaseAdapter:
            pkg/base.py:3-5 self-member | def send_bytes(self, payload):
        "#]],
    );
}

const RS_LIB: &str = r#"//! The crate.
mod de;
mod error;
pub mod read;

pub use crate::de::{from_str, Deserializer};
pub use crate::error::{Error, Result};
"#;

const RS_DE: &str = r#"use crate::error::Result;
use crate::read::Read;

/// Deserializes JSON text.
pub struct Deserializer<R> {
    read: R,
}

impl<R: Read> Deserializer<R> {
    pub fn new(read: R) -> Self {
        Deserializer { read }
    }

    pub fn end(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Parses `s`.
pub fn from_str(s: &str) -> Result<u32> {
    Ok(s.len() as u32)
}
"#;

const RS_ERROR: &str = r#"/// What went wrong.
pub struct Error {
    line: usize,
}

pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    pub fn syntax(line: usize) -> Self {
        Error { line }
    }
}
"#;

const RS_READ: &str = r#"/// A source of bytes.
pub trait Read {
    fn next(&mut self) -> Option<u8>;
    fn peek(&mut self) -> Option<u8>;
    fn position(&self) -> usize;
}

pub struct StrRead<'a> {
    slice: &'a [u8],
}
"#;

fn rust_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Cargo.toml", "[package]\nname = \"fix\"\n"),
        ("src/lib.rs", RS_LIB),
        ("src/de.rs", RS_DE),
        ("src/error.rs", RS_ERROR),
        ("src/read.rs", RS_READ),
    ]
}

#[test]
fn rust_use_path_through_reexport() {
    // `crate::from_str` is a `pub use` in lib.rs of a function in de.rs.
    check(
        &rust_files(),
        "src/value.rs",
        "use crate::from_str;\n\npub fn parse(text: &str) -> u32 {\n    $0\n    from_str(text).unwrap_or(0)\n}\n",
        1024,
        expect![[r#"
            src/de.rs:19-22 import | pub fn from_str(s: &str) -> Result<u32> {
        "#]],
    );
}

#[test]
fn rust_associated_function_through_type() {
    check(
        &rust_files(),
        "src/value.rs",
        "use crate::error::Error;\n\nfn fail(line: usize) -> Error {\n    $0\n    Error::syntax(line)\n}\n",
        1024,
        expect![[r#"
            src/error.rs:1-4 import | pub struct Error {
            src/error.rs:8-11 type-member | pub fn syntax(line: usize) -> Self {
        "#]],
    );
}

#[test]
fn rust_trait_methods_of_implemented_trait() {
    check(
        &rust_files(),
        "src/iter.rs",
        "use crate::read::Read;\n\nstruct Bytes(Vec<u8>);\n\nimpl Read for Bytes {\n    fn next(&mut self) -> Option<u8> {\n        $0\n        self.peek()\n    }\n}\n",
        1024,
        expect![[r#"
            src/read.rs:1-6 import | pub trait Read {
        "#]],
    );
}

#[test]
fn rust_written_out_module_path() {
    check(
        &rust_files(),
        "src/value.rs",
        "fn parse(text: &str) -> u32 {\n    $0\n    super::de::from_str(text).unwrap_or(0)\n}\n",
        1024,
        expect![[r#"
            src/de.rs:4-7 module-item | pub struct Deserializer<R> {
            src/de.rs:9-12 type-member | pub fn new(read: R) -> Self {
            src/de.rs:13-14 type-member | pub fn end(&mut self) -> Result<()> { /* … */ }
            src/de.rs:19-22 module-member | pub fn from_str(s: &str) -> Result<u32> {
        "#]],
    );
}

#[test]
fn budget_is_never_exceeded() {
    let fixture = workspace(&python_files());
    let buffer = "from .models import Request, PreparedRequest\nfrom .utils import slugify, to_key_val_list, DEFAULT_TIMEOUT\nfrom .base import BaseAdapter\n\nclass A(BaseAdapter):\n    def go(self):\n        $0\n        return slugify(Request('GET', '/').url)\n";
    let mut seen_some = false;
    for budget in [0, 1, 5, 10, 20, 40, 80, 160, 320, 1024] {
        let snippets = fixture.query("pkg/a.py", buffer, budget);
        assert_budget(&snippets, budget);
        seen_some |= !snippets.is_empty();
    }
    assert!(seen_some);
    assert!(fixture.query("pkg/a.py", buffer, 0).is_empty());
}

#[test]
fn definitions_in_another_language_are_never_returned() {
    let fixture = workspace(&[
        ("pkg/__init__.py", ""),
        ("pkg/a.py", "def alpha():\n    pass\n"),
        ("pkg/b.py", "def beta():\n    pass\n"),
        ("pkg/c.py", "def gamma():\n    pass\n"),
        ("pkg/d.py", "def delta():\n    pass\n"),
        ("src/e.rs", "fn epsilon() {}\n"),
        ("src/f.rs", "fn zeta() {}\n"),
        (
            "pkg/service.py",
            "def describe(user):\n    return str(user)\n\ndef main():\n    pass\n",
        ),
        (
            "tests/robust.rs",
            "fn describe(messages: &[u8]) -> String {\n    String::new()\n}\n\nfn main() {}\n",
        ),
    ]);
    let snippets = fixture.query(
        "app.py",
        "from elsewhere.service import describe  # not in the workspace\n\n\ndef main():\n    user = 1\n    $0print(describe(user))\n\n\nif __name__ == \"__main__\":\n    main()\n",
        1024,
    );
    // Unresolved, the name is matched across the workspace: in Python files only.
    assert!(snippets.iter().any(|s| s.path.ends_with("pkg/service.py")));
    assert!(
        snippets
            .iter()
            .all(|s| s.path.extension().is_none_or(|e| e != "rs")),
        "{snippets:?}"
    );
}

#[test]
fn the_edited_file_is_never_returned() {
    let fixture = workspace(&python_files());
    // api.py exists on disk and defines `request`; the buffer uses it.
    let snippets = fixture.query(
        "pkg/api.py",
        "from .models import Request\n\ndef request(method, url):\n    return Request(method, url)\n\ndef get(url):\n    $0\n    return request('GET', url)\n",
        1024,
    );
    assert!(!snippets.is_empty());
    assert!(snippets.iter().all(|s| !s.path.ends_with("pkg/api.py")));
}

#[test]
fn non_ascii_text() {
    check(
        &[
            ("pkg/__init__.py", ""),
            (
                "pkg/größe.py",
                "def maß(wert):\n    \"\"\"Größe in 😀 Einheiten.\"\"\"\n    return wert\n",
            ),
        ],
        "pkg/ansicht.py",
        "from .größe import maß\n\ndef zeige(x):\n    s = \"héllo 😀\"\n    $0\n    return maß(x)  # ✓\n",
        1024,
        expect![[r#"
            pkg/größe.py:0-3 import | def maß(wert):
        "#]],
    );
}

#[test]
fn empty_workspace() {
    check(
        &[],
        "main.py",
        "import os\n\ndef f():\n    $0\n",
        1024,
        expect![""],
    );
}

#[test]
fn unsupported_file_gives_nothing() {
    check(
        &python_files(),
        "notes.txt",
        "Request $0 slugify\n",
        1024,
        expect![""],
    );
}

#[test]
fn unparsable_buffer_still_retrieves() {
    check(
        &python_files(),
        "pkg/broken.py",
        "from .utils import slugify\n\ndef f(:\n    ]]] slugify(\n    $0 class\n",
        1024,
        expect![[r#"
            pkg/utils.py:3-6 import | def slugify(text):
        "#]],
    );
}

#[test]
fn cursor_anywhere_does_not_panic() {
    let fixture = workspace(&python_files());
    let text = "from .models import Request\n\ndef f(é):\n    return Request(é, '😀')\n";
    let path = fixture.dir.path().join("pkg/x.py");
    for cursor in 0..=text.len() + 3 {
        let query = Query {
            path: &path,
            text,
            cursor,
            budget_tokens: 200,
            recent: &[],
        };
        assert_budget(&retrieve_in(&fixture.table, &query, &estimate_tokens), 200);
    }
}

#[test]
fn stable_while_the_cursor_moves_within_a_function() {
    let fixture = workspace(&python_files());
    let text = "from .models import Request\nfrom .utils import slugify\nfrom . import base\n\ndef first(name):\n    key = slugify(name)\n    r = Request('GET', key)\n    return r.prepare()\n\ndef second(adapter):\n    return adapter.close()\n";
    let path = fixture.dir.path().join("pkg/x.py");
    let run = |cursor: usize| {
        let query = Query {
            path: &path,
            text,
            cursor,
            budget_tokens: 120,
            recent: &[],
        };
        retrieve_in(&fixture.table, &query, &estimate_tokens)
    };
    let body = text.find("    key").expect("first body");
    let end = text.find("\n\ndef second").expect("second");
    let reference = run(body);
    assert!(!reference.is_empty());
    for cursor in body..end {
        let snippets = run(cursor);
        assert_eq!(
            snippets.iter().map(|s| &s.text).collect::<Vec<_>>(),
            reference.iter().map(|s| &s.text).collect::<Vec<_>>(),
            "context changed at byte {cursor}"
        );
    }
    // Moving into another function may change it: the second function's focus is `close`.
    let other = run(text.find("adapter.close").expect("second body"));
    assert_ne!(other, reference);
}

#[test]
fn batch_cli_answers_every_query_in_order() {
    let fixture = workspace(&python_files());
    let queries = [
        serde_json::json!({"id": "a", "path": "pkg/api.py", "text": "from .utils import slugify\n\ndef f(x):\n    \n    return slugify(x)\n", "line": 3, "character": 4}),
        serde_json::json!({"id": "b", "path": "pkg/none.py", "text": "", "line": 9, "character": 9}),
    ];
    let mut batch = String::new();
    for q in &queries {
        batch.push_str(&q.to_string());
        batch.push('\n');
    }
    batch.push_str("{\"id\": \"c\", \"broken\": true}\n");
    let batch_path = fixture.dir.path().join("queries.jsonl");
    std::fs::write(&batch_path, batch).expect("write batch");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(["context", "--root"])
        .arg(fixture.dir.path())
        .arg("--batch")
        .arg(&batch_path)
        .args(["--budget-tokens", "256"])
        .output()
        .expect("run pith");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let first = &lines[0]["snippets"][0];
    assert_eq!(first["path"], "pkg/utils.py");
    assert_eq!(first["start_line"], 3);
    assert!(
        first["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("def slugify"))
    );
    assert_eq!(lines[1]["snippets"], serde_json::json!([]));
}

#[test]
fn recent_files_break_ties() {
    let fixture = workspace(&[
        ("a/__init__.py", ""),
        ("a/one.py", "def shared_helper(x):\n    return x\n"),
        ("a/two.py", "def shared_helper(y):\n    return y\n"),
    ]);
    let path = fixture.dir.path().join("a/main.py");
    let text = "def f(v):\n    return shared_helper(v)\n";
    let top = |recent: &[std::path::PathBuf]| {
        let query = Query {
            path: &path,
            text,
            cursor: 20,
            budget_tokens: 1024,
            recent,
        };
        let snippets = retrieve_in(&fixture.table, &query, &estimate_tokens);
        let best = snippets
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .expect("some snippet");
        best.path.clone()
    };
    let two = fixture.dir.path().join("a/two.py");
    assert_eq!(top(std::slice::from_ref(&two)), two);
    let one = fixture.dir.path().join("a/one.py");
    assert_eq!(top(std::slice::from_ref(&one)), one);
}

#[test]
fn retrieve_reads_the_workspace_index() {
    // The LSP path: the live index holds the workspace, the buffer comes from the editor.
    let fixture = workspace(&rust_files());
    let index = pith::index::WorkspaceIndex::new(
        vec![fixture.dir.path().to_path_buf()],
        Default::default(),
    );
    for (path, text) in rust_files() {
        index.update_file(&fixture.dir.path().join(path), text);
    }
    let path = fixture.dir.path().join("src/value.rs");
    let text = "use crate::from_str;\n\npub fn parse(text: &str) -> u32 {\n    from_str(text).unwrap_or(0)\n}\n";
    let query = Query {
        path: &path,
        text,
        cursor: text.find("from_str(text)").unwrap_or(0),
        budget_tokens: 1024,
        recent: &[],
    };
    let snippets = pith::retrieve::retrieve(&index, &query, &estimate_tokens);
    expect![[r#"
        src/de.rs:19-22 import | pub fn from_str(s: &str) -> Result<u32> {
    "#]]
    .assert_eq(&fixture.render(&snippets));

    // An edit elsewhere reaches the next retrieval (the derived table is not stale).
    index.update_file(
        &fixture.dir.path().join("src/de.rs"),
        &RS_DE.replace(
            "pub fn from_str(s: &str)",
            "pub fn from_str(s: &str, strict: bool)",
        ),
    );
    let snippets = pith::retrieve::retrieve(&index, &query, &estimate_tokens);
    assert!(snippets[0].text.contains("strict: bool"), "{snippets:?}");
}

#[test]
fn module_items_are_only_what_the_module_exports() {
    check(
        &[
            ("pkg/__init__.py", ""),
            (
                "pkg/helpers.py",
                "def _internal(x):\n    return x\n\n\ndef public(x):\n    return _internal(x)\n",
            ),
            ("src/lib.rs", "mod ser;\n"),
            (
                "src/ser.rs",
                "const HIDDEN: u8 = 1;\n\npub fn to_writer(w: u8) -> u8 {\n    w + HIDDEN\n}\n",
            ),
        ],
        "pkg/main.py",
        "from . import helpers\n\ndef run():\n    $0\n",
        1024,
        expect![[r#"
            pkg/helpers.py:4-6 module-item | def public(x):
        "#]],
    );
    check(
        &[
            ("src/lib.rs", "mod ser;\nmod value;\n"),
            (
                "src/ser.rs",
                "const HIDDEN: u8 = 1;\n\npub fn to_writer(w: u8) -> u8 {\n    w + HIDDEN\n}\n\npub fn to_string(w: u8) -> u8 {\n    w\n}\n",
            ),
        ],
        "src/value.rs",
        "fn show(v: u8) -> u8 {\n    $0\n    super::ser::to_string(v)\n}\n",
        1024,
        expect![[r#"
            src/ser.rs:2-5 module-item | pub fn to_writer(w: u8) -> u8 {
            src/ser.rs:6-9 module-member | pub fn to_string(w: u8) -> u8 {
        "#]],
    );
}
