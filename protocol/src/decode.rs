//! A compact decoder for [`ServerMsg`], for the browser app.
//!
//! Serde's deserializers (and its derive for an internally tagged enum,
//! which buffers every field into a generic tree first) are about a tenth of
//! the browser app's wasm. The app reads only what the relay writes, so it
//! reads it with [`crate::json`] and builds the event by hand. It reads what
//! the derive reads (golden tests in `tests.rs` check every event both
//! ways); unknown fields are ignored by both; a field of the wrong type is
//! an error for both.

use crate::json::{self, Json};
use crate::{
    ChatEntry, ErrorCode, IceCandidate, IceServer, PeerId, PeerInfo, Role, RoomId, ServerMsg,
};

/// Why a server message could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON.
    Json(json::ParseError),
    UnknownEvent(String),
    /// A field is missing, or of the wrong type.
    Field(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Json(e) => write!(f, "not JSON at byte {}: {}", e.at, e.what),
            DecodeError::UnknownEvent(e) => write!(f, "unknown event \"{e}\""),
            DecodeError::Field(field) => write!(f, "missing or invalid field `{field}`"),
        }
    }
}

type R<T> = Result<T, DecodeError>;

/// The value of `key` in `obj`: `Ok(None)` if absent (or null, for optional
/// fields), an error if present with the wrong type.
fn opt<'a, T>(obj: &'a Json, key: &'static str, f: impl Fn(&'a Json) -> Option<T>) -> R<Option<T>> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => f(v).map(Some).ok_or(DecodeError::Field(key)),
    }
}

fn req<'a, T>(obj: &'a Json, key: &'static str, f: impl Fn(&'a Json) -> Option<T>) -> R<T> {
    obj.get(key).and_then(f).ok_or(DecodeError::Field(key))
}

