//! The negotiation decisions, as a pure state machine (sans-IO).
//!
//! It owns the roster and, per remote peer, which connections exist: the
//! one where *I watch them* (inbound, they offer) and the one where *they
//! watch me* (outbound, I offer). Inputs are relay messages and local
//! facts; outputs are [`Action`]s that the web-sys layer (`rtc::call`)
//! performs. Nothing here touches the browser, so it is tested on the host.
//!
//! Invariants:
//! - the broadcaster is always the offerer (no glare): inbound connections
//!   are only ever created from an offer, outbound only from `getBroadcast`;
//! - a viewer asks a broadcaster once (`getBroadcast`) and ignores further
//!   announcements while a request or a connection is in place;
//! - an offer with the SDP session id of the current inbound connection is a
//!   renegotiation of it (e.g. an ICE restart); any other offer replaces it;
//! - a connection in trouble heals in bounded steps: the broadcaster restarts
//!   ICE (at most [`MAX_ICE_RESTARTS`] times), and if that does not help the
//!   viewer drops it and asks again; nothing retries forever without a pause;
//! - a reconnect does not drop peers at once: after a relay restart they
//!   rejoin one by one, so peers missing from `welcome` keep their (still
//!   flowing) connections for [`REJOIN_GRACE_MS`] or until those fail.

use protocol::{ClientMsg, IceCandidate, PeerId, PeerInfo, ServerMsg};

/// A request not answered by an offer in this long may be sent again.
pub const REQUEST_RETRY_MS: f64 = 5_000.0;
/// A connection `disconnected` this long counts as broken (`failed` at once).
pub const DISCONNECTED_GRACE_MS: f64 = 3_000.0;
/// ICE restarts the broadcaster tries on one connection before giving up.
pub const MAX_ICE_RESTARTS: u32 = 2;
/// How long one ICE restart gets to bring the connection back.
pub const ICE_RESTART_WAIT_MS: f64 = 6_000.0;
/// The viewer drops a broken connection and asks again after this long.
pub const INBOUND_GIVE_UP_MS: f64 = 3_000.0 + MAX_ICE_RESTARTS as f64 * ICE_RESTART_WAIT_MS;
/// Peers missing from a reconnect's `welcome` are kept this long.
pub const REJOIN_GRACE_MS: f64 = 15_000.0;

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
    /// Open a send-only connection to this viewer and offer.
    OpenSender(PeerId),
    /// Open a receive-only connection with this offer and answer it.
    OpenReceiver {
        from: PeerId,
        sdp: String,
    },
    /// Apply a new offer to the existing inbound connection and answer it.
    Renegotiate {
        from: PeerId,
        sdp: String,
    },
    AcceptAnswer {
        from: PeerId,
        sdp: String,
    },
    AddCandidate {
        dir: Dir,
        peer: PeerId,
        candidate: IceCandidate,
    },
    Close {
        dir: Dir,
        peer: PeerId,
    },
    /// Offer again on the existing outbound connection with `iceRestart`.
    RestartIce(PeerId),
}

/// How one connection is doing, for the healing decisions.
#[derive(Clone, Debug, Default, PartialEq)]
struct Health {
    /// Its last `connectionState` was "connected".
    connected: bool,
    /// It has been connected at least once (a fresh connection that fails
    /// is replaced at once: there is nothing to restart).
    ever_connected: bool,
    /// When it stopped being connected (`None` while healthy).
    trouble_since: Option<f64>,
    failed: bool,
    restarts: u32,
    last_restart: f64,
}

impl Health {
    fn update(&mut self, state: &str, now_ms: f64) {
        match state {
            "connected" => {
                *self = Health {
                    connected: true,
                    ever_connected: true,
                    ..Health::default()
                }
            }
            "disconnected" | "failed" => {
                self.connected = false;
                self.trouble_since.get_or_insert(now_ms);
                self.failed |= state == "failed";
            }
            _ => self.connected = false,
        }
    }

