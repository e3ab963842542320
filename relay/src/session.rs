//! One WebSocket connection: read, validate, route; write from a bounded
//! queue; heartbeat; close codes. Two tasks per connection: this one reads,
//! a writer drains the queue, so a peer that stops reading only ever blocks
//! its own writer (and then its queue fills and the registry evicts it).

use crate::Relay;
use crate::bucket::TokenBucket;
use crate::rooms::{Join, Membership, Outbound, Outbox, encode};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use protocol::{
    ClientMsg, ErrorCode, PeerId, Route, ServerMsg, clean_name, close, valid_room, valid_token,
};
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval_at, timeout};
use tokio_util::sync::CancellationToken;

/// How long a close frame may take to go out before the socket is dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the read loop stopped.
enum End {
    /// The peer closed or the socket broke: nothing more to send.
    Gone,
    /// Close with this code (the writer sends it).
    Close(u16, &'static str),
}

pub async fn run(socket: WebSocket, relay: Relay) {
    let limits = &relay.config.limits;
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(limits.queue_len);
    let outbox = Outbox {
        tx,
        kill: CancellationToken::new(),
    };
    let writer = tokio::spawn(write_loop(sink, rx, outbox.kill.clone(), relay.clone()));

    let mut session = Session::new(&relay, outbox.clone());
    let end = session.read_loop(&mut stream).await;
    // Leave the room before the close frame goes out, so the room hears of
    // the departure no later than the peer hears of its close.
    drop(session.membership.take());
    match end {
        End::Close(code, reason) => outbox.close(code, reason),
        End::Gone => outbox.kill.cancel(),
    }
    if timeout(CLOSE_WRITE_TIMEOUT * 2, writer).await.is_err() {
        outbox.kill.cancel();
    }
}

/// Messages written before one flush, at most: whatever is queued when the
/// writer wakes goes out in one syscall, so a busy peer costs fewer writes.
const MAX_BATCH: usize = 32;

/// Writes queued messages until a close frame (then kills the connection,
/// which stops the reader too) or until killed. Queued messages are batched:
/// each is framed into the write buffer, and one flush sends them all.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    kill: CancellationToken,
    relay: Relay,
) {
    loop {
        let first = tokio::select! {
            biased;
            () = kill.cancelled() => return,
            next = rx.recv() => match next {
                Some(next) => next,
                None => return,
            },
        };
        let batch = tokio::select! {
            biased;
            () = kill.cancelled() => return,
            batch = write_batch(&mut sink, first, &mut rx, &relay) => batch,
        };
        match batch {
            Batch::Sent => {}
            Batch::Failed => {
                kill.cancel();
                return;
            }
            Batch::Close(frame) => {
                // Whatever was batched goes out with the close frame.
                let closed = timeout(CLOSE_WRITE_TIMEOUT, sink.send(Message::Close(Some(frame))));
                tokio::select! {
                    () = kill.cancelled() => {}
                    _ = closed => {}
                }
                kill.cancel();
                return;
            }
        }
    }
}

enum Batch {
    Sent,
    Failed,
    /// Messages before it are framed, not yet flushed.
    Close(CloseFrame),
}

/// Frames `first` and whatever else is queued (up to [`MAX_BATCH`]), then
/// flushes them in one write.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    first: Outbound,
    rx: &mut mpsc::Receiver<Outbound>,
    relay: &Relay,
) -> Batch {
    let mut next = Some(first);
    let mut batched = 0;
    while let Some(out) = next.take() {
        let msg = match out {
            Outbound::Text(text) => {
                relay.metrics.messages_out.fetch_add(1, Relaxed);
                Message::Text(text)
            }
            Outbound::Ping => Message::Ping(Default::default()),
            Outbound::Close(code, reason) => {
                return Batch::Close(CloseFrame {
                    code,
                    reason: Utf8Bytes::from(reason),
                });
            }
        };
        if sink.feed(msg).await.is_err() {
            return Batch::Failed;
        }
        batched += 1;
        if batched < MAX_BATCH {
            next = rx.try_recv().ok();
        }
    }
    match sink.flush().await {
        Ok(()) => Batch::Sent,
        Err(_) => Batch::Failed,
    }
}

struct Session<'a> {
    relay: &'a Relay,
    outbox: Outbox,
    membership: Option<Membership>,
    rate: TokenBucket,
    flood: TokenBucket,
    bad: TokenBucket,
}

impl<'a> Session<'a> {
    fn new(relay: &'a Relay, outbox: Outbox) -> Self {
        let l = &relay.config.limits;
        let now = Instant::now();
        Self {
            relay,
            outbox,
            membership: None,
            rate: TokenBucket::new(l.rate_burst, l.rate_per_sec, now),
            flood: TokenBucket::new(l.flood_tolerance, 1.0, now),
            bad: TokenBucket::new(l.bad_message_tolerance, 0.1, now),
        }
    }

