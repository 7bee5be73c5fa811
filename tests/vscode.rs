//! The VS Code extension in a real VS Code: code-server 4.139.1 (VS Code 1.139, installed by
//! `scripts/code-server.sh`) with the packaged .vsix, the real `pith serve` and the real
//! default model, driven through Debian's chromium by Playwright (`editors/vscode/test/e2e.py`).
//! It asserts what a user sees: ghost text that Tab accepts into the file, pith's hover on a
//! name from another file, **pith: Ask** answering with sources, and a status bar that tells
//! the model's and the index's real state before and after the first completion.
//!
//! Every client's state (HOME, XDG dirs, VS Code's user data and extensions, the browser
//! profile) lives in a temp dir. A tool that cannot be installed skips with a loud message.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TEST: &str = "vscode_extension_works_in_a_real_vscode";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn loud_skip(test: &str, why: &str) {
    eprintln!(
        "\n{}\nSKIPPED {test}: {why}\n{}\n",
        "!".repeat(78),
        "!".repeat(78)
    );
}

/// Runs `command` with a deadline, killing its process group when it runs over.
fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stdout.read_to_end(&mut buffer);
        buffer
    });
    let err = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stderr.read_to_end(&mut buffer);
        buffer
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            kill_group(&mut child);
            panic!("{command:?} ran over {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Ends `child` and everything it started (it leads its own process group).
fn kill_group(child: &mut Child) {
    let group = child.id() as libc::pid_t;
    // SAFETY: signalling a process group this test created; no memory is involved.
    unsafe {
        libc::kill(-group, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above; whatever ignored SIGTERM goes now.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// A started process group, ended when dropped (a failed assertion included).
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

/// code-server (and the node it runs on), from `scripts/code-server.sh`; None after a loud skip.
fn code_server() -> Option<(PathBuf, PathBuf)> {
    let mut command = Command::new("bash");
    command.arg(repo().join("scripts/code-server.sh"));
    let started = Instant::now();
    let output = run_with_timeout(command, Duration::from_secs(1200));
    eprintln!(
        "scripts/code-server.sh took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    if !output.status.success() || !path.is_file() {
        loud_skip(
            TEST,
            &format!(
                "code-server cannot be installed (scripts/code-server.sh: {}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
        );
        return None;
    }
    // .../code-server-<v>/cs/node_modules/.bin/code-server -> .../code-server-<v>/node-bin
    let cache = path.ancestors().nth(4).expect("the code-server cache dir");
    Some((path.clone(), cache.join("node-bin")))
}

/// The extension packaged into `dir`, after `npm ci` when its packages are missing.
fn package_vsix(dir: &Path) -> PathBuf {
    let vscode = repo().join("editors/vscode");
    if !vscode.join("node_modules/.bin/vsce").exists() {
        let mut command = Command::new("npm");
        command
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&vscode);
        let output = run_with_timeout(command, Duration::from_secs(300));
        assert!(
            output.status.success(),
            "npm ci failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let vsix = dir.join("pith.vsix");
    let mut command = Command::new(vscode.join("node_modules/.bin/vsce"));
    command
        .args(["package", "--skip-license", "--out"])
        .arg(&vsix)
        .current_dir(&vscode);
    let output = run_with_timeout(command, Duration::from_secs(300));
    assert!(
        output.status.success() && vsix.is_file(),
        "vsce package failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    vsix
}

/// The installed default model, as the user's own `pith model path` names it.
fn default_model() -> Option<PathBuf> {
    let output = Command::new(env!("CARGO_BIN_EXE_pith"))
        .args(["model", "path"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    (output.status.success() && path.is_file()).then_some(path)
}

/// The fixture workspace (`tests/fixtures/workspace`) plus `shapes.py` and `report.py`: a call
/// into another file to hover, and an empty function body to complete.
fn fixture_workspace(to: &Path) {
    copy_tree(&repo().join("tests/fixtures/workspace"), to);
    let files = [
        (
            "shapes.py",
            "\"\"\"Shapes and their areas.\"\"\"\nimport math\n\n\nclass Circle:\n    \"\"\"A circle given by its radius.\"\"\"\n\n    def __init__(self, radius: float) -> None:\n        self.radius = radius\n\n\nclass Square:\n    \"\"\"A square given by its side.\"\"\"\n\n    def __init__(self, side: float) -> None:\n        self.side = side\n\n\ndef area(shape) -> float:\n    \"\"\"The area of a circle or a square.\"\"\"\n    if isinstance(shape, Circle):\n        return math.pi * shape.radius**2\n    return shape.side**2\n",
        ),
        (
            "report.py",
            "\"\"\"A small report over shapes.\"\"\"\nfrom shapes import Circle, Square, area\n\n\ndef describe(shape) -> str:\n    \"\"\"One line naming the shape and its area.\"\"\"\n    return f\"{type(shape).__name__} with area {area(shape):.2f}\"\n\n\ndef total_area(shapes: list) -> float:\n    pass\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(to.join(name), text).expect("write fixture");
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create fixture dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// VS Code's user settings for the test: pith pointed at the real binary and model, the
/// workspace trusted (Restricted Mode would disable the extension), nothing that competes
/// with the inline suggestion for Tab, no network, no welcome pages.
fn user_settings(model: &Path) -> Value {
    json!({
        "security.workspace.trust.enabled": false,
        "pith.path": env!("CARGO_BIN_EXE_pith"),
        "pith.model.path": model,
        // The model's hover explanations would compete with the answer for the two cores; the
        // hover asserted here is the index's part.
        "pith.hover.explain": false,
        "editor.inlineSuggest.enabled": true,
        "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
        "editor.suggestOnTriggerCharacters": false,
        "editor.wordBasedSuggestions": "off",
        "editor.acceptSuggestionOnEnter": "off",
        "editor.hover.delay": 100,
        "workbench.startupEditor": "none",
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "workbench.tips.enabled": false,
        "workbench.enableExperiments": false,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoCheckUpdates": false,
        "extensions.autoUpdate": false,
        "extensions.ignoreRecommendations": true,
        "files.autoSave": "off",
    })
}

/// Status bar texts as the driver reads them: `<codicon class> pith: <model> · <index>`.
fn check_statuses(statuses: &[String], model: &str) -> Result<(), String> {
    let index =
        r"(index not started|indexing \(finding files\)|indexing \d+/\d+ files|\d+ files? indexed)";
    let states = [
        format!(
            r"^codicon-circle-outline pith: {} \(loads on first use\) · {index}$",
            regex::escape(model)
        ),
        format!(
            r"^codicon-loading pith: loading {}… · {index}$",
            regex::escape(model)
        ),
        format!(
            r"^codicon-sparkle pith: {} · {index}$",
            regex::escape(model)
        ),
    ];
    let states: Vec<regex::Regex> = states
        .iter()
        .map(|state| regex::Regex::new(state).expect("regex"))
        .collect();
    let mut last = 0;
    for status in statuses {
        let state = states
            .iter()
            .position(|state| state.is_match(status))
            .ok_or_else(|| format!("the status bar showed {status:?}, no model state"))?;
        if state < last {
            return Err(format!("the model state went back: {statuses:?}"));
        }
        last = state;
    }
    Ok(())
}

#[test]
fn vscode_extension_works_in_a_real_vscode() {
    if Command::new("npm").arg("--version").output().is_err() {
        loud_skip(TEST, "npm is not installed (run scripts/test-deps.sh)");
        return;
    }
    let Some(model) = default_model() else {
        loud_skip(TEST, "no default model (run `pith model install`)");
        return;
    };
    let Some((code_server, node_bin)) = code_server() else {
        return;
    };
    let model_name = model
        .file_name()
        .expect("model file name")
        .to_string_lossy()
        .into_owned();

    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path();
    let (home, user_data, extensions, workspace, out) = (
        dir.join("home"),
        dir.join("user-data"),
        dir.join("extensions"),
        dir.join("workspace"),
        dir.join("out"),
    );
    for path in [&home, &user_data.join("User"), &extensions, &out] {
        std::fs::create_dir_all(path).expect("create test dir");
    }
    fixture_workspace(&workspace);
    std::fs::write(
        user_data.join("User/settings.json"),
        serde_json::to_string_pretty(&user_settings(&model)).expect("json"),
    )
    .expect("write settings.json");

    let path = format!(
        "{}:{}",
        node_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let isolated = |command: &mut Command| {
        command
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("PATH", &path)
            .env_remove("PITH_MODEL")
            .env_remove("VSCODE_IPC_HOOK_CLI");
    };

    let started = Instant::now();
    let vsix = package_vsix(dir);
    let mut install = Command::new(&code_server);
    install
        .arg("--user-data-dir")
        .arg(&user_data)
        .arg("--extensions-dir")
        .arg(&extensions)
        .arg("--install-extension")
        .arg(&vsix);
    isolated(&mut install);
    let installed = run_with_timeout(install, Duration::from_secs(120));
    assert!(
        installed.status.success(),
        "code-server --install-extension failed:\n{}\n{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );

    let port = free_port();
    let log = std::fs::File::create(out.join("code-server.log")).expect("log file");
    let mut serve = Command::new(&code_server);
    serve
        .args(["--auth", "none", "--bind-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--disable-telemetry", "--disable-update-check"])
        .arg("--user-data-dir")
        .arg(&user_data)
        .arg("--extensions-dir")
        .arg(&extensions)
        .arg(&workspace)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0);
    isolated(&mut serve);
    let mut server = Group(serve.spawn().expect("start code-server"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || server.0.try_wait().ok().flatten().is_some() {
            panic!(
                "code-server did not listen on {port}:\n{}",
                std::fs::read_to_string(out.join("code-server.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut drive = Command::new("python3");
    drive
        .arg(repo().join("editors/vscode/test/e2e.py"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg(&workspace)
        .arg(&out)
        .env("PITH_E2E_STEP_S", "120");
    isolated(&mut drive);
    // Playwright lives in the real user's site-packages (a user install).
    if let Some(real_home) = std::env::var_os("HOME") {
        drive.env("PYTHONUSERBASE", Path::new(&real_home).join(".local"));
    }
    let driven = run_with_timeout(drive, Duration::from_secs(900));
    drop(server);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&driven.stderr);
    eprintln!(
        "VS Code e2e ({:.1}s, code-server {}):\n{stderr}",
        elapsed.as_secs_f64(),
        out.join("code-server.log").display()
    );

    let result: Value = std::fs::read_to_string(out.join("result.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("the driver wrote no result ({}):\n{stderr}", driven.status));
    let steps = &result["steps"];
    for step in [
        "workbench",
        "open",
        "status_before",
        "ghost_text",
        "status_after",
        "accept",
        "hover",
        "ask",
    ] {
        if steps[step]["ok"] != true {
            // Keep the screenshots and logs of a failed run.
            let kept = temp.keep();
            panic!(
                "step {step} failed: {}\nscreenshots and logs in {}\nsteps: {steps:#}",
                steps[step]["detail"],
                kept.display()
            );
        }
    }
    let detail = |step: &str| steps[step]["detail"].as_str().unwrap_or("").to_owned();

    // The status bar: only real model states, in order, and loaded after the completion.
    let statuses: Vec<String> = result["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|status| status.as_str().map(str::to_owned))
        .collect();
    eprintln!("status bar: {statuses:#?}");
    if let Err(error) = check_statuses(&statuses, &model_name) {
        panic!("{error}");
    }
    let after = detail("status_after");
    assert!(
        regex::Regex::new(&format!(
            r"^codicon-sparkle pith: {} · \d+ files indexed$",
            regex::escape(&model_name)
        ))
        .expect("regex")
        .is_match(&after),
        "after the first completion the status bar reads {after:?}"
    );

    // Tab put the ghost text into the buffer, and Ctrl+S into the file.
    let ghost = detail("ghost_text");
    assert!(!ghost.trim().is_empty(), "empty ghost text");
    let saved = std::fs::read_to_string(workspace.join("report.py")).expect("report.py");
    let first = ghost.lines().next().unwrap_or("").trim_end();
    assert!(
        saved.contains(&format!("return {first}")),
        "the accepted suggestion {ghost:?} is not in report.py:\n{saved}"
    );
    assert!(
        detail("accept").contains(first),
        "the buffer line {:?} lacks the ghost text {first:?}",
        detail("accept")
    );

    // pith's hover on `area`, defined in shapes.py.
    let hover = detail("hover");
    assert!(
        hover.contains("def area(shape) -> float") && hover.contains("defined in shapes.py:19"),
        "hover: {hover}"
    );

    // pith: Ask answers with sources.
    let answer = detail("ask");
    let sources = answer
        .split("Sources")
        .nth(1)
        .unwrap_or_else(|| panic!("no sources in the answer:\n{answer}"));
    assert!(
        answer
            .split("Sources")
            .next()
            .unwrap_or("")
            .split_whitespace()
            .count()
            >= 5,
        "a short answer:\n{answer}"
    );
    // Retrieval finds `area` in shapes.py whatever the model writes.
    assert!(
        sources.contains("shapes.py"),
        "the sources do not name shapes.py:\n{answer}"
    );
}
