//! End-to-end tests of `pith serve` over stdio, driven by the client in `tests/support` on a
//! copy of `tests/fixtures/workspace`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Fixture, LspClient, position_of};

const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// A server initialized on a fresh fixture, its scan finished.
fn start(capabilities: Value) -> (Fixture, LspClient, Value) {
    let fixture = Fixture::new();
    let mut client = LspClient::spawn();
    let result = client.initialize(Some(&fixture.root()), capabilities);
    client.wait_for_progress_end(SCAN_TIMEOUT);
    (fixture, client, result)
}

/// Nested document symbols as an indented outline: `name kind (line)`.
fn outline(symbols: &Value) -> String {
    fn walk(symbols: &Value, depth: usize, out: &mut String) {
        for symbol in symbols.as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{}{} {} (line {})\n",
                "  ".repeat(depth),
                symbol["name"].as_str().unwrap_or("?"),
                symbol["kind"],
                symbol["selectionRange"]["start"]["line"]
            ));
            walk(&symbol["children"], depth + 1, out);
        }
    }
    let mut out = String::new();
    walk(symbols, 0, &mut out);
    out
}

fn workspace_symbols(client: &mut LspClient, query: &str) -> Vec<Value> {
    client
        .request("workspace/symbol", json!({"query": query}))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn text_position(uri: &str, position: Value) -> Value {
    json!({"textDocument": {"uri": uri}, "position": position})
}

#[test]
fn initialize_advertises_what_works_scans_with_progress_and_watches_files() {
    let (_fixture, mut client, result) = start(json!({}));
    let caps = &result["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["hoverProvider"], true);
    assert_eq!(caps["definitionProvider"], true);
    assert_eq!(caps["documentSymbolProvider"], true);
    assert_eq!(caps["workspaceSymbolProvider"], true);
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental sync");
    assert_eq!(caps["inlineCompletionProvider"], true);
    assert_eq!(caps["codeActionProvider"]["resolveProvider"], true);
    let commands = caps["executeCommandProvider"]["commands"].to_string();
    for command in [
        "pith.ask",
        "pith.explain",
        "pith.status",
        "pith.memory.clear",
    ] {
        assert!(
            commands.contains(command),
            "{command} not advertised: {commands}"
        );
    }

    let created = client.server_requests("window/workDoneProgress/create");
    assert_eq!(created.len(), 1, "one progress token");
    let token = created[0]["token"].clone();
    let progress = client.notifications("$/progress");
    let kinds: Vec<&str> = progress
        .iter()
        .filter(|p| p["token"] == token)
        .filter_map(|p| p["value"]["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"begin"));
    assert_eq!(kinds.last(), Some(&"end"));

    let registrations =
        client.wait_for_server_request("client/registerCapability", Duration::from_secs(10));
    let watchers: Vec<&Value> = registrations
        .iter()
        .flat_map(|r| r["registrations"].as_array().into_iter().flatten())
        .filter(|r| r["method"] == "workspace/didChangeWatchedFiles")
        .collect();
    assert_eq!(watchers.len(), 1);
    assert_eq!(
        watchers[0]["registerOptions"]["watchers"][0]["globPattern"],
        "**/*.{py,pyi,rs}"
    );
}

#[test]
fn no_watchers_or_progress_without_client_support() {
    let fixture = Fixture::new();
    let mut client = LspClient::spawn();
    client.initialize(
        Some(&fixture.root()),
        json!({
            "window": {"workDoneProgress": false},
            "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": false}},
        }),
    );
    // The scan still runs: wait until a file shows up.
    let deadline = std::time::Instant::now() + SCAN_TIMEOUT;
    while workspace_symbols(&mut client, "make_user").is_empty() {
        assert!(std::time::Instant::now() < deadline, "scan never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        client
            .server_requests("client/registerCapability")
            .is_empty()
    );
    assert!(client.notifications("$/progress").is_empty());
}

#[test]
fn document_symbols_are_hierarchical() {
    let (fixture, mut client, _) = start(json!({}));
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": fixture.uri("pkg/models.py")}}),
    );
    let python_outline = outline(&symbols);
    // kinds: 5 class, 6 method, 12 function, 14 constant
    for expected in [
        "User 5 (line 5)\n",
        "  __init__ 6 (line 8)\n",
        "  greet 6 (line 12)\n",
        "größe_of 12 (line 17)\n",
    ] {
        assert!(
            python_outline.contains(expected),
            "{expected:?} not in\n{python_outline}"
        );
    }

    let rust = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": fixture.uri("crate/src/shapes.rs")}}),
    );
    let rust_outline = outline(&rust);
    assert!(
        rust_outline.contains("Circle 23 (line 3)\n"),
        "{rust_outline}"
    );
    assert!(
        rust_outline.contains("  area 6 (line 9)\n"),
        "{rust_outline}"
    );

    // A file with a syntax error still yields what parses.
    let broken = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": fixture.uri("broken.py")}}),
    );
    assert!(
        outline(&broken).contains("StillFound 5 (line 8)\n  method 6 (line 9)\n"),
        "{}",
        outline(&broken)
    );
}

