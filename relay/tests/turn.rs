//! The embedded TURN server, from the outside: the relay started with
//! --turn-listen on 127.0.0.1, credentials taken from `welcome`, and
//! webrtc-rs's TURN client doing what a browser does (Allocate,
//! CreatePermission, Send/ChannelData) against it over real UDP.

mod common;

use common::{Client, Server, WAIT, bare_allocate};
use relay::config::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::timeout;
use turn::client::{Client as TurnClient, ClientConfig};
use util::Conn as _;

/// "ping" from the client through its relayed address to a fresh peer on
/// loopback, "pong" back. Returns where the peer heard it from, where the
/// client heard the answer from, and the peer's address.
async fn ping_pong(relayed: &impl util::Conn) -> (SocketAddr, SocketAddr, SocketAddr) {
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    let peer_addr = peer.local_addr().expect("addr");
    relayed.send_to(b"ping", peer_addr).await.expect("send");
    let mut buf = [0u8; 64];
    let (n, peer_saw) = timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .expect("the peer hears the client")
        .expect("recv");
    assert_eq!(&buf[..n], b"ping");
    peer.send_to(b"pong", peer_saw).await.expect("reply");
    let (n, client_saw) = timeout(WAIT, relayed.recv_from(&mut buf))
        .await
        .expect("the client hears the peer")
        .expect("recv");
    assert_eq!(&buf[..n], b"pong");
    (peer_saw, client_saw, peer_addr)
}

async fn relay_with_turn(tweak: impl FnOnce(&mut Config)) -> Server {
    Server::with(|c| {
        c.turn.listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.turn.ports = (41000, 41999);
        tweak(c);
    })
    .await
}

/// The TURN server's address and a credential, from a real `welcome`.
async fn turn_from_welcome(server: &Server) -> (SocketAddr, String, String) {
    let (_client, welcome) = Client::join(server, "turn-room", "ada", "broadcaster").await;
    let servers = welcome["iceServers"].as_array().expect("iceServers");
    let turn = servers
        .iter()
        .find(|s| {
            s["urls"][0]
                .as_str()
                .is_some_and(|u| u.starts_with("turn:"))
        })
        .unwrap_or_else(|| panic!("no TURN server advertised in {welcome}"));
    let url = turn["urls"][0].as_str().expect("url");
    let addr = url
        .strip_prefix("turn:")
        .and_then(|u| u.strip_suffix("?transport=udp"))
        .unwrap_or_else(|| panic!("unexpected TURN URL {url}"));
    let text = |v: &Value| v.as_str().expect("string").to_owned();
    (
        addr.parse().expect("addr"),
        text(&turn["username"]),
        text(&turn["credential"]),
    )
}

async fn turn_client(server: SocketAddr, username: &str, password: &str) -> TurnClient {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let client = TurnClient::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(socket),
        vnet: None,
    })
    .await
    .expect("client");
    client.listen().await.expect("listen");
    client
}

#[tokio::test]
async fn relays_a_peers_datagrams_both_ways() {
    let server = relay_with_turn(|c| c.turn.allow_loopback = true).await;
    let (addr, user, pass) = turn_from_welcome(&server).await;
    assert!(user.contains(':'), "username is expiry:peer, got {user}");
    let client = turn_client(addr, &user, &pass).await;
    let relayed = timeout(WAIT, client.allocate())
        .await
        .expect("in time")
        .expect("allocation");
    let relayed_addr = relayed.local_addr().expect("relayed address");
    assert_eq!(relayed_addr.ip(), addr.ip());
    assert!((41000..=41999).contains(&relayed_addr.port()));
    assert_eq!(server.metric("meshcast_turn_allocations").await, 1.0);

    let (peer_saw, client_saw, peer_addr) = ping_pong(&relayed).await;
    assert_eq!(peer_saw, relayed_addr, "through the relayed address");
    assert_eq!(client_saw, peer_addr);

    relayed.close().await.expect("close");
    client.close().await.expect("close");
}

