//! The typed signaling client on gloo-net's WebSocket: sends `join` on every
//! (re)connection, parses relay messages, reconnects by the [`Backoff`]
//! policy, and holds a connection's signaling (offers, answers, candidates)
//! while the socket is down, until the next `welcome`. It knows nothing of
//! WebRTC; the call decides what a message means.
//!
//! Each socket is one task that owns the gloo-net `WebSocket` and selects
//! between relay messages and this client's commands (send, close).

mod backoff;

pub use backoff::{Backoff, Next, backoff_ms};

use crate::browser;
use backoff::{MAX_HELD, held_while_down};
use futures::channel::mpsc;
use futures::future::{Either, select};
use futures::{SinkExt as _, StreamExt as _};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::callback::Timeout;
use protocol::{ClientMsg, ServerMsg, close};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

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

/// What the client asks of the live socket's task.
enum Cmd {
    Send(String),
    /// Close with 1000 (leaving) and stop.
    Close,
}

struct Inner {
    url: String,
    join: String,
    /// The live socket's task, and which socket that is (events of an
    /// older socket are ignored).
    socket: Option<mpsc::UnboundedSender<Cmd>>,
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
        let join = serde_json::to_string(join).unwrap_or_else(|e| {
            // ClientMsg holds only strings and enums: this cannot happen.
            browser::log(&format!("signaling: join: {e}"));
            String::new()
        });
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
        let text = match serde_json::to_string(msg) {
            Ok(text) => text,
            Err(e) => return browser::log(&format!("signaling: {e}")),
        };
        let mut i = self.0.borrow_mut();
        if i.welcomed
            && let Some(tx) = &i.socket
        {
            if tx.unbounded_send(Cmd::Send(text)).is_err() {
                browser::log("signaling: socket task is gone");
            }
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
        if let Some(tx) = i.socket.take() {
            // A task that is gone has closed its socket already.
            if tx.unbounded_send(Cmd::Close).is_err() {
                browser::log("signaling: socket already closed");
            }
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

fn open(inner: &Shared) {
    let (url, join, attempt) = {
        let mut i = inner.borrow_mut();
        i.welcomed = false;
        (i.url.clone(), i.join.clone(), i.backoff.attempt())
    };
    emit(inner, SigEvent::Connecting { attempt });
    browser::mark_once("socket-connecting");
    let ws = match WebSocket::open(&url) {
        Ok(ws) => ws,
        Err(e) => {
            // A malformed URL: retrying will not help.
            browser::log(&format!("signaling: {e}"));
            let ev = SigEvent::Closed {
                code: 1015,
                retry_in_ms: None,
                attempt,
            };
            return emit(inner, ev);
        }
    };
    let (tx, rx) = mpsc::unbounded();
    let id = {
        let mut i = inner.borrow_mut();
        i.socket_id += 1;
        i.socket = Some(tx);
        i.socket_id
    };
    wasm_bindgen_futures::spawn_local(run_socket(Rc::downgrade(inner), id, ws, rx, join));
}

enum Event {
    Cmd(Option<Cmd>),
    Relay(Option<Result<Message, WebSocketError>>),
}

/// One socket's life: join once open, then relay messages in and commands
/// out until either side closes.
async fn run_socket(
    weak: Weak<RefCell<Inner>>,
    id: u64,
    mut ws: WebSocket,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    join: String,
) {
    // Resolves once the socket is open (or failed to open).
    let joined = ws.send(Message::Text(join)).await.is_ok();
    if joined {
        browser::mark_once("socket-open");
        if let Some(inner) = live(&weak, id) {
            emit(&inner, SigEvent::Open);
        }
    }
    let code = loop {
        let event = match select(cmds.next(), ws.next()).await {
            Either::Left((cmd, _)) => Event::Cmd(cmd),
            Either::Right((msg, _)) => Event::Relay(msg),
        };
        match event {
            Event::Cmd(Some(Cmd::Send(text))) => {
                if ws.send(Message::Text(text)).await.is_err() {
                    browser::log("signaling: send failed");
                }
            }
            Event::Cmd(Some(Cmd::Close) | None) => {
                if ws.close(Some(close::NORMAL), None).is_err() {
                    browser::log("signaling: close failed");
                }
                return;
            }
            Event::Relay(Some(Ok(Message::Text(text)))) => {
                let Some(inner) = live(&weak, id) else { return };
                on_text(&inner, &text);
            }
            Event::Relay(Some(Ok(Message::Bytes(_)))) => {}
            Event::Relay(Some(Err(WebSocketError::ConnectionClose(e)))) => break e.code,
            // An error event: the close event follows.
            Event::Relay(Some(Err(_))) => {}
            Event::Relay(None) => break 1006,
        }
    };
    if let Some(inner) = live(&weak, id) {
        closed(&inner, code);
    }
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
    if let Some(tx) = &i.socket {
        for text in held {
            if tx.unbounded_send(Cmd::Send(text)).is_err() {
                browser::log("signaling: socket task is gone");
            }
        }
    }
}

fn closed(inner: &Shared, code: u16) {
    let (retry_in_ms, attempt) = {
        let mut i = inner.borrow_mut();
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
