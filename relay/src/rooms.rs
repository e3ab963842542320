//! The room registry: who is in which room, and routing between them.
//!
//! No sockets here: each member is a bounded outbound queue plus a kill
//! switch, so the logic is tested with plain channels. One std mutex guards
//! everything; it is never held across an `.await`, and messages are
//! serialized before it is taken.
//!
//! Invariants:
//! - a peer id is in at most one room, once;
//! - a member whose queue is full is removed at once (announced as left) and
//!   its connection killed: a slow reader never blocks or grows the room;
//! - `welcome` is the first message in a new member's queue;
//! - joining with the id of a connected peer replaces that connection
//!   (closed with 4000) without a leave in the room.

use crate::metrics::Metrics;
use axum::extract::ws::Utf8Bytes;
use protocol::{ErrorCode, IceServer, PeerId, PeerInfo, Role, RoomId, ServerMsg, close};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a connection's writer sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Text(Utf8Bytes),
    Ping,
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

/// The sending side of one connection: its queue and its kill switch.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub tx: mpsc::Sender<Outbound>,
    pub kill: CancellationToken,
}

impl Outbox {
    /// Queues a message; `false` if the queue is full (the caller evicts).
    fn offer(&self, msg: Outbound) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
            Err(mpsc::error::TrySendError::Full(_)) => false,
        }
    }

    /// Asks the connection to close with `code`; kills it if it cannot even
    /// queue the close frame.
    pub fn close(&self, code: u16, reason: &'static str) {
        if !self.offer(Outbound::Close(code, reason)) {
            self.kill.cancel();
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("the room is full")]
    RoomFull,
    #[error("no such peer in your room")]
    UnknownPeer,
    #[error("only broadcasters can announce a broadcast")]
    NotABroadcaster,
}

impl RouteError {
    pub fn code(&self) -> ErrorCode {
        match self {
            RouteError::RoomFull => ErrorCode::RoomFull,
            RouteError::UnknownPeer => ErrorCode::UnknownPeer,
            RouteError::NotABroadcaster => ErrorCode::BadMessage,
        }
    }
}

#[derive(Debug)]
struct Member {
    info: PeerInfo,
    conn: u64,
    outbox: Outbox,
}

#[derive(Debug, Default)]
struct Inner {
    /// Members in join order (rooms are small: a linear scan beats hashing).
    rooms: HashMap<RoomId, Vec<Member>>,
    /// Which room each peer id is in.
    where_is: HashMap<PeerId, RoomId>,
    next_conn: u64,
}

/// A cheap handle to the shared registry.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
    metrics: Arc<Metrics>,
    max_room_peers: usize,
    shutting_down: Arc<AtomicBool>,
}

/// Proof of membership; dropping it leaves the room (and announces it,
/// unless the connection was replaced, evicted or the relay is shutting down).
#[derive(Debug)]
pub struct Membership {
    registry: Registry,
    pub id: PeerId,
    pub room: RoomId,
    conn: u64,
}

/// A join request, validated by the caller.
#[derive(Debug)]
pub struct Join {
    pub id: PeerId,
    pub room: RoomId,
    pub name: String,
    pub role: Role,
    pub ice_servers: Vec<IceServer>,
}

pub fn encode(msg: &ServerMsg) -> Utf8Bytes {
    // ServerMsg holds only strings, bools and vectors: serializing cannot fail.
    Utf8Bytes::from(serde_json::to_string(msg).unwrap_or_else(|e| unreachable!("{e}")))
}

impl Registry {
    pub fn new(max_room_peers: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::default(),
            metrics,
            max_room_peers,
            shutting_down: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough maps
        // (every mutation is a single insert/remove); keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on departures are not announced: everyone is leaving.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Relaxed);
    }

    /// Joins a room and queues `welcome` as the member's first message.
    pub fn join(&self, join: Join, outbox: Outbox) -> Result<Membership, RouteError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.next_conn += 1;
        let conn = inner.next_conn;
        let Join {
            id,
            room,
            name,
            role,
            ice_servers,
        } = join;
        let info = PeerInfo {
            id: id.clone(),
            name,
            role,
            broadcasting: false,
        };

