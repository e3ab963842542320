//! The gate in front of webrtc-rs's TURN server: it sees every datagram
//! first and decides, for each, forward, answer or drop.
//!
//! The crate's server keeps a nonce for every unauthenticated request it
//! answers and forgets one only when a client presents it again, so a flood
//! of spoofed requests grows its memory without limit; and it relays to any
//! peer a client names. The gate closes both gaps without touching the
//! crate:
//! - it answers every challenge itself (401 and 438 with REALM and NONCE),
//!   checks the credentials (`expiry:peer`, HMAC of the shared secret) and
//!   MESSAGE-INTEGRITY, and forwards only requests that pass, so the server
//!   never mints a nonce for a stranger; the nonces it hands out are ones it
//!   made the server mint ([nonces](super::nonces));
//! - its replies are rate-limited per source IP and in total
//!   ([limiter](super::limiter)), so one flood cannot take every real
//!   client's challenge and the server is a poor amplifier;
//! - CreatePermission and ChannelBind naming a refused peer get 403;
//! - Allocate reserves a slot in the [quota](super::quota) before it is
//!   forwarded: over the per-user quota it gets 486, over the total 508.

use super::limiter::{Kind, Limiter, Refused};
use super::nonces::{Inject, Nonces};
use super::policy::PeerPolicy;
use super::quota::{Full, Quota};
use super::stun::{error_response, peer_addresses};
use super::{Auth, TurnLimits};
use crate::metrics::Metrics;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stun::agent::TransactionId;
use stun::attributes::{
    ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME, RawAttribute,
};
use stun::error_code::{
    CODE_ALLOC_QUOTA_REACHED, CODE_BAD_REQUEST, CODE_FORBIDDEN, CODE_INSUFFICIENT_CAPACITY,
    CODE_STALE_NONCE, CODE_UNAUTHORIZED, ErrorCode,
};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE,
    METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH, Message, MessageType, Setter,
    is_message,
};
use stun::textattrs::TextAttribute;
use turn::proto::lifetime::Lifetime;

/// The source address of the gate's own requests to the server. The server
/// answers it through `send_to`, where the gate takes the nonce out.
pub(super) const SELF_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// What the gate does with one datagram from a client.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Hand it to the server.
    Forward,
    /// Answer it with this instead.
    Reply(Vec<u8>),
    /// Ignore it.
    Drop,
}

#[derive(Debug)]
struct State {
    nonces: Nonces,
    replies: Limiter,
}

