//! The call: signaling, the negotiation state machine ([`Negotiator`]) and
//! the connection table ([`Connections`]) behind one handle, [`Call`], and
//! the commands the page gives it (local stream, a new camera or microphone
//! track, screen share, mute, leave). What arrives (relay messages, peer
//! events) is handled in `handlers.rs`.
//!
//! A dropped signaling socket does not touch the peer connections: media
//! keeps flowing while the socket reconnects, and the next `welcome`
//! reconciles who is still there.

mod exchange;
mod handlers;
mod measure;
mod trust;

use super::connections::Connections;
use super::media;
use super::negotiation::{Action, Negotiator};
use super::peer::IceConfig;
use super::view::{CallView, Status};
use crate::browser;
use crate::signaling::Signaling;
use exchange::offer;
use gloo_timers::callback::Interval;
use handlers::{on_signal, perform};
use leptos::prelude::*;
use protocol::{ClientMsg, Role, RoomId};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
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
    /// The room key (`#k=`): a verified room.
    pub key: Option<[u8; protocol::verify::KEY_LEN]>,
}

pub(super) struct Inner {
    neg: Negotiator,
    sig: Option<Signaling>,
    conns: Connections,
    /// The newest ICE servers (from `welcome` or an `iceServers` push).
    ice: IceConfig,
    local: Option<MediaStream>,
    /// The screen I share.
    screen: Option<MediaStream>,
    view: CallView,
    uplink_kbps: u32,
    /// What my senders split: `uplink_kbps`, or less when the measured
    /// uplink is lower.
    budget_kbps: u32,
    speech: super::speech::Speech,
    /// My microphone's level (0-100), from `_mic`.
    mic_level: Rc<Cell<u8>>,
    _mic: Option<super::devices::MicLevel>,
    /// A round of getStats is under way.
    measuring: bool,
    ever_connected: bool,
    /// The room key, once derived (a verified room).
    trust: Option<Rc<trust::Trust>>,
    /// Signaling events waiting their turn: names and chat are opened (an
    /// await) before the call sees them, and events keep their order.
    inbox: Vec<crate::signaling::SigEvent>,
    draining: bool,
    /// Connections (by direction and peer) whose description failed the
    /// room key's check, until one passes: an inbound one's tile warns and
    /// plays nothing; an outbound one (its answer to my offer) is named in
    /// the call's banner.
    refused: Vec<(super::negotiation::Dir, protocol::PeerId)>,
    _tick: Option<Interval>,
    _levels: Option<Interval>,
}

type Shared = Rc<RefCell<Inner>>;

impl Inner {
    /// Meters the microphone of `stream` (my speaking ring).
    fn listen_to_mic(&mut self, stream: &MediaStream) {
        let level = Rc::clone(&self.mic_level);
        self._mic = super::devices::MicLevel::start(stream, move |l| level.set(l));
    }
}

/// A handle to the running call. Cheap to clone; [`Call::leave`] ends it.
#[derive(Clone)]
pub struct Call(Shared);

