//! `pith eval`: next-line completion quality on the workspace's own code.
//!
//! Tasks are drawn deterministically, the way `../shared/eval/gen_tasks.py` draws them: a line
//! inside a function body that starts a statement and uses exactly one name defined once in the
//! workspace, in another file, reached through an import, a path or an attribute. They come only from the held-out files (a fixed fifth of the
//! files, chosen by a hash of their path), which `pith tune` never trains on. Each task removes
//! the line (the cursor sits at its indentation, the rest of the file stays as the suffix) and
//! completes it through pith's whole inline-completion path ([`super::assist::Completer`]). The
//! first completed line is scored against the removed one, both stripped: exact match (EM) and
//! edit similarity (ES, `difflib.SequenceMatcher.ratio`), as `../shared/eval/complete.py` scores.
//! Tasks and results are written under the workspace's cache directory, never into the tree.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::assist::{Completer, canonical_root, load_config};
use super::context::BatchQuery;
use super::{Cli, EvalArgs};
use crate::config::Config;
use crate::index::{FileIndex, SymbolKind};
use crate::lang::Lang;

/// Share of the files held out from training, in percent.
const HELD_OUT_PERCENT: usize = 20;
/// Lines longer than this (stripped) make no task, as in the shared eval.
const MAX_LINE_CHARS: usize = 160;

/// One next-line task.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Task {
    pub id: String,
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    /// The file with the task's line reduced to its indentation.
    pub text: String,
    /// 0-based line and UTF-16 column of the cursor.
    pub line: u32,
    pub character: u32,
    /// The removed line, stripped.
    pub expected: String,
    /// The cross-file name the line uses.
    pub target: String,
}

/// The held-out files of a workspace: a fifth of `relative` paths (at least one when there are
/// two or more), those whose path hashes lowest; the same files on every run.
pub fn held_out(relative: &[String]) -> HashSet<String> {
    if relative.len() < 2 {
        return HashSet::new();
    }
    let mut ranked: Vec<(Vec<u8>, &String)> = relative
        .iter()
        .map(|path| (Sha256::digest(path.as_bytes()).to_vec(), path))
        .collect();
    ranked.sort();
    let count = (relative.len() * HELD_OUT_PERCENT).div_ceil(100).max(1);
    ranked
        .into_iter()
        .take(count)
        .map(|(_, path)| path.clone())
        .collect()
}

/// `path` relative to `root`, `/`-separated.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Per line: the bracket depth at its start and whether it starts inside a string or a block
/// comment. Python counts `(`, `[`, `{`; Rust `(` and `[` (its braces are blocks).
fn line_states(text: &str, lang: Lang) -> Vec<(i32, bool)> {
    #[derive(PartialEq)]
    enum State {
        Code,
        Str { quote: char, triple: bool },
        Block,
    }
    let chars: Vec<char> = text.chars().collect();
    let mut states = vec![(0, false)];
    let (mut depth, mut state, mut i) = (0i32, State::Code, 0);
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            if let State::Str { triple: false, .. } = state
                && lang == Lang::Python
            {
                state = State::Code; // an unterminated one-line string ends with its line
            }
            states.push((depth, state != State::Code));
            i += 1;
            continue;
        }
        match state {
            State::Code => match c {
                '#' if lang == Lang::Python => {
                    while i + 1 < chars.len() && chars[i + 1] != '\n' {
                        i += 1;
                    }
                }
                '/' if lang == Lang::Rust && next == Some('/') => {
                    while i + 1 < chars.len() && chars[i + 1] != '\n' {
                        i += 1;
                    }
                }
                '/' if lang == Lang::Rust && next == Some('*') => {
                    state = State::Block;
                    i += 1;
                }
                '"' | '\'' if lang == Lang::Python => {
                    let triple = next == Some(c) && chars.get(i + 2) == Some(&c);
                    if triple {
                        i += 2;
                    }
                    state = State::Str { quote: c, triple };
                }
                '"' => {
                    state = State::Str {
                        quote: c,
                        triple: false,
                    }
                }
                '\'' if lang == Lang::Rust => {
                    // A char literal ('x', '\n'); otherwise a lifetime.
                    if next == Some('\\') {
                        while i + 1 < chars.len() && chars[i + 1] != '\'' && chars[i + 1] != '\n' {
                            i += 1;
                        }
                        i += 1;
                    } else if chars.get(i + 2) == Some(&'\'') {
                        i += 2;
                    }
                }
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                '{' if lang == Lang::Python => depth += 1,
                '}' if lang == Lang::Python => depth -= 1,
                _ => {}
            },
            State::Str { quote, triple } => {
                if c == '\\' {
                    i += 1;
                } else if c == quote {
                    if !triple {
                        state = State::Code;
                    } else if next == Some(quote) && chars.get(i + 2) == Some(&quote) {
                        state = State::Code;
                        i += 2;
                    }
                }
            }
            State::Block => {
                if c == '*' && next == Some('/') {
                    state = State::Code;
                    i += 1;
                }
            }
        }
        i += 1;
    }
    states
}

