//! One WebSocket connection from upgrade to the last byte: two tasks (the
//! [`reader`] reads, validates and routes; the [`writer`] drains the bounded
//! queue), how the membership ends (a clean leave, or a drop that keeps the
//! place for the leave grace), and how a close the relay starts reaches the
//! client: a Close frame after whatever was queued, then reading (and
//! discarding) until the client's Close or [`CLOSE_LINGER`], so the kernel
//! never resets a socket with the client's data unread.

mod reader;
mod writer;

use crate::Relay;
use crate::rooms::{Departure, queue};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{Stream, StreamExt};
use protocol::close;
use reader::Session;
use std::time::Duration;
use tokio::time::{Instant, timeout, timeout_at};

/// How long, after it sends a close frame, the relay waits for the client's
/// Close (reading and discarding whatever else arrives) before it shuts the
/// socket.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Why the read loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client sent a close frame; `left` if its code was 1000 or 1001.
    ClientClosed { left: bool },
    /// The socket broke, or went silent (heartbeat).
    Broken,
    /// The relay closes with this code. `readable`: the stream can still be
    /// read (after a read error it cannot).
    Close {
        code: u16,
        reason: &'static str,
        readable: bool,
    },
    /// Another part of the relay asked this connection to close (replaced,
    /// evicted): the registry has already dealt with the membership.
    Closing,
}

impl End {
    fn departure(self, grace: Duration) -> Departure {
        match self {
            End::ClientClosed { left: false } | End::Broken => Departure::Dropped(grace),
            End::ClientClosed { left: true } | End::Close { .. } | End::Closing => Departure::Leave,
        }
    }
}

pub async fn run(socket: WebSocket, relay: Relay) {
    let limits = &relay.config.limits;
    let (sink, mut stream) = socket.split();
    let (outbox, inbox) = queue(limits.queue_len, limits.queue_bytes);
    let mut writer = Some(tokio::spawn(writer::write_loop(
        sink,
        inbox,
        outbox.clone(),
        relay.metrics.clone(),
    )));

    let mut session = Session::new(&relay, outbox.clone());
    let end = session.read_loop(&mut stream).await;
    tracing::trace!(?end, "read loop ended");
    // Leave the room (or start the grace) before the close frame goes out,
    // so the room hears of a departure no later than the peer of its close.
    if let Some(membership) = session.membership.take() {
        membership.depart(end.departure(limits.leave_grace));
    }
    drop(session);

    let deadline = Instant::now() + CLOSE_LINGER;
    match end {
        End::Broken => outbox.kill.cancel(),
        End::ClientClosed { .. } => {
            // One more read sends the reply to the client's close.
            if timeout_at(deadline, drain(&mut stream)).await.is_err() {
                tracing::debug!("client never finished its close");
            }
            outbox.kill.cancel();
        }
        End::Close {
            code,
            reason,
            readable,
        } => {
            outbox.close(code, reason);
            linger(&mut stream, &mut writer, readable, deadline).await;
        }
        End::Closing => linger(&mut stream, &mut writer, true, deadline).await,
    }
    outbox.kill.cancel();
    join_writer(&mut writer).await;
}

type Writer = Option<tokio::task::JoinHandle<()>>;

/// Waits for the writer task (once; later calls return at once).
async fn join_writer(writer: &mut Writer) {
    if let Some(handle) = writer.as_mut() {
        let done = handle.await;
        *writer = None;
        if let Err(e) = done {
            tracing::warn!("connection writer failed: {e}");
        }
    }
}

/// After a close the relay asked for: the writer sends what is queued and
/// the close frame while this keeps reading until the client's Close (or,
/// when the stream can no longer be read, simply keeps the socket open) —
/// until `deadline` at most.
async fn linger<S>(stream: &mut S, writer: &mut Writer, readable: bool, deadline: Instant)
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let closed = timeout_at(deadline, async {
        if readable {
            drain(stream).await;
            join_writer(writer).await;
        } else {
            // Nothing tells us when the client has read our close: give it
            // the whole linger before the socket goes.
            std::future::pending::<()>().await;
        }
    })
    .await;
    if closed.is_err() && readable {
        tracing::debug!("no close from the client within {CLOSE_LINGER:?}");
    }
}

/// Reads and discards until the client's close has been read and answered
/// (the stream ends) or the socket breaks.
async fn drain<S>(stream: &mut S)
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    while let Some(frame) = stream.next().await {
        if let Err(e) = frame {
            tracing::trace!("while closing: {e}");
            return;
        }
    }
}

/// Closes a socket that was never admitted (1013), the same careful way:
/// the close frame, then reading until the client's Close or the linger.
pub async fn refuse(mut socket: WebSocket, code: u16, reason: &'static str) {
    debug_assert_eq!(code, close::TRY_AGAIN_LATER);
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    match timeout(CLOSE_LINGER, socket.send(Message::Close(Some(frame)))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::debug!(code, "close frame not sent: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(code, "close frame not sent within {CLOSE_LINGER:?}");
            return;
        }
    }
    if timeout(CLOSE_LINGER, drain(&mut socket)).await.is_err() {
        tracing::debug!(code, "no close from the client within {CLOSE_LINGER:?}");
    }
}
