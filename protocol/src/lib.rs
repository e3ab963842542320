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
//! | any | relay -> client | `iceServers` (fresh TURN credentials, before the old ones expire) |
//!
//! The broadcaster is always the offerer on its connections, so there is no
//! glare. Late joiners learn who broadcasts from `welcome.peers`; nobody polls.
//!
//! # Connection numbers
//!
//! `offer`, `answer`, `iceOfferCandidate` and `iceAnswerCandidate` carry
//! `"conn": <u64>`: the broadcaster's number for the connection, unique per
//! viewer connection for the life of the broadcaster's page. The viewer
//! echoes the offer's `conn` in its answer and candidates. Numbers grow for
//! the life of the page (a reloaded page starts above its old ones). A second
//! offer with the same `conn` renegotiates that connection (an ICE restart, or
//! a screen share's tracks added or removed); a higher `conn` is a new
//! connection, and anything naming another `conn` than the live one (an
//! offer: a lower one) is stale and dropped. The relay forwards `conn` untouched; it is optional on the wire
//! for old clients (absent = 0).
//!
//! # TURN credentials
//!
//! `welcome.iceServers` holds credentials valid for the relay's `--turn-ttl`.
//! At about half of that, and again every half TTL while the client stays
//! joined, the relay pushes `{"event":"iceServers","iceServers":[...]}` with
//! fresh ones; a client uses the newest list for every new connection and
//! before an ICE restart (`setConfiguration`). Before joining (the lobby's
//! network check), `GET /ice-servers` answers with the same `iceServers`
//! object, its credentials made for a fresh id.
//!
//! Events a client sends without `to` go to everyone else in its room; events
//! with `to` go only to that peer, and only if it is in the sender's room.
//! Every forwarded event arrives as sent, minus `to`, plus `"from"` stamped by
//! the relay (a `from` written by a client is ignored).
//!
//! # Verified rooms
//!
//! In a room whose link carries a room key (`#k=`, never sent to the relay;
//! see [`verify`]), every `offer` and `answer` carries `"sig"`, an HMAC
//! over the room, both peer ids, `conn` and the SDP's fingerprints and
//! ICE ufrag; a page with the key refuses a description whose `sig` is
//! missing or wrong before applying it. Display names and chat travel
//! sealed (`"e1.<base64url>"`, AES-GCM): the relay accepts a name or chat
//! text if it is valid plain text or has the sealed shape within the same
//! character limits ([`wire_name`], [`valid_chat`]), and stores and forwards
//! it untouched. `sig` is 1-64 chars of `[A-Za-z0-9_-]` ([`valid_sig`]);
//! anything else gets `badMessage`.
//!
//! # Chat
//!
//! `{"event":"chat","text":...}` goes to everyone else in the room as
//! `{"event":"chat","from":...,"text":...,"ts":...}` (`ts`: when the relay
//! passed it on, ms since the Unix epoch). Text is 1-2,000 characters
//! (Unicode scalar values); longer or blank gets `badMessage` and the socket
//! stays open. The relay keeps the room's last 50 messages in memory (and at
//! most 128 KiB of their text: a flood of long multi-byte messages keeps
//! fewer) for `welcome.chat`, oldest first, with each sender's name; they
//! are gone when the room empties. Text is data: clients never render it as
//! HTML.
//!
//! # Hands and view sizes
//!
//! `{"event":"hand","up":true}` raises my hand, `false` lowers it; the room
//! hears `{"event":"hand","from":...,"up":...,"ts":...}` (`ts`: when the relay
//! saw the change), and `welcome.peers[].hand` holds, for every hand that is
//! up, when it went up, so everyone shows hands in the order they were raised. A
//! repeat of the current state changes nothing and is not passed on; a
//! client repeats its state after every `welcome` (a reloaded page lowers a
//! hand it no longer shows).
//!
//! `{"event":"viewSize","to":...,"conn":...,"width":...,"height":...}` goes
//! from a viewer to one broadcaster: how many device pixels it shows that
//! broadcaster's camera in (0 x 0: not at all: a hidden tab, a tile off
//! screen), on every change (debounced). The broadcaster scales and caps
//! its video to that viewer accordingly and pauses it at 0 x 0. Sides are
//! at most [`MAX_VIEW_SIDE`]; more gets `badMessage`. It goes over the
//! relay, not a data channel: it works before media flows and needs no
//! SCTP association per connection, and it is a few small messages a minute.
//!
//! `mediaState` is meshcast's own addition: a participant tells the room
//! whether its microphone and camera are on, and repeats it when someone
//! joins, so tiles can show muted and camera-off badges. While it shares a
//! screen, `mediaState.screen` names the stream the screen travels in: the
//! broadcaster adds the screen's tracks to every viewer connection and
//! renegotiates it (same `conn`, still the offerer), and viewers show that
//! stream as a tile of its own.
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