#[test]
fn workspace_symbols_search_across_files_and_languages() {
    let (fixture, mut client, _) = start(json!({}));
    let hits = workspace_symbols(&mut client, "make_us");
    assert_eq!(hits[0]["name"], "make_user");
    assert_eq!(hits[0]["location"]["uri"], fixture.uri("pkg/service.py"));
    assert_eq!(
        hits[0]["location"]["range"],
        json!({"start": {"line": 4, "character": 4}, "end": {"line": 4, "character": 13}})
    );

    let circle = workspace_symbols(&mut client, "Circle");
    assert!(
        circle
            .iter()
            .any(|s| s["name"] == "Circle"
                && s["location"]["uri"] == fixture.uri("crate/src/shapes.rs")),
        "{circle:?}"
    );
    // The binary file is not indexed and did not stop the scan.
    assert!(workspace_symbols(&mut client, "binary").is_empty());
}

#[test]
fn workspace_folders_can_be_added_and_removed_at_runtime() {
    let (fixture, mut client, result) = start(json!({}));
    assert_eq!(
        result["capabilities"]["workspace"]["workspaceFolders"]["changeNotifications"],
        true
    );
    let extra_dir = tempfile::tempdir().expect("tempdir");
    let extra = extra_dir.path().canonicalize().expect("canonical");
    let tools =
        "def frobnicate_widgets(count):\n    \"\"\"Turns widgets.\"\"\"\n    return count\n";
    std::fs::write(extra.join("tools.py"), tools).expect("write");
    let tools_uri = support::file_uri(&extra.join("tools.py"));
    let caller_uri = fixture.uri("caller.py");
    let caller = "from tools import frobnicate_widgets\n\nfrobnicate_widgets(3)\n";
    client.did_open(&caller_uri, "python", 1, caller);
    let folder = json!([{"uri": support::file_uri(&extra), "name": "extra"}]);
    let find = |client: &mut LspClient| -> Vec<Value> {
        workspace_symbols(client, "frobnicate_widgets")
            .into_iter()
            .filter(|symbol| symbol["location"]["uri"] == tools_uri)
            .collect()
    };
    let hover_on_tools = |client: &mut LspClient| {
        client.request(
            "textDocument/hover",
            text_position(&tools_uri, position_of(tools, "frobnicate_widgets", 2)),
        )
    };
    let definition_from_caller = |client: &mut LspClient| {
        client.request(
            "textDocument/definition",
            text_position(&caller_uri, position_of(caller, "frobnicate_widgets(3)", 2)),
        )
    };
    assert!(find(&mut client).is_empty());
    assert_eq!(hover_on_tools(&mut client), Value::Null, "not yet a root");

    client.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({"event": {"added": folder, "removed": []}}),
    );
    let deadline = std::time::Instant::now() + SCAN_TIMEOUT;
    while find(&mut client).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the added folder was never indexed\nstderr:\n{}",
            client.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its scan has its own progress, begun and ended like the first one.
    let created = client.server_requests("window/workDoneProgress/create");
    assert_eq!(created.len(), 2, "one more progress token: {created:?}");
    assert_ne!(created[0]["token"], created[1]["token"]);
    let token = created[1]["token"].clone();
    client.wait_for_notification(
        "$/progress",
        |params| params["token"] == token && params["value"]["kind"] == "end",
        SCAN_TIMEOUT,
    );
    let hover = hover_on_tools(&mut client);
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(shown.contains("def frobnicate_widgets(count)"), "{hover}");
    assert!(shown.contains("Turns widgets."), "{hover}");
    let found = definition_from_caller(&mut client);
    assert_eq!(found[0]["uri"], tools_uri, "{found}");
    assert_eq!(
        found[0]["range"]["start"],
        json!({"line": 0, "character": 4})
    );

    client.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({"event": {"added": [], "removed": folder}}),
    );
    assert!(
        find(&mut client).is_empty(),
        "the removed folder's symbols stay"
    );
    assert_eq!(
        hover_on_tools(&mut client),
        Value::Null,
        "a removed folder is read"
    );
    assert_eq!(definition_from_caller(&mut client), Value::Null);
    // The first folder is still there.
    assert!(!workspace_symbols(&mut client, "make_user").is_empty());
}

