//! Questions about the whole workspace (`pith ask`, `pith.ask`): pick the definitions the
//! question is about by lexical match (BM25 over each symbol's name parts, qualified name,
//! doc and file path), show them to the model with `path:line` headers, ask for an answer that
//! cites them, and check every citation of the answer against the index afterwards.
//!
//! Lexical matching rather than embeddings: it needs no second model, costs a few ms over tens
//! of thousands of symbols, and questions about code name the things they are about.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Result, TemplateParts, chat_prompt, fence_lang, relative_path};
use crate::config::Config;
use crate::engine::{Engine, Prompt, Request, RequestStats, Slot};
use crate::index::{FileIndex, SymbolKind, SymbolRef, WorkspaceIndex};
use crate::memory::Memory;
use crate::prompt::Task;
use crate::retrieve::Snippet;
use crate::terms::terms;

/// Knobs of `ask`.
#[derive(Debug, Clone, PartialEq)]
pub struct AskSettings {
    /// Context budget in tokens (code excerpts and memories).
    pub context_tokens: usize,
    /// How many of the best matches are shown with their whole code (the rest: signatures).
    pub full_bodies: usize,
    pub max_tokens: u32,
}

impl Default for AskSettings {
    fn default() -> Self {
        Self {
            context_tokens: 1400,
            full_bodies: 3,
            max_tokens: 384,
        }
    }
}

const SYSTEM: &str = "You answer questions about this codebase from excerpts of it. Answer \
briefly and concretely. Cite the code you rely on as path:line (for example \
src/app.py:42), using the paths and line numbers shown in the excerpts. Write the name of each \
function, class or variable in backticks, exactly as the excerpts define it. If the excerpts do \
not answer the question, say so.";

/// A `path:line` reference found in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    /// As written in the answer.
    pub text: String,
    /// The indexed file it names, when there is one.
    pub file: Option<PathBuf>,
    /// 1-based.
    pub line: u32,
    /// The file exists in the index and has that line.
    pub valid: bool,
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub citations: Vec<Citation>,
    /// The excerpts shown to the model, as `path:line` of each definition.
    pub sources: Vec<String>,
    pub stats: RequestStats,
}

/// One excerpt picked for the prompt.
#[derive(Debug, Clone)]
pub struct Excerpt {
    pub symbol: SymbolRef,
    pub score: f32,
}

/// `tests/…`, `test_*.py`, `*_test.py`, `*_tests.rs`, `conftest.py`.
fn is_test_file(path: &Path) -> bool {
    let stem = path
        .file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned());
    path.components()
        .any(|c| matches!(c.as_os_str().to_str(), Some("tests" | "test")))
        || stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || stem == "conftest"
}

/// One searchable symbol: its file, its index there, weighted term counts, total weight.
type Document = (Arc<FileIndex>, usize, HashMap<String, f32>, f32);

/// The definitions that best match `question`, best first.
pub fn search(index: &WorkspaceIndex, question: &str, limit: usize) -> Vec<Excerpt> {
    let query: Vec<String> = {
        let mut q = terms(question);
        q.sort();
        q.dedup();
        q
    };
    if query.is_empty() {
        return Vec::new();
    }
    let asks_about_tests = query.iter().any(|term| term.starts_with("test"));
    let files = index.files();
    // Documents: one per symbol, as term → weighted count.
    let mut documents: Vec<Document> = Vec::new();
    let mut document_frequency: HashMap<&str, usize> = HashMap::new();
    for file in &files {
        let path_terms = terms(&relative_path(index, &file.path));
        for (i, symbol) in file.symbols.iter().enumerate() {
            let mut counts: HashMap<String, f32> = HashMap::new();
            let mut add = |terms: Vec<String>, weight: f32| {
                for term in terms {
                    *counts.entry(term).or_default() += weight;
                }
            };
            add(terms(&symbol.name), 3.0);
            add(terms(&symbol.qualified_name), 1.0);
            add(terms(&symbol.signature), 0.5);
            if let Some(doc) = &symbol.doc {
                add(terms(doc), 1.0);
            }
            add(path_terms.clone(), 0.5);
            let length: f32 = counts.values().sum();
            documents.push((file.clone(), i, counts, length));
        }
    }
    for (_, _, counts, _) in &documents {
        for term in &query {
            if counts.contains_key(term) {
                *document_frequency.entry(term.as_str()).or_default() += 1;
            }
        }
    }
    let total = documents.len() as f32;
    let average_length = documents.iter().map(|d| d.3).sum::<f32>() / total.max(1.0);
    let (k1, b) = (1.2_f32, 0.75_f32);
    let mut scored: Vec<Excerpt> = documents
        .into_iter()
        .filter_map(|(file, i, counts, length)| {
            let mut score = 0.0;
            let mut matched = 0;
            for term in &query {
                let Some(&tf) = counts.get(term) else {
                    continue;
                };
                matched += 1;
                let df = document_frequency.get(term.as_str()).copied().unwrap_or(0) as f32;
                let idf = ((total - df + 0.5) / (df + 0.5) + 1.0).ln();
                score +=
                    idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * length / average_length));
            }
            // Coordination: a definition that matches more of the question's terms beats one
            // that matches a single rare one (a verb of the question that names a function).
            score *= matched as f32 / query.len() as f32;
            let kind = file.symbols[i].kind;
            // Impl blocks repeat their type; a module symbol spans a whole file; a field or a
            // constant is a name and a line, too short a document to be what a question is
            // about, yet BM25 favours short documents.
            if matches!(kind, SymbolKind::Impl | SymbolKind::Module) {
                score *= 0.5;
            }
            // Tests name what they test, so they match a question's words as well as the code
            // does, and a small model then answers from their fixtures.
            if !asks_about_tests && is_test_file(&file.path) {
                score *= 0.5;
            }
            (score > 0.0).then_some(Excerpt {
                symbol: SymbolRef { file, index: i },
                score,
            })
        })
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.symbol.file.path.cmp(&b.symbol.file.path))
            .then_with(|| a.symbol.index.cmp(&b.symbol.index))
    });
    // A symbol nested in an already chosen one adds nothing.
    let mut chosen: Vec<Excerpt> = Vec::new();
    for candidate in scored {
        let span = candidate.symbol.symbol().span;
        let covered = chosen.iter().any(|c| {
            let outer = c.symbol.symbol().span;
            c.symbol.file.path == candidate.symbol.file.path
                && outer.start_byte <= span.start_byte
                && span.end_byte <= outer.end_byte
                && c.symbol.symbol().kind != SymbolKind::Module
        });
        if !covered {
            chosen.push(candidate);
        }
        if chosen.len() >= limit {
            break;
        }
    }
    chosen
}

