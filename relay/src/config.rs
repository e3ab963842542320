//! The relay's configuration: CLI flags, each with an environment fallback.
//! Every limit the relay enforces is here, with its default.

use clap::{Args, Parser};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

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

    #[command(flatten)]
    pub ice: IceArgs,

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

    /// How often the relay pings each connection.
    #[arg(long, env = "MESHCAST_PING_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// A connection silent this long (no pong, no message) is dropped and
    /// announced as left; checked at each ping, so it goes within
    /// idle_timeout + ping_interval.
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
        ])
        .expect("parse");
        assert!(c.stun_urls().is_empty());
        assert_eq!(c.ice.turn_urls.len(), 2);
        assert_eq!(c.ice.turn_ttl, Duration::from_secs(90));
        assert_eq!(c.limits.max_room_peers, 4);
    }
}
