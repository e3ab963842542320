//! The gate's decisions, datagram by datagram, without sockets. The real
//! server behind it is exercised in tests/turn.rs.

use super::gate::{Gate, SELF_ADDR, Verdict};
use super::limiter::ReplyRates;
use super::policy::PeerPolicy;
use super::quota::Quota;
use super::{Auth, REALM, TurnLimits};
use crate::ice::turn_credential;
use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stun::agent::TransactionId;
use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::ErrorCodeAttribute;
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE,
    METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH, Message, MessageType, Method,
    Setter,
};
use stun::textattrs::TextAttribute;
use turn::proto::channum::ChannelNumber;
use turn::proto::peeraddr::PeerAddress;

const SECRET: &str = "s3cret";

fn gate(metrics: Arc<Metrics>) -> Gate {
    let limits = TurnLimits {
        max_allocations: 3,
        user_quota: 2,
        replies: ReplyRates {
            per_sec: 10.0,
            burst: 20.0,
            per_ip_per_sec: 10.0,
            per_ip_burst: 20.0,
        },
    };
    let quota = Quota::new(limits.user_quota, limits.max_allocations, metrics.clone());
    Gate::new(
        Auth {
            secret: SECRET.into(),
            realm: REALM.into(),
            refresh_grace: Duration::from_secs(3600),
        },
        Arc::new(PeerPolicy::default()),
        limits,
        Arc::new(quota),
        metrics,
    )
}

/// Plays the server's part once: it answers the gate's request with `nonce`.
fn mint(g: &Gate, nonce: &str, now: Instant) {
    let request = g.injection(now).expect("the gate asks for a nonce");
    let mut req = Message::new();
    req.unmarshal_binary(&request).expect("a STUN request");
    assert_eq!(req.typ, MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST));
    let answer = build(&[
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE)),
        Box::new(req.transaction_id),
        Box::new(TextAttribute::new(ATTR_NONCE, nonce.into())),
    ]);
    assert!(
        !g.outbound(&answer, SELF_ADDR, now),
        "the answer to the gate is not sent anywhere"
    );
}