#[test]
fn definition_crosses_files_and_languages() {
    let (fixture, mut client, _) = start(json!({}));
    let app = fixture.read("app.py");
    let found = client.request(
        "textDocument/definition",
        text_position(
            &fixture.uri("app.py"),
            position_of(&app, "make_user(\"Alice", 3),
        ),
    );
    assert_eq!(found[0]["uri"], fixture.uri("pkg/service.py"));
    assert_eq!(
        found[0]["range"]["start"],
        json!({"line": 4, "character": 4})
    );

    let service = fixture.read("pkg/service.py");
    let found = client.request(
        "textDocument/definition",
        text_position(
            &fixture.uri("pkg/service.py"),
            position_of(&service, "größe_of(user)", 2),
        ),
    );
    assert_eq!(found[0]["uri"], fixture.uri("pkg/models.py"));
    assert_eq!(
        found[0]["range"]["start"],
        json!({"line": 17, "character": 4})
    );

    let lib = fixture.read("crate/src/lib.rs");
    let found = client.request(
        "textDocument/definition",
        text_position(
            &fixture.uri("crate/src/lib.rs"),
            position_of(&lib, "Circle::area", 9),
        ),
    );
    assert_eq!(found[0]["uri"], fixture.uri("crate/src/shapes.rs"));
    assert_eq!(found[0]["range"]["start"]["line"], 9);

    // Not on an identifier: no definition, no error.
    let nothing = client.request(
        "textDocument/definition",
        text_position(&fixture.uri("app.py"), json!({"line": 1, "character": 0})),
    );
    assert_eq!(nothing, Value::Null);
}

#[test]
fn hover_shows_signature_doc_and_location() {
    let (fixture, mut client, _) = start(json!({}));
    let app = fixture.read("app.py");
    let hover = client.request(
        "textDocument/hover",
        text_position(&fixture.uri("app.py"), position_of(&app, "make_user(\"", 1)),
    );
    assert_eq!(hover["contents"]["kind"], "markdown");
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("```python\ndef make_user(name: str) -> User:"),
        "{text}"
    );
    assert!(
        text.contains("Create a user with a default size."),
        "{text}"
    );
    assert!(text.contains("defined in pkg/service.py:5"), "{text}");

    let shapes = fixture.read("crate/src/shapes.rs");
    let hover = client.request(
        "textDocument/hover",
        text_position(
            &fixture.uri("crate/src/shapes.rs"),
            position_of(&shapes, "fn area", 4),
        ),
    );
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("```rust\npub fn area(&self) -> f64"),
        "{text}"
    );
    assert!(text.contains("Its area, π r²."), "{text}");
}

#[test]
fn incremental_utf16_edits_over_non_ascii_text_are_seen_by_queries() {
    let (fixture, mut client, _) = start(json!({}));
    let uri = fixture.uri("pkg/models.py");
    let text = fixture.read("pkg/models.py");
    client.did_open(&uri, "python", 1, &text);

    // "größe_of" → "größe_in_cm": UTF-16 columns 10..12 on line 17 (bytes 12..14).
    let rename_start = position_of(&text, "größe_of(user", 6);
    assert_eq!(rename_start, json!({"line": 17, "character": 10}));
    // After the emoji (two UTF-16 units) that closes the GREETING line: column 27.
    let after_greeting = position_of(&text, "🌍\"", 2);
    assert_eq!(after_greeting, json!({"line": 2, "character": 27}));
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [
                {"range": {"start": rename_start, "end": {"line": 17, "character": 12}},
                 "text": "in_cm"},
                {"range": {"start": after_greeting, "end": after_greeting},
                 "text": "  # 🌍\n\n\ndef adieu() -> str:\n    return GREETING\n"},
            ]
        }),
    );

    let renamed = workspace_symbols(&mut client, "größe_in_cm");
    assert_eq!(renamed[0]["name"], "größe_in_cm");
    assert_eq!(
        renamed[0]["location"]["range"],
        json!({"start": {"line": 22, "character": 4}, "end": {"line": 22, "character": 15}})
    );
    assert!(
        workspace_symbols(&mut client, "größe_of")
            .iter()
            .all(|s| s["name"] != "größe_of" || s["location"]["uri"] != uri)
    );
    let adieu = workspace_symbols(&mut client, "adieu");
    assert_eq!(
        adieu[0]["location"]["range"]["start"],
        json!({"line": 5, "character": 4})
    );

    // A stale (older) version is ignored, not applied.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 1},
            "contentChanges": [{"text": "def stale_version(): pass\n"}]
        }),
    );
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    let python_outline = outline(&symbols);
    assert!(python_outline.contains("adieu"), "{python_outline}");
    assert!(
        !python_outline.contains("stale_version"),
        "{python_outline}"
    );

    // Closing the buffer falls back to the disk copy.
    client.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri}}),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !workspace_symbols(&mut client, "adieu").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "closed buffer still indexed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        workspace_symbols(&mut client, "größe_of")[0]["name"],
        "größe_of"
    );
}