/// WebSocket close codes.
///
/// The relay sends every close code it starts with a Close frame, after
/// whatever it had queued for the client, and keeps reading (and
/// discarding) until the client's Close or a short timeout (about 2 s), so
/// the code and whatever was sent before it reach the client. (After an
/// oversized frame the relay cannot read on; it keeps the socket open for
/// that timeout instead.)
///
/// A client that closes with [`NORMAL`] or [`LEAVING`] has left: the room
/// hears `peerLeft` at once. Any other end of a joined socket (a drop, a
/// timeout) keeps the member for the relay's `--leave-grace` (default
/// 10 s): it stays in `welcome.peers`, direct messages to it are held (a
/// bounded number) and delivered after its next `welcome`, and a rejoin with
/// the same token inside the grace takes the place back without `peerLeft`
/// or `peerJoined`.
pub mod close {
    /// The client leaves the call (client -> relay).
    pub const NORMAL: u16 = 1000;
    /// The client's page goes away (client -> relay), or the relay is
    /// shutting down or restarting (relay -> client; reconnect).
    pub const GOING_AWAY: u16 = 1001;
    /// Also a clean leave when a client sends it.
    pub const LEAVING: u16 = GOING_AWAY;
    /// Policy: sustained flooding, too many bad messages, too slow to read
    /// (queue over `--queue-len` messages or `--queue-bytes` bytes), or not
    /// joined to a room within the relay's `--join-timeout` (default 10 s).
    pub const POLICY: u16 = 1008;
    /// A frame or message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The relay is at its connection limit, or this client address has
    /// `--max-connections-per-ip` (default 64) sockets open; try again later
    /// (clients wait at least a second, and longer each time).
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Another connection joined with the same token and took this one's place.
    pub const REPLACED: u16 = 4000;
}

/// A peer's id inside a room, chosen by the relay: 32 hex characters (128
/// bits), derived from the join token when there is one (SHA-256: it
/// reveals nothing of the token), random otherwise.
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
    /// While its hand is raised: when the relay saw it go up (ms since the
    /// Unix epoch; hands are shown in this order). Absent when down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand: Option<u64>,
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

/// One message of a room's chat history (`welcome.chat`): who sent it
/// under which name, what, and when the relay passed it on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEntry {
    pub from: PeerId,
    pub name: String,
    pub text: String,
    pub ts: u64,
}

/// Longest chat message, in characters (Unicode scalar values, not bytes).
pub const MAX_CHAT_CHARS: usize = 2_000;
/// Chat messages a room keeps for late joiners (in memory; gone when the
/// room empties).
pub const CHAT_HISTORY: usize = 50;

/// Largest `viewSize` width or height (device pixels): an 8K screen.
pub const MAX_VIEW_SIDE: u32 = 8_192;

/// A `viewSize` both sides of which are at most [`MAX_VIEW_SIDE`].
pub fn valid_view_size(width: u32, height: u32) -> bool {
    width <= MAX_VIEW_SIDE && height <= MAX_VIEW_SIDE
}

/// A chat message: 1 to [`MAX_CHAT_CHARS`] characters, not only whitespace,
/// or such a message sealed by [`verify`] (a verified room).
pub fn valid_chat(text: &str) -> bool {
    valid_chat_text(text) || verify::is_sealed(text, MAX_CHAT_CHARS)
}

