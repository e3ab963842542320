//! A compact encoder for [`ClientMsg`], for the browser app: the same text
//! serde_json writes for the derive (golden tests in `tests.rs` compare
//! them byte for byte), without serde's serializer in the wasm.

use crate::{ClientMsg, IceCandidate, IceServer, Role};
use std::fmt::Write;

/// Builds one JSON object, members in the order written.
struct Obj(String);

impl Obj {
    fn new(event: &str) -> Self {
        let mut o = Obj(String::from("{"));
        o.str("event", event);
        o
    }

    fn key(&mut self, key: &str) -> &mut String {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        quote(&mut self.0, key);
        self.0.push(':');
        &mut self.0
    }

    fn str(&mut self, key: &str, value: &str) {
        quote(self.key(key), value);
    }

    fn num(&mut self, key: &str, value: u64) {
        let _ = write!(self.key(key), "{value}");
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.key(key).push_str(if value { "true" } else { "false" });
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key).push_str(json);
    }

    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn candidate(c: &IceCandidate) -> String {
    let mut o = Obj(String::from("{"));
    o.str("candidate", &c.candidate);
    match &c.sdp_mid {
        Some(m) => o.str("sdpMid", m),
        None => o.raw("sdpMid", "null"),
    }
    match c.sdp_m_line_index {
        Some(i) => o.num("sdpMLineIndex", u64::from(i)),
        None => o.raw("sdpMLineIndex", "null"),
    }
    if let Some(u) = &c.username_fragment {
        o.str("usernameFragment", u);
    }
    o.end()
}

/// An `RTCIceServer[]` as JSON, for the browser's RTCConfiguration.
pub fn ice_servers_json(servers: &[IceServer]) -> String {
    let mut out = String::from("[");
    for (n, s) in servers.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let mut urls = String::from("[");
        for (k, u) in s.urls.iter().enumerate() {
            if k > 0 {
                urls.push(',');
            }
            quote(&mut urls, u);
        }
        urls.push(']');
        let mut o = Obj(String::from("{"));
        o.raw("urls", &urls);
        if let Some(u) = &s.username {
            o.str("username", u);
        }
        if let Some(c) = &s.credential {
            o.str("credential", c);
        }
        out.push_str(&o.end());
    }
    out.push(']');
    out
}

impl ClientMsg {
    /// The message as the relay reads it (what serde_json writes).
    pub fn to_json(&self) -> String {
        match self {
            ClientMsg::Join {
                room,
                name,
                role,
                token,
            } => {
                let mut o = Obj::new("join");
                o.str("room", &room.0);
                o.str("name", name);
                o.str(
                    "role",
                    match role {
                        Role::Broadcaster => "broadcaster",
                        Role::Watcher => "watcher",
                    },
                );
                if let Some(t) = token {
                    o.str("token", t);
                }
                o.end()
            }
            ClientMsg::BroadcastAvailable => Obj::new("broadcastAvailable").end(),
            ClientMsg::BroadcastEnded => Obj::new("broadcastEnded").end(),
            ClientMsg::GetBroadcast { to } => {
                let mut o = Obj::new("getBroadcast");
                o.str("to", &to.0);
                o.end()
            }
            ClientMsg::Offer { to, conn, sdp, sig } | ClientMsg::Answer { to, conn, sdp, sig } => {
                let event = if matches!(self, ClientMsg::Offer { .. }) {
                    "offer"
                } else {
                    "answer"
                };
                let mut o = Obj::new(event);
                o.str("to", &to.0);
                o.num("conn", *conn);
                o.str("sdp", sdp);
                if let Some(sig) = sig {
                    o.str("sig", sig);
                }
                o.end()
            }
            ClientMsg::IceOfferCandidate {
                to,
                conn,
                candidate: c,
            }
            | ClientMsg::IceAnswerCandidate {
                to,
                conn,
                candidate: c,
            } => {
                let event = if matches!(self, ClientMsg::IceOfferCandidate { .. }) {
                    "iceOfferCandidate"
                } else {
                    "iceAnswerCandidate"
                };
                let mut o = Obj::new(event);
                o.str("to", &to.0);
                o.num("conn", *conn);
                o.raw("candidate", &candidate(c));
                o.end()
            }
            ClientMsg::Chat { text } => {
                let mut o = Obj::new("chat");
                o.str("text", text);
                o.end()
            }
            ClientMsg::Hand { up } => {
                let mut o = Obj::new("hand");
                o.boolean("up", *up);
                o.end()
            }
            ClientMsg::ViewSize {
                to,
                conn,
                width,
                height,
            } => {
                let mut o = Obj::new("viewSize");
                o.str("to", &to.0);
                o.num("conn", *conn);
                o.num("width", u64::from(*width));
                o.num("height", u64::from(*height));
                o.end()
            }
            ClientMsg::MediaState {
                audio,
                video,
                screen,
            } => {
                let mut o = Obj::new("mediaState");
                o.boolean("audio", *audio);
                o.boolean("video", *video);
                if let Some(s) = screen {
                    o.str("screen", s);
                }
                o.end()
            }
        }
    }
}