const PYTHON_BUILTINS: &[&str] = &[
    "print",
    "len",
    "range",
    "str",
    "int",
    "dict",
    "list",
    "set",
    "tuple",
    "type",
    "object",
    "super",
    "isinstance",
    "open",
    "bytes",
    "float",
    "bool",
    "iter",
    "next",
    "min",
    "max",
    "sorted",
    "getattr",
    "setattr",
    "hasattr",
    "Exception",
    "ValueError",
    "TypeError",
    "KeyError",
];

fn identifiers(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| word.chars().next().is_some_and(|c| !c.is_ascii_digit()))
}

/// Where a name is defined: the files of its definitions (one entry per definition).
fn definitions(files: &[Arc<FileIndex>], root: &Path) -> HashMap<String, Vec<String>> {
    let mut defined: HashMap<String, Vec<String>> = HashMap::new();
    for file in files {
        let path = relative(root, &file.path);
        for symbol in &file.symbols {
            if matches!(
                symbol.kind,
                SymbolKind::Module | SymbolKind::Impl | SymbolKind::Field
            ) {
                continue;
            }
            defined
                .entry(symbol.name.to_string())
                .or_default()
                .push(path.clone());
        }
    }
    defined
}

/// The candidate lines of one file: (0-based row, the cross-file name it uses).
fn candidates(
    file: &FileIndex,
    path: &str,
    defined: &HashMap<String, Vec<String>>,
) -> Vec<(usize, String)> {
    let lines: Vec<&str> = file.text.split('\n').collect();
    let states = line_states(&file.text, file.lang);
    let mut rows = HashSet::new();
    for symbol in &file.symbols {
        if matches!(symbol.kind, SymbolKind::Function | SymbolKind::Method) {
            let first = symbol.span.start_line as usize + 1;
            rows.extend(first..=symbol.span.end_line as usize);
        }
    }
    let mut rows: Vec<usize> = rows.into_iter().collect();
    rows.sort_unstable();
    // Names that reach the file through an import, by their local name.
    let imported: HashSet<&str> = file
        .imports
        .iter()
        .filter_map(|i| i.alias.as_deref().or(i.name.as_deref()))
        .collect();
    let mut out = Vec::new();
    for row in rows {
        let (Some(line), Some(&(depth, in_string)), Some(&(depth_after, _))) =
            (lines.get(row), states.get(row), states.get(row + 1))
        else {
            continue;
        };
        let stripped = line.trim();
        if depth != 0 || in_string || depth_after < 0 || stripped.chars().count() > MAX_LINE_CHARS {
            continue;
        }
        if !stripped
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || matches!(c, '_' | '*' | '&'))
        {
            continue;
        }
        let header = [
            "def ",
            "class ",
            "async def ",
            "import ",
            "from ",
            "fn ",
            "pub ",
            "use ",
            "impl ",
            "struct ",
            "enum ",
            "mod ",
            "trait ",
        ];
        if header.iter().any(|h| stripped.starts_with(h)) {
            continue;
        }
        let previous = lines[..row]
            .iter()
            .rev()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let follows_statement = match file.lang {
            Lang::Python => !previous.ends_with('\\'),
            Lang::Rust => {
                previous.starts_with("//")
                    || previous.starts_with("#[")
                    || [";", "{", "}", ",", "=>"]
                        .iter()
                        .any(|end| previous.ends_with(end))
            }
        };
        if !follows_statement {
            continue;
        }
        let names: HashSet<&str> = identifiers(stripped)
            .filter(|word| word.len() >= 3)
            .filter(|word| file.lang != Lang::Python || !PYTHON_BUILTINS.contains(word))
            .filter(|word| {
                defined
                    .get(*word)
                    .is_some_and(|files| files.len() == 1 && files[0] != path)
            })
            // Imported, or reached through a path or an attribute (`m::name`, `obj.name`): a
            // bare name may be a local that happens to share a definition's name.
            .filter(|word| {
                imported.contains(word)
                    || stripped.contains(&format!("::{word}"))
                    || stripped.contains(&format!(".{word}"))
            })
            .collect();
        if names.len() == 1 {
            let name = names.into_iter().next().unwrap_or_default();
            out.push((row, name.to_string()));
        }
    }
    out
}