/// The gate's logic, without the socket (tested directly).
pub(super) struct Gate {
    auth: Auth,
    policy: Arc<PeerPolicy>,
    quota: Arc<Quota>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

/// The user (peer id) of a username `expiry:peer`; the whole name if it has
/// no peer part.
fn user_of(username: &str) -> &str {
    match username.split_once(':') {
        Some((_, user)) if !user.is_empty() => user,
        _ => username,
    }
}

impl Gate {
    pub(super) fn new(
        auth: Auth,
        policy: Arc<PeerPolicy>,
        limits: TurnLimits,
        quota: Arc<Quota>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            auth,
            policy,
            quota,
            metrics,
            state: Mutex::new(State {
                nonces: Nonces::default(),
                replies: Limiter::new(limits.replies, Instant::now()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding it leaves plain data behind; carry on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Judges one datagram from `src`.
    pub(super) fn inspect(&self, packet: &[u8], src: SocketAddr, now: Instant) -> Verdict {
        if !is_message(packet) {
            return Verdict::Forward; // ChannelData: the server checks the binding.
        }
        let mut m = Message::new();
        if m.unmarshal_binary(packet).is_err() {
            self.metrics.turn_malformed.fetch_add(1, Relaxed);
            return Verdict::Drop;
        }
        let method = m.typ.method;
        let guarded = [
            METHOD_ALLOCATE,
            METHOD_REFRESH,
            METHOD_CREATE_PERMISSION,
            METHOD_CHANNEL_BIND,
        ];
        if m.typ.class != CLASS_REQUEST || !guarded.contains(&method) {
            return Verdict::Forward; // Binding, and Send indications (need a permission).
        }
        let mut state = self.state();
        let Some(current) = state.nonces.current(now).map(str::to_owned) else {
            return Verdict::Drop; // Starting up: the client will retransmit.
        };
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            self.metrics.turn_challenges.fetch_add(1, Relaxed);
            return self.challenge(&mut state, &m, src, CODE_UNAUTHORIZED, &current, now);
        }
        if !m
            .get(ATTR_NONCE)
            .is_ok_and(|n| state.nonces.accepts(&n, now))
        {
            self.metrics.turn_challenges.fetch_add(1, Relaxed);
            return self.challenge(&mut state, &m, src, CODE_STALE_NONCE, &current, now);
        }
        let user = match self.authenticate(&mut m, method == METHOD_ALLOCATE) {
            Ok(user) => user,
            Err(code) => {
                self.metrics.turn_auth_failures.fetch_add(1, Relaxed);
                return self.challenge(&mut state, &m, src, code, &current, now);
            }
        };
        if method == METHOD_CREATE_PERMISSION || method == METHOD_CHANNEL_BIND {
            let peers = peer_addresses(&m);
            if peers.is_empty() {
                return self.reject(&mut state, &m, src, CODE_BAD_REQUEST, now);
            }
            if let Some(refused) = peers.iter().find(|p| !self.policy.allows(p.ip())) {
                tracing::debug!(%src, peer = %refused, "TURN: relaying to that peer refused");
                self.metrics.turn_peers_refused.fetch_add(1, Relaxed);
                return self.reject(&mut state, &m, src, CODE_FORBIDDEN, now);
            }
        }
        if method == METHOD_ALLOCATE
            && let Err(full) = self.quota.reserve(&user, src, now)
        {
            self.metrics.turn_quota_rejections.fetch_add(1, Relaxed);
            let code = match full {
                Full::User => CODE_ALLOC_QUOTA_REACHED,
                Full::Total => CODE_INSUFFICIENT_CAPACITY,
            };
            return self.reject(&mut state, &m, src, code, now);
        }
        Verdict::Forward
    }

    /// Checks USERNAME (`expiry:peer`), REALM and MESSAGE-INTEGRITY; returns the user (peer id).
    fn authenticate(&self, m: &mut Message, allocate: bool) -> Result<String, ErrorCode> {
        let text = |attr| {
            m.get(attr)
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or(CODE_BAD_REQUEST)
        };
        let username = text(ATTR_USERNAME)?;
        let realm = text(ATTR_REALM)?;
        if realm != self.auth.realm {
            return Err(CODE_UNAUTHORIZED);
        }
        let (expiry, _) = username.split_once(':').unwrap_or((&username, ""));
        let expiry = expiry.parse::<u64>().map_err(|_| CODE_UNAUTHORIZED)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // New allocations need a live credential; an allocation made with one
        // may be refreshed (and given permissions) for a while after it expires,
        // so a long call is not cut when its credential runs out.
        let deadline = if allocate {
            expiry
        } else {
            expiry.saturating_add(self.auth.refresh_grace.as_secs())
        };
        if now > deadline {
            return Err(CODE_UNAUTHORIZED);
        }
        let password = crate::ice::turn_credential(&self.auth.secret, &username);
        let key = MessageIntegrity::new_long_term_integrity(username.clone(), realm, password);
        key.check(m).map_err(|_| CODE_UNAUTHORIZED)?;
        Ok(user_of(&username).to_owned())
    }

    /// 401/438 carry the realm and the current nonce.
    fn challenge(
        &self,
        state: &mut State,
        req: &Message,
        src: SocketAddr,
        code: ErrorCode,
        nonce: &str,
        now: Instant,
    ) -> Verdict {
        if !self.may_reply(state, src, Kind::Challenge, now) {
            return Verdict::Drop;
        }
        let attrs: Vec<Box<dyn Setter>> = vec![
            Box::new(TextAttribute::new(ATTR_REALM, self.auth.realm.clone())),
            Box::new(TextAttribute::new(ATTR_NONCE, nonce.to_owned())),
        ];
        error_response(req, code, attrs).map_or(Verdict::Drop, Verdict::Reply)
    }

    fn reject(
        &self,
        state: &mut State,
        req: &Message,
        src: SocketAddr,
        code: ErrorCode,
        now: Instant,
    ) -> Verdict {
        if !self.may_reply(state, src, Kind::Rejection, now) {
            return Verdict::Drop;
        }
        error_response(req, code, Vec::new()).map_or(Verdict::Drop, Verdict::Reply)
    }

    fn may_reply(&self, state: &mut State, src: SocketAddr, kind: Kind, now: Instant) -> bool {
        match state.replies.allow(src, now, kind) {
            Ok(()) => true,
            Err(refused) => {
                self.metrics.turn_replies_dropped.fetch_add(1, Relaxed);
                if refused == Refused::PerIp {
                    self.metrics
                        .turn_replies_dropped_per_ip
                        .fetch_add(1, Relaxed);
                }
                false
            }
        }
    }

    /// Sees what the server sends: nonces for the gate itself, and answers to
    /// Allocate (a reservation becomes an allocation, or is released).
    /// Returns false if it must not go out.
    pub(super) fn outbound(&self, packet: &[u8], to: SocketAddr, now: Instant) -> bool {
        if !is_message(packet) || packet.len() < 20 {
            return true;
        }
        if to == SELF_ADDR {
            let mut m = Message::new();
            if m.unmarshal_binary(packet).is_ok()
                && let Ok(Ok(nonce)) = m.get(ATTR_NONCE).map(String::from_utf8)
            {
                self.state().nonces.minted(nonce, now);
            }
            return false;
        }
        let typ = u16::from_be_bytes([packet[0], packet[1]]);
        if typ == MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE).value() {
            self.quota.succeeded(to);
        } else if typ == MessageType::new(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE).value() {
            self.quota.failed(to);
        }
        true
    }

    /// The server closed the allocation of `username` (`expiry:peer`) for `client`.
    pub(super) fn closed(&self, username: &str, client: SocketAddr) {
        self.quota.closed(user_of(username), client);
    }

    /// A Refresh with LIFETIME 0 for the allocation made with `username`, as
    /// its client would send it: fed to the server when a TCP or TLS
    /// connection closes, since its allocation goes with it (RFC 5766 §2.1).
    pub(super) fn release(&self, username: &str, now: Instant) -> Option<Vec<u8>> {
        let nonce = self.state().nonces.current(now)?.to_owned();
        let password = crate::ice::turn_credential(&self.auth.secret, username);
        let mut m = Message::new();
        m.build(&[
            Box::new(MessageType::new(METHOD_REFRESH, CLASS_REQUEST)),
            Box::new(TransactionId::new()),
            Box::new(Lifetime(Duration::ZERO)),
            Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
            Box::new(TextAttribute::new(ATTR_REALM, self.auth.realm.clone())),
            Box::new(TextAttribute::new(ATTR_NONCE, nonce)),
            Box::new(MessageIntegrity::new_long_term_integrity(
                username.to_owned(),
                self.auth.realm.clone(),
                password,
            )),
        ])
        .ok()?;
        Some(m.raw)
    }

    /// The request to feed the server now, if any.
    pub(super) fn injection(&self, now: Instant) -> Option<Vec<u8>> {
        let inject = self.state().nonces.next(now)?;
        let mut m = Message::new();
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(TransactionId::new()),
        ];
        if let Inject::Retire(old) = inject {
            setters.push(Box::new(TextAttribute::new(ATTR_NONCE, old)));
            // Any integrity will do: the server looks at the nonce first.
            setters.push(Box::new(RawAttribute {
                typ: ATTR_MESSAGE_INTEGRITY,
                length: 20,
                value: vec![0; 20],
            }));
        }
        m.build(&setters).ok()?;
        Some(m.raw)
    }

    #[cfg(test)]
    pub(super) fn nonces(&self) -> usize {
        self.state().nonces.len()
    }
}
