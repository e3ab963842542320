//! The gate in front of webrtc-rs's TURN server: the UDP socket it reads
//! from, so every datagram passes here first.
//!
//! The crate's server keeps a nonce for every unauthenticated request it
//! answers and forgets one only when a client presents it again, so a flood
//! of spoofed requests grows its memory without limit; and it relays to any
//! peer a client names. The gate closes both gaps without touching the
//! crate:
//! - it answers every challenge itself (401 and 438 with REALM and NONCE),
//!   checks the credentials (`expiry:peer`, HMAC of the shared secret) and
//!   MESSAGE-INTEGRITY, and forwards only requests that pass, so the server
//!   never mints a nonce for a stranger;
//! - the nonces it hands out are ones it made the server mint, by feeding it
//!   a request of its own; it rotates them before they expire and presents
//!   the expired one back so the server drops it: the server holds at most
//!   two or three nonces, whatever the traffic;
//! - CreatePermission and ChannelBind naming a refused peer get 403;
//! - Allocate over the per-user quota gets 486, over the total 508.
//!
//! Its own state is bounded too: the nonces, one entry per live allocation,
//! and a capped map of Allocate requests awaiting the server's answer.
//! Replies to unauthenticated requests are rate-limited, so the server is a
//! poor amplifier for spoofed floods.

use super::policy::PeerPolicy;
use super::{Auth, TurnLimits};
use crate::bucket::TokenBucket;
use crate::metrics::Metrics;
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stun::agent::TransactionId;
use stun::attributes::{
    ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS,
    RawAttribute,
};
use stun::error_code::{
    CODE_ALLOC_QUOTA_REACHED, CODE_BAD_REQUEST, CODE_FORBIDDEN, CODE_INSUFFICIENT_CAPACITY,
    CODE_STALE_NONCE, CODE_UNAUTHORIZED, ErrorCode, ErrorCodeAttribute,
};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, MAGIC_COOKIE, METHOD_ALLOCATE,
    METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH, Message, MessageType, Setter,
    is_message,
};
use stun::textattrs::TextAttribute;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The server's nonce lifetime (turn 0.17: one hour, from RFC 5766).
const SERVER_NONCE_LIFETIME: Duration = Duration::from_secs(3600);
/// Clients may use a nonce this long; later they get 438 and the next one.
const ACCEPT_FOR: Duration = Duration::from_secs(3600 - 120);
/// A new nonce is minted when the newest is this old.
const ROTATE_AFTER: Duration = Duration::from_secs(1800);
/// An injected request unanswered this long is given up.
const INJECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Allocate requests awaiting the server's answer, at most.
const MAX_PENDING_ALLOCATES: usize = 1024;
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

/// The server nonces the gate knows, oldest first.
#[derive(Debug, Default)]
pub(super) struct Nonces {
    known: Vec<(String, Instant)>,
    injected: Option<Instant>,
}

/// A request the gate feeds the server to make it mint a nonce.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Inject {
    /// An unauthenticated Allocate: the server answers 401 with a new nonce.
    Mint,
    /// An Allocate presenting this expired nonce: the server drops it and
    /// answers 438 with a new one.
    Retire(String),
}

impl Nonces {
    /// The nonce to hand out, if the newest is still good.
    pub(super) fn current(&self, now: Instant) -> Option<&str> {
        self.known
            .last()
            .filter(|(_, at)| now.saturating_duration_since(*at) < ACCEPT_FOR)
            .map(|(n, _)| n.as_str())
    }

    pub(super) fn accepts(&self, nonce: &[u8], now: Instant) -> bool {
        self.known
            .iter()
            .any(|(n, at)| n.as_bytes() == nonce && now.saturating_duration_since(*at) < ACCEPT_FOR)
    }

    /// What to feed the server now, if anything.
    pub(super) fn next(&mut self, now: Instant) -> Option<Inject> {
        if self
            .injected
            .is_some_and(|at| now.saturating_duration_since(at) < INJECT_TIMEOUT)
        {
            return None;
        }
        let inject = match self.known.as_slice() {
            [] => Inject::Mint,
            [.., (_, newest)] if now.saturating_duration_since(*newest) < ROTATE_AFTER => {
                return None;
            }
            [(oldest, at), _, ..]
                if now.saturating_duration_since(*at)
                    > SERVER_NONCE_LIFETIME + Duration::from_secs(5) =>
            {
                let oldest = oldest.clone();
                self.known.remove(0);
                Inject::Retire(oldest)
            }
            // Two good ones already: wait for the older to expire.
            [_, _, ..] => return None,
            [_] => Inject::Mint,
        };
        self.injected = Some(now);
        Some(inject)
    }

