//! Criterion benches of the index: a one-character edit + incremental reparse + re-analyze in
//! a 2,000-line file, and fuzzy symbol search over the CPython standard library.
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

fn p95(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 95 / 100).min(samples.len() - 1)]
}

fn edit_and_reanalyze(c: &mut Criterion) {
    let text = two_thousand_lines();
    let lines = text.lines().count();
    let path = Path::new("/bench/model.py");
    let mut document = Document::new(&text, Some(Lang::Python));
    let middle = Position {
        line: (lines / 2) as u32,
        character: 8,
    };
    let mut insert = true;
    let mut step = |document: &mut Document| {
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
        document
            .apply_changes(&[change], PositionEncoding::Utf16)
            .expect("valid edit");
        let text = document.text();
        let tree = document.tree().expect("python tree");
        lang::analyze(path, Lang::Python, &text, tree)
    };
    let samples: Vec<Duration> = (0..400)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(step(&mut document));
            started.elapsed()
        })
        .collect();
    eprintln!(
        "edit + reparse + analyze, {lines} lines: p95 {:?}",
        p95(samples)
    );
    c.bench_function("edit_reparse_analyze_2000_lines", |b| {
        b.iter(|| std::hint::black_box(step(&mut document)))
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
