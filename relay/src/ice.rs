//! ICE servers for `welcome`: STUN as configured, and TURN with short-lived
//! credentials (the TURN REST API scheme that coturn's `use-auth-secret`
//! checks): username `"<unix expiry>:<peer id>"`, credential
//! `base64(HMAC-SHA1(secret, username))`. The secret never leaves the relay.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use protocol::{IceServer, PeerId};
use sha1::Sha1;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub struct IceConfig {
    pub stun_urls: Vec<String>,
    pub turn_urls: Vec<String>,
    pub turn_secret: Option<String>,
    pub turn_ttl: Duration,
}

impl IceConfig {
    /// Whether TURN credentials are handed out (a secret and URLs).
    pub fn has_turn(&self) -> bool {
        self.turn_secret.is_some() && !self.turn_urls.is_empty()
    }

    /// The list for one peer, with TURN credentials valid from `now` for the TTL.
    pub fn servers_for(&self, peer: &PeerId, now: SystemTime) -> Vec<IceServer> {
        let mut servers = Vec::with_capacity(2);
        if !self.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let (Some(secret), true) = (&self.turn_secret, self.has_turn()) {
            let expiry = now
                .checked_add(self.turn_ttl)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let username = format!("{expiry}:{peer}");
            servers.push(IceServer {
                urls: self.turn_urls.clone(),
                credential: Some(turn_credential(secret, &username)),
                username: Some(username),
            });
        }
        servers
    }
}

/// `base64(HMAC-SHA1(secret, username))`.
pub fn turn_credential(secret: &str, username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_matches_rfc2202_vector() {
        // RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"));
        assert_eq!(
            turn_credential("Jefe", "what do ya want for nothing?"),
            expected
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn turn_needs_a_secret_and_urls() {
        let mut ice = IceConfig {
            stun_urls: vec![],
            turn_urls: vec!["turn:t:3478".into()],
            turn_secret: None,
            turn_ttl: Duration::from_secs(600),
        };
        let peer = PeerId::from("p1");
        assert!(ice.servers_for(&peer, SystemTime::now()).is_empty());
        ice.turn_secret = Some("s3cret".into());
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let servers = ice.servers_for(&peer, now);
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].username.as_deref(), Some("1000600:p1"));
        assert_eq!(
            servers[0].credential.as_deref(),
            Some(turn_credential("s3cret", "1000600:p1").as_str())
        );
    }
}
