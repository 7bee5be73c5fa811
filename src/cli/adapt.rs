//! Adaptation commands: `pith init`, `prompt`, `memory …`, `dataset export`.
use super::*;
pub fn init(_args: &InitArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn prompt(_cli: &Cli, _args: &PromptArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn memory(_command: &MemoryCommand) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
pub fn dataset(_command: &DatasetCommand) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
