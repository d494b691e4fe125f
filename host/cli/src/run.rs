//! `host run` itself: bind, serve, say so on stdout, stop on a signal.

use anyhow::Context as _;

use crate::args::RunConfig;

/// `host run`: binds the listeners, serves, prints one line once serving
/// (for people, and for scripts that wait for it), and stops gracefully on
/// SIGINT or SIGTERM.
pub(crate) async fn serve(config: RunConfig) -> anyhow::Result<()> {
    let listeners = corral_server::serve::Listeners::bind(config.listen, config.admin_listen).await?;
    let scheme = if config.server.tls.is_some() { "https" } else { "http" };
    let server = corral_server::serve::start(config.server, listeners).await?;
    let (plugins, _) = server.plugins();
    println!(
        "corral: serving {plugins} plugin(s) on {scheme}://{} (admin http://{})",
        server.public_addr(),
        server.admin_addr()
    );
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let signal = async move {
        tokio::select! {
            result = tokio::signal::ctrl_c() => {
                if let Err(error) = result {
                    tracing::error!("waiting for SIGINT failed: {error}");
                }
            }
            _ = terminate.recv() => {}
        }
    };
    server.run_until(signal).await
}
