//! Adaptation commands: `pith init`, `prompt`, `memory …`, `dataset export`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::*;
use crate::config::{Config, ConfigSources, project_config_path};
use crate::engine::{Engine as _, estimate_tokens};
use crate::index::SymbolKind;
use crate::lang::Lang;
use crate::memory::MemoryStore;
use crate::prompt::{self, Budget, PromptInput, SymbolInfo, Task};
use crate::retrieve::{self, Query};

fn root_or_cwd(root: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let root = match root {
        Some(root) => root.clone(),
        None => std::env::current_dir().context("no current directory")?,
    };
    // Canonical, as the index stores paths: relative paths are cut from it.
    std::fs::canonicalize(&root).with_context(|| root.display().to_string())
}

/// `pith init`: a starter `.pith/config.toml` for the languages found in the workspace.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    let root = root_or_cwd(&args.root)?;
    let path = project_config_path(&root);
    if path.exists() && !args.force {
        anyhow::bail!("{} exists; use --force to overwrite it", path.display());
    }
    let files: Vec<PathBuf> = crate::dataset::index_workspace(&root, &Default::default())
        .iter()
        .map(|file| file.path.clone())
        .collect();
    let text = draft_config(&root, &files);
    // The draft must load: a starter config that errors would be a poor start.
    Config::from_toml(&path.display().to_string(), &text)?;
    std::fs::create_dir_all(path.parent().unwrap_or(&root))
        .with_context(|| format!("creating {}", root.join(".pith").display()))?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    writeln!(std::io::stdout(), "wrote {}", path.display())?;
    Ok(())
}

/// The text of a starter config: every section with its default, commented out, plus the
/// per-language sections of the languages present.
pub fn draft_config(root: &Path, files: &[PathBuf]) -> String {
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for file in files {
        if let Some(lang) = Lang::from_path(file) {
            *counts.entry(lang.name()).or_default() += 1;
        }
    }
    let mut out = String::from(
        "# pith project configuration. Precedence: built-in defaults < ~/.config/pith/config.toml\n\
         # < this file < editor settings. Uncomment what you want to change.\n\n\
         [model]\n# path = \"~/.cache/pith/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf\"\n\
         # threads = 4\n# context = 4096\n# cache_reuse = 64\n# keep_cache = true\n# lora = [{ path = \"adapter.gguf\", scale = 1.0 }]\n\n\
         # [remote]\n# url = \"http://localhost:8080\"\n# api = \"openai\"   # openai | infill\n\
         # api_key_env = \"PITH_API_KEY\"\n\n\
         [index]\n# exclude = [\"vendor/**\"]\n# max_file_bytes = 1048576\n\n\
         [completion]\n# budget_tokens = 512  # unset: 512, or 1024 for a model of 1B parameters or more\n# buffer_tokens = 1024\n# suffix_tokens = 64\n# debounce_ms = 150\n# max_tokens = 64\n\n\
         [hover]\n# explain = true\n# timeout_ms = 1500\n\n\
         [prompt]\n# system = \"You are a coding assistant ...\"\n\
         # style = [\"Prefer small pure functions\"]\n\
         # Templates per task (completion, hover, explain, docstring, tests, refactor, fix, ask):\n\
         # templates.hover = \"{context}In one sentence, what does `{symbol}` do?\\n```{language}\\n{code}\\n```\"\n\n\
         # [[examples]]\n# symbol = \"a_function_written_in_house_style\"\n# tasks = [\"completion\", \"docstring\"]\n",
    );
    let has = |name| root.join(name).exists();
    for (language, count) in counts {
        out.push_str(&format!(
            "\n# {count} {language} files\n[languages.{language}.prompt]\n"
        ));
        let style: &[&str] = match language {
            "python" if has("pyproject.toml") || has("setup.py") => {
                &["Follow PEP 8", "Use type hints on public functions"]
            }
            "rust" => &["Idiomatic Rust: no unwrap() on user input, errors with `?`"],
            _ => &[],
        };
        let quoted: Vec<String> = style.iter().map(|s| format!("{s:?}")).collect();
        out.push_str(&format!("# style = [{}]\n", quoted.join(", ")));
    }
    out
}

/// The innermost function, method or class around `cursor` in `text`.
fn symbol_at(path: &Path, text: &str, cursor: usize) -> Option<SymbolInfo> {
    let file = retrieve::extract::parse_file(path, text)?;
    file.symbols
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                SymbolKind::Function | SymbolKind::Method | SymbolKind::Class | SymbolKind::Struct
            ) && s.span.start_byte <= cursor
                && cursor <= s.span.end_byte
        })
        .min_by_key(|s| s.span.end_byte - s.span.start_byte)
        .map(|s| SymbolInfo {
            name: s.name.to_string(),
            signature: s.signature.to_string(),
            range: s.span.start_byte..s.span.end_byte,
        })
}

