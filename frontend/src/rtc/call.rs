//! The call: the one event loop that joins signaling, the negotiation state
//! machine and the peer connections, and publishes what the UI shows.
//!
//! Relay messages and peer events go into the [`Negotiator`]; the actions it
//! returns are performed here. A dropped signaling socket does not touch the
//! peer connections: media keeps flowing while the socket reconnects, and
//! the next `welcome` reconciles who is still there.

use super::negotiation::{Action, Dir, Negotiator};
use super::peer::{self, Peer, PeerEvent};
use super::{CallView, Status, TileData, bitrate, media};
use crate::browser;
use crate::signaling::{SigEvent, Signaling};
use gloo_timers::callback::Interval;
use leptos::prelude::*;
use protocol::{ClientMsg, ErrorCode, IceServer, PeerId, Role, RoomId, ServerMsg};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use web_sys::{MediaStream, RtcPeerConnection};

/// How often stale requests are retried.
const TICK_MS: u32 = 1_000;

#[derive(Clone, Debug)]
pub struct CallOptions {
    pub room: RoomId,
    pub name: String,
    pub role: Role,
    pub relay_url: String,
    pub token: String,
    /// This tab had joined before (the token was already in sessionStorage).
    pub reloaded: bool,
    /// Only relayed (TURN) candidates: `?ice=relay`.
    pub relay_only: bool,
    /// Total video uplink budget, split between viewers (kbit/s).
    pub uplink_kbps: u32,
}

struct Inner {
    neg: Negotiator,
    sig: Option<Signaling>,
    peers: HashMap<(Dir, PeerId), Peer>,
    ice_servers: Vec<IceServer>,
    local: Option<MediaStream>,
    view: CallView,
    relay_only: bool,
    uplink_kbps: u32,
    /// Viewers the sender bitrates were last planned for.
    planned_viewers: usize,
    next_generation: u64,
    ever_connected: bool,
    /// Broadcasters whose connection to us failed and has not connected
    /// since: their tile keeps saying why while the call retries.
    unreachable: HashSet<PeerId>,
    _tick: Option<Interval>,
}

/// A handle to the running call. Cheap to clone; [`Call::leave`] ends it.
#[derive(Clone)]
pub struct Call(Rc<RefCell<Inner>>);

impl Call {
    pub fn start(opts: CallOptions, view: CallView) -> Self {
        let inner = Rc::new(RefCell::new(Inner {
            neg: Negotiator::new(opts.reloaded),
            sig: None,
            peers: HashMap::new(),
            ice_servers: Vec::new(),
            local: None,
            view,
            relay_only: opts.relay_only,
            uplink_kbps: opts.uplink_kbps,
            planned_viewers: 0,
            next_generation: 0,
            ever_connected: false,
            unreachable: HashSet::new(),
            _tick: None,
        }));
        let join = ClientMsg::Join {
            room: opts.room,
            name: opts.name,
            role: opts.role,
            token: Some(opts.token),
        };
        let weak = Rc::downgrade(&inner);
        let sig = Signaling::connect(opts.relay_url, &join, move |ev| {
            if let Some(call) = weak.upgrade() {
                on_signal(&call, ev);
            }
        });
        let weak = Rc::downgrade(&inner);
        let tick = Interval::new(TICK_MS, move || {
            if let Some(call) = weak.upgrade() {
                let actions = call.borrow_mut().neg.tick(browser::now_ms());
                perform(&call, actions);
            }
        });
        {
            let mut i = inner.borrow_mut();
            i.sig = Some(sig);
            i._tick = Some(tick);
        }
        Self(inner)
    }

    /// The camera is on: announce it and serve viewers that asked.
    pub fn set_local_stream(&self, stream: MediaStream) {
        let actions = {
            let mut i = self.0.borrow_mut();
            i.local = Some(stream);
            i.neg.local_media_ready()
        };
        perform(&self.0, actions);
    }

