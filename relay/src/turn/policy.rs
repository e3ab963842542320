//! Which peer addresses the embedded TURN server may relay to.
//!
//! A TURN server relays to whatever address a client names, so an open one
//! is a proxy into the network it runs in: loopback services, the cloud
//! metadata endpoint (169.254.169.254), the private LAN. Everything that is
//! not a globally routable unicast address is refused, in IPv4 and in every
//! IPv6 form that embeds one (mapped, compatible, NAT64, 6to4), unless an
//! operator allow-lists a range (`--turn-allow-peer`, e.g. a LAN deployment
//! or a test network) or, for tests only, loopback.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address range, e.g. `10.0.0.0/8` or `fc00::/7`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        Self {
            net: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self {
            net: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an address range like 10.0.0.0/8 or fc00::/7")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(s.to_owned());
        let (ip, prefix) = match s.trim().split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s.trim(), None),
        };
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

const LOOPBACK: [Cidr; 2] = [
    Cidr::v4(127, 0, 0, 0, 8),
    Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
];

/// Special-purpose ranges (RFC 6890 and friends) that a relay must not reach.
const DENIED: [Cidr; 23] = [
    Cidr::v4(0, 0, 0, 0, 8),                         // "this network"
    Cidr::v4(10, 0, 0, 0, 8),                        // private
    Cidr::v4(100, 64, 0, 0, 10),                     // carrier-grade NAT
    Cidr::v4(169, 254, 0, 0, 16),                    // link-local, cloud metadata
    Cidr::v4(172, 16, 0, 0, 12),                     // private
    Cidr::v4(192, 0, 0, 0, 24),                      // IETF protocol assignments
    Cidr::v4(192, 0, 2, 0, 24),                      // TEST-NET-1
    Cidr::v4(192, 88, 99, 0, 24),                    // 6to4 relay anycast
    Cidr::v4(192, 168, 0, 0, 16),                    // private
    Cidr::v4(198, 18, 0, 0, 15),                     // benchmarking
    Cidr::v4(198, 51, 100, 0, 24),                   // TEST-NET-2
    Cidr::v4(203, 0, 113, 0, 24),                    // TEST-NET-3
    Cidr::v4(224, 0, 0, 0, 4),                       // multicast
    Cidr::v4(240, 0, 0, 0, 4),                       // reserved, broadcast
    Cidr::v6([0; 8], 128),                           // unspecified
    Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),  // NAT64 (embeds IPv4)
    Cidr::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),  // local NAT64
    Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard
    Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    Cidr::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),     // 6to4 (embeds IPv4)
    Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),      // unique local
    Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),     // link-local
    Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),      // multicast
];

/// The embedded TURN server's rule for peer addresses.
#[derive(Clone, Debug, Default)]
pub struct PeerPolicy {
    /// Ranges relayed to even though they are denied by default.
    pub allowed: Vec<Cidr>,
    /// Lets loopback through (tests only).
    pub allow_loopback: bool,
}

impl PeerPolicy {
    /// Whether the server may relay to (and accept data from) `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) forms
        // are judged as the IPv4 address they carry.
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| compatible_v4(v6)) {
                Some(v4) => IpAddr::V4(v4),
                None => ip,
            },
            v4 => v4,
        };
        if self.allowed.iter().any(|c| c.contains(ip)) {
            return true;
        }
        if LOOPBACK.iter().any(|c| c.contains(ip)) {
            return self.allow_loopback;
        }
        !DENIED.iter().any(|c| c.contains(ip))
    }
}

/// `::a.b.c.d` (deprecated IPv4-compatible), but not `::` or `::1`.
fn compatible_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = v6.octets();
    (o[..12].iter().all(|b| *b == 0) && u32::from_be_bytes([o[12], o[13], o[14], o[15]]) > 1)
        .then(|| Ipv4Addr::new(o[12], o[13], o[14], o[15]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn refuses_every_special_range_in_every_form() {
        let policy = PeerPolicy::default();
        for denied in [
            "127.0.0.1",
            "127.255.255.254",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "0.0.0.0",
            "::",
            "10.1.2.3",
            "::ffff:10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "::ffff:192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "fe80::1",
            "fd00:ec2::254",
            "ff02::1",
            "64:ff9b::a01:203",
            "2002:a00:1::1",
            "2001:db8::1",
        ] {
            assert!(!policy.allows(ip(denied)), "{denied} must be refused");
        }
    }

    #[test]
    fn relays_to_public_addresses() {
        let policy = PeerPolicy::default();
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "::ffff:8.8.8.8",
            "2606:4700::1111",
        ] {
            assert!(policy.allows(ip(public)), "{public} must be allowed");
        }
    }

    #[test]
    fn loopback_and_allow_listed_ranges_are_opt_in() {
        let mut policy = PeerPolicy {
            allowed: vec!["203.0.113.0/24".parse().expect("cidr")],
            allow_loopback: false,
        };
        assert!(policy.allows(ip("203.0.113.9")));
        assert!(policy.allows(ip("::ffff:203.0.113.9")));
        assert!(!policy.allows(ip("198.51.100.7")));
        assert!(!policy.allows(ip("127.0.0.1")));
        policy.allow_loopback = true;
        assert!(policy.allows(ip("127.0.0.1")));
        assert!(policy.allows(ip("::1")));
        assert!(!policy.allows(ip("10.0.0.1")));
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().map(|c| c.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            "192.0.2.1".parse::<Cidr>().map(|c| c.to_string()),
            Ok("192.0.2.1/32".into())
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("fc00::/129".parse::<Cidr>().is_err());
        assert!("10.0.0/8".parse::<Cidr>().is_err());
        assert!("".parse::<Cidr>().is_err());
        let c: Cidr = "172.16.0.0/12".parse().expect("cidr");
        assert!(c.contains(ip("172.20.1.1")));
        assert!(!c.contains(ip("172.32.0.0")));
        assert!(!c.contains(ip("::ffff:172.20.1.1")), "families never match");
    }
}
