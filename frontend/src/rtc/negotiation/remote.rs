//! What the negotiator knows of one remote peer: its roster entry, media
//! switches, both connections (number and health) and its healing state.

use super::ConnId;
use super::health::{ConnState, Health};
use protocol::PeerInfo;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Inbound {
    Idle,
    Requested { at_ms: f64 },
    Watching { conn: ConnId },
}

/// What the UI may show of a remote peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Remote {
    pub info: PeerInfo,
    pub audio: bool,
    pub video: bool,
    /// The stream id of the screen it shares (its `mediaState.screen`).
    pub screen: Option<String>,
    pub(super) inbound: Inbound,
    /// They watch me, on this connection.
    pub(super) outbound: Option<ConnId>,
    pub(super) in_health: Health,
    pub(super) out_health: Health,
    /// Missing from a reconnect's `welcome` since then (see [`REJOIN_GRACE_MS`]).
    pub(super) unconfirmed_since: Option<f64>,
    /// Its broadcast was lost for good; hidden until a new offer arrives.
    pub(super) lost: bool,
    /// My connection from it failed and none has connected since: its tile
    /// keeps saying why while the call retries.
    pub(super) unreachable: bool,
    /// Consecutive give-ups of my inbound connection, and when I may ask again.
    pub(super) give_ups: u32,
    pub(super) retry_at_ms: f64,
    /// My next (or current) connection from it gathers only TURN
    /// candidates: one with every candidate failed. `relay_tried`: that
    /// retry was made since the last connection that connected.
    pub(super) relay_next: bool,
    pub(super) relay_tried: bool,
}

impl Remote {
    pub(super) fn new(info: PeerInfo) -> Self {
        Self {
            info,
            audio: true,
            video: true,
            screen: None,
            inbound: Inbound::Idle,
            outbound: None,
            in_health: Health::default(),
            out_health: Health::default(),
            unconfirmed_since: None,
            lost: false,
            unreachable: false,
            give_ups: 0,
            retry_at_ms: 0.0,
            relay_next: false,
            relay_tried: false,
        }
    }

    /// My connection from it is the relay-only retry (the tile says so).
    pub fn relay_retry(&self) -> bool {
        self.relay_next
    }

    pub fn watching(&self) -> bool {
        matches!(self.inbound, Inbound::Watching { .. })
    }

    /// The live inbound connection's number.
    pub fn inbound_conn(&self) -> Option<ConnId> {
        match self.inbound {
            Inbound::Watching { conn } => Some(conn),
            _ => None,
        }
    }

    /// Whether the grid shows a tile for it.
    pub fn has_tile(&self) -> bool {
        (self.info.broadcasting || self.watching()) && !self.lost
    }

    /// My inbound connection from it is broken and being healed.
    pub fn healing(&self) -> bool {
        self.watching() && self.in_health.trouble_since.is_some()
    }

    /// An earlier connection from it failed and none has connected since.
    pub fn unreachable(&self) -> bool {
        self.unreachable
    }

    /// The inbound connection's last state.
    pub fn inbound_state(&self) -> ConnState {
        self.in_health.state
    }
}
