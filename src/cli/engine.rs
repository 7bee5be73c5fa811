//! Model commands: `pith complete`, `chat`, `ask`, `model …`, `bench engine|complete`.
// The CLI is the one place that writes results to stdout.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::*;
use crate::engine::{
    self, ContextFile, Engine, EngineSettings, EngineStatus, Event, Message, Prompt, Request, Role,
    Slot,
};

/// Engine settings from the command line (`--model` / `PITH_MODEL`) over the defaults.
fn engine_settings(cli: &Cli) -> EngineSettings {
    EngineSettings {
        model: cli.model.clone(),
        ..EngineSettings::default()
    }
}

fn request(prompt: Prompt, max_tokens: u32, slot: Slot) -> Request {
    Request::new(prompt, max_tokens, slot)
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
    let cursor = super::context::byte_offset(&text, position.line, position.character);
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

pub fn ask(cli: &Cli, args: &AskArgs) -> anyhow::Result<()> {
    super::assist::ask(cli, args)
}

pub fn model(cli: &Cli, command: &ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Install { source } => {
            let path = engine::model::install(source.as_deref())?;
            println!("{}", path.display());
        }
        ModelCommand::Info { path } => {
            let path = match path.as_ref().or(cli.model.as_ref()) {
                Some(named) => engine::model::locate(named).0,
                None => engine::model::default_model_path()
                    .filter(|p| p.exists())
                    .ok_or(engine::EngineError::NoModel)?,
            };
            let info = engine::model::info(&path)?;
            println!("path:            {}", info.path.display());
            if let Some(name) = &info.name {
                println!("name:            {name}");
            }
            println!("architecture:    {}", info.architecture);
            println!(
                "parameters:      {} ({:.2} B)",
                info.parameters,
                info.parameters as f64 / 1e9
            );
            println!("quantization:    {}", info.file_type);
            match info.context_length {
                Some(n) => println!("context length:  {n}"),
                None => println!("context length:  unknown"),
            }
            println!("fim:             {}", info.fim.unwrap_or("none"));
            println!(
                "chat template:   {}",
                if info.chat_template { "yes" } else { "no" }
            );
            println!(
                "file size:       {} bytes ({:.1} MiB)",
                info.file_size,
                info.file_size as f64 / (1 << 20) as f64
            );
        }
        ModelCommand::Path => {
            let path = engine::model::default_model_path()
                .context("cannot find a cache directory (set HOME or XDG_CACHE_HOME)")?;
            println!("{}", path.display());
        }
    }
    Ok(())
}

pub fn bench(cli: &Cli, command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Engine { threads } => bench_engine(cli, *threads),
        _ => anyhow::bail!("not yet"),
    }
}

/// Peak resident set size of this process in KiB (Linux), from `/proc/self/status`.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A Python file of about `functions` small functions, for prompt-heavy measurements.
fn synthetic_source(functions: usize) -> String {
    let mut text = String::from("import math\n\n");
    for i in 0..functions {
        text.push_str(&format!(
            "def area_{i}(radius):\n    \"\"\"Area of circle number {i}.\"\"\"\n    return math.pi * radius ** 2 + {i}\n\n\n"
        ));
    }
    text
}

/// Time to the first streamed text of a request, and its stats.
fn time_to_first_token(
    engine: &dyn Engine,
    request: Request,
) -> anyhow::Result<(Duration, engine::RequestStats)> {
    let started = Instant::now();
    let mut first = None;
    let stats = run_blocking(engine, request, |_| {
        first.get_or_insert_with(|| started.elapsed());
    })?;
    Ok((first.unwrap_or_else(|| started.elapsed()), stats))
}

/// Index-guided decoding's cost per generated token: the same greedy answer, which names
/// functions in inline code, generated with and without an answer guide, alternated over
/// rounds (fastest kept) so that a busy machine slows both alike.
fn bench_guided(engine: &dyn Engine, source: &str) -> anyhow::Result<()> {
    use crate::assist::guide::{AnswerGuide, identifiers_of};
    let code: String = source.chars().take(1500).collect();
    let prompt = Prompt::Chat(vec![Message {
        role: Role::User,
        content: format!(
            "```python\n{code}```\nList every function above, one per line, each name in backticks, with what it computes."
        ),
    }]);
    let mut names = std::collections::HashSet::new();
    identifiers_of(&code, &mut names);
    let guide: Arc<dyn engine::Guide> = Arc::new(AnswerGuide::new(names.into_iter().collect()));
    let mut best = [f64::INFINITY; 2];
    let mut overruled = 0;
    for _round in 0..3 {
        for (i, guided) in [false, true].into_iter().enumerate() {
            let mut req = request(prompt.clone(), 96, Slot::Chat);
            if guided {
                req.guide = Some(guide.clone());
            }
            let stats = run_blocking(engine, req, |_| {})?;
            if guided {
                overruled = stats.guided_tokens;
            }
            let per_token = stats.generate_ms as f64 / stats.generated_tokens.max(1) as f64;
            best[i] = best[i].min(per_token);
        }
    }
    println!(
        "guided decoding: {:.1} ms/token against {:.1} unguided = {:+.1}% ({overruled} tokens overruled)",
        best[1],
        best[0],
        100.0 * (best[1] / best[0].max(1e-9) - 1.0)
    );
    Ok(())
}

fn bench_engine(cli: &Cli, threads: Option<usize>) -> anyhow::Result<()> {
    let settings = EngineSettings {
        threads,
        ..engine_settings(cli)
    };
    let threads = threads.unwrap_or_else(engine::llama::physical_cores);
    println!("threads: {threads}");
    let raw = engine::llama::raw_bench(&settings, 512, 64, 3)?;
    println!("pp512: {:.2} tokens/s", raw.pp_tokens_per_s);
    println!("tg64:  {:.2} tokens/s", raw.tg_tokens_per_s);

    let engine = engine::LlamaEngine::open(&settings)?;
    let source = synthetic_source(40);
    let fim = |prefix: String| Prompt::Fim {
        repo: "bench".into(),
        context: Vec::new(),
        path: "bench.py".into(),
        prefix,
        suffix: String::new(),
    };
    let cold_prefix = format!("{source}def volume(radius):\n    ");
    let warm_prefix = format!("{source}def volume(height):\n    ");
    let (cold, cold_stats) =
        time_to_first_token(&engine, request(fim(cold_prefix), 4, Slot::Completion))?;
    let (warm, warm_stats) =
        time_to_first_token(&engine, request(fim(warm_prefix), 4, Slot::Completion))?;
    println!(
        "ttft cold: {} ms ({} prompt tokens decoded)",
        cold.as_millis(),
        cold_stats.prompt_tokens - cold_stats.reused_tokens
    );
    println!(
        "ttft warm: {} ms ({} of {} prompt tokens reused) = {:.1}% of cold",
        warm.as_millis(),
        warm_stats.reused_tokens,
        warm_stats.prompt_tokens,
        100.0 * warm.as_secs_f64() / cold.as_secs_f64().max(1e-9)
    );
    bench_guided(&engine, &source)?;
    let status: EngineStatus = engine.status();
    tracing::debug!(?status, "bench engine");
    match peak_rss_kib() {
        Some(kib) => println!("peak rss: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak rss: unknown"),
    }
    Ok(())
}
