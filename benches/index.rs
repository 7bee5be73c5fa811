//! Criterion benches of the index: a one-character edit + incremental reparse + re-analyze in
//! a 2,000-line file (an edit that breaks the syntax, and one inside a name), and fuzzy symbol
//! search over the CPython standard library.
//!
//! Besides criterion's means, each bench prints the p95 of plain timed runs, since the targets
//! (edit ≤ 1 ms, search ≤ 10 ms) are about the tail.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pith::index::{IndexOptions, WorkspaceIndex};
use pith::lang::{self, Lang};
use pith::text::{Change, Document, Position, PositionEncoding};

/// A Python file of about 2,000 lines: classes of methods with docstrings.
fn two_thousand_lines() -> String {
    let mut text = String::from("\"\"\"Generated module.\"\"\"\nimport os\n\n");
    for class in 0..50 {
        text.push_str(&format!(
            "class Model{class}(Base):\n    \"\"\"Model {class}.\"\"\"\n\n"
        ));
        for method in 0..4 {
            text.push_str(&format!(
                "    def method_{method}(self, value: int, *, flag=False) -> int:\n        \"\"\"Does {method}.\"\"\"\n        total = value * {method}\n        if flag:\n            total += os.getpid()\n        for item in range(total):\n            self.items.append(item)\n        return helper(total)\n\n"
            ));
        }
    }
    text
}

fn p95(samples: Vec<Duration>) -> Duration {
    percentile(samples, 95)
}

/// The `percent`th percentile (p50 shows what a loaded machine's tail hides).
fn percentile(mut samples: Vec<Duration>, percent: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * percent / 100).min(samples.len() - 1)]
}

/// The edits measured, at column `character` of the middle line `        return helper(total)`:
/// before `return` the typed character makes a syntax error (and deleting it repairs it), so
/// tree-sitter's error recovery is part of each reparse; inside `helper` the file stays valid.
const EDITS: [(&str, u32); 2] = [
    ("edit_reparse_reanalyze_2000_lines", 8),
    ("edit_reparse_reanalyze_2000_lines_in_name", 20),
];

fn edit_and_reanalyze(c: &mut Criterion) {
    for (name, character) in EDITS {
        edit_at(c, name, character);
    }
}

/// Typing and deleting one character at `character` of the middle line: the edit applied to
/// the rope, the incremental reparse, the text handed to analysis, and the re-analysis; what
/// an open buffer costs per keystroke before the index's map update.
fn edit_at(c: &mut Criterion, name: &str, character: u32) {
    let text = two_thousand_lines();
    let lines = text.lines().count();
    let path = Path::new("/bench/model.py");
    let mut document = Document::new(&text, Some(Lang::Python));
    let tree = document.tree().expect("python tree").clone();
    let mut previous = lang::analyze(path, Lang::Python, &text, &tree);
    document.mark_analyzed();
    let middle = Position {
        line: (lines / 2) as u32,
        character,
    };
    let mut insert = true;
    let mut full_analysis = false;
    // Per step: (whole step, reparse alone, analysis alone).
    let mut step = |document: &mut Document, full_analysis: bool| {
        // Alternate typing and deleting one character so the file stays the same size.
        let change = if insert {
            Change {
                range: Some((middle, middle)),
                text: "x".into(),
            }
        } else {
            let after = Position {
                character: middle.character + 1,
                ..middle
            };
            Change {
                range: Some((middle, after)),
                text: String::new(),
            }
        };
        insert = !insert;
        let started = Instant::now();
        document
            .apply_changes(&[change], PositionEncoding::Utf16)
            .expect("valid edit");
        let reparsed = started.elapsed();
        let text = document.text();
        let tree = document.tree().expect("python tree");
        let analysis_started = Instant::now();
        previous = match document.edits_since_analysis() {
            Some((old_tree, edits)) if !full_analysis => {
                lang::reanalyze(&previous, old_tree, edits, &text, tree)
            }
            _ => lang::analyze(path, Lang::Python, &text, tree),
        };
        let analysis = analysis_started.elapsed();
        document.mark_analyzed();
        (started.elapsed(), reparsed, analysis)
    };
    for full in [true, false] {
        full_analysis = full;
        let (mut samples, mut reparse, mut analysis) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..400 {
            let (all, reparsed, analyzed) = step(&mut document, full_analysis);
            samples.push(all);
            reparse.push(reparsed);
            analysis.push(analyzed);
        }
        eprintln!(
            "{name}: edit + reparse + {} analysis, {lines} lines: p50 {:?} p95 {:?} (edit + reparse alone: p50 {:?} p95 {:?}; analysis alone: p50 {:?} p95 {:?})",
            if full { "full" } else { "incremental" },
            percentile(samples.clone(), 50),
            p95(samples),
            percentile(reparse.clone(), 50),
            p95(reparse),
            percentile(analysis.clone(), 50),
            p95(analysis)
        );
    }
    c.bench_function(name, |b| {
        b.iter(|| std::hint::black_box(step(&mut document, full_analysis)))
    });
}

fn stdlib() -> Option<PathBuf> {
    let output = std::process::Command::new("python3")
        .args(["-c", "import sysconfig;print(sysconfig.get_path('stdlib'))"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    path.is_dir().then_some(path)
}

fn search_stdlib(c: &mut Criterion) {
    let Some(root) = stdlib() else {
        eprintln!("python3 not found: skipping the symbol search bench");
        return;
    };
    let options = IndexOptions {
        exclude: vec!["site-packages".into()],
        ..IndexOptions::default()
    };
    let index = WorkspaceIndex::new(vec![root], options);
    let summary = index.scan(&|_, _| {}, &AtomicBool::new(false));
    let queries = [
        "reqhdl", "HTTPConn", "getaddr", "json_dec", "x", "TestCase", "parse_qs",
    ];
    index.search_symbols("warm", 1);
    let samples: Vec<Duration> = (0..200)
        .map(|i| {
            let started = Instant::now();
            std::hint::black_box(index.search_symbols(queries[i % queries.len()], 20));
            started.elapsed()
        })
        .collect();
    eprintln!(
        "search_symbols over {} symbols: p95 {:?}",
        summary.symbols(),
        p95(samples)
    );
    let mut i = 0;
    c.bench_function("search_symbols_stdlib", |b| {
        b.iter(|| {
            i += 1;
            std::hint::black_box(index.search_symbols(queries[i % queries.len()], 20))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = edit_and_reanalyze, search_stdlib
}
criterion_main!(benches);