/// Chat as typed: 1 to [`MAX_CHAT_CHARS`] characters, not only whitespace.
pub fn valid_chat_text(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().count() <= MAX_CHAT_CHARS
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
        /// The broadcaster's connection number (see the module docs).
        #[serde(default)]
        conn: u64,
        sdp: String,
        /// In a verified room: the HMAC that binds this description's
        /// fingerprints to the room, both peers and `conn` (see [`verify`]);
        /// forwarded untouched. At most [`MAX_SIG_LEN`] chars of `[A-Za-z0-9_-]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sig: Option<String>,
    },
    Answer {
        to: PeerId,
        /// The broadcaster's connection number (see the module docs).
        #[serde(default)]
        conn: u64,
        sdp: String,
        /// In a verified room: the HMAC that binds this description's
        /// fingerprints to the room, both peers and `conn` (see [`verify`]);
        /// forwarded untouched. At most [`MAX_SIG_LEN`] chars of `[A-Za-z0-9_-]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sig: Option<String>,
    },
    IceOfferCandidate {
        to: PeerId,
        #[serde(default)]
        conn: u64,
        candidate: IceCandidate,
    },
    IceAnswerCandidate {
        to: PeerId,
        #[serde(default)]
        conn: u64,
        candidate: IceCandidate,
    },
    /// A chat message to everyone else in the room: 1 to [`MAX_CHAT_CHARS`]
    /// characters (see [`valid_chat`]).
    Chat {
        text: String,
    },
    /// My hand goes up or down (see the module docs).
    Hand {
        up: bool,
    },
    /// How large I show `to`'s camera, in device pixels (0 x 0: not shown
    /// at all), so it never sends me more (see the module docs).
    ViewSize {
        to: PeerId,
        #[serde(default)]
        conn: u64,
        width: u32,
        height: u32,
    },
    /// Microphone/camera on or off, and the screen being shared, to
    /// everyone else in the room.
    MediaState {
        audio: bool,
        video: bool,
        /// While sharing a screen: the `MediaStream` id (the SDP's msid) the
        /// screen's tracks travel in on every connection, so a viewer tells
        /// them from the camera's. Absent when not sharing. See
        /// [`valid_stream_id`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        screen: Option<String>,
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
        /// The room's recent chat, oldest first (at most [`CHAT_HISTORY`]).
        #[serde(default)]
        chat: Vec<ChatEntry>,
    },
    /// Someone joined; also sent when a peer that is already known rejoins
    /// under the same id with a different name or role (an update).
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        id: PeerId,
    },
    /// Fresh ICE servers (new TURN credentials), pushed before the previous
    /// ones expire. Use them for every new connection and ICE restart.
    IceServers {
        ice_servers: Vec<IceServer>,
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
        #[serde(default)]
        conn: u64,
        sdp: String,
        /// In a verified room: the HMAC that binds this description's
        /// fingerprints to the room, both peers and `conn` (see [`verify`]);
        /// forwarded untouched. At most [`MAX_SIG_LEN`] chars of `[A-Za-z0-9_-]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sig: Option<String>,
    },
    Answer {
        from: PeerId,
        #[serde(default)]
        conn: u64,
        sdp: String,
        /// In a verified room: the HMAC that binds this description's
        /// fingerprints to the room, both peers and `conn` (see [`verify`]);
        /// forwarded untouched. At most [`MAX_SIG_LEN`] chars of `[A-Za-z0-9_-]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sig: Option<String>,
    },
    IceOfferCandidate {
        from: PeerId,
        #[serde(default)]
        conn: u64,
        candidate: IceCandidate,
    },
    IceAnswerCandidate {
        from: PeerId,
        #[serde(default)]
        conn: u64,
        candidate: IceCandidate,
    },
    MediaState {
        from: PeerId,
        audio: bool,
        video: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        screen: Option<String>,
    },
    /// A chat message, stamped by the relay with its sender and the time it
    /// passed through (`ts`, ms since the Unix epoch).
    Chat {
        from: PeerId,
        text: String,
        ts: u64,
    },
    /// A hand went up or down (`ts`: when, on the relay's clock).
    Hand {
        from: PeerId,
        up: bool,
        ts: u64,
    },
    /// How large a viewer shows my camera (device pixels; 0 x 0: not shown).
    ViewSize {
        from: PeerId,
        #[serde(default)]
        conn: u64,
        width: u32,
        height: u32,
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

/// Where the relay sends a client message, already stamped with its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `join`: handled by the relay, never forwarded.
    Join {
        room: RoomId,
        name: String,
        role: Role,
        token: Option<String>,
    },
    /// To everyone else in the sender's room.
    Room(ServerMsg),
    /// To one peer, if it is in the sender's room.
    Peer(PeerId, ServerMsg),
}

