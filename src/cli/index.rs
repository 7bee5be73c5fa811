//! `pith index`, `pith symbols` and `pith bench index`.
#![allow(clippy::print_stdout)] // the CLI's output is its stdout

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use rayon::prelude::*;

use crate::index::walk::{self, ScanSummary};
use crate::index::{IndexOptions, WorkspaceIndex};

use super::{IndexArgs, SymbolsArgs};
use crate::lang::{self, Lang};

/// Indexes a tree and prints what was found, how long it took and the peak memory.
pub fn index(args: &IndexArgs) -> anyhow::Result<()> {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("."));
    anyhow::ensure!(root.is_dir(), "{}: not a directory", root.display());
    let options = IndexOptions {
        exclude: args.exclude.clone(),
        ..IndexOptions::default()
    };
    let index = WorkspaceIndex::new(vec![root], options);
    let summary = index.scan(&|_, _| {}, &AtomicBool::new(false));
    print_summary(&summary);
    println!("peak RSS:    {}", peak_rss_text());
    Ok(())
}

fn print_summary(summary: &ScanSummary) {
    println!(
        "files:       {} ({:.1} MB)",
        summary.files,
        summary.bytes as f64 / 1e6
    );
    let kinds: Vec<String> = summary
        .symbols_by_kind
        .iter()
        .map(|(kind, count)| format!("{} {count}", kind.name()))
        .collect();
    println!("symbols:     {} ({})", summary.symbols(), kinds.join(", "));
    println!(
        "imports:     {}  references: {}",
        summary.imports, summary.references
    );
    println!(
        "parse errors: {} in {} files",
        summary.parse_errors, summary.files_with_errors
    );
    let skipped: Vec<String> = summary
        .skipped
        .iter()
        .map(|(reason, count)| format!("{} {count}", reason.name()))
        .collect();
    println!(
        "skipped:     {}",
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        }
    );
    println!("wall time:   {:.3} s", summary.elapsed.as_secs_f64());
}

/// Peak resident set size of this process (VmHWM), in kB; None off Linux.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn peak_rss_text() -> String {
    match peak_rss_kb() {
        Some(kb) => format!("{:.1} MB", kb as f64 / 1024.0),
        None => "unknown".to_string(),
    }
}

/// Prints one line per definition, indented by nesting: `line:col kind qualified_name —
/// signature`, then the imports and the parse error count.
pub fn symbols(args: &SymbolsArgs) -> anyhow::Result<()> {
    let path = std::path::absolute(&args.file).unwrap_or_else(|_| args.file.clone());
    let lang = Lang::from_path(&path)
        .with_context(|| format!("{}: not a Python or Rust file", path.display()))?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: not valid UTF-8", path.display()))?;
    let tree = lang::parse(lang, &text, None).context("tree-sitter could not parse the file")?;
    let file = lang::analyze(&path, lang, &text, &tree);
    print!("{}", file.outline());
    Ok(())
}

/// Cold index of `root` against a bare tree-sitter parse of the same files on the same rayon
/// threads; each measured `rounds` times, alternating, best run kept (the first bare run also
/// warms the page cache).
pub fn bench(root: &Path, rounds: usize) -> anyhow::Result<()> {
    anyhow::ensure!(root.is_dir(), "{}: not a directory", root.display());
    let roots = vec![std::fs::canonicalize(root)?];
    let options = IndexOptions::default();
    let (files, _) = walk::collect_files(&roots, &options);
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no Python or Rust files",
        root.display()
    );
    let mut bare = Duration::MAX;
    let mut cold = Duration::MAX;
    let mut bare_cpu = Duration::MAX;
    let mut cold_cpu = Duration::MAX;
    let mut summary = ScanSummary::default();
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let started_cpu = process_cpu_time();
        let parsed: usize = files
            .par_iter()
            .filter_map(|path| {
                let text = walk::read_source(path, options.max_file_bytes).ok()?;
                let lang = Lang::from_path(path)?;
                lang::parse(lang, &text, None).map(|tree| tree.root_node().child_count())
            })
            .count();
        bare = bare.min(started.elapsed());
        bare_cpu = bare_cpu.min(process_cpu_time().saturating_sub(started_cpu));
        std::hint::black_box(parsed);

        let index = WorkspaceIndex::new(roots.clone(), options.clone());
        let started = Instant::now();
        let started_cpu = process_cpu_time();
        summary = index.scan(&|_, _| {}, &AtomicBool::new(false));
        cold = cold.min(started.elapsed());
        cold_cpu = cold_cpu.min(process_cpu_time().saturating_sub(started_cpu));
    }
    let mb = summary.bytes as f64 / 1e6;
    println!(
        "files: {}  symbols: {}  {:.1} MB  threads: {}",
        summary.files,
        summary.symbols(),
        mb,
        rayon::current_num_threads()
    );
    for (name, time) in [("bare parse", bare), ("cold index", cold)] {
        println!(
            "{name}:  {:.3} s  {:.0} files/s  {:.1} MB/s",
            time.as_secs_f64(),
            summary.files as f64 / time.as_secs_f64(),
            mb / time.as_secs_f64()
        );
    }
    println!(
        "ratio (index / parse): {:.2}",
        cold.as_secs_f64() / bare.as_secs_f64()
    );
    // On a loaded machine wall time mostly measures the neighbours; CPU time does not.
    if bare_cpu > Duration::ZERO {
        println!(
            "CPU time: bare parse {:.2} s, cold index {:.2} s, ratio {:.2}",
            bare_cpu.as_secs_f64(),
            cold_cpu.as_secs_f64(),
            cold_cpu.as_secs_f64() / bare_cpu.as_secs_f64()
        );
    }
    println!("peak RSS: {}", peak_rss_text());
    Ok(())
}

/// User + system CPU time of the whole process, all threads (zero off Linux).
fn process_cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesized command name; utime and stime are the 14th and 15th.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    // The kernel reports in USER_HZ, 100 on every Linux port pith runs on.
    Duration::from_millis(ticks * 10)
}
