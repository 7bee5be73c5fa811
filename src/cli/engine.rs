//! Model commands: `pith complete`, `chat`, `ask`, `model …`, `bench engine|complete`.
use super::*;
pub fn complete(_cli: &Cli, _args: &CompleteArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn chat(_cli: &Cli, _args: &ChatArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn ask(_cli: &Cli, _args: &AskArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn model(_cli: &Cli, _command: &ModelCommand) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn bench(_cli: &Cli, _command: &BenchCommand) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