#[test]
fn utf8_is_negotiated_when_offered() {
    let (fixture, mut client, result) =
        start(json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}}));
    assert_eq!(result["capabilities"]["positionEncoding"], "utf-8");
    let hit = workspace_symbols(&mut client, "größe_of");
    // "größe_of" is 10 bytes (8 UTF-16 units).
    assert_eq!(
        hit[0]["location"]["range"],
        json!({"start": {"line": 17, "character": 4}, "end": {"line": 17, "character": 14}})
    );
    // A UTF-8 column past "größe" lands inside the name.
    let found = client.request(
        "textDocument/definition",
        text_position(
            &fixture.uri("pkg/service.py"),
            json!({"line": 1, "character": 30}),
        ),
    );
    assert_eq!(found[0]["uri"], fixture.uri("pkg/models.py"));
}

#[test]
fn watched_file_events_update_the_index() {
    let (fixture, mut client, _) = start(json!({}));
    assert!(!workspace_symbols(&mut client, "make_user").is_empty());

    std::fs::remove_file(fixture.path("pkg/service.py")).unwrap();
    fixture.write("pkg/extra.py", "def freshly_made() -> int:\n    return 1\n");
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [
            {"uri": fixture.uri("pkg/service.py"), "type": 3},
            {"uri": fixture.uri("pkg/extra.py"), "type": 1},
        ]}),
    );
    // Notifications are handled in order with requests that follow them closely; poll briefly
    // in case the handler is still running.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let gone = workspace_symbols(&mut client, "make_user")
            .iter()
            .all(|s| s["location"]["uri"] != fixture.uri("pkg/service.py"));
        let added = !workspace_symbols(&mut client, "freshly_made").is_empty();
        if gone && added {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "watched-file events not applied"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn documents_outside_the_workspace_work_as_buffers() {
    let (_fixture, mut client, _) = start(json!({}));
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().canonicalize().unwrap().join("loose.rs");
    let uri = support::file_uri(&path);
    let text = "/// Loose.\npub fn loose_fn() -> u8 { helper() }\nfn helper() -> u8 { 1 }\n";
    client.did_open(&uri, "rust", 1, text);
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert!(
        outline(&symbols).contains("loose_fn 12 (line 1)"),
        "{}",
        outline(&symbols)
    );
    let found = client.request(
        "textDocument/definition",
        text_position(&uri, position_of(text, "helper()", 1)),
    );
    assert_eq!(found[0]["uri"], uri);
    assert_eq!(found[0]["range"]["start"]["line"], 2);
}

#[test]
fn full_document_changes_replace_the_buffer() {
    let (_fixture, mut client, _) = start(json!({}));
    let elsewhere = tempfile::tempdir().unwrap();
    let uri = support::file_uri(&elsewhere.path().canonicalize().unwrap().join("scratch.py"));
    client.did_open(&uri, "python", 1, "def first_draft(): pass\n");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"text": "class SecondDraft:\n    def ünïcode(self): pass\n"}]}),
    );
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(
        outline(&symbols),
        "SecondDraft 5 (line 0)\n  ünïcode 6 (line 1)\n"
    );
}

