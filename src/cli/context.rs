//! `pith context`: what the model would see at a position, or a batch of eval queries
//! (`../shared/eval/INTERFACE.md`: one JSON line per query on stdout, in order).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::engine::estimate_tokens;
use crate::retrieve::{self, Query, SymbolTable};

const DEFAULT_BUDGET: usize = 1024;

pub fn run(args: &super::ContextArgs) -> anyhow::Result<()> {
    let position = &args.position;
    let budget = position.budget_tokens.unwrap_or(DEFAULT_BUDGET);
    if let Some(batch) = &position.batch {
        let root = position.root.clone().unwrap_or_else(|| PathBuf::from("."));
        return run_batch(&root, batch, budget);
    }
    let Some(file) = &position.file else {
        anyhow::bail!("give a FILE with --line/--character, or --root ROOT --batch QUERIES.jsonl");
    };
    let file =
        std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let root = match &position.root {
        Some(root) => std::fs::canonicalize(root).or_else(|_| std::path::absolute(root))?,
        None => find_root(&file),
    };
    let table = retrieve::scan(&root);
    let cursor = byte_offset(&text, position.line, position.character);
    let query = Query {
        path: &file,
        text: &text,
        cursor,
        budget_tokens: budget,
        recent: &[],
    };
    let started = std::time::Instant::now();
    let snippets = retrieve::retrieve_in(&table, &query, &estimate_tokens);
    let elapsed = started.elapsed();
    let mut out = std::io::stdout().lock();
    let mut tokens = 0;
    for snippet in &snippets {
        tokens += estimate_tokens(&snippet.text);
        let path = snippet.path.strip_prefix(&root).unwrap_or(&snippet.path);
        writeln!(
            out,
            "── {}:{}-{}  {}  score {:.3}",
            path.display(),
            snippet.start_line + 1,
            snippet.end_line,
            snippet.reason,
            snippet.score
        )?;
        write!(out, "{}", snippet.text)?;
    }
    writeln!(
        out,
        "── {} snippets, {tokens}/{budget} tokens, {:.1} ms",
        snippets.len(),
        elapsed.as_secs_f64() * 1000.0
    )?;
    Ok(())
}

/// One query line of `--batch` (the eval's INTERFACE.md), for `pith context` and `pith complete`.
#[derive(Debug, Deserialize)]
pub(super) struct BatchQuery {
    pub id: String,
    pub path: String,
    pub text: String,
    pub line: u32,
    pub character: u32,
}

impl BatchQuery {
    /// The cursor as a byte offset into `text`.
    pub fn cursor(&self) -> usize {
        byte_offset(&self.text, self.line, self.character)
    }
}

fn run_batch(root: &Path, batch: &Path, budget: usize) -> anyhow::Result<()> {
    // The index keeps canonical paths; queries must name files the same way.
    let root = std::fs::canonicalize(root).or_else(|_| std::path::absolute(root))?;
    let input =
        std::fs::File::open(batch).with_context(|| format!("cannot open {}", batch.display()))?;
    let started = std::time::Instant::now();
    let table = retrieve::scan(&root);
    tracing::info!(
        files = table.files.len(),
        ms = started.elapsed().as_millis() as u64,
        "indexed"
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut latencies: Vec<f64> = Vec::new();
    for (number, line) in std::io::BufReader::new(input).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", batch.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<BatchQuery>(&line) {
            Ok(query) => {
                let started = std::time::Instant::now();
                let reply = answer(&table, &root, &query, budget);
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                reply
            }
            Err(error) => {
                tracing::warn!("query line {}: {error}", number + 1);
                let id = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or(serde_json::Value::Null);
                serde_json::json!({ "id": id, "snippets": [] })
            }
        };
        writeln!(out, "{reply}")?;
    }
    out.flush()?;
    latencies.sort_by(f64::total_cmp);
    if let Some(max) = latencies.last() {
        let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
        let p95 = latencies[(latencies.len() * 95 / 100).min(latencies.len() - 1)];
        tracing::info!(
            queries = latencies.len(),
            "retrieval per query: mean {mean:.2} ms, p95 {p95:.2} ms, max {max:.2} ms"
        );
    }
    Ok(())
}

fn answer(
    table: &SymbolTable,
    root: &Path,
    query: &BatchQuery,
    budget: usize,
) -> serde_json::Value {
    let path = root.join(&query.path);
    let query_view = Query {
        path: &path,
        text: &query.text,
        cursor: query.cursor(),
        budget_tokens: budget,
        recent: &[],
    };
    let snippets = retrieve::retrieve_in(table, &query_view, &estimate_tokens);
    serde_json::json!({ "id": query.id, "snippets": retrieve::snippets_json(root, &snippets) })
}

/// Byte offset of (line, UTF-16 column), clamped to the line and the text (as editors and the
/// eval's queries count columns).
pub(super) fn byte_offset(text: &str, line: u32, character: u32) -> usize {
    crate::text::offset_at(
        text,
        crate::text::Position { line, character },
        crate::text::PositionEncoding::Utf16,
    )
}

/// The nearest ancestor holding a project manifest or `.git`, else the file's folder.
pub(super) fn find_root(file: &Path) -> PathBuf {
    let markers = ["Cargo.toml", "pyproject.toml", "setup.py", ".git", ".pith"];
    let mut dir = file.parent();
    while let Some(current) = dir {
        if markers.iter().any(|m| current.join(m).exists()) {
            return current.to_path_buf();
        }
        dir = current.parent();
    }
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}