fn string(v: &Json) -> Option<String> {
    match v {
        Json::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn boolean(v: &Json) -> Option<bool> {
    match v {
        Json::Bool(b) => Some(*b),
        _ => None,
    }
}

/// A whole number in 0..=max.
fn whole(v: &Json, max: u64) -> Option<u64> {
    match v {
        Json::Num(Some(n)) if *n <= max => Some(*n),
        _ => None,
    }
}

fn side(v: &Json) -> Option<u32> {
    whole(v, u64::from(u32::MAX)).map(|n| n as u32)
}

fn list<T>(v: &Json, f: impl Fn(&Json) -> Option<T>) -> Option<Vec<T>> {
    match v {
        Json::Arr(items) => items.iter().map(f).collect(),
        _ => None,
    }
}

fn peer_id(v: &Json) -> Option<PeerId> {
    string(v).map(PeerId)
}

fn peer_info(v: &Json) -> Option<PeerInfo> {
    let role = match v.get("role")? {
        Json::Str(r) if r == "broadcaster" => Role::Broadcaster,
        Json::Str(r) if r == "watcher" => Role::Watcher,
        _ => return None,
    };
    Some(PeerInfo {
        id: peer_id(v.get("id")?)?,
        name: string(v.get("name")?)?,
        role,
        broadcasting: boolean(v.get("broadcasting")?)?,
        hand: opt(v, "hand", |n| whole(n, u64::MAX)).ok()?,
    })
}

fn chat_entry(v: &Json) -> Option<ChatEntry> {
    Some(ChatEntry {
        from: peer_id(v.get("from")?)?,
        name: string(v.get("name")?)?,
        text: string(v.get("text")?)?,
        ts: whole(v.get("ts")?, u64::MAX)?,
    })
}

fn ice_server(v: &Json) -> Option<IceServer> {
    Some(IceServer {
        urls: list(v.get("urls")?, string)?,
        username: opt(v, "username", string).ok()?,
        credential: opt(v, "credential", string).ok()?,
    })
}

fn candidate(v: &Json) -> Option<IceCandidate> {
    Some(IceCandidate {
        candidate: string(v.get("candidate")?)?,
        sdp_mid: opt(v, "sdpMid", string).ok()?,
        sdp_m_line_index: opt(v, "sdpMLineIndex", |n| whole(n, u64::from(u16::MAX)))
            .ok()?
            .map(|n| n as u16),
        username_fragment: opt(v, "usernameFragment", string).ok()?,
    })
}

impl ServerMsg {
    /// Reads one relay -> client frame.
    pub fn from_json(text: &str) -> Result<Self, DecodeError> {
        let m = json::parse(text).map_err(DecodeError::Json)?;
        let from = || req(&m, "from", peer_id);
        // Absent means 0 (old clients); null is an error, as for the derive.
        let conn = || match m.get("conn") {
            None => Ok(0),
            Some(n) => whole(n, u64::MAX).ok_or(DecodeError::Field("conn")),
        };
        let sdp = || req(&m, "sdp", string);
        let cand = || req(&m, "candidate", candidate);
        let event = req(&m, "event", string)?;
        Ok(match event.as_str() {
            "welcome" => ServerMsg::Welcome {
                id: req(&m, "id", peer_id)?,
                room: req(&m, "room", |v| string(v).map(RoomId))?,
                peers: req(&m, "peers", |v| list(v, peer_info))?,
                ice_servers: req(&m, "iceServers", |v| list(v, ice_server))?,
                // Absent from older relays; null is an error, as for the derive.
                chat: match m.get("chat") {
                    None => Vec::new(),
                    Some(v) => list(v, chat_entry).ok_or(DecodeError::Field("chat"))?,
                },
            },
            "peerJoined" => ServerMsg::PeerJoined {
                peer: req(&m, "peer", peer_info)?,
            },
            "peerLeft" => ServerMsg::PeerLeft {
                id: req(&m, "id", peer_id)?,
            },
            "iceServers" => ServerMsg::IceServers {
                ice_servers: req(&m, "iceServers", |v| list(v, ice_server))?,
            },
            "broadcastAvailable" => ServerMsg::BroadcastAvailable { from: from()? },
            "broadcastEnded" => ServerMsg::BroadcastEnded { from: from()? },
            "getBroadcast" => ServerMsg::GetBroadcast { from: from()? },
            "offer" => ServerMsg::Offer {
                from: from()?,
                conn: conn()?,
                sdp: sdp()?,
                sig: opt(&m, "sig", string)?,
            },
            "answer" => ServerMsg::Answer {
                from: from()?,
                conn: conn()?,
                sdp: sdp()?,
                sig: opt(&m, "sig", string)?,
            },
            "iceOfferCandidate" => ServerMsg::IceOfferCandidate {
                from: from()?,
                conn: conn()?,
                candidate: cand()?,
            },
            "iceAnswerCandidate" => ServerMsg::IceAnswerCandidate {
                from: from()?,
                conn: conn()?,
                candidate: cand()?,
            },
            "mediaState" => ServerMsg::MediaState {
                from: from()?,
                audio: req(&m, "audio", boolean)?,
                video: req(&m, "video", boolean)?,
                screen: opt(&m, "screen", string)?,
            },
            "chat" => ServerMsg::Chat {
                from: from()?,
                text: req(&m, "text", string)?,
                ts: req(&m, "ts", |n| whole(n, u64::MAX))?,
            },
            "hand" => ServerMsg::Hand {
                from: from()?,
                up: req(&m, "up", boolean)?,
                ts: req(&m, "ts", |n| whole(n, u64::MAX))?,
            },
            "viewSize" => ServerMsg::ViewSize {
                from: from()?,
                conn: conn()?,
                width: req(&m, "width", side)?,
                height: req(&m, "height", side)?,
            },
            "error" => ServerMsg::Error {
                code: req(&m, "code", |v| {
                    let s = string(v)?;
                    ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
                })?,
                message: req(&m, "message", string)?,
            },
            other => return Err(DecodeError::UnknownEvent(other.to_owned())),
        })
    }
}
