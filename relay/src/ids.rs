//! Peer ids: 128 bits, derived from a client's token (stable across
//! reconnects and relay restarts, revealing nothing of the token) or random.

use protocol::PeerId;
use sha2::{Digest, Sha256};

/// Bytes in a peer id: 128 bits, 32 hex characters.
pub const ID_BYTES: usize = 16;

/// A stable id for a client secret: the same token gives the same id across
/// reconnects and relay restarts; the id does not reveal the token.
pub fn id_from_token(token: &str) -> PeerId {
    let digest = Sha256::new()
        .chain_update(b"meshcast peer id v1\0")
        .chain_update(token.as_bytes())
        .finalize();
    PeerId(hex(&digest[..ID_BYTES]))
}

/// A fresh random id (a client without a token).
pub fn random_id() -> PeerId {
    let mut bytes = [0u8; ID_BYTES];
    // The OS RNG failing is not something a relay can recover from.
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
    PeerId(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bits_of_hex() {
        let a = id_from_token(&"k".repeat(40));
        assert_eq!(a.0.len(), 32);
        assert!(a.0.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, id_from_token(&"k".repeat(40)));
        assert_ne!(a, id_from_token(&"z".repeat(40)));
        let r = random_id();
        assert_eq!(r.0.len(), 32);
        assert_ne!(r, random_id());
    }
}
