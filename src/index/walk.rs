//! The workspace scan: find the source files of every root (or only of the roots just added),
//! read, parse and analyze them in parallel (rayon), and insert them into the index.
//!
//! Which files: the `ignore` crate's walk (`.gitignore`, `.ignore`, git excludes, even outside
//! a git repository), hidden files and directories skipped, plus `.pith/ignore` (gitignore
//! syntax, relative to the root), the `IndexOptions::exclude` globs, and the usual bulky
//! directories (`target`, `node_modules`, `venv`, `.venv`, `__pycache__`, `vendor`).
//! Symlinks are not followed: a symlinked file is indexed only if it points inside its root.
//!
//! A file that cannot be indexed (binary: a NUL byte in its first 8 KB; larger than
//! `max_file_bytes`; not UTF-8; unreadable) is logged at debug level and counted in the
//! summary, never fatal. Concurrency with readers is the index's (see `index/mod.rs`): each
//! file becomes visible as soon as it is analyzed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use rayon::prelude::*;

use super::{IndexOptions, SymbolKind, WorkspaceIndex};
use crate::lang::Lang;

/// Directories never indexed, whatever the ignore files say.
pub const SKIPPED_DIRS: &[&str] = &[
    "target",
    "node_modules",
    "venv",
    ".venv",
    "__pycache__",
    "vendor",
];

/// How many bytes are checked for a NUL to call a file binary.
const BINARY_PROBE_BYTES: usize = 8 * 1024;

/// Files are analyzed in batches of this size between progress reports and cancel checks.
const BATCH: usize = 128;

/// Why a file was not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    Binary,
    TooLarge,
    NotUtf8,
    Unreadable,
    /// A symlink pointing outside its root (or to a directory).
    Symlink,
}

impl SkipReason {
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::Binary => "binary",
            SkipReason::TooLarge => "too large",
            SkipReason::NotUtf8 => "not UTF-8",
            SkipReason::Unreadable => "unreadable",
            SkipReason::Symlink => "symlink out of root",
        }
    }
}

/// How far the scan of a root goes when pith chose the root itself (the folder of a file opened
/// without a workspace): a file's folder may be a huge one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanBound {
    /// Folder levels below the root that are walked.
    pub max_depth: usize,
    /// Source files taken at most: the shallowest first.
    pub max_files: usize,
}

impl ScanBound {
    /// Entries (of any kind) looked at per file taken, at most: bounds the walk itself.
    const ENTRIES_PER_FILE: usize = 50;
}

/// What a scan did.
#[derive(Debug, Clone, Default)]
pub struct ScanSummary {
    /// Files indexed.
    pub files: usize,
    /// Bytes of text indexed.
    pub bytes: u64,
    pub symbols_by_kind: BTreeMap<SymbolKind, usize>,
    pub imports: usize,
    pub references: usize,
    /// ERROR/MISSING nodes, summed over all files.
    pub parse_errors: usize,
    /// Files with at least one parse error.
    pub files_with_errors: usize,
    pub skipped: BTreeMap<SkipReason, usize>,
    /// True when `cancel` stopped the scan early.
    pub cancelled: bool,
    /// True when a `ScanBound` left files out.
    pub capped: bool,
    pub elapsed: Duration,
}

impl ScanSummary {
    pub fn symbols(&self) -> usize {
        self.symbols_by_kind.values().sum()
    }
}

/// The source files under `roots` that a scan would look at, and the symlinks it refused.
pub fn collect_files(
    roots: &[PathBuf],
    options: &IndexOptions,
) -> (Vec<PathBuf>, BTreeMap<SkipReason, usize>) {
    let (files, skipped, _) = collect_files_within(roots, options, None);
    (files, skipped)
}

/// Like `collect_files`, within `bound` when there is one (per root); true when the bound left
/// files out.
pub fn collect_files_within(
    roots: &[PathBuf],
    options: &IndexOptions,
    bound: Option<ScanBound>,
) -> (Vec<PathBuf>, BTreeMap<SkipReason, usize>, bool) {
    let mut files = Vec::new();
    let mut skipped = BTreeMap::new();
    let mut capped = false;
    for root in roots {
        let mut found = Vec::new();
        let mut entries = 0usize;
        let mut overrides = OverrideBuilder::new(root);
        let pith_ignore =
            std::fs::read_to_string(root.join(".pith").join("ignore")).unwrap_or_default();
        let patterns = options
            .exclude
            .iter()
            .map(String::as_str)
            .chain(pith_ignore.lines())
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        for pattern in patterns {
            // Overrides whitelist by default; `!` makes a pattern exclude.
            if let Err(error) = overrides.add(&format!("!{pattern}")) {
                tracing::warn!(pattern, %error, "ignoring a bad exclude pattern");
            }
        }
        let mut builder = WalkBuilder::new(root);
        builder
            .hidden(true)
            .follow_links(false)
            .require_git(false)
            .filter_entry(|entry| {
                !(entry.file_type().is_some_and(|kind| kind.is_dir())
                    && entry
                        .file_name()
                        .to_str()
                        .is_some_and(|name| SKIPPED_DIRS.contains(&name)))
            });
        match overrides.build() {
            Ok(overrides) => {
                builder.overrides(overrides);
            }
            Err(error) => tracing::warn!(%error, "exclude patterns ignored"),
        }
        if let Some(bound) = bound {
            builder.max_depth(Some(bound.max_depth));
        }
        for entry in builder.build() {
            entries += 1;
            if let Some(bound) = bound
                && entries > bound.max_files * ScanBound::ENTRIES_PER_FILE
            {
                capped = true;
                break;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::debug!(%error, "walk error");
                    *skipped.entry(SkipReason::Unreadable).or_insert(0) += 1;
                    continue;
                }
            };
            let path = entry.path();
            if Lang::from_path(path).is_none() {
                continue;
            }
            if entry.path_is_symlink() {
                let inside = std::fs::canonicalize(path)
                    .ok()
                    .filter(|target| target.starts_with(root) && target.is_file());
                if inside.is_none() {
                    tracing::debug!(path = %path.display(), "skipped: symlink out of the root");
                    *skipped.entry(SkipReason::Symlink).or_insert(0) += 1;
                    continue;
                }
            } else if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                continue;
            }
            found.push(path.to_path_buf());
        }
        if let Some(bound) = bound
            && found.len() > bound.max_files
        {
            // The shallowest first: a file's neighbours before the depths of its subfolders.
            found.sort_by_cached_key(|path| (path.components().count(), path.clone()));
            found.truncate(bound.max_files);
            capped = true;
        }
        files.extend(found);
    }
    files.sort();
    files.dedup();
    (files, skipped, capped)
}