/// Renders excerpts (and memories) into at most `budget` tokens: the first `full_bodies` with
/// their code, the others as signatures. Returns the text and the `path:line` of each excerpt.
pub fn render_context(
    index: &WorkspaceIndex,
    excerpts: &[Excerpt],
    memories: &[Memory],
    settings: &AskSettings,
    count_tokens: &dyn Fn(&str) -> usize,
) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut sources = Vec::new();
    let mut used = 0;
    for (rank, excerpt) in excerpts.iter().enumerate() {
        let symbol = excerpt.symbol.symbol();
        let path = relative_path(index, &excerpt.symbol.file.path);
        let line = symbol.span.start_line + 1;
        let body = if rank < settings.full_bodies {
            let code = super::explain::symbol_text(&excerpt.symbol);
            let max = (settings.context_tokens / 3).max(64);
            super::head_lines(code, max, count_tokens)
        } else {
            let mut s = symbol.signature.to_string();
            if let Some(doc) = symbol.doc.as_deref().and_then(|d| d.lines().next()) {
                s.push_str(&format!("\n    # {}", doc.trim()));
            }
            s
        };
        let block = format!(
            "{path}:{line}\n```{}\n{}\n```\n\n",
            fence_lang(&excerpt.symbol.file.path),
            body.trim_end()
        );
        let cost = count_tokens(&block);
        if used + cost > settings.context_tokens {
            continue;
        }
        used += cost;
        out.push_str(&block);
        sources.push(format!("{path}:{line}"));
    }
    for memory in memories {
        let block = format!(
            "Earlier question: {}\nEarlier answer: {}\n\n",
            memory.question.trim(),
            memory.answer.trim()
        );
        let cost = count_tokens(&block);
        if used + cost > settings.context_tokens {
            break;
        }
        used += cost;
        out.push_str(&block);
    }
    (out, sources)
}

/// A question and what goes with it.
#[derive(Debug, Clone, Default)]
pub struct AskRequest<'a> {
    pub question: &'a str,
    /// Earlier exchanges recalled from session memory, most relevant first.
    pub memories: &'a [Memory],
    pub settings: AskSettings,
}

