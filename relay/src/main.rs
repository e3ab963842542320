//! The relay binary: configuration, logging, the listener, and signals.

use anyhow::Context as _;
use clap::Parser as _;
use relay::config::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        // Colours only on a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let config = Config::parse();
    if !config.dist.join("index.html").is_file() {
        tracing::warn!(dist = %config.dist.display(), "no index.html there: only /ws, /healthz and /metrics will work (build the app with `trunk build --release`)");
    }
    if config.turn.listen.is_none()
        && config.ice.turn_secret.is_some() == config.ice.turn_urls.is_empty()
    {
        tracing::warn!(
            "TURN needs both --turn-url and --turn-secret; no TURN server will be advertised"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls.source(addr).is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!("meshcast relay on {scheme}://{addr}");
    relay::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            },
            Err(e) => {
                tracing::warn!("no SIGTERM handler: {e}");
                ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// Resolves on Ctrl-C; never, if no handler can be installed (rather than
/// shutting down at once).
async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!("no Ctrl-C handler: {e}");
        std::future::pending::<()>().await;
    }
}
