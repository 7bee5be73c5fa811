//! The AI features on the command line: `pith ask`, `pith complete --batch` (the evaluation
//! interface of `../shared/eval/INTERFACE.md` through the whole inline-completion path) and
//! `pith bench complete`.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::context::BatchQuery;
use super::{AskArgs, Cli, CompleteArgs};
use crate::assist::ask::{AskRequest, AskSettings};
use crate::assist::completion::{self, CompletionInput, CompletionSettings, Workspace};
use crate::assist::never_cancelled;
use crate::config::{Config, ConfigSources};
use crate::engine::{self, EngineSettings};
use crate::index::WorkspaceIndex;
use crate::memory::{MemoryKind, MemoryStore, NewMemory};

/// The config of the project at `root` (built-in defaults where there is none).
pub fn load_config(root: &Path) -> anyhow::Result<Config> {
    Config::load(&ConfigSources::standard(Some(root))).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Engine settings from the config, `--model`/`PITH_MODEL` first.
pub fn engine_settings(cli: &Cli, config: &Config) -> EngineSettings {
    crate::assist::engine_settings_with(
        config,
        cli.model.clone(),
        cli.chat_model.clone(),
        cli.draft.clone(),
    )
}

/// [`engine_settings`] for commands that only complete: no chat model is loaded.
fn completion_settings(cli: &Cli, config: &Config) -> EngineSettings {
    EngineSettings {
        chat: None,
        ..engine_settings(cli, config)
    }
}

/// Indexes the workspace at `root` (`.gitignore`, `.pith/ignore` and `[index]` excludes apply).
pub fn index_root(root: &Path, config: &Config) -> WorkspaceIndex {
    let index = WorkspaceIndex::new(vec![root.to_path_buf()], config.index.index_options());
    let summary = index.scan(&|_, _| {}, &std::sync::atomic::AtomicBool::new(false));
    tracing::debug!(?summary, "scanned");
    index
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(super) fn canonical_root(root: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    let root = match root {
        Some(root) => root.clone(),
        None => std::env::current_dir()?,
    };
    std::fs::canonicalize(&root).with_context(|| format!("workspace root {}", root.display()))
}

/// `pith ask "…" [--root R]`: streams the answer, then the sources it cites.
pub fn ask(cli: &Cli, args: &AskArgs) -> anyhow::Result<()> {
    let root = canonical_root(args.root.as_ref())?;
    let config = load_config(&root)?;
    let started = Instant::now();
    let index = index_root(&root, &config);
    tracing::info!(
        files = index.len(),
        ms = started.elapsed().as_millis() as u64,
        "indexed"
    );
    let engine = engine::open(&engine_settings(cli, &config))?;
    let memory = MemoryStore::open_or_off(&root);
    let memories = memory
        .as_ref()
        .and_then(|m| m.recall(&args.question, &[], &[], 2).ok())
        .unwrap_or_default();
    let request = AskRequest {
        question: &args.question,
        memories: &memories,
        settings: AskSettings::default(),
    };
    let mut stdout = std::io::stdout().lock();
    let answer = runtime()?.block_on(crate::assist::ask::ask(
        &*engine,
        &config,
        &index,
        &request,
        never_cancelled(),
        |piece| {
            if !args.json {
                let _ = stdout.write_all(piece.as_bytes());
                let _ = stdout.flush();
            }
        },
    ))?;
    let valid: Vec<_> = answer.citations.iter().filter(|c| c.valid).collect();
    let invalid: Vec<_> = answer.citations.iter().filter(|c| !c.valid).collect();
    if args.json {
        let out = ask_json(
            &index,
            &answer,
            started.elapsed().as_millis() as u64,
            &engine.model_name(crate::engine::Slot::Chat),
        );
        writeln!(stdout, "{out}")?;
    } else {
        writeln!(stdout)?;
    }
    if !args.json && !invalid.is_empty() {
        let names: Vec<&str> = invalid.iter().map(|c| c.text.as_str()).collect();
        writeln!(
            stdout,
            "\n(not found in the workspace, ignore: {})",
            names.join(", ")
        )?;
    }
    if !args.json && valid.is_empty() && !answer.sources.is_empty() {
        writeln!(stdout, "\nContext used: {}", answer.sources.join(", "))?;
    }
    tracing::info!(
        prompt_tokens = answer.stats.prompt_tokens,
        generated = answer.stats.generated_tokens,
        ms = started.elapsed().as_millis() as u64,
        "answered"
    );
    if let Some(mut memory) = memory {
        let files = valid
            .iter()
            .filter_map(|c| c.file.as_ref())
            .map(|f| crate::assist::relative_path(&index, f))
            .collect();
        let remembered = memory.remember(&NewMemory {
            kind: Some(MemoryKind::Ask),
            question: args.question.clone(),
            answer: answer.text.clone(),
            files,
            ..NewMemory::default()
        });
        if let Err(error) = remembered {
            tracing::warn!(%error, "could not remember the answer");
        }
    }
    Ok(())
}

/// `pith ask --json`: `{"answer", "citations": [{"path", "line", "valid"}], "prompt_tokens",
/// "ms", "model"}`, plus the generation's own counters. A citation's path is the indexed
/// file's, relative to the root, where it names one; else as written.
fn ask_json(
    index: &WorkspaceIndex,
    answer: &crate::assist::ask::Answer,
    ms: u64,
    model: &str,
) -> serde_json::Value {
    let citations: Vec<serde_json::Value> = answer
        .citations
        .iter()
        .map(|c| {
            let path = match &c.file {
                Some(file) => crate::assist::relative_path(index, file),
                None => c
                    .text
                    .rsplit_once(':')
                    .map_or(&*c.text, |(p, _)| p)
                    .to_string(),
            };
            serde_json::json!({"path": path, "line": c.line, "valid": c.valid})
        })
        .collect();
    serde_json::json!({
        "answer": answer.text,
        "citations": citations,
        "prompt_tokens": answer.stats.prompt_tokens,
        "ms": ms,
        "model": model,
        "generated_tokens": answer.stats.generated_tokens,
        "prompt_ms": answer.stats.prompt_ms,
        "generate_ms": answer.stats.generate_ms,
    })
}

/// `pith complete --root ROOT --batch QUERIES.jsonl [--budget-tokens N] [--no-context]`: one
/// JSON line per query, `{"id","completion","prompt_tokens","ms"}`.
pub fn complete_batch(cli: &Cli, args: &CompleteArgs) -> anyhow::Result<()> {
    let position = &args.position;
    let batch = position.batch.as_ref().context("--batch is required")?;
    let root = canonical_root(position.root.as_ref())?;
    let mut config = load_config(&root)?;
    if let Some(budget) = position.budget_tokens {
        config.completion.budget_tokens = Some(budget);
    }
    if args.no_context {
        config.completion.budget_tokens = Some(0);
    }
    if args.no_guide {
        config.completion.guided = false;
    }
    let mut completer = Completer::open(cli, &root, config)?;
    if let Some(file) = &args.snippets {
        completer.given_snippets = Some(read_snippets(
            file,
            &root,
            completer.settings.budget_tokens,
        )?);
    }
    let queries = std::io::BufReader::new(
        std::fs::File::open(batch).with_context(|| format!("{}", batch.display()))?,
    );
    let mut stdout = std::io::stdout().lock();
    for (number, line) in queries.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let query: BatchQuery = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a query", batch.display(), number + 1))?;
        let started = Instant::now();
        let outcome = completer.complete(&query, args.show_prompt);
        let mut out = serde_json::json!({
            "id": query.id,
            "completion": outcome.text,
            "prompt_tokens": outcome.prompt_tokens,
            "ms": started.elapsed().as_millis() as u64,
        });
        if let Some(prompt) = outcome.prompt {
            out["prompt"] = prompt.into();
            out["raw"] = outcome.raw.into();
        }
        writeln!(stdout, "{out}")?;
        stdout.flush()?;
    }
    Ok(())
}

/// What one query of a [`Completer`] gave.
pub(super) struct Outcome {
    pub text: String,
    pub raw: String,
    pub prompt_tokens: usize,
    /// The prompt's parts, when asked for.
    pub prompt: Option<String>,
}

/// The whole inline-completion path over one workspace, query after query: the engine, the
/// retrieval table and the prompt settings, built once (`pith complete --batch`, `pith eval`).
pub(super) struct Completer {
    engine: std::sync::Arc<dyn crate::engine::Engine>,
    config: Config,
    pub settings: CompletionSettings,
    table: crate::retrieve::SymbolTable,
    root: PathBuf,
    repo: String,
    examples: Vec<crate::prompt::ResolvedExample>,
    runtime: tokio::runtime::Runtime,
    /// Each query's context from another retriever instead of retrieving it.
    pub given_snippets: Option<HashMap<String, Vec<crate::retrieve::Snippet>>>,
}

impl Completer {
    pub fn open(cli: &Cli, root: &Path, config: Config) -> anyhow::Result<Self> {
        let engine = engine::open(&completion_settings(cli, &config))?;
        let settings = CompletionSettings::from_config(&config, engine.parameters());
        let table = crate::retrieve::scan(root);
        let repo = root.file_name().map_or_else(
            || "workspace".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        // The batch path retrieves through its own symbol table, not a `WorkspaceIndex`:
        // explicit examples from the config still apply, glob/symbol ones need the index.
        let examples = crate::prompt::resolve_examples(
            &config,
            None,
            crate::prompt::Task::Completion,
            root,
            &[],
        );
        Ok(Self {
            engine,
            config,
            settings,
            table,
            root: root.to_path_buf(),
            repo,
            examples,
            runtime: runtime()?,
            given_snippets: None,
        })
    }

    /// Completes one query; a failed completion is logged and counts as an empty one.
    pub fn complete(&self, query: &BatchQuery, show_prompt: bool) -> Outcome {
        let workspace = Workspace {
            root: &self.root,
            repo: &self.repo,
            examples: &self.examples,
        };
        let path = self.root.join(&query.path);
        let cursor = query.cursor();
        let input = CompletionInput {
            path: &path,
            text: &query.text,
            cursor,
            recent: &[],
        };
        let engine = &*self.engine;
        let count_tokens = |text: &str| engine.count_tokens(text);
        let snippets = if let Some(given) = &self.given_snippets {
            given.get(&query.id).cloned().unwrap_or_default()
        } else if self.settings.use_context {
            let retrieval = crate::retrieve::Query {
                path: &path,
                text: &query.text,
                cursor,
                budget_tokens: self.settings.budget_tokens,
                recent: &[],
            };
            crate::retrieve::retrieve_in(&self.table, &retrieval, &count_tokens)
        } else {
            Vec::new()
        };
        let guide = self
            .settings
            .guided
            .then(|| completion::code_guide_in(&self.table, &input));
        let result = self.runtime.block_on(completion::complete_with(
            engine,
            &self.config,
            &workspace,
            &input,
            &snippets,
            guide,
            never_cancelled(),
        ));
        let (text, raw, prompt_tokens) = match result {
            Ok(completion) => (completion.text, completion.raw, completion.prompt_tokens),
            Err(error) => {
                tracing::warn!(id = %query.id, %error, "completion failed");
                (String::new(), String::new(), 0)
            }
        };
        let prompt = show_prompt.then(|| {
            let prompt = completion::fim_prompt(
                &self.config,
                &workspace,
                &self.settings,
                &input,
                &snippets,
                &count_tokens,
            );
            crate::prompt::render_parts(&prompt)
        });
        Outcome {
            text,
            raw,
            prompt_tokens,
            prompt,
        }
    }
}

/// One line of a retriever's output (the eval's INTERFACE.md).
#[derive(serde::Deserialize)]
struct GivenContext {
    id: String,
    snippets: Vec<GivenSnippet>,
}

#[derive(serde::Deserialize)]
struct GivenSnippet {
    path: PathBuf,
    start_line: u32,
    end_line: u32,
    text: String,
}

/// Each query's snippets from a retriever's output, cut the way the eval scores them: the texts
/// in order, up to `4 × budget_tokens` characters, keeping whole lines.
fn read_snippets(
    file: &Path,
    root: &Path,
    budget_tokens: usize,
) -> anyhow::Result<HashMap<String, Vec<crate::retrieve::Snippet>>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut by_id = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let given: GivenContext = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: not a retriever's output",
                file.display(),
                number + 1
            )
        })?;
        let mut left = 4 * budget_tokens;
        let mut snippets = Vec::new();
        for snippet in given.snippets {
            let kept: String = snippet
                .text
                .split_inclusive('\n')
                .scan(0, |used, line| {
                    *used += line.len();
                    (*used <= left).then_some(line)
                })
                .collect();
            if kept.is_empty() {
                break;
            }
            left -= kept.len();
            snippets.push(crate::retrieve::Snippet {
                path: root.join(&snippet.path),
                start_line: snippet.start_line,
                end_line: snippet.end_line,
                text: kept,
                score: 0.0,
                reason: "given".to_string(),
            });
        }
        by_id.insert(given.id, snippets);
    }
    Ok(by_id)
}

