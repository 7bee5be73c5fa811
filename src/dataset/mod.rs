//! Fine-tuning data: Alpaca-format (`instruction`, `input`, `output`) JSON Lines drawn from the
//! codebase and the session memory, secrets scrubbed, for `pith tune`.
//!
//! Pairs: "Write a <language> function that <docstring>" → the function; "Write the docstring
//! for …" → the docstring; "Explain …" → explanations the user accepted (from memory); and the
//! user's own `ask` questions → answers. Stale memories (their code changed) are left out. Pairs
//! are deduplicated on (instruction, input), bounded in length, and split into train and
//! validation by a hash of the instruction, so the split is the same on every run. Files come
//! from the index, whose scan honours `.gitignore` and `.pith/ignore`: nothing else is read.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::IndexConfig;
use crate::index::{FileIndex, SymbolKind};
use crate::lang::Lang;
use crate::memory::{Memory, MemoryKind};
use crate::scrub::{self, Finding};

/// One Alpaca record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub instruction: String,
    pub input: String,
    pub output: String,
}

#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// Records longer than this (instruction + input + output, in bytes) are left out.
    pub max_chars: usize,
    /// Share of records (by instruction hash) that go to validation, in percent.
    pub validation_percent: u8,
    /// Docstrings shorter than this (in bytes) make no useful instruction.
    pub min_doc_chars: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            max_chars: 6000,
            validation_percent: 10,
            min_doc_chars: 12,
        }
    }
}

/// What an export produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub functions: usize,
    pub docstrings: usize,
    pub explanations: usize,
    pub asks: usize,
    pub duplicates: usize,
    pub too_long: usize,
    pub train: usize,
    pub validation: usize,
    /// Where secrets were redacted (file, line, rule; never the secret).
    pub redactions: Vec<Finding>,
}

/// Builds the records of `files` (sorted by path for determinism) and `memories`, scrubbed,
/// before deduplication and splitting.
pub fn collect(
    root: &Path,
    files: &[Arc<FileIndex>],
    memories: &[Memory],
    options: &ExportOptions,
    summary: &mut Summary,
) -> Vec<Record> {
    let mut files: Vec<&Arc<FileIndex>> = files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut records = Vec::new();
    for file in files {
        let relative = file.path.strip_prefix(root).unwrap_or(&file.path);
        let relative = relative.to_string_lossy().replace('\\', "/");
        let language = match file.lang {
            Lang::Python => "Python",
            Lang::Rust => "Rust",
        };
        for symbol in &file.symbols {
            if !matches!(symbol.kind, SymbolKind::Function | SymbolKind::Method) {
                continue;
            }
            let Some(doc) = symbol.doc.as_deref().map(str::trim) else {
                continue;
            };
            if doc.len() < options.min_doc_chars {
                continue;
            }
            let Some(code) = file.text.get(symbol.span.start_byte..symbol.span.end_byte) else {
                continue;
            };
            let scrub = |text: &str, summary: &mut Summary| {
                let (clean, findings) = scrub::scrub_text(text);
                summary
                    .redactions
                    .extend(findings.into_iter().map(|finding| Finding {
                        file: Some(relative.clone()),
                        line: symbol.span.start_line as usize + finding.line,
                        ..finding
                    }));
                clean
            };
            let code = scrub(code, summary);
            let doc = scrub(doc, &mut Summary::default());
            let summary_line = doc.split("\n\n").next().unwrap_or(&doc).trim();
            summary.functions += 1;
            records.push(Record {
                instruction: format!(
                    "Write a {language} function that does the following: {summary_line}"
                ),
                input: symbol.signature.to_string(),
                output: code.clone(),
            });
            summary.docstrings += 1;
            records.push(Record {
                instruction: format!(
                    "Write the docstring for the {language} function `{}`.",
                    symbol.name
                ),
                input: without_docstring(&code, &file.lang),
                output: doc.to_string(),
            });
        }
    }
    for memory in memories.iter().filter(|m| !m.stale) {
        let (question, q_findings) = scrub::scrub_text(&memory.question);
        let (answer, a_findings) = scrub::scrub_text(&memory.answer);
        summary
            .redactions
            .extend(q_findings.into_iter().chain(a_findings).map(|f| Finding {
                file: Some(format!("memory #{}", memory.id)),
                ..f
            }));
        match memory.kind {
            MemoryKind::Explanation => {
                summary.explanations += 1;
                let instruction = match memory.symbols.first() {
                    Some(symbol) => format!("Explain what `{symbol}` does."),
                    None => "Explain this code.".to_string(),
                };
                records.push(Record {
                    instruction,
                    input: question,
                    output: answer,
                });
            }
            MemoryKind::Ask => {
                summary.asks += 1;
                records.push(Record {
                    instruction: question,
                    input: String::new(),
                    output: answer,
                });
            }
            MemoryKind::CodeAction | MemoryKind::Completion => {}
        }
    }
    records
}

