//! `pith index`, `pith symbols` and `pith bench index`.
use super::{IndexArgs, SymbolsArgs};
pub fn index(_args: &IndexArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn symbols(_args: &SymbolsArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn bench(_root: &std::path::Path) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