        let mut evicted = Vec::new();
        let previous_room = inner.where_is.get(&id).cloned();
        if previous_room.as_ref() == Some(&room) {
            // Same client, same room: take over its place silently.
            let members = inner.rooms.entry(room.clone()).or_default();
            if let Some(m) = members.iter_mut().find(|m| m.info.id == id) {
                m.outbox
                    .close(close::REPLACED, "replaced by a newer connection");
                let changed = m.info.name != info.name || m.info.role != info.role;
                m.info.broadcasting &= info.role == Role::Broadcaster;
                m.info.name = info.name;
                m.info.role = info.role;
                m.conn = conn;
                m.outbox = outbox;
                let peers = members
                    .iter()
                    .filter(|o| o.info.id != id)
                    .map(|o| o.info.clone())
                    .collect();
                self.welcome(members, &id, room.clone(), peers, ice_servers, &mut evicted);
                if changed && let Some(me) = members.iter().find(|m| m.info.id == id) {
                    let text = encode(&ServerMsg::PeerJoined {
                        peer: me.info.clone(),
                    });
                    send_all_but(members, &room, &id, &text, &mut evicted);
                }
            }
        } else {
            if inner
                .rooms
                .get(&room)
                .is_some_and(|m| m.len() >= self.max_room_peers)
            {
                return Err(RouteError::RoomFull);
            }
            if let Some(old_room) = previous_room {
                // Same client, other room: it really left the old one.
                if let Some(old) = remove(inner, &old_room, &id, None, &self.metrics) {
                    old.outbox
                        .close(close::REPLACED, "replaced by a newer connection");
                    self.announce_left(inner, &old_room, &id, &mut evicted);
                }
            }
            let members = inner.rooms.entry(room.clone()).or_default();
            if members.is_empty() {
                self.metrics.rooms.fetch_add(1, Relaxed);
            }
            self.metrics.peers.fetch_add(1, Relaxed);
            let peers = members.iter().map(|m| m.info.clone()).collect();
            let text = encode(&ServerMsg::PeerJoined { peer: info.clone() });
            send_all_but(members, &room, &id, &text, &mut evicted);
            members.push(Member { info, conn, outbox });
            self.welcome(members, &id, room.clone(), peers, ice_servers, &mut evicted);
            inner.where_is.insert(id.clone(), room.clone());
        }
        self.evict(inner, evicted);
        Ok(Membership {
            registry: self.clone(),
            id,
            room,
            conn,
        })
    }

    fn welcome(
        &self,
        members: &[Member],
        id: &PeerId,
        room: RoomId,
        peers: Vec<PeerInfo>,
        ice_servers: Vec<IceServer>,
        evicted: &mut Vec<(RoomId, PeerId)>,
    ) {
        let text = encode(&ServerMsg::Welcome {
            id: id.clone(),
            room: room.clone(),
            peers,
            ice_servers,
        });
        if let Some(me) = members.iter().find(|m| &m.info.id == id)
            && !me.outbox.offer(Outbound::Text(text))
        {
            evicted.push((room, id.clone()));
        }
    }

    /// Sets the broadcasting flag and tells everyone else in the room.
    pub fn set_broadcasting(&self, me: &Membership, on: bool) -> Result<(), RouteError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(members) = inner.rooms.get_mut(&me.room) else {
            return Ok(());
        };
        let Some(m) = members.iter_mut().find(|m| m.conn == me.conn) else {
            return Ok(());
        };
        if on && m.info.role != Role::Broadcaster {
            return Err(RouteError::NotABroadcaster);
        }
        m.info.broadcasting = on;
        let msg = if on {
            ServerMsg::BroadcastAvailable {
                from: me.id.clone(),
            }
        } else {
            ServerMsg::BroadcastEnded {
                from: me.id.clone(),
            }
        };
        let mut evicted = Vec::new();
        send_all_but(members, &me.room, &me.id, &encode(&msg), &mut evicted);
        self.evict(inner, evicted);
        Ok(())
    }

    /// Sends an already-stamped event to everyone else in the sender's room.
    pub fn broadcast(&self, me: &Membership, text: &Utf8Bytes) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut evicted = Vec::new();
        if let Some(members) = inner.rooms.get(&me.room) {
            send_all_but(members, &me.room, &me.id, text, &mut evicted);
        }
        self.evict(inner, evicted);
    }

    /// Sends an already-stamped event to `to`, if it is in the sender's room.
    pub fn send_to(&self, me: &Membership, to: &PeerId, text: Utf8Bytes) -> Result<(), RouteError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let target = inner
            .rooms
            .get(&me.room)
            .and_then(|members| members.iter().find(|m| &m.info.id == to))
            .ok_or(RouteError::UnknownPeer)?;
        if !target.outbox.offer(Outbound::Text(text)) {
            self.evict(inner, vec![(me.room.clone(), to.clone())]);
        }
        Ok(())
    }

    fn leave(&self, id: &PeerId, room: &RoomId, conn: u64) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if remove(inner, room, id, Some(conn), &self.metrics).is_some()
            && !self.shutting_down.load(Relaxed)
        {
            let mut evicted = Vec::new();
            self.announce_left(inner, room, id, &mut evicted);
            self.evict(inner, evicted);
        }
    }

    fn announce_left(
        &self,
        inner: &Inner,
        room: &RoomId,
        id: &PeerId,
        evicted: &mut Vec<(RoomId, PeerId)>,
    ) {
        if let Some(members) = inner.rooms.get(room) {
            send_all_but(
                members,
                room,
                id,
                &encode(&ServerMsg::PeerLeft { id: id.clone() }),
                evicted,
            );
        }
    }

    /// Removes members whose queue overflowed, kills their connections and
    /// announces them; announcing may overflow others, hence the worklist.
    fn evict(&self, inner: &mut Inner, mut work: Vec<(RoomId, PeerId)>) {
        while let Some((room, id)) = work.pop() {
            if let Some(gone) = remove(inner, &room, &id, None, &self.metrics) {
                gone.outbox.kill.cancel();
                self.metrics.slow_consumers_dropped.fetch_add(1, Relaxed);
                tracing::info!(%room, peer = %id, "slow consumer dropped");
                if !self.shutting_down.load(Relaxed) {
                    self.announce_left(inner, &room, &id, &mut work);
                }
            }
        }
    }

    /// Peers in a room, for tests and diagnostics.
    pub fn peers(&self, room: &RoomId) -> Vec<PeerInfo> {
        self.lock()
            .rooms
            .get(room)
            .map(|m| m.iter().map(|m| m.info.clone()).collect())
            .unwrap_or_default()
    }
}

