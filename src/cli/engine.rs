//! Model commands: `pith complete`, `chat`, `ask`, `model …`, `bench engine|complete`.
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::engine::{
    self, ContextFile, Engine, EngineSettings, EngineStatus, Event, Message, Priority, Prompt,
    Request, Role, Sampling, Slot,
};

/// Engine settings from the command line (`--model` / `PITH_MODEL`) over the defaults.
fn engine_settings(cli: &Cli) -> EngineSettings {
    EngineSettings {
        model: cli.model.clone(),
        ..EngineSettings::default()
    }
}

fn request(prompt: Prompt, max_tokens: u32, slot: Slot) -> Request {
    Request {
        prompt,
        max_tokens,
        stop: Vec::new(),
        stop_when: None,
        sampling: Sampling::default(),
        priority: Priority::Interactive,
        slot,
        cancel: CancellationToken::new(),
        supersede_key: None,
    }
}

/// Runs a request to the end, handing each text piece to `on_text`; returns the stats.
fn run_blocking(
    engine: &dyn Engine,
    request: Request,
    mut on_text: impl FnMut(&str),
) -> anyhow::Result<engine::RequestStats> {
    let mut events = engine.submit(request);
    while let Some(event) = events.blocking_recv() {
        match event {
            Event::Text(text) => on_text(&text),
            Event::Done(stats) => return Ok(stats),
            Event::Cancelled => anyhow::bail!("the request was cancelled"),
            Event::Failed(error) => return Err(error.into()),
        }
    }
    anyhow::bail!("the engine stopped without an answer")
}

/// Byte offset of a (line, UTF-16 column) position, clamped to the text.
fn byte_offset(text: &str, line: u32, character: u32) -> usize {
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut units = 0u32;
    for (i, c) in text[start..end].char_indices() {
        if units >= character {
            return start + i;
        }
        units += c.len_utf16() as u32;
    }
    end
}

pub fn complete(cli: &Cli, args: &CompleteArgs) -> anyhow::Result<()> {
    let position = &args.position;
    if position.batch.is_some() {
        anyhow::bail!("`pith complete --batch` is not supported yet; give a FILE");
    }
    let file = position
        .file
        .as_ref()
        .context("give the FILE to complete in")?;
    let path = std::fs::canonicalize(file).with_context(|| format!("{}", file.display()))?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let root = match &position.root {
        Some(root) => std::fs::canonicalize(root)?,
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let cursor = byte_offset(&text, position.line, position.character);
    let engine = engine::open(&engine_settings(cli))?;
    let context = if args.no_context {
        Vec::new()
    } else {
        let index = crate::index::WorkspaceIndex::new(vec![root.clone()], Default::default());
        index.update_file(&path, &text);
        let query = crate::retrieve::Query {
            path: &path,
            text: &text,
            cursor,
            budget_tokens: position.budget_tokens.unwrap_or(1024),
            recent: &[],
        };
        let count = |s: &str| engine.count_tokens(s);
        crate::retrieve::retrieve(&index, &query, &count)
            .into_iter()
            .map(|snippet| ContextFile {
                path: relative(&root, &snippet.path),
                text: snippet.text,
            })
            .collect()
    };
    let prompt = Prompt::Fim {
        repo: root
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        context,
        path: relative(&root, &path),
        prefix: text[..cursor].to_string(),
        suffix: text[cursor..].to_string(),
    };
    let mut out = String::new();
    let stats = run_blocking(&*engine, request(prompt, 128, Slot::Completion), |t| {
        out.push_str(t)
    })?;
    println!("{out}");
    tracing::info!(?stats, "completed");
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

pub fn chat(cli: &Cli, args: &ChatArgs) -> anyhow::Result<()> {
    let engine = engine::open(&engine_settings(cli))?;
    let prompt = Prompt::Chat(vec![Message {
        role: Role::User,
        content: args.message.clone(),
    }]);
    let mut stdout = std::io::stdout().lock();
    let stats = run_blocking(&*engine, request(prompt, 512, Slot::Chat), |t| {
        let _ = stdout.write_all(t.as_bytes());
        let _ = stdout.flush();
    })?;
    println!();
    tracing::debug!(?stats, "chat done");
    Ok(())
}

pub fn ask(_cli: &Cli, _args: &AskArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}

pub fn model(cli: &Cli, command: &ModelCommand) -> anyhow::Result<()> {
    let _ = cli;
    let _ = command;
    anyhow::bail!("not yet")
}

pub fn bench(cli: &Cli, command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Engine { threads } => bench_engine(cli, *threads),
        _ => anyhow::bail!("not yet"),
    }
}

fn bench_engine(cli: &Cli, threads: Option<usize>) -> anyhow::Result<()> {
    let _ = (cli, threads, Instant::now(), Duration::ZERO);
    let _ = EngineStatus::default();
    anyhow::bail!("not yet")
}
