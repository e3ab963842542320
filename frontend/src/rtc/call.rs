//! The call: the event handlers that join signaling, the negotiation state
//! machine ([`Negotiator`]) and the connection table ([`Connections`]).
//!
//! Relay messages and peer events go into the negotiator; the actions it
//! returns are performed here. A dropped signaling socket does not touch the
//! peer connections: media keeps flowing while the socket reconnects, and
//! the next `welcome` reconciles who is still there.

use super::connections::{Connections, warn};
use super::negotiation::{Action, ConnId, ConnState, Dir, Negotiator};
use super::peer::{self, IceConfig, PeerEvent};
use super::view::{CallView, Status};
use super::{bitrate, media};
use crate::browser;
use crate::signaling::{SigEvent, Signaling};
use gloo_timers::callback::Interval;
use leptos::prelude::*;
use protocol::{ClientMsg, ErrorCode, PeerId, Role, RoomId, ServerMsg};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen_futures::spawn_local;
use web_sys::MediaStream;

/// How often the healing clocks are checked.
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
    conns: Connections,
    /// The newest ICE servers (from `welcome` or an `iceServers` push).
    ice: IceConfig,
    local: Option<MediaStream>,
    view: CallView,
    uplink_kbps: u32,
    /// Viewers the sender bitrates were last planned for.
    planned_viewers: usize,
    ever_connected: bool,
    _tick: Option<Interval>,
}

type Shared = Rc<RefCell<Inner>>;

/// A handle to the running call. Cheap to clone; [`Call::leave`] ends it.
#[derive(Clone)]
pub struct Call(Shared);

