//! Routing inside a room: room-wide events, the broadcasting flag and
//! direct messages. Only a member's current connection can send; members in
//! their leave grace are listed, get no room-wide events (their `welcome`
//! re-synchronizes them) and have their direct messages held for the rejoin.

use super::{Inner, Member, Membership, Outbound, Registry, RouteError, encode, send_all_but};
use axum::extract::ws::Utf8Bytes;
use protocol::{PeerId, Role, ServerMsg};

impl Inner {
    /// The sender's own entry, if `me` is still its current connection.
    pub(super) fn current(&self, me: &Membership) -> Option<&[Member]> {
        let members = self.rooms.get(&me.room)?;
        members
            .iter()
            .any(|m| m.info.id == me.id && m.conn == me.conn && m.reachable())
            .then_some(members.as_slice())
    }
}

impl Registry {
    /// Sets the broadcasting flag and tells everyone else in the room.
    pub fn set_broadcasting(&self, me: &Membership, on: bool) -> Result<(), RouteError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(members) = inner.rooms.get_mut(&me.room) else {
            return Ok(());
        };
        let Some(m) = members
            .iter_mut()
            .find(|m| m.info.id == me.id && m.conn == me.conn && m.reachable())
        else {
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

    /// Raises or lowers the sender's hand and tells everyone else in the
    /// room; a repeat of the current state changes nothing and is not
    /// passed on.
    pub fn set_hand(&self, me: &Membership, up: bool) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(members) = inner.rooms.get_mut(&me.room) else {
            return;
        };
        let Some(m) = members
            .iter_mut()
            .find(|m| m.info.id == me.id && m.conn == me.conn && m.reachable())
        else {
            return;
        };
        if m.info.hand.is_some() == up {
            return;
        }
        let ts = super::now_ms();
        m.info.hand = up.then_some(ts);
        let msg = ServerMsg::Hand {
            from: me.id.clone(),
            up,
            ts,
        };
        let mut evicted = Vec::new();
        send_all_but(members, &me.room, &me.id, &encode(&msg), &mut evicted);
        self.evict(inner, evicted);
    }

    /// Sends an already-stamped event to everyone else in the sender's room
    /// (nothing, if `me` was replaced by a newer connection).
    pub fn broadcast(&self, me: &Membership, text: &Utf8Bytes) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut evicted = Vec::new();
        if let Some(members) = inner.current(me) {
            send_all_but(members, &me.room, &me.id, text, &mut evicted);
        }
        self.evict(inner, evicted);
    }

    /// Sends an already-stamped event to `to`, if it is in the sender's
    /// room; held for the rejoin if `to` is in its leave grace (dropped if
    /// that holds too much already). Nothing if `me` was replaced.
    pub fn send_to(&self, me: &Membership, to: &PeerId, text: Utf8Bytes) -> Result<(), RouteError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if inner.current(me).is_none() {
            return Ok(());
        }
        let target = inner
            .rooms
            .get_mut(&me.room)
            .and_then(|members| members.iter_mut().find(|m| &m.info.id == to))
            .ok_or(RouteError::UnknownPeer)?;
        if !target.reachable() {
            if !target.hold(text) {
                tracing::debug!(peer = %to, "away and holding too much: message dropped");
            }
        } else if !target.outbox.offer(Outbound::Text(text)) {
            self.evict(inner, vec![(me.room.clone(), to.clone())]);
        }
        Ok(())
    }
}
