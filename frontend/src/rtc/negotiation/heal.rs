//! The healing half of the negotiator: connection state changes and the
//! periodic tick, and every bounded step they lead to (ICE restarts, giving
//! up a broken or stuck connection, asking again after a pause, forgetting
//! peers that did not come back after a relay restart).

use super::health::{ConnState, Health};
use super::remote::Inbound;
use super::{
    Action, ConnId, Dir, ICE_RESTART_WAIT_MS, INBOUND_GIVE_UP_MS, MAX_ICE_RESTARTS, Negotiator,
    REJOIN_GRACE_MS, retry_pause_ms,
};
use protocol::PeerId;

impl Negotiator {
    /// Periodic: every healing step that is due.
    pub fn tick(&mut self, now_ms: f64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.me.is_none() {
            return out;
        }
        let ids: Vec<PeerId> = self.peers.iter().map(|p| p.info.id.clone()).collect();
        for id in ids {
            self.heal(&id, now_ms, &mut out);
        }
        out
    }

    /// `connectionState` of connection `conn` changed; stale ones are ignored.
    pub fn connection_state(
        &mut self,
        dir: Dir,
        peer: &PeerId,
        conn: ConnId,
        state: ConnState,
        now_ms: f64,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.is_live(dir, peer, conn) {
            return out;
        }
        if let Some(p) = self.peer_mut(peer) {
            match dir {
                Dir::Inbound => {
                    p.in_health.update(state, now_ms);
                    match state {
                        ConnState::Failed => p.unreachable = true,
                        ConnState::Connected => {
                            p.unreachable = false;
                            p.give_ups = 0;
                            p.retry_at_ms = 0.0;
                            // A later failure may be retried relay-only
                            // again (a relay-only one stays relay-only).
                            p.relay_tried = false;
                        }
                        _ => {}
                    }
                }
                Dir::Outbound => p.out_health.update(state, now_ms),
            }
            self.heal(peer, now_ms, &mut out);
        }
        out
    }

    /// Every bounded healing step for one peer that is due at `now_ms`.
    fn heal(&mut self, id: &PeerId, now_ms: f64, out: &mut Vec<Action>) {
        let turn = self.turn;
        let Some(p) = self.peer_mut(id) else { return };
        // Not back after a relay restart, and its media stopped (or the
        // grace ran out): it is gone.
        if let Some(since) = p.unconfirmed_since {
            let stalled = p.in_health.broken(now_ms) || p.out_health.broken(now_ms);
            if stalled || now_ms - since >= REJOIN_GRACE_MS {
                self.forget(id, out);
                return;
            }
        }
        // Broadcaster side: restart ICE, a bounded number of times.
        if let Some(conn) = p.outbound
            && p.out_health.broken(now_ms)
        {
            let h = &mut p.out_health;
            let waited = h.restarts == 0 || now_ms - h.last_restart >= ICE_RESTART_WAIT_MS;
            if waited && h.restarts < MAX_ICE_RESTARTS && !h.stillborn() {
                h.restarts += 1;
                h.last_restart = now_ms;
                out.push(Action::RestartIce {
                    to: id.clone(),
                    conn,
                });
            } else if waited {
                // Give up; the viewer asks again when it can.
                p.outbound = None;
                p.out_health = Health::default();
                out.push(Action::Close {
                    dir: Dir::Outbound,
                    peer: id.clone(),
                });
            }
        }
        // Viewer side: a connection that never connects, or that broke and
        // was not healed by the broadcaster's restarts, is dropped.
        let h = &p.in_health;
        let given_up = h.stillborn()
            || h.stuck(now_ms)
            || h.trouble_since
                .is_some_and(|t| now_ms - t >= INBOUND_GIVE_UP_MS);
        if p.watching() && given_up {
            // One that never connected could not be reached: the tile of
            // the next attempt keeps saying why.
            p.unreachable |= !h.ever_connected;
            p.inbound = Inbound::Idle;
            p.in_health = Health::default();
            p.lost = true;
            if turn && !p.relay_tried {
                // Once more at once, through TURN alone: a network may
                // block every direct path and still let TURN through, and
                // ICE with every candidate may give up before the relayed
                // pairs are checked (a slow TCP or TLS allocation).
                p.relay_tried = true;
                p.relay_next = true;
                p.retry_at_ms = now_ms;
            } else {
                p.relay_next = false;
                p.give_ups += 1;
                p.retry_at_ms = now_ms + retry_pause_ms(p.give_ups);
            }
            out.push(Action::Close {
                dir: Dir::Inbound,
                peer: id.clone(),
            });
        }
        if p.info.broadcasting && matches!(p.inbound, Inbound::Idle | Inbound::Requested { .. }) {
            let id = id.clone();
            self.request(&id, now_ms, out);
        }
    }
}