impl Call {
    pub fn start(opts: CallOptions, view: CallView) -> Self {
        // Connection numbers from the wall clock (ms * 1024 stays below
        // 2^53 for centuries): a reloaded page never reuses its old ones.
        let first_conn = (js_sys::Date::now() as u64).saturating_mul(1024);
        let inner = Rc::new(RefCell::new(Inner {
            neg: Negotiator::new(opts.reloaded, first_conn),
            sig: None,
            conns: Connections::default(),
            ice: IceConfig {
                servers: Vec::new(),
                relay_only: opts.relay_only,
            },
            local: None,
            view,
            uplink_kbps: opts.uplink_kbps,
            planned_viewers: 0,
            ever_connected: false,
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
            i.neg.local_media_ready(browser::now_ms())
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
        let (sig, conns, local, view) = {
            let mut i = self.0.borrow_mut();
            i._tick = None;
            (i.sig.take(), i.conns.clone(), i.local.take(), i.view)
        };
        conns.close_all();
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
        self.0.borrow().conns.len()
    }
}

fn send(call: &Shared, msg: &ClientMsg) {
    if let Some(sig) = &call.borrow().sig {
        sig.send(msg);
    }
}

fn on_signal(call: &Shared, ev: SigEvent) {
    let (view, ever) = {
        let i = call.borrow();
        (i.view, i.ever_connected)
    };
    match ev {
        SigEvent::Connecting { attempt } => view.status.set(match (ever, attempt) {
            (false, 0) => Status::Connecting,
            (false, a) if a >= 3 => Status::Unreachable(a),
            (_, a) => Status::Reconnecting(a.max(1)),
        }),
        SigEvent::Open => {}
        SigEvent::Closed {
            code,
            retry_in_ms,
            attempt,
        } => view.status.set(match retry_in_ms {
            None if code == protocol::close::REPLACED => Status::Replaced,
            None => Status::Left,
            Some(_) if !ever && attempt >= 2 => Status::Unreachable(attempt + 1),
            Some(_) => Status::Reconnecting(attempt + 1),
        }),
        SigEvent::Message(msg) => on_message(call, msg),
    }
}

fn on_message(call: &Shared, msg: ServerMsg) {
    let view = call.borrow().view;
    match &msg {
        ServerMsg::Welcome {
            id, ice_servers, ..
        } => {
            browser::mark_once("welcome");
            set_ice_servers(call, ice_servers.clone());
            call.borrow_mut().ever_connected = true;
            view.status.set(Status::Connected);
            view.my_id.set(Some(id.0.clone()));
        }
        ServerMsg::IceServers { ice_servers } => set_ice_servers(call, ice_servers.clone()),
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

/// The newest ICE servers: every new connection uses them, and live ones
/// get them now so their next ICE restart gathers with fresh credentials.
fn set_ice_servers(call: &Shared, servers: Vec<protocol::IceServer>) {
    let (ice, conns) = {
        let mut i = call.borrow_mut();
        i.ice.servers = servers;
        (i.ice.clone(), i.conns.clone())
    };
    conns.set_ice(&ice);
}

fn perform(call: &Shared, actions: Vec<Action>) {
    let conns = call.borrow().conns.clone();
    for action in actions {
        match action {
            Action::Send(msg) => send(call, &msg),
            Action::OpenSender { to, conn } => open_sender(call, to, conn),
            Action::OpenReceiver { from, conn, sdp } => {
                if open(call, Dir::Inbound, &from, conn) {
                    answer(call, from, conn, sdp);
                }
            }
            Action::Renegotiate { from, conn, sdp } => answer(call, from, conn, sdp),
            Action::AcceptAnswer { from, conn, sdp } => {
                let conns = conns.clone();
                spawn_local(async move {
                    if let Err(e) = conns.accept_answer(&from, conn, &sdp).await {
                        warn("answer", &e);
                    }
                });
            }
            Action::AddCandidate {
                dir,
                peer,
                conn,
                candidate,
            } => conns.add_candidate(dir, &peer, conn, candidate),
            Action::Close { dir, peer } => conns.close(dir, &peer),
            Action::RestartIce { to, conn } => {
                browser::log(&format!("webrtc: restarting ICE towards {to}"));
                offer(call, to, conn, true);
            }
        }
    }
    plan_bitrates(call);
    refresh(call);
}

/// Opens connection `conn` in `dir` with `peer`; its events come back here.
fn open(call: &Shared, dir: Dir, peer: &PeerId, conn: ConnId) -> bool {
    let (conns, ice) = {
        let i = call.borrow();
        (i.conns.clone(), i.ice.clone())
    };
    let weak = Rc::downgrade(call);
    let id = peer.clone();
    let opened = conns.open(dir, peer, conn, &ice, move |ev| {
        if let Some(call) = weak.upgrade() {
            on_peer_event(&call, dir, &id, conn, ev);
        }
    });
    match opened {
        Ok(()) => true,
        Err(e) => {
            warn("RTCPeerConnection", &e);
            false
        }
    }
}

fn open_sender(call: &Shared, to: PeerId, conn: ConnId) {
    let Some(local) = call.borrow().local.clone() else {
        return;
    };
    if !open(call, Dir::Outbound, &to, conn) {
        return;
    }
    let (conns, plan) = {
        // The next plan_bitrates re-splits for everyone; this connection
        // starts at that split already.
        let i = call.borrow();
        let plan = bitrate::plan(i.uplink_kbps, i.neg.viewer_count());
        (i.conns.clone(), plan)
    };
    conns.send(&to, conn, &local);
    conns.with(Dir::Outbound, &to, conn, |p| {
        peer::cap_video(&p.pc, plan.max_bitrate_bps, plan.scale_down);
    });
    offer(call, to, conn, false);
}

fn offer(call: &Shared, to: PeerId, conn: ConnId, ice_restart: bool) {
    let conns = call.borrow().conns.clone();
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        match conns.offer(&to, conn, ice_restart).await {
            Ok(Some(sdp)) => {
                if let Some(call) = weak.upgrade() {
                    send(&call, &ClientMsg::Offer { to, conn, sdp });
                }
            }
            Ok(None) => {}
            Err(e) => warn("offer", &e),
        }
    });
}

fn answer(call: &Shared, from: PeerId, conn: ConnId, sdp: String) {
    let conns = call.borrow().conns.clone();
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        match conns.answer(&from, conn, &sdp).await {
            Ok(Some(sdp)) => {
                if let Some(call) = weak.upgrade() {
                    send(
                        &call,
                        &ClientMsg::Answer {
                            to: from,
                            conn,
                            sdp,
                        },
                    );
                }
            }
            Ok(None) => {}
            Err(e) => warn("remote offer", &e),
        }
    });
}

/// Re-splits the uplink budget when the number of viewers changed, and
/// applies it to every video sender.
fn plan_bitrates(call: &Shared) {
    let (plan, pcs, view) = {
        let mut i = call.borrow_mut();
        let viewers = i.neg.viewer_count();
        if viewers == i.planned_viewers {
            return;
        }
        i.planned_viewers = viewers;
        let plan = bitrate::plan(i.uplink_kbps, viewers);
        (plan, i.conns.pcs(Dir::Outbound), i.view)
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

fn on_peer_event(call: &Shared, dir: Dir, id: &PeerId, conn: ConnId, ev: PeerEvent) {
    let conns = call.borrow().conns.clone();
    if !conns.is_live(dir, id, conn) {
        return;
    }
    match ev {
        PeerEvent::Candidate(candidate) => {
            let to = id.clone();
            let msg = match dir {
                Dir::Outbound => ClientMsg::IceOfferCandidate {
                    to,
                    conn,
                    candidate,
                },
                Dir::Inbound => ClientMsg::IceAnswerCandidate {
                    to,
                    conn,
                    candidate,
                },
            };
            send(call, &msg);
        }
        PeerEvent::Stream(stream) => {
            conns.with(dir, id, conn, |p| p.stream = Some(stream));
            refresh(call);
        }
        PeerEvent::IceServerError { code, url } => {
            browser::log(&format!("webrtc: ICE server {url} answered {code}"));
            conns.with(dir, id, conn, |p| p.ice_error = Some(code));
            refresh(call);
        }
        PeerEvent::State(state) => {
            if state == ConnState::Connected {
                browser::mark_once("ice-connected");
                probe_path(&conns, call, dir, id.clone(), conn);
            }
            let actions =
                call.borrow_mut()
                    .neg
                    .connection_state(dir, id, conn, state, browser::now_ms());
            perform(call, actions);
        }
    }
}

/// Reads how a connection's media travels once it is connected (the
/// selected pair can take a moment to show up in the stats).
fn probe_path(conns: &Connections, call: &Shared, dir: Dir, id: PeerId, conn: ConnId) {
    let conns = conns.clone();
    let weak: Weak<RefCell<Inner>> = Rc::downgrade(call);
    spawn_local(async move {
        for delay in [0, 500, 2_000] {
            gloo_timers::future::TimeoutFuture::new(delay).await;
            let Some(pc) = conns.with(dir, &id, conn, |p| p.pc.clone()) else {
                return;
            };
            if let Some(path) = peer::selected_path(pc).await {
                conns.with(dir, &id, conn, |p| p.path = Some(path));
                if let Some(call) = weak.upgrade() {
                    refresh(&call);
                }
                return;
            }
        }
    });
}

/// Publishes the tiles and counts.
fn refresh(call: &Shared) {
    let i = call.borrow();
    i.view.refresh(&i.neg, &i.conns, &i.ice);
}
