//! The wire protocol end to end against the real relay.

mod common;

use common::{Client, Server, connect_with_origin};
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn cand(c: &str) -> serde_json::Value {
    json!({"candidate": c, "sdpMid": "0", "sdpMLineIndex": 0})
}

#[tokio::test]
async fn the_seed_flow_end_to_end() {
    let server = Server::start().await;
    let (mut b, welcome_b) = Client::join(&server, "seed", "Broadcaster", "broadcaster").await;
    let b_id = welcome_b["id"].as_str().expect("id").to_owned();
    assert_eq!(welcome_b["room"], "seed");
    assert_eq!(welcome_b["peers"], json!([]));
    assert_eq!(
        welcome_b["iceServers"],
        json!([{"urls":["stun:stun.test:3478"]}])
    );

    let (mut v, welcome_v) = Client::join(&server, "seed", "Viewer", "watcher").await;
    let v_id = welcome_v["id"].as_str().expect("id").to_owned();
    assert_ne!(b_id, v_id);
    assert_eq!(
        b.recv().await,
        json!({"event":"peerJoined","peer":{"id":v_id,"name":"Viewer","role":"watcher","broadcasting":false}})
    );

    // 1. broadcaster -> room
    b.send(json!({"event":"broadcastAvailable"})).await;
    assert_eq!(
        v.recv().await,
        json!({"event":"broadcastAvailable","from":b_id})
    );
    // 2. viewer -> broadcaster
    v.send(json!({"event":"getBroadcast","to":b_id})).await;
    assert_eq!(b.recv().await, json!({"event":"getBroadcast","from":v_id}));
    // 3-4. offer and trickled offerer candidates
    b.send(json!({"event":"offer","to":v_id,"sdp":"v=0 offer"}))
        .await;
    b.send(json!({"event":"iceOfferCandidate","to":v_id,"candidate":cand("candidate:1")}))
        .await;
    assert_eq!(
        v.recv().await,
        json!({"event":"offer","from":b_id,"conn":0,"sdp":"v=0 offer"})
    );
    assert_eq!(
        v.recv().await,
        json!({"event":"iceOfferCandidate","from":b_id,"conn":0,"candidate":cand("candidate:1")})
    );
    // 5-6. answer and trickled answerer candidates
    v.send(json!({"event":"answer","to":b_id,"sdp":"v=0 answer"}))
        .await;
    v.send(json!({"event":"iceAnswerCandidate","to":b_id,"candidate":cand("candidate:2")}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"event":"answer","from":v_id,"conn":0,"sdp":"v=0 answer"})
    );
    assert_eq!(
        b.recv().await,
        json!({"event":"iceAnswerCandidate","from":v_id,"conn":0,"candidate":cand("candidate:2")})
    );
    // mediaState (meshcast's own event) goes to the room
    b.send(json!({"event":"mediaState","audio":false,"video":true}))
        .await;
    assert_eq!(
        v.recv().await,
        json!({"event":"mediaState","from":b_id,"audio":false,"video":true})
    );
    // ... with the screen's stream id while sharing; a bad id is refused
    // (badMessage, the socket stays open) and reaches nobody.
    let screen = "{5c1f0d2e-9a4b-4c3d-8e7f-0123456789ab}";
    b.send(json!({"event":"mediaState","audio":true,"video":true,"screen":screen}))
        .await;
    assert_eq!(
        v.recv().await,
        json!({"event":"mediaState","from":b_id,"audio":true,"video":true,"screen":screen})
    );
    for bad in ["", "<img src=x>", &"x".repeat(65)] {
        b.send(json!({"event":"mediaState","audio":true,"video":true,"screen":bad}))
            .await;
        b.expect_error("badMessage").await;
    }
    // broadcastEnded
    b.send(json!({"event":"broadcastEnded"})).await;
    assert_eq!(
        v.recv().await,
        json!({"event":"broadcastEnded","from":b_id})
    );
}

