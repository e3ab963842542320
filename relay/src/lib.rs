//! meshcast's signaling relay.
//!
//! It forwards the JSON signaling messages of [`protocol`] inside a room,
//! stamps the sender, hands out ICE servers with short-lived TURN
//! credentials, and serves the built app, all on one port.
//!
//! Layout:
//! - [`config`]: CLI/env configuration and every limit;
//! - [`state`]: the shared [`Relay`] state and connection admission;
//! - [`client_ip`]: which client address a connection counts against;
//! - [`rooms`]: the room registry and routing, without sockets;
//! - [`session`]: one connection's read loop, writer, heartbeat and close;
//! - [`ids`]: peer ids;
//! - [`ice`]: STUN/TURN servers and TURN REST credentials;
//! - [`turn`]: the optional embedded TURN server, hardened;
//! - [`metrics`]: counters for `/metrics`;
//! - [`bucket`]: the token bucket behind rate limits and tolerances.
//!
//! This file holds the HTTP surface ([`app`]), the origin check and [`run`],
//! which takes its listener and a shutdown future, so tests run the real
//! relay on `127.0.0.1:0`.

pub mod bucket;
pub mod client_ip;
pub mod config;
pub mod ice;
pub mod ids;
pub mod janus;
pub mod metrics;
pub mod rooms;
pub mod session;
pub mod sfu;
pub mod state;
pub mod tls;
pub mod turn;

pub use state::{Admitted, Refused, Relay};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use axum::{Extension, Router};
use base64::Engine as _;
use config::Config;
use std::future::{Future, IntoFuture as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::services::{ServeDir, ServeFile};

/// The whole HTTP surface: `/ws`, `/healthz`, `/metrics`, and the app.
pub fn app(relay: Relay) -> Router {
    let dist = &relay.config.dist;
    // A release build ships each asset precompressed as well (NAME.br,
    // NAME.gz: scripts/precompress.sh); the one the browser accepts is
    // served, anything else is compressed on the fly.
    let index = ServeFile::new(dist.join("index.html"))
        .precompressed_br()
        .precompressed_gzip();
    let static_files = ServeDir::new(dist)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true)
        .fallback(index);
    Router::new()
        .route("/ws", get(ws))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/ice-servers", get(ice_servers))
        .fallback_service(static_files)
        .layer(axum::middleware::from_fn(cache_control))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(relay)
}

/// Hashed assets (their names change with their content) are cached for a
/// year and never revalidated; everything else, `index.html` first, is
/// revalidated on every load, so a new release is picked up at once. (A
/// hashed name that is not there gets `index.html`: not cached either.)
async fn cache_control(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let hashed = is_hashed_asset(req.uri().path());
    let mut res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    // A 304 refreshes the stored headers: it keeps `immutable` too.
    let found = res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED;
    let value = if hashed && !html && found {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let upgrade = res.status() == StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(value));
    if !upgrade {
        // The body depends on Accept-Encoding (precompressed or not).
        headers
            .entry(header::VARY)
            .or_insert(HeaderValue::from_static("accept-encoding"));
    }
    res
}

