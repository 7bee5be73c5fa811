//! `pith serve`: the language server over stdio, on a multi-threaded tokio runtime.
pub fn run(_cli: &super::Cli, _args: &super::ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let shut_down_first = runtime.block_on(crate::server::serve_stdio());
    // Blocking tasks (a scan, a slow parse) must not keep the process alive after `exit`.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    if !shut_down_first {
        anyhow::bail!("exit without a shutdown request (or the client went away)");
    }
    Ok(())
}
