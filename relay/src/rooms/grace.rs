//! The leave grace: a member whose socket dropped keeps its place for a
//! while, so a reconnect with the same token is not a leave and a join.
//!
//! One timer task per member in grace, cancelled by a rejoin (or any other
//! removal) and by shutdown; it takes the registry lock only to expire, never
//! across an `.await`.

use super::{Inner, Registry, remove};
use protocol::{PeerId, RoomId};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Registry {
    /// Marks connection `conn` of `id` as away and announces it as left
    /// after `grace`, unless it rejoins first. Without a runtime to run the
    /// timer (or during shutdown) it leaves at once.
    pub(super) fn start_grace(&self, id: &PeerId, room: &RoomId, conn: u64, grace: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(peer = %id, "no runtime for the leave grace; leaving at once");
            self.leave(id, room, conn);
            return;
        };
        if self.shutting_down() {
            self.leave(id, room, conn);
            return;
        }
        let token = {
            let mut inner = self.lock();
            let Some(member) = inner
                .rooms
                .get_mut(room)
                .and_then(|ms| ms.iter_mut().find(|m| &m.info.id == id && m.conn == conn))
            else {
                // Replaced or evicted meanwhile: nothing to keep.
                return;
            };
            let token = CancellationToken::new();
            if let Some(old) = member.away.replace(token.clone()) {
                old.cancel();
            }
            token
        };
        tracing::debug!(%room, peer = %id, ?grace, "socket dropped; keeping the place");
        let registry = self.clone();
        let (id, room) = (id.clone(), room.clone());
        runtime.spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = registry.shutdown.cancelled() => {}
                () = tokio::time::sleep(grace) => registry.expire(&id, &room, conn),
            }
        });
    }

    /// The grace ran out: if `conn` still holds the place and is away, it left.
    fn expire(&self, id: &PeerId, room: &RoomId, conn: u64) {
        let mut inner = self.lock();
        let inner: &mut Inner = &mut inner;
        let still_away = inner.rooms.get(room).is_some_and(|ms| {
            ms.iter()
                .any(|m| &m.info.id == id && m.conn == conn && m.away.is_some())
        });
        if !still_away || remove(inner, room, id, Some(conn), &self.metrics).is_none() {
            return;
        }
        self.metrics.grace_expiries.fetch_add(1, Relaxed);
        tracing::debug!(%room, peer = %id, "leave grace over");
        if !self.shutting_down() {
            let mut evicted = Vec::new();
            self.announce_left(inner, room, id, &mut evicted);
            self.evict(inner, evicted);
        }
    }
}
