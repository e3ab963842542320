//! The description exchange: offers and answers made, signed and sent,
//! and the ones that arrive checked against the room key (a verified room)
//! before they are applied, with the safety code of each that passes. My
//! candidates wait while my description is signed; a peer's, while its
//! description is checked.

use super::handlers::{on_peer_event, perform, refresh, send};
use super::{Shared, trust};
use crate::browser;
use crate::rtc::connections::{Connections, warn};
use crate::rtc::negotiation::{ConnId, ConnState, Dir};
use crate::rtc::peer::PeerEvent;
use protocol::verify::Kind;
use protocol::{ClientMsg, PeerId};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen_futures::spawn_local;

/// What the SDP steps with `peer` need: the connection table, the room
/// key, my id and the name `peer` is shown with (what its descriptions
/// must have signed).
fn parts(
    call: &Shared,
    peer: &PeerId,
) -> (
    Connections,
    Option<Rc<trust::Trust>>,
    Option<PeerId>,
    String,
) {
    let i = call.borrow();
    let name = i.neg.name(peer).unwrap_or_default().to_owned();
    (i.conns.clone(), i.trust.clone(), i.neg.me().cloned(), name)
}

/// Whether the description `from` sent me on `(dir, conn)` may be applied:
/// always without a key; with one, only if its `sig` is right for the name
/// I show it with. One that is not is refused here.
async fn passes(
    weak: &Weak<RefCell<super::Inner>>,
    (trust, me): (Option<&trust::Trust>, Option<&PeerId>),
    (dir, from, conn): (Dir, &PeerId, ConnId),
    (name, sdp): (&str, &str),
    sig: Option<&str>,
) -> bool {
    if trust.is_none() {
        return true;
    }
    let kind = match dir {
        Dir::Inbound => Kind::Offer,
        Dir::Outbound => Kind::Answer,
    };
    let mac = trust::mac(trust, kind, (Some(from), me), Some(name), conn, sdp).await;
    let ok = mac.is_some_and(|m| protocol::verify::sig_matches(&m, sig));
    if !ok && let Some(call) = weak.upgrade() {
        refuse(&call, dir, from, conn);
    }
    ok
}

/// The `sig` for a description I send (`None` without a key).
async fn signed(
    (trust, me): (Option<&trust::Trust>, Option<&PeerId>),
    kind: Kind,
    to: &PeerId,
    conn: ConnId,
    sdp: &str,
) -> Option<String> {
    let mac = trust::mac(trust, kind, (me, Some(to)), None, conn, sdp).await?;
    Some(protocol::base64url::encode(&mac))
}

pub(super) fn offer(call: &Shared, to: PeerId, conn: ConnId, ice_restart: bool) {
    let (conns, trust, me, _) = parts(call, &to);
    hold_mine(&conns, trust.is_some(), Dir::Outbound, &to, conn);
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        match conns.offer(&to, conn, ice_restart).await {
            Ok(Some(sdp)) => {
                let sig = signed(
                    (trust.as_deref(), me.as_ref()),
                    Kind::Offer,
                    &to,
                    conn,
                    &sdp,
                )
                .await;
                if let Some(call) = weak.upgrade() {
                    send(
                        &call,
                        &ClientMsg::Offer {
                            to: to.clone(),
                            conn,
                            sdp,
                            sig,
                        },
                    );
                    release(&call, Dir::Outbound, &to, conn);
                }
            }
            Ok(None) => {}
            Err(e) => warn("offer", &e),
        }
    });
}

/// Checks a viewer's answer against the room key, then applies it.
pub(super) fn accept(call: &Shared, from: PeerId, conn: ConnId, sdp: String, sig: Option<String>) {
    let (conns, trust, me, name) = parts(call, &from);
    conns.hold(Dir::Outbound, &from, conn);
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        let keys = (trust.as_deref(), me.as_ref());
        if !passes(
            &weak,
            keys,
            (Dir::Outbound, &from, conn),
            (&name, &sdp),
            sig.as_deref(),
        )
        .await
        {
            return;
        }
        // A renegotiation waited for this answer.
        let restart = conns.accept_answer(&from, conn, &sdp).await;
        let local = conns
            .pc(Dir::Outbound, &from, conn)
            .and_then(|pc| pc.local_description());
        let code = trust::safety_code(keys.0, local.map(|d| d.sdp()), &sdp).await;
        if let Some(call) = weak.upgrade() {
            verified(&call, (Dir::Outbound, &from, conn), code);
            if let Some(restart) = restart {
                offer(&call, from, conn, restart);
            }
        }
    });
}