/// Reads a candidate file as text, or says why it is skipped.
pub fn read_source(path: &Path, max_file_bytes: u64) -> Result<String, SkipReason> {
    let too_large = std::fs::metadata(path)
        .map_err(|_| SkipReason::Unreadable)?
        .len()
        > max_file_bytes;
    if too_large {
        return Err(SkipReason::TooLarge);
    }
    let bytes = std::fs::read(path).map_err(|_| SkipReason::Unreadable)?;
    let probe = &bytes[..bytes.len().min(BINARY_PROBE_BYTES)];
    if memchr::memchr(0, probe).is_some() {
        return Err(SkipReason::Binary);
    }
    String::from_utf8(bytes).map_err(|_| SkipReason::NotUtf8)
}

impl WorkspaceIndex {
    /// Indexes every source file of the roots; `progress(done, total)` is called on this
    /// thread between batches; setting `cancel` stops after the current batch.
    pub fn scan(&self, progress: &dyn Fn(usize, usize), cancel: &AtomicBool) -> ScanSummary {
        self.scan_roots(&self.roots(), progress, cancel)
    }

    /// Like `scan`, over the given roots only (a workspace folder just added), leaving the
    /// files of the others alone. A file whose root is removed while it is scanned is not
    /// kept: it is skipped, or forgotten again at the end if the removal raced with it.
    pub fn scan_roots(
        &self,
        roots: &[PathBuf],
        progress: &dyn Fn(usize, usize),
        cancel: &AtomicBool,
    ) -> ScanSummary {
        self.scan_roots_within(roots, None, progress, cancel)
    }

    /// Like `scan_roots`, within `bound` when there is one (roots pith chose itself).
    pub fn scan_roots_within(
        &self,
        roots: &[PathBuf],
        bound: Option<ScanBound>,
        progress: &dyn Fn(usize, usize),
        cancel: &AtomicBool,
    ) -> ScanSummary {
        let started = Instant::now();
        let (mut files, skipped, capped) = collect_files_within(roots, &self.options, bound);
        // Largest first: the big transient syntax trees come and go while little of the index
        // exists yet, and the memory they free is then reused by the index instead of
        // lingering beside it (about 7 MB of peak RSS on the Python standard library).
        files.sort_by_cached_key(|path| {
            std::cmp::Reverse(std::fs::metadata(path).map_or(0, |meta| meta.len()))
        });
        let mut summary = ScanSummary {
            skipped,
            capped,
            ..ScanSummary::default()
        };
        let total = files.len();
        progress(0, total);
        let mut done = 0;
        for batch in files.chunks(BATCH) {
            if cancel.load(Ordering::Relaxed) {
                summary.cancelled = true;
                break;
            }
            let outcomes: Vec<Result<Option<FileStats>, SkipReason>> =
                batch.par_iter().map(|path| self.scan_one(path)).collect();
            for outcome in outcomes {
                match outcome {
                    Ok(None) => {}
                    Ok(Some(stats)) => {
                        summary.files += 1;
                        summary.bytes += stats.bytes;
                        summary.parse_errors += stats.parse_errors;
                        summary.imports += stats.imports;
                        summary.references += stats.references;
                        summary.files_with_errors += usize::from(stats.parse_errors > 0);
                        for kind in stats.kinds {
                            *summary.symbols_by_kind.entry(kind).or_insert(0) += 1;
                        }
                    }
                    Err(reason) => *summary.skipped.entry(reason).or_insert(0) += 1,
                }
            }
            done += batch.len();
            progress(done, total);
        }
        for root in roots {
            summary.files = summary
                .files
                .saturating_sub(self.forget_outside_roots(root).len());
        }
        summary.elapsed = started.elapsed();
        summary
    }

    fn scan_one(&self, path: &Path) -> Result<Option<FileStats>, SkipReason> {
        if !self.in_roots(path) {
            return Ok(None);
        }
        let text = read_source(path, self.options.max_file_bytes).inspect_err(|reason| {
            tracing::debug!(path = %path.display(), reason = reason.name(), "skipped");
        })?;
        let file = self
            .update_file(path, &text)
            .ok_or(SkipReason::Unreadable)?;
        Ok(Some(FileStats {
            bytes: text.len() as u64,
            parse_errors: file.parse_errors,
            imports: file.imports.len(),
            references: file.references.len(),
            kinds: file.symbols.iter().map(|symbol| symbol.kind).collect(),
        }))
    }
}

struct FileStats {
    bytes: u64,
    parse_errors: usize,
    imports: usize,
    references: usize,
    kinds: Vec<SymbolKind>,
}