fn hash_key(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// A held-out file's candidate lines, with the hash that orders the files.
type FileCandidates<'a> = (Vec<u8>, &'a FileIndex, String, Vec<(usize, String)>);

/// Up to `count` tasks from the held-out files, spread round-robin over them in a fixed
/// pseudo-random order; sorted by file and line.
pub fn generate(root: &Path, files: &[Arc<FileIndex>], count: usize) -> Vec<Task> {
    let relatives: Vec<String> = files.iter().map(|f| relative(root, &f.path)).collect();
    let held = held_out(&relatives);
    let defined = definitions(files, root);
    let mut per_file: Vec<FileCandidates> = files
        .iter()
        .zip(&relatives)
        .filter(|(_, path)| held.contains(*path))
        .map(|(file, path)| {
            let mut lines = candidates(file, path, &defined);
            lines.sort_by_key(|(row, _)| std::cmp::Reverse(hash_key(&format!("{path}:{row}"))));
            (hash_key(path), &**file, path.clone(), lines)
        })
        .filter(|(_, _, _, lines)| !lines.is_empty())
        .collect();
    per_file.sort_by(|a, b| a.0.cmp(&b.0));
    let mut chosen: Vec<(&FileIndex, String, usize, String)> = Vec::new();
    while chosen.len() < count {
        let mut progress = false;
        for (_, file, path, lines) in per_file.iter_mut() {
            if chosen.len() >= count {
                break;
            }
            if let Some((row, name)) = lines.pop() {
                chosen.push((*file, path.clone(), row, name));
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    chosen.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
    chosen
        .into_iter()
        .enumerate()
        .map(|(number, (file, path, row, target))| {
            let lines: Vec<&str> = file.text.split('\n').collect();
            let line = lines[row];
            let indent = &line[..line.len() - line.trim_start().len()];
            let mut text = lines[..row].join("\n");
            if row > 0 {
                text.push('\n');
            }
            text.push_str(indent);
            if row + 1 < lines.len() {
                text.push('\n');
                text.push_str(&lines[row + 1..].join("\n"));
            }
            Task {
                id: format!("eval-{number:03}"),
                path,
                text,
                line: row as u32,
                character: indent.encode_utf16().count() as u32,
                expected: line.trim().to_string(),
                target,
            }
        })
        .collect()
}

/// `difflib.SequenceMatcher(None, a, b).ratio()` over characters (no junk; the heuristic for
/// popular characters starts at 200 characters, longer than any task line).
pub fn edit_similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
    for (j, c) in b.iter().enumerate() {
        b2j.entry(*c).or_default().push(j);
    }
    let longest = |alo: usize, ahi: usize, blo: usize, bhi: usize| {
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0);
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        for (i, c) in a.iter().enumerate().take(ahi).skip(alo) {
            let mut next: HashMap<usize, usize> = HashMap::new();
            for &j in b2j.get(c).map(Vec::as_slice).unwrap_or(&[]) {
                if j < blo {
                    continue;
                }
                if j >= bhi {
                    break;
                }
                let k = j.checked_sub(1).and_then(|p| j2len.get(&p)).unwrap_or(&0) + 1;
                next.insert(j, k);
                if k > bestsize {
                    (besti, bestj, bestsize) = (i + 1 - k, j + 1 - k, k);
                }
            }
            j2len = next;
        }
        (besti, bestj, bestsize)
    };
    let mut matched = 0;
    let mut queue = vec![(0, a.len(), 0, b.len())];
    while let Some((alo, ahi, blo, bhi)) = queue.pop() {
        let (i, j, k) = longest(alo, ahi, blo, bhi);
        if k > 0 {
            matched += k;
            if alo < i && blo < j {
                queue.push((alo, i, blo, j));
            }
            if i + k < ahi && j + k < bhi {
                queue.push((i + k, ahi, j + k, bhi));
            }
        }
    }
    2.0 * matched as f64 / (a.len() + b.len()) as f64
}

/// The first line of a completion, stripped (the shared eval's `first_line`).
pub fn first_line(completion: &str) -> &str {
    completion.split('\n').next().unwrap_or("").trim()
}

/// One scored run over the tasks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    pub label: String,
    pub context: bool,
    pub lora: Option<PathBuf>,
    pub em: f64,
    pub es: f64,
    pub p50_ms: u64,
    pub p95_ms: u64,
}

/// Progress on stderr with an ETA: one redrawn line on a terminal, a line per task elsewhere.
struct Progress {
    label: String,
    total: usize,
    started: Instant,
    terminal: bool,
}

