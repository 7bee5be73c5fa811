//! `pith serve`: the language server over stdio.
pub fn run(_cli: &super::Cli, _args: &super::ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