fn build(setters: &[Box<dyn Setter>]) -> Vec<u8> {
    let mut m = Message::new();
    m.build(setters).expect("build");
    m.raw
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

struct Req {
    method: Method,
    nonce: Option<&'static str>,
    /// (username, password)
    creds: Option<(String, String)>,
    realm: &'static str,
    peers: Vec<SocketAddr>,
}

impl Req {
    fn new(method: Method) -> Self {
        Self {
            method,
            nonce: None,
            creds: None,
            realm: REALM,
            peers: Vec::new(),
        }
    }

    /// Signed with a credential for `user` expiring at `expiry`.
    fn signed(mut self, nonce: &'static str, user: &str, expiry: u64) -> Self {
        let username = format!("{expiry}:{user}");
        let password = turn_credential(SECRET, &username);
        self.nonce = Some(nonce);
        self.creds = Some((username, password));
        self
    }

    fn peer(mut self, addr: &str) -> Self {
        self.peers.push(addr.parse().expect("addr"));
        self
    }

    fn bytes(&self) -> (Vec<u8>, TransactionId) {
        let txid = TransactionId::new();
        let mut s: Vec<Box<dyn Setter>> = vec![
            Box::new(MessageType::new(self.method, CLASS_REQUEST)),
            Box::new(txid),
        ];
        for p in &self.peers {
            s.push(Box::new(PeerAddress {
                ip: p.ip(),
                port: p.port(),
            }));
        }
        if self.method == METHOD_CHANNEL_BIND {
            s.push(Box::new(ChannelNumber(0x4000)));
        }
        if let Some((username, password)) = &self.creds {
            s.push(Box::new(TextAttribute::new(
                ATTR_USERNAME,
                username.clone(),
            )));
            s.push(Box::new(TextAttribute::new(ATTR_REALM, self.realm.into())));
            if let Some(n) = self.nonce {
                s.push(Box::new(TextAttribute::new(ATTR_NONCE, n.into())));
            }
            s.push(Box::new(MessageIntegrity::new_long_term_integrity(
                username.clone(),
                self.realm.into(),
                password.clone(),
            )));
        }
        (build(&s), txid)
    }
}

fn src(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

/// The error code of a reply, and its NONCE if any.
fn error_of(v: &Verdict) -> (u16, Option<String>) {
    let Verdict::Reply(bytes) = v else {
        panic!("expected a reply, got {v:?}");
    };
    let mut m = Message::new();
    m.unmarshal_binary(bytes).expect("reply parses");
    assert_eq!(m.typ.class, CLASS_ERROR_RESPONSE);
    let mut code = ErrorCodeAttribute::default();
    code.get_from(&m).expect("an error code");
    let nonce = m
        .get(ATTR_NONCE)
        .ok()
        .map(|n| String::from_utf8(n).expect("utf8"));
    (code.code.0, nonce)
}

#[test]
fn unauthenticated_requests_are_challenged_by_the_gate_and_never_reach_the_server() {
    let metrics = Arc::new(Metrics::default());
    let g = gate(metrics.clone());
    let t0 = Instant::now();
    let (allocate, _) = Req::new(METHOD_ALLOCATE).bytes();
    assert_eq!(
        g.inspect(&allocate, src(1), t0),
        Verdict::Drop,
        "no nonce yet: the client retransmits"
    );
    mint(&g, "nonce-1", t0);
    let first = g.inspect(&allocate, src(1), t0);
    assert_eq!(error_of(&first), (401, Some("nonce-1".into())));

    // A flood from 100k spoofed sources: answered at the challenge rate,
    // never forwarded, and the server still holds one nonce.
    let mut replies = 0;
    for i in 0..100_000u32 {
        let from = SocketAddr::from((
            [198, 18, (i >> 8) as u8, i as u8],
            1024 + (i % 60_000) as u16,
        ));
        match g.inspect(&allocate, from, t0) {
            Verdict::Forward => panic!("an unauthenticated request reached the server"),
            Verdict::Reply(_) => replies += 1,
            Verdict::Drop => {}
        }
    }
    assert_eq!(replies, 19, "the burst, less the first challenge");
    assert_eq!(g.nonces(), 1);
    assert_eq!(metrics.turn_replies_dropped.load(Relaxed), 100_000 - 19);
    // The bucket refills: a second later there are answers again.
    let later = t0 + Duration::from_secs(1);
    assert!(matches!(
        g.inspect(&allocate, src(2), later),
        Verdict::Reply(_)
    ));

    // Not STUN (ChannelData) and STUN Binding go to the server untouched.
    assert_eq!(
        g.inspect(&[0x40, 0, 0, 4, 1, 2, 3, 4], src(1), t0),
        Verdict::Forward
    );
    let (binding, _) = Req::new(stun::message::METHOD_BINDING).bytes();
    assert_eq!(g.inspect(&binding, src(1), t0), Verdict::Forward);
    // Garbage that looks like STUN is dropped.
    let mut garbage = allocate.clone();
    garbage[3] = 200; // claims more attributes than there are
    assert_eq!(g.inspect(&garbage, src(1), later), Verdict::Drop);
}

#[test]
fn credentials_are_checked_by_the_gate() {
    let metrics = Arc::new(Metrics::default());
    let g = gate(metrics.clone());
    let t0 = Instant::now();
    mint(&g, "nonce-1", t0);
    let live = unix_now() + 600;
    let answer = |r: &Req| error_of(&g.inspect(&r.bytes().0, src(1), t0));

    let (good, _) = Req::new(METHOD_ALLOCATE)
        .signed("nonce-1", "alice", live)
        .bytes();
    assert_eq!(g.inspect(&good, src(1), t0), Verdict::Forward);

    let mut wrong = Req::new(METHOD_ALLOCATE).signed("nonce-1", "alice", live);
    wrong.creds = wrong.creds.map(|(u, _)| (u, "not-the-password".into()));
    assert_eq!(answer(&wrong).0, 401);

    let expired = Req::new(METHOD_ALLOCATE).signed("nonce-1", "alice", unix_now() - 1);
    assert_eq!(answer(&expired).0, 401);

    let mut other_realm = Req::new(METHOD_ALLOCATE).signed("nonce-1", "alice", live);
    other_realm.realm = "elsewhere";
    assert_eq!(answer(&other_realm).0, 401);

    let mut no_expiry = Req::new(METHOD_ALLOCATE).signed("nonce-1", "alice", live);
    no_expiry.creds = Some(("alice".into(), turn_credential(SECRET, "alice")));
    assert_eq!(answer(&no_expiry).0, 401);

    // A nonce the server never minted: 438 with the real one.
    let stale = Req::new(METHOD_ALLOCATE).signed("made-up", "alice", live);
    assert_eq!(answer(&stale), (438, Some("nonce-1".into())));
    assert_eq!(metrics.turn_auth_failures.load(Relaxed), 4);

    // An expired credential may still refresh an allocation within the grace...
    let refresh = Req::new(METHOD_REFRESH).signed("nonce-1", "alice", unix_now() - 60);
    assert_eq!(g.inspect(&refresh.bytes().0, src(1), t0), Verdict::Forward);
    // ...but not after it.
    let refresh = Req::new(METHOD_REFRESH).signed("nonce-1", "alice", unix_now() - 3700);
    assert_eq!(answer(&refresh).0, 401);
}

#[test]
fn permissions_for_refused_peers_get_403() {
    let metrics = Arc::new(Metrics::default());
    let g = gate(metrics.clone());
    let t0 = Instant::now();
    mint(&g, "nonce-1", t0);
    let live = unix_now() + 600;
    let perm = |peers: &[&str], method| {
        let mut r = Req::new(method).signed("nonce-1", "alice", live);
        for p in peers {
            r = r.peer(p);
        }
        g.inspect(&r.bytes().0, src(1), t0)
    };
    for refused in [
        "127.0.0.1:9",
        "10.0.0.1:5000",
        "192.168.1.1:5000",
        "169.254.169.254:80",
        "[::1]:9",
        "[::ffff:127.0.0.1]:9",
        "[::ffff:169.254.169.254]:80",
        "[fd00::1]:5000",
        "224.0.0.1:5000",
    ] {
        for method in [METHOD_CREATE_PERMISSION, METHOD_CHANNEL_BIND] {
            assert_eq!(error_of(&perm(&[refused], method)).0, 403, "{refused}");
        }
    }
    // One bad address among good ones is enough to refuse.
    assert_eq!(
        error_of(&perm(
            &["8.8.8.8:5000", "10.1.1.1:5000"],
            METHOD_CREATE_PERMISSION
        ))
        .0,
        403
    );
    assert_eq!(
        perm(&["8.8.8.8:5000"], METHOD_CREATE_PERMISSION),
        Verdict::Forward
    );
    assert_eq!(
        perm(&["[2606:4700::1111]:5000"], METHOD_CHANNEL_BIND),
        Verdict::Forward
    );
    assert_eq!(error_of(&perm(&[], METHOD_CREATE_PERMISSION)).0, 400);
    assert_eq!(metrics.turn_peers_refused.load(Relaxed), 19);
}

/// The server's success answer to Allocate `txid`, as it goes out to `to`.
fn allocate_succeeds(g: &Gate, txid: TransactionId, to: SocketAddr) {
    let ok = build(&[
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE)),
        Box::new(txid),
    ]);
    assert!(g.outbound(&ok, to, Instant::now()));
}

