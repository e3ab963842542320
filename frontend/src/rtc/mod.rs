//! Everything WebRTC: media capture, peer connections, the negotiation
//! state machine and the call that drives them. The UI only sees
//! [`CallView`] (signals) and [`call::Call`] (commands).

pub mod bitrate;
pub mod call;
pub mod media;
pub mod negotiation;
pub mod path;
pub mod peer;

use leptos::prelude::*;
use web_sys::MediaStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Connecting,
    Connected,
    Reconnecting(u32),
    Unreachable(u32),
    /// The same participant opened the call elsewhere (close 4000).
    Replaced,
    RoomFull,
    Left,
}

impl Status {
    pub fn text(self) -> String {
        match self {
            Status::Connecting => "Connecting…".into(),
            Status::Connected => "Connected".into(),
            Status::Reconnecting(n) => format!("Reconnecting (attempt {n})…"),
            Status::Unreachable(n) => format!("Relay unreachable (attempt {n})…"),
            Status::Replaced => "Opened in another tab".into(),
            Status::RoomFull => "This room is full".into(),
            Status::Left => "You left the call".into(),
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Status::Connected => "ok",
            Status::Connecting | Status::Reconnecting(_) => "busy",
            Status::Unreachable(_) | Status::Replaced | Status::RoomFull => "bad",
            Status::Left => "idle",
        }
    }
}

/// One remote broadcaster as the grid shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct TileData {
    pub id: String,
    pub name: String,
    pub audio: bool,
    pub video: bool,
    /// The connection's `connectionState`, or "new" before there is one.
    pub state: String,
    pub stream: Option<MediaStream>,
    /// How media travels, once connected.
    pub path: Option<path::Path>,
    /// Why it cannot connect, in words, when that is known.
    pub problem: Option<String>,
}

/// What a call publishes for the UI.
#[derive(Clone, Copy, Debug)]
pub struct CallView {
    pub status: RwSignal<Status>,
    pub tiles: RwSignal<Vec<TileData>, LocalStorage>,
    pub my_id: RwSignal<Option<String>>,
    /// Other peers in the room, broadcasting or not.
    pub others: RwSignal<usize>,
    /// Open RTCPeerConnections.
    pub connections: RwSignal<usize>,
    /// Cameras in the room, mine included.
    pub cameras: RwSignal<usize>,
    /// The per-viewer video bitrate my senders are capped at (bit/s), or 0.
    pub sender_bitrate: RwSignal<u32>,
}

impl CallView {
    pub fn new() -> Self {
        Self {
            status: RwSignal::new(Status::Connecting),
            tiles: RwSignal::new_local(Vec::new()),
            my_id: RwSignal::new(None),
            others: RwSignal::new(0),
            connections: RwSignal::new(0),
            cameras: RwSignal::new(0),
            sender_bitrate: RwSignal::new(0),
        }
    }
}

impl Default for CallView {
    fn default() -> Self {
        Self::new()
    }
}