impl Call {
    pub fn start(opts: CallOptions, view: CallView) -> Self {
        view.status.set(Status::Connecting);
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
                certificate: None,
            },
            local: None,
            screen: None,
            view,
            uplink_kbps: opts.uplink_kbps,
            budget_kbps: opts.uplink_kbps,
            speech: super::speech::Speech::default(),
            mic_level: Rc::new(Cell::new(0)),
            _mic: None,
            measuring: false,
            ever_connected: false,
            trust: None,
            inbox: Default::default(),
            draining: false,
            refused: Vec::new(),
            _tick: None,
            _levels: None,
        }));
        let (key, name, opts_room) = (opts.key, opts.name.clone(), opts.room.0.clone());
        let weak = Rc::downgrade(&inner);
        let connect = move |name: String, trust: Option<trust::Trust>| {
            let Some(call) = weak.upgrade() else {
                return;
            };
            let join = ClientMsg::Join {
                room: opts.room,
                name,
                role: opts.role,
                token: Some(opts.token),
            };
            let weak = Rc::downgrade(&call);
            let sig = Signaling::connect(opts.relay_url, &join, move |ev| {
                if let Some(call) = weak.upgrade() {
                    on_signal(&call, ev);
                }
            });
            let mut i = call.borrow_mut();
            i.trust = trust.map(Rc::new);
            i.sig = Some(sig);
        };
        match key {
            None => connect(name, None),
            // A verified room: the keys, my name sealed and one certificate
            // for every connection first (a few ms); without WebCrypto (an
            // insecure page) the call does not start unverified.
            Some(k) => {
                let weak = Rc::downgrade(&inner);
                let room = opts_room;
                wasm_bindgen_futures::spawn_local(async move {
                    let Ok(key) = crate::crypto::RoomKey::derive(&k).await else {
                        view.status.set(Status::NoCrypto);
                        return;
                    };
                    let t = trust::Trust {
                        key,
                        room,
                        name: name.clone(),
                    };
                    let sealed = trust::seal(Some(&t), protocol::verify::name_aad, name).await;
                    let cert = crate::crypto::page_certificate().await;
                    let (Some(sealed), Some(call)) = (sealed, weak.upgrade()) else {
                        view.status.set(Status::NoCrypto);
                        return;
                    };
                    call.borrow_mut().ice.certificate = cert;
                    connect(sealed, Some(t));
                });
            }
        }
        let weak = Rc::downgrade(&inner);
        let tick = Interval::new(TICK_MS, move || {
            if let Some(call) = weak.upgrade() {
                let actions = call.borrow_mut().neg.tick(browser::now_ms());
                perform(&call, actions);
                measure::measure(&call);
            }
        });
        let weak = Rc::downgrade(&inner);
        let levels = Interval::new(measure::LEVELS_MS, move || {
            if let Some(call) = weak.upgrade() {
                measure::read_levels(&call);
            }
        });
        {
            let mut i = inner.borrow_mut();
            i._tick = Some(tick);
            i._levels = Some(levels);
        }
        Self(inner)
    }

    /// The camera is on: announce it and serve viewers that asked.
    pub fn set_local_stream(&self, stream: MediaStream) {
        let actions = {
            let mut i = self.0.borrow_mut();
            i.listen_to_mic(&stream);
            i.local = Some(stream);
            i.neg.local_media_ready(browser::now_ms())
        };
        perform(&self.0, actions);
    }

    /// A new camera or microphone: `track` (already in `stream`, the local
    /// stream from now on) goes out on every live connection in place of
    /// the old one, without renegotiation.
    pub fn replace_track(&self, stream: MediaStream, track: &web_sys::MediaStreamTrack) {
        let conns = {
            let mut i = self.0.borrow_mut();
            if i.local.is_none() {
                return;
            }
            if track.kind() == "audio" {
                i.listen_to_mic(&stream);
            }
            i.local = Some(stream);
            i.conns.clone()
        };
        conns.replace_track(track);
    }

    /// Shares `screen` with every viewer: its tracks go on every live
    /// connection (renegotiated, I still offer), and on every new one.
    pub fn share_screen(&self, screen: MediaStream) {
        let (conns, actions) = {
            let mut i = self.0.borrow_mut();
            // (`MediaStream::clone` is the JS method: a new stream with new
            // tracks. `Clone::clone` is the same stream.)
            if let Some(old) = i.screen.replace(Clone::clone(&screen)) {
                i.conns.stop_screen(&old);
                media::stop(&old);
            }
            let actions = i.neg.set_screen(Some(screen.id()));
            (i.conns.clone(), actions)
        };
        conns.send_screen(&screen);
        conns.replan();
        self.renegotiate_all(actions);
    }

    /// Stops sharing the screen (from the button or the browser's own bar).
    pub fn stop_screen(&self) {
        let (screen, actions) = {
            let mut i = self.0.borrow_mut();
            let Some(screen) = i.screen.take() else {
                return;
            };
            (screen, i.neg.set_screen(None))
        };
        let conns = self.0.borrow().conns.clone();
        conns.stop_screen(&screen);
        conns.replan();
        media::stop(&screen);
        self.renegotiate_all(actions);
    }

    /// Tells the room (`actions`), then offers again on every outbound connection.
    fn renegotiate_all(&self, actions: Vec<Action>) {
        perform(&self.0, actions);
        let outbound = self.0.borrow().neg.outbound();
        for (to, conn) in outbound {
            offer(&self.0, to, conn, false);
        }
    }

    /// Sends a chat message (1-2,000 characters; anything else is not sent)
    /// and shows it as mine. `false` if it was not sent (the text stays in
    /// the box).
    pub fn send_chat(&self, text: &str, my_name: &str) -> bool {
        let i = self.0.borrow();
        let (Some(_), Some(me)) = (&i.sig, i.neg.me()) else {
            return false;
        };
        // Only while joined: a message typed during a reconnect is not
        // held (the box keeps it).
        if !protocol::valid_chat_text(text) || i.view.status.get_untracked() != Status::Connected {
            return false;
        }
        let trust = i.trust.clone();
        let weak = Rc::downgrade(&self.0);
        let (plain, me_id) = (text.to_owned(), me.0.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let aad = |room: &str| protocol::verify::chat_aad(room, &me_id);
            let sealed = trust::seal(trust.as_deref(), aad, plain).await;
            if let (Some(text), Some(call)) = (sealed, weak.upgrade())
                && let Some(sig) = &call.borrow().sig
            {
                sig.send(&ClientMsg::Chat { text });
            }
        });
        let line = super::chat::ChatLine {
            from: me.0.clone(),
            name: my_name.to_owned(),
            text: text.to_owned(),
            ts: js_sys::Date::now() as u64,
            mine: true,
        };
        i.view.chat.update(|lines| super::chat::add(lines, line));
        true
    }

    /// Raises or lowers my hand.
    pub fn set_hand(&self, up: bool) {
        let actions = self.0.borrow_mut().neg.set_hand(up);
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
            i._levels = None;
            i._mic = None;
            let local = [i.local.take(), i.screen.take()];
            (i.sig.take(), i.conns.clone(), local, i.view)
        };
        conns.close_all();
        if let Some(sig) = sig {
            sig.close();
        }
        for s in local.iter().flatten() {
            media::stop(s);
        }
        view.tiles.set(Vec::new());
        view.status.set(Status::Left);
    }

    /// Open peer connections (for diagnostics and tests).
    pub fn connection_count(&self) -> usize {
        self.0.borrow().conns.len()
    }
}
