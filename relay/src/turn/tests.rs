//! The gate's decisions, datagram by datagram, without sockets. The real
//! server behind it is exercised in tests/turn.rs.

use super::gate::{Gate, Inject, Nonces, SELF_ADDR, Verdict};
use super::policy::PeerPolicy;
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
    Gate::new(
        Auth {
            secret: SECRET.into(),
            realm: REALM.into(),
            refresh_grace: Duration::from_secs(3600),
        },
        Arc::new(PeerPolicy::default()),
        TurnLimits {
            max_allocations: 3,
            user_quota: 2,
            replies_per_sec: 10.0,
            replies_burst: 20.0,
        },
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

    let (good, _) = Req::new(METHOD_ALLOCATE)
        .signed("nonce-1", "alice", live)
        .bytes();
    assert_eq!(g.inspect(&good, src(1), t0), Verdict::Forward);

    let mut wrong = Req::new(METHOD_ALLOCATE).signed("nonce-1", "alice", live);
    wrong.creds = wrong.creds.map(|(u, _)| (u, "not-the-password".into()));
    assert_eq!(error_of(&g.inspect(&wrong.bytes().0, src(1), t0)).0, 401);

    let expired = Req::new(METHOD_ALLOCATE).signed("nonce-1", "alice", unix_now() - 1);
    assert_eq!(error_of(&g.inspect(&expired.bytes().0, src(1), t0)).0, 401);

    let mut other_realm = Req::new(METHOD_ALLOCATE).signed("nonce-1", "alice", live);
    other_realm.realm = "elsewhere";
    assert_eq!(
        error_of(&g.inspect(&other_realm.bytes().0, src(1), t0)).0,
        401
    );

    let mut no_expiry = Req::new(METHOD_ALLOCATE).signed("nonce-1", "alice", live);
    no_expiry.creds = Some(("alice".into(), turn_credential(SECRET, "alice")));
    assert_eq!(
        error_of(&g.inspect(&no_expiry.bytes().0, src(1), t0)).0,
        401
    );

    // A nonce the server never minted: 438 with the real one.
    let stale = Req::new(METHOD_ALLOCATE).signed("made-up", "alice", live);
    assert_eq!(
        error_of(&g.inspect(&stale.bytes().0, src(1), t0)),
        (438, Some("nonce-1".into()))
    );
    assert_eq!(metrics.turn_auth_failures.load(Relaxed), 4);

    // An expired credential may still refresh an allocation within the grace...
    let refresh = Req::new(METHOD_REFRESH).signed("nonce-1", "alice", unix_now() - 60);
    assert_eq!(g.inspect(&refresh.bytes().0, src(1), t0), Verdict::Forward);
    // ...but not after it.
    let refresh = Req::new(METHOD_REFRESH).signed("nonce-1", "alice", unix_now() - 3700);
    assert_eq!(error_of(&g.inspect(&refresh.bytes().0, src(1), t0)).0, 401);
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
        assert_eq!(
            error_of(&perm(&[refused], METHOD_CREATE_PERMISSION)).0,
            403,
            "{refused}"
        );
        assert_eq!(
            error_of(&perm(&[refused], METHOD_CHANNEL_BIND)).0,
            403,
            "{refused}"
        );
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

#[test]
fn allocations_are_capped_per_user_and_in_total() {
    let metrics = Arc::new(Metrics::default());
    let g = gate(metrics.clone());
    let t0 = Instant::now();
    mint(&g, "nonce-1", t0);
    let live = unix_now() + 600;
    let allocate = |user: &str, from: SocketAddr| {
        let (bytes, txid) = Req::new(METHOD_ALLOCATE)
            .signed("nonce-1", user, live)
            .bytes();
        let verdict = g.inspect(&bytes, from, t0);
        if verdict == Verdict::Forward {
            // The server's success answer, as it goes out.
            let ok = build(&[
                Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE)),
                Box::new(txid),
            ]);
            assert!(g.outbound(&ok, from, t0));
        }
        verdict
    };
    assert_eq!(allocate("alice", src(1)), Verdict::Forward);
    assert_eq!(allocate("alice", src(2)), Verdict::Forward);
    assert_eq!(error_of(&allocate("alice", src(3))).0, 486);
    // A retransmission from an address that has one is the server's business.
    assert_eq!(allocate("alice", src(1)), Verdict::Forward);
    assert_eq!(allocate("bob", src(4)), Verdict::Forward);
    assert_eq!(metrics.turn_allocations.load(Relaxed), 3);
    assert_eq!(error_of(&allocate("carol", src(5))).0, 508);

    // Closing one frees both the user's quota and the total.
    g.closed(&format!("{live}:alice"), src(1));
    assert_eq!(metrics.turn_allocations.load(Relaxed), 2);
    assert_eq!(allocate("alice", src(3)), Verdict::Forward);
    g.closed(&format!("{live}:bob"), src(4));
    g.closed(&format!("{live}:bob"), src(4)); // twice is harmless
    assert_eq!(allocate("carol", src(5)), Verdict::Forward);
    assert_eq!(metrics.turn_allocations.load(Relaxed), 3);
    assert_eq!(metrics.turn_quota_rejections.load(Relaxed), 2);
}

#[test]
fn the_servers_nonces_rotate_and_stay_few() {
    let t0 = Instant::now();
    let mut n = Nonces::default();
    assert_eq!(n.current(t0), None);
    assert_eq!(n.next(t0), Some(Inject::Mint));
    assert_eq!(n.next(t0), None, "one request at a time");
    n.minted("n1".into(), t0);
    assert_eq!(n.current(t0), Some("n1"));
    assert_eq!(n.next(t0 + Duration::from_secs(60)), None);

    let at = |s: u64| t0 + Duration::from_secs(s);
    assert_eq!(n.next(at(1800)), Some(Inject::Mint));
    n.minted("n2".into(), at(1800));
    assert_eq!(n.current(at(1800)), Some("n2"));
    assert!(
        n.accepts(b"n1", at(3000)),
        "the old one still works for a while"
    );
    assert!(
        !n.accepts(b"n1", at(3500)),
        "and not up to the server's limit"
    );
    assert_eq!(n.next(at(3500)), None);
    // Past the server's lifetime the old one is presented back, so the server
    // drops it and mints the next.
    assert_eq!(n.next(at(3606)), Some(Inject::Retire("n1".into())));
    assert_eq!(n.len(), 1);
    n.minted("n3".into(), at(3606));

    // Two simulated days, a tick a second: always a nonce to hand out, never
    // more than three known (and so on the server).
    let mut minted = 3;
    for s in 3607..(2 * 24 * 3600) {
        if n.next(at(s)).is_some() {
            minted += 1;
            n.minted(format!("n{minted}"), at(s));
        }
        assert!(n.current(at(s)).is_some(), "no nonce at {s}s");
        assert!(n.len() <= 3);
    }
    assert!(minted >= 96, "rotates about every half hour ({minted})");
}

#[test]
fn a_lost_answer_is_retried() {
    let t0 = Instant::now();
    let mut n = Nonces::default();
    assert_eq!(n.next(t0), Some(Inject::Mint));
    assert_eq!(n.next(t0 + Duration::from_secs(4)), None);
    assert_eq!(n.next(t0 + Duration::from_secs(6)), Some(Inject::Mint));
}
