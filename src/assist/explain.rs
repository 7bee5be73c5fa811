//! Hover explanations: what a symbol does *in this codebase*. The prompt holds the symbol's
//! code, where it is used (reference lines in other files, importers of its file) and the
//! signatures of the definitions it uses, so that a small model can say more than the code's
//! own words. Explanations are keyed by [`explanation_key`], a hash of the symbol's own text,
//! so a persistent cache stays valid until the code changes.

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{Result, TemplateParts, chat_prompt, fence_lang, related_definitions, relative_path};
use crate::config::Config;
use crate::engine::{Engine, Priority, Prompt, Request, RequestStats, Slot};
use crate::index::{FileIndex, SymbolRef, WorkspaceIndex};
use crate::prompt::{SymbolInfo, Task};

/// Token budgets of the parts of an explanation prompt.
const CODE_TOKENS: usize = 700;
const USAGE_TOKENS: usize = 250;
const RELATED_TOKENS: usize = 250;
/// Reference lines shown at most.
const MAX_USAGES: usize = 8;

/// A finished explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Markdown.
    pub text: String,
    /// Cache key of the symbol's content ([`explanation_key`]).
    pub key: String,
    pub stats: RequestStats,
}

/// The text of a symbol's definition, as the index holds it.
pub fn symbol_text(target: &SymbolRef) -> &str {
    let span = target.symbol().span;
    target
        .file
        .text
        .get(span.start_byte..span.end_byte)
        .unwrap_or("")
}

/// The cache key of a symbol's explanation: a hash of its qualified name and its code, so
/// that an edit of the symbol (and nothing else) invalidates it.
pub fn explanation_key(target: &SymbolRef) -> String {
    let mut hasher = Sha256::new();
    hasher.update(target.symbol().qualified_name.as_bytes());
    hasher.update([0]);
    hasher.update(symbol_text(target).as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// The innermost symbol of `file` whose definition contains `offset`.
pub fn symbol_at(file: &std::sync::Arc<FileIndex>, offset: usize) -> Option<SymbolRef> {
    file.symbols
        .iter()
        .enumerate()
        .filter(|(_, s)| s.span.start_byte <= offset && offset <= s.span.end_byte)
        .min_by_key(|(_, s)| s.span.end_byte - s.span.start_byte)
        .map(|(index, _)| SymbolRef {
            file: file.clone(),
            index,
        })
}

/// Lines elsewhere in the workspace that use the symbol's name, as `path:line: code`.
pub fn usages(index: &WorkspaceIndex, target: &SymbolRef, limit: usize) -> Vec<String> {
    let symbol = target.symbol();
    let mut out = Vec::new();
    let mut files = index.files();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for file in &files {
        for reference in file.references.iter().filter(|r| *r.name == *symbol.name) {
            let inside_itself = file.path == target.file.path
                && symbol.span.start_byte <= reference.start_byte
                && reference.end_byte() <= symbol.span.end_byte;
            if inside_itself {
                continue;
            }
            let line = file
                .text
                .lines()
                .nth(reference.line as usize)
                .unwrap_or("")
                .trim();
            out.push(format!(
                "{}:{}: {}",
                relative_path(index, &file.path),
                reference.line + 1,
                line
            ));
            if out.len() >= limit {
                return out;
            }
        }
    }
    if out.is_empty() {
        for importer in index.importers(&target.file.path).into_iter().take(limit) {
            out.push(format!(
                "{} imports {}",
                relative_path(index, &importer),
                relative_path(index, &target.file.path)
            ));
        }
    }
    out
}

/// The chat prompt that asks for an explanation of `target`.
pub fn explain_prompt(
    config: &Config,
    index: &WorkspaceIndex,
    target: &SymbolRef,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Prompt {
    let symbol = target.symbol();
    let span = symbol.span;
    let parts = TemplateParts {
        task: Task::Hover,
        path: &target.file.path,
        text: &target.file.text,
        cursor: span.start_byte,
        selection: None,
        symbol: Some(SymbolInfo {
            name: symbol.name.to_string(),
            signature: symbol.signature.to_string(),
            range: span.start_byte..span.end_byte,
        }),
        question: None,
        diagnostics: &[],
        snippets: &[],
        memories: &[],
    };
    chat_prompt(
        config,
        index,
        parts,
        || default_explain_user(index, target, count_tokens),
        count_tokens,
    )
}

fn default_explain_user(
    index: &WorkspaceIndex,
    target: &SymbolRef,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let symbol = target.symbol();
    let path = relative_path(index, &target.file.path);
    let code = super::head_lines(symbol_text(target), CODE_TOKENS, count_tokens);
    let mut user = format!(
        "Explain what `{}` does in this codebase in 2 to 4 sentences: its purpose, what it \
         takes and returns, and how the rest of the code uses it. Do not repeat the code.\n\n\
         Definition ({path}:{}):\n```{}\n{}\n```\n",
        symbol.qualified_name,
        symbol.span.start_line + 1,
        fence_lang(&target.file.path),
        code.trim_end(),
    );
    let usage_lines = usages(index, target, MAX_USAGES);
    let usage_text = super::head_lines(&usage_lines.join("\n"), USAGE_TOKENS, count_tokens);
    if !usage_text.trim().is_empty() {
        user.push_str("\nUsed here:\n");
        user.push_str(usage_text.trim_end());
        user.push('\n');
    }
    let span = symbol.span;
    let related = related_definitions(
        index,
        &code,
        Some((&target.file.path, span.start_byte..span.end_byte)),
        RELATED_TOKENS,
        count_tokens,
    );
    if !related.is_empty() {
        user.push_str("\nDefinitions it uses:\n");
        user.push_str(&related);
    }
    user
}

/// Explains `target`. `priority` is `Interactive` when asked for (`pith.explain`), `Background`
/// for a hover.
pub async fn explain(
    engine: &dyn Engine,
    config: &Config,
    index: &WorkspaceIndex,
    target: &SymbolRef,
    priority: Priority,
    cancel: CancellationToken,
) -> Result<Explanation> {
    let count_tokens = |text: &str| engine.count_tokens(text);
    let prompt = explain_prompt(config, index, target, &count_tokens);
    let request = Request {
        priority,
        cancel,
        guide: Some(super::guide::answer_guide(&prompt)),
        ..Request::new(prompt, 200, Slot::Chat)
    };
    let generated = super::generate(engine, request, |_| {}).await?;
    Ok(Explanation {
        text: generated.text.trim().to_string(),
        key: explanation_key(target),
        stats: generated.stats,
    })
}
