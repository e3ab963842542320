//! A connection's read loop: frames in, validated, rate-limited and routed
//! through the registry; the heartbeat, the join timeout and the periodic
//! push of fresh TURN credentials run in the same `select!`.

use super::End;
use crate::Relay;
use crate::bucket::TokenBucket;
use crate::ids::{id_from_token, random_id};
use crate::rooms::{Join, Membership, Outbound, Outbox, encode};
use axum::extract::ws::{Message, WebSocket};
use futures_util::{StreamExt, stream::SplitStream};
use protocol::{
    ClientMsg, ErrorCode, Route, ServerMsg, close, valid_chat, valid_room, valid_sig,
    valid_stream_id, valid_token, valid_view_size, wire_name,
};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};
use tokio::time::{Interval, MissedTickBehavior, interval_at};

/// The shortest period between two `iceServers` pushes.
const MIN_ICE_REFRESH: Duration = Duration::from_secs(1);

pub(super) struct Session<'a> {
    relay: &'a Relay,
    outbox: Outbox,
    pub(super) membership: Option<Membership>,
    rate: TokenBucket,
    flood: TokenBucket,
    bad: TokenBucket,
    /// Fresh TURN credentials every half TTL while joined (if TURN is on).
    ice_refresh: Option<Interval>,
}

impl<'a> Session<'a> {
    pub(super) fn new(relay: &'a Relay, outbox: Outbox) -> Self {
        let l = &relay.config.limits;
        let now = Instant::now();
        Self {
            relay,
            outbox,
            membership: None,
            rate: TokenBucket::new(l.rate_burst, l.rate_per_sec, now),
            flood: TokenBucket::new(l.flood_tolerance, 1.0, now),
            bad: TokenBucket::new(l.bad_message_tolerance, 0.1, now),
            ice_refresh: None,
        }
    }

    pub(super) async fn read_loop(&mut self, stream: &mut SplitStream<WebSocket>) -> End {
        let limits = &self.relay.config.limits;
        let mut ping = interval_at(
            tokio::time::Instant::now() + limits.ping_interval,
            limits.ping_interval,
        );
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let join_deadline = tokio::time::sleep(limits.join_timeout);
        tokio::pin!(join_deadline);
        let mut last_heard = Instant::now();
        loop {
            let frame = tokio::select! {
                biased;
                () = self.outbox.kill.cancelled() => return End::Broken,
                () = self.outbox.close_requested() => return End::Closing,
                // Departures are not announced during a shutdown (see Registry).
                () = self.relay.shutdown.cancelled() => return close_with(close::GOING_AWAY, "relay restarting"),
                () = &mut join_deadline, if self.membership.is_none() => {
                    self.relay.metrics.join_timeouts.fetch_add(1, Relaxed);
                    return close_with(close::POLICY, "no join in time");
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= limits.idle_timeout {
                        self.relay.metrics.heartbeat_timeouts.fetch_add(1, Relaxed);
                        return End::Broken;
                    }
                    self.queue(Outbound::Ping);
                    continue;
                }
                () = tick(&mut self.ice_refresh) => {
                    self.push_ice_servers();
                    continue;
                }
                frame = stream.next() => frame,
            };
            last_heard = Instant::now();
            let text = match frame {
                Some(Ok(Message::Close(frame))) => {
                    let left =
                        frame.is_some_and(|f| f.code == close::NORMAL || f.code == close::LEAVING);
                    return End::ClientClosed { left };
                }
                None => return End::Broken,
                Some(Err(e)) => {
                    return if is_too_big(e) {
                        End::Close {
                            code: close::TOO_BIG,
                            reason: "message too big",
                            readable: false,
                        }
                    } else {
                        End::Broken
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
                    return close_with(close::POLICY, "flooding");
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
            Route::Room(ServerMsg::Chat { text, .. }) => {
                if !valid_chat(&text) {
                    return self.bad_message(
                        "chat text must be 1-2000 characters, not only spaces (or sealed, in a verified room)",
                    );
                }
                registry.chat(me, text);
                Ok(())
            }
            Route::Room(ServerMsg::Hand { up, .. }) => {
                registry.set_hand(me, up);
                Ok(())
            }
            Route::Peer(_, ServerMsg::ViewSize { width, height, .. })
                if !valid_view_size(width, height) =>
            {
                return self.bad_message("viewSize: width and height 0-8192");
            }
            Route::Room(ServerMsg::MediaState {
                screen: Some(ref s),
                ..
            }) if !valid_stream_id(s) => {
                return self.bad_message("mediaState.screen must be 1-64 chars of [A-Za-z0-9_{}-]");
            }
            Route::Peer(
                _,
                ServerMsg::Offer { sig: Some(s), .. } | ServerMsg::Answer { sig: Some(s), .. },
            ) if !valid_sig(&s) => {
                return self.bad_message("sig must be 1-64 characters of A-Z a-z 0-9 _ -");
            }
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
        let Some(name) = wire_name(&name) else {
            return self.bad_message(
                "name: 1-64 characters after trimming, no control characters (or sealed, in a verified room)",
            );
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
                self.start_ice_refresh();
            }
            Err(e) => self.error(e.code(), &e.to_string()),
        }
        None
    }

    /// With TURN configured, fresh credentials every half TTL from now on.
    fn start_ice_refresh(&mut self) {
        if !self.relay.ice.has_turn() {
            return;
        }
        let period = (self.relay.ice.turn_ttl / 2).max(MIN_ICE_REFRESH);
        let mut refresh = interval_at(tokio::time::Instant::now() + period, period);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.ice_refresh = Some(refresh);
    }

    fn push_ice_servers(&mut self) {
        let Some(me) = &self.membership else {
            return;
        };
        let ice_servers = self.relay.ice.servers_for(&me.id, SystemTime::now());
        tracing::trace!(peer = %me.id, "pushing fresh ICE servers");
        self.queue(Outbound::Text(encode(&ServerMsg::IceServers {
            ice_servers,
        })));
    }

    /// Replies `badMessage`; closes with 1008 once the tolerance is spent.
    fn bad_message(&mut self, why: &str) -> Option<End> {
        if !self.bad.take(Instant::now()) {
            return Some(close_with(close::POLICY, "too many bad messages"));
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

    /// Queues for this connection itself; a full queue means it stopped
    /// reading: it is closed (1008) like any slow consumer.
    fn queue(&self, msg: Outbound) {
        if !self.outbox.offer(msg) {
            self.relay
                .metrics
                .slow_consumers_dropped
                .fetch_add(1, Relaxed);
            tracing::info!("slow consumer dropped (its own replies)");
            self.outbox.close(close::POLICY, "too slow to read");
        }
    }
}

fn close_with(code: u16, reason: &'static str) -> End {
    End::Close {
        code,
        reason,
        readable: true,
    }
}

/// Ticks `interval` if there is one; never resolves otherwise.
async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn is_too_big(e: axum::Error) -> bool {
    e.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}