#[test]
fn multi_root_workspaces_index_every_folder() {
    let fixture = Fixture::new();
    let other = tempfile::tempdir().unwrap();
    let other_root = other.path().canonicalize().unwrap();
    std::fs::write(
        other_root.join("second.py"),
        "def from_second_root(): pass\n",
    )
    .unwrap();
    let mut client = LspClient::spawn();
    client.request(
        "initialize",
        json!({
            "capabilities": {"window": {"workDoneProgress": true}},
            "workspaceFolders": [
                {"uri": support::file_uri(&fixture.root()), "name": "one"},
                {"uri": support::file_uri(&other_root), "name": "two"},
            ],
        }),
    );
    client.notify("initialized", json!({}));
    client.wait_for_progress_end(SCAN_TIMEOUT);
    assert_eq!(workspace_symbols(&mut client, "from_second_root").len(), 1);
    assert!(!workspace_symbols(&mut client, "make_user").is_empty());
}

#[test]
fn cancelled_requests_answer_and_the_server_goes_on() {
    let (fixture, mut client, _) = start(json!({}));
    let id = client.send_request("workspace/symbol", json!({"query": "e"}));
    client.notify("$/cancelRequest", json!({"id": id}));
    let response = client.response(id, support::TIMEOUT);
    // Either it finished first or it was cancelled; never silence.
    assert!(
        response.get("result").is_some() || response["error"]["code"] == -32800,
        "{response}"
    );
    let app = fixture.read("app.py");
    let hover = client.request(
        "textDocument/hover",
        text_position(
            &fixture.uri("app.py"),
            position_of(&app, "describe(alice", 1),
        ),
    );
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap_or_default()
            .contains("def describe")
    );
}

#[test]
fn pith_context_answers_with_snippets() {
    let (fixture, mut client, _) = start(json!({}));
    let app = fixture.read("app.py");
    let result = client.request(
        "pith/context",
        json!({
            "textDocument": {"uri": fixture.uri("app.py")},
            "position": position_of(&app, "describe(alice)", 0),
            "budgetTokens": 256,
        }),
    );
    let snippets = result["snippets"].as_array().expect("snippets array");
    for snippet in snippets {
        for field in [
            "uri",
            "path",
            "startLine",
            "endLine",
            "text",
            "reason",
            "score",
        ] {
            assert!(snippet.get(field).is_some(), "{field} missing in {snippet}");
        }
    }
    let error = client
        .try_request("pith/context", json!({"position": {"line": 0}}))
        .unwrap_err();
    assert_eq!(error["code"], -32602, "invalid params: {error}");
}

#[test]
fn bad_input_gets_errors_and_the_server_survives() {
    let fixture = Fixture::new();
    let mut client = LspClient::spawn();

    // Before initialize.
    let error = client
        .try_request(
            "textDocument/hover",
            text_position(&fixture.uri("app.py"), json!({"line": 0, "character": 0})),
        )
        .unwrap_err();
    assert_eq!(error["code"], -32002);

    client.initialize(Some(&fixture.root()), json!({}));
    client.wait_for_progress_end(SCAN_TIMEOUT);

    // Malformed JSON in a well-framed message: a parse error, with the id the message shows
    // (the editor's request must not hang), else a null id.
    let garbage = b"{\"jsonrpc\": \"2.0\", \"id\": 99, \"method\": ";
    let mut framed = format!("Content-Length: {}\r\n\r\n", garbage.len()).into_bytes();
    framed.extend_from_slice(garbage);
    client.send_raw(&framed);
    let parse_error = client.response(99, Duration::from_secs(5));
    assert_eq!(parse_error["error"]["code"], -32700, "{parse_error}");
    client.send_raw(b"Content-Length: 8\r\n\r\n{\"id\": 9");
    let parse_error = client.wait_for_message(
        |m| m["id"].is_null() && m.get("error").is_some(),
        Duration::from_secs(5),
    );
    assert_eq!(parse_error["error"]["code"], -32700, "{parse_error}");
    // Valid JSON that is no JSON-RPC message, a header block without a length, invalid UTF-8.
    client.send_raw(b"Content-Length: 7\r\n\r\n[1,2,3]");
    client.send_raw(b"X-Nonsense: 1\r\n\r\n");
    client.send_raw(b"Content-Length: 2\r\n\r\n\xff\xfe");

    let error = client
        .try_request("pith/noSuchMethod", json!({}))
        .unwrap_err();
    assert_eq!(error["code"], -32601);

    // Out-of-range positions clamp; unknown documents give empty answers.
    let app_uri = fixture.uri("app.py");
    for position in [
        json!({"line": 999, "character": 0}),
        json!({"line": 0, "character": 9999}),
    ] {
        client.request(
            "textDocument/hover",
            text_position(&app_uri, position.clone()),
        );
        client.request("textDocument/definition", text_position(&app_uri, position));
    }
    let missing = support::file_uri(&fixture.path("no/such/file.py"));
    assert_eq!(
        client.request(
            "textDocument/hover",
            text_position(&missing, json!({"line": 0, "character": 0}))
        ),
        Value::Null
    );
    assert_eq!(
        client.request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": missing}})
        ),
        json!([])
    );
    let untitled = "untitled:Untitled-1";
    client.did_open(untitled, "python", 1, "def nameless(): pass\n");
    assert_eq!(
        client.request(
            "textDocument/hover",
            text_position(untitled, json!({"line": 0, "character": 5}))
        ),
        Value::Null
    );
    // Edits to a document that was never opened are ignored.
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": missing, "version": 3},
               "contentChanges": [{"text": "x = 1"}]}),
    );
    // Wrong parameter types: invalid params, not a crash.
    let error = client
        .try_request("textDocument/hover", json!({"textDocument": 5}))
        .unwrap_err();
    assert_eq!(error["code"], -32602);

    // Still alive and answering.
    assert!(!workspace_symbols(&mut client, "make_user").is_empty());
    assert!(client.is_running());
    assert!(client.shutdown_and_exit().success());
}

