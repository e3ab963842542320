//! Which client address a connection counts against: the TCP peer, or,
//! when that peer is a trusted reverse proxy, the address it forwarded in
//! `X-Forwarded-For`.

use crate::turn::policy::Cidr;
use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address for a connection from `peer`. `X-Forwarded-For` is
/// read only when `peer` is in `trusted`; then the right-most address that
/// is not itself a trusted proxy is the client (the ones left of it could
/// be written by anyone). An unparsable entry stops the walk at the last
/// trusted hop.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Several headers are one list, in order.
    let hops = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let h = xff(&["198.51.100.7"]);
        // Untrusted peer: the header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &trusted),
            ip("203.0.113.9")
        );
        // Trusted peer: the forwarded address.
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &trusted), ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.1.1.1"), &HeaderMap::new(), &trusted),
            ip("10.1.1.1")
        );
        // Nothing trusted: never read.
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &[]), ip("10.1.1.1"));
    }

    #[test]
    fn the_right_most_untrusted_hop_wins() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        // A client-written spoof on the left, then the real client, then a
        // second proxy of ours.
        let h = xff(&["1.1.1.1, 198.51.100.7", "10.2.2.2"]);
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &trusted), ip("198.51.100.7"));
        let h = xff(&["[2001:db8::5]:443, 198.51.100.8:1234"]);
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &trusted), ip("198.51.100.8"));
        // Garbage stops the walk at the last trusted hop.
        let h = xff(&["198.51.100.7, garbage, 10.2.2.2"]);
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &trusted), ip("10.2.2.2"));
        // IPv4-mapped IPv6 counts as IPv4.
        assert_eq!(
            client_ip(ip("::ffff:203.0.113.9"), &HeaderMap::new(), &trusted),
            ip("203.0.113.9")
        );
    }
}
