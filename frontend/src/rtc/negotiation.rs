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
//!   renegotiation of it (e.g. an ICE restart); any other offer replaces it.

use protocol::{ClientMsg, IceCandidate, PeerId, PeerInfo, ServerMsg};

/// A request not answered by an offer in this long may be sent again.
pub const REQUEST_RETRY_MS: f64 = 5_000.0;

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
}

impl Remote {
    pub fn watching(&self) -> bool {
        matches!(self.inbound, Inbound::Watching { .. })
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
                let id = peer.id.clone();
                match self.peer_mut(&id) {
                    Some(known) => known.info = peer,
                    None => self.peers.push(Remote {
                        info: peer,
                        audio: true,
                        video: true,
                        inbound: Inbound::Idle,
                        outbound: false,
                    }),
                }
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
                p.inbound = Inbound::Watching { session };
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
        self.me = Some(id);
        if std::mem::take(&mut self.reloaded) {
            // Whatever the room holds from my previous page is dead: say so,
            // so viewers drop it and ask again when I announce.
            out.push(Action::Send(ClientMsg::BroadcastEnded));
        }
        // Peers gone while we were away: drop them and their connections.
        let gone: Vec<PeerId> = self
            .peers
            .iter()
            .map(|p| p.info.id.clone())
            .filter(|id| !peers.iter().any(|n| &n.id == id))
            .collect();
        for id in gone {
            self.forget(&id, out);
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
            match self.peer_mut(&id) {
                Some(known) => known.info = info,
                None => self.peers.push(Remote {
                    info,
                    audio: true,
                    video: true,
                    inbound: Inbound::Idle,
                    outbound: false,
                }),
            }
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
        let stale: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| p.info.broadcasting && matches!(p.inbound, Inbound::Requested { .. }))
            .map(|p| p.info.id.clone())
            .collect();
        for id in stale {
            self.request(&id, now_ms, &mut out);
        }
        out
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

    /// A connection closed for good on its own (failed, or closed remotely).
    pub fn connection_lost(&mut self, dir: Dir, peer: &PeerId, now_ms: f64) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(p) = self.peer_mut(peer) else {
            return out;
        };
        match dir {
            Dir::Outbound => {
                if std::mem::take(&mut p.outbound) {
                    out.push(Action::Close {
                        dir,
                        peer: peer.clone(),
                    });
                }
            }
            Dir::Inbound => {
                if p.inbound != Inbound::Idle {
                    p.inbound = Inbound::Idle;
                    out.push(Action::Close {
                        dir,
                        peer: peer.clone(),
                    });
                }
                if p.info.broadcasting {
                    let peer = peer.clone();
                    self.request(&peer, now_ms, &mut out);
                }
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