/// `pith prompt`: the exact prompt of a task at a position, with its token count.
pub fn prompt(cli: &Cli, args: &PromptArgs) -> anyhow::Result<()> {
    let task: Task = args.task.parse().map_err(anyhow::Error::msg)?;
    let position = &args.position;
    let Some(file) = &position.file else {
        anyhow::bail!("give a FILE with --line and --character");
    };
    // Canonical, as the index stores paths.
    let file =
        std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let root = match &position.root {
        Some(root) => root_or_cwd(&Some(root.clone()))?,
        None => context::find_root(&file),
    };
    let config = Config::load(&ConfigSources::standard(Some(&root)))?;
    // The embedded model lays the prompt out exactly and counts its tokens; without one (remote
    // configured, model missing) the structured parts are shown with an estimate.
    let mut settings = config.engine_settings();
    if let Some(model) = &cli.model {
        settings.model = Some(model.clone());
    }
    let engine = match settings.remote {
        Some(_) => None,
        None => match crate::engine::LlamaEngine::open(&settings) {
            Ok(engine) => Some(engine),
            Err(error) => {
                tracing::warn!("showing the prompt's parts only: {error}");
                None
            }
        },
    };
    let count_tokens = |text: &str| match &engine {
        Some(engine) => engine.count_tokens(text),
        None => estimate_tokens(text),
    };
    let cursor = context::byte_offset(&text, position.line, position.character);
    let mut budget = Budget::from_config(
        &config,
        engine.as_ref().and_then(|engine| engine.parameters()),
    );
    if let Some(tokens) = position.budget_tokens {
        budget.context_tokens = tokens;
    }
    let files = crate::dataset::index_workspace(&root, &config.index);
    let table = retrieve::table::SymbolTable::new(files);
    let snippets = retrieve::retrieve_in(
        &table,
        &Query {
            path: &file,
            text: &text,
            cursor,
            budget_tokens: budget.context_tokens,
            recent: &[],
        },
        &count_tokens,
    );
    let symbol = symbol_at(&file, &text, cursor);
    let relative = file
        .strip_prefix(&root)
        .unwrap_or(&file)
        .to_string_lossy()
        .into_owned();
    let memories = match (task, MemoryStore::open_or_off(&root)) {
        (Task::Completion, _) | (_, None) => Vec::new(),
        (_, Some(store)) => {
            let symbols: Vec<String> = symbol.iter().map(|s| s.name.clone()).collect();
            store
                .recall(
                    &symbols.join(" "),
                    std::slice::from_ref(&relative),
                    &symbols,
                    3,
                )
                .unwrap_or_default()
        }
    };
    let examples =
        prompt::resolve_examples(&config, Lang::from_path(&file), task, &root, &table.files);
    let repo = root
        .file_name()
        .map_or_else(|| "repo".into(), |n| n.to_string_lossy().into_owned());
    let input = PromptInput {
        task,
        repo: &repo,
        root: &root,
        path: &file,
        text: &text,
        cursor,
        selection: None,
        symbol,
        question: None,
        diagnostics: &[],
        snippets: &snippets,
        memories: &memories,
        examples: &examples,
    };
    let built = prompt::build(&config, &input, budget, &count_tokens);
    let mut out = std::io::stdout().lock();
    match &engine {
        Some(engine) => {
            let rendered = engine.render_prompt(&built)?;
            out.write_all(rendered.as_bytes())?;
            writeln!(out, "\n=== {} tokens", engine.count_tokens(&rendered))?;
        }
        None => {
            let rendered = prompt::render_parts(&built);
            out.write_all(rendered.as_bytes())?;
            writeln!(
                out,
                "=== about {} tokens (no local model loaded: structured parts, 4 bytes a token)",
                estimate_tokens(&rendered)
            )?;
        }
    }
    Ok(())
}

/// `pith memory list|search|delete|clear`.
pub fn memory(command: &MemoryCommand) -> anyhow::Result<()> {
    let root = match command {
        MemoryCommand::List { root }
        | MemoryCommand::Search { root, .. }
        | MemoryCommand::Delete { root, .. }
        | MemoryCommand::Clear { root } => root_or_cwd(root)?,
    };
    let mut store = MemoryStore::open(&root)?;
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock<'_>, memories: Vec<crate::memory::Memory>| {
        for m in memories {
            let stale = if m.stale { " (stale)" } else { "" };
            writeln!(
                out,
                "#{} {}{stale}  {}",
                m.id,
                m.kind.name(),
                one_line(&m.question)
            )?;
            writeln!(out, "    {}", one_line(&m.answer))?;
        }
        anyhow::Ok(())
    };
    match command {
        MemoryCommand::List { .. } => print(&mut out, store.list(100)?)?,
        MemoryCommand::Search { query, .. } => print(&mut out, store.search(query, 20)?)?,
        MemoryCommand::Delete { id, .. } => {
            if !store.delete(*id)? {
                anyhow::bail!("no memory #{id}");
            }
            writeln!(out, "deleted #{id}")?;
        }
        MemoryCommand::Clear { .. } => {
            let n = store.clear()?;
            writeln!(out, "cleared {n} memories")?;
        }
    }
    Ok(())
}

fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

/// `pith dataset export`.
pub fn dataset(command: &DatasetCommand) -> anyhow::Result<()> {
    let DatasetCommand::Export { out, root } = command;
    let root = root_or_cwd(root)?;
    let config = Config::load(&ConfigSources::standard(Some(&root)))?;
    let files = crate::dataset::index_workspace(&root, &config.index);
    let memories = match MemoryStore::open_or_off(&root) {
        Some(store) => store.list(usize::MAX >> 1)?,
        None => Vec::new(),
    };
    let summary = crate::dataset::export(&root, &files, &memories, out, &Default::default())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{} files → {} train + {} validation records in {}\n  functions {}, docstrings {}, explanations {}, asks {}; dropped: {} duplicates, {} too long",
        files.len(),
        summary.train,
        summary.validation,
        out.display(),
        summary.functions,
        summary.docstrings,
        summary.explanations,
        summary.asks,
        summary.duplicates,
        summary.too_long
    )?;
    for finding in &summary.redactions {
        writeln!(
            stdout,
            "  redacted {} at {}:{}",
            finding.rule,
            finding.file.as_deref().unwrap_or("?"),
            finding.line
        )?;
    }
    Ok(())
}
