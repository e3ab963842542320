//! STUN message helpers for the gate: building error responses, decoding
//! XOR-*-ADDRESS values, and the peer addresses a request names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use stun::agent::TransactionId;
use stun::attributes::ATTR_XOR_PEER_ADDRESS;
use stun::error_code::{ErrorCode, ErrorCodeAttribute};
use stun::fingerprint::FINGERPRINT;
use stun::message::{CLASS_ERROR_RESPONSE, MAGIC_COOKIE, Message, MessageType, Setter};

/// The error response to `req` with `code` and `extra` attributes.
pub(super) fn error_response(
    req: &Message,
    code: ErrorCode,
    mut extra: Vec<Box<dyn Setter>>,
) -> Option<Vec<u8>> {
    let mut m = Message::new();
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(MessageType::new(req.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(req.transaction_id),
        Box::new(ErrorCodeAttribute {
            code,
            reason: Vec::new(),
        }),
    ];
    setters.append(&mut extra);
    setters.push(Box::new(FINGERPRINT));
    m.build(&setters).ok().map(|()| m.raw)
}

/// Every XOR-PEER-ADDRESS in the request (CreatePermission may carry several).
pub(super) fn peer_addresses(m: &Message) -> Vec<SocketAddr> {
    m.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .filter_map(|a| xor_address(&a.value, &m.transaction_id))
        .collect()
}

/// Decodes an XOR-*-ADDRESS value (RFC 5389 15.2).
fn xor_address(v: &[u8], txid: &TransactionId) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    match (v.get(1)?, v.len()) {
        (1, 8) => {
            let o: [u8; 4] = std::array::from_fn(|i| v[4 + i] ^ cookie[i]);
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(o)), port))
        }
        (2, 20) => {
            let mask: Vec<u8> = cookie.iter().chain(txid.0.iter()).copied().collect();
            let o: [u8; 16] = std::array::from_fn(|i| v[4 + i] ^ mask[i]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun::message::{CLASS_REQUEST, METHOD_CREATE_PERMISSION};
    use turn::proto::peeraddr::PeerAddress;

    #[test]
    fn peer_addresses_decode_in_both_families_and_skip_garbage() {
        let want: Vec<SocketAddr> = ["198.51.100.7:5000", "[2606:4700::1111]:443"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(MessageType::new(METHOD_CREATE_PERMISSION, CLASS_REQUEST)),
            Box::new(TransactionId::new()),
        ];
        for a in &want {
            setters.push(Box::new(PeerAddress {
                ip: a.ip(),
                port: a.port(),
            }));
        }
        let mut m = Message::new();
        m.build(&setters).expect("build");
        assert_eq!(peer_addresses(&m), want);
        let txid = TransactionId::new();
        assert_eq!(xor_address(&[0, 1, 0, 0, 1, 2, 3], &txid), None, "short");
        assert_eq!(
            xor_address(&[0, 3, 0, 0, 1, 2, 3, 4], &txid),
            None,
            "family"
        );
    }
}