/// Removes `id` from `room` (only if it is connection `conn`, when given).
fn remove(
    inner: &mut Inner,
    room: &RoomId,
    id: &PeerId,
    conn: Option<u64>,
    metrics: &Metrics,
) -> Option<Member> {
    let members = inner.rooms.get_mut(room)?;
    let pos = members
        .iter()
        .position(|m| &m.info.id == id && conn.is_none_or(|c| c == m.conn))?;
    let gone = members.remove(pos);
    metrics.peers.fetch_sub(1, Relaxed);
    if members.is_empty() {
        inner.rooms.remove(room);
        metrics.rooms.fetch_sub(1, Relaxed);
    }
    inner.where_is.remove(id);
    Some(gone)
}

/// Queues `text` for everyone in `room` but `except`; full queues go to `evicted`.
fn send_all_but(
    members: &[Member],
    room: &RoomId,
    except: &PeerId,
    text: &Utf8Bytes,
    evicted: &mut Vec<(RoomId, PeerId)>,
) {
    for m in members.iter().filter(|m| &m.info.id != except) {
        if !m.outbox.offer(Outbound::Text(text.clone())) {
            evicted.push((room.clone(), m.info.id.clone()));
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.registry.leave(&self.id, &self.room, self.conn);
    }
}

#[cfg(test)]
mod tests;
