//! The two servers' protocols, without sockets: where a peer connects, how it
//! joins, what a direct message looks like on the wire, and where the
//! timestamp sits in what comes back.
//!
//! Both servers get the same load: a direct `offer`-like message with an
//! SDP-sized payload that the server forwards to one named peer. The payload
//! carries `~<nanoseconds>~` so the receiver finds its send time with one
//! byte search, without parsing JSON: the generator must stay cheaper per
//! message than the servers it measures.
//!
//! meshcast: `GET /ws`, `join` -> `welcome` (the relay picks the id), then
//! `{"event":"offer","to":ID,"sdp":S}` arrives as `{"event":"offer","from":..,"sdp":S}`.
//!
//! PeerJS server (`peer` 1.0.2, `dist/module.mjs`): `GET
//! /peerjs?key=peerjs&id=ID&token=T` (the client picks its id) -> `{"type":"OPEN"}`,
//! then `{"type":"OFFER","dst":ID,"payload":P}` arrives as
//! `{"type":"OFFER","src":..,"dst":ID,"payload":P}`. It has no rooms: any peer
//! can reach any other, so "rooms" here are only who the generator pairs up.

use protocol::{ClientMsg, RoomId, ServerMsg};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Which server a run talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Kind {
    Meshcast,
    #[value(name = "peerjs")]
    PeerJs,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Meshcast, Kind::PeerJs];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Meshcast => "meshcast",
            Kind::PeerJs => "PeerJS",
        }
    }

    /// The WebSocket URL for the peer the generator calls `hint`.
    pub fn url(self, addr: SocketAddr, hint: &str) -> String {
        match self {
            Kind::Meshcast => format!("ws://{addr}/ws"),
            Kind::PeerJs => format!("ws://{addr}/peerjs?key=peerjs&id={hint}&token=t{hint}"),
        }
    }

    /// What the peer sends right after the upgrade, if anything.
    pub fn hello(self, room: &str, hint: &str) -> Option<String> {
        match self {
            Kind::Meshcast => Some(
                serde_json::to_string(&ClientMsg::Join {
                    room: RoomId(room.to_owned()),
                    name: hint.to_owned(),
                    role: protocol::Role::Broadcaster,
                    token: None,
                })
                .unwrap_or_else(|e| unreachable!("a join always serializes: {e}")),
            ),
            Kind::PeerJs => None,
        }
    }

    /// Reads a frame that arrives before the peer is in: `Ok(Some(id))` once
    /// it is, `Ok(None)` for anything to skip, `Err` if the server refused.
    pub fn welcome(self, text: &str, hint: &str) -> Result<Option<String>, String> {
        match self {
            Kind::Meshcast => match serde_json::from_str::<ServerMsg>(text) {
                Ok(ServerMsg::Welcome { id, .. }) => Ok(Some(id.0)),
                Ok(ServerMsg::Error { code, message }) => Err(format!("{code:?}: {message}")),
                _ => Ok(None),
            },
            Kind::PeerJs => {
                let v: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}: {text}"))?;
                match v["type"].as_str() {
                    Some("OPEN") => Ok(Some(hint.to_owned())),
                    Some("ERROR" | "ID-TAKEN") => Err(text.to_owned()),
                    _ => Ok(None),
                }
            }
        }
    }

    /// A direct message to `to` with an SDP-like payload of about
    /// `payload_bytes`, split around its timestamp.
    pub fn template(self, to: &str, payload_bytes: usize) -> Template {
        let to = serde_json::Value::from(to).to_string();
        let pad = sdp_padding(payload_bytes);
        match self {
            Kind::Meshcast => Template {
                prefix: format!(r#"{{"event":"offer","to":{to},"sdp":"~"#),
                suffix: format!(r#"~{pad}"}}"#),
            },
            // The payload of a real PeerJS offer is an object holding the SDP.
            Kind::PeerJs => Template {
                prefix: format!(r#"{{"type":"OFFER","dst":{to},"payload":{{"sdp":"~"#),
                suffix: format!(r#"~{pad}"}}}}"#),
            },
        }
    }
}

/// `payload_bytes` of SDP-looking lines, JSON-escaped as in a real offer
/// (`\r\n` becomes `\\r\\n`, so both servers pay for unescaping).
fn sdp_padding(payload_bytes: usize) -> String {
    const LINE: &str = "a=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host\r\n";
    let raw: String = LINE.chars().cycle().take(payload_bytes).collect();
    let json = serde_json::Value::from(raw).to_string();
    json.trim_matches('"').to_owned()
}

/// A direct message with a hole for the timestamp.
#[derive(Clone, Debug)]
pub struct Template {
    prefix: String,
    suffix: String,
}

impl Template {
    pub fn frame(&self, stamp_ns: u64) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 20 + self.suffix.len());
        s.push_str(&self.prefix);
        // Writing to a String cannot fail.
        let _ = write!(s, "{stamp_ns}");
        s.push_str(&self.suffix);
        s
    }
}

/// The timestamp of a forwarded direct message; `None` for anything else
/// (welcome, peerJoined, errors: none of them contain `~`).
pub fn stamp(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once('~')?;
    let (digits, _) = rest.split_once('~')?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::PeerId;

    #[test]
    fn meshcast_frame_is_a_client_offer() {
        let frame = Kind::Meshcast.template("ab12", 300).frame(42);
        let msg: ClientMsg = serde_json::from_str(&frame).expect("a ClientMsg");
        let ClientMsg::Offer { to, sdp, .. } = msg else {
            panic!("not an offer: {frame}");
        };
        assert_eq!(to, PeerId::from("ab12"));
        assert!(sdp.starts_with("~42~a=candidate"), "{sdp}");
        assert_eq!(sdp.len(), "~42~".len() + 300);
        assert!(sdp.contains("\r\n"));
        assert_eq!(stamp(&frame), Some(42));
    }

    #[test]
    fn forwarded_meshcast_offer_keeps_its_stamp() {
        let out = ServerMsg::Offer {
            from: PeerId::from("cd34"),
            conn: 0,
            sdp: "~7~v=0".into(),
            sig: None,
        };
        let text = serde_json::to_string(&out).expect("json");
        assert_eq!(stamp(&text), Some(7));
    }

    #[test]
    fn peerjs_frame_and_its_forwarded_form() {
        let frame = Kind::PeerJs.template("p1", 100).frame(99);
        let v: serde_json::Value = serde_json::from_str(&frame).expect("json");
        assert_eq!(v["type"], "OFFER");
        assert_eq!(v["dst"], "p1");
        assert!(
            v["payload"]["sdp"]
                .as_str()
                .is_some_and(|s| s.starts_with("~99~"))
        );
        // The server adds src and re-serializes; the stamp survives.
        let mut fwd = v.clone();
        fwd["src"] = "p0".into();
        assert_eq!(stamp(&fwd.to_string()), Some(99));
    }

    #[test]
    fn welcomes() {
        let hello = Kind::Meshcast.hello("r1", "n1").expect("a join");
        let join: ClientMsg = serde_json::from_str(&hello).expect("join");
        assert!(matches!(join, ClientMsg::Join { .. }));
        let welcome = r#"{"event":"welcome","id":"ab","room":"r1","peers":[],"iceServers":[]}"#;
        assert_eq!(
            Kind::Meshcast.welcome(welcome, "n1"),
            Ok(Some("ab".to_owned()))
        );
        assert_eq!(
            Kind::Meshcast.welcome(r#"{"event":"peerLeft","id":"x"}"#, "n1"),
            Ok(None)
        );
        assert!(
            Kind::Meshcast
                .welcome(
                    r#"{"event":"error","code":"roomFull","message":"full"}"#,
                    "n1"
                )
                .is_err()
        );

        assert_eq!(Kind::PeerJs.hello("r1", "n1"), None);
        assert_eq!(
            Kind::PeerJs.welcome(r#"{"type":"OPEN"}"#, "n1"),
            Ok(Some("n1".to_owned()))
        );
        assert!(
            Kind::PeerJs
                .welcome(
                    r#"{"type":"ERROR","payload":{"msg":"Server has reached its concurrent user limit"}}"#,
                    "n1"
                )
                .is_err()
        );
        assert_eq!(
            Kind::PeerJs.url("127.0.0.1:9".parse().expect("addr"), "n1"),
            "ws://127.0.0.1:9/peerjs?key=peerjs&id=n1&token=tn1"
        );
    }

    #[test]
    fn stamps_only_in_payloads() {
        assert_eq!(stamp(r#"{"event":"peerJoined"}"#), None);
        assert_eq!(stamp("~x~"), None);
        assert_eq!(stamp("~12"), None);
    }
}
