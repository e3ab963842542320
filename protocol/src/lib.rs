//! meshcast's wire vocabulary: every message the app and the relay exchange.
//!
//! One WebSocket at `GET /ws`, one JSON object per text frame, tagged by
//! `"event"` with camelCase names. The relay never parses SDP or candidates;
//! it validates the envelope, stamps `from` and routes inside one room.
//!
//! # The flow (the seed's broadcast/watch flow)
//!
//! | step | who -> whom | event |
//! |---|---|---|
//! | 0 | client -> relay | [`ClientMsg::Join`], answered by [`ServerMsg::Welcome`] (peers already there, ICE servers) |
//! | 1 | broadcaster -> room | `broadcastAvailable` |
//! | 2 | viewer -> broadcaster | `getBroadcast` (only if not already watching it) |
//! | 3 | broadcaster -> viewer | `offer` (one send-only connection per viewer) |
//! | 4 | broadcaster -> viewer | `iceOfferCandidate` (trickled) |
//! | 5 | viewer -> broadcaster | `answer` |
//! | 6 | viewer -> broadcaster | `iceAnswerCandidate` (trickled) |
//!
//! The broadcaster is always the offerer on its connections, so there is no
//! glare. Late joiners learn who broadcasts from `welcome.peers`; nobody polls.
//!
//! Events a client sends without `to` go to everyone else in its room; events
//! with `to` go only to that peer, and only if it is in the sender's room.
//! Every forwarded event arrives as sent, minus `to`, plus `"from"` stamped by
//! the relay (a `from` written by a client is ignored).
//!
//! `mediaState` is meshcast's own addition: a participant tells the room
//! whether its microphone and camera are on, and repeats it when someone
//! joins, so tiles can show muted and camera-off badges.
//!
//! Errors come back as `{"event":"error","code":..,"message":..}`; the socket
//! stays open unless a limit closes it (see [`close`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest room id, name (after trimming, in chars) and token.
pub const MAX_ROOM_LEN: usize = 64;
pub const MAX_NAME_LEN: usize = 64;
pub const MIN_TOKEN_LEN: usize = 32;
pub const MAX_TOKEN_LEN: usize = 128;

/// WebSocket close codes the relay uses.
pub mod close {
    /// The relay is shutting down or restarting; reconnect.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy: sustained flooding, too many bad messages, or too slow to read.
    pub const POLICY: u16 = 1008;
    /// A frame or message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The relay is at its connection limit; try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Another connection joined with the same token and took this one's place.
    pub const REPLACED: u16 = 4000;
}

/// A peer's id inside a room, chosen by the relay.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub String);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PeerId {
    fn from(s: &str) -> Self {
        PeerId(s.to_owned())
    }
}

/// A room name: 1-64 chars of `[A-Za-z0-9_-]` (see [`valid_room`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(pub String);

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Has a camera (the `/` page): announces itself and watches the others.
    Broadcaster,
    /// Only watches (the `/watch` page).
    Watcher,
}

/// What the room knows about one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: String,
    pub role: Role,
    /// True between its `broadcastAvailable` and `broadcastEnded`.
    pub broadcasting: bool,
}

/// An RTCIceCandidateInit, passed through untouched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default)]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// An RTCIceServer as the browser's RTCPeerConnection constructor takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Client -> relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientMsg {
    /// Must come first. With a `token` the peer id is derived from it, so a
    /// reconnect keeps its id and replaces the older connection.
    Join {
        room: RoomId,
        name: String,
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    BroadcastAvailable,
    BroadcastEnded,
    GetBroadcast {
        to: PeerId,
    },
    Offer {
        to: PeerId,
        sdp: String,
    },
    Answer {
        to: PeerId,
        sdp: String,
    },
    IceOfferCandidate {
        to: PeerId,
        candidate: IceCandidate,
    },
    IceAnswerCandidate {
        to: PeerId,
        candidate: IceCandidate,
    },
    /// Microphone/camera on or off, to everyone else in the room.
    MediaState {
        audio: bool,
        video: bool,
    },
}

