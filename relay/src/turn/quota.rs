//! The one allocation counter: per user and in total, shared by the gate and
//! the relay ports. A slot is reserved for a client address when the gate
//! forwards its Allocate, so simultaneous Allocates cannot all pass; the
//! server's relay socket claims the reservation; the server's success makes
//! it an allocation. It is released when the server answers with an error,
//! when the allocation closes or its relay socket goes, or when an unclaimed
//! reservation gets no answer in time.

use crate::metrics::Metrics;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A reservation with no relay socket and no answer this long is released.
const RESERVATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a reservation was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Full {
    /// The user has its quota (486).
    User,
    /// The server has its maximum (508).
    Total,
}

#[derive(Debug)]
struct Slot {
    user: String,
    /// Tells this slot from a later one for the same client address.
    id: u64,
    /// Bumped on every (re)forwarded Allocate: the newest is the one the
    /// server is handling.
    seq: u64,
    reserved_at: Instant,
    /// A relay socket holds it.
    claimed: bool,
    /// The server answered success.
    live: bool,
}

#[derive(Debug, Default)]
struct Slots {
    by_client: HashMap<SocketAddr, Slot>,
    per_user: HashMap<String, usize>,
    live: usize,
    next: u64,
}

/// Allocations and reservations, by client address.
pub(super) struct Quota {
    user_quota: usize,
    max: usize,
    metrics: Arc<Metrics>,
    slots: Mutex<Slots>,
}

/// A relay socket's hold on its slot: dropping it releases the slot.
pub(super) struct Claim {
    quota: Arc<Quota>,
    client: SocketAddr,
    id: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.quota.release(self.client, self.id);
    }
}

