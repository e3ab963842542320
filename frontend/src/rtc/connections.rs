//! The connection table: every live [`Peer`], keyed by direction and remote
//! peer, each tagged with its `conn`; and the asynchronous SDP steps, which
//! check after every `await` that their connection is still the live one
//! (a replaced or closed connection's late results are dropped).

use super::negotiation::{ConnId, Dir};
use super::peer::{self, IceConfig, Peer, PeerEvent};
use protocol::{IceCandidate, PeerId};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use web_sys::{MediaStream, MediaStreamTrack, RtcPeerConnection};

type Key = (Dir, PeerId);

/// How long a renegotiation waits for the answer to the previous offer.
pub const ANSWER_WAIT_MS: f64 = 10_000.0;

/// A cheap handle to the table; clones share it. A call has a handful of
/// connections: a list beats a hash map (and costs less wasm).
#[derive(Clone, Default)]
pub struct Connections(Rc<RefCell<Vec<(Key, Peer)>>>);

fn find<'a>(table: &'a [(Key, Peer)], key: &Key) -> Option<&'a Peer> {
    table.iter().find(|(k, _)| k == key).map(|(_, p)| p)
}

impl Connections {
    /// Opens connection `conn` for `(dir, peer)`, replacing (and closing)
    /// any previous one.
    pub fn open(
        &self,
        dir: Dir,
        peer: &PeerId,
        conn: ConnId,
        ice: &IceConfig,
        on_event: impl Fn(PeerEvent) + 'static,
    ) -> Result<(), JsValue> {
        let p = Peer::new(ice, conn, on_event)?;
        let key = (dir, peer.clone());
        let old = {
            let mut table = self.0.borrow_mut();
            match table.iter_mut().find(|(k, _)| *k == key) {
                Some((_, live)) => Some(std::mem::replace(live, p)),
                None => {
                    table.push((key, p));
                    None
                }
            }
        };
        // Dropped outside the borrow: closing fires no events synchronously,
        // but keep the table free while it happens.
        drop(old);
        Ok(())
    }

    pub fn close(&self, dir: Dir, peer: &PeerId) {
        let key = (dir, peer.clone());
        let gone = {
            let mut table = self.0.borrow_mut();
            let at = table.iter().position(|(k, _)| *k == key);
            at.map(|i| table.swap_remove(i))
        };
        drop(gone);
    }

    /// Closes everything (leaving the call).
    pub fn close_all(&self) {
        let all = std::mem::take(&mut *self.0.borrow_mut());
        drop(all);
    }

    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// Whether `(dir, peer)` is connection `conn`.
    pub fn is_live(&self, dir: Dir, peer: &PeerId, conn: ConnId) -> bool {
        self.with(dir, peer, conn, |_| ()).is_some()
    }

    /// Runs `f` on connection `conn` of `(dir, peer)` if it is the live one.
    pub fn with<R>(
        &self,
        dir: Dir,
        peer: &PeerId,
        conn: ConnId,
        f: impl FnOnce(&mut Peer) -> R,
    ) -> Option<R> {
        let mut table = self.0.borrow_mut();
        let key = (dir, peer.clone());
        let (_, p) = table
            .iter_mut()
            .find(|(k, p)| *k == key && p.conn == conn)?;
        Some(f(p))
    }

    /// Runs `f` on whatever connection `(dir, peer)` has.
    pub fn with_any<R>(&self, dir: Dir, peer: &PeerId, f: impl FnOnce(&Peer) -> R) -> Option<R> {
        find(&self.0.borrow(), &(dir, peer.clone())).map(f)
    }

    /// Every connection in `dir`.
    pub fn pcs(&self, dir: Dir) -> Vec<RtcPeerConnection> {
        self.0
            .borrow()
            .iter()
            .filter(|((d, _), _)| *d == dir)
            .map(|(_, p)| p.pc.clone())
            .collect()
    }

    /// Every connection: direction, remote peer, number, and the connection.
    pub fn all(&self) -> Vec<(Dir, PeerId, ConnId, RtcPeerConnection)> {
        self.0
            .borrow()
            .iter()
            .map(|((d, id), p)| (*d, id.clone(), p.conn, p.pc.clone()))
            .collect()
    }

    /// Forgets the plans applied to the outbound senders (new senders
    /// came or went): the next plan applies to all of them.
    pub fn replan(&self) {
        self.each(Dir::Outbound, |_, p| p.plan = None);
    }

    /// Runs `f` on every connection in `dir` (with its remote peer), in
    /// table order, without copying the table.
    pub fn each(&self, dir: Dir, mut f: impl FnMut(&PeerId, &mut super::peer::Peer)) {
        for ((d, id), p) in self.0.borrow_mut().iter_mut() {
            if *d == dir {
                f(id, p);
            }
        }
    }

    pub fn pc(&self, dir: Dir, peer: &PeerId, conn: ConnId) -> Option<RtcPeerConnection> {
        self.with(dir, peer, conn, |p| p.pc.clone())
    }

    /// Adds every track of `stream` to the outbound connection as send-only.
    pub fn send(&self, peer: &PeerId, conn: ConnId, stream: &MediaStream) {
        self.with(Dir::Outbound, peer, conn, |p| p.send(stream));
    }

    /// Gives every live connection the newest ICE servers (fresh TURN
    /// credentials), used from their next ICE restart on.
    pub fn set_ice(&self, ice: &IceConfig) {
        for (_, p) in self.0.borrow().iter() {
            if let Err(e) = p.set_configuration(ice) {
                warn("setConfiguration", &e);
            }
        }
    }

