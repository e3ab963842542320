//! The room registry: who is in which room, and routing between them.
//!
//! No sockets here: each member is a bounded outbound queue plus a kill
//! switch ([`outbox`]), so the logic is tested with plain channels. One std
//! mutex guards everything; it is never held across an `.await`, and
//! messages are serialized before it is taken.
//!
//! Invariants:
//! - a peer id is in at most one room, once;
//! - a member whose queue is full (in messages or bytes) is removed at once
//!   (announced as left) and its connection closed with 1008: a slow reader
//!   never blocks or grows the room;
//! - `welcome` is the first message in a new member's queue;
//! - joining with the id of a connected peer replaces that connection
//!   (closed with 4000) without a leave in the room, and only the current
//!   connection of a member can send;
//! - a member whose socket dropped stays for the leave grace ([`grace`]):
//!   listed, sent nothing, and taken back silently by a rejoin.

mod chat;
mod grace;
pub mod outbox;
mod route;

pub use outbox::{Inbox, Outbound, Outbox, queue};

use crate::metrics::Metrics;
use axum::extract::ws::Utf8Bytes;
use protocol::{ErrorCode, IceServer, PeerId, PeerInfo, Role, RoomId, ServerMsg, close};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    /// The connection that owns this place; only it may send.
    conn: u64,
    outbox: Outbox,
    /// Set while the socket is gone and the leave grace runs; cancelling it
    /// stops the grace timer.
    away: Option<CancellationToken>,
    /// Direct messages that arrived while away, for the rejoin (bounded by
    /// [`MAX_HELD_MESSAGES`] and [`MAX_HELD_BYTES`]; beyond that they are
    /// dropped and the peers' own timeouts restart the negotiation).
    held: Vec<Utf8Bytes>,
    held_bytes: usize,
}

/// Direct messages held for a member in its leave grace, at most.
pub const MAX_HELD_MESSAGES: usize = 64;
/// Bytes of direct messages held for a member in its leave grace, at most.
pub const MAX_HELD_BYTES: usize = 256 * 1024;

impl Member {
    fn reachable(&self) -> bool {
        self.away.is_none()
    }

    /// Keeps a direct message for the rejoin; `false` if over the bounds.
    fn hold(&mut self, text: Utf8Bytes) -> bool {
        let fits =
            self.held.len() < MAX_HELD_MESSAGES && self.held_bytes + text.len() <= MAX_HELD_BYTES;
        if fits {
            self.held_bytes += text.len();
            self.held.push(text);
        }
        fits
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Members in join order (rooms are small: a linear scan beats hashing).
    rooms: HashMap<RoomId, Vec<Member>>,
    /// Which room each peer id is in.
    where_is: HashMap<PeerId, RoomId>,
    /// Each room's recent chat (removed with the room).
    chat: HashMap<RoomId, chat::ChatLog>,
    next_conn: u64,
}

/// A cheap handle to the shared registry.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
    metrics: Arc<Metrics>,
    max_room_peers: usize,
    /// Cancelled when the relay shuts down: departures are not announced.
    shutdown: CancellationToken,
}

/// How a membership ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Left (or was made to leave): the room hears `peerLeft` now.
    Leave,
    /// The socket dropped: keep the place this long before `peerLeft`.
    Dropped(Duration),
}

/// Proof of membership; dropping it leaves the room (and announces it,
/// unless the connection was replaced, evicted or the relay is shutting
/// down). [`Membership::depart`] chooses how.
#[derive(Debug)]
pub struct Membership {
    registry: Registry,
    pub id: PeerId,
    pub room: RoomId,
    conn: u64,
    departure: Departure,
}

impl Membership {
    /// Ends the membership: at once, or after a grace period.
    pub fn depart(mut self, how: Departure) {
        self.departure = how;
    }
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

/// The wall clock in ms since the Unix epoch (chat and hand stamps).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn encode(msg: &ServerMsg) -> Utf8Bytes {
    // ServerMsg holds only strings, bools and vectors: serializing cannot fail.
    Utf8Bytes::from(serde_json::to_string(msg).unwrap_or_else(|e| unreachable!("{e}")))
}

/// Members whose queue overflowed, to evict once the send is done.
type Evicted = Vec<(RoomId, PeerId)>;

impl Registry {
    pub fn new(max_room_peers: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::default(),
            metrics,
            max_room_peers,
            shutdown: CancellationToken::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough maps
        // (every mutation is a single insert/remove); keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on departures are not announced: everyone is leaving.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    fn shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
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
            hand: None,
        };