    fn broken(&self, now_ms: f64) -> bool {
        self.trouble_since
            .is_some_and(|t| self.failed || now_ms - t >= DISCONNECTED_GRACE_MS)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Inbound {
    Idle,
    Requested { at_ms: f64 },
    Watching { session: Option<String> },
}

/// What the UI may show of a remote peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Remote {
    pub info: PeerInfo,
    pub audio: bool,
    pub video: bool,
    inbound: Inbound,
    /// They watch me.
    outbound: bool,
    in_health: Health,
    out_health: Health,
    /// Missing from a reconnect's `welcome` since then (see [`REJOIN_GRACE_MS`]).
    unconfirmed_since: Option<f64>,
    /// Its broadcast was lost for good; hidden until a new offer arrives.
    lost: bool,
}

impl Remote {
    fn new(info: PeerInfo) -> Self {
        Self {
            info,
            audio: true,
            video: true,
            inbound: Inbound::Idle,
            outbound: false,
            in_health: Health::default(),
            out_health: Health::default(),
            unconfirmed_since: None,
            lost: false,
        }
    }

    pub fn watching(&self) -> bool {
        matches!(self.inbound, Inbound::Watching { .. })
    }

    /// Whether the grid shows a tile for it.
    pub fn has_tile(&self) -> bool {
        (self.info.broadcasting || self.watching()) && !self.lost
    }

    /// My inbound connection from it is broken and being healed.
    pub fn healing(&self) -> bool {
        self.watching() && self.in_health.trouble_since.is_some()
    }
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
    /// This page was reloaded (it rejoins under an id the room may know).
    reloaded: bool,
}

impl Negotiator {
    pub fn new(reloaded: bool) -> Self {
        Self {
            me: None,
            peers: Vec::new(),
            broadcasting: false,
            pending_viewers: Vec::new(),
            audio: true,
            video: true,
            reloaded,
        }
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
        self.peers.iter().filter(|p| p.outbound).count()
    }

    fn media_state(&self) -> ClientMsg {
        ClientMsg::MediaState {
            audio: self.audio,
            video: self.video,
        }
    }

    /// A relay message arrived; `now_ms` is a monotonic clock.
    pub fn on_server(&mut self, msg: ServerMsg, now_ms: f64) -> Vec<Action> {
        let mut out = Vec::new();
        match msg {
            ServerMsg::Welcome { id, peers, .. } => self.welcome(id, peers, now_ms, &mut out),
            ServerMsg::PeerJoined { peer } => {
                self.upsert(peer);
                if !self.audio || !self.video {
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
                    self.open_sender(from, &mut out);
                } else if !self.pending_viewers.contains(&from) {
                    self.pending_viewers.push(from);
                }
            }
            ServerMsg::Offer { from, sdp } => {
                let session = sdp_session_id(&sdp).map(str::to_owned);
                let Some(p) = self.peer_mut(&from) else {
                    return out;
                };
                match &p.inbound {
                    Inbound::Watching { session: current }
                        if current.is_some() && *current == session =>
                    {
                        out.push(Action::Renegotiate { from, sdp });
                    }
                    Inbound::Watching { .. } => {
                        out.push(Action::Close {
                            dir: Dir::Inbound,
                            peer: from.clone(),
                        });
                        out.push(Action::OpenReceiver { from, sdp });
                    }
                    Inbound::Idle | Inbound::Requested { .. } => {
                        out.push(Action::OpenReceiver { from, sdp })
                    }
                }
                // A renegotiation (ICE restart) keeps the trouble clock running:
                // only a new connection starts healthy.
                if !matches!(&p.inbound, Inbound::Watching { session: current } if current.is_some() && *current == session)
                {
                    p.in_health = Health::default();
                }
                p.inbound = Inbound::Watching { session };
                p.lost = false;
            }
            ServerMsg::Answer { from, sdp } => {
                if self.peer_mut(&from).is_some_and(|p| p.outbound) {
                    out.push(Action::AcceptAnswer { from, sdp });
                }
            }
            ServerMsg::IceOfferCandidate { from, candidate } => {
                if self.peer_mut(&from).is_some_and(|p| p.watching()) {
                    out.push(Action::AddCandidate {
                        dir: Dir::Inbound,
                        peer: from,
                        candidate,
                    });
                }
            }
            ServerMsg::IceAnswerCandidate { from, candidate } => {
                if self.peer_mut(&from).is_some_and(|p| p.outbound) {
                    out.push(Action::AddCandidate {
                        dir: Dir::Outbound,
                        peer: from,
                        candidate,
                    });
                }
            }
            ServerMsg::MediaState { from, audio, video } => {
                if let Some(p) = self.peer_mut(&from) {
                    p.audio = audio;
                    p.video = video;
                }
            }
            ServerMsg::Error { .. } => {}
        }
        out
    }