#[tokio::test]
async fn late_joiner_sees_existing_broadcasters_and_leaves_are_announced() {
    let server = Server::start().await;
    let (mut a, wa) = Client::join(&server, "late", "Ada", "broadcaster").await;
    a.send(json!({"event":"broadcastAvailable"})).await;
    let (mut b, wb) = Client::join(&server, "late", "Bo", "broadcaster").await;
    assert_eq!(a.recv().await["event"], "peerJoined");
    // Bo has not announced; the late joiner must see exactly who broadcasts.
    let (_c, wc) = Client::join(&server, "late", "Cy", "watcher").await;
    assert_eq!(
        wc["peers"],
        json!([
            {"id":wa["id"],"name":"Ada","role":"broadcaster","broadcasting":true},
            {"id":wb["id"],"name":"Bo","role":"broadcaster","broadcasting":false},
        ])
    );
    assert_eq!(b.recv().await["event"], "peerJoined");
    a.leave().await;
    assert_eq!(
        b.recv_until(|m| m["event"] == "peerLeft").await,
        json!({"event":"peerLeft","id":wa["id"]})
    );
}

#[tokio::test]
async fn names_are_trimmed() {
    let server = Server::start().await;
    let (_a, wa) = Client::join(&server, "n", "  Zoë 🎥  ", "watcher").await;
    let (_b, wb) = Client::join(&server, "n", "B", "watcher").await;
    assert_eq!(wb["peers"][0]["name"], "Zoë 🎥");
    assert_eq!(wb["peers"][0]["id"], wa["id"]);
}

#[tokio::test]
async fn from_is_stamped_by_the_relay() {
    let server = Server::start().await;
    let (mut a, wa) = Client::join(&server, "spoof", "A", "broadcaster").await;
    let (mut b, wb) = Client::join(&server, "spoof", "B", "watcher").await;
    a.recv().await; // peerJoined
    a.send(json!({"event":"offer","to":wb["id"],"from":"someone-else","sdp":"x"}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"event":"offer","from":wa["id"],"conn":0,"sdp":"x"})
    );
    a.send(json!({"event":"broadcastAvailable","from":"someone-else"}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"event":"broadcastAvailable","from":wa["id"]})
    );
}

#[tokio::test]
async fn direct_messages_never_cross_rooms() {
    let server = Server::start().await;
    let (mut a, _) = Client::join(&server, "room-a", "A", "broadcaster").await;
    let (mut b, wb) = Client::join(&server, "room-b", "B", "watcher").await;
    a.send(json!({"event":"getBroadcast","to":wb["id"]})).await;
    a.expect_error("unknownPeer").await;
    a.send(json!({"event":"offer","to":"nobody","sdp":"x"}))
        .await;
    a.expect_error("unknownPeer").await;
    // Room-wide events stay in the room too.
    a.send(json!({"event":"broadcastAvailable"})).await;
    let (mut c, _) = Client::join(&server, "room-b", "C", "watcher").await;
    c.send(json!({"event":"mediaState","audio":true,"video":true}))
        .await;
    assert_eq!(b.recv().await["event"], "peerJoined");
    assert_eq!(b.recv().await["event"], "mediaState");
    b.assert_quiet().await;
}

