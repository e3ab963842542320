//! The embedded TURN server (`--turn-listen`): webrtc-rs's `turn` server on
//! UDP, TCP and (`--turn-tls-listen`) TLS ([stream]), behind one
//! [gate](gate) that authenticates every request with the
//! relay's own short-lived credentials (`expiry:peer`, HMAC of the shared
//! secret), answers challenges itself so floods leave no state, enforces
//! quotas and refuses to relay to loopback, private and other special
//! addresses ([policy]). Relay sockets ([relay]) check the peer address
//! again on every datagram, and each holds its slot in the one allocation
//! counter ([quota]). Relayed addresses are UDP on every
//! transport (what browsers ask for).

mod conn;
mod gate;
mod limiter;
mod nonces;
pub mod policy;
mod quota;
mod relay;
mod stream;
mod stun;

use crate::config::TurnArgs;
use crate::metrics::Metrics;
use crate::tls::Peeked;
use conn::GateConn;
use gate::Gate;
use limiter::ReplyRates;
use policy::PeerPolicy;
use quota::Quota;
use relay::RelayPorts;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stream::StreamConn;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};

/// The realm in every challenge.
pub const REALM: &str = "meshcast";

/// The client whose request one conn's read loop is handling: each loop
/// handles one request at a time, so its relay ports claim that client's
/// reservation (several loops run at once: UDP, TCP, TLS).
pub(crate) type Current = Arc<std::sync::Mutex<SocketAddr>>;

fn new_current() -> Current {
    Arc::new(std::sync::Mutex::new(gate::SELF_ADDR))
}

fn set_current(current: &Current, client: SocketAddr) {
    *current.lock().unwrap_or_else(|e| e.into_inner()) = client;
}

/// How the gate checks credentials.
#[derive(Clone, Debug)]
pub(crate) struct Auth {
    pub secret: String,
    pub realm: String,
    /// How long after its credential expires an allocation may still be refreshed.
    pub refresh_grace: Duration,
}

/// Every bound on the server's state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TurnLimits {
    pub max_allocations: usize,
    pub user_quota: usize,
    pub replies: ReplyRates,
}

/// TURN clients the HTTPS listener found on its port (`--turn-on-https`).
pub struct OnHttps {
    pub streams: mpsc::Receiver<(Peeked<TlsStream<TcpStream>>, SocketAddr)>,
    /// The HTTPS listener's address.
    pub local: SocketAddr,
}

/// A running embedded TURN server.
pub struct EmbeddedTurn {
    server: Server,
    stop: CancellationToken,
    local: SocketAddr,
    /// TURN over TLS: its own port, and the HTTPS port.
    tls_local: Option<SocketAddr>,
    https_local: Option<SocketAddr>,
    /// The host in the advertised URLs.
    host: String,
}

