//! The relay's configuration: CLI flags, each with an environment fallback.
//! Every limit the relay enforces is here, with its default.

use crate::turn::policy::Cidr;
use clap::{Args, Parser};
use std::net::SocketAddr;
use std::{path::PathBuf, time::Duration};

mod tls;
mod turn;
pub use tls::TlsArgs;
pub use turn::TurnArgs;

#[derive(Parser, Clone, Debug)]
#[command(name = "meshcast-relay", version, about = "meshcast's signaling relay")]
pub struct Config {
    /// Address to listen on (HTTP, WebSocket at /ws, and the app).
    #[arg(long, env = "MESHCAST_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Directory of the built app (trunk's output), served with SPA fallback.
    #[arg(long, env = "MESHCAST_DIST", default_value = "dist")]
    pub dist: PathBuf,

    /// Origins allowed to open /ws besides the relay's own (e.g.
    /// https://app.example.com when the app is hosted elsewhere). Comma-separated.
    #[arg(
        long = "allow-origin",
        env = "MESHCAST_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Reverse proxies whose `X-Forwarded-For` is believed, as CIDRs
    /// (comma-separated). A connection from one of them is counted against
    /// the right-most forwarded address that is not itself a trusted proxy;
    /// from anywhere else the header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "MESHCAST_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<Cidr>,

    #[command(flatten)]
    pub ice: IceArgs,

    #[command(flatten)]
    pub turn: TurnArgs,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub limits: Limits,
}

#[derive(Args, Clone, Debug)]
pub struct IceArgs {
    /// STUN URLs handed to clients. Comma-separated; "none" (or empty) for none.
    #[arg(
        long = "stun",
        env = "MESHCAST_STUN",
        value_delimiter = ',',
        default_value = "stun:stun.l.google.com:19302"
    )]
    pub stun: Vec<String>,

    /// TURN URLs handed to clients with short-lived credentials, e.g.
    /// "turn:turn.example.com:3478?transport=udp". Needs --turn-secret.
    #[arg(long = "turn-url", env = "MESHCAST_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// Shared secret with the TURN server (coturn `static-auth-secret`). Never
    /// sent to clients; only HMAC credentials derived from it are.
    #[arg(long, env = "MESHCAST_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// Lifetime of a TURN credential.
    #[arg(long, env = "MESHCAST_TURN_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub turn_ttl: Duration,
}

#[derive(Args, Clone, Debug)]
pub struct Limits {
    /// Largest WebSocket message (and frame) accepted; larger closes with 1009.
    #[arg(long, env = "MESHCAST_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Peers per room; one more gets `roomFull`.
    #[arg(long, env = "MESHCAST_MAX_ROOM_PEERS", default_value_t = 16)]
    pub max_room_peers: usize,

    /// Open WebSocket connections in total; one more is closed with 1013.
    #[arg(long, env = "MESHCAST_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// Open WebSocket connections per client address (see --trusted-proxy);
    /// one more is closed with 1013.
    #[arg(long, env = "MESHCAST_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: usize,

    /// A connection that has not joined a room this long after it opened is
    /// closed with 1008.
    #[arg(long, env = "MESHCAST_JOIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub join_timeout: Duration,

    /// Messages per second a connection may send, sustained.
    #[arg(long, env = "MESHCAST_RATE_PER_SEC", default_value_t = 50.0)]
    pub rate_per_sec: f64,

    /// Messages a connection may send in a burst (ICE candidates come in bursts).
    #[arg(long, env = "MESHCAST_RATE_BURST", default_value_t = 200.0)]
    pub rate_burst: f64,

    /// Rate-limited messages tolerated (refilling at one per second) before
    /// the connection is closed with 1008 for flooding.
    #[arg(long, env = "MESHCAST_FLOOD_TOLERANCE", default_value_t = 100.0)]
    pub flood_tolerance: f64,

    /// Bad messages tolerated (refilling at one per 10 s) before the
    /// connection is closed with 1008.
    #[arg(long, env = "MESHCAST_BAD_MESSAGE_TOLERANCE", default_value_t = 10.0)]
    pub bad_message_tolerance: f64,

    /// Messages queued for one peer; a peer that falls this far behind is
    /// closed and removed, so it never slows the room down.
    #[arg(long, env = "MESHCAST_QUEUE_LEN", default_value_t = 256)]
    pub queue_len: usize,

    /// Bytes of text queued for one peer; over it, the peer is dropped like
    /// one over --queue-len (a single message always fits an empty queue).
    #[arg(long, env = "MESHCAST_QUEUE_BYTES", default_value_t = 1024 * 1024)]
    pub queue_bytes: usize,

    /// How long a member whose socket dropped (no close 1000/1001 from the
    /// client, or a heartbeat timeout) keeps its place: a rejoin with the
    /// same token inside it is silent; after it the room hears `peerLeft`.
    /// 0s announces at once.
    #[arg(long, env = "MESHCAST_LEAVE_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub leave_grace: Duration,

