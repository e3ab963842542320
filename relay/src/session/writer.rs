//! A connection's writer: drains its queue in batches (one flush per batch)
//! and, once a close is requested, sends what is still queued and then the
//! close frame. A peer that stops reading only ever blocks this task.

use crate::metrics::Metrics;
use crate::rooms::{Inbox, Outbound, Outbox};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, stream::SplitSink};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Messages written before one flush, at most: whatever is queued when the
/// writer wakes goes out in one syscall, so a busy peer costs fewer writes.
const MAX_BATCH: usize = 32;

type Sink = SplitSink<WebSocket, Message>;

/// Writes queued messages until a close is requested (then the rest of the
/// queue and the close frame) or until killed. A failed write kills the
/// connection, which stops the reader too.
pub(super) async fn write_loop(
    mut sink: Sink,
    mut inbox: Inbox,
    outbox: Outbox,
    metrics: Arc<Metrics>,
) {
    let kill = outbox.kill.clone();
    loop {
        let first = tokio::select! {
            biased;
            () = kill.cancelled() => return,
            () = outbox.close_requested() => break,
            next = inbox.recv() => match next {
                Some(next) => next,
                None => return,
            },
        };
        let sent = tokio::select! {
            biased;
            () = kill.cancelled() => return,
            sent = write_batch(&mut sink, first, &mut inbox, &metrics) => sent,
        };
        if let Err(e) = sent {
            tracing::debug!("write failed: {e}");
            kill.cancel();
            return;
        }
    }
    let Some((code, reason)) = outbox.close_frame() else {
        return;
    };
    let closing = async {
        // Queued before the close: goes out before it.
        while let Some(out) = inbox.try_recv() {
            sink.feed(message(out, &metrics)).await?;
        }
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        sink.send(Message::Close(Some(frame))).await
    };
    tokio::select! {
        biased;
        () = kill.cancelled() => tracing::debug!(code, "killed before the close frame went out"),
        sent = closing => match sent {
            Ok(()) => tracing::debug!(code, reason, "close frame sent"),
            Err(e) => tracing::debug!(code, "close frame not sent: {e}"),
        },
    }
}

fn message(out: Outbound, metrics: &Metrics) -> Message {
    match out {
        Outbound::Text(text) => {
            metrics.messages_out.fetch_add(1, Relaxed);
            Message::Text(text)
        }
        Outbound::Ping => Message::Ping(Default::default()),
    }
}

/// Frames `first` and whatever else is queued (up to [`MAX_BATCH`]), then
/// flushes them in one write.
async fn write_batch(
    sink: &mut Sink,
    first: Outbound,
    inbox: &mut Inbox,
    metrics: &Metrics,
) -> Result<(), axum::Error> {
    let mut next = Some(first);
    let mut batched = 0;
    while let Some(out) = next.take() {
        sink.feed(message(out, metrics)).await?;
        batched += 1;
        if batched < MAX_BATCH {
            next = inbox.try_recv();
        }
    }
    sink.flush().await
}