    /// Switches the microphone/camera without renegotiation and tells the room.
    pub fn set_media(&self, audio: bool, video: bool) {
        let actions = {
            let mut i = self.0.borrow_mut();
            if let Some(s) = &i.local {
                media::set_enabled(s, "audio", audio);
                media::set_enabled(s, "video", video);
            }
            i.neg.set_local_media(audio, video)
        };
        perform(&self.0, actions);
    }

    /// Ends the call: announces the end, closes every connection and the
    /// socket, and stops the camera.
    pub fn leave(&self) {
        let actions = self.0.borrow_mut().neg.stop_broadcast();
        perform(&self.0, actions);
        let (sig, peers, local, view) = {
            let mut i = self.0.borrow_mut();
            i._tick = None;
            (
                i.sig.take(),
                std::mem::take(&mut i.peers),
                i.local.take(),
                i.view,
            )
        };
        drop(peers);
        if let Some(sig) = sig {
            sig.close();
        }
        if let Some(s) = local {
            media::stop(&s);
        }
        view.tiles.set(Vec::new());
        view.status.set(Status::Left);
    }

    /// Open peer connections (for diagnostics and tests).
    pub fn connection_count(&self) -> usize {
        self.0.borrow().peers.len()
    }
}

impl Inner {
    fn send(&self, msg: &ClientMsg) {
        if let Some(sig) = &self.sig {
            sig.send(msg);
        }
    }
}

fn on_signal(call: &Rc<RefCell<Inner>>, ev: SigEvent) {
    let view = call.borrow().view;
    match ev {
        SigEvent::Connecting { attempt } => {
            let ever = call.borrow().ever_connected;
            view.status.set(match (ever, attempt) {
                (false, 0) => Status::Connecting,
                (false, a) if a >= 3 => Status::Unreachable(a),
                (_, a) => Status::Reconnecting(a.max(1)),
            });
        }
        SigEvent::Open => {}
        SigEvent::Closed {
            code,
            retry_in_ms,
            attempt,
        } => {
            let ever = call.borrow().ever_connected;
            view.status.set(match retry_in_ms {
                None if code == protocol::close::REPLACED => Status::Replaced,
                None => Status::Left,
                Some(_) if !ever && attempt >= 2 => Status::Unreachable(attempt + 1),
                Some(_) => Status::Reconnecting(attempt + 1),
            });
        }
        SigEvent::Message(msg) => on_message(call, msg),
    }
}

fn on_message(call: &Rc<RefCell<Inner>>, msg: ServerMsg) {
    let view = call.borrow().view;
    match &msg {
        ServerMsg::Welcome {
            id, ice_servers, ..
        } => {
            browser::mark_once("welcome");
            let mut i = call.borrow_mut();
            i.ice_servers = ice_servers.clone();
            i.ever_connected = true;
            view.status.set(Status::Connected);
            view.my_id.set(Some(id.0.clone()));
        }
        ServerMsg::Offer { .. } => browser::mark_once("offer"),
        ServerMsg::Error {
            code: ErrorCode::RoomFull,
            ..
        } => view.status.set(Status::RoomFull),
        ServerMsg::Error { code, message } => browser::log(&format!("relay: {code:?}: {message}")),
        _ => {}
    }
    let actions = call.borrow_mut().neg.on_server(msg, browser::now_ms());
    perform(call, actions);
}

