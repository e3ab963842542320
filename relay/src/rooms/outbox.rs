//! One connection's outbound queue, bounded in messages and in bytes, and
//! its two stop signals: a close request (a code to send after what is
//! already queued) and a kill switch (stop writing now).

use axum::extract::ws::Utf8Bytes;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a connection's writer sends besides the close frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Text(Utf8Bytes),
    Ping,
}

impl Outbound {
    fn bytes(&self) -> usize {
        match self {
            Outbound::Text(t) => t.len(),
            Outbound::Ping => 0,
        }
    }
}

/// The close code (and reason) the relay asked for, set once.
#[derive(Debug, Default)]
struct Closing {
    frame: OnceLock<(u16, &'static str)>,
    requested: CancellationToken,
}

/// The sending side of one connection: its queue and its stop signals.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    /// Bytes of text queued and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
    closing: Arc<Closing>,
    /// Stop at once: nothing more is written, the reader stops too.
    pub kill: CancellationToken,
}

/// The writer's side of the queue.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

/// A queue of at most `len` messages and `max_bytes` bytes of text.
pub fn queue(len: usize, max_bytes: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(len.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox {
        tx,
        queued: queued.clone(),
        max_bytes,
        closing: Arc::default(),
        kill: CancellationToken::new(),
    };
    (outbox, Inbox { rx, queued })
}

impl Outbox {
    /// Queues a message; `false` if the queue is over its length or byte
    /// budget (the caller evicts). A message always fits an empty queue.
    /// Once a close is requested, messages are dropped (`true`): the
    /// connection is going.
    pub fn offer(&self, msg: Outbound) -> bool {
        if self.closing.requested.is_cancelled() || self.kill.is_cancelled() {
            return true;
        }
        let bytes = msg.bytes();
        let before = self.queued.fetch_add(bytes, Relaxed);
        if before > 0 && before + bytes > self.max_bytes {
            self.queued.fetch_sub(bytes, Relaxed);
            return false;
        }
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The writer is gone (a dropped member in its grace period).
                self.queued.fetch_sub(bytes, Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.fetch_sub(bytes, Relaxed);
                false
            }
        }
    }

    /// Asks the connection to close with `code` once what is already queued
    /// has gone out. The first request wins.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.closing.frame.set((code, reason)).is_err() {
            tracing::trace!(code, "close already requested");
        }
        self.closing.requested.cancel();
    }

    /// Resolves once a close is requested.
    pub async fn close_requested(&self) {
        self.closing.requested.cancelled().await;
    }

    /// The close frame asked for, if any.
    pub fn close_frame(&self) -> Option<(u16, &'static str)> {
        self.closing.frame.get().copied()
    }

    /// Bytes queued and not yet written (for tests and diagnostics).
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Relaxed)
    }
}

impl Inbox {
    /// The next message, waiting for one; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let msg = self.rx.recv().await?;
        self.taken(&msg);
        Some(msg)
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let msg = self.rx.try_recv().ok()?;
        self.taken(&msg);
        Some(msg)
    }

    fn taken(&self, msg: &Outbound) {
        self.queued.fetch_sub(msg.bytes(), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Outbound {
        Outbound::Text(Utf8Bytes::from("x".repeat(n)))
    }

    #[test]
    fn bounded_in_bytes_and_in_count() {
        let (out, mut inbox) = queue(3, 100);
        assert!(out.offer(text(60)));
        assert!(out.offer(text(40)));
        assert!(!out.offer(text(1)), "over the byte budget");
        assert_eq!(out.queued_bytes(), 100);
        assert_eq!(inbox.try_recv(), Some(text(60)));
        assert_eq!(out.queued_bytes(), 40);
        assert!(out.offer(text(60)));
        assert!(out.offer(Outbound::Ping));
        assert!(!out.offer(Outbound::Ping), "over the count");
        while inbox.try_recv().is_some() {}
        assert_eq!(out.queued_bytes(), 0);
        // One message bigger than the budget still fits an empty queue.
        assert!(out.offer(text(500)));
        assert!(!out.offer(text(1)));
    }

    #[test]
    fn after_a_close_request_messages_are_dropped() {
        let (out, mut inbox) = queue(4, 100);
        out.close(1008, "first");
        out.close(4000, "second");
        assert_eq!(out.close_frame(), Some((1008, "first")));
        assert!(out.offer(text(10)));
        assert_eq!(inbox.try_recv(), None);
    }
}
