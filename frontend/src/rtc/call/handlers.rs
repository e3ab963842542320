//! What happens when something arrives: relay messages and signaling
//! events, and peer connection events, go into the negotiator; the actions
//! it returns are performed here (connections opened, bitrates planned,
//! offers and answers handed to `exchange.rs`) and the view refreshed.

use super::exchange::{accept, answer, offer};
use super::{Shared, trust};
use crate::browser;
use crate::rtc::chat::{self, ChatLine};
use crate::rtc::connections::warn;
use crate::rtc::negotiation::{Action, ConnId, ConnState, Dir};
use crate::rtc::peer::PeerEvent;
use crate::rtc::view::Status;
use crate::signaling::SigEvent;
use leptos::prelude::*;
use protocol::{ClientMsg, ErrorCode, PeerId, ServerMsg};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen_futures::spawn_local;

pub(super) fn send(call: &Shared, msg: &ClientMsg) {
    if let Some(sig) = &call.borrow().sig {
        sig.send(msg);
    }
}

/// Every signaling event waits its turn: names and chat in a message are
/// opened (with the room key: an await) before the call sees it, and
/// nothing overtakes a message being opened.
pub(super) fn on_signal(call: &Shared, ev: SigEvent) {
    let start = {
        let mut i = call.borrow_mut();
        i.inbox.push(ev);
        !std::mem::replace(&mut i.draining, true)
    };
    if start {
        spawn_local(drain(Rc::downgrade(call)));
    }
}

async fn drain(call: Weak<RefCell<super::Inner>>) {
    loop {
        let Some(shared) = call.upgrade() else {
            return;
        };
        let next = {
            let mut i = shared.borrow_mut();
            // A handful at most: a Vec is smaller code than a VecDeque.
            let next = (!i.inbox.is_empty()).then(|| i.inbox.remove(0));
            i.draining = next.is_some();
            next.map(|ev| (ev, i.trust.clone()))
        };
        drop(shared);
        let Some((ev, trust)) = next else {
            return;
        };
        let ev = match ev {
            SigEvent::Message(msg) => SigEvent::Message(trust::open(trust.as_deref(), msg).await),
            ev => ev,
        };
        let Some(shared) = call.upgrade() else {
            return;
        };
        handle_signal(&shared, ev);
    }
}

#[inline(never)]
fn handle_signal(call: &Shared, ev: SigEvent) {
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
            id,
            ice_servers,
            chat,
            ..
        } => {
            let new = view
                .chat
                .try_update(|lines| chat::merge(lines, chat.clone(), &id.0))
                .unwrap_or(0);
            view.chat_unread.update(|n| *n += new);
            browser::mark_once("welcome");
            // A size sent while the socket was down may be lost: say
            // them all again.
            call.borrow()
                .conns
                .each(Dir::Inbound, |_, p| p.shown = None);
            set_ice_servers(call, ice_servers.clone());
            call.borrow_mut().ever_connected = true;
            view.status.set(Status::Connected);
            view.my_id.set(Some(id.0.clone()));
        }
        ServerMsg::IceServers { ice_servers } => set_ice_servers(call, ice_servers.clone()),
        ServerMsg::Chat { from, text, ts } => {
            let name = call.borrow().neg.name(from).unwrap_or("Someone").to_owned();
            let line = ChatLine {
                from: from.0.clone(),
                name,
                text: text.clone(),
                ts: *ts,
                mine: false,
            };
            view.chat.update(|lines| chat::add(lines, line));
            view.chat_unread.update(|n| *n += 1);
        }
        ServerMsg::Offer { .. } => browser::mark_once("offer"),
        ServerMsg::ViewSize {
            from,
            conn,
            width,
            height,
        } => super::measure::viewer_shows(call, from, *conn, (*width, *height)),
        ServerMsg::Error {
            code: ErrorCode::RoomFull,
            ..
        } => view.status.set(Status::RoomFull),
        ServerMsg::Error { code, message } => {
            browser::log(&format!("relay: {}: {message}", code.as_str()))
        }
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
        let turn = i.ice.has_turn() && !i.ice.relay_only;
        i.neg.set_turn(turn);
        (i.ice.clone(), i.conns.clone())
    };
    conns.set_ice(&ice);
}

pub(super) fn perform(call: &Shared, actions: Vec<Action>) {
    let conns = call.borrow().conns.clone();
    for action in actions {
        match action {
            Action::Send(msg) => send(call, &msg),
            Action::OpenSender { to, conn } => open_sender(call, to, conn),
            Action::OpenReceiver {
                from,
                conn,
                sdp,
                sig,
                relay_only,
            } => {
                if open(call, Dir::Inbound, &from, conn, relay_only) {
                    answer(call, from, conn, sdp, sig);
                }
            }
            Action::Renegotiate {
                from,
                conn,
                sdp,
                sig,
            } => answer(call, from, conn, sdp, sig),
            Action::AcceptAnswer {
                from,
                conn,
                sdp,
                sig,
            } => accept(call, from, conn, sdp, sig),
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
    super::measure::plan_bitrates(call);
    refresh(call);
}

/// Opens connection `conn` in `dir` with `peer`; its events come back here.
fn open(call: &Shared, dir: Dir, peer: &PeerId, conn: ConnId, relay_only: bool) -> bool {
    let (conns, mut ice) = {
        let i = call.borrow();
        (i.conns.clone(), i.ice.clone())
    };
    ice.relay_only |= relay_only;
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
    if !open(call, Dir::Outbound, &to, conn, false) {
        return;
    }
    let (conns, screen) = {
        let i = call.borrow();
        (i.conns.clone(), i.screen.clone())
    };
    // The camera's tracks first: viewers tell its stream by that order.
    conns.send(&to, conn, &local);
    if let Some(screen) = &screen {
        conns.send(&to, conn, screen);
    }
    // Planned before the first offer: the encoder starts within its share.
    super::measure::plan_bitrates(call);
    offer(call, to, conn, false);
}

pub(super) fn on_peer_event(call: &Shared, dir: Dir, id: &PeerId, conn: ConnId, ev: PeerEvent) {
    let conns = call.borrow().conns.clone();
    if !conns.is_live(dir, id, conn) {
        return;
    }
    match ev {
        PeerEvent::Candidate(candidate) => {
            // While my description is being signed, its candidates wait:
            // they must not reach the peer before it.
            let free = conns.with(dir, id, conn, |p| match &mut p.held {
                Some(held) => {
                    held.push(candidate);
                    None
                }
                None => Some(candidate),
            });
            if let Some(candidate) = free.flatten() {
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
        }
        PeerEvent::Stream(stream) => {
            conns.with(dir, id, conn, |p| p.add_stream(stream));
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
            }
            let actions =
                call.borrow_mut()
                    .neg
                    .connection_state(dir, id, conn, state, browser::now_ms());
            perform(call, actions);
        }
    }
}

/// Publishes the tiles and counts.
pub(super) fn refresh(call: &Shared) {
    let i = call.borrow();
    i.view.refresh(&i.neg, &i.conns, &i.ice, &i.refused);
}