#[test]
fn exit_without_shutdown_fails_and_exit_after_shutdown_succeeds() {
    let fixture = Fixture::new();
    let mut client = LspClient::spawn();
    client.initialize(Some(&fixture.root()), json!({}));
    client.notify("exit", Value::Null);
    let status = client.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));

    let mut client = LspClient::spawn();
    client.initialize(Some(&fixture.root()), json!({}));
    let status = client.shutdown_and_exit();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_huge_file_is_skipped_by_the_scan_but_works_when_opened() {
    let fixture = Fixture::new();
    let mut huge = String::with_capacity(2 << 20);
    let mut n = 0;
    while huge.len() < (1 << 20) + 4096 {
        huge.push_str(&format!(
            "def generated_{n}(x: int) -> int:\n    return x + {n}\n\n"
        ));
        n += 1;
    }
    fixture.write("huge.py", &huge);
    let mut client = LspClient::spawn();
    client.initialize(Some(&fixture.root()), json!({}));
    client.wait_for_progress_end(SCAN_TIMEOUT);
    assert!(workspace_symbols(&mut client, "generated_1").is_empty());
    assert!(!workspace_symbols(&mut client, "make_user").is_empty());

    let uri = fixture.uri("huge.py");
    client.did_open(&uri, "python", 1, &huge);
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(symbols.as_array().map(Vec::len), Some(n));
}

/// Latency of hover and workspace/symbol through the whole protocol path, over a large Python
/// tree (`PITH_BENCH_ROOT`, default the system's Python stdlib). Prints a report; run with
/// `cargo test --release --test lsp -- --ignored --nocapture measure_`.
#[test]
#[ignore = "measurement, not a check"]
fn measure_hover_and_workspace_symbol_latency() {
    use std::time::Instant;
    let root = std::env::var("PITH_BENCH_ROOT").unwrap_or_else(|_| "/usr/lib/python3.11".into());
    let root = std::path::PathBuf::from(root)
        .canonicalize()
        .expect("bench root");
    let mut client = LspClient::spawn();
    let started = Instant::now();
    client.initialize(Some(&root), json!({}));
    client.wait_for_progress_end(Duration::from_secs(600));
    let scan = started.elapsed();

    let mut files: Vec<std::path::PathBuf> = ignore_walk(&root);
    files.sort();
    files.truncate(60);
    let mut hover_ms = Vec::new();
    let mut hovers_with_content = 0;
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let uri = support::file_uri(path);
        // Every 40th identifier start in the file, up to 10 per file.
        let mut picked = 0;
        for (line_number, line) in text.lines().enumerate() {
            let bytes = line.as_bytes();
            for (column, &byte) in bytes.iter().enumerate() {
                let starts_word = (byte.is_ascii_alphabetic() || byte == b'_')
                    && (column == 0
                        || !(bytes[column - 1].is_ascii_alphanumeric()
                            || bytes[column - 1] == b'_'));
                if !starts_word || !line.is_ascii() || (line_number + column) % 40 != 0 {
                    continue;
                }
                let begin = Instant::now();
                let hover = client.request(
                    "textDocument/hover",
                    text_position(&uri, json!({"line": line_number, "character": column})),
                );
                hover_ms.push(begin.elapsed().as_secs_f64() * 1e3);
                hovers_with_content += usize::from(!hover.is_null());
                picked += 1;
            }
            if picked >= 10 {
                break;
            }
        }
    }
    let mut symbol_ms = Vec::new();
    for _ in 0..5 {
        for query in [
            "get",
            "parse",
            "Thread",
            "json_enc",
            "x",
            "HTTPConnection",
            "deco",
        ] {
            let begin = Instant::now();
            client.request("workspace/symbol", json!({"query": query}));
            symbol_ms.push(begin.elapsed().as_secs_f64() * 1e3);
        }
    }
    let files_indexed = workspace_symbols(&mut client, "__init__").len();
    eprintln!(
        "root {}: scan {:.2}s; hover n={} ({hovers_with_content} non-empty) {}; workspace/symbol n={} {} (__init__ hits: {files_indexed})",
        root.display(),
        scan.as_secs_f64(),
        hover_ms.len(),
        percentiles(&mut hover_ms),
        symbol_ms.len(),
        percentiles(&mut symbol_ms),
    );
}