/// Checks a broadcaster's offer against the room key, then applies and
/// answers it.
pub(super) fn answer(call: &Shared, from: PeerId, conn: ConnId, sdp: String, sig: Option<String>) {
    let (conns, trust, me, name) = parts(call, &from);
    // Its candidates wait while the offer is checked; mine, while my
    // answer is signed.
    conns.hold(Dir::Inbound, &from, conn);
    hold_mine(&conns, trust.is_some(), Dir::Inbound, &from, conn);
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        let keys = (trust.as_deref(), me.as_ref());
        if !passes(
            &weak,
            keys,
            (Dir::Inbound, &from, conn),
            (&name, &sdp),
            sig.as_deref(),
        )
        .await
        {
            return;
        }
        match conns.answer(&from, conn, &sdp).await {
            Ok(Some(answer)) => {
                let sig = signed(keys, Kind::Answer, &from, conn, &answer).await;
                if let Some(call) = weak.upgrade() {
                    let (to, sdp) = (from.clone(), answer.clone());
                    send(&call, &ClientMsg::Answer { to, conn, sdp, sig });
                    release(&call, Dir::Inbound, &from, conn);
                }
                let code = trust::safety_code(keys.0, Some(answer), &sdp).await;
                if let Some(call) = weak.upgrade() {
                    verified(&call, (Dir::Inbound, &from, conn), code);
                }
            }
            Ok(None) => {}
            Err(e) => warn("remote offer", &e),
        }
    });
}

/// In a verified room my description is signed after it is set, and ICE
/// gathers from the moment it is set: `(dir, peer, conn)`'s candidates are
/// held from now until [`release`].
fn hold_mine(conns: &Connections, keyed: bool, dir: Dir, peer: &PeerId, conn: ConnId) {
    if keyed {
        conns.with(dir, peer, conn, |p| {
            p.held.get_or_insert_with(Vec::new);
        });
    }
}

/// My description went out: the candidates held for it follow.
fn release(call: &Shared, dir: Dir, peer: &PeerId, conn: ConnId) {
    let conns = call.borrow().conns.clone();
    let held = conns.with(dir, peer, conn, |p| p.held.take()).flatten();
    for candidate in held.unwrap_or_default() {
        on_peer_event(call, dir, peer, conn, PeerEvent::Candidate(candidate));
    }
}

/// A description failed the room key's check: it is never applied, so
/// nothing of that connection plays or is sent; the peer is marked (its
/// tile warns) and the connection counts as failed (retried like one).
fn refuse(call: &Shared, dir: Dir, peer: &PeerId, conn: ConnId) {
    browser::log(&format!(
        "webrtc: refused {peer}: its description is not signed with this room's key"
    ));
    let actions = {
        let mut i = call.borrow_mut();
        // A late result for a connection since replaced changes nothing.
        if !i.neg.is_live(dir, peer, conn) {
            return;
        }
        let key = (dir, peer.clone());
        if !i.refused.contains(&key) {
            i.refused.push(key);
        }
        i.neg
            .connection_state(dir, peer, conn, ConnState::Failed, browser::now_ms())
    };
    perform(call, actions);
}

/// A description was applied: in a verified room it passed the check, so
/// its peer is no longer refused and its connection shows the safety code.
fn verified(call: &Shared, (dir, peer, conn): (Dir, &PeerId, ConnId), code: Option<String>) {
    if code.is_none() {
        return;
    }
    let conns = {
        let mut i = call.borrow_mut();
        i.refused.retain(|(d, p)| (*d, p) != (dir, peer));
        i.conns.clone()
    };
    conns.with(dir, peer, conn, |p| p.code = code);
    refresh(call);
}
