//! Every limit and close code, against the real relay.

mod common;

use common::{Client, Server, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn oversized_messages_close_with_1009_and_the_room_carries_on() {
    let server = Server::with(|c| c.limits.max_message_bytes = 16 * 1024).await;
    let (mut a, _) = Client::join(&server, "big", "A", "broadcaster").await;
    let (mut b, wb) = Client::join(&server, "big", "B", "watcher").await;
    a.recv().await; // peerJoined
    // Just under the limit passes.
    let sdp = "x".repeat(16 * 1024 - 100);
    a.send(json!({"event":"offer","to":wb["id"],"sdp":sdp}))
        .await;
    assert_eq!(
        b.recv().await["sdp"].as_str().map(str::len),
        Some(sdp.len())
    );
    // Over it closes.
    let sdp = "x".repeat(17 * 1024);
    a.send(json!({"event":"offer","to":wb["id"],"sdp":sdp}))
        .await;
    assert_eq!(a.closed().await.0, Some(1009));
    assert_eq!(b.recv().await["event"], "peerLeft");
    let (_c, wc) = Client::join(&server, "big", "C", "watcher").await;
    assert_eq!(wc["peers"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn room_full() {
    let server = Server::with(|c| c.limits.max_room_peers = 3).await;
    let mut peers = Vec::new();
    for i in 0..3 {
        peers.push(
            Client::join(&server, "small", &format!("p{i}"), "watcher")
                .await
                .0,
        );
    }
    let mut late = Client::connect(&server).await;
    late.send(json!({"event":"join","room":"small","name":"late","role":"watcher"}))
        .await;
    late.expect_error("roomFull").await;
    // The connection stays open and can join elsewhere.
    late.send(json!({"event":"join","room":"other","name":"late","role":"watcher"}))
        .await;
    assert_eq!(late.recv().await["event"], "welcome");
    // A slot frees when someone leaves.
    peers.pop().expect("peer").leave().await;
    let (_again, w) = Client::join(&server, "small", "again", "watcher").await;
    assert_eq!(w["peers"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn rate_limit_then_close_on_sustained_flooding() {
    let server = Server::with(|c| {
        c.limits.rate_per_sec = 1.0;
        c.limits.rate_burst = 5.0;
        c.limits.flood_tolerance = 20.0;
    })
    .await;
    let (mut a, _) = Client::join(&server, "flood", "A", "broadcaster").await; // 1 token used
    let (mut b, _) = Client::join(&server, "flood", "B", "watcher").await;
    a.recv().await; // peerJoined
    for _ in 0..4 {
        a.send(json!({"event":"mediaState","audio":true,"video":true}))
            .await;
    }
    for _ in 0..4 {
        assert_eq!(b.recv().await["event"], "mediaState");
    }
    a.send(json!({"event":"mediaState","audio":true,"video":true}))
        .await;
    a.expect_error("rateLimited").await;
    // Sustained flooding: the tolerance runs out and the socket closes.
    for _ in 0..40 {
        if a.ws
            .send(Message::text(r#"{"event":"broadcastAvailable"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, seen) = a.closed().await;
    assert_eq!(code, Some(1008));
    assert!(seen.iter().all(|m| m["code"] == "rateLimited"), "{seen:?}");
    assert_eq!(b.recv().await["event"], "peerLeft");
    assert!(
        server
            .metric("meshcast_errors_total{code=\"rateLimited\"}")
            .await
            >= 10.0
    );
}

#[tokio::test]
async fn too_many_bad_messages_close_with_1008() {
    let server = Server::with(|c| c.limits.bad_message_tolerance = 3.0).await;
    let mut c = Client::connect(&server).await;
    for _ in 0..3 {
        c.send_text("{".into()).await;
        c.expect_error("badMessage").await;
    }
    c.send_text("{".into()).await;
    assert_eq!(c.closed().await.0, Some(1008));
}

#[tokio::test]
async fn connection_limit_closes_with_1013() {
    let server = Server::with(|c| c.limits.max_connections = 2).await;
    let (a, _) = Client::join(&server, "cap", "A", "watcher").await;
    let (_b, _) = Client::join(&server, "cap", "B", "watcher").await;
    let mut over = Client::connect(&server).await;
    assert_eq!(over.closed().await.0, Some(1013));
    assert_eq!(
        server.metric("meshcast_connections_rejected_total").await,
        1.0
    );
    drop(a);
    // The slot comes back once the relay has seen the close.
    let deadline = Instant::now() + WAIT;
    while server.metric("meshcast_connections").await > 1.0 {
        assert!(Instant::now() < deadline, "connection slot never freed");
        tokio::task::yield_now().await;
    }
    let (_c, _) = Client::join(&server, "cap", "C", "watcher").await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_and_the_room_is_unaffected() {
    let server = Server::with(|c| {
        c.limits.queue_len = 8;
        c.limits.rate_per_sec = 1e6;
        c.limits.rate_burst = 1e6;
    })
    .await;
    stuck_reader_is_dropped(&server, "slow").await;
}

#[tokio::test]
async fn silent_peers_are_dropped_by_the_heartbeat() {
    let server = Server::with(|c| {
        c.limits.ping_interval = Duration::from_millis(100);
        c.limits.idle_timeout = Duration::from_millis(300);
        // Announced as soon as it is found silent (the grace is in tests/grace.rs).
        c.limits.leave_grace = Duration::ZERO;
    })
    .await;
    let (mut alive, _) = Client::join(&server, "hb", "Alive", "watcher").await;
    // This client never reads again, so it never answers a ping.
    let (silent, w_silent) = Client::join(&server, "hb", "Silent", "watcher").await;
    assert_eq!(alive.recv().await["event"], "peerJoined");
    let started = Instant::now();
    // `alive` keeps reading (and so answers pings) while it waits.
    assert_eq!(
        alive.recv().await,
        json!({"event":"peerLeft","id":w_silent["id"]})
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        server.metric("meshcast_heartbeat_timeouts_total").await,
        1.0
    );
    // The reader kept answering pings, so it is still here.
    let (_late, w) = Client::join(&server, "hb", "Late", "watcher").await;
    assert_eq!(w["peers"].as_array().map(Vec::len), Some(1));
    drop(silent);
}

#[tokio::test]
async fn graceful_shutdown_closes_with_1001_without_announcing_leaves() {
    let mut server = Server::start().await;
    let (mut a, _) = Client::join(&server, "bye", "A", "broadcaster").await;
    let (mut b, _) = Client::join(&server, "bye", "B", "watcher").await;
    assert_eq!(a.recv().await["event"], "peerJoined");
    let started = Instant::now();
    server.stop();
    let (code_a, seen_a) = a.closed().await;
    let (code_b, seen_b) = b.closed().await;
    assert_eq!((code_a, code_b), (Some(1001), Some(1001)));
    assert!(
        seen_a.is_empty() && seen_b.is_empty(),
        "{seen_a:?} {seen_b:?}"
    );
    let result = tokio::time::timeout(Duration::from_secs(5), &mut server.task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn graceful_shutdown_does_not_wait_for_a_peer_that_stopped_reading() {
    let mut server = Server::with(|c| c.limits.shutdown_grace = Duration::from_secs(2)).await;
    let (_stuck, _) = Client::join(&server, "stuck", "A", "watcher").await;
    let started = Instant::now();
    server.stop();
    let result = tokio::time::timeout(Duration::from_secs(5), &mut server.task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_peer_over_its_byte_budget_is_dropped_and_the_room_is_unaffected() {
    let server = Server::with(|c| {
        // Far more messages than the test sends: only the bytes can trip.
        c.limits.queue_len = 1_000_000;
        c.limits.queue_bytes = 256 * 1024;
        c.limits.rate_per_sec = 1e6;
        c.limits.rate_burst = 1e6;
    })
    .await;
    stuck_reader_is_dropped(&server, "bytes").await;
}

/// In `room`, a sender fills a peer that never reads with ~60 KB offers
/// while a healthy peer keeps reading: the stuck one is dropped (announced,
/// counted as a slow consumer) and the healthy one never misses a message.
async fn stuck_reader_is_dropped(server: &Server, room: &str) {
    let (mut sender, _) = Client::join(server, room, "S", "broadcaster").await;
    let (stuck, w_stuck) = Client::join(server, room, "Stuck", "watcher").await;
    let (mut healthy, w_healthy) = Client::join(server, room, "H", "watcher").await;
    sender.recv().await;
    sender.recv().await;
    let sdp = "x".repeat(60_000);
    let mut rounds = 0;
    let left = loop {
        rounds += 1;
        assert!(rounds < 2_000, "the stuck peer was never dropped");
        sender
            .send(json!({"event":"offer","to":w_stuck["id"],"sdp":sdp}))
            .await;
        sender
            .send(json!({"event":"offer","to":w_healthy["id"],"sdp":"small"}))
            .await;
        let got = healthy.recv().await;
        if got["event"] == "peerLeft" {
            break got;
        }
        assert_eq!(
            (&got["event"], &got["sdp"]),
            (&json!("offer"), &json!("small"))
        );
    };
    assert_eq!(left["id"], w_stuck["id"]);
    assert_eq!(
        server.metric("meshcast_slow_consumers_dropped_total").await,
        1.0
    );
    // Everyone else still talks.
    sender
        .send(json!({"event":"offer","to":w_healthy["id"],"sdp":"after"}))
        .await;
    healthy.recv_until(|m| m["sdp"] == "after").await;
    drop(stuck);
}

/// Fills `to`'s path with `n` offers of `size` bytes from `from` that `to`
/// does not read, and waits until the relay has routed them all.
async fn backlog(from: &mut Client, to: &serde_json::Value, n: usize, size: usize) {
    let sdp = "y".repeat(size);
    for _ in 0..n {
        from.send(json!({"event":"offer","to":to["id"],"sdp":sdp}))
            .await;
    }
    from.send(json!({"event":"getBroadcast","to":"nobody"}))
        .await;
    from.expect_error("unknownPeer").await;
}

#[tokio::test]
async fn a_flood_written_without_reading_still_gets_its_errors_and_1008() {
    let server = Server::start().await;
    let mut a = Client::connect_small_window(&server).await;
    a.send(json!({"event":"join","room":"flood-unread","name":"A","role":"broadcaster"}))
        .await;
    let wa = a.recv().await;
    let (mut b, _) = Client::join(&server, "flood-unread", "B", "watcher").await;
    // A reads nothing from here on; 200 KB for it wait in the relay's kernel.
    backlog(&mut b, &wa, 10, 20_000).await;
    let (mut sink, mut stream) = a.ws.split();
    // Everything is written before anything is read.
    let writer = tokio::spawn(async move {
        for _ in 0..3_000 {
            if sink
                .feed(Message::text(r#"{"event":"broadcastAvailable"}"#))
                .await
                .is_err()
            {
                return sink;
            }
        }
        if let Err(e) = sink.flush().await {
            eprintln!("flush: {e}");
        }
        sink
    });
    let _sink = tokio::time::timeout(WAIT, writer)
        .await
        .expect("writes done in time")
        .expect("writer");
    let mut rate_limited = 0;
    let mut offers = 0;
    let code = loop {
        let msg = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a close frame in time");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                match v["event"].as_str() {
                    Some("peerJoined") => {}
                    Some("offer") => offers += 1,
                    _ => {
                        assert_eq!(v["code"], "rateLimited", "{v}");
                        rate_limited += 1;
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!(
                "no close frame, after {offers} offers and {rate_limited} rateLimited: {other:?}"
            ),
        }
    };
    assert_eq!(offers, 10);
    assert!(rate_limited >= 1);
    assert_eq!(code, Some(1008));
}

#[tokio::test]
async fn an_oversized_message_after_unread_traffic_still_gets_1009() {
    let server = Server::with(|c| c.limits.max_message_bytes = 16 * 1024).await;
    let mut a = Client::connect_small_window(&server).await;
    a.send(json!({"event":"join","room":"big-unread","name":"A","role":"broadcaster"}))
        .await;
    let wa = a.recv().await;
    let (mut b, wb) = Client::join(&server, "big-unread", "B", "watcher").await;
    // A reads nothing until it has sent the oversized message.
    backlog(&mut b, &wa, 20, 12_000).await;
    let sdp = "x".repeat(17 * 1024);
    a.send(json!({"event":"offer","to":wb["id"],"sdp":sdp}))
        .await;
    let (code, seen) = a.closed().await;
    let offers = seen.iter().filter(|m| m["event"] == "offer").count();
    assert_eq!(code, Some(1009), "after {offers} offers");
    assert_eq!(offers, 20);
    assert_eq!(b.recv().await["event"], "peerLeft");
}
