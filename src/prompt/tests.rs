//! Snapshot tests of rendered prompts.

use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};

use super::*;
use crate::memory::MemoryKind;

/// Counts words as tokens: readable budgets in tests.
fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

fn snippet(path: &str, start_line: u32, text: &str, score: f32) -> Snippet {
    Snippet {
        path: PathBuf::from("/repo").join(path),
        start_line,
        end_line: start_line + text.lines().count() as u32,
        text: text.into(),
        score,
        reason: "test".into(),
    }
}

fn memory(question: &str, answer: &str) -> Memory {
    Memory {
        id: 1,
        kind: MemoryKind::Ask,
        question: question.into(),
        answer: answer.into(),
        files: vec![],
        symbols: vec![],
        code_hashes: vec![],
        created_at: 0,
        stale: false,
        score: 1.0,
    }
}

/// `$0` in `buffer` marks the cursor.
fn check(config_toml: &str, task: Task, buffer: &str, budget: Budget, expect: Expect) {
    let config = Config::from_toml("test", config_toml).unwrap();
    let cursor = buffer.find("$0").unwrap();
    let text = buffer.replace("$0", "");
    let snippets = [
        snippet(
            "util/strings.py",
            10,
            "def slug(s):\n    return s.lower()\n",
            0.5,
        ),
        snippet("models.py", 3, "class User:\n    name: str\n", 0.9),
        snippet("models.py", 0, "import dataclasses\n", 0.2),
    ];
    let memories = [memory("what does slug do", "lowercases")];
    let examples = [ResolvedExample {
        description: Some("House style:".into()),
        text: "def greet(user: User) -> str:\n    return f\"hi {user.name}\"".into(),
    }];
    let symbol = SymbolInfo {
        name: "handle".into(),
        signature: "def handle(user):".into(),
        range: text.find("def handle").unwrap_or(0)..text.len(),
    };
    let input = PromptInput {
        task,
        repo: "repo",
        root: Path::new("/repo"),
        path: Path::new("/repo/app/views.py"),
        text: &text,
        cursor,
        selection: None,
        symbol: Some(symbol),
        question: Some("where are users saved?"),
        diagnostics: &["undefined name `usr`".to_string()],
        snippets: &snippets,
        memories: &memories,
        examples: &examples,
    };
    let prompt = build(&config, &input, budget, &words);
    expect.assert_eq(&render_parts(&prompt));
}

const BUFFER: &str = "import models\n\n\ndef helper():\n    pass\n\n\ndef handle(user):\n    name = user.$0\n    return name\n\n\ndef other():\n    pass\n";
const ROOMY: Budget = Budget {
    buffer_tokens: 100,
    context_tokens: 100,
};