#[tokio::test]
async fn refuses_to_relay_to_loopback_without_the_test_flag() {
    let server = relay_with_turn(|_| {}).await;
    let (addr, user, pass) = turn_from_welcome(&server).await;
    let client = turn_client(addr, &user, &pass).await;
    let relayed = timeout(WAIT, client.allocate())
        .await
        .expect("in time")
        .expect("an allocation is fine");

    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    let peer_addr = peer.local_addr().expect("addr");
    let sent = timeout(WAIT, relayed.send_to(b"let me in", peer_addr))
        .await
        .expect("answered in time");
    assert!(sent.is_err(), "CreatePermission for {peer_addr} must fail");
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(500), peer.recv_from(&mut buf))
            .await
            .is_err(),
        "nothing reaches the loopback peer"
    );
    // Data from a loopback address to the relayed port is not passed on either.
    let relayed_addr = relayed.local_addr().expect("relayed");
    peer.send_to(b"sneak", relayed_addr).await.expect("send");
    assert!(
        timeout(Duration::from_millis(300), relayed.recv_from(&mut buf))
            .await
            .is_err()
    );
    assert!(server.metric("meshcast_turn_peers_refused_total").await >= 1.0);
    client.close().await.expect("close");
}

#[tokio::test]
async fn wrong_and_expired_credentials_get_no_allocation() {
    let server = relay_with_turn(|c| c.ice.turn_ttl = Duration::from_secs(1)).await;
    let (addr, user, pass) = turn_from_welcome(&server).await;

    let wrong = turn_client(addr, &user, "bm90IHRoZSBwYXNzd29yZA==").await;
    let result = timeout(WAIT, wrong.allocate()).await.expect("answered");
    assert!(result.is_err(), "a wrong password must not allocate");
    wrong.close().await.expect("close");

    // The same credential, once it has expired (TTL 1 s, checked to the second).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = turn_client(addr, &user, &pass).await;
    let result = timeout(WAIT, late.allocate()).await.expect("answered");
    assert!(result.is_err(), "an expired credential must not allocate");
    late.close().await.expect("close");

    assert!(server.metric("meshcast_turn_auth_failures_total").await >= 2.0);
    assert_eq!(server.metric("meshcast_turn_allocations").await, 0.0);
}

#[tokio::test]
async fn an_unauthenticated_flood_is_answered_at_a_bounded_rate_and_leaves_the_server_usable() {
    let server = relay_with_turn(|c| {
        c.turn.allow_loopback = true;
        c.turn.challenge_rate = 100.0;
    })
    .await;
    let (addr, user, pass) = turn_from_welcome(&server).await;

    // 20k unauthenticated Allocate requests, as fast as one socket sends them.
    let flood = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    for i in 0..20_000u32 {
        flood.send_to(&bare_allocate(i), addr).await.expect("send");
    }
    // Wait until the gate has seen them all (UDP may drop some on the way).
    let seen = || async {
        server.metric("meshcast_turn_challenges_total").await
            + server.metric("meshcast_turn_malformed_total").await
    };
    let mut last = -1.0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = seen().await;
        if now == last {
            break;
        }
        last = now;
    }
    let answered = server.metric("meshcast_turn_challenges_total").await
        - server.metric("meshcast_turn_replies_dropped_total").await;
    assert!(last > 1000.0, "the flood arrived ({last})");
    assert!(answered <= 400.0, "answers are rate-limited ({answered})");

    // A real client still gets through once the burst budget refills.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = turn_client(addr, &user, &pass).await;
    let relayed = timeout(WAIT, client.allocate())
        .await
        .expect("in time")
        .expect("allocation after the flood");
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    relayed
        .send_to(b"still here", peer.local_addr().expect("addr"))
        .await
        .expect("send");
    let mut buf = [0u8; 64];
    let (n, _) = timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .expect("relayed after the flood")
        .expect("recv");
    assert_eq!(&buf[..n], b"still here");
    client.close().await.expect("close");
}

