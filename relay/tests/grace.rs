//! A dropped socket is not a leave: the leave grace, against the real relay.

mod common;

use common::{Client, Server};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn join_msg(name: &str, token: &str) -> Value {
    json!({"event":"join","room":"grace","name":name,"role":"broadcaster","token":token})
}

#[tokio::test]
async fn a_dropped_socket_keeps_its_place_and_a_rejoin_takes_it_back_silently() {
    let server = Server::start().await; // the default grace: 10 s
    let token = "g".repeat(40);
    let (mut other, _) = Client::join(&server, "grace", "Other", "watcher").await;
    let (x, wx) = Client::join_with(&server, join_msg("X", &token)).await;
    assert_eq!(other.recv().await["event"], "peerJoined");
    // The TCP stream goes away without a close frame.
    drop(x);

    // A late joiner still sees X; the room goes on; nobody hears peerLeft.
    let (mut late, wl) = Client::join(&server, "grace", "Late", "watcher").await;
    let ids: Vec<&Value> = wl["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert!(ids.contains(&&wx["id"]), "{wl}");
    assert_eq!(
        other.recv().await,
        json!({"event":"peerJoined","peer":{"id":wl["id"],"name":"Late","role":"watcher","broadcasting":false}})
    );
    // Direct messages to X are held for it without an error: the next reply
    // is the one for the unknown peer.
    other
        .send(json!({"event":"getBroadcast","to":wx["id"]}))
        .await;
    other
        .send(json!({"event":"getBroadcast","to":"nobody"}))
        .await;
    other.expect_error("unknownPeer").await;

    // X comes back with its token: welcome as usual, silence for the room.
    let (mut x, wx2) = Client::join_with(&server, join_msg("X", &token)).await;
    assert_eq!(wx2["id"], wx["id"]);
    assert_eq!(wx2["peers"].as_array().map(Vec::len), Some(2));
    // What was sent to it while away follows its welcome.
    let other_id = wl["peers"][0]["id"].clone();
    assert_eq!(
        x.recv().await,
        json!({"event":"getBroadcast","from":other_id}),
        "the held message"
    );
    x.send(json!({"event":"mediaState","audio":true,"video":true}))
        .await;
    let from_x = json!({"event":"mediaState","from":wx["id"],"audio":true,"video":true});
    assert_eq!(other.recv().await, from_x, "no peerLeft, no peerJoined");
    assert_eq!(late.recv().await, from_x, "no peerLeft, no peerJoined");
    assert_eq!(
        server.metric("meshcast_leave_grace_resumes_total").await,
        1.0
    );
    // And it is reachable again.
    other
        .send(json!({"event":"getBroadcast","to":wx["id"]}))
        .await;
    assert_eq!(
        x.recv().await,
        json!({"event":"getBroadcast","from":wl["peers"][0]["id"]})
    );
}

#[tokio::test]
async fn after_the_grace_the_room_hears_peer_left() {
    let server = Server::with(|c| c.limits.leave_grace = Duration::from_millis(400)).await;
    let (mut other, _) = Client::join(&server, "grace", "Other", "watcher").await;
    let (x, wx) = Client::join_with(&server, join_msg("X", &"h".repeat(40))).await;
    assert_eq!(other.recv().await["event"], "peerJoined");
    let dropped = Instant::now();
    drop(x);
    assert_eq!(
        other.recv().await,
        json!({"event":"peerLeft","id":wx["id"]})
    );
    let waited = dropped.elapsed();
    assert!(waited >= Duration::from_millis(350), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(
        server.metric("meshcast_leave_grace_expiries_total").await,
        1.0
    );
    // The place is free: the same token now joins as a newcomer.
    let (_x, _) = Client::join_with(&server, join_msg("X", &"h".repeat(40))).await;
    assert_eq!(other.recv().await["event"], "peerJoined");
}

#[tokio::test]
async fn a_clean_close_is_announced_at_once() {
    // A grace far longer than the test waits: only a clean leave can explain a peerLeft.
    let server = Server::with(|c| c.limits.leave_grace = Duration::from_secs(60)).await;
    let (mut other, _) = Client::join(&server, "grace", "Other", "watcher").await;
    for code in [1000, 1001] {
        let (x, wx) = Client::join(&server, "grace", "X", "watcher").await;
        assert_eq!(other.recv().await["event"], "peerJoined");
        let started = Instant::now();
        x.close_with(code).await;
        assert_eq!(
            other.recv().await,
            json!({"event":"peerLeft","id":wx["id"]}),
            "close {code}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // Any other code is a drop: the place is kept.
    let (x, wx) = Client::join(&server, "grace", "X", "watcher").await;
    assert_eq!(other.recv().await["event"], "peerJoined");
    x.close_with(4001).await;
    let (_late, wl) = Client::join(&server, "grace", "Late", "watcher").await;
    assert_eq!(
        other.recv().await["event"],
        "peerJoined",
        "no peerLeft first"
    );
    assert!(
        wl["peers"]
            .to_string()
            .contains(wx["id"].as_str().expect("id"))
    );
}

#[tokio::test]
async fn a_silent_peer_gets_the_grace_too() {
    let server = Server::with(|c| {
        c.limits.ping_interval = Duration::from_millis(100);
        c.limits.idle_timeout = Duration::from_millis(300);
        c.limits.leave_grace = Duration::from_millis(600);
    })
    .await;
    let (mut alive, _) = Client::join(&server, "hb-grace", "Alive", "watcher").await;
    let (silent, w_silent) = Client::join(&server, "hb-grace", "Silent", "watcher").await;
    assert_eq!(alive.recv().await["event"], "peerJoined");
    let started = Instant::now();
    assert_eq!(
        alive.recv().await,
        json!({"event":"peerLeft","id":w_silent["id"]})
    );
    // Found silent after >= 300 ms, then 600 ms of grace.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}