#[tokio::test]
async fn error_codes() {
    let server = Server::start().await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"event":"broadcastAvailable"})).await;
    c.expect_error("notJoined").await;
    c.send_text("not json".into()).await;
    c.expect_error("badMessage").await;
    c.send(json!({"event":"teleport"})).await;
    c.expect_error("badMessage").await;
    for bad_join in [
        json!({"event":"join","room":"","name":"n","role":"watcher"}),
        json!({"event":"join","room":"a b","name":"n","role":"watcher"}),
        json!({"event":"join","room":"x".repeat(65),"name":"n","role":"watcher"}),
        json!({"event":"join","room":"r","name":"   ","role":"watcher"}),
        json!({"event":"join","room":"r","name":"a\u{0}b","role":"watcher"}),
        json!({"event":"join","room":"r","name":"n".repeat(65),"role":"watcher"}),
        json!({"event":"join","room":"r","name":"n","role":"king"}),
        json!({"event":"join","room":"r","name":"n","role":"watcher","token":"short"}),
    ] {
        let mut fresh = Client::connect(&server).await;
        fresh.send(bad_join.clone()).await;
        fresh.expect_error("badMessage").await;
        // Still open and still not joined.
        fresh.send(json!({"event":"broadcastEnded"})).await;
        fresh.expect_error("notJoined").await;
    }
    c.send(json!({"event":"join","room":"r","name":"n","role":"watcher"}))
        .await;
    assert_eq!(c.recv().await["event"], "welcome");
    c.send(json!({"event":"join","room":"r2","name":"n","role":"watcher"}))
        .await;
    c.expect_error("alreadyJoined").await;
    c.send(json!({"event":"answer","to":"nobody","sdp":"x"}))
        .await;
    c.expect_error("unknownPeer").await;
    c.send(json!({"event":"offer","to":"nobody"})).await;
    c.expect_error("badMessage").await;
    // A watcher cannot claim to broadcast.
    c.send(json!({"event":"broadcastAvailable"})).await;
    c.expect_error("badMessage").await;
    // roomFull and rateLimited are in tests/limits.rs.
    assert!(
        server
            .metric("meshcast_errors_total{code=\"badMessage\"}")
            .await
            >= 11.0
    );
}

#[tokio::test]
async fn a_token_keeps_the_id_and_replaces_the_old_socket_silently() {
    let server = Server::start().await;
    let token = "k".repeat(40);
    let join =
        json!({"event":"join","room":"resume","name":"Ada","role":"broadcaster","token":token});
    let (mut other, _) = Client::join(&server, "resume", "Bo", "watcher").await;
    let (mut first, w1) = Client::join_with(&server, join.clone()).await;
    assert_eq!(other.recv().await["event"], "peerJoined");
    first.send(json!({"event":"broadcastAvailable"})).await;
    assert_eq!(other.recv().await["event"], "broadcastAvailable");

    let (mut second, w2) = Client::join_with(&server, join.clone()).await;
    assert_eq!(w1["id"], w2["id"], "same token, same id");
    assert_eq!(first.closed().await.0, Some(4000));
    // The other peer sees no leave: the next thing it hears is from the new socket.
    second
        .send(json!({"event":"mediaState","audio":true,"video":false}))
        .await;
    assert_eq!(
        other.recv().await,
        json!({"event":"mediaState","from":w2["id"],"audio":true,"video":false})
    );
    assert_eq!(w2["peers"].as_array().map(Vec::len), Some(1));

    // The id survives a relay restart (it is derived from the token alone).
    let restarted = Server::start().await;
    let (_c, w3) = Client::join_with(&restarted, join).await;
    assert_eq!(w3["id"], w1["id"]);
    // Another token gives another id.
    let (_d, w4) = Client::join_with(
        &server,
        json!({"event":"join","room":"resume","name":"Cy","role":"watcher","token":"z".repeat(40)}),
    )
    .await;
    assert_ne!(w4["id"], w1["id"]);
}

#[tokio::test]
async fn turn_credentials_are_short_lived_hmacs() {
    let server = Server::with(|c| {
        c.ice.turn_urls = vec!["turn:127.0.0.1:3478?transport=udp".into()];
        c.ice.turn_secret = Some("top-secret".into());
        c.ice.turn_ttl = std::time::Duration::from_secs(120);
    })
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (_c, w) = Client::join(&server, "turn", "T", "watcher").await;
    let servers = w["iceServers"].as_array().expect("list");
    assert_eq!(servers[0], json!({"urls":["stun:stun.test:3478"]}));
    let turn = &servers[1];
    assert_eq!(turn["urls"], json!(["turn:127.0.0.1:3478?transport=udp"]));
    let username = turn["username"].as_str().expect("username");
    let (expiry, peer) = username.split_once(':').expect("expiry:peer");
    assert_eq!(peer, w["id"].as_str().expect("id"));
    let expiry: u64 = expiry.parse().expect("unix time");
    assert!(
        (before + 119..=before + 122).contains(&expiry),
        "{expiry} vs {before}"
    );
    assert_eq!(
        turn["credential"].as_str(),
        Some(relay::ice::turn_credential("top-secret", username).as_str())
    );
    assert!(!w.to_string().contains("top-secret"));
}