    fn welcome(&mut self, id: PeerId, peers: Vec<PeerInfo>, now_ms: f64, out: &mut Vec<Action>) {
        let reconnect = self.me.replace(id).is_some();
        if std::mem::take(&mut self.reloaded) {
            // Whatever the room holds from my previous page is dead: say so,
            // so viewers drop it and ask again when I announce.
            out.push(Action::Send(ClientMsg::BroadcastEnded));
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
                let live = |on: bool, h: &Health| on && h.connected;
                live(p.watching(), &p.in_health) || live(p.outbound, &p.out_health)
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
        if !self.audio || !self.video {
            out.push(Action::Send(self.media_state()));
        }
    }

    /// Asks `from` for its broadcast unless already watching or asked recently.
    fn request(&mut self, from: &PeerId, now_ms: f64, out: &mut Vec<Action>) {
        if self.me.as_ref() == Some(from) {
            return;
        }
        let Some(p) = self.peer_mut(from) else { return };
        let ask = match p.inbound {
            Inbound::Idle => true,
            Inbound::Requested { at_ms } => now_ms - at_ms >= REQUEST_RETRY_MS,
            Inbound::Watching { .. } => false,
        };
        if ask {
            p.inbound = Inbound::Requested { at_ms: now_ms };
            out.push(Action::Send(ClientMsg::GetBroadcast { to: from.clone() }));
        }
    }

    fn open_sender(&mut self, to: PeerId, out: &mut Vec<Action>) {
        let Some(p) = self.peer_mut(&to) else { return };
        if p.outbound {
            // The viewer asked again: its side of the old connection is gone.
            out.push(Action::Close {
                dir: Dir::Outbound,
                peer: to.clone(),
            });
        }
        p.outbound = true;
        out.push(Action::OpenSender(to));
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
            if p.outbound {
                out.push(Action::Close {
                    dir: Dir::Outbound,
                    peer: id.clone(),
                });
            }
        }
    }

    /// Periodic: repeats requests that got no offer in time.
    pub fn tick(&mut self, now_ms: f64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.me.is_none() {
            return out;
        }
        let ids: Vec<PeerId> = self.peers.iter().map(|p| p.info.id.clone()).collect();
        for id in ids {
            self.heal(&id, now_ms, &mut out);
        }
        out
    }

    /// `connectionState` of one of my connections changed.
    pub fn connection_state(
        &mut self,
        dir: Dir,
        peer: &PeerId,
        state: &str,
        now_ms: f64,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(p) = self.peer_mut(peer) {
            match dir {
                Dir::Inbound => p.in_health.update(state, now_ms),
                Dir::Outbound => p.out_health.update(state, now_ms),
            }
            self.heal(peer, now_ms, &mut out);
        }
        out
    }