fn allocate(g: &Gate, user: &str, from: SocketAddr) -> (Verdict, TransactionId) {
    let (bytes, txid) = Req::new(METHOD_ALLOCATE)
        .signed("nonce-1", user, unix_now() + 600)
        .bytes();
    (g.inspect(&bytes, from, Instant::now()), txid)
}

#[test]
fn allocations_are_capped_per_user_and_in_total() {
    let metrics = Arc::new(Metrics::default());
    let g = gate(metrics.clone());
    mint(&g, "nonce-1", Instant::now());
    let allocated = |user: &str, from| {
        let (verdict, txid) = allocate(&g, user, from);
        if verdict == Verdict::Forward {
            allocate_succeeds(&g, txid, from);
        }
        verdict
    };
    assert_eq!(allocated("alice", src(1)), Verdict::Forward);
    assert_eq!(allocated("alice", src(2)), Verdict::Forward);
    assert_eq!(error_of(&allocated("alice", src(3))).0, 486);
    // A retransmission from an address that has one is the server's business.
    assert_eq!(allocated("alice", src(1)), Verdict::Forward);
    assert_eq!(allocated("bob", src(4)), Verdict::Forward);
    assert_eq!(metrics.turn_allocations.load(Relaxed), 3);
    assert_eq!(error_of(&allocated("carol", src(5))).0, 508);

    // Closing one frees both the user's quota and the total.
    let live = unix_now() + 600;
    g.closed(&format!("{live}:alice"), src(1));
    assert_eq!(metrics.turn_allocations.load(Relaxed), 2);
    assert_eq!(allocated("alice", src(3)), Verdict::Forward);
    g.closed(&format!("{live}:bob"), src(4));
    g.closed(&format!("{live}:bob"), src(4)); // twice is harmless
    assert_eq!(allocated("carol", src(5)), Verdict::Forward);
    assert_eq!(metrics.turn_allocations.load(Relaxed), 3);
    assert_eq!(metrics.turn_quota_rejections.load(Relaxed), 2);
}