fn perform(call: &Rc<RefCell<Inner>>, actions: Vec<Action>) {
    for action in actions {
        match action {
            Action::Send(msg) => call.borrow().send(&msg),
            Action::OpenSender(to) => open_sender(call, to),
            Action::OpenReceiver { from, sdp } => {
                if let Some((pc, generation)) = new_peer(call, Dir::Inbound, &from) {
                    answer(call, from, pc, generation, sdp);
                }
            }
            Action::Renegotiate { from, sdp } => {
                let current = call
                    .borrow_mut()
                    .peers
                    .get_mut(&(Dir::Inbound, from.clone()))
                    .map(|p| {
                        p.queue.renegotiating();
                        (p.pc.clone(), p.generation)
                    });
                if let Some((pc, generation)) = current {
                    answer(call, from, pc, generation, sdp);
                }
            }
            Action::AcceptAnswer { from, sdp } => {
                let current = call
                    .borrow()
                    .peers
                    .get(&(Dir::Outbound, from.clone()))
                    .map(|p| (p.pc.clone(), p.generation));
                if let Some((pc, generation)) = current {
                    let weak = Rc::downgrade(call);
                    spawn_local(async move {
                        match peer::set_answer(&pc, &sdp).await {
                            Ok(()) => flush_candidates(&weak, Dir::Outbound, &from, generation),
                            Err(e) => warn("answer", &e),
                        }
                    });
                }
            }
            Action::AddCandidate {
                dir,
                peer,
                candidate,
            } => {
                let ready = call.borrow_mut().peers.get_mut(&(dir, peer)).and_then(|p| {
                    let c = p.queue.push(candidate)?;
                    Some((p.pc.clone(), c))
                });
                if let Some((pc, c)) = ready {
                    spawn_local(async move {
                        if let Err(e) = peer::add_candidate(&pc, &c).await {
                            warn("candidate", &e);
                        }
                    });
                }
            }
            Action::Close { dir, peer } => {
                // Dropping the Peer closes it and removes its listeners.
                let gone = call.borrow_mut().peers.remove(&(dir, peer));
                drop(gone);
            }
            Action::RestartIce(to) => {
                let current = call
                    .borrow()
                    .peers
                    .get(&(Dir::Outbound, to.clone()))
                    .map(|p| (p.pc.clone(), p.generation));
                if let Some((pc, generation)) = current {
                    browser::log(&format!("webrtc: restarting ICE towards {to}"));
                    send_offer(call, to, pc, generation, true);
                }
            }
        }
    }
    plan_bitrates(call);
    refresh(call);
}

/// Re-splits the uplink budget when the number of viewers changed, and
/// applies it to every video sender.
fn plan_bitrates(call: &Rc<RefCell<Inner>>) {
    let (plan, pcs, view) = {
        let mut i = call.borrow_mut();
        let viewers = i.neg.viewer_count();
        if viewers == i.planned_viewers {
            return;
        }
        i.planned_viewers = viewers;
        let plan = bitrate::plan(i.uplink_kbps, viewers);
        let pcs: Vec<RtcPeerConnection> = i
            .peers
            .iter()
            .filter(|((dir, _), _)| *dir == Dir::Outbound)
            .map(|(_, p)| p.pc.clone())
            .collect();
        (plan, pcs, i.view)
    };
    view.sender_bitrate.set(if pcs.is_empty() {
        0
    } else {
        plan.max_bitrate_bps
    });
    for pc in pcs {
        peer::cap_video(&pc, plan.max_bitrate_bps, plan.scale_down);
    }
}

/// Creates the connection for `(dir, id)`, replacing any previous one.
fn new_peer(call: &Rc<RefCell<Inner>>, dir: Dir, id: &PeerId) -> Option<(RtcPeerConnection, u64)> {
    let mut i = call.borrow_mut();
    i.next_generation += 1;
    let generation = i.next_generation;
    let weak = Rc::downgrade(call);
    let peer_id = id.clone();
    let created = Peer::new(&i.ice_servers, i.relay_only, generation, move |ev| {
        if let Some(call) = weak.upgrade() {
            on_peer_event(&call, dir, &peer_id, generation, ev);
        }
    });
    match created {
        Ok(p) => {
            let pc = p.pc.clone();
            i.peers.insert((dir, id.clone()), p);
            Some((pc, generation))
        }
        Err(e) => {
            warn("RTCPeerConnection", &e);
            None
        }
    }
}

fn open_sender(call: &Rc<RefCell<Inner>>, to: PeerId) {
    let Some(local) = call.borrow().local.clone() else {
        return;
    };
    let Some((pc, generation)) = new_peer(call, Dir::Outbound, &to) else {
        return;
    };
    if let Some(p) = call.borrow().peers.get(&(Dir::Outbound, to.clone())) {
        p.send(&local);
    }
    {
        // The next plan_bitrates re-splits for everyone; this connection
        // starts at that split already.
        let i = call.borrow();
        let plan = bitrate::plan(i.uplink_kbps, i.neg.viewer_count());
        peer::cap_video(&pc, plan.max_bitrate_bps, plan.scale_down);
    }
    send_offer(call, to, pc, generation, false);
}