    /// Every bounded healing step for one peer that is due at `now_ms`.
    fn heal(&mut self, id: &PeerId, now_ms: f64, out: &mut Vec<Action>) {
        let Some(p) = self.peer_mut(id) else { return };
        // Not back after a relay restart, and its media stopped (or the
        // grace ran out): it is gone.
        if let Some(since) = p.unconfirmed_since {
            let stalled = p.in_health.broken(now_ms) || p.out_health.broken(now_ms);
            if stalled || now_ms - since >= REJOIN_GRACE_MS {
                self.forget(id, out);
                return;
            }
        }
        // Broadcaster side: restart ICE, a bounded number of times.
        if p.outbound && p.out_health.broken(now_ms) {
            let h = &mut p.out_health;
            let waited = h.restarts == 0 || now_ms - h.last_restart >= ICE_RESTART_WAIT_MS;
            let stillborn = h.failed && !h.ever_connected;
            if waited && h.restarts < MAX_ICE_RESTARTS && !stillborn {
                h.restarts += 1;
                h.last_restart = now_ms;
                out.push(Action::RestartIce(id.clone()));
            } else if waited {
                // Give up; the viewer asks again when it can.
                p.outbound = false;
                p.out_health = Health::default();
                out.push(Action::Close {
                    dir: Dir::Outbound,
                    peer: id.clone(),
                });
            }
        }
        // Viewer side: wait for the broadcaster's restarts, then start over.
        let stillborn = p.in_health.failed && !p.in_health.ever_connected;
        let given_up = p
            .in_health
            .trouble_since
            .is_some_and(|t| stillborn || now_ms - t >= INBOUND_GIVE_UP_MS);
        if p.watching() && given_up {
            p.inbound = Inbound::Idle;
            p.in_health = Health::default();
            p.lost = true;
            out.push(Action::Close {
                dir: Dir::Inbound,
                peer: id.clone(),
            });
        }
        if p.info.broadcasting && matches!(p.inbound, Inbound::Idle | Inbound::Requested { .. }) {
            let id = id.clone();
            self.request(&id, now_ms, out);
        }
    }

    /// My camera and microphone are ready: announce, and serve whoever asked.
    pub fn local_media_ready(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.broadcasting {
            return out;
        }
        self.broadcasting = true;
        if self.me.is_some() {
            out.push(Action::Send(ClientMsg::BroadcastAvailable));
        }
        for viewer in std::mem::take(&mut self.pending_viewers) {
            self.open_sender(viewer, &mut out);
        }
        out
    }

    /// My microphone or camera was switched.
    pub fn set_local_media(&mut self, audio: bool, video: bool) -> Vec<Action> {
        self.audio = audio;
        self.video = video;
        match self.me {
            Some(_) => vec![Action::Send(self.media_state())],
            None => Vec::new(),
        }
    }

    /// Ends my broadcast: tells the room and closes every outbound connection.
    pub fn stop_broadcast(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if std::mem::take(&mut self.broadcasting) && self.me.is_some() {
            out.push(Action::Send(ClientMsg::BroadcastEnded));
        }
        for p in &mut self.peers {
            if std::mem::take(&mut p.outbound) {
                out.push(Action::Close {
                    dir: Dir::Outbound,
                    peer: p.info.id.clone(),
                });
            }
        }
        out
    }
}

/// The session id of an SDP's `o=` line (RFC 4566): the same for every
/// offer of one RTCPeerConnection, different between connections.
pub fn sdp_session_id(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("o="))
        .and_then(|o| o.split_whitespace().nth(1))
}

/// Remote candidates wait here until the remote description is set.
#[derive(Debug, Default)]
pub struct CandidateQueue {
    remote_set: bool,
    pending: Vec<IceCandidate>,
}

impl CandidateQueue {
    /// `Some` if the candidate can be added now, else it is queued.
    pub fn push(&mut self, c: IceCandidate) -> Option<IceCandidate> {
        if self.remote_set {
            Some(c)
        } else {
            self.pending.push(c);
            None
        }
    }

    /// The remote description is set: everything queued, in arrival order.
    pub fn remote_description_set(&mut self) -> Vec<IceCandidate> {
        self.remote_set = true;
        std::mem::take(&mut self.pending)
    }

    /// A new remote description is being applied (renegotiation): queue again.
    pub fn renegotiating(&mut self) {
        self.remote_set = false;
    }

    pub fn queued(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests;
