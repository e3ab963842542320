//! The typed WebSocket client: sends `join` on every (re)connection, parses
//! relay messages, reconnects by the [`Backoff`] policy, and holds a
//! connection's signaling (offers, answers, candidates) while the socket is
//! down, until the next `welcome`. It knows nothing of WebRTC; the call
//! decides what a message means.

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

/// What to do after the socket closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Retry {
        in_ms: u32,
    },
    /// Do not reconnect: another tab took this call over (4000).
    Stop,
}

/// The reconnect policy. The attempt counter resets on `welcome` (a relay
/// that accepts the socket and then closes it at once is still failing);
/// a relay that is full (1013) or closed us for policy (1008) is given at
/// least a second, and more each time.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

/// The least wait after 1013 or 1008.
pub const MIN_WAIT_AFTER_REFUSAL_MS: u32 = 1_000;

impl Backoff {
    /// Consecutive failed attempts since the last `welcome`.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn welcomed(&mut self) {
        self.attempt = 0;
    }

    /// The socket closed with `code`; `jitter` in 0..=1.
    pub fn closed(&mut self, code: u16, jitter: f64) -> Next {
        let attempt = self.attempt;
        let in_ms = match code {
            close::REPLACED => return Next::Stop,
            close::TRY_AGAIN_LATER | close::POLICY => {
                backoff_ms(attempt.saturating_add(3), jitter).max(MIN_WAIT_AFTER_REFUSAL_MS)
            }
            _ => backoff_ms(attempt, jitter),
        };
        self.attempt = attempt.saturating_add(1);
        Next::Retry { in_ms }
    }
}

/// Messages that belong to one peer connection: held while the socket is
/// down and sent after the next `welcome`, so a negotiation is not lost.
fn held_while_down(msg: &ClientMsg) -> bool {
    matches!(
        msg,
        ClientMsg::Offer { .. }
            | ClientMsg::Answer { .. }
            | ClientMsg::IceOfferCandidate { .. }
            | ClientMsg::IceAnswerCandidate { .. }
    )
}

/// Held messages, at most (a long outage: the oldest go first).
const MAX_HELD: usize = 512;

type Handler = Rc<dyn Fn(SigEvent)>;

struct Inner {
    url: String,
    join: String,
    ws: Option<WebSocket>,
    listeners: Vec<EventListener>,
    retry: Option<Timeout>,
    backoff: Backoff,
    /// `welcome` arrived on the current socket.
    welcomed: bool,
    /// Connection messages waiting for the next `welcome`.
    held: std::collections::VecDeque<String>,
    stopped: bool,
    handler: Handler,
}