/// Relay -> client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMsg {
    Welcome {
        id: PeerId,
        room: RoomId,
        /// Everyone else in the room, in join order.
        peers: Vec<PeerInfo>,
        ice_servers: Vec<IceServer>,
    },
    /// Someone joined; also sent when a peer that is already known rejoins
    /// under the same id with a different name or role (an update).
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        id: PeerId,
    },
    BroadcastAvailable {
        from: PeerId,
    },
    BroadcastEnded {
        from: PeerId,
    },
    GetBroadcast {
        from: PeerId,
    },
    Offer {
        from: PeerId,
        sdp: String,
    },
    Answer {
        from: PeerId,
        sdp: String,
    },
    IceOfferCandidate {
        from: PeerId,
        candidate: IceCandidate,
    },
    IceAnswerCandidate {
        from: PeerId,
        candidate: IceCandidate,
    },
    MediaState {
        from: PeerId,
        audio: bool,
        video: bool,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// Not JSON, an unknown event, or a missing or invalid field.
    BadMessage,
    /// Anything but `join` before a `join`.
    NotJoined,
    /// A second `join` on the same connection.
    AlreadyJoined,
    /// `to` names no peer in the sender's room.
    UnknownPeer,
    RoomFull,
    RateLimited,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::BadMessage,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::UnknownPeer,
        ErrorCode::RoomFull,
        ErrorCode::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "badMessage",
            ErrorCode::NotJoined => "notJoined",
            ErrorCode::AlreadyJoined => "alreadyJoined",
            ErrorCode::UnknownPeer => "unknownPeer",
            ErrorCode::RoomFull => "roomFull",
            ErrorCode::RateLimited => "rateLimited",
        }
    }
}

impl ClientMsg {
    /// The addressee of a direct event, or `None` for room-wide ones.
    pub fn to(&self) -> Option<&PeerId> {
        match self {
            ClientMsg::GetBroadcast { to }
            | ClientMsg::Offer { to, .. }
            | ClientMsg::Answer { to, .. }
            | ClientMsg::IceOfferCandidate { to, .. }
            | ClientMsg::IceAnswerCandidate { to, .. } => Some(to),
            ClientMsg::Join { .. }
            | ClientMsg::BroadcastAvailable
            | ClientMsg::BroadcastEnded
            | ClientMsg::MediaState { .. } => None,
        }
    }

    /// The event as the relay forwards it: `to` dropped, `from` stamped.
    /// `None` for `join`, which is never forwarded.
    pub fn forwarded(self, from: PeerId) -> Option<ServerMsg> {
        Some(match self {
            ClientMsg::Join { .. } => return None,
            ClientMsg::BroadcastAvailable => ServerMsg::BroadcastAvailable { from },
            ClientMsg::BroadcastEnded => ServerMsg::BroadcastEnded { from },
            ClientMsg::GetBroadcast { .. } => ServerMsg::GetBroadcast { from },
            ClientMsg::Offer { sdp, .. } => ServerMsg::Offer { from, sdp },
            ClientMsg::Answer { sdp, .. } => ServerMsg::Answer { from, sdp },
            ClientMsg::IceOfferCandidate { candidate, .. } => {
                ServerMsg::IceOfferCandidate { from, candidate }
            }
            ClientMsg::IceAnswerCandidate { candidate, .. } => {
                ServerMsg::IceAnswerCandidate { from, candidate }
            }
            ClientMsg::MediaState { audio, video } => ServerMsg::MediaState { from, audio, video },
        })
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// 1-64 chars of `[A-Za-z0-9_-]`.
pub fn valid_room(room: &str) -> bool {
    (1..=MAX_ROOM_LEN).contains(&room.len()) && room.chars().all(is_id_char)
}

/// The display name as the room will see it: trimmed, 1-64 chars, no
/// control characters. `None` if it does not qualify.
pub fn clean_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let chars = name.chars().count();
    ((1..=MAX_NAME_LEN).contains(&chars) && !name.chars().any(char::is_control)).then_some(name)
}

/// 32-128 chars of `[A-Za-z0-9_-]`.
pub fn valid_token(token: &str) -> bool {
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) && token.chars().all(is_id_char)
}

#[cfg(test)]
mod tests;
