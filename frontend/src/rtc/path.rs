//! How a connection's media travels, from its selected ICE candidate pair:
//! directly, through a NAT, or relayed by a TURN server. Pure; `peer` reads
//! the candidate types from getStats.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// host <-> host: same network.
    Direct,
    /// A server- or peer-reflexive address on either side: through a NAT.
    ThroughNat,
    /// A relay candidate on either side: through TURN, over UDP, TCP or TLS.
    Relayed(&'static str),
}

impl Path {
    /// From the `candidateType`s of the pair and the local relay protocol.
    pub fn classify(local: &str, remote: &str, relay_protocol: Option<&str>) -> Option<Self> {
        let known = |t: &str| matches!(t, "host" | "srflx" | "prflx" | "relay");
        if !known(local) || !known(remote) {
            return None;
        }
        Some(if local == "relay" || remote == "relay" {
            Path::Relayed(match relay_protocol {
                Some("tcp") => "TCP",
                Some("tls") => "TLS",
                _ => "UDP",
            })
        } else if local == "host" && remote == "host" {
            Path::Direct
        } else {
            Path::ThroughNat
        })
    }

    /// For `data-path` and tests.
    pub fn code(self) -> &'static str {
        match self {
            Path::Direct => "host",
            Path::ThroughNat => "srflx",
            Path::Relayed(_) => "relay",
        }
    }

    pub fn label(self) -> String {
        match self {
            Path::Direct => "Direct".into(),
            Path::ThroughNat => "Through NAT".into(),
            Path::Relayed(p) => format!("Relayed ({p})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Path;

    #[test]
    fn classifies_candidate_pairs() {
        assert_eq!(Path::classify("host", "host", None), Some(Path::Direct));
        assert_eq!(
            Path::classify("srflx", "host", None),
            Some(Path::ThroughNat)
        );
        assert_eq!(
            Path::classify("host", "prflx", None),
            Some(Path::ThroughNat)
        );
        assert_eq!(
            Path::classify("relay", "srflx", Some("udp")),
            Some(Path::Relayed("UDP"))
        );
        assert_eq!(
            Path::classify("host", "relay", None),
            Some(Path::Relayed("UDP"))
        );
        assert_eq!(
            Path::classify("relay", "relay", Some("tcp")),
            Some(Path::Relayed("TCP"))
        );
        assert_eq!(
            Path::classify("relay", "host", Some("tls")),
            Some(Path::Relayed("TLS"))
        );
        assert_eq!(Path::classify("", "host", None), None);
    }
}