/// A handle to the signaling connection; dropping the last one closes it.
pub struct Signaling(Rc<RefCell<Inner>>);

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
            ws: None,
            listeners: Vec::new(),
            retry: None,
            backoff: Backoff::default(),
            welcomed: false,
            held: Default::default(),
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
        let mut inner = self.0.borrow_mut();
        let open = inner
            .ws
            .as_ref()
            .filter(|ws| ws.ready_state() == WebSocket::OPEN && inner.welcomed);
        match open {
            Some(ws) if ws.send_with_str(&text).is_err() => browser::log("signaling: send failed"),
            Some(_) => {}
            None if held_while_down(msg) => {
                if inner.held.len() >= MAX_HELD {
                    inner.held.pop_front();
                }
                inner.held.push_back(text);
            }
            None => {}
        }
    }

    /// Closes for good (leaving the call).
    pub fn close(&self) {
        let mut inner = self.0.borrow_mut();
        inner.stopped = true;
        inner.retry = None;
        inner.listeners.clear();
        if let Some(ws) = inner.ws.take()
            && ws.close_with_code(close::NORMAL).is_err()
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

fn emit(inner: &Rc<RefCell<Inner>>, ev: SigEvent) {
    // Never hold the borrow while the handler runs: it may call `send`.
    let handler = inner.borrow().handler.clone();
    handler(ev);
}

fn open(inner: &Rc<RefCell<Inner>>) {
    let (url, attempt) = {
        let mut i = inner.borrow_mut();
        i.welcomed = false;
        (i.url.clone(), i.backoff.attempt())
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
            let sent = {
                let i = inner.borrow();
                i.ws.as_ref()
                    .is_some_and(|ws| ws.send_with_str(&i.join).is_ok())
            };
            if !sent {
                browser::log("signaling: could not send join");
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
                Ok(msg) => {
                    if matches!(msg, ServerMsg::Welcome { .. }) {
                        welcomed(&inner);
                    }
                    emit(&inner, SigEvent::Message(msg));
                }
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

/// Joined: the retry counter starts over and held messages go out.
fn welcomed(inner: &Rc<RefCell<Inner>>) {
    let mut i = inner.borrow_mut();
    i.welcomed = true;
    i.backoff.welcomed();
    let held = std::mem::take(&mut i.held);
    if let Some(ws) = &i.ws {
        for text in held {
            if ws.send_with_str(&text).is_err() {
                browser::log("signaling: send failed");
            }
        }
    }
}

fn closed(inner: &Rc<RefCell<Inner>>, code: u16) {
    let (retry_in_ms, attempt) = {
        let mut i = inner.borrow_mut();
        i.ws = None;
        i.welcomed = false;
        i.listeners.clear();
        let attempt = i.backoff.attempt();
        let jitter = f64::from(browser::random_bytes::<1>()[0]) / 255.0;
        match i.backoff.closed(code, jitter) {
            _ if i.stopped => (None, attempt),
            Next::Stop => (None, attempt),
            Next::Retry { in_ms } => {
                let weak: Weak<RefCell<Inner>> = Rc::downgrade(inner);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_counter_resets_on_welcome_not_on_open() {
        let mut b = Backoff::default();
        // A relay that accepts sockets and closes them before welcome:
        // opening is not success, so the waits keep growing.
        let waits: Vec<u32> = (0..6)
            .map(|_| match b.closed(1006, 0.5) {
                Next::Retry { in_ms } => in_ms,
                Next::Stop => panic!("1006 retries"),
            })
            .collect();
        assert_eq!(waits, vec![0, 250, 500, 1000, 2000, 4000]);
        b.welcomed();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.closed(1006, 0.5), Next::Retry { in_ms: 0 });
    }

    #[test]
    fn a_full_relay_or_a_policy_close_waits_at_least_a_second_and_backs_off() {
        for code in [close::TRY_AGAIN_LATER, close::POLICY] {
            let mut b = Backoff::default();
            let mut last = 0;
            for n in 0..8 {
                let Next::Retry { in_ms } = b.closed(code, 0.0) else {
                    panic!("{code} retries");
                };
                assert!(in_ms >= MIN_WAIT_AFTER_REFUSAL_MS, "{code} #{n}: {in_ms}");
                assert!(in_ms >= last, "{code} #{n}: {in_ms} < {last}");
                last = in_ms;
            }
            assert!(last >= 5_000, "{code}: backs off to {last}");
        }
    }

    #[test]
    fn replaced_stops() {
        let mut b = Backoff::default();
        assert_eq!(b.closed(close::REPLACED, 0.5), Next::Stop);
    }

    #[test]
    fn only_connection_messages_are_held() {
        let c = protocol::IceCandidate {
            candidate: "c".into(),
            sdp_mid: None,
            sdp_m_line_index: None,
            username_fragment: None,
        };
        assert!(held_while_down(&ClientMsg::IceAnswerCandidate {
            to: "p".into(),
            conn: 1,
            candidate: c
        }));
        assert!(held_while_down(&ClientMsg::Answer {
            to: "p".into(),
            conn: 1,
            sdp: "s".into()
        }));
        assert!(!held_while_down(&ClientMsg::BroadcastAvailable));
        assert!(!held_while_down(&ClientMsg::GetBroadcast {
            to: "p".into()
        }));
    }

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
