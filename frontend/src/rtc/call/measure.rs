//! What the call measures, and what follows from it: audio levels (who is
//! speaking, the active speaker), each connection's stats once a second
//! (tile details, weak marks, how media travels), the sizes I show each
//! broadcaster at (sent as `viewSize`), and my video senders' plans from
//! the sizes my viewers report and my measured uplink.

use super::Shared;
use super::handlers::{refresh, send};
use crate::browser;
use crate::rtc::negotiation::{ConnId, Dir};
use crate::rtc::stats::{self, Details};
use crate::rtc::{bitrate, fit, media, senders};
use leptos::prelude::*;
use protocol::{ClientMsg, PeerId};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

/// How often audio levels are read (ms).
pub(super) const LEVELS_MS: u32 = 200;

/// Reads every voice's level; marks the tiles of who speaks
/// (`data-speaking`: set here, five times a second, off the reactive graph)
/// and publishes the active speaker.
pub(super) fn read_levels(call: &Shared) {
    let (view, speaking, active) = {
        let mut i = call.borrow_mut();
        let mut levels: Vec<(String, u8)> = Vec::new();
        i.conns.each(Dir::Inbound, |id, p| {
            levels.push((id.0.clone(), stats::received_level(&p.pc)));
        });
        let me = i.neg.me().map(|m| m.0.clone());
        if let Some(me) = &me {
            levels.push((me.clone(), i.mic_level.get()));
        }
        let now = browser::now_ms();
        i.speech.update(now, &levels, me.as_deref());
        (
            i.view,
            i.speech.speaking(now),
            i.speech.active().map(str::to_owned),
        )
    };
    let tiles = browser::window()
        .document()
        .and_then(|d| d.query_selector_all("[data-peer]").ok());
    if let Some(tiles) = tiles {
        for el in (0..tiles.length()).filter_map(|n| tiles.item(n)) {
            let Ok(el) = el.dyn_into::<web_sys::Element>() else {
                continue;
            };
            let peer = el.get_attribute("data-peer").unwrap_or_default();
            let on = if speaking.contains(&peer) {
                "true"
            } else {
                "false"
            };
            // Failure is impossible for a valid name; nothing to do if it were.
            let _ = el.set_attribute("data-speaking", on);
        }
    }
    if view.active.with_untracked(|a| *a != active) {
        view.active.set(active);
    }
}

/// Reads every connection's stats; then the tiles, the sizes I show, and
/// my senders' plans follow.
pub(super) fn measure(call: &Shared) {
    let conns = {
        let mut i = call.borrow_mut();
        // A slow round (a busy machine) is not piled on.
        if std::mem::replace(&mut i.measuring, true) {
            return;
        }
        i.conns.clone()
    };
    let weak = Rc::downgrade(call);
    spawn_local(async move {
        for (dir, id, conn, pc) in conns.all() {
            let Some(now) = stats::read(pc).await else {
                continue;
            };
            conns.with(dir, &id, conn, |p| {
                if let Some(before) = &p.counters {
                    p.details = Some(Details::between(before, &now));
                }
                p.path = now.path().or(p.path);
                p.counters = Some(now);
            });
        }
        if let Some(call) = weak.upgrade() {
            call.borrow_mut().measuring = false;
            report_views(&call);
            plan_bitrates(&call);
            refresh(&call);
        }
    });
}

/// Tells each broadcaster how large I show its camera, when that changed
/// enough to matter.
fn report_views(call: &Shared) {
    let conns = call.borrow().conns.clone();
    let mut changed = Vec::new();
    conns.each(Dir::Inbound, |id, p| {
        let (width, height) = shown_size(id);
        if fit::worth_sending(p.shown, (width, height)) {
            p.shown = Some((width, height));
            changed.push(ClientMsg::ViewSize {
                to: id.clone(),
                conn: p.conn,
                width,
                height,
            });
        }
    });
    for msg in &changed {
        send(call, msg);
    }
}

/// The device pixels the tile of `peer` shows its camera at, (0, 0) if
/// none of it is seen: the tab hidden, the tile hidden or scrolled out of
/// the stage.
fn shown_size(peer: &PeerId) -> (u32, u32) {
    let window = browser::window();
    let Some(doc) = window.document() else {
        return (0, 0);
    };
    let find = |sel: &str| doc.query_selector(sel).ok().flatten();
    let (Some(video), Some(stage)) = (
        find(&format!("[data-peer=\"{peer}\"] video")),
        find(".stage"),
    ) else {
        return (0, 0);
    };
    // In its own Picture-in-picture window it is seen, tab hidden or not.
    let pip = js_sys::Reflect::get(&doc, &"pictureInPictureElement".into())
        .is_ok_and(|e| js_sys::Object::is(&e, &video));
    if pip {
        return (1280, 720);
    }
    let (r, s) = (
        video.get_bounding_client_rect(),
        stage.get_bounding_client_rect(),
    );
    let seen = !doc.hidden()
        && r.width() > 0.0
        && r.bottom() > s.top()
        && r.top() < s.bottom()
        && r.right() > s.left()
        && r.left() < s.right();
    if !seen {
        return (0, 0);
    }
    let px = |v: f64| {
        ((v * window.device_pixel_ratio()).round() as u32).clamp(1, protocol::MAX_VIEW_SIDE)
    };
    (px(r.width()), px(r.height()))
}

/// A viewer said how large it shows my camera.
pub(super) fn viewer_shows(call: &Shared, from: &PeerId, conn: ConnId, size: (u32, u32)) {
    let conns = call.borrow().conns.clone();
    conns.with(Dir::Outbound, from, conn, |p| p.shown = Some(size));
}

/// Plans every video sender from the sizes its viewer shows and my
/// measured uplink, and applies the plans that changed.
pub(super) fn plan_bitrates(call: &Shared) {
    let mut i = call.borrow_mut();
    let conns = i.conns.clone();
    let mut shown = Vec::new();
    // The uplink estimate: every connection's, summed, once all have one.
    let mut measured = Some(0.0);
    conns.each(Dir::Outbound, |_, p| {
        shown.push(p.shown);
        let own = p.counters.as_ref().and_then(|c| c.available_out);
        measured = measured.zip(own).map(|(a, b)| a + b);
    });
    let n = shown.len();
    let measured = measured.filter(|_| n > 0).map(|m| (m / 1000.0) as u32);
    let want = fit::budget(i.uplink_kbps, measured, n);
    // Estimates wander: follow them only when they move by a tenth.
    if want == i.uplink_kbps || want.abs_diff(i.budget_kbps) * 10 > i.budget_kbps {
        i.budget_kbps = want;
    }
    let budget = i.budget_kbps;
    let (camera_budget, screen) = if i.screen.is_some() {
        bitrate::sharing_split(budget, n)
    } else {
        (budget, bitrate::plan(budget, n))
    };
    let size = i.local.as_ref().map_or((0, 0), media::video_size);
    drop(i);
    let mut plans = fit::plan_views(camera_budget, size, &shown).into_iter();
    conns.each(Dir::Outbound, |_, p| {
        let want = plans.next().map(|camera| (camera, screen));
        if let Some((camera, screen)) = want.filter(|_| p.plan != want) {
            p.plan = want;
            senders::cap_video(&p.pc, camera, screen);
        }
    });
}