/// The function's code without its Python docstring (Rust doc comments lie outside the span).
fn without_docstring(code: &str, lang: &Lang) -> String {
    if *lang != Lang::Python {
        return code.to_string();
    }
    let Some(header_end) = code.find(":\n").map(|i| i + 2) else {
        return code.to_string();
    };
    let body = &code[header_end..];
    let trimmed = body.trim_start();
    for quote in ["\"\"\"", "'''", "\"", "'"] {
        let prefixes = ["", "r", "u", "R", "U"];
        for prefix in prefixes {
            let opener = format!("{prefix}{quote}");
            if let Some(rest) = trimmed.strip_prefix(&opener)
                && let Some(close) = rest.find(quote)
            {
                let after = &rest[close + quote.len()..];
                let after = after.strip_prefix('\n').unwrap_or(after);
                return format!("{}{}", &code[..header_end], after);
            }
        }
    }
    code.to_string()
}

/// Indexes the workspace at `root` with the index's scan, which honours `.gitignore`,
/// `.pith/ignore` and `index.exclude` while walking: an excluded file is never opened.
pub fn index_workspace(root: &Path, index: &IndexConfig) -> Vec<Arc<FileIndex>> {
    let workspace =
        crate::index::WorkspaceIndex::new(vec![root.to_path_buf()], index.index_options());
    let summary = workspace.scan(&|_, _| {}, &std::sync::atomic::AtomicBool::new(false));
    tracing::debug!(
        "dataset scan: {} files, skipped {:?}",
        summary.files,
        summary.skipped
    );
    workspace.files()
}

/// Deduplicates, drops over-long records, and splits by instruction hash.
pub fn split(
    records: Vec<Record>,
    options: &ExportOptions,
    summary: &mut Summary,
) -> (Vec<Record>, Vec<Record>) {
    let mut seen = HashSet::new();
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for record in records {
        if record.output.trim().is_empty() || record.instruction.trim().is_empty() {
            continue;
        }
        if record.instruction.len() + record.input.len() + record.output.len() > options.max_chars {
            summary.too_long += 1;
            continue;
        }
        if !seen.insert((record.instruction.clone(), record.input.clone())) {
            summary.duplicates += 1;
            continue;
        }
        let digest = Sha256::digest(record.instruction.as_bytes());
        let bucket = u16::from_be_bytes([digest[0], digest[1]]) % 100;
        if bucket < u16::from(options.validation_percent) {
            validation.push(record);
        } else {
            train.push(record);
        }
    }
    summary.train = train.len();
    summary.validation = validation.len();
    (train, validation)
}