/// The prompt for a question, and the `path:line` of each excerpt in it.
pub fn ask_prompt(
    config: &Config,
    index: &WorkspaceIndex,
    request: &AskRequest<'_>,
    count_tokens: &dyn Fn(&str) -> usize,
) -> (Prompt, Vec<String>) {
    let question = request.question;
    let excerpts = search(index, question, 12);
    let (context, sources) = render_context(
        index,
        &excerpts,
        request.memories,
        &request.settings,
        count_tokens,
    );
    let snippets: Vec<Snippet> = excerpts
        .iter()
        .map(|excerpt| {
            let symbol = excerpt.symbol.symbol();
            Snippet {
                path: excerpt.symbol.file.path.clone(),
                start_line: symbol.span.start_line,
                end_line: symbol.span.end_line + 1,
                text: super::explain::symbol_text(&excerpt.symbol).to_string(),
                score: excerpt.score,
                reason: "ask".into(),
            }
        })
        .collect();
    let anchor = excerpts
        .first()
        .map(|e| e.symbol.file.path.clone())
        .unwrap_or_default();
    let parts = TemplateParts {
        task: Task::Ask,
        path: &anchor,
        text: "",
        cursor: 0,
        selection: None,
        symbol: None,
        question: Some(question),
        diagnostics: &[],
        snippets: &snippets,
        memories: request.memories,
    };
    let default_user = || {
        if context.is_empty() {
            format!("No code in the workspace matched the question.\n\nQuestion: {question}")
        } else {
            // Short: a small model tends to repeat a longer instruction instead of answering.
            let example = sources.first().map_or("path:line", String::as_str);
            format!(
                "Code excerpts:\n\n{context}Question: {question}\n(Cite path:line, like {example}.)"
            )
        }
    };
    let prompt = match chat_prompt(config, index, parts, default_user, count_tokens) {
        // The built-in system prompt says how to cite; a user system prompt is kept and the
        // citation rule added to it.
        Prompt::Chat(mut messages) if !super::custom_template(config, None, Task::Ask) => {
            if let Some(system) = messages.first_mut() {
                system.content = format!("{}\n\n{SYSTEM}", system.content);
            }
            Prompt::Chat(messages)
        }
        other => other,
    };
    (prompt, sources)
}

/// Answers a question, handing each piece of the answer to `on_text` as it is generated.
pub async fn ask(
    engine: &dyn Engine,
    config: &Config,
    index: &WorkspaceIndex,
    request: &AskRequest<'_>,
    cancel: CancellationToken,
    on_text: impl FnMut(&str),
) -> Result<Answer> {
    let count_tokens = |text: &str| engine.count_tokens(text);
    let (prompt, sources) = ask_prompt(config, index, request, &count_tokens);
    let guide = super::guide::answer_guide(&prompt);
    let engine_request = Request {
        cancel,
        guide: Some(guide),
        ..Request::new(prompt, request.settings.max_tokens, Slot::Chat)
    };
    let generated = super::generate(engine, engine_request, on_text).await?;
    let text = generated.text.trim().to_string();
    Ok(Answer {
        citations: check_citations(index, &text),
        text,
        sources,
        stats: generated.stats,
    })
}

/// Every `path:line` in `answer`, checked against the index.
pub fn check_citations(index: &WorkspaceIndex, answer: &str) -> Vec<Citation> {
    let files = index.files();
    let bytes = answer.as_bytes();
    let mut citations = Vec::new();
    let is_path_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-');
    for (colon, _) in answer.match_indices(':') {
        let digits = bytes[colon + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            continue;
        }
        let start = bytes[..colon]
            .iter()
            .rposition(|&b| !is_path_byte(b))
            .map_or(0, |i| i + 1);
        let path = answer[start..colon].trim_start_matches("./");
        if !path.contains('.') || path.ends_with('.') {
            continue;
        }
        let Ok(line) = answer[colon + 1..colon + 1 + digits].parse::<u32>() else {
            continue;
        };
        let matches: Vec<&Arc<FileIndex>> = files
            .iter()
            .filter(|f| {
                let relative = relative_path(index, &f.path);
                relative == path || relative.ends_with(&format!("/{path}"))
            })
            .collect();
        let file = (matches.len() == 1).then(|| matches[0]);
        let valid = file.is_some_and(|f| line >= 1 && (line as usize) <= f.text.lines().count());
        citations.push(Citation {
            text: answer[start..colon + 1 + digits].to_string(),
            file: file.map(|f| f.path.clone()),
            line,
            valid,
        });
    }
    citations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &[(&str, String)], question: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        let index = WorkspaceIndex::new(vec![dir.path().to_path_buf()], Default::default());
        index.scan(&|_, _| {}, &std::sync::atomic::AtomicBool::new(false));
        search(&index, question, 3)
            .iter()
            .map(|e| e.symbol.symbol().name.to_string())
            .collect()
    }

    #[test]
    fn a_definition_matching_more_of_the_question_beats_one_rare_word() {
        // `choose`, a verb of the question, is its rarest term and a whole function name:
        // alone it used to outrank the function that matches the rest of the question.
        let files = [
            (
                "sampler.py",
                "def choose(logits):\n    return max(logits)\n".to_string(),
            ),
            (
                "retrieval.py",
                "def gather(cursor, budget, index, recent):\n    \"\"\"Ranked snippets of the \
                 context for a completion at the cursor, within the budget.\"\"\"\n    \
                 return []\n"
                    .to_string(),
            ),
            (
                "parts.py",
                "def context_0():\n    \"\"\"The context of part 0.\"\"\"\n\n\
                 def completion_0():\n    \"\"\"The completion of part 0.\"\"\"\n"
                    .to_string(),
            ),
        ];
        let found = names(&files, "How does pith choose the context for a completion?");
        assert_eq!(
            found.first().map(String::as_str),
            Some("gather"),
            "{found:?}"
        );
    }
}
