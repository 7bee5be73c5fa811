//! `pith context`: what the model would see at a position, or a batch of eval queries.
pub fn run(_args: &super::ContextArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