#[test]
fn fim_default_has_no_instructions_and_orders_context_by_path() {
    check(
        "",
        Task::Completion,
        BUFFER,
        ROOMY,
        expect![[r#"
        === repo: repo
        === context: .pith/examples
        House style:
        def greet(user: User) -> str:
            return f"hi {user.name}"

        === context: models.py
        import dataclasses
        # ⋮
        class User:
            name: str
        === context: util/strings.py
        # ⋮
        def slug(s):
            return s.lower()
        === file: app/views.py
        === prefix
        import models


        def helper():
            pass


        def handle(user):
            name = user.
        === suffix

            return name


        def other():
            pass

    "#]],
    );
}

#[test]
fn fim_with_style_rules_and_examples() {
    check(
        "[languages.python.prompt]\nstyle = [\"type hints everywhere\", \"no print\"]\n",
        Task::Completion,
        BUFFER,
        ROOMY,
        expect![[r#"
            === repo: repo
            === context: .pith/instructions
            # - type hints everywhere
            # - no print
            === context: .pith/examples
            House style:
            def greet(user: User) -> str:
                return f"hi {user.name}"

            === context: models.py
            import dataclasses
            # ⋮
            class User:
                name: str
            === context: util/strings.py
            # ⋮
            def slug(s):
                return s.lower()
            === file: app/views.py
            === prefix
            import models


            def helper():
                pass


            def handle(user):
                name = user.
            === suffix

                return name


            def other():
                pass

        "#]],
    );
}

#[test]
fn fim_trims_whole_lines_more_prefix_than_suffix() {
    check(
        "",
        Task::Completion,
        BUFFER,
        Budget {
            buffer_tokens: 9,
            context_tokens: 5,
        },
        expect![[r#"
            === repo: repo
            === context: models.py
            # ⋮
            class User:
                name: str
            === file: app/views.py
            === prefix


            def helper():
                pass


            def handle(user):
                name = user.
            === suffix


        "#]],
    );
}

#[test]
fn chat_hover() {
    check(
        "[prompt]\nstyle = [\"be short\"]\n",
        Task::Hover,
        BUFFER,
        ROOMY,
        expect![[r#"
        === system
        You are a coding assistant working inside the user's own project. Answer briefly and precisely. Use the project's code shown to you; do not invent APIs.

        Style rules of this project:
        - be short
        === user
        models.py:
        ```python
        import dataclasses
        ⋮
        class User:
            name: str
        ```

        util/strings.py:
        ```python
        ⋮
        def slug(s):
            return s.lower()
        ```

        Earlier Q: what does slug do
        Earlier A: lowercases

        In one or two sentences, explain what `handle` does.

        ```python
        def handle(user):
            name = user.
            return name


        def other():
            pass
        ```
    "#]],
    );
}

#[test]
fn chat_ask_with_custom_template() {
    check(
        "[prompt.templates]\nask = \"Q: {question}\\n{memories}{context}\"\n",
        Task::Ask,
        BUFFER,
        ROOMY,
        expect![[r#"
            === system
            You are a coding assistant working inside the user's own project. Answer briefly and precisely. Use the project's code shown to you; do not invent APIs.
            === user
            Q: where are users saved?
            Earlier Q: what does slug do
            Earlier A: lowercases

            models.py:
            ```python
            import dataclasses
            ⋮
            class User:
                name: str
            ```

            util/strings.py:
            ```python
            ⋮
            def slug(s):
                return s.lower()
            ```
        "#]],
    );
}

#[test]
fn chat_fix_lists_diagnostics() {
    check(
        "",
        Task::Fix,
        BUFFER,
        ROOMY,
        expect![[r#"
        === system
        You are a coding assistant working inside the user's own project. Answer briefly and precisely. Use the project's code shown to you; do not invent APIs.
        === user
        models.py:
        ```python
        import dataclasses
        ⋮
        class User:
            name: str
        ```

        util/strings.py:
        ```python
        ⋮
        def slug(s):
            return s.lower()
        ```

        Fix this python code.
        Problems:
        - undefined name `usr`

        Reply with the corrected code in one code block.

        ```python
        def handle(user):
            name = user.
            return name


        def other():
            pass
        ```
    "#]],
    );
}

#[test]
fn trim_keeps_cursor_line_under_any_budget() {
    let (prefix, suffix) = trim_around("a\nbb cc\ndd\n", 5, 0, &words);
    assert_eq!((prefix, suffix), ("bb ", "cc\n"));
    let (prefix, suffix) = trim_around("é", 1, 10, &words);
    assert_eq!((prefix, suffix), ("", "é"));
}

#[test]
fn examples_resolve_from_code_glob_and_symbol_per_language_and_task() {
    use crate::index::{FileIndex, Span, Symbol, SymbolKind};
    let text = "def house_style(x):\n    return x\n";
    let file = std::sync::Arc::new(FileIndex {
        path: PathBuf::from("/repo/examples/style.py"),
        lang: Lang::Python,
        text: text.into(),
        content_hash: 0,
        symbols: vec![Symbol {
            name: "house_style".into(),
            kind: SymbolKind::Function,
            container: None,
            qualified_name: "house_style".into(),
            span: Span {
                start_byte: 0,
                end_byte: text.len() - 1,
                ..Span::default()
            },
            name_span: Span::default(),
            signature: "def house_style(x):".into(),
            doc: None,
            parent: None,
        }],
        imports: vec![],
        references: vec![],
        parse_errors: 0,
    });
    let config = Config::from_toml(
        "test",
        r#"
[[examples]]
code = "inline example"
tasks = ["docstring"]

[[examples]]
glob = "examples/*.py"
description = "A whole file:"

[[examples]]
symbol = "house_style"

[[languages.rust.examples]]
code = "fn rust_only() {}"
"#,
    )
    .unwrap();
    let resolve = |lang, task| {
        resolve_examples(
            &config,
            Some(lang),
            task,
            Path::new("/repo"),
            &[file.clone()],
        )
        .into_iter()
        .map(|e| format!("{:?} {:?}", e.description, e.text))
        .collect::<Vec<_>>()
        .join("\n")
    };
    expect![[r#"
        None "inline example"
        Some("A whole file:") "def house_style(x):\n    return x\n"
        None "def house_style(x):\n    return x""#]]
    .assert_eq(&resolve(Lang::Python, Task::Docstring));
    expect![[r#"
        Some("A whole file:") "def house_style(x):\n    return x\n"
        None "def house_style(x):\n    return x""#]]
    .assert_eq(&resolve(Lang::Python, Task::Completion));
    expect![[r#"None "fn rust_only() {}""#]].assert_eq(&resolve(Lang::Rust, Task::Docstring));
}
