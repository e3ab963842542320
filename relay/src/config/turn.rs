//! The embedded TURN server's flags (`turn.rs` at the crate root serves with them).

use crate::turn::policy::Cidr;
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The embedded TURN server (off unless --turn-listen is given).
#[derive(Args, Clone, Debug)]
pub struct TurnArgs {
    /// Runs the embedded TURN server on this address, UDP and TCP, e.g.
    /// 0.0.0.0:3478, and advertises it in `welcome` with credentials from
    /// --turn-secret (a random secret if none is given).
    #[arg(id = "turn_listen", long = "turn-listen", env = "MESHCAST_TURN_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Also runs TURN over TLS on this TCP address (e.g. 0.0.0.0:5349, or
    /// 443 on a second address), with the relay's certificate (--tls-cert
    /// or --tls-self-signed). Needs --turn-listen.
    #[arg(
        long = "turn-tls-listen",
        env = "MESHCAST_TURN_TLS_LISTEN",
        requires = "turn_listen"
    )]
    pub tls_listen: Option<SocketAddr>,

    /// TURN over TLS on the HTTPS port too (--listen with --tls-cert or
    /// --tls-self-signed): for networks that let only 443 out. Each TLS
    /// connection is TURN if its first byte is a STUN message's, HTTPS
    /// otherwise. Needs --turn-listen.
    #[arg(
        long = "turn-on-https",
        env = "MESHCAST_TURN_ON_HTTPS",
        requires = "turn_listen"
    )]
    pub on_https: bool,

    /// The host name in the advertised TURN URLs, e.g. turn.example.com:
    /// the name the certificate is for, so browsers accept `turns:`.
    /// Defaults to --turn-relay-ip.
    #[arg(
        long = "turn-host",
        env = "MESHCAST_TURN_HOST",
        requires = "turn_listen"
    )]
    pub host: Option<String>,

    /// The address clients reach the TURN server at: put in relayed
    /// candidates and in the advertised URL. Defaults to the --turn-listen
    /// address; needed when that is 0.0.0.0 or ::.
    #[arg(long = "turn-relay-ip", env = "MESHCAST_TURN_RELAY_IP")]
    pub relay_ip: Option<IpAddr>,

    /// UDP ports for relayed candidates, MIN-MAX.
    #[arg(long = "turn-ports", env = "MESHCAST_TURN_PORTS", default_value = "49152-65535", value_parser = parse_ports)]
    pub ports: (u16, u16),

    /// Peer ranges the TURN server relays to although they are refused by
    /// default (private, loopback, link-local, CGNAT, TEST-NET...), e.g. a
    /// LAN. Comma-separated CIDRs.
    #[arg(
        long = "turn-allow-peer",
        env = "MESHCAST_TURN_ALLOW_PEERS",
        value_delimiter = ','
    )]
    pub allow_peer: Vec<Cidr>,

    /// Tests only: lets the TURN server relay to loopback addresses.
    #[arg(long = "turn-allow-loopback")]
    pub allow_loopback: bool,

    /// TURN allocations in total; one more gets 508 (each is a UDP socket).
    #[arg(
        long = "turn-max-allocations",
        env = "MESHCAST_TURN_MAX_ALLOCATIONS",
        default_value_t = 4000
    )]
    pub max_allocations: usize,

    /// TURN allocations per peer id; one more gets 486. A browser allocates
    /// once per advertised TURN URL (up to 4: UDP, TCP, TLS, TLS on 443)
    /// for each of its 2 x (peers - 1) connections: 120 in a room of 16.
    #[arg(
        long = "turn-user-quota",
        env = "MESHCAST_TURN_USER_QUOTA",
        default_value_t = 128
    )]
    pub user_quota: usize,

    /// Challenges (401/438) the TURN server sends per second in total;
    /// unauthenticated requests beyond that are dropped.
    #[arg(
        long = "turn-challenge-rate",
        env = "MESHCAST_TURN_CHALLENGE_RATE",
        default_value_t = 500.0
    )]
    pub challenge_rate: f64,

    /// Challenges (401/438) per second to one source IP (an IPv6 /64), with
    /// a burst of twice that; half the burst is kept for source ports not
    /// answered in the last 10 s, so a flood from many ports of one address
    /// does not starve a new client behind it. Within the global rate.
    #[arg(
        long = "turn-challenge-rate-per-ip",
        env = "MESHCAST_TURN_CHALLENGE_RATE_PER_IP",
        default_value_t = 20.0
    )]
    pub challenge_rate_per_ip: f64,

    /// How long after its credential expires an allocation may still be
    /// refreshed (new allocations always need a live credential).
    #[arg(long = "turn-refresh-grace", env = "MESHCAST_TURN_REFRESH_GRACE", default_value = "12h", value_parser = humantime::parse_duration)]
    pub refresh_grace: Duration,
}

impl TurnArgs {
    /// The address put in relayed candidates for a server listening on `listen`.
    pub fn relay_ip(&self, listen: SocketAddr) -> anyhow::Result<IpAddr> {
        match self.relay_ip {
            Some(ip) => Ok(ip),
            None if !listen.ip().is_unspecified() => Ok(listen.ip()),
            None => anyhow::bail!(
                "--turn-listen {listen} needs --turn-relay-ip: the address clients reach it at"
            ),
        }
    }
}

fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?} is not a port range like 49152-65535");
    let (min, max) = s.split_once('-').ok_or_else(bad)?;
    let min: u16 = min.trim().parse().map_err(|_| bad())?;
    let max: u16 = max.trim().parse().map_err(|_| bad())?;
    if min == 0 || max < min {
        return Err(bad());
    }
    Ok((min, max))
}