#[tokio::test]
async fn a_real_client_allocates_and_relays_while_a_flood_from_many_ports_runs() {
    let server = relay_with_turn(|c| {
        c.turn.allow_loopback = true;
        c.turn.challenge_rate = 50.0;
    })
    .await;
    let (addr, user, pass) = turn_from_welcome(&server).await;

    // 64 sockets on 127.0.0.1 (the real client's address too) sending
    // unauthenticated Allocates in turn, one every ~70 us (a steady stream,
    // not bursts a real client could slip between), until told to stop.
    let sockets: Vec<_> = (0..64)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU32::new(0));
    let flood_started = std::time::Instant::now();
    let flood = std::thread::spawn({
        let (stop, sent) = (stop.clone(), sent.clone());
        move || {
            let mut i = 0u32;
            while !stop.load(Relaxed) {
                let socket = &sockets[i as usize % sockets.len()];
                if socket.send_to(&bare_allocate(i), addr).is_ok() {
                    sent.fetch_add(1, Relaxed);
                }
                i += 1;
                std::thread::sleep(Duration::from_micros(10));
            }
        }
    });
    let dropped = || server.metric("meshcast_turn_replies_dropped_total");
    // The flood has taken hold: the gate is already leaving requests unanswered.
    timeout(WAIT, async {
        while dropped().await < 1000.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the flood reaches the gate");
    let sent_before = sent.load(Relaxed);

    let started = std::time::Instant::now();
    let client = turn_client(addr, &user, &pass).await;
    let relayed = timeout(WAIT, client.allocate())
        .await
        .expect("the real client is answered in time despite the flood")
        .expect("allocation");
    ping_pong(&relayed).await;
    let took = started.elapsed();

    // All of that happened while the flood ran.
    let sent_during = sent.load(Relaxed) - sent_before;
    stop.store(true, Relaxed);
    flood.join().expect("flood thread");
    let rate = f64::from(sent.load(Relaxed)) / flood_started.elapsed().as_secs_f64();
    eprintln!("real client done in {took:?}, {sent_during} flood requests meanwhile, {rate:.0}/s");
    assert!(sent_during > 0, "the flood ran meanwhile");
    assert!(rate > 2000.0, "the flood sent {rate:.0}/s");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    relayed.close().await.expect("close");
    client.close().await.expect("close");
}

#[tokio::test]
async fn simultaneous_allocates_of_one_user_get_exactly_the_quota_and_closing_frees_a_slot() {
    let server = relay_with_turn(|c| c.turn.user_quota = 3).await;
    let (addr, user, pass) = turn_from_welcome(&server).await;
    // Eight clients (eight ports) with one credential, all at once.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(turn_client(addr, &user, &pass).await);
    }
    let results =
        futures_util::future::join_all(clients.iter().map(|c| timeout(WAIT, c.allocate()))).await;
    let mut relayed = Vec::new();
    let mut refused = 0;
    for r in results {
        match r.expect("answered in time") {
            Ok(conn) => relayed.push(conn),
            Err(e) => {
                assert!(e.to_string().contains("486"), "quota reached, got: {e}");
                refused += 1;
            }
        }
    }
    assert_eq!((relayed.len(), refused), (3, 5));
    assert_eq!(server.metric("meshcast_turn_allocations").await, 3.0);
    assert_eq!(
        server.metric("meshcast_turn_quota_rejections_total").await,
        5.0
    );

    // Closing one gives its slot back (to the gate and the relay ports alike).
    relayed.pop().expect("one").close().await.expect("close");
    let late = turn_client(addr, &user, &pass).await;
    let conn = timeout(WAIT, async {
        loop {
            if let Ok(conn) = late.allocate().await {
                break conn;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a freed slot is allocated again");
    assert_eq!(server.metric("meshcast_turn_allocations").await, 3.0);
    conn.close().await.expect("close");
    for c in relayed {
        c.close().await.expect("close");
    }
}

#[tokio::test]
async fn welcome_advertises_the_embedded_server_only_when_enabled() {
    let plain = Server::start().await;
    let (_c, welcome) = Client::join(&plain, "r", "a", "broadcaster").await;
    let servers = welcome["iceServers"].to_string();
    assert!(!servers.contains("turn:"), "{servers}");

    let with = relay_with_turn(|c| {
        c.turn.relay_ip = Some("203.0.113.7".parse().expect("ip"));
    })
    .await;
    let (_c, welcome) = Client::join(&with, "r", "a", "broadcaster").await;
    let url = welcome["iceServers"]
        .as_array()
        .expect("list")
        .iter()
        .find_map(|s| s["urls"][0].as_str().filter(|u| u.starts_with("turn:")))
        .expect("a TURN url")
        .to_owned();
    assert!(
        url.starts_with("turn:203.0.113.7:") && url.ends_with("?transport=udp"),
        "the relay ip is advertised: {url}"
    );
}