#[tokio::test]
async fn stun_can_be_turned_off() {
    let server = Server::with(|c| c.ice.stun = vec!["none".into()]).await;
    let (_c, w) = Client::join(&server, "nostun", "N", "watcher").await;
    assert_eq!(w["iceServers"], json!([]));
}

#[tokio::test]
async fn origins_are_checked_on_upgrade() {
    let server = Server::with(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let own = format!("http://{}", server.addr);
    assert_eq!(connect_with_origin(&server, &own).await, Ok(()));
    assert_eq!(
        connect_with_origin(&server, "https://app.example").await,
        Ok(())
    );
    assert_eq!(
        connect_with_origin(&server, "https://evil.example").await,
        Err(403)
    );
    assert_eq!(connect_with_origin(&server, "null").await, Err(403));
}

#[tokio::test]
async fn health_metrics_and_the_app() {
    let dist = tempdir("dist");
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><title>meshcast</title>",
    )
    .expect("write");
    std::fs::write(dist.join("app.js"), "console.log(1)").expect("write");
    let server = Server::with(|c| c.dist = dist.clone()).await;
    assert_eq!(server.get("/healthz").await, (200, "ok\n".into()));
    let (_a, _) = Client::join(&server, "m", "A", "watcher").await;
    assert_eq!(server.metric("meshcast_connections").await, 1.0);
    assert_eq!(server.metric("meshcast_rooms").await, 1.0);
    assert!(server.metric("meshcast_messages_in_total").await >= 1.0);
    assert!(server.metric("meshcast_messages_out_total").await >= 1.0);
    for path in ["/", "/watch", "/watch?room=abc", "/some/deep/link"] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("<title>meshcast</title>"), "{path}: {body}");
    }
    assert_eq!(server.get("/app.js").await, (200, "console.log(1)".into()));
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("meshcast-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

#[tokio::test]
async fn peer_ids_carry_128_bits() {
    let server = Server::start().await;
    let (_a, wa) = Client::join(&server, "ids", "A", "watcher").await;
    let (_b, wb) = Client::join_with(
        &server,
        json!({"event":"join","room":"ids","name":"B","role":"watcher","token":"t".repeat(40)}),
    )
    .await;
    for w in [&wa, &wb] {
        let id = w["id"].as_str().expect("id");
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert!(!id.contains("tttt"));
    }
}

#[tokio::test]
async fn a_replaced_connection_can_no_longer_send() {
    let server = Server::start().await;
    let join = json!({"event":"join","room":"replaced","name":"Ada","role":"broadcaster","token":"r".repeat(40)});
    let (mut other, wo) = Client::join(&server, "replaced", "Bo", "watcher").await;
    let (mut old, w1) = Client::join_with(&server, join.clone()).await;
    assert_eq!(other.recv().await["event"], "peerJoined");
    let (mut new, w2) = Client::join_with(&server, join).await;
    assert_eq!(w1["id"], w2["id"]);
    // The old socket tries anyway (its writes may fail once it is closed).
    for msg in [
        json!({"event":"offer","to":wo["id"],"conn":1,"sdp":"stale"}),
        json!({"event":"mediaState","audio":true,"video":true}),
        json!({"event":"broadcastAvailable"}),
    ] {
        let _ = old.ws.send(Message::text(msg.to_string())).await;
    }
    assert_eq!(old.closed().await.0, Some(4000));
    // The next thing the room hears comes from the new socket.
    new.send(json!({"event":"mediaState","audio":false,"video":false}))
        .await;
    assert_eq!(
        other.recv().await,
        json!({"event":"mediaState","from":w2["id"],"audio":false,"video":false})
    );
    other.assert_quiet().await;
}

fn turn_expiry(servers: &serde_json::Value) -> u64 {
    let turn = servers
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["username"].is_string())
        .unwrap_or_else(|| panic!("no TURN server in {servers}"));
    let username = turn["username"].as_str().expect("username");
    username
        .split_once(':')
        .and_then(|(e, _)| e.parse().ok())
        .expect("expiry:peer")
}

