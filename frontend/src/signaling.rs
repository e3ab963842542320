//! The typed WebSocket client: sends `join` on every (re)connection, parses
//! relay messages, and reconnects with backoff and jitter. It knows nothing
//! of WebRTC; the call decides what a message means.

use crate::browser;
use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use protocol::{ClientMsg, ServerMsg, close};
use std::cell::RefCell;
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

/// Reconnection delay: immediately the first time, then growing to ~7 s,
/// with ±20% jitter so a restarted relay is not hit by everyone at once.
pub fn backoff_ms(attempt: u32, jitter: f64) -> u32 {
    if attempt == 0 {
        return 0;
    }
    let base = (250u32 << (attempt - 1).min(5)).min(7_000);
    (f64::from(base) * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as u32
}

type Handler = Rc<dyn Fn(SigEvent)>;

struct Inner {
    url: String,
    join: String,
    ws: Option<WebSocket>,
    listeners: Vec<EventListener>,
    retry: Option<Timeout>,
    /// Consecutive failed attempts since the last successful open.
    attempt: u32,
    stopped: bool,
    handler: Handler,
}

/// A handle to the signaling connection; dropping the last one closes it.
pub struct Signaling(Rc<RefCell<Inner>>);

impl Signaling {
    pub fn connect(url: String, join: &ClientMsg, handler: impl Fn(SigEvent) + 'static) -> Self {
        let join = serde_json::to_string(join).unwrap_or_default();
        let inner = Rc::new(RefCell::new(Inner {
            url,
            join,
            ws: None,
            listeners: Vec::new(),
            retry: None,
            attempt: 0,
            stopped: false,
            handler: Rc::new(handler),
        }));
        open(&inner);
        Self(inner)
    }

    /// Sends if connected. While disconnected messages are dropped: the
    /// state is re-synchronized from the next `welcome` instead.
    pub fn send(&self, msg: &ClientMsg) {
        let inner = self.0.borrow();
        let Some(ws) = inner
            .ws
            .as_ref()
            .filter(|ws| ws.ready_state() == WebSocket::OPEN)
        else {
            return;
        };
        match serde_json::to_string(msg) {
            Ok(text) => {
                if ws.send_with_str(&text).is_err() {
                    browser::log("signaling: send failed");
                }
            }
            Err(e) => browser::log(&format!("signaling: {e}")),
        }
    }

    /// Closes for good (leaving the call).
    pub fn close(&self) {
        let mut inner = self.0.borrow_mut();
        inner.stopped = true;
        inner.retry = None;
        inner.listeners.clear();
        if let Some(ws) = inner.ws.take() {
            let _ = ws.close_with_code(1000);
        }
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.close();
    }
}

fn emit(inner: &Rc<RefCell<Inner>>, ev: SigEvent) {
    // Never hold the borrow while the handler runs: it may call `send`.
    let handler = inner.borrow().handler.clone();
    handler(ev);
}

fn open(inner: &Rc<RefCell<Inner>>) {
    let (url, attempt) = {
        let i = inner.borrow();
        (i.url.clone(), i.attempt)
    };
    emit(inner, SigEvent::Connecting { attempt });
    browser::mark_once("socket-connecting");
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(_) => {
            // A malformed URL: retrying will not help.
            emit(
                inner,
                SigEvent::Closed {
                    code: 1015,
                    retry_in_ms: None,
                    attempt,
                },
            );
            return;
        }
    };
    let weak = Rc::downgrade(inner);
    let on_open = EventListener::new(&ws, "open", {
        let weak = weak.clone();
        move |_| {
            let Some(inner) = weak.upgrade() else { return };
            browser::mark_once("socket-open");
            {
                let mut i = inner.borrow_mut();
                i.attempt = 0;
                if let Some(ws) = &i.ws {
                    let _ = ws.send_with_str(&i.join);
                }
            }
            emit(&inner, SigEvent::Open);
        }
    });
    let on_message = EventListener::new(&ws, "message", {
        let weak = weak.clone();
        move |ev| {
            let Some(inner) = weak.upgrade() else { return };
            let Some(text) = ev
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
            else {
                return;
            };
            match serde_json::from_str::<ServerMsg>(&text) {
                Ok(msg) => emit(&inner, SigEvent::Message(msg)),
                Err(e) => browser::log(&format!("signaling: unreadable message ({e})")),
            }
        }
    });
    let on_close = EventListener::new(&ws, "close", move |ev| {
        let Some(inner) = weak.upgrade() else { return };
        let code = ev.dyn_ref::<CloseEvent>().map_or(1006, CloseEvent::code);
        closed(&inner, code);
    });
    let mut i = inner.borrow_mut();
    i.ws = Some(ws);
    i.listeners = vec![on_open, on_message, on_close];
}

fn closed(inner: &Rc<RefCell<Inner>>, code: u16) {
    let (retry_in_ms, attempt) = {
        let mut i = inner.borrow_mut();
        i.ws = None;
        i.listeners.clear();
        let attempt = i.attempt;
        // Replaced by another tab/connection with our token: do not fight it.
        if i.stopped || code == close::REPLACED {
            (None, attempt)
        } else {
            let jitter = f64::from(browser::random_bytes::<1>()[0]) / 255.0;
            let delay = backoff_ms(attempt, jitter);
            i.attempt += 1;
            let weak: Weak<RefCell<Inner>> = Rc::downgrade(inner);
            i.retry = Some(Timeout::new(delay, move || {
                if let Some(inner) = weak.upgrade() {
                    open(&inner);
                }
            }));
            (Some(delay), attempt)
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

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_starts_immediately_and_caps_near_seven_seconds() {
        assert_eq!(backoff_ms(0, 0.5), 0);
        assert_eq!(backoff_ms(1, 0.5), 250);
        assert_eq!(backoff_ms(2, 0.5), 500);
        assert_eq!(backoff_ms(3, 0.5), 1000);
        assert_eq!(backoff_ms(6, 0.5), 7000);
        assert_eq!(backoff_ms(60, 0.5), 7000);
        assert_eq!(backoff_ms(60, 0.0), 5600);
        assert_eq!(backoff_ms(60, 1.0), 8400);
        let growing: Vec<u32> = (0..8).map(|a| backoff_ms(a, 0.5)).collect();
        assert!(growing.windows(2).all(|w| w[0] <= w[1]), "{growing:?}");
    }
}