impl EmbeddedTurn {
    /// Binds `listen` (UDP and TCP) and `args.tls_listen` (TLS with
    /// `certs`), serves what `on_https` hands over, with credentials from
    /// `secret`.
    pub async fn start(
        args: &TurnArgs,
        listen: SocketAddr,
        secret: &str,
        metrics: Arc<Metrics>,
        certs: Option<Arc<crate::tls::Certs>>,
        on_https: Option<OnHttps>,
    ) -> anyhow::Result<Self> {
        let relay_ip = args.relay_ip(listen)?;
        let (min_port, max_port) = args.ports;
        let (socket, tcp) = bind_udp_and_tcp(listen).await?;
        let local = socket.local_addr()?;
        let tls = match (args.tls_listen, certs) {
            (None, _) => None,
            (Some(addr), Some(certs)) => Some((TcpListener::bind(addr).await?, certs)),
            (Some(_), None) => anyhow::bail!(
                "--turn-tls-listen needs the relay's certificate: --tls-cert and --tls-key, or --tls-self-signed"
            ),
        };
        let tls_local = tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
        let policy = Arc::new(PeerPolicy {
            allowed: args.allow_peer.clone(),
            allow_loopback: args.allow_loopback,
        });
        let limits = TurnLimits {
            max_allocations: args.max_allocations,
            user_quota: args.user_quota,
            replies: ReplyRates {
                per_sec: args.challenge_rate,
                burst: args.challenge_rate * 2.0,
                per_ip_per_sec: args.challenge_rate_per_ip,
                per_ip_burst: args.challenge_rate_per_ip * 2.0,
            },
        };
        let quota = Arc::new(Quota::new(
            limits.user_quota,
            limits.max_allocations,
            metrics.clone(),
        ));
        let gate = Arc::new(Gate::new(
            Auth {
                secret: secret.to_owned(),
                realm: REALM.to_owned(),
                refresh_grace: args.refresh_grace,
            },
            policy.clone(),
            limits,
            quota.clone(),
            metrics.clone(),
        ));
        let stop = CancellationToken::new();
        let (inject_tx, inject_rx) = mpsc::channel(4);
        let udp_current = new_current();
        let conn = GateConn {
            gate: gate.clone(),
            socket,
            inject: tokio::sync::Mutex::new(inject_rx),
            stop: stop.clone(),
            current: udp_current.clone(),
        };
        let ports = RelayPorts {
            listen_ip: listen.ip(),
            relay_ip,
            min_port,
            max_port,
            policy,
            quota,
            metrics: metrics.clone(),
            current: udp_current,
        };
        // Connections are few per allocation: most carry one.
        let max_streams = args.max_allocations.saturating_mul(2).max(16);
        let mut streams = vec![StreamConn::serve(
            tcp,
            None,
            max_streams,
            gate.clone(),
            metrics.clone(),
            stop.clone(),
        )?];
        let https_local = on_https.as_ref().map(|h| h.local);
        if let Some(h) = on_https {
            streams.push(StreamConn::adopt(
                h.streams,
                h.local,
                max_streams,
                gate.clone(),
                metrics.clone(),
                stop.clone(),
            ));
        }
        if let Some((listener, certs)) = tls {
            let acceptor = crate::tls::acceptor(certs, &[]);
            streams.push(StreamConn::serve(
                listener,
                Some(acceptor),
                max_streams,
                gate.clone(),
                metrics.clone(),
                stop.clone(),
            )?);
        }
        let mut conn_configs = vec![ConnConfig {
            conn: Arc::new(conn),
            relay_addr_generator: Box::new(ports.clone()),
        }];
        for stream in streams {
            let ports = RelayPorts {
                current: stream.current(),
                ..ports.clone()
            };
            conn_configs.push(ConnConfig {
                conn: Arc::new(stream),
                relay_addr_generator: Box::new(ports),
            });
        }
        let (closed_tx, mut closed_rx) = mpsc::channel(64);
        let server = Server::new(ServerConfig {
            conn_configs,
            realm: REALM.to_owned(),
            // The gate authenticates; whatever reaches the server passed.
            auth_handler: Arc::new(GateAuth(secret.to_owned())),
            channel_bind_timeout: Duration::ZERO,
            alloc_close_notify: Some(closed_tx),
        })
        .await?;

        // Allocations the server closes free their quota.
        let g = gate.clone();
        tokio::spawn(async move {
            while let Some(info) = closed_rx.recv().await {
                g.closed(&info.username, info.five_tuple.src_addr);
            }
        });
        // Keeps the server's nonces fresh (and few).
        let (g, s) = (gate.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    () = s.cancelled() => break,
                    _ = tick.tick() => {
                        if let Some(request) = g.injection(Instant::now()) {
                            let _ = inject_tx.send(request).await;
                        }
                    }
                }
            }
        });
        tracing::info!(%local, tls = ?tls_local, on_https = ?https_local, %relay_ip, ports = %format!("{min_port}-{max_port}"), "embedded TURN server (UDP and TCP)");
        let host = match (&args.host, relay_ip) {
            (Some(host), _) => host.clone(),
            (None, IpAddr::V4(ip)) => ip.to_string(),
            (None, IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        Ok(Self {
            server,
            stop,
            local,
            tls_local,
            https_local,
            host,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The URLs clients are given: every transport served, best first.
    pub fn urls(&self) -> Vec<String> {
        let (host, port) = (&self.host, self.local.port());
        let mut urls = vec![
            format!("turn:{host}:{port}?transport=udp"),
            format!("turn:{host}:{port}?transport=tcp"),
        ];
        for tls in self.tls_local.iter().chain(&self.https_local) {
            urls.push(format!("turns:{host}:{}?transport=tcp", tls.port()));
        }
        urls
    }

    /// Stops serving and closes every allocation.
    pub async fn close(self) {
        self.stop.cancel();
        if let Err(e) = self.server.close().await {
            tracing::debug!("TURN server close: {e}");
        }
    }
}

/// The key for a request the gate has already authenticated. The server
/// computes MESSAGE-INTEGRITY for its responses with it, so it must be the
/// real long-term key.
struct GateAuth(String);

impl turn::auth::AuthHandler for GateAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        _src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        let password = crate::ice::turn_credential(&self.0, username);
        Ok(turn::auth::generate_auth_key(username, realm, &password))
    }
}

/// UDP and TCP on one port: `listen`'s, or with port 0 one that is free for
/// both (the port UDP gets may be taken for TCP, e.g. by another process's
/// outgoing connection: then another).
async fn bind_udp_and_tcp(listen: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut tries = 0;
    loop {
        let socket = UdpSocket::bind(listen).await?;
        match TcpListener::bind(socket.local_addr()?).await {
            Ok(tcp) => return Ok((socket, tcp)),
            Err(e)
                if listen.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tries < 16 =>
            {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