#[test]
fn simultaneous_allocates_from_many_ports_of_one_user_get_exactly_the_quota() {
    let metrics = Arc::new(Metrics::default());
    let g = gate(metrics.clone());
    mint(&g, "nonce-1", Instant::now());
    // Eight Allocates from eight ports of alice, all inspected before the
    // server has answered any of them (quota 2).
    let sent: Vec<_> = (1..=8)
        .map(|p| (src(p), allocate(&g, "alice", src(p))))
        .collect();
    let (forwarded, refused): (Vec<_>, Vec<_>) =
        sent.iter().partition(|(_, (v, _))| *v == Verdict::Forward);
    assert_eq!(forwarded.len(), 2, "exactly the quota reaches the server");
    assert!(refused.iter().all(|(_, (v, _))| error_of(v).0 == 486));
    // The server's answers come back: one succeeds, one fails (its slot is
    // free again), and a reservation nobody answers still counts.
    let (ok_from, (_, ok_txid)) = forwarded[0];
    allocate_succeeds(&g, *ok_txid, *ok_from);
    assert_eq!(metrics.turn_allocations.load(Relaxed), 1);
    assert_eq!(error_of(&allocate(&g, "alice", src(9)).0).0, 486);
    let (err_from, (_, err_txid)) = forwarded[1];
    let err = build(&[
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE)),
        Box::new(*err_txid),
    ]);
    assert!(g.outbound(&err, *err_from, Instant::now()));
    assert_eq!(allocate(&g, "alice", src(9)).0, Verdict::Forward);
    assert_eq!(error_of(&allocate(&g, "alice", src(10)).0).0, 486);
}

#[tokio::test]
async fn udp_and_tcp_get_one_port() {
    // A given port that is taken for TCP is an error, not another port...
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let given = SocketAddr::from(([127, 0, 0, 1], port));
    let err = super::bind_udp_and_tcp(given).await.expect_err("taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    // ...while port 0 gets one port that is free for both.
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (udp, tcp) = super::bind_udp_and_tcp(any).await.expect("a port");
    let port = udp.local_addr().expect("udp").port();
    assert_ne!(port, 0);
    assert_eq!(tcp.local_addr().expect("tcp").port(), port);
}