        let mut evicted = Vec::new();
        let previous_room = inner.where_is.get(&id).cloned();
        if previous_room.as_ref() == Some(&room) {
            // Same client, same room: take over its place silently (also
            // when the old socket dropped and its place waits in grace).
            let members = inner.rooms.entry(room.clone()).or_default();
            if let Some(m) = members.iter_mut().find(|m| m.info.id == id) {
                if let Some(away) = m.away.take() {
                    away.cancel();
                    self.metrics.grace_resumes.fetch_add(1, Relaxed);
                } else {
                    m.outbox
                        .close(close::REPLACED, "replaced by a newer connection");
                }
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
                welcome(
                    members,
                    &id,
                    room.clone(),
                    peers,
                    ice_servers,
                    inner.chat.get(&room),
                    &mut evicted,
                );
                // What was sent to it while away follows the welcome.
                if let Some(me) = members.iter_mut().find(|m| m.info.id == id) {
                    me.held_bytes = 0;
                    for text in std::mem::take(&mut me.held) {
                        // Held messages never cost the place: what does not
                        // fit is dropped (the peers' timeouts restart those
                        // negotiations).
                        if !me.outbox.offer(Outbound::Text(text)) {
                            break;
                        }
                    }
                }
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
            members.push(Member {
                info,
                conn,
                outbox,
                away: None,
                held: Vec::new(),
                held_bytes: 0,
            });
            welcome(
                members,
                &id,
                room.clone(),
                peers,
                ice_servers,
                inner.chat.get(&room),
                &mut evicted,
            );
            inner.where_is.insert(id.clone(), room.clone());
        }
        self.evict(inner, evicted);
        Ok(Membership {
            registry: self.clone(),
            id,
            room,
            conn,
            departure: Departure::Leave,
        })
    }

    fn leave(&self, id: &PeerId, room: &RoomId, conn: u64) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if remove(inner, room, id, Some(conn), &self.metrics).is_some() && !self.shutting_down() {
            let mut evicted = Vec::new();
            self.announce_left(inner, room, id, &mut evicted);
            self.evict(inner, evicted);
        }
    }

    fn announce_left(&self, inner: &Inner, room: &RoomId, id: &PeerId, evicted: &mut Evicted) {
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

    /// Removes members whose queue overflowed, closes their connections
    /// (1008) and announces them; announcing may overflow others, hence the
    /// worklist.
    fn evict(&self, inner: &mut Inner, mut work: Evicted) {
        while let Some((room, id)) = work.pop() {
            if let Some(gone) = remove(inner, &room, &id, None, &self.metrics) {
                gone.outbox.close(close::POLICY, "too slow to read");
                self.metrics.slow_consumers_dropped.fetch_add(1, Relaxed);
                tracing::info!(%room, peer = %id, "slow consumer dropped");
                if !self.shutting_down() {
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

fn welcome(
    members: &[Member],
    id: &PeerId,
    room: RoomId,
    peers: Vec<PeerInfo>,
    ice_servers: Vec<IceServer>,
    chat: Option<&chat::ChatLog>,
    evicted: &mut Evicted,
) {
    let text = encode(&ServerMsg::Welcome {
        id: id.clone(),
        room: room.clone(),
        peers,
        ice_servers,
        chat: chat.map(chat::ChatLog::recent).unwrap_or_default(),
    });
    if let Some(me) = members.iter().find(|m| &m.info.id == id)
        && !me.outbox.offer(Outbound::Text(text))
    {
        evicted.push((room, id.clone()));
    }
}

/// Removes `id` from `room` (only if it is connection `conn`, when given)
/// and stops its grace timer, if any.
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
    if let Some(away) = &gone.away {
        away.cancel();
    }
    metrics.peers.fetch_sub(1, Relaxed);
    if members.is_empty() {
        inner.rooms.remove(room);
        inner.chat.remove(room);
        metrics.rooms.fetch_sub(1, Relaxed);
    }
    inner.where_is.remove(id);
    Some(gone)
}

/// Queues `text` for everyone reachable in `room` but `except`; full queues
/// go to `evicted`.
fn send_all_but(
    members: &[Member],
    room: &RoomId,
    except: &PeerId,
    text: &Utf8Bytes,
    evicted: &mut Evicted,
) {
    for m in members
        .iter()
        .filter(|m| &m.info.id != except && m.reachable())
    {
        if !m.outbox.offer(Outbound::Text(text.clone())) {
            evicted.push((room.clone(), m.info.id.clone()));
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        match self.departure {
            Departure::Dropped(grace) if !grace.is_zero() => {
                self.registry
                    .start_grace(&self.id, &self.room, self.conn, grace);
            }
            _ => self.registry.leave(&self.id, &self.room, self.conn),
        }
    }
}

#[cfg(test)]
mod tests;
