//! How well `pith ask`'s search ranks the definition a question is about, without a model:
//! reads `qa.py --list` questions (JSON lines with `corpus`, `path`, `line`, `name`,
//! `question`) and prints top-1, top-3 and mean reciprocal rank over the first 20 results.
//!
//! ```sh
//! python3 ../shared/eval/qa.py --set dev --per-corpus 150 --pith x --list > q.jsonl
//! cargo run --release --example ask_rank -- requests=ROOT serde_json=ROOT < q.jsonl
//! ```

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use pith::index::WorkspaceIndex;

fn main() -> anyhow::Result<()> {
    let roots: HashMap<String, PathBuf> = std::env::args()
        .skip(1)
        .map(|arg| {
            let (corpus, root) = arg.split_once('=').context("arguments are CORPUS=ROOT")?;
            Ok((corpus.to_string(), PathBuf::from(root)))
        })
        .collect::<anyhow::Result<_>>()?;
    let config = pith::config::Config::default();
    let mut indexes: HashMap<String, WorkspaceIndex> = HashMap::new();
    let (mut questions, mut top1, mut top3, mut reciprocal) = (0, 0, 0, 0.0);
    for line in std::io::stdin().lock().lines() {
        let q: serde_json::Value = serde_json::from_str(&line?)?;
        let field = |key: &str| q[key].as_str().with_context(|| format!("no {key} in {q}"));
        let corpus = field("corpus")?;
        let root = roots
            .get(corpus)
            .with_context(|| format!("no root given for {corpus}"))?;
        let index = indexes.entry(corpus.to_string()).or_insert_with(|| {
            let index = WorkspaceIndex::new(vec![root.clone()], config.index.index_options());
            index.scan(&|_, _| {}, &AtomicBool::new(false));
            index
        });
        let (path, name) = (root.join(field("path")?), field("name")?);
        let line = q["line"].as_u64().context("no line")? as u32;
        let results = pith::assist::ask::search(index, field("question")?, 20);
        let rank = results.iter().position(|e| {
            let symbol = e.symbol.symbol();
            e.symbol.file.path == path
                && &*symbol.name == name
                && symbol.span.start_line < line + 3
                && symbol.span.end_line + 1 >= line
        });
        questions += 1;
        if let Some(rank) = rank {
            top1 += usize::from(rank == 0);
            top3 += usize::from(rank < 3);
            reciprocal += 1.0 / (rank as f64 + 1.0);
        }
    }
    let n = questions.max(1) as f64;
    println!(
        "questions {questions}  top-1 {:.3}  top-3 {:.3}  MRR {:.3}",
        top1 as f64 / n,
        top3 as f64 / n,
        reciprocal / n
    );
    Ok(())
}
