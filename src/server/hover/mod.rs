//! `textDocument/hover`: the definition under the cursor as the signature in a code block of the
//! file's language, its doc, and where it is defined.
//!
//! A model-written explanation is not part of this reply: it takes seconds. The assist work adds
//! it through `model_explanation`, the one place meant for it.

mod explain;

use tower_lsp_server::ls_types::{self as lsp, Uri};

use super::session::Session;
use super::shared::resolve_at;
use crate::index::SymbolRef;

pub fn hover(session: &Session, uri: &Uri, position: lsp::Position) -> Option<lsp::Hover> {
    let target = resolve_at(session, uri, position)?.into_iter().next()?;
    let mut markdown = render(session, &target);
    if let Some(explanation) = model_explanation(session, &target) {
        markdown.push_str("\n\n---\n\n");
        markdown.push_str(&explanation);
    }
    Some(lsp::Hover {
        contents: lsp::HoverContents::Markup(lsp::MarkupContent {
            kind: lsp::MarkupKind::Markdown,
            value: markdown,
        }),
        range: None,
    })
}

/// The index part of a hover, in Markdown.
pub fn render(session: &Session, target: &SymbolRef) -> String {
    let symbol = target.symbol();
    let file = &target.file;
    let signature = if symbol.signature.is_empty() {
        &*symbol.name
    } else {
        &*symbol.signature
    };
    let mut markdown = format!("```{}\n{}\n```", file.lang.name(), signature);
    if let Some(doc) = symbol
        .doc
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        markdown.push_str("\n\n");
        markdown.push_str(doc);
    }
    let shown_path = session
        .index
        .roots()
        .iter()
        .find_map(|root| file.path.strip_prefix(root).ok())
        .unwrap_or(&file.path)
        .to_string_lossy()
        .replace('\\', "/");
    markdown.push_str(&format!(
        "\n\n*defined in {}:{}*",
        shown_path,
        symbol.span.start_line + 1
    ));
    markdown
}

/// A short explanation of the symbol by the model, appended below the index part. None for now:
/// the assist work fills this in (cached, with a deadline) so that hovers stay instant.
fn model_explanation(session: &Session, target: &SymbolRef) -> Option<String> {
    explain::hover_explanation(session, target)
}