/// A file name as Trunk hashes them: `NAME-<16 hex digits>` then `.EXT` or
/// `_bg.wasm` (e.g. `frontend-7de975aac21d84a4_bg.wasm`).
fn is_hashed_asset(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    let Some((_, tail)) = file.rsplit_once('-') else {
        return false;
    };
    let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
    hex == 16 && matches!(tail.as_bytes().get(16), Some(b'.' | b'_'))
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

/// ICE servers before any join, for the lobby's network check: the body of
/// an `iceServers` message, with TURN credentials for a fresh id (anyone
/// who may join gets those anyway). Other origins need --allow-origin.
async fn ice_servers(State(relay): State<Relay>, headers: HeaderMap) -> Response {
    if !origin_allowed(&headers, &relay.config.allowed_origins) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let ice_servers = relay
        .ice
        .servers_for(&ids::random_id(), std::time::SystemTime::now());
    let body = rooms::encode(&protocol::ServerMsg::IceServers { ice_servers })
        .as_str()
        .to_owned();
    let mut res = (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    if let Some(origin) = headers.get(header::ORIGIN) {
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    res
}

async fn ws(
    State(relay): State<Relay>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &relay.config.allowed_origins) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    // Served without connect info (not through `run`), every client is one.
    let peer = connect_info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    let ip = client_ip::client_ip(peer, &headers, &relay.config.trusted_proxies);
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
    let tracker = relay.sessions.clone();
    match relay.admit(ip) {
        Err(refused) => {
            tracing::debug!(%ip, ?refused, "connection refused");
            upgrade.on_upgrade(move |socket| {
                tracker.track_future(session::refuse(
                    socket,
                    protocol::close::TRY_AGAIN_LATER,
                    refused.reason(),
                ))
            })
        }
        Ok(admitted) => upgrade.on_upgrade(move |socket| {
            tracker.track_future(async move {
                session::run(socket, relay).await;
                drop(admitted);
            })
        }),
    }
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
    // What can fail at start fails before anything (TURN) is running.
    let tls = match config.tls.source(listener.local_addr()?) {
        Some(source) => Some(tls::Certs::open(&source).map_err(std::io::Error::other)?),
        None => None,
    };
    let redirect = match (&tls, config.tls.redirect_http) {
        (Some(_), Some(addr)) => Some(TcpListener::bind(addr).await?),
        _ => None,
    };
    // TURN on the HTTPS port: the TLS listener hands TURN clients over.
    let (turn_on_https, on_https) = match (&tls, config.turn.on_https) {
        (_, false) => (None, None),
        (None, true) => {
            return Err(std::io::Error::other(
                "--turn-on-https needs HTTPS: --tls-cert and --tls-key, or --tls-self-signed",
            ));
        }
        (Some(_), true) => {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            let local = listener.local_addr()?;
            (Some(tx), Some(turn::OnHttps { streams: rx, local }))
        }
    };
    let metrics = Arc::new(metrics::Metrics::default());
    let turn = start_turn(&mut config, &metrics, tls.clone(), on_https)
        .await
        .map_err(std::io::Error::other)?;
    let relay = Relay::with_metrics(config, metrics);
    let stop = relay.shutdown.clone();
    let server = match &tls {
        Some(certs) => {
            tracing::info!(
                "serving HTTPS and WSS; certificate SHA-256 {}",
                certs.fingerprint()
            );
            certs.watch(relay.config.tls.check_every, stop.clone());
            if let Some(redirect) = redirect {
                tls::redirect_http(redirect, listener.local_addr()?.port(), stop.clone())?;
            }
            // "stun.turn" (RFC 7443) for TURN clients that say so.
            let alpn: &[&[u8]] = match turn_on_https {
                Some(_) => &[b"http/1.1", b"stun.turn"],
                None => &[b"http/1.1"],
            };
            let acceptor = tls::acceptor(Arc::clone(certs), alpn);
            let listener = tls::TlsListener::new(listener, acceptor, turn_on_https)?;
            let service = app(relay.clone())
                .layer(axum::middleware::map_request(tls::peer_addr))
                .into_make_service_with_connect_info::<tls::TlsAddr>();
            tokio::spawn(
                axum::serve(listener, service)
                    .with_graceful_shutdown(stop.clone().cancelled_owned())
                    .into_future(),
            )
        }
        None => {
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {e}");
                }
            });
            let service = app(relay.clone()).into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(
                axum::serve(listener, service)
                    .with_graceful_shutdown(stop.clone().cancelled_owned())
                    .into_future(),
            )
        }
    };
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
    certs: Option<Arc<tls::Certs>>,
    on_https: Option<turn::OnHttps>,
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
    let turn = turn::EmbeddedTurn::start(
        &config.turn,
        listen,
        &secret,
        metrics.clone(),
        certs,
        on_https,
    )
    .await
    .map_err(|e| anyhow::anyhow!("embedded TURN on {listen}: {e}"))?;
    config.ice.turn_urls.extend(turn.urls());
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
    fn only_trunk_hashed_names_are_immutable() {
        for hashed in [
            "/frontend-7de975aac21d84a4_bg.wasm",
            "/frontend-76e83c319a4b3b3f.js",
            "/style-87c11764d46e458c.css",
        ] {
            assert!(is_hashed_asset(hashed), "{hashed}");
        }
        for plain in [
            "/",
            "/index.html",
            "/watch",
            "/app.js",
            "/style-87c11764d46e458.css",
            "/style-87c11764d46e458cc.css",
            "/style-87c11764d46e458g.css",
            "/a-87c11764d46e458c",
        ] {
            assert!(!is_hashed_asset(plain), "{plain}");
        }
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