/// Writes `train.jsonl`, `validation.jsonl` and `summary.json` into `out`.
pub fn export(
    root: &Path,
    files: &[Arc<FileIndex>],
    memories: &[Memory],
    out: &Path,
    options: &ExportOptions,
) -> anyhow::Result<Summary> {
    use anyhow::Context;
    let mut summary = Summary::default();
    let records = collect(root, files, memories, options, &mut summary);
    let (train, validation) = split(records, options, &mut summary);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, records) in [("train.jsonl", &train), ("validation.jsonl", &validation)] {
        let path: PathBuf = out.join(name);
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = std::io::BufWriter::new(file);
        for record in records {
            serde_json::to_writer(&mut writer, record)?;
            writer.write_all(b"\n")?;
        }
        writer
            .flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let summary_path = out.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Span, Symbol};

    fn function(text: &str, name: &str, doc: Option<&str>) -> Symbol {
        let start = text.find(&format!("def {name}")).unwrap();
        let end = text[start..]
            .find("\n\n")
            .map_or(text.len(), |i| start + i + 1);
        Symbol {
            name: name.into(),
            kind: SymbolKind::Function,
            container: None,
            qualified_name: name.into(),
            span: Span {
                start_byte: start,
                end_byte: end,
                start_line: text[..start].matches('\n').count() as u32,
                ..Span::default()
            },
            name_span: Span::default(),
            signature: text[start..].lines().next().unwrap().into(),
            doc: doc.map(Into::into),
            parent: None,
        }
    }

    fn file(path: &str, text: &str, symbols: &[(&str, Option<&str>)]) -> Arc<FileIndex> {
        Arc::new(FileIndex {
            path: PathBuf::from("/r").join(path),
            lang: Lang::Python,
            text: text.into(),
            content_hash: 0,
            symbols: symbols
                .iter()
                .map(|(name, doc)| function(text, name, *doc))
                .collect(),
            imports: vec![],
            references: vec![],
            parse_errors: 0,
        })
    }

    #[test]
    fn records_from_functions_and_memories() {
        let token = format!("{}_{}", "ghp", "aB3dE5fG7hJ9kL2mN4pQ6rS8tU0vW1xYzzzz");
        let text = format!(
            "import os\n\ndef slugify(title):\n    \"\"\"Turn a title into a URL slug.\"\"\"\n    return title.lower().replace(' ', '-')\n\ndef auth():\n    \"\"\"Return the auth header.\"\"\"\n    return {{'Authorization': '{token}'}}\n\ndef short():\n    \"\"\"Hi.\"\"\"\n    pass\n"
        );
        let files = [file(
            "app/util.py",
            &text,
            &[
                ("slugify", Some("Turn a title into a URL slug.")),
                ("auth", Some("Return the auth header.")),
                ("short", Some("Hi.")),
            ],
        )];
        let memory = |id, kind, q: &str, a: &str, stale| Memory {
            id,
            kind,
            question: q.into(),
            answer: a.into(),
            files: vec![],
            symbols: vec!["slugify".into()],
            code_hashes: vec![],
            created_at: 0,
            stale,
            score: 0.0,
        };
        let memories = [
            memory(
                1,
                MemoryKind::Ask,
                "Where are slugs made?",
                "In app/util.py:3.",
                false,
            ),
            memory(
                2,
                MemoryKind::Explanation,
                "def slugify(title): ...",
                "It lowercases.",
                false,
            ),
            memory(3, MemoryKind::Explanation, "old code", "Outdated.", true),
            memory(
                4,
                MemoryKind::Ask,
                "Where are slugs made?",
                "In app/util.py:3.",
                false,
            ),
        ];
        let options = ExportOptions::default();
        let mut summary = Summary::default();
        let records = collect(Path::new("/r"), &files, &memories, &options, &mut summary);
        let (train, validation) = split(records, &options, &mut summary);
        let all: Vec<_> = train.iter().chain(&validation).collect();
        expect_test::expect![[r#"
            [
              {
                "instruction": "Write a Python function that does the following: Turn a title into a URL slug.",
                "input": "def slugify(title):",
                "output": "def slugify(title):\n    \"\"\"Turn a title into a URL slug.\"\"\"\n    return title.lower().replace(' ', '-')\n"
              },
              {
                "instruction": "Write the docstring for the Python function `slugify`.",
                "input": "def slugify(title):\n    return title.lower().replace(' ', '-')\n",
                "output": "Turn a title into a URL slug."
              },
              {
                "instruction": "Write a Python function that does the following: Return the auth header.",
                "input": "def auth():",
                "output": "def auth():\n    \"\"\"Return the auth header.\"\"\"\n    return {'Authorization': '<REDACTED:github_token>'}\n"
              },
              {
                "instruction": "Write the docstring for the Python function `auth`.",
                "input": "def auth():\n    return {'Authorization': '<REDACTED:github_token>'}\n",
                "output": "Return the auth header."
              },
              {
                "instruction": "Where are slugs made?",
                "input": "",
                "output": "In app/util.py:3."
              },
              {
                "instruction": "Explain what `slugify` does.",
                "input": "def slugify(title): ...",
                "output": "It lowercases."
              }
            ]"#]]
        .assert_eq(&serde_json::to_string_pretty(&all).unwrap());
        assert_eq!(summary.duplicates, 1);
        assert_eq!(summary.explanations, 1, "stale memory left out");
        assert_eq!(
            summary.redactions,
            vec![Finding {
                file: Some("app/util.py".into()),
                line: 9,
                rule: "github_token"
            }]
        );
        assert_eq!(summary.train + summary.validation, 6);
    }

    #[test]
    fn split_is_deterministic_and_bounded() {
        let records: Vec<Record> = (0..400)
            .map(|i| Record {
                instruction: format!("task {i}"),
                input: String::new(),
                output: if i == 7 {
                    "x".repeat(10_000)
                } else {
                    "ok".into()
                },
            })
            .collect();
        let options = ExportOptions::default();
        let mut a = Summary::default();
        let (train, validation) = split(records.clone(), &options, &mut a);
        let mut b = Summary::default();
        let (train2, validation2) = split(records, &options, &mut b);
        assert_eq!((train.clone(), validation.clone()), (train2, validation2));
        assert_eq!(a.too_long, 1);
        assert_eq!(train.len() + validation.len(), 399);
        assert!((20..60).contains(&validation.len()), "{}", validation.len());
    }
}