fn percentiles(samples: &mut [f64]) -> String {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.95),
        at(1.0)
    )
}

fn ignore_walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "py") {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn accepted_completions_are_remembered_and_go_stale_when_their_code_changes() {
    let fixture = Fixture::new();
    let cache = fixture.path(".cache");
    let mut client = LspClient::spawn_with(
        &[],
        &[
            ("XDG_CACHE_HOME", cache.to_str().unwrap()),
            ("XDG_CONFIG_HOME", cache.to_str().unwrap()),
            ("PITH_MODEL", "/nonexistent/pith-test-model.gguf"),
        ],
    );
    let result = client.initialize(Some(&fixture.root()), json!({}));
    client.wait_for_progress_end(SCAN_TIMEOUT);
    let commands = result["capabilities"]["executeCommandProvider"]["commands"].to_string();
    assert!(commands.contains("pith.completion.accepted"), "{commands}");
    let uri = fixture.uri("scratch.py");
    let text = "def total(items):\n    return sum(items)\n";
    fixture.write("scratch.py", text);
    client.did_open(&uri, "python", 1, text);
    client.request(
        "workspace/executeCommand",
        json!({"command": "pith.completion.accepted",
               "arguments": [uri, {"line": 1, "character": 4}, "return sum(items)"]}),
    );
    let list = |client: &mut LspClient| {
        client.request(
            "workspace/executeCommand",
            json!({"command": "pith.memory.list", "arguments": []}),
        )["memories"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let memories = list(&mut client);
    assert_eq!(memories.len(), 1, "{memories:?}");
    assert_eq!(memories[0]["kind"], "completion");
    assert_eq!(memories[0]["symbols"], json!(["total"]));
    assert_eq!(memories[0]["files"], json!(["scratch.py"]));
    assert_eq!(memories[0]["stale"], false);

    // Saving other code leaves it alone; saving a changed `total` marks it stale.
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(list(&mut client)[0]["stale"], false);
    let changed = "def total(items):\n    return sum(items) * 2\n";
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"text": changed}]}),
    );
    fixture.write("scratch.py", changed);
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri}}),
    );
    // didSave is a notification handled off the loop: poll for its effect.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while list(&mut client)[0]["stale"] != true {
        assert!(
            std::time::Instant::now() < deadline,
            "the memory never went stale: {:?}",
            list(&mut client)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let bad = client.send_request(
        "workspace/executeCommand",
        json!({"command": "pith.completion.accepted", "arguments": [uri]}),
    );
    let response = client.response(bad, Duration::from_secs(10));
    assert_eq!(response["error"]["code"], -32602, "{response}");
}

const GEOMETRY: &str = "\"\"\"Plane geometry.\"\"\"\n\n\nclass Vector:\n    \"\"\"A vector in the plane.\"\"\"\n\n    def __init__(self, x: float, y: float) -> None:\n        self.x = x\n        self.y = y\n\n    def norm(self) -> float:\n        \"\"\"The Euclidean length of the vector.\"\"\"\n        return (self.x**2 + self.y**2) ** 0.5\n";
const REPORT: &str = "\"\"\"A report on vectors.\"\"\"\nfrom geometry import Vector\n\n\ndef length(v: Vector) -> float:\n    return v.norm()\n";

