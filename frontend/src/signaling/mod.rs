//! The typed signaling client on the browser's WebSocket: sends `join` on
//! every (re)connection, parses relay messages, reconnects by the
//! [`Backoff`] policy, and holds a connection's signaling (offers, answers,
//! candidates) while the socket is down, until the next `welcome`. It knows
//! nothing of WebRTC; the call decides what a message means.
//!
//! Each socket is a [`Socket`]: the `WebSocket` and its three listeners
//! (open, message, close), tagged with a number so that events of a
//! replaced socket are ignored.

mod backoff;

pub use backoff::{Backoff, Next, backoff_ms};

use crate::browser;
use backoff::{MAX_HELD, held_while_down};
use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use protocol::{ClientMsg, ServerMsg, close};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// What the call hears from the signaling layer.
#[derive(Debug)]
pub enum SigEvent {
    /// Opening a socket; `attempt` 0 is the first try after a drop.
    Connecting {
        attempt: u32,
    },
    Open,
    Message(ServerMsg),
    /// The socket closed; `retry_in_ms` is `None` when it will not reconnect.
    Closed {
        code: u16,
        retry_in_ms: Option<u32>,
        attempt: u32,
    },
}

type Handler = Rc<dyn Fn(SigEvent)>;

/// One socket and its listeners (dropped with it).
struct Socket {
    ws: WebSocket,
    _listeners: [EventListener; 3],
}

struct Inner {
    url: String,
    join: String,
    /// The live socket, and which socket that is (events of an older
    /// socket are ignored).
    socket: Option<Socket>,
    socket_id: u64,
    retry: Option<Timeout>,
    backoff: Backoff,
    /// `welcome` arrived on the current socket.
    welcomed: bool,
    /// Connection messages waiting for the next `welcome`.
    held: VecDeque<String>,
    stopped: bool,
    handler: Handler,
}

type Shared = Rc<RefCell<Inner>>;

/// A handle to the signaling connection; dropping it closes the socket.
pub struct Signaling(Shared);

impl Signaling {
    pub fn connect(url: String, join: &ClientMsg, handler: impl Fn(SigEvent) + 'static) -> Self {
        let join = join.to_json();
        let inner = Rc::new(RefCell::new(Inner {
            url,
            join,
            socket: None,
            socket_id: 0,
            retry: None,
            backoff: Backoff::default(),
            welcomed: false,
            held: VecDeque::new(),
            stopped: false,
            handler: Rc::new(handler),
        }));
        open(&inner);
        Self(inner)
    }

    /// Sends once joined. Until the next `welcome`, a connection's
    /// messages are held (see [`held_while_down`]); room-wide ones are
    /// dropped: the state is re-synchronized from that `welcome` instead.
    pub fn send(&self, msg: &ClientMsg) {
        let text = msg.to_json();
        let mut i = self.0.borrow_mut();
        if i.welcomed
            && let Some(s) = &i.socket
        {
            send_text(&s.ws, &text);
        } else if held_while_down(msg) {
            if i.held.len() >= MAX_HELD {
                i.held.pop_front();
            }
            i.held.push_back(text);
        }
    }

    /// Closes for good (leaving the call): close code 1000.
    pub fn close(&self) {
        let mut i = self.0.borrow_mut();
        i.stopped = true;
        i.retry = None;
        if let Some(s) = i.socket.take()
            && s.ws.close_with_code(close::NORMAL).is_err()
        {
            browser::log("signaling: close failed");
        }
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.close();
    }
}

fn emit(inner: &Shared, ev: SigEvent) {
    // Never hold the borrow while the handler runs: it may call `send`.
    let handler = inner.borrow().handler.clone();
    handler(ev);
}

fn send_text(ws: &WebSocket, text: &str) {
    if ws.send_with_str(text).is_err() {
        browser::log("signaling: send failed");
    }
}

fn open(inner: &Shared) {
    let (url, attempt) = {
        let mut i = inner.borrow_mut();
        i.welcomed = false;
        (i.url.clone(), i.backoff.attempt())
    };
    emit(inner, SigEvent::Connecting { attempt });
    browser::mark_once("socket-connecting");
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            // A malformed URL: retrying will not help.
            browser::log(&format!("signaling: {}", browser::describe(&e)));
            let ev = SigEvent::Closed {
                code: 1015,
                retry_in_ms: None,
                attempt,
            };
            return emit(inner, ev);
        }
    };
    let id = {
        let mut i = inner.borrow_mut();
        i.socket_id += 1;
        i.socket_id
    };
    let weak = Rc::downgrade(inner);
    let on_open = EventListener::once(&ws, "open", {
        let weak = weak.clone();
        move |_| {
            let Some(inner) = live(&weak, id) else { return };
            if let Some(s) = &inner.borrow().socket {
                send_text(&s.ws, &inner.borrow().join);
            }
            browser::mark_once("socket-open");
            emit(&inner, SigEvent::Open);
        }
    });
    let on_message = EventListener::new(&ws, "message", {
        let weak = weak.clone();
        move |ev| {
            let text = ev
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string());
            if let (Some(inner), Some(text)) = (live(&weak, id), text) {
                on_text(&inner, &text);
            }
        }
    });
    // An error event is always followed by the close event.
    let on_close = EventListener::once(&ws, "close", move |ev| {
        let code = ev.dyn_ref::<CloseEvent>().map_or(1006, CloseEvent::code);
        if let Some(inner) = live(&weak, id) {
            closed(&inner, code);
        }
    });
    inner.borrow_mut().socket = Some(Socket {
        ws,
        _listeners: [on_open, on_message, on_close],
    });
}

/// The client, if socket `id` is still its live one.
fn live(weak: &Weak<RefCell<Inner>>, id: u64) -> Option<Shared> {
    let inner = weak.upgrade()?;
    let current = {
        let i = inner.borrow();
        i.socket_id == id && i.socket.is_some()
    };
    current.then_some(inner)
}

fn on_text(inner: &Shared, text: &str) {
    match ServerMsg::from_json(text) {
        Ok(msg) => {
            if matches!(msg, ServerMsg::Welcome { .. }) {
                welcomed(inner);
            }
            emit(inner, SigEvent::Message(msg));
        }
        Err(e) => browser::log(&format!("signaling: unreadable message ({e})")),
    }
}

/// Joined: the retry counter starts over and held messages go out first.
fn welcomed(inner: &Shared) {
    let mut i = inner.borrow_mut();
    i.welcomed = true;
    i.backoff.welcomed();
    let held = std::mem::take(&mut i.held);
    if let Some(s) = &i.socket {
        for text in held {
            send_text(&s.ws, &text);
        }
    }
}

fn closed(inner: &Shared, code: u16) {
    let (retry_in_ms, attempt) = {
        let mut i = inner.borrow_mut();
        // (Dropping the listener that is running now is safe: wasm-bindgen
        // frees a closure once its last invocation returns.)
        i.socket = None;
        i.welcomed = false;
        let attempt = i.backoff.attempt();
        let jitter = f64::from(browser::random_bytes::<1>()[0]) / 255.0;
        match i.backoff.closed(code, jitter) {
            _ if i.stopped => (None, attempt),
            Next::Stop => (None, attempt),
            Next::Retry { in_ms } => {
                let weak = Rc::downgrade(inner);
                i.retry = Some(Timeout::new(in_ms, move || {
                    if let Some(inner) = weak.upgrade() {
                        open(&inner);
                    }
                }));
                (Some(in_ms), attempt)
            }
        }
    };
    emit(
        inner,
        SigEvent::Closed {
            code,
            retry_in_ms,
            attempt,
        },
    );
}