impl ClientMsg {
    /// The one place that says where each event goes: `to` dropped, `from`
    /// stamped, everything else (such as `conn`) passed through. A new
    /// event is one new arm here.
    pub fn route(self, from: PeerId) -> Route {
        match self {
            ClientMsg::Join {
                room,
                name,
                role,
                token,
            } => Route::Join {
                room,
                name,
                role,
                token,
            },
            ClientMsg::BroadcastAvailable => Route::Room(ServerMsg::BroadcastAvailable { from }),
            ClientMsg::BroadcastEnded => Route::Room(ServerMsg::BroadcastEnded { from }),
            ClientMsg::MediaState {
                audio,
                video,
                screen,
            } => Route::Room(ServerMsg::MediaState {
                from,
                audio,
                video,
                screen,
            }),
            ClientMsg::GetBroadcast { to } => Route::Peer(to, ServerMsg::GetBroadcast { from }),
            // `ts` is the relay's to stamp when it passes the message on.
            ClientMsg::Chat { text } => Route::Room(ServerMsg::Chat { from, text, ts: 0 }),
            ClientMsg::Hand { up } => Route::Room(ServerMsg::Hand { from, up, ts: 0 }),
            ClientMsg::ViewSize {
                to,
                conn,
                width,
                height,
            } => Route::Peer(
                to,
                ServerMsg::ViewSize {
                    from,
                    conn,
                    width,
                    height,
                },
            ),
            ClientMsg::Offer { to, conn, sdp, sig } => Route::Peer(
                to,
                ServerMsg::Offer {
                    from,
                    conn,
                    sdp,
                    sig,
                },
            ),
            ClientMsg::Answer { to, conn, sdp, sig } => Route::Peer(
                to,
                ServerMsg::Answer {
                    from,
                    conn,
                    sdp,
                    sig,
                },
            ),
            ClientMsg::IceOfferCandidate {
                to,
                conn,
                candidate,
            } => Route::Peer(
                to,
                ServerMsg::IceOfferCandidate {
                    from,
                    conn,
                    candidate,
                },
            ),
            ClientMsg::IceAnswerCandidate {
                to,
                conn,
                candidate,
            } => Route::Peer(
                to,
                ServerMsg::IceAnswerCandidate {
                    from,
                    conn,
                    candidate,
                },
            ),
        }
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// 1-64 chars of `[A-Za-z0-9_-]`.
pub fn valid_room(room: &str) -> bool {
    (1..=MAX_ROOM_LEN).contains(&room.len()) && room.chars().all(is_id_char)
}

/// Longest `mediaState.screen` (browsers use 36-char UUIDs, some wrap them in `{}`).
pub const MAX_STREAM_ID_LEN: usize = 64;

/// A `MediaStream` id as `mediaState.screen` carries it: 1-64 chars of
/// `[A-Za-z0-9_{}-]`.
pub fn valid_stream_id(id: &str) -> bool {
    (1..=MAX_STREAM_ID_LEN).contains(&id.len())
        && id.chars().all(|c| is_id_char(c) || c == '{' || c == '}')
}

/// The display name as the room will see it: trimmed, 1-64 chars, no
/// control characters. `None` if it does not qualify.
pub fn clean_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let chars = name.chars().count();
    ((1..=MAX_NAME_LEN).contains(&chars) && !name.chars().any(char::is_control)).then_some(name)
}

/// Longest `sig` on an offer or answer (an HMAC-SHA-256 in base64url is 43).
pub const MAX_SIG_LEN: usize = 64;

/// A `sig`: 1-64 chars of `[A-Za-z0-9_-]`.
pub fn valid_sig(sig: &str) -> bool {
    (1..=MAX_SIG_LEN).contains(&sig.len()) && sig.chars().all(is_id_char)
}

/// A display name as the relay accepts it: a plain one (see [`clean_name`],
/// trimmed) or, in a verified room, one sealed by [`verify`] (untouched).
pub fn wire_name(name: &str) -> Option<&str> {
    clean_name(name).or_else(|| verify::is_sealed(name, MAX_NAME_LEN).then_some(name))
}

/// 32-128 chars of `[A-Za-z0-9_-]`.
pub fn valid_token(token: &str) -> bool {
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) && token.chars().all(is_id_char)
}

pub mod base64url;
mod decode;
pub mod encode;
pub mod json;
pub mod verify;
pub use decode::DecodeError;

#[cfg(test)]
mod tests;