    async fn read_loop(
        &mut self,
        stream: &mut futures_util::stream::SplitStream<WebSocket>,
    ) -> End {
        let limits = &self.relay.config.limits;
        let mut ping = interval_at(
            tokio::time::Instant::now() + limits.ping_interval,
            limits.ping_interval,
        );
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            let frame = tokio::select! {
                biased;
                () = self.outbox.kill.cancelled() => return End::Gone,
                // Departures are not announced during a shutdown (see Registry).
                () = self.relay.shutdown.cancelled() => return End::Close(close::GOING_AWAY, "relay restarting"),
                _ = ping.tick() => {
                    if last_heard.elapsed() >= limits.idle_timeout {
                        self.relay.metrics.heartbeat_timeouts.fetch_add(1, Relaxed);
                        return End::Gone;
                    }
                    self.queue(Outbound::Ping);
                    continue;
                }
                frame = stream.next() => frame,
            };
            last_heard = Instant::now();
            let text = match frame {
                None | Some(Ok(Message::Close(_))) => return End::Gone,
                Some(Err(e)) => {
                    return if is_too_big(e) {
                        End::Close(close::TOO_BIG, "message too big")
                    } else {
                        End::Gone
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Binary(_))) => {
                    if let Some(end) =
                        self.bad_message("binary frames are not supported: send JSON text")
                    {
                        return end;
                    }
                    continue;
                }
                Some(Ok(Message::Text(text))) => text,
            };
            self.relay.metrics.messages_in.fetch_add(1, Relaxed);
            let now = Instant::now();
            if !self.rate.take(now) {
                if !self.flood.take(now) {
                    return End::Close(close::POLICY, "flooding");
                }
                self.error(ErrorCode::RateLimited, "too many messages: slow down");
                continue;
            }
            let msg = match serde_json::from_str::<ClientMsg>(text.as_str()) {
                Ok(msg) => msg,
                Err(e) => {
                    if let Some(end) = self.bad_message(&format!("not a meshcast message: {e}")) {
                        return end;
                    }
                    continue;
                }
            };
            if let Some(end) = self.handle(msg) {
                return end;
            }
        }
    }

    fn handle(&mut self, msg: ClientMsg) -> Option<End> {
        let Some(me) = &self.membership else {
            return match msg {
                ClientMsg::Join {
                    room,
                    name,
                    role,
                    token,
                } => self.join(room, name, role, token),
                _ => {
                    self.error(ErrorCode::NotJoined, "send join first");
                    None
                }
            };
        };
        let registry = &self.relay.registry;
        let result = match msg.route(me.id.clone()) {
            Route::Join { .. } => {
                self.error(
                    ErrorCode::AlreadyJoined,
                    "this connection has already joined a room",
                );
                return None;
            }
            Route::Room(ServerMsg::BroadcastAvailable { .. }) => {
                registry.set_broadcasting(me, true)
            }
            Route::Room(ServerMsg::BroadcastEnded { .. }) => registry.set_broadcasting(me, false),
            Route::Room(out) => {
                registry.broadcast(me, &encode(&out));
                Ok(())
            }
            Route::Peer(to, out) => registry.send_to(me, &to, encode(&out)),
        };
        if let Err(e) = result {
            if e.code() == ErrorCode::BadMessage {
                return self.bad_message(&e.to_string());
            }
            self.error(e.code(), &e.to_string());
        }
        None
    }

    fn join(
        &mut self,
        room: protocol::RoomId,
        name: String,
        role: protocol::Role,
        token: Option<String>,
    ) -> Option<End> {
        if !valid_room(&room.0) {
            return self.bad_message("room: 1-64 characters of A-Z a-z 0-9 _ -");
        }
        let Some(name) = clean_name(&name) else {
            return self.bad_message("name: 1-64 characters after trimming, no control characters");
        };
        let id = match token.as_deref() {
            Some(t) if !valid_token(t) => {
                return self.bad_message("token: 32-128 characters of A-Z a-z 0-9 _ -");
            }
            Some(t) => id_from_token(t),
            None => random_id(),
        };
        let ice = self.relay.ice.servers_for(&id, SystemTime::now());
        let join = Join {
            id,
            room,
            name: name.to_owned(),
            role,
            ice_servers: ice,
        };
        match self.relay.registry.join(join, self.outbox.clone()) {
            Ok(m) => {
                tracing::debug!(room = %m.room, peer = %m.id, "joined");
                self.membership = Some(m);
            }
            Err(e) => self.error(e.code(), &e.to_string()),
        }
        None
    }

    /// Replies `badMessage`; closes with 1008 once the tolerance is spent.
    fn bad_message(&mut self, why: &str) -> Option<End> {
        if !self.bad.take(Instant::now()) {
            return Some(End::Close(close::POLICY, "too many bad messages"));
        }
        self.error(ErrorCode::BadMessage, why);
        None
    }

    fn error(&mut self, code: ErrorCode, message: &str) {
        self.relay.metrics.error(code);
        self.queue(Outbound::Text(encode(&ServerMsg::Error {
            code,
            message: message.to_owned(),
        })));
    }

    /// Queues for this connection itself; a full queue means it stopped reading.
    fn queue(&self, msg: Outbound) {
        if self.outbox.tx.try_send(msg).is_err() {
            self.outbox.kill.cancel();
        }
    }
}

fn is_too_big(e: axum::Error) -> bool {
    e.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// A stable id for a client secret: the same token gives the same id across
/// reconnects and relay restarts; the id does not reveal the token.
pub fn id_from_token(token: &str) -> PeerId {
    let digest = Sha256::new()
        .chain_update(b"meshcast peer id v1\0")
        .chain_update(token.as_bytes())
        .finalize();
    PeerId(hex(&digest[..8]))
}

fn random_id() -> PeerId {
    let mut bytes = [0u8; 8];
    // The OS RNG failing is not something a relay can recover from.
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
    PeerId(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