    /// The server minted `nonce`.
    pub(super) fn minted(&mut self, nonce: String, now: Instant) {
        self.injected = None;
        self.known.push((nonce, now));
        // Never more than three, whatever happens (each is ~40 bytes).
        if self.known.len() > 3 {
            self.known.remove(0);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.known.len()
    }
}

#[derive(Debug)]
struct State {
    nonces: Nonces,
    /// Live allocations per user (the peer id in `expiry:peer`), by client address.
    allocations: HashMap<String, HashSet<SocketAddr>>,
    total: usize,
    /// Allocate requests forwarded, by transaction id: (user, client address).
    pending: HashMap<[u8; 12], (String, SocketAddr)>,
    replies: TokenBucket,
}

/// The gate's logic, without the socket (tested directly).
pub(super) struct Gate {
    auth: Auth,
    policy: Arc<PeerPolicy>,
    limits: TurnLimits,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

impl Gate {
    pub(super) fn new(
        auth: Auth,
        policy: Arc<PeerPolicy>,
        limits: TurnLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        let replies =
            TokenBucket::new(limits.replies_burst, limits.replies_per_sec, Instant::now());
        Self {
            auth,
            policy,
            limits,
            metrics,
            state: Mutex::new(State {
                nonces: Nonces::default(),
                allocations: HashMap::new(),
                total: 0,
                pending: HashMap::new(),
                replies,
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
            return self.challenge(&mut state, &m, CODE_UNAUTHORIZED, &current, now);
        }
        if !m
            .get(ATTR_NONCE)
            .is_ok_and(|n| state.nonces.accepts(&n, now))
        {
            self.metrics.turn_challenges.fetch_add(1, Relaxed);
            return self.challenge(&mut state, &m, CODE_STALE_NONCE, &current, now);
        }
        let user = match self.authenticate(&mut m, method == METHOD_ALLOCATE) {
            Ok(user) => user,
            Err(code) => {
                self.metrics.turn_auth_failures.fetch_add(1, Relaxed);
                return self.challenge(&mut state, &m, code, &current, now);
            }
        };
        if method == METHOD_CREATE_PERMISSION || method == METHOD_CHANNEL_BIND {
            let peers = peer_addresses(&m);
            if peers.is_empty() {
                return self.reject(&mut state, &m, CODE_BAD_REQUEST, now);
            }
            if let Some(refused) = peers.iter().find(|p| !self.policy.allows(p.ip())) {
                tracing::debug!(%src, peer = %refused, "TURN: relaying to that peer refused");
                self.metrics.turn_peers_refused.fetch_add(1, Relaxed);
                return self.reject(&mut state, &m, CODE_FORBIDDEN, now);
            }
        }
        if method == METHOD_ALLOCATE {
            let has = state
                .allocations
                .get(&user)
                .is_some_and(|a| a.contains(&src));
            if !has {
                let mine = state.allocations.get(&user).map_or(0, HashSet::len);
                if mine >= self.limits.user_quota {
                    self.metrics.turn_quota_rejections.fetch_add(1, Relaxed);
                    return self.reject(&mut state, &m, CODE_ALLOC_QUOTA_REACHED, now);
                }
                if state.total >= self.limits.max_allocations {
                    self.metrics.turn_quota_rejections.fetch_add(1, Relaxed);
                    return self.reject(&mut state, &m, CODE_INSUFFICIENT_CAPACITY, now);
                }
            }
            if state.pending.len() >= MAX_PENDING_ALLOCATES {
                state.pending.clear(); // answers lost; the clients retransmit
            }
            state.pending.insert(m.transaction_id.0, (user, src));
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
        let (expiry, user) = username.split_once(':').unwrap_or((&username, ""));
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
        Ok(if user.is_empty() {
            username
        } else {
            user.to_owned()
        })
    }

    /// 401/438 carry the realm and the current nonce.
    fn challenge(
        &self,
        state: &mut State,
        req: &Message,
        code: ErrorCode,
        nonce: &str,
        now: Instant,
    ) -> Verdict {
        if !state.replies.take(now) {
            self.metrics.turn_replies_dropped.fetch_add(1, Relaxed);
            return Verdict::Drop;
        }
        error_response(
            req,
            code,
            vec![
                Box::new(TextAttribute::new(ATTR_REALM, self.auth.realm.clone())),
                Box::new(TextAttribute::new(ATTR_NONCE, nonce.to_owned())),
            ],
        )
    }

    fn reject(&self, state: &mut State, req: &Message, code: ErrorCode, now: Instant) -> Verdict {
        if !state.replies.take(now) {
            self.metrics.turn_replies_dropped.fetch_add(1, Relaxed);
            return Verdict::Drop;
        }
        error_response(req, code, Vec::new())
    }

    /// Sees what the server sends: nonces for the gate itself, and Allocate
    /// successes (a new allocation). Returns false if it must not go out.
    pub(super) fn outbound(&self, packet: &[u8], to: SocketAddr, now: Instant) -> bool {
        if !is_message(packet) || packet.len() < 20 {
            return true;
        }
        let typ = u16::from_be_bytes([packet[0], packet[1]]);
        let allocate_ok = MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE).value();
        if to == SELF_ADDR {
            let mut m = Message::new();
            if m.unmarshal_binary(packet).is_ok()
                && let Ok(Ok(nonce)) = m.get(ATTR_NONCE).map(String::from_utf8)
            {
                self.state().nonces.minted(nonce, now);
            }
            return false;
        }
        if typ == allocate_ok {
            let mut txid = [0u8; 12];
            txid.copy_from_slice(&packet[8..20]);
            let mut state = self.state();
            if let Some((user, client)) = state.pending.remove(&txid)
                && state.allocations.entry(user).or_default().insert(client)
            {
                state.total += 1;
                self.metrics
                    .turn_allocations
                    .store(state.total as u64, Relaxed);
            }
        }
        true
    }

    /// The server closed the allocation of `user` (`expiry:peer`) for `client`.
    pub(super) fn closed(&self, username: &str, client: SocketAddr) {
        let user = username.split_once(':').map_or(username, |(_, u)| u);
        let user = if user.is_empty() { username } else { user };
        let mut state = self.state();
        let removed = match state.allocations.get_mut(user) {
            Some(set) => {
                let removed = set.remove(&client);
                if set.is_empty() {
                    state.allocations.remove(user);
                }
                removed
            }
            None => false,
        };
        if removed {
            state.total -= 1;
            self.metrics
                .turn_allocations
                .store(state.total as u64, Relaxed);
        }
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

fn error_response(req: &Message, code: ErrorCode, mut extra: Vec<Box<dyn Setter>>) -> Verdict {
    let mut m = Message::new();
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(MessageType::new(req.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(req.transaction_id),
        Box::new(ErrorCodeAttribute {
            code,
            reason: Vec::new(),
        }),
    ];
    setters.append(&mut extra);
    setters.push(Box::new(FINGERPRINT));
    match m.build(&setters) {
        Ok(()) => Verdict::Reply(m.raw),
        Err(_) => Verdict::Drop,
    }
}

/// Every XOR-PEER-ADDRESS in the request (CreatePermission may carry several).
fn peer_addresses(m: &Message) -> Vec<SocketAddr> {
    m.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .filter_map(|a| xor_address(&a.value, &m.transaction_id))
        .collect()
}

/// Decodes an XOR-*-ADDRESS value (RFC 5389 15.2).
fn xor_address(v: &[u8], txid: &TransactionId) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    match (v.get(1)?, v.len()) {
        (1, 8) => {
            let o: [u8; 4] = std::array::from_fn(|i| v[4 + i] ^ cookie[i]);
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(o)), port))
        }
        (2, 20) => {
            let mask: Vec<u8> = cookie.iter().chain(txid.0.iter()).copied().collect();
            let o: [u8; 16] = std::array::from_fn(|i| v[4 + i] ^ mask[i]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        _ => None,
    }
}

/// The server's UDP socket, seen through the gate.
pub(super) struct GateConn {
    pub(super) gate: Arc<Gate>,
    pub(super) socket: UdpSocket,
    pub(super) inject: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
    pub(super) stop: CancellationToken,
}

#[async_trait]
impl util::Conn for GateConn {
    async fn connect(&self, _addr: SocketAddr) -> util::Result<()> {
        Err(util::Error::Other(
            "the TURN listener is not connected".into(),
        ))
    }

    async fn recv(&self, _buf: &mut [u8]) -> util::Result<usize> {
        Err(util::Error::Other(
            "the TURN listener has no single peer".into(),
        ))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> util::Result<(usize, SocketAddr)> {
        let mut inject = self.inject.lock().await;
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Err(util::Error::Other("closed".into())),
                Some(request) = inject.recv() => {
                    let n = request.len().min(buf.len());
                    buf[..n].copy_from_slice(&request[..n]);
                    return Ok((n, SELF_ADDR));
                }
                received = self.socket.recv_from(buf) => {
                    let (n, src) = match received {
                        Ok(r) => r,
                        Err(e) => {
                            // An ICMP error surfacing on the socket must not end the server.
                            tracing::debug!("TURN socket: {e}");
                            continue;
                        }
                    };
                    match self.gate.inspect(&buf[..n], src, Instant::now()) {
                        Verdict::Forward => return Ok((n, src)),
                        Verdict::Reply(reply) => {
                            if let Err(e) = self.socket.send_to(&reply, src).await {
                                tracing::debug!(%src, "TURN reply: {e}");
                            }
                        }
                        Verdict::Drop => {}
                    }
                }
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> util::Result<usize> {
        Err(util::Error::Other(
            "the TURN listener has no single peer".into(),
        ))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> util::Result<usize> {
        if !self.gate.outbound(buf, target, Instant::now()) {
            return Ok(buf.len());
        }
        Ok(self.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// The server calls this for every allocation it closes, on the socket
    /// they all share: it must not close anything. The listener stops with
    /// the server (`stop`).
    async fn close(&self) -> util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