/// Hover at the `norm` of `v.norm()` in `REPORT`, polled until it names `norm` (an implied
/// root is scanned in the background) or `wait` runs out; the last answer.
fn hover_on_norm(client: &mut LspClient, uri: &str, wait: Duration) -> Value {
    let position = position_of(REPORT, "norm()", 1);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let hover = client.request("textDocument/hover", text_position(uri, position.clone()));
        if hover.to_string().contains("def norm") || std::time::Instant::now() > deadline {
            return hover;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(client: &mut LspClient) -> Value {
    client.request(
        "workspace/executeCommand",
        json!({"command": "pith.status", "arguments": []}),
    )
}

/// A client that names no root (Neovim on a file outside any project): the file's own folder
/// becomes an implied root, said in the log, the client's log and `pith.status`, so hover
/// knows the other files there. Never `$HOME` itself.
#[test]
fn a_file_outside_any_project_gets_its_folder_as_an_implied_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().canonicalize().expect("canonical tempdir");
    let pkg = home.join("projects/pkg");
    std::fs::create_dir_all(&pkg).expect("mkdir");
    std::fs::write(pkg.join("geometry.py"), GEOMETRY).expect("write");
    std::fs::write(pkg.join("report.py"), REPORT).expect("write");
    std::fs::write(home.join("notes.py"), "def jot():\n    pass\n").expect("write");
    std::fs::write(home.join("elsewhere.py"), "def far_away():\n    pass\n").expect("write");
    let mut client = LspClient::spawn_with(
        &[],
        &[
            ("HOME", home.to_str().expect("utf-8 path")),
            ("PITH_MODEL", "/nonexistent/pith-test-model.gguf"),
        ],
    );
    client.initialize(None, json!({}));

    let uri = support::file_uri(&pkg.join("report.py"));
    client.did_open(&uri, "python", 1, REPORT);
    let hover = hover_on_norm(&mut client, &uri, SCAN_TIMEOUT);
    let text = hover.to_string();
    assert!(
        text.contains("def norm(self) -> float") && text.contains("Euclidean length"),
        "hover on v.norm() without a root: {hover}\nstderr:\n{}",
        client.stderr()
    );
    let status = status(&mut client);
    assert_eq!(
        status["impliedRoots"],
        json!([pkg.display().to_string()]),
        "{status}"
    );
    let logged = client.notifications("window/logMessage");
    assert!(
        logged.iter().any(|m| m["message"]
            .as_str()
            .is_some_and(|m| m.contains("no workspace root"))),
        "the client is not told: {logged:?}"
    );
    assert!(
        client.stderr().contains("implied root"),
        "{}",
        client.stderr()
    );

    // A file in $HOME itself: only the buffer, never the whole home.
    let notes = support::file_uri(&home.join("notes.py"));
    client.did_open(&notes, "python", 1, "def jot():\n    pass\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while workspace_symbols(&mut client, "jot").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the buffer is not indexed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        workspace_symbols(&mut client, "far_away").is_empty(),
        "$HOME was scanned"
    );
    let status = self::status(&mut client);
    assert_eq!(
        status["impliedRoots"],
        json!([pkg.display().to_string()]),
        "{status}"
    );
    assert!(
        client.stderr().contains("is your home folder"),
        "{}",
        client.stderr()
    );
}

/// An implied root is scanned to a bound: a file in a huge folder does not index all of it.
#[test]
fn an_implied_root_scans_a_bounded_number_of_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir
        .path()
        .canonicalize()
        .expect("canonical tempdir")
        .join("scripts");
    std::fs::create_dir_all(&root).expect("mkdir");
    for n in 0..1100 {
        std::fs::write(
            root.join(format!("s{n:04}.py")),
            format!("def f{n}():\n    pass\n"),
        )
        .expect("write");
    }
    let mut client =
        LspClient::spawn_with(&[], &[("PITH_MODEL", "/nonexistent/pith-test-model.gguf")]);
    client.initialize(None, json!({}));
    client.did_open(
        &support::file_uri(&root.join("s0000.py")),
        "python",
        1,
        "def f0():\n    pass\n",
    );
    let deadline = std::time::Instant::now() + SCAN_TIMEOUT;
    while !client.stderr().contains("implied root scanned") {
        assert!(std::time::Instant::now() < deadline, "{}", client.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let indexed = status(&mut client)["indexedFiles"].as_u64().unwrap_or(0);
    assert!(
        (900..=1001).contains(&indexed),
        "{indexed} files indexed of 1100\n{}",
        client.stderr()
    );
    assert!(
        client.stderr().contains("stopped at"),
        "{}",
        client.stderr()
    );
}