    /// Creates and sets a local offer; `None` if the connection was
    /// replaced meanwhile, or if an earlier offer still waits for its
    /// answer and this one only renegotiates tracks: it is made once that
    /// answer is in ([`Self::accept_answer`] returns it), or after
    /// [`ANSWER_WAIT_MS`] without one (the answer was lost). An ICE restart
    /// does not wait: it is how a connection whose answer got lost recovers.
    pub async fn offer(
        &self,
        peer: &PeerId,
        conn: ConnId,
        ice_restart: bool,
    ) -> Result<Option<String>, JsValue> {
        let now = crate::browser::now_ms();
        let Some(pc) = self.with(Dir::Outbound, peer, conn, |p| {
            let waiting = p.offering_since.is_some_and(|t| now - t < ANSWER_WAIT_MS);
            if waiting && !ice_restart {
                p.offer_pending = Some(p.offer_pending.unwrap_or(false));
                return None;
            }
            p.offering_since = Some(now);
            p.offer_pending = None;
            Some(p.pc.clone())
        }) else {
            return Ok(None);
        };
        let Some(pc) = pc else { return Ok(None) };
        let made = peer::offer(pc, ice_restart).await;
        if made.is_err() {
            self.with(Dir::Outbound, peer, conn, |p| p.offering_since = None);
        }
        Ok(self.is_live(Dir::Outbound, peer, conn).then_some(made?))
    }

    /// Applies a remote offer (new connection or renegotiation), adds the
    /// candidates that waited for it, and creates the answer; `None` if the
    /// connection was replaced meanwhile.
    pub async fn answer(
        &self,
        peer: &PeerId,
        conn: ConnId,
        sdp: &str,
    ) -> Result<Option<String>, JsValue> {
        let Some(pc) = self.with(Dir::Inbound, peer, conn, |p| {
            p.queue.renegotiating();
            p.pc.clone()
        }) else {
            return Ok(None);
        };
        peer::set_offer(&pc, sdp).await?;
        if !self.flush_candidates(Dir::Inbound, peer, conn) {
            return Ok(None);
        }
        let answer = peer::answer(&pc).await?;
        Ok(self.is_live(Dir::Inbound, peer, conn).then_some(answer))
    }

    /// Holds `(dir, peer)`'s candidates until its next remote description is
    /// applied (while that description is checked).
    pub fn hold(&self, dir: Dir, peer: &PeerId, conn: ConnId) {
        self.with(dir, peer, conn, |p| p.queue.renegotiating());
    }

    /// Applies the viewer's answer and adds the candidates that waited for
    /// it. `Some(ice_restart)`: an offer waited for this answer (applied or
    /// not); make it now.
    pub async fn accept_answer(&self, peer: &PeerId, conn: ConnId, sdp: &str) -> Option<bool> {
        let pc = self.pc(Dir::Outbound, peer, conn)?;
        let set = peer::set_answer(&pc, sdp).await;
        let pending = self
            .with(Dir::Outbound, peer, conn, |p| {
                p.offering_since = None;
                p.offer_pending.take()
            })
            .flatten();
        match set {
            Ok(()) => {
                self.flush_candidates(Dir::Outbound, peer, conn);
            }
            Err(e) => warn("answer", &e),
        }
        pending
    }

    /// Adds a shared screen's tracks to every outbound connection.
    pub fn send_screen(&self, screen: &MediaStream) {
        for ((dir, _), p) in self.0.borrow().iter() {
            if *dir == Dir::Outbound {
                p.send(screen);
            }
        }
    }

    /// Takes a shared screen's tracks out of every outbound connection.
    pub fn stop_screen(&self, screen: &MediaStream) {
        for pc in self.pcs(Dir::Outbound) {
            super::senders::stop_sending(&pc, screen);
        }
    }

    /// Puts `track` in place of the camera's or microphone's track on every
    /// outbound connection (`replaceTrack`: no renegotiation).
    pub fn replace_track(&self, track: &MediaStreamTrack) {
        for pc in self.pcs(Dir::Outbound) {
            super::senders::replace_track(&pc, &track.kind(), track);
        }
    }

    /// Adds a remote candidate now, or queues it until the remote
    /// description is set.
    pub fn add_candidate(&self, dir: Dir, peer: &PeerId, conn: ConnId, c: IceCandidate) {
        let ready = self
            .with(dir, peer, conn, |p| {
                p.queue.push(c).map(|c| (p.pc.clone(), c))
            })
            .flatten();
        if let Some((pc, c)) = ready {
            spawn_local(async move {
                if let Err(e) = peer::add_candidate(&pc, &c).await {
                    warn("candidate", &e);
                }
            });
        }
    }

    /// The remote description is set: adds what was queued. `false` if the
    /// connection is gone.
    fn flush_candidates(&self, dir: Dir, peer: &PeerId, conn: ConnId) -> bool {
        let Some((pc, queued)) = self.with(dir, peer, conn, |p| {
            (p.pc.clone(), p.queue.remote_description_set())
        }) else {
            return false;
        };
        if !queued.is_empty() {
            spawn_local(async move {
                for c in queued {
                    if let Err(e) = peer::add_candidate(&pc, &c).await {
                        warn("queued candidate", &e);
                    }
                }
            });
        }
        true
    }
}

pub fn warn(what: &str, e: &JsValue) {
    crate::browser::log(&format!(
        "webrtc: {what} failed: {}",
        crate::browser::describe(e)
    ));
}
