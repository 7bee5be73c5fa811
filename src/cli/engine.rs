//! Model commands: `pith complete`, `chat`, `ask`, `model …`, `bench engine|complete|remote`.
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
        ModelCommand::Install { source, with_chat } => {
            let path = engine::model::install(source.as_deref())?;
            println!("{}", path.display());
            let large = engine::model::PUBLISHED_MODELS[1].name;
            if *with_chat {
                match engine::route::both_fit_here() {
                    Ok(()) => {
                        println!("{}", engine::model::install(Some(large))?.display());
                        eprintln!("{}", chat_model_note());
                    }
                    Err(why) => {
                        eprintln!("{large} not installed, chat stays on the default model: {why}")
                    }
                }
            } else if source.as_deref() == Some(large) {
                eprintln!("{}", chat_model_note());
            }
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

/// What the installed 1.5B does for chat on this machine: `[chat] model = "auto"` (the
/// default) answers with it where the memory allows both models.
fn chat_model_note() -> String {
    let large = engine::model::PUBLISHED_MODELS[1].name;
    match engine::route::auto_chat(None) {
        Ok(_) => format!(
            "questions, explanations and code actions now use {large} (`[chat] model = \"auto\"`, \
             the default; completion stays on the default model): this machine has the memory \
             for both. `[chat] model = \"same\"` keeps them on the default model, about twice as \
             fast"
        ),
        Err(why) => format!(
            "chat stays on the default model: {why}; `[chat] model = \"{large}\"` in the \
             config uses {large} anyway"
        ),
    }
}

pub fn bench(cli: &Cli, command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Engine { threads } => bench_engine(cli, *threads),
        BenchCommand::Load { threads, rounds } => bench_load(cli, *threads, (*rounds).max(1)),
        BenchCommand::Raw { threads } => {
            let settings = EngineSettings {
                threads: *threads,
                ..engine_settings(cli)
            };
            let raw = engine::llama::raw_bench(&settings, 128, 32, 1)?;
            println!(
                "{}",
                serde_json::json!({"pp": raw.pp_tokens_per_s, "tg": raw.tg_tokens_per_s})
            );
            Ok(())
        }
        BenchCommand::Remote {
            url,
            api,
            model_name,
            api_key_env,
            rounds,
        } => {
            let api = match api.as_str() {
                "infill" => engine::RemoteApi::Infill,
                "openai" => engine::RemoteApi::Openai,
                other => anyhow::bail!("--api must be infill or openai, not {other:?}"),
            };
            let settings = engine::RemoteSettings {
                url: url.clone(),
                api,
                model: model_name.clone(),
                api_key_env: api_key_env.clone(),
                ..engine::RemoteSettings::default()
            };
            bench_remote(settings, (*rounds).max(1))
        }
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
    // With a draft, the comparison alone: the rest is the same as without one.
    if let Some(draft) = bench_draft(cli, &settings) {
        return bench_speculative(&settings, &draft);
    }
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

/// Prompt and generation speed (tokens/s) of a fresh `pith bench raw` with `spin` as
/// libgomp's spin count.
fn raw_in_child(cli: &Cli, threads: Option<usize>, spin: &str) -> anyhow::Result<(f64, f64)> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.args(["bench", "raw"]).env("GOMP_SPINCOUNT", spin);
    if let Some(threads) = threads {
        command.args(["--threads", &threads.to_string()]);
    }
    if let Some(model) = &cli.model {
        command.arg("--model").arg(model);
    }
    let output = command.stderr(std::process::Stdio::null()).output()?;
    anyhow::ensure!(
        output.status.success(),
        "the measurement failed ({})",
        output.status
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let number = |key: &str| json[key].as_f64().unwrap_or(0.0);
    Ok((number("pp"), number("tg")))
}

/// Generation speed idle and while one busy thread per core runs beside it, with libgomp's
/// default spinning and with pith's (see [`super::openmp`]); rounds alternate, the fastest of
/// each is kept.
fn bench_load(cli: &Cli, threads: Option<usize>, rounds: usize) -> anyhow::Result<()> {
    use super::openmp::{LIBGOMP_DEFAULT, SPIN_COUNT};
    use std::sync::atomic::{AtomicBool, Ordering};
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spins = [LIBGOMP_DEFAULT, SPIN_COUNT];
    for busy in [false, true] {
        let stop = Arc::new(AtomicBool::new(false));
        let burners: Vec<_> = (0..if busy { cores } else { 0 })
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let mut best = [(0.0f64, 0.0f64); 2];
        let mut measured = Ok(());
        'rounds: for _ in 0..rounds {
            for (i, spin) in spins.iter().enumerate() {
                match raw_in_child(cli, threads, spin) {
                    Ok((pp, tg)) => best[i] = (best[i].0.max(pp), best[i].1.max(tg)),
                    Err(error) => {
                        measured = Err(error);
                        break 'rounds;
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for burner in burners {
            let _ = burner.join();
        }
        measured?;
        let label = if busy {
            format!("{cores} busy threads beside it")
        } else {
            "idle".to_string()
        };
        for (spin, (pp, tg)) in spins.iter().zip(best) {
            println!(
                "{label:>24}, spin count {spin:>6}: pp {pp:7.2} tokens/s, tg {tg:6.2} tokens/s"
            );
        }
        println!(
            "{label:>24}: generation {:.2}× as fast with pith's spin count",
            best[1].1 / best[0].1.max(1e-9)
        );
    }
    Ok(())
}

/// One measured request: time to the first text, total time, and the server's prompt counts.
struct Timed {
    first: Duration,
    total: Duration,
    stats: engine::RequestStats,
}

fn timed(engine: &dyn Engine, request: Request) -> anyhow::Result<Timed> {
    let started = Instant::now();
    let mut first = None;
    let stats = run_blocking(engine, request, |_| {
        first.get_or_insert_with(|| started.elapsed());
    })?;
    let total = started.elapsed();
    Ok(Timed {
        first: first.unwrap_or(total),
        total,
        stats,
    })
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Cold (a prompt the server has not seen) and warm (the same prompt one line further, as when
/// typing) completion, then chat, each `rounds` times; prints the medians and the KV reuse the
/// server reports. Each round's cold prompt is new (a round number in it), so nothing is cached.
fn bench_remote(settings: engine::RemoteSettings, rounds: usize) -> anyhow::Result<()> {
    let url = settings.url.clone();
    let engine = engine::RemoteEngine::new(settings)?;
    println!("server: {url}");
    // About 700 prompt tokens per completion, like a typical inline completion's.
    let source = synthetic_source(12);
    let shapes = synthetic_source(4);
    let fim = |round: usize, line: &str| Prompt::Fim {
        repo: "bench".into(),
        context: vec![ContextFile {
            path: "shapes.py".into(),
            text: format!("# round {round}\n{shapes}"),
        }],
        path: "bench.py".into(),
        prefix: format!("# round {round}\n{source}def volume(radius, height):\n{line}"),
        suffix: "\n\n\ndef main():\n    print(volume(1, 2))\n".into(),
    };
    let chat = |round: usize, question: &str| {
        Prompt::Chat(vec![
            Message {
                role: Role::System,
                content: format!(
                    "You explain Python code in one sentence. (round {round})\n{source}"
                ),
            },
            Message {
                role: Role::User,
                content: question.to_string(),
            },
        ])
    };
    let (mut cold, mut warm, mut cold_total, mut warm_total) = (vec![], vec![], vec![], vec![]);
    let (mut chat_cold, mut chat_warm) = (vec![], vec![]);
    let (mut reused, mut prompt) = (0u64, 0u64);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as usize)
        .unwrap_or(0);
    for round in 0..rounds {
        let round = stamp + round;
        let first = timed(&engine, request(fim(round, "    "), 16, Slot::Completion))?;
        let second = timed(
            &engine,
            request(
                fim(round, "    base = math.pi * radius ** 2\n    "),
                16,
                Slot::Completion,
            ),
        )?;
        reused += u64::from(second.stats.reused_tokens);
        prompt += u64::from(second.stats.prompt_tokens);
        cold.push(first.first);
        cold_total.push(first.total);
        warm.push(second.first);
        warm_total.push(second.total);
        let asked = timed(
            &engine,
            request(chat(round, "What does area_3 compute?"), 32, Slot::Chat),
        )?;
        let again = timed(
            &engine,
            request(chat(round, "What does area_7 return?"), 32, Slot::Chat),
        )?;
        chat_cold.push(asked.first);
        chat_warm.push(again.first);
    }
    let ms = |d: Duration| d.as_millis();
    let (cold, warm) = (median(cold), median(warm));
    println!(
        "completion cold: first text {} ms, whole {} ms",
        ms(cold),
        ms(median(cold_total))
    );
    println!(
        "completion warm: first text {} ms, whole {} ms = {:.0}% of cold",
        ms(warm),
        ms(median(warm_total)),
        100.0 * warm.as_secs_f64() / cold.as_secs_f64().max(1e-9)
    );
    if prompt > 0 && reused > 0 {
        println!(
            "completion warm: {reused} of {prompt} prompt tokens cached on the server ({:.0}%)",
            100.0 * reused as f64 / prompt as f64
        );
    } else {
        println!("completion warm: the server reports no prompt cache use");
    }
    println!(
        "chat: first text {} ms cold, {} ms with the same system prompt",
        ms(median(chat_cold)),
        ms(median(chat_warm))
    );
    println!("rounds: {rounds} (medians)");
    Ok(())
}

/// The draft `--draft` names for `bench engine` (`auto`: the 0.5B for the 1.5B).
fn bench_draft(cli: &Cli, settings: &EngineSettings) -> Option<std::path::PathBuf> {
    match cli.draft.as_deref()? {
        "none" => None,
        "auto" => engine::route::auto_draft(settings.model.as_deref()?),
        named => Some(named.into()),
    }
}

/// Tokens generated per prompt of the speculative comparison.
const BENCH_TOKENS: u32 = 128;

/// Ask-shaped chat prompts: excerpts of the synthetic source and a question about them.
fn bench_questions() -> Vec<Prompt> {
    let source = synthetic_source(12);
    [
        "What does area_3 compute, and how does it differ from area_7?",
        "Explain how the area functions use the math module.",
        "Which function would I change to compute the area of circle number 10 differently?",
    ]
    .iter()
    .map(|question| {
        Prompt::Chat(vec![
            Message {
                role: Role::System,
                content: "You answer questions about this codebase from excerpts of it. \
                          Answer briefly and concretely. Cite the code you rely on as \
                          path:line."
                    .into(),
            },
            Message {
                role: Role::User,
                content: format!(
                    "Code excerpts:\n\nbench.py:1\n```python\n{source}```\n\nQuestion: \
                     {question}"
                ),
            },
        ])
    })
    .collect()
}

/// Generation speed of the model with `draft` against without, on the same greedy chat
/// prompts, alternating between the two so that a busy machine slows both alike.
fn bench_speculative(settings: &EngineSettings, draft: &Path) -> anyhow::Result<()> {
    let plain = engine::LlamaEngine::open(settings)?;
    let drafted = engine::LlamaEngine::open(&EngineSettings {
        draft: Some(draft.to_path_buf()),
        ..settings.clone()
    })?;
    let prompts = bench_questions();
    let (mut tokens, mut ms) = ([0u64; 2], [0u64; 2]);
    let mut same = 0;
    for prompt in &prompts {
        let mut texts = [String::new(), String::new()];
        for (i, engine) in [&plain as &dyn Engine, &drafted].into_iter().enumerate() {
            let stats = run_blocking(
                engine,
                request(prompt.clone(), BENCH_TOKENS, Slot::Chat),
                |t| texts[i].push_str(t),
            )?;
            tokens[i] += u64::from(stats.generated_tokens);
            ms[i] += stats.generate_ms;
        }
        same += usize::from(texts[0] == texts[1]);
        if texts[0] != texts[1] {
            tracing::warn!(without = %texts[0], with = %texts[1], "speculative text differs");
        }
    }
    let speed = |i: usize| tokens[i] as f64 * 1000.0 / ms[i].max(1) as f64;
    let status = drafted.status();
    println!(
        "speculative: draft {} on {} ask-shaped prompts, greedy, up to {BENCH_TOKENS} tokens \
         each",
        draft.display(),
        prompts.len()
    );
    println!(
        "  without draft: {} tokens in {} ms = {:.2} tokens/s",
        tokens[0],
        ms[0],
        speed(0)
    );
    println!(
        "  with draft:    {} tokens in {} ms = {:.2} tokens/s = {:.2}x; {} of {} drafted \
         tokens accepted ({:.0}%)",
        tokens[1],
        ms[1],
        speed(1),
        speed(1) / speed(0).max(1e-9),
        status.draft_accepted,
        status.draft_tokens,
        100.0 * status.draft_accepted as f64 / status.draft_tokens.max(1) as f64
    );
    println!("  same text: {same} of {}", prompts.len());
    Ok(())
}
