//! The negotiation decisions, as a pure state machine (sans-IO): the roster,
//! which connections exist per remote peer and under which connection number
//! (`conn`), and each connection's health history.
//!
//! Per remote peer there are at most two connections: the one where *I
//! watch them* (inbound, they offer) and the one where *they watch me*
//! (outbound, I offer and number it). Inputs are relay messages and local
//! facts; outputs are [`Action`]s that `rtc::call` performs. Nothing here
//! touches the browser, so it is tested on the host.
//!
//! Invariants:
//! - the broadcaster is always the offerer (no glare): inbound connections
//!   are only ever created from an offer, outbound only from `getBroadcast`;
//! - every outbound connection gets a new `conn`, growing for this page's
//!   life; an offer with the `conn` of the current inbound connection is a
//!   renegotiation (an ICE restart, or a screen's tracks added or removed),
//!   a higher `conn` a new connection, a lower one stale; an answer or
//!   candidate naming another `conn` than the live one is stale and dropped;
//! - a viewer asks a broadcaster once (`getBroadcast`) and ignores further
//!   announcements while a request or a connection is in place;
//! - a connection in trouble heals in bounded steps: the broadcaster restarts
//!   ICE (at most [`MAX_ICE_RESTARTS`] times); if that does not help, or a
//!   new connection does not connect within [`CONNECT_TIMEOUT_MS`], the
//!   viewer drops it and asks again, with a growing pause after repeated
//!   give-ups; nothing retries forever without a pause;
//! - a reconnect does not drop peers at once: after a relay restart they
//!   rejoin one by one, so peers missing from `welcome` keep their (still
//!   flowing) connections for [`REJOIN_GRACE_MS`] or until those fail.

mod heal;
mod health;
mod local;
mod remote;

use health::Health;
pub use health::{CONNECT_TIMEOUT_MS, ConnState, DISCONNECTED_GRACE_MS};
use protocol::{ClientMsg, IceCandidate, PeerId, PeerInfo, ServerMsg};
use remote::Inbound;
pub use remote::Remote;

/// A broadcaster's number for one of its connections (the wire's `conn`).
pub type ConnId = u64;

/// A request not answered by an offer in this long may be sent again.
pub const REQUEST_RETRY_MS: f64 = 5_000.0;
/// ICE restarts the broadcaster tries on one connection before giving up.
pub const MAX_ICE_RESTARTS: u32 = 2;
/// How long one ICE restart gets to bring the connection back.
pub const ICE_RESTART_WAIT_MS: f64 = 6_000.0;
/// The viewer drops a broken connection and asks again after this long.
pub const INBOUND_GIVE_UP_MS: f64 = 3_000.0 + MAX_ICE_RESTARTS as f64 * ICE_RESTART_WAIT_MS;
/// Peers missing from a reconnect's `welcome` are kept this long.
pub const REJOIN_GRACE_MS: f64 = 15_000.0;
/// Longest pause before asking again after repeated give-ups.
pub const MAX_RETRY_PAUSE_MS: f64 = 30_000.0;

