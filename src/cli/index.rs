//! `pith index`, `pith symbols` and `pith bench index`.
#![allow(clippy::print_stdout)] // the CLI's output is its stdout

use anyhow::Context;

use super::{IndexArgs, SymbolsArgs};
use crate::lang::{self, Lang};

pub fn index(_args: &IndexArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
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

pub fn bench(_root: &std::path::Path) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