#[tokio::test]
async fn fresh_turn_credentials_are_pushed_every_half_ttl() {
    let server = Server::with(|c| {
        c.ice.turn_urls = vec!["turn:127.0.0.1:3478?transport=udp".into()];
        c.ice.turn_secret = Some("top-secret".into());
        c.ice.turn_ttl = Duration::from_secs(2);
    })
    .await;
    let (mut c, w) = Client::join(&server, "fresh", "F", "watcher").await;
    let first = turn_expiry(&w["iceServers"]);
    let started = std::time::Instant::now();
    let push = c.recv().await;
    assert_eq!(push["event"], "iceServers", "{push}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let second = turn_expiry(&push["iceServers"]);
    assert!(second > first, "{second} vs {first}");
    let username = push["iceServers"][1]["username"].as_str().expect("user");
    assert_eq!(
        push["iceServers"][1]["credential"].as_str(),
        Some(relay::ice::turn_credential("top-secret", username).as_str())
    );
    // And again.
    let again = c.recv().await;
    assert_eq!(again["event"], "iceServers");
    assert!(turn_expiry(&again["iceServers"]) > second);
}

#[tokio::test]
async fn without_turn_nothing_is_pushed() {
    let server = Server::with(|c| c.ice.turn_ttl = Duration::from_secs(2)).await;
    let (mut c, _) = Client::join(&server, "stale", "S", "watcher").await;
    match tokio::time::timeout(Duration::from_millis(1300), c.recv()).await {
        Err(_) => {}
        Ok(v) => panic!("nothing expected, got {v}"),
    }
}

#[tokio::test]
async fn conn_is_forwarded_untouched_on_every_connection_message() {
    let server = Server::start().await;
    let (mut b, wb) = Client::join(&server, "conn", "B", "broadcaster").await;
    let (mut v, wv) = Client::join(&server, "conn", "V", "watcher").await;
    b.recv().await; // peerJoined
    let (b_id, v_id) = (wb["id"].clone(), wv["id"].clone());
    let big = (1u64 << 53) - 1;
    b.send(json!({"event":"offer","to":v_id,"conn":big,"sdp":"o"}))
        .await;
    b.send(json!({"event":"iceOfferCandidate","to":v_id,"conn":7,"candidate":cand("c")}))
        .await;
    assert_eq!(
        v.recv().await,
        json!({"event":"offer","from":b_id,"conn":big,"sdp":"o"})
    );
    assert_eq!(
        v.recv().await,
        json!({"event":"iceOfferCandidate","from":b_id,"conn":7,"candidate":cand("c")})
    );
    v.send(json!({"event":"answer","to":b_id,"conn":big,"sdp":"a"}))
        .await;
    v.send(json!({"event":"iceAnswerCandidate","to":b_id,"conn":big,"candidate":cand("d")}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"event":"answer","from":v_id,"conn":big,"sdp":"a"})
    );
    assert_eq!(
        b.recv().await,
        json!({"event":"iceAnswerCandidate","from":v_id,"conn":big,"candidate":cand("d")})
    );
    // Not a number: a bad message, the room goes on.
    b.send(json!({"event":"offer","to":v_id,"conn":"one","sdp":"o"}))
        .await;
    b.expect_error("badMessage").await;
}