/// The pause before the `n`th consecutive re-request after a give-up:
/// none the first time, then 2 s, 4 s, ... up to [`MAX_RETRY_PAUSE_MS`].
pub fn retry_pause_ms(give_ups: u32) -> f64 {
    match give_ups {
        0 | 1 => 0.0,
        n => (1_000.0 * 2f64.powi(n.min(16) as i32 - 1)).min(MAX_RETRY_PAUSE_MS),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// I watch them: they offered, I answer.
    Inbound,
    /// They watch me: I offer, they answer.
    Outbound,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Send(ClientMsg),
    /// Open a send-only connection numbered `conn` to this viewer and offer.
    OpenSender {
        to: PeerId,
        conn: ConnId,
    },
    /// Open a receive-only connection with this offer and answer it
    /// (`relay_only`: gathering only TURN candidates, see `heal.rs`).
    OpenReceiver {
        from: PeerId,
        conn: ConnId,
        sdp: String,
        /// The offer's `sig` (checked before it is applied, in a verified room).
        sig: Option<String>,
        relay_only: bool,
    },
    /// Apply a new offer to the existing inbound connection and answer it.
    Renegotiate {
        from: PeerId,
        conn: ConnId,
        sdp: String,
        sig: Option<String>,
    },
    AcceptAnswer {
        from: PeerId,
        conn: ConnId,
        sdp: String,
        sig: Option<String>,
    },
    AddCandidate {
        dir: Dir,
        peer: PeerId,
        conn: ConnId,
        candidate: IceCandidate,
    },
    Close {
        dir: Dir,
        peer: PeerId,
    },
    /// Offer again on the existing outbound connection with `iceRestart`
    /// (with the newest ICE servers).
    RestartIce {
        to: PeerId,
        conn: ConnId,
    },
}

#[derive(Debug)]
pub struct Negotiator {
    me: Option<PeerId>,
    /// Remote peers in join order.
    peers: Vec<Remote>,
    /// My camera is ready and announced.
    broadcasting: bool,
    /// Viewers that asked before my camera was ready.
    pending_viewers: Vec<PeerId>,
    audio: bool,
    video: bool,
    /// The stream id of the screen I share.
    screen: Option<String>,
    /// My hand is up.
    hand: bool,
    /// This page was reloaded (it rejoins under an id the room may know).
    reloaded: bool,
    /// The number of my next outbound connection.
    next_conn: ConnId,
    /// A TURN server is set up (and the page is not relay-only already): a
    /// connection that fails is retried once through it alone.
    turn: bool,
}

impl Negotiator {
    /// `first_conn`: the number of this page's first outbound connection
    /// (the call derives it from the wall clock, so a reloaded page does not
    /// reuse its previous life's numbers).
    pub fn new(reloaded: bool, first_conn: ConnId) -> Self {
        Self {
            me: None,
            peers: Vec::new(),
            broadcasting: false,
            pending_viewers: Vec::new(),
            audio: true,
            video: true,
            screen: None,
            hand: false,
            reloaded,
            next_conn: first_conn.max(1),
            turn: false,
        }
    }

    /// Whether a failed connection may be retried relay-only (see [`Self::turn`]).
    pub fn set_turn(&mut self, turn: bool) {
        self.turn = turn;
    }

    pub fn me(&self) -> Option<&PeerId> {
        self.me.as_ref()
    }

    pub fn peers(&self) -> &[Remote] {
        &self.peers
    }

    pub fn is_broadcasting(&self) -> bool {
        self.broadcasting
    }

    /// The name a peer is known by.
    pub fn name(&self, id: &PeerId) -> Option<&str> {
        self.peers
            .iter()
            .find(|p| &p.info.id == id)
            .map(|p| p.info.name.as_str())
    }

    fn peer_mut(&mut self, id: &PeerId) -> Option<&mut Remote> {
        self.peers.iter_mut().find(|p| &p.info.id == id)
    }

    /// Adds a peer or updates what the relay says of a known one.
    fn upsert(&mut self, info: PeerInfo) {
        match self.peer_mut(&info.id) {
            Some(known) => {
                known.info = info;
                known.unconfirmed_since = None;
            }
            None => self.peers.push(Remote::new(info)),
        }
    }

    /// Viewers I currently send to.
    pub fn viewer_count(&self) -> usize {
        self.peers.iter().filter(|p| p.outbound.is_some()).count()
    }

    /// Whether `conn` is my live connection in `dir` with `peer`.
    pub fn is_live(&self, dir: Dir, peer: &PeerId, conn: ConnId) -> bool {
        self.peers.iter().any(|p| {
            &p.info.id == peer
                && match dir {
                    Dir::Inbound => p.inbound_conn() == Some(conn),
                    Dir::Outbound => p.outbound == Some(conn),
                }
        })
    }

    /// A relay message arrived; `now_ms` is a monotonic clock.
    pub fn on_server(&mut self, msg: ServerMsg, now_ms: f64) -> Vec<Action> {
        let mut out = Vec::new();
        match msg {
            ServerMsg::Welcome { id, peers, .. } => self.welcome(id, peers, now_ms, &mut out),
            ServerMsg::PeerJoined { peer } => {
                self.upsert(peer);
                if self.media_news() {
                    out.push(Action::Send(self.media_state()));
                }
            }
            ServerMsg::PeerLeft { id } => self.forget(&id, &mut out),
            ServerMsg::BroadcastAvailable { from } => {
                if let Some(p) = self.peer_mut(&from) {
                    p.info.broadcasting = true;
                }
                self.request(&from, now_ms, &mut out);
            }
            ServerMsg::BroadcastEnded { from } => {
                if let Some(p) = self.peer_mut(&from) {
                    p.info.broadcasting = false;
                    if p.inbound != Inbound::Idle {
                        p.inbound = Inbound::Idle;
                        out.push(Action::Close {
                            dir: Dir::Inbound,
                            peer: from,
                        });
                    }
                }
            }
            ServerMsg::GetBroadcast { from } => {
                if self.peer_mut(&from).is_none() {
                    return out;
                }
                if self.broadcasting {
                    self.open_sender(from, now_ms, &mut out);
                } else if !self.pending_viewers.contains(&from) {
                    self.pending_viewers.push(from);
                }
            }
            ServerMsg::Offer {
                from,
                conn,
                sdp,
                sig,
            } => self.offer(from, conn, (sdp, sig), now_ms, &mut out),
            ServerMsg::Answer {
                from,
                conn,
                sdp,
                sig,
            } => {
                if self.is_live(Dir::Outbound, &from, conn) {
                    out.push(Action::AcceptAnswer {
                        from,
                        conn,
                        sdp,
                        sig,
                    });
                }
            }
            ServerMsg::IceOfferCandidate {
                from,
                conn,
                candidate,
            } => {
                if self.is_live(Dir::Inbound, &from, conn) {
                    out.push(Action::AddCandidate {
                        dir: Dir::Inbound,
                        peer: from,
                        conn,
                        candidate,
                    });
                }
            }
            ServerMsg::IceAnswerCandidate {
                from,
                conn,
                candidate,
            } => {
                if self.is_live(Dir::Outbound, &from, conn) {
                    out.push(Action::AddCandidate {
                        dir: Dir::Outbound,
                        peer: from,
                        conn,
                        candidate,
                    });
                }
            }
            ServerMsg::MediaState {
                from,
                audio,
                video,
                screen,
            } => {
                if let Some(p) = self.peer_mut(&from) {
                    p.audio = audio;
                    p.video = video;
                    p.screen = screen;
                }
            }
            ServerMsg::Hand { from, up, ts } => {
                if let Some(p) = self.peer_mut(&from) {
                    p.info.hand = up.then_some(ts);
                }
            }
            ServerMsg::IceServers { .. }
            | ServerMsg::Error { .. }
            | ServerMsg::Chat { .. }
            | ServerMsg::ViewSize { .. } => {}
        }
        out
    }

    fn offer(
        &mut self,
        from: PeerId,
        conn: ConnId,
        (sdp, sig): (String, Option<String>),
        now_ms: f64,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.peer_mut(&from) else {
            return;
        };
        match p.inbound {
            // Same connection: a renegotiation (ICE restart, screen share).
            // Its trouble clock keeps running: only a new connection starts
            // healthy.
            Inbound::Watching { conn: live } if live == conn => {
                out.push(Action::Renegotiate {
                    from,
                    conn,
                    sdp,
                    sig,
                });
                return;
            }
            // Numbers only grow for the life of a broadcaster's page (and a
            // reloaded page starts above its old ones): an older `conn` is a
            // stale offer that arrived late.
            Inbound::Watching { conn: live } if conn < live => return,
            Inbound::Watching { .. } => out.push(Action::Close {
                dir: Dir::Inbound,
                peer: from.clone(),
            }),
            Inbound::Idle | Inbound::Requested { .. } => {}
        }
        p.in_health = Health::opened(now_ms);
        p.inbound = Inbound::Watching { conn };
        p.lost = false;
        let relay_only = p.relay_next;
        out.push(Action::OpenReceiver {
            from,
            conn,
            sdp,
            sig,
            relay_only,
        });
    }

    fn welcome(&mut self, id: PeerId, peers: Vec<PeerInfo>, now_ms: f64, out: &mut Vec<Action>) {
        let reconnect = self.me.replace(id).is_some();
        let reloaded = std::mem::take(&mut self.reloaded);
        if reloaded {
            // Whatever the room holds from my previous page is dead: say so,
            // so viewers drop it and ask again when I announce.
            out.push(Action::Send(ClientMsg::BroadcastEnded));
        }
        // The relay keeps a hand through a reconnect, and my previous page's
        // hand after a reload: say where mine is (a repeat changes nothing).
        if self.hand || reloaded {
            out.push(Action::Send(ClientMsg::Hand { up: self.hand }));
        }
        // Peers missing now: gone while we were away, or not yet back after
        // a relay restart. Keep those whose media still flows, for a while.
        let missing: Vec<PeerId> = self
            .peers
            .iter()
            .map(|p| p.info.id.clone())
            .filter(|id| !peers.iter().any(|n| &n.id == id))
            .collect();
        for id in missing {
            let flowing = self.peer_mut(&id).is_some_and(|p| {
                (p.watching() && p.in_health.connected())
                    || (p.outbound.is_some() && p.out_health.connected())
            });
            match self.peer_mut(&id) {
                Some(p) if reconnect && flowing => {
                    p.unconfirmed_since.get_or_insert(now_ms);
                }
                _ => self.forget(&id, out),
            }
        }
        for p in &mut self.peers {
            // Requests sent before a reconnect may have been lost with the socket.
            if matches!(p.inbound, Inbound::Requested { .. }) {
                p.inbound = Inbound::Idle;
            }
        }
        for info in peers {
            let id = info.id.clone();
            let broadcasting = info.broadcasting;
            self.upsert(info);
            if broadcasting {
                self.request(&id, now_ms, out);
            }
        }
        if self.broadcasting {
            out.push(Action::Send(ClientMsg::BroadcastAvailable));
        }
        if self.media_news() {
            out.push(Action::Send(self.media_state()));
        }
    }

    /// Asks `from` for its broadcast unless already watching, asked
    /// recently, or pausing after repeated give-ups.
    fn request(&mut self, from: &PeerId, now_ms: f64, out: &mut Vec<Action>) {
        if self.me.as_ref() == Some(from) {
            return;
        }
        let Some(p) = self.peer_mut(from) else { return };
        let ask = now_ms >= p.retry_at_ms
            && match p.inbound {
                Inbound::Idle => true,
                Inbound::Requested { at_ms } => now_ms - at_ms >= REQUEST_RETRY_MS,
                Inbound::Watching { .. } => false,
            };
        if ask {
            p.inbound = Inbound::Requested { at_ms: now_ms };
            out.push(Action::Send(ClientMsg::GetBroadcast { to: from.clone() }));
        }
    }

    fn open_sender(&mut self, to: PeerId, now_ms: f64, out: &mut Vec<Action>) {
        let conn = self.next_conn;
        let Some(p) = self.peer_mut(&to) else { return };
        if p.outbound.is_some() {
            // The viewer asked again: its side of the old connection is gone.
            out.push(Action::Close {
                dir: Dir::Outbound,
                peer: to.clone(),
            });
        }
        p.outbound = Some(conn);
        p.out_health = Health::opened(now_ms);
        self.next_conn += 1;
        out.push(Action::OpenSender { to, conn });
    }

    fn forget(&mut self, id: &PeerId, out: &mut Vec<Action>) {
        self.pending_viewers.retain(|v| v != id);
        if let Some(pos) = self.peers.iter().position(|p| &p.info.id == id) {
            let p = self.peers.remove(pos);
            if p.inbound != Inbound::Idle {
                out.push(Action::Close {
                    dir: Dir::Inbound,
                    peer: id.clone(),
                });
            }
            if p.outbound.is_some() {
                out.push(Action::Close {
                    dir: Dir::Outbound,
                    peer: id.clone(),
                });
            }
        }
    }

    /// My camera and microphone are ready: announce, and serve whoever asked.
    pub fn local_media_ready(&mut self, now_ms: f64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.broadcasting {
            return out;
        }
        self.broadcasting = true;
        if self.me.is_some() {
            out.push(Action::Send(ClientMsg::BroadcastAvailable));
        }
        for viewer in std::mem::take(&mut self.pending_viewers) {
            self.open_sender(viewer, now_ms, &mut out);
        }
        out
    }

    /// Viewers I send to, with the connection.
    pub fn outbound(&self) -> Vec<(PeerId, ConnId)> {
        self.peers
            .iter()
            .filter_map(|p| Some((p.info.id.clone(), p.outbound?)))
            .collect()
    }

    /// Ends my broadcast: tells the room and closes every outbound connection.
    pub fn stop_broadcast(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if std::mem::take(&mut self.broadcasting) && self.me.is_some() {
            out.push(Action::Send(ClientMsg::BroadcastEnded));
        }
        for p in &mut self.peers {
            if p.outbound.take().is_some() {
                out.push(Action::Close {
                    dir: Dir::Outbound,
                    peer: p.info.id.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