fn send_offer(
    call: &Rc<RefCell<Inner>>,
    to: PeerId,
    pc: RtcPeerConnection,
    generation: u64,
    ice_restart: bool,
) {
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        match peer::offer(pc, ice_restart).await {
            Ok(sdp) => {
                if let Some(call) = current(&weak, Dir::Outbound, &to, generation) {
                    call.borrow().send(&ClientMsg::Offer { to, sdp });
                }
            }
            Err(e) => warn("offer", &e),
        }
    });
}

fn answer(
    call: &Rc<RefCell<Inner>>,
    from: PeerId,
    pc: RtcPeerConnection,
    generation: u64,
    sdp: String,
) {
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        if let Err(e) = peer::set_offer(&pc, &sdp).await {
            return warn("remote offer", &e);
        }
        flush_candidates(&weak, Dir::Inbound, &from, generation);
        match peer::answer(&pc).await {
            Ok(sdp) => {
                if let Some(call) = current(&weak, Dir::Inbound, &from, generation) {
                    call.borrow().send(&ClientMsg::Answer { to: from, sdp });
                }
            }
            Err(e) => warn("answer", &e),
        }
    });
}

/// The call, if `(dir, id)` is still the connection of that generation.
fn current(
    weak: &Weak<RefCell<Inner>>,
    dir: Dir,
    id: &PeerId,
    generation: u64,
) -> Option<Rc<RefCell<Inner>>> {
    let call = weak.upgrade()?;
    let live = call
        .borrow()
        .peers
        .get(&(dir, id.clone()))
        .is_some_and(|p| p.generation == generation);
    live.then_some(call)
}

fn flush_candidates(weak: &Weak<RefCell<Inner>>, dir: Dir, id: &PeerId, generation: u64) {
    let Some(call) = current(weak, dir, id, generation) else {
        return;
    };
    let flushed = call
        .borrow_mut()
        .peers
        .get_mut(&(dir, id.clone()))
        .map(|p| (p.pc.clone(), p.queue.remote_description_set()));
    if let Some((pc, candidates)) = flushed {
        spawn_local(async move {
            for c in candidates {
                if let Err(e) = peer::add_candidate(&pc, &c).await {
                    warn("queued candidate", &e);
                }
            }
        });
    }
}

fn on_peer_event(call: &Rc<RefCell<Inner>>, dir: Dir, id: &PeerId, generation: u64, ev: PeerEvent) {
    let key = (dir, id.clone());
    if call
        .borrow()
        .peers
        .get(&key)
        .is_none_or(|p| p.generation != generation)
    {
        return;
    }
    match ev {
        PeerEvent::Candidate(candidate) => {
            let to = id.clone();
            let msg = match dir {
                Dir::Outbound => ClientMsg::IceOfferCandidate { to, candidate },
                Dir::Inbound => ClientMsg::IceAnswerCandidate { to, candidate },
            };
            call.borrow().send(&msg);
        }
        PeerEvent::Stream(stream) => {
            if let Some(p) = call.borrow_mut().peers.get_mut(&key) {
                p.stream = Some(stream);
            }
            refresh(call);
        }
        PeerEvent::IceServerError { code, url } => {
            browser::log(&format!("webrtc: ICE server {url} answered {code}"));
            if let Some(p) = call.borrow_mut().peers.get_mut(&key) {
                p.ice_error = Some(code);
            }
            refresh(call);
        }
        PeerEvent::State(state) => {
            if state == "connected" {
                browser::mark_once("ice-connected");
                probe_path(call, dir, id.clone(), generation);
            }
            let actions = {
                let mut i = call.borrow_mut();
                if let Some(p) = i.peers.get_mut(&key) {
                    p.state.clone_from(&state);
                }
                if dir == Dir::Inbound {
                    match state.as_str() {
                        "failed" => {
                            // Forget peers that left, so this never grows.
                            let here: HashSet<PeerId> =
                                i.neg.peers().iter().map(|p| p.info.id.clone()).collect();
                            i.unreachable.retain(|p| here.contains(p));
                            i.unreachable.insert(id.clone());
                        }
                        "connected" => {
                            i.unreachable.remove(id);
                        }
                        _ => {}
                    }
                }
                i.neg.connection_state(dir, id, &state, browser::now_ms())
            };
            perform(call, actions);
        }
    }
}