/// A place to complete in a benchmark: a function body line cut to its indentation.
struct BenchCase {
    path: PathBuf,
    /// The file's text with line `line` cut.
    text: String,
    cursor: usize,
}

/// Cases for the function at `symbol` in `file`: body lines `first` and `first + 1` cut.
fn bench_cases(
    file: &crate::index::FileIndex,
    symbol: &crate::index::Symbol,
) -> Option<[BenchCase; 2]> {
    let lines: Vec<&str> = file.text.lines().collect();
    let body_first = symbol.span.start_line as usize + 1;
    let body_end = symbol.span.end_line as usize;
    let candidates: Vec<usize> = (body_first..body_end)
        .filter(|&i| lines.get(i).is_some_and(|l| l.trim().len() > 8))
        .collect();
    // Three lines in a row: the cold and the warm case both cut a line that follows a
    // statement, so both ask for the same shape of completion.
    let run = candidates.windows(3).find(|w| w[2] == w[0] + 2)?;
    let pair = &run[1..];
    let case = |cut: usize| {
        let mut text = String::new();
        let mut cursor = 0;
        for (i, line) in lines.iter().enumerate() {
            if i == cut {
                let indent = crate::assist::indentation(line);
                text.push_str(indent);
                cursor = text.len();
            } else {
                text.push_str(line);
            }
            text.push('\n');
        }
        BenchCase {
            path: file.path.clone(),
            text,
            cursor,
        }
    };
    Some([case(pair[0]), case(pair[1])])
}

