//! meshcast's signaling relay.
//!
//! It forwards the JSON signaling messages of [`protocol`] inside a room,
//! stamps the sender, hands out ICE servers with short-lived TURN
//! credentials, and serves the built app, all on one port.
//!
//! Layout:
//! - [`config`]: CLI/env configuration and every limit;
//! - [`rooms`]: the room registry and routing, without sockets;
//! - [`session`]: one connection's read loop, writer and heartbeat;
//! - [`ice`]: STUN/TURN servers and TURN REST credentials;
//! - [`turn`]: the optional embedded TURN server, hardened;
//! - [`metrics`]: counters for `/metrics`;
//! - [`bucket`]: the token bucket behind rate limits and tolerances.
//!
//! [`run`] takes its listener and a shutdown future, so tests run the real
//! relay on `127.0.0.1:0`.

pub mod bucket;
pub mod config;
pub mod ice;
pub mod metrics;
pub mod rooms;
pub mod session;
pub mod turn;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use base64::Engine as _;
use config::Config;
use std::future::{Future, IntoFuture as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// Everything a connection needs, behind cheap clones.
#[derive(Clone, Debug)]
pub struct Relay {
    pub config: Arc<Config>,
    pub registry: rooms::Registry,
    pub metrics: Arc<metrics::Metrics>,
    pub ice: Arc<ice::IceConfig>,
    /// Cancelled when the relay shuts down; every session watches it.
    pub shutdown: CancellationToken,
    sessions: TaskTracker,
    open: Arc<AtomicUsize>,
}

impl Relay {
    pub fn new(config: Config) -> Self {
        Self::with_metrics(config, Arc::default())
    }

    fn with_metrics(config: Config, metrics: Arc<metrics::Metrics>) -> Self {
        let ice = ice::IceConfig {
            stun_urls: config.stun_urls(),
            turn_urls: config.ice.turn_urls.clone(),
            turn_secret: config.ice.turn_secret.clone(),
            turn_ttl: config.ice.turn_ttl,
        };
        Self {
            registry: rooms::Registry::new(config.limits.max_room_peers, metrics.clone()),
            config: Arc::new(config),
            metrics,
            ice: Arc::new(ice),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            open: Arc::default(),
        }
    }

    /// Counts one more open connection, or `None` at the limit.
    fn admit(&self) -> Option<Admitted> {
        let max = self.config.limits.max_connections;
        self.open
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| {
                self.metrics.connections.fetch_add(1, Relaxed);
                self.metrics.connections_total.fetch_add(1, Relaxed);
                Admitted(self.clone())
            })
    }
}

/// One admitted connection; dropping it frees the slot.
struct Admitted(Relay);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
        self.0.metrics.connections.fetch_sub(1, Relaxed);
    }
}

/// The whole HTTP surface: `/ws`, `/healthz`, `/metrics`, and the app.
pub fn app(relay: Relay) -> Router {
    let dist = &relay.config.dist;
    // Hashed assets could be cached forever, but index.html must not be.
    let index = ServeFile::new(dist.join("index.html"));
    let static_files = ServeDir::new(dist)
        .append_index_html_on_directories(true)
        .fallback(index);
    Router::new()
        .route("/ws", get(ws))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback_service(static_files)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(relay)
}

async fn metrics(State(relay): State<Relay>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        relay.metrics.render(),
    )
}

async fn ws(State(relay): State<Relay>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    if !origin_allowed(&headers, &relay.config.allowed_origins) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let max = relay.config.limits.max_message_bytes;
    let upgrade = upgrade
        .max_message_size(max)
        .max_frame_size(max)
        // Per connection, so it is most of an idle peer's memory; a larger
        // message (an SDP offer) grows it as needed.
        .read_buffer_size(1024)
        // Frames collect here until the writer flushes its batch (or this
        // fills); an idle connection's buffer stays small.
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(max * 2 + 16 * 1024);
    let Some(admitted) = relay.admit() else {
        relay.metrics.connections_rejected.fetch_add(1, Relaxed);
        return upgrade.on_upgrade(|mut socket| async move {
            let frame = CloseFrame {
                code: protocol::close::TRY_AGAIN_LATER,
                reason: "relay is full".into(),
            };
            // The peer may already be gone; there is nothing else to tell it.
            let _ = socket.send(Message::Close(Some(frame))).await;
        });
    };
    let tracker = relay.sessions.clone();
    upgrade.on_upgrade(move |socket| {
        tracker.track_future(async move {
            session::run(socket, relay).await;
            drop(admitted);
        })
    })
}

/// Browsers always send Origin: it must be the relay's own origin or an
/// allow-listed one. Non-browser clients send none and are let through.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.split_once("://"), host) {
        (Some(("http" | "https", authority)), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

/// Serves until `shutdown` resolves, then stops accepting, closes every
/// socket with 1001 (without announcing anyone as left) and returns within
/// the configured grace period.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut config = config;
    let metrics = Arc::new(metrics::Metrics::default());
    let turn = start_turn(&mut config, &metrics)
        .await
        .map_err(std::io::Error::other)?;
    let relay = Relay::with_metrics(config, metrics);
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    let stop = relay.shutdown.clone();
    let server = axum::serve(listener, app(relay.clone()))
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .into_future();
    let server = tokio::spawn(server);
    let registry = relay.registry.clone();
    tokio::select! {
        () = shutdown => {}
        () = stop.cancelled() => {}
    }
    // Order matters: departures stop being announced before sockets close.
    registry.begin_shutdown();
    stop.cancel();
    tracing::info!("shutting down");
    let grace = relay.config.limits.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        let served = server.await;
        relay.sessions.close();
        relay.sessions.wait().await;
        served
    })
    .await;
    if let Some(turn) = turn {
        turn.close().await;
    }
    match drained {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(std::io::Error::other(join)),
        Err(_) => {
            tracing::warn!("some connections did not close within {grace:?}");
            Ok(())
        }
    }
}

/// Starts the embedded TURN server if configured, and adds it to the ICE
/// servers handed out (with a random secret when none was given).
async fn start_turn(
    config: &mut Config,
    metrics: &Arc<metrics::Metrics>,
) -> anyhow::Result<Option<turn::EmbeddedTurn>> {
    let Some(listen) = config.turn.listen else {
        return Ok(None);
    };
    let secret = config
        .ice
        .turn_secret
        .get_or_insert_with(|| {
            let mut bytes = [0u8; 32];
            // Start-up only: without OS randomness there is no safe secret.
            getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
            base64::engine::general_purpose::STANDARD.encode(bytes)
        })
        .clone();
    let turn = turn::EmbeddedTurn::start(&config.turn, listen, &secret, metrics.clone())
        .await
        .map_err(|e| anyhow::anyhow!("embedded TURN on {listen}: {e}"))?;
    config.ice.turn_urls.push(turn.url());
    Ok(Some(turn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("origin"));
        }
        h
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed(&headers(None, "relay:3000"), &allowed));
        assert!(origin_allowed(
            &headers(Some("http://relay:3000"), "relay:3000"),
            &allowed
        ));
        assert!(origin_allowed(
            &headers(Some("https://RELAY:3000"), "relay:3000"),
            &allowed
        ));
        assert!(origin_allowed(
            &headers(Some("https://app.example.com"), "relay:3000"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "relay:3000"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("http://relay:3001"), "relay:3000"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("null"), "relay:3000"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("ftp://relay:3000"), "relay:3000"),
            &allowed
        ));
    }
}