/// Reads how a connection's media travels once it is connected (the
/// selected pair can take a moment to show up in the stats).
fn probe_path(call: &Rc<RefCell<Inner>>, dir: Dir, id: PeerId, generation: u64) {
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        for delay in [0, 500, 2_000] {
            gloo_timers::future::TimeoutFuture::new(delay).await;
            let Some(call) = current(&weak, dir, &id, generation) else {
                return;
            };
            let pc = call
                .borrow()
                .peers
                .get(&(dir, id.clone()))
                .map(|p| p.pc.clone());
            let Some(pc) = pc else { return };
            if let Some(path) = peer::selected_path(pc).await {
                if let Some(call) = current(&weak, dir, &id, generation) {
                    if let Some(p) = call.borrow_mut().peers.get_mut(&(dir, id.clone())) {
                        p.path = Some(path);
                    }
                    refresh(&call);
                }
                return;
            }
        }
    });
}

/// What to tell the user when a connection cannot be made. `failed_before`:
/// an earlier connection to this peer failed and none has connected since,
/// so a retry in progress still shows why.
fn problem(conn: &Peer, has_turn: bool, relay_only: bool, failed_before: bool) -> Option<String> {
    let state = match conn.state.as_str() {
        "connected" => "connected",
        _ if failed_before => "failed",
        s => s,
    };
    match (conn.ice_error, state) {
        (Some(401), _) if relay_only || conn.state != "connected" => {
            Some("The TURN server refused our credentials (401)".into())
        }
        (_, "failed") if !has_turn => {
            Some("Can't connect directly: a TURN server is needed".into())
        }
        (_, "failed") => Some("Can't connect, even through TURN".into()),
        _ => None,
    }
}

/// Publishes the tiles: one per remote broadcaster.
fn refresh(call: &Rc<RefCell<Inner>>) {
    let i = call.borrow();
    let has_turn = i
        .ice_servers
        .iter()
        .any(|s| s.urls.iter().any(|u| u.starts_with("turn")));
    let tiles: Vec<TileData> = i
        .neg
        .peers()
        .iter()
        .filter(|p| p.has_tile())
        .map(|p| {
            let conn = i.peers.get(&(Dir::Inbound, p.info.id.clone()));
            TileData {
                id: p.info.id.0.clone(),
                name: p.info.name.clone(),
                audio: p.audio,
                video: p.video,
                state: match conn {
                    Some(_) if p.healing() => "reconnecting".to_owned(),
                    Some(c) => c.state.clone(),
                    None => "new".to_owned(),
                },
                stream: conn.and_then(|c| c.stream.clone()),
                path: conn.and_then(|c| c.path),
                problem: conn.and_then(|c| {
                    let failed_before = i.unreachable.contains(&p.info.id);
                    problem(c, has_turn, i.relay_only, failed_before)
                }),
            }
        })
        .collect();
    let others = i.neg.peers().len();
    let cameras = i.neg.peers().iter().filter(|p| p.info.broadcasting).count()
        + usize::from(i.neg.is_broadcasting());
    let view = i.view;
    let connections = i.peers.len();
    drop(i);
    view.tiles.set(tiles);
    view.others.set(others);
    view.connections.set(connections);
    view.cameras.set(cameras);
}

fn warn(what: &str, e: &JsValue) {
    browser::log(&format!("webrtc: {what} failed: {e:?}"));
}