/// `pith bench complete ROOT`: inline completion latency with a cold KV cache (a function not
/// seen before) and warm (the cursor one line further down in the same function).
pub fn bench_complete(cli: &Cli, root: &Path) -> anyhow::Result<()> {
    let root = canonical_root(Some(&root.to_path_buf()))?;
    let config = load_config(&root)?;
    let index = index_root(&root, &config);
    // Cold means cold: no cache kept by an earlier run (the restart case below keeps its own).
    let settings = EngineSettings {
        kv_dir: None,
        ..completion_settings(cli, &config)
    };
    let engine = engine::open(&settings)?;
    let mut files = index.files();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let functions: Vec<[BenchCase; 2]> = files
        .iter()
        .flat_map(|file| {
            file.symbols
                .iter()
                .filter(|s| {
                    matches!(
                        s.kind,
                        crate::index::SymbolKind::Function | crate::index::SymbolKind::Method
                    ) && s.span.end_line >= s.span.start_line + 5
                })
                .filter_map(|s| bench_cases(file, s))
                .collect::<Vec<_>>()
        })
        .collect();
    anyhow::ensure!(
        !functions.is_empty(),
        "no function with three consecutive body lines under {}",
        root.display()
    );
    // Spread the picks over the tree.
    let picks = 5.min(functions.len());
    let step = functions.len() / picks;
    let runtime = runtime()?;
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut prompt_tokens = Vec::new();
    let mut reused = Vec::new();
    // Per phase, warm requests only: where the warm time goes.
    let (mut warm_decoded, mut warm_prompt_ms, mut warm_generated, mut warm_generate_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let _ = writeln!(
        std::io::stderr(),
        "completing at {picks} functions of {} (cold, then one line down)",
        root.display()
    );
    let complete = |engine: &dyn engine::Engine, case: &BenchCase| {
        let input = CompletionInput {
            path: &case.path,
            text: &case.text,
            cursor: case.cursor,
            recent: &[],
        };
        runtime
            .block_on(completion::complete(
                engine,
                &index,
                &config,
                &input,
                never_cancelled(),
            ))
            .map_err(anyhow::Error::from)
    };
    for pair in functions.iter().step_by(step.max(1)).take(picks) {
        for (n, case) in pair.iter().enumerate() {
            let completion = complete(&*engine, case)?;
            prompt_tokens.push(completion.prompt_tokens as u64);
            if n == 0 {
                cold.push(completion.elapsed_ms);
            } else {
                warm.push(completion.elapsed_ms);
                let stats = &completion.stats;
                reused.push(u64::from(stats.reused_tokens));
                warm_decoded.push(u64::from(stats.prompt_tokens - stats.reused_tokens));
                warm_prompt_ms.push(stats.prompt_ms);
                warm_generated.push(u64::from(stats.generated_tokens));
                warm_generate_ms.push(stats.generate_ms);
            }
        }
    }
    let parameters = engine.parameters();
    drop(engine);
    let restart = bench_restart(&settings, &functions[0], &complete)?;
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let settings = CompletionSettings::from_config(&config, parameters);
    let (cold_ms, warm_ms) = (median(&mut cold), median(&mut warm));
    let mut out = std::io::stdout().lock();
    writeln!(out, "pith bench complete {}", root.display())?;
    writeln!(
        out,
        "  cases {picks}, context budget {} tokens, buffer {} + {} tokens",
        settings.budget_tokens, settings.prefix_tokens, settings.suffix_tokens
    )?;
    writeln!(out, "  cold  median {cold_ms} ms")?;
    writeln!(
        out,
        "  warm  median {warm_ms} ms ({:.0}% of cold), prompt tokens reused median {}",
        100.0 * warm_ms as f64 / cold_ms.max(1) as f64,
        median(&mut reused)
    )?;
    writeln!(
        out,
        "  warm  prompt: {} tokens decoded in {} ms; generation: {} tokens in {} ms (medians)",
        median(&mut warm_decoded),
        median(&mut warm_prompt_ms),
        median(&mut warm_generated),
        median(&mut warm_generate_ms)
    )?;
    writeln!(out, "  prompt tokens median {}", median(&mut prompt_tokens))?;
    writeln!(
        out,
        "  after a restart (one line down, the cache the last process kept): {} ms, {} of {} \
         prompt tokens reused",
        restart.elapsed_ms, restart.stats.reused_tokens, restart.stats.prompt_tokens
    )?;
    Ok(())
}

/// The first completion of a new process, one line below where the last one completed, with
/// the KV cache that process kept (`[model] keep_cache`) in a folder of its own.
fn bench_restart(
    settings: &EngineSettings,
    pair: &[BenchCase; 2],
    complete: &dyn Fn(&dyn engine::Engine, &BenchCase) -> anyhow::Result<completion::Completion>,
) -> anyhow::Result<completion::Completion> {
    let dir = crate::dirs::cache_dir()
        .context("no cache directory (set HOME or XDG_CACHE_HOME)")?
        .join("kv")
        .join(format!("bench-{}", std::process::id()));
    let settings = EngineSettings {
        kv_dir: Some(dir.clone()),
        ..settings.clone()
    };
    let result = (|| {
        {
            let engine = engine::open(&settings)?;
            complete(&*engine, &pair[0])?;
        }
        let engine = engine::open(&settings)?;
        complete(&*engine, &pair[1])
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_snippets_are_cut_at_the_budget_on_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snippets.jsonl");
        let first = "def a():\n    return 1\n"; // 22 bytes
        let second = "def b():\n    return 2\n";
        let lines = [
            serde_json::json!({"id": "q1", "snippets": [
                {"path": "pkg/a.py", "start_line": 0, "end_line": 2, "text": first},
                {"path": "pkg/b.py", "start_line": 4, "end_line": 6, "text": second},
            ]}),
            serde_json::json!({"id": "q2", "snippets": []}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&file, text).unwrap();
        // 8 tokens = 32 characters: all of the first snippet, the first line of the second.
        let by_id = read_snippets(&file, Path::new("/root"), 8).unwrap();
        let q1: Vec<(PathBuf, &str)> = by_id["q1"]
            .iter()
            .map(|s| (s.path.clone(), s.text.as_str()))
            .collect();
        assert_eq!(
            q1,
            [
                (PathBuf::from("/root/pkg/a.py"), first),
                (PathBuf::from("/root/pkg/b.py"), "def b():\n"),
            ]
        );
        assert!(by_id["q2"].is_empty());

        std::fs::write(&file, "{\"id\": \"q1\"}\n").unwrap();
        let error = read_snippets(&file, Path::new("/root"), 8).unwrap_err();
        assert!(
            format!("{error:#}").contains("snippets.jsonl:1"),
            "{error:#}"
        );
    }
}