impl Quota {
    pub(super) fn new(user_quota: usize, max: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            user_quota,
            max,
            metrics,
            slots: Mutex::default(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // A panic while holding it leaves plain data behind; carry on with it.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gate forwards an Allocate of `user` from `client`: reserves a slot
    /// unless the client has one already.
    pub(super) fn reserve(&self, user: &str, client: SocketAddr, now: Instant) -> Result<(), Full> {
        let mut s = self.slots();
        s.next += 1;
        let seq = s.next;
        if let Some(slot) = s.by_client.get_mut(&client) {
            slot.seq = seq;
            if !slot.live && !slot.claimed {
                slot.reserved_at = now;
            }
            return Ok(()); // a retransmission, or the server's business (437)
        }
        let full = |s: &Slots| {
            if s.per_user.get(user).copied().unwrap_or(0) >= self.user_quota {
                Some(Full::User)
            } else if s.by_client.len() >= self.max {
                Some(Full::Total)
            } else {
                None
            }
        };
        if full(&s).is_some() {
            Self::expire(&mut s, now);
            if let Some(full) = full(&s) {
                return Err(full);
            }
        }
        *s.per_user.entry(user.to_owned()).or_default() += 1;
        s.by_client.insert(
            client,
            Slot {
                user: user.to_owned(),
                id: seq,
                seq,
                reserved_at: now,
                claimed: false,
                live: false,
            },
        );
        Ok(())
    }

    /// Releases reservations nobody claimed or answered in time.
    fn expire(s: &mut Slots, now: Instant) {
        let stale: Vec<SocketAddr> = s
            .by_client
            .iter()
            .filter(|(_, slot)| {
                !slot.live
                    && !slot.claimed
                    && now.saturating_duration_since(slot.reserved_at) >= RESERVATION_TIMEOUT
            })
            .map(|(client, _)| *client)
            .collect();
        for client in stale {
            Self::remove(s, client);
        }
    }

    fn remove(s: &mut Slots, client: SocketAddr) -> Option<Slot> {
        let slot = s.by_client.remove(&client)?;
        if let Some(n) = s.per_user.get_mut(&slot.user) {
            *n -= 1;
            if *n == 0 {
                s.per_user.remove(&slot.user);
            }
        }
        if slot.live {
            s.live -= 1;
        }
        Some(slot)
    }

    /// The server wants a relay socket for the Allocate of `client` it is
    /// handling: that client's unclaimed reservation (the server runs one
    /// read loop per transport at once, so it must be this client's). None
    /// means no slot: no socket.
    pub(super) fn claim(self: &Arc<Self>, client: SocketAddr) -> Option<Claim> {
        let mut s = self.slots();
        let slot = s
            .by_client
            .get_mut(&client)
            .filter(|slot| !slot.claimed && !slot.live)?;
        slot.claimed = true;
        Some(Claim {
            quota: self.clone(),
            client,
            id: slot.id,
        })
    }

    /// The server answered `client`'s Allocate with success.
    pub(super) fn succeeded(&self, client: SocketAddr) {
        let mut s = self.slots();
        if let Some(slot) = s.by_client.get_mut(&client)
            && !slot.live
        {
            slot.live = true;
            s.live += 1;
            self.metrics.turn_allocations.store(s.live as u64, Relaxed);
        }
    }

    /// The server answered `client`'s Allocate with an error: a reservation
    /// is released (an allocation it already has stays).
    pub(super) fn failed(&self, client: SocketAddr) {
        let mut s = self.slots();
        if s.by_client.get(&client).is_some_and(|slot| !slot.live) {
            Self::remove(&mut s, client);
        }
    }

    /// The server closed the allocation of `user` for `client`.
    pub(super) fn closed(&self, user: &str, client: SocketAddr) {
        let mut s = self.slots();
        if s.by_client
            .get(&client)
            .is_some_and(|slot| slot.user == user)
        {
            Self::remove(&mut s, client);
            self.metrics.turn_allocations.store(s.live as u64, Relaxed);
        }
    }

    /// Releases `client`'s slot if it is still slot `id`.
    fn release(&self, client: SocketAddr, id: u64) {
        let mut s = self.slots();
        if s.by_client.get(&client).is_some_and(|slot| slot.id == id) {
            Self::remove(&mut s, client);
            self.metrics.turn_allocations.store(s.live as u64, Relaxed);
        }
    }

    /// Slots taken (reserved or live), for tests.
    #[cfg(test)]
    pub(super) fn taken(&self) -> usize {
        self.slots().by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn a_slot_is_taken_at_reservation_and_freed_on_every_way_out() {
        let metrics = Arc::new(Metrics::default());
        let q = Arc::new(Quota::new(2, 3, metrics.clone()));
        let t0 = Instant::now();
        assert_eq!(q.reserve("alice", client(1), t0), Ok(()));
        assert_eq!(q.reserve("alice", client(2), t0), Ok(()));
        assert_eq!(q.reserve("alice", client(3), t0), Err(Full::User));
        assert_eq!(q.reserve("alice", client(1), t0), Ok(()), "retransmission");
        assert_eq!(q.reserve("bob", client(4), t0), Ok(()));
        assert_eq!(q.reserve("carol", client(5), t0), Err(Full::Total));

        // The server errs for alice's first: that slot is free again.
        q.failed(client(1));
        assert_eq!(q.reserve("alice", client(3), t0), Ok(()));
        // The relay socket claims its client's reservation; success makes it live.
        assert!(q.claim(client(5)).is_none(), "nothing reserved for carol");
        let claim = q.claim(client(3)).expect("a reservation to claim");
        assert_eq!(claim.client, client(3));
        q.succeeded(client(3));
        assert_eq!(metrics.turn_allocations.load(Relaxed), 1);
        q.failed(client(3)); // a 437 for a live allocation keeps it
        assert_eq!(q.taken(), 3);
        // The socket goes: the slot goes with it.
        drop(claim);
        assert_eq!(q.taken(), 2);
        assert_eq!(metrics.turn_allocations.load(Relaxed), 0);
        // Closing frees a slot too, once.
        q.closed("bob", client(4));
        q.closed("bob", client(4));
        q.closed("mallory", client(2)); // not hers
        assert_eq!(q.taken(), 1);
    }

    #[test]
    fn an_unanswered_reservation_expires_and_a_stale_claim_frees_nothing() {
        let q = Arc::new(Quota::new(1, 10, Arc::new(Metrics::default())));
        let t0 = Instant::now();
        assert_eq!(q.reserve("alice", client(1), t0), Ok(()));
        let later = t0 + Duration::from_secs(5);
        assert_eq!(q.reserve("alice", client(2), later), Err(Full::User));
        // No answer, no socket: after the timeout the slot is given up.
        let much_later = t0 + RESERVATION_TIMEOUT;
        assert_eq!(q.reserve("alice", client(2), much_later), Ok(()));
        let old = q.claim(client(2)).expect("claim");
        q.closed("alice", client(2));
        // A new slot for the same address; the old socket's claim leaves it.
        assert_eq!(q.reserve("alice", client(2), much_later), Ok(()));
        drop(old);
        assert_eq!(q.taken(), 1);
        // A claimed reservation does not expire: the socket is real.
        let _claim = q.claim(client(2)).expect("claim");
        let hour = t0 + Duration::from_secs(3600);
        assert_eq!(q.reserve("alice", client(3), hour), Err(Full::User));
        assert!(
            q.claim(client(2)).is_none(),
            "claimed once: no second socket"
        );
        assert!(q.claim(client(3)).is_none(), "nothing reserved: no socket");
    }
}