    /// How often the relay pings each connection.
    #[arg(long, env = "MESHCAST_PING_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// A connection silent this long (no pong, no message) is dropped
    /// (announced as left after --leave-grace); checked at each ping, so it
    /// goes within idle_timeout + ping_interval.
    #[arg(long, env = "MESHCAST_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// How long a graceful shutdown waits for sockets to close.
    #[arg(long, env = "MESHCAST_SHUTDOWN_GRACE", default_value = "4s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

impl Config {
    /// The defaults, as if started with no flags and no environment.
    pub fn defaults() -> Self {
        let mut cmd = <Self as clap::CommandFactory>::command();
        // Ignore MESHCAST_* variables so tests do not depend on the shell.
        cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let matches = cmd.get_matches_from(["meshcast-relay"]);
        <Self as clap::FromArgMatches>::from_arg_matches(&matches).expect("the defaults parse") // start-up only
    }

    /// STUN URLs with the "none"/empty placeholders removed.
    pub fn stun_urls(&self) -> Vec<String> {
        self.ice
            .stun
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && *s != "none")
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane() {
        let c = Config::defaults();
        assert_eq!(c.listen, "127.0.0.1:3000".parse().expect("addr"));
        assert_eq!(c.limits.max_message_bytes, 65536);
        assert_eq!(c.limits.max_room_peers, 16);
        assert_eq!(c.ice.turn_ttl, Duration::from_secs(600));
        assert_eq!(c.stun_urls(), vec!["stun:stun.l.google.com:19302"]);
        assert!(c.limits.idle_timeout + c.limits.ping_interval <= Duration::from_secs(45));
        assert_eq!(c.limits.queue_len, 256);
        assert_eq!(c.limits.queue_bytes, 1024 * 1024);
        assert_eq!(c.limits.join_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.leave_grace, Duration::from_secs(10));
        assert_eq!(c.limits.max_connections_per_ip, 64);
        assert!(c.trusted_proxies.is_empty());
    }

    #[test]
    fn flags_parse() {
        let c = Config::try_parse_from([
            "meshcast-relay",
            "--stun",
            "none",
            "--turn-url",
            "turn:a:3478,turns:a:443",
            "--turn-secret",
            "s",
            "--turn-ttl",
            "90s",
            "--max-room-peers",
            "4",
            "--leave-grace",
            "2s",
            "--queue-bytes",
            "4096",
            "--join-timeout",
            "300ms",
            "--max-connections-per-ip",
            "2",
            "--trusted-proxy",
            "10.0.0.0/8,::1",
        ])
        .expect("parse");
        assert_eq!(c.limits.leave_grace, Duration::from_secs(2));
        assert_eq!(c.limits.queue_bytes, 4096);
        assert_eq!(c.limits.join_timeout, Duration::from_millis(300));
        assert_eq!(c.limits.max_connections_per_ip, 2);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(
            Config::try_parse_from(["meshcast-relay", "--trusted-proxy", "10.0.0.0/33"]).is_err()
        );
        assert!(c.stun_urls().is_empty());
        assert_eq!(c.ice.turn_urls.len(), 2);
        assert_eq!(c.ice.turn_ttl, Duration::from_secs(90));
        assert_eq!(c.limits.max_room_peers, 4);
    }

    #[test]
    fn embedded_turn_flags_parse() {
        let c = Config::defaults();
        assert_eq!(c.turn.listen, None);
        assert_eq!(c.turn.ports, (49152, 65535));
        let c = Config::try_parse_from([
            "meshcast-relay",
            "--turn-listen",
            "0.0.0.0:3478",
            "--turn-relay-ip",
            "203.0.113.1",
            "--turn-ports",
            "40000-40100",
            "--turn-allow-peer",
            "203.0.113.0/24,10.0.0.0/8",
        ])
        .expect("parse");
        let listen = c.turn.listen.expect("listen");
        assert_eq!(
            c.turn.relay_ip(listen).expect("ip"),
            "203.0.113.1".parse::<std::net::IpAddr>().expect("ip")
        );
        assert_eq!(c.turn.ports, (40000, 40100));
        assert_eq!(c.turn.allow_peer.len(), 2);
        assert!(!c.turn.allow_loopback);

        let mut c = Config::try_parse_from(["meshcast-relay", "--turn-listen", "0.0.0.0:3478"])
            .expect("parse");
        assert!(c.turn.relay_ip(listen).is_err(), "0.0.0.0 needs a relay ip");
        c.turn.relay_ip = None;
        let loopback = "127.0.0.1:3478".parse().expect("addr");
        assert_eq!(c.turn.relay_ip(loopback).expect("ip"), loopback.ip());

        for bad in [
            vec!["--turn-ports", "5000"],
            vec!["--turn-ports", "6000-5000"],
            vec!["--turn-ports", "0-10"],
            vec!["--turn-allow-peer", "10.0.0.0/40"],
            vec!["--turn-listen", "nowhere"],
        ] {
            let args = ["meshcast-relay"].into_iter().chain(bad.iter().copied());
            assert!(
                Config::try_parse_from(args).is_err(),
                "{bad:?} must be refused"
            );
        }
    }
}