impl Progress {
    fn show(&self, done: usize, em: f64, es: f64) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = self.total.saturating_sub(done);
        let eta = if done == 0 {
            "?".to_string()
        } else {
            duration(elapsed / done as f64 * left as f64)
        };
        let width = 24;
        let filled = width * done / self.total.max(1);
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
        let n = done.max(1) as f64;
        let line = format!(
            "{} [{bar}] {done}/{} EM {:.3} ES {:.3} elapsed {} ETA {eta}",
            self.label,
            self.total,
            em / n,
            es / n,
            duration(elapsed)
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
            if done == self.total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}

/// `1h02m`, `3m05s`, `12s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The workspace's eval directory under pith's cache.
pub fn cache_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    let base = crate::dirs::cache_dir()
        .context("cannot find a cache directory (set HOME or XDG_CACHE_HOME)")?;
    Ok(base.join("eval").join(&hex::encode(digest)[..16]))
}

/// Loads the workspace, generates its tasks and writes them to the cache.
pub fn tasks_for(root: &Path, config: &Config, count: usize) -> anyhow::Result<Vec<Task>> {
    let files = crate::dataset::index_workspace(root, &config.index);
    let tasks = generate(root, &files, count);
    if tasks.is_empty() {
        let relatives: Vec<String> = files.iter().map(|f| relative(root, &f.path)).collect();
        anyhow::bail!(
            "no eligible lines in {}: {} Python/Rust files, {} held out; a task needs a line in a \
             function body of a held-out file that uses a name defined once, in another file",
            root.display(),
            files.len(),
            held_out(&relatives).len()
        );
    }
    let dir = cache_dir(root)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("tasks.jsonl");
    let mut text = String::new();
    for task in &tasks {
        text.push_str(&serde_json::to_string(task)?);
        text.push('\n');
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(tasks)
}

/// Completes every task with `config` (context per its budget, its adapters) and scores it;
/// per-task results go to `<cache>/<label>.jsonl`.
pub fn run(
    cli: &Cli,
    root: &Path,
    config: Config,
    tasks: &[Task],
    label: &str,
) -> anyhow::Result<Run> {
    let context = config.completion.budget_tokens != Some(0);
    let lora = config.model.lora.first().map(|l| l.path.clone());
    let completer = Completer::open(cli, root, config)?;
    let progress = Progress {
        label: label.to_string(),
        total: tasks.len(),
        started: Instant::now(),
        terminal: std::io::stderr().is_terminal(),
    };
    let (mut em, mut es) = (0.0, 0.0);
    let mut times = Vec::new();
    let mut results = String::new();
    progress.show(0, em, es);
    for (done, task) in tasks.iter().enumerate() {
        let query = BatchQuery {
            id: task.id.clone(),
            path: task.path.clone(),
            text: task.text.clone(),
            line: task.line,
            character: task.character,
        };
        let started = Instant::now();
        let outcome = completer.complete(&query, false);
        let ms = started.elapsed().as_millis() as u64;
        let got = first_line(&outcome.text);
        let exact = f64::from(u8::from(got == task.expected));
        let similar = edit_similarity(got, &task.expected);
        em += exact;
        es += similar;
        times.push(ms);
        results.push_str(
            &serde_json::json!({
                "id": task.id, "path": task.path, "line": task.line, "em": exact,
                "es": (similar * 1000.0).round() / 1000.0, "got": got, "want": task.expected,
                "ms": ms,
            })
            .to_string(),
        );
        results.push('\n');
        progress.show(done + 1, em, es);
    }
    let dir = cache_dir(root)?;
    let file = dir.join(format!("{label}.jsonl"));
    std::fs::write(&file, results).with_context(|| format!("writing {}", file.display()))?;
    times.sort_unstable();
    let n = tasks.len().max(1) as f64;
    let percentile = |p: usize| {
        times
            .get((times.len() * p / 100).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Ok(Run {
        label: label.to_string(),
        context,
        lora,
        em: em / n,
        es: es / n,
        p50_ms: percentile(50),
        p95_ms: percentile(95),
    })
}

/// The config for one run: with or without context, with the given adapter or none.
pub fn variant(config: &Config, context: bool, lora: Option<&Path>) -> Config {
    let mut config = config.clone();
    if !context {
        config.completion.budget_tokens = Some(0);
    }
    config.model.lora = lora
        .map(|path| {
            vec![crate::config::LoraConfig {
                path: path.to_path_buf(),
                scale: 1.0,
            }]
        })
        .unwrap_or_default();
    config
}

/// `pith eval [ROOT]`.
pub fn eval(cli: &Cli, args: &EvalArgs) -> anyhow::Result<()> {
    let root = canonical_root(args.root.as_ref())?;
    let mut config = load_config(&root)?;
    if let Some(budget) = args.budget_tokens {
        config.completion.budget_tokens = Some(budget);
    }
    if let Some(lora) = &args.lora {
        anyhow::ensure!(lora.is_file(), "no adapter at {}", lora.display());
        config.model.lora = vec![crate::config::LoraConfig {
            path: std::path::absolute(lora)?,
            scale: 1.0,
        }];
    }
    let adapter = config.model.lora.first().map(|l| l.path.clone());
    let model = crate::engine::llama::resolve_model(&super::assist::engine_settings(cli, &config))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .display()
        .to_string();
    let tasks = tasks_for(&root, &config, args.tasks)?;
    eprintln!(
        "pith eval: {} tasks from the held-out files of {} (tasks and results in {})",
        tasks.len(),
        root.display(),
        cache_dir(&root)?.display()
    );
    let plan: Vec<(bool, Option<&Path>)> = if args.compare {
        let mut plan = vec![(true, None), (false, None)];
        if let Some(adapter) = &adapter {
            plan.extend([
                (true, Some(adapter.as_path())),
                (false, Some(adapter.as_path())),
            ]);
        }
        plan
    } else {
        vec![(!args.no_context, adapter.as_deref())]
    };
    let mut runs = Vec::new();
    for (context, lora) in plan {
        let label = format!(
            "{}{}",
            if context { "context" } else { "no-context" },
            if lora.is_some() { "+lora" } else { "" }
        );
        runs.push(run(
            cli,
            &root,
            variant(&config, context, lora),
            &tasks,
            &label,
        )?);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<20} {:>6} {:>6} {:>8} {:>8}",
        "run", "EM", "ES", "p50 ms", "p95 ms"
    )?;
    for run in &runs {
        writeln!(
            out,
            "{:<20} {:>6.3} {:>6.3} {:>8} {:>8}",
            run.label, run.em, run.es, run.p50_ms, run.p95_ms
        )?;
    }
    if args.json {
        // The first run is the one asked for (context unless --no-context, the adapter when
        // one is configured); the no-context figures come from a run without context.
        let main = &runs[0];
        let no_context = runs
            .iter()
            .find(|r| !r.context && r.lora == main.lora)
            .or_else(|| runs.iter().find(|r| !r.context));
        let json = serde_json::json!({
            "tasks": tasks.len(),
            "em": main.em,
            "es": main.es,
            "em_no_context": no_context.map(|r| r.em),
            "es_no_context": no_context.map(|r| r.es),
            "p50_ms": main.p50_ms,
            "p95_ms": main.p95_ms,
            "model": model,
            "lora": main.lora,
            "runs": runs,
        });
        writeln!(out, "{json}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_similarity_is_difflib_ratio() {
        // Values from Python: difflib.SequenceMatcher(None, a, b).ratio()
        let cases = [
            ("abcd", "bcde", 0.75),
            ("return self.x", "return self.y", 0.923_076_923_076_923_1),
            ("", "", 1.0),
            ("", "abc", 0.0),
            ("foo(bar, baz)", "foo(baz, bar)", 0.846_153_846_153_846_1),
            (
                "x = make_thing(a)",
                "y = make_other(b)",
                0.705_882_352_941_176_5,
            ),
        ];
        for (a, b, want) in cases {
            let got = edit_similarity(a, b);
            assert!((got - want).abs() < 1e-9, "{a:?} {b:?}: {got} != {want}");
        }
    }

    #[test]
    fn held_out_is_a_fixed_fifth() {
        let paths: Vec<String> = (0..10).map(|i| format!("pkg/m{i}.py")).collect();
        let held = held_out(&paths);
        assert_eq!(held.len(), 2);
        assert_eq!(held, held_out(&paths));
        assert!(held_out(&paths[..1]).is_empty());
        assert_eq!(held_out(&paths[..2]).len(), 1);
    }

    #[test]
    fn line_states_skip_strings_and_brackets() {
        let text = "def f(\n    a):\n    s = \"\"\"x (\n    y\"\"\"\n    g(a,\n      b)\n    h()\n";
        let states = line_states(text, Lang::Python);
        assert_eq!(states[1], (1, false));
        assert_eq!(states[2], (0, false));
        assert_eq!(states[3], (0, true));
        assert_eq!(states[4], (0, false));
        assert_eq!(states[5], (1, false));
        assert_eq!(states[6], (0, false));
    }
}
