//! Who gets a socket and for how long: the join timeout and the per-client
//! address limit (with and without a trusted proxy), against the real relay.

mod common;

use common::{Client, Server, WAIT};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_socket_that_never_joins_is_closed_with_1008() {
    let server = Server::with(|c| c.limits.join_timeout = Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut idle = Client::connect(&server).await;
    // One that joins in time stays.
    let (mut joined, _) = Client::join(&server, "jt", "J", "watcher").await;
    assert_eq!(idle.closed().await.0, Some(1008));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(server.metric("meshcast_join_timeouts_total").await, 1.0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    joined
        .send(json!({"event":"getBroadcast","to":"nobody"}))
        .await;
    joined.expect_error("unknownPeer").await;
}

/// Waits until the relay has let go of all but `n` connections.
async fn until_open(server: &Server, n: f64) {
    let deadline = Instant::now() + WAIT;
    while server.metric("meshcast_connections").await > n {
        assert!(Instant::now() < deadline, "connection slot never freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_third_socket_from_one_address_is_closed_with_1013() {
    let server = Server::with(|c| c.limits.max_connections_per_ip = 2).await;
    let (a, _) = Client::join(&server, "ip", "A", "watcher").await;
    let (_b, _) = Client::join(&server, "ip", "B", "watcher").await;
    let mut over = Client::connect(&server).await;
    assert_eq!(over.closed().await.0, Some(1013));
    assert_eq!(server.metric("meshcast_ip_rejections_total").await, 1.0);
    assert_eq!(
        server.metric("meshcast_connections_rejected_total").await,
        0.0
    );
    a.leave().await;
    until_open(&server, 1.0).await;
    let (_c, _) = Client::join(&server, "ip", "C", "watcher").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_limit() {
    let server = Server::with(|c| {
        c.limits.max_connections_per_ip = 1;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let mut a1 = Client::connect_with_headers(&server, &from("198.51.100.1")).await;
    a1.join_here("proxy", "A1").await;
    let mut b1 = Client::connect_with_headers(&server, &from("198.51.100.2")).await;
    b1.join_here("proxy", "B1").await;
    let mut a2 = Client::connect_with_headers(&server, &from("198.51.100.1")).await;
    assert_eq!(a2.closed().await.0, Some(1013));
    // The right-most untrusted hop counts, not what the client wrote before it.
    let mut spoof =
        Client::connect_with_headers(&server, &[("x-forwarded-for", "203.0.113.5, 198.51.100.2")])
            .await;
    assert_eq!(spoof.closed().await.0, Some(1013));
    // Without the header, the proxy's own address counts.
    let mut direct = Client::connect(&server).await;
    direct.join_here("proxy", "Direct").await;
    assert_eq!(server.metric("meshcast_ip_rejections_total").await, 2.0);
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    let server = Server::with(|c| {
        c.limits.max_connections_per_ip = 1;
        c.trusted_proxies = vec!["10.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    let mut a = Client::connect_with_headers(&server, &[("x-forwarded-for", "198.51.100.1")]).await;
    a.join_here("proxy", "A").await;
    // Another forwarded address, but from the same untrusted peer (127.0.0.1).
    let mut b = Client::connect_with_headers(&server, &[("x-forwarded-for", "198.51.100.2")]).await;
    assert_eq!(b.closed().await.0, Some(1013));
}

/// A GET with these headers; the status line and headers, and the body.
async fn get_with(server: &Server, path: &str, headers: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n",
        server.addr
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    (head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn ice_servers_before_joining_give_a_fresh_credential_and_refuse_other_origins() {
    let server = Server::with(|c| {
        c.ice.turn_urls = vec!["turn:turn.test:3478?transport=udp".into()];
        c.ice.turn_secret = Some("s3cret".into());
    })
    .await;
    let (head, body) = get_with(&server, "/ice-servers", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    let msg: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        msg["event"], "iceServers",
        "the body of an iceServers message"
    );
    let turn = &msg["iceServers"][1];
    assert_eq!(turn["urls"][0], "turn:turn.test:3478?transport=udp");
    let user = turn["username"].as_str().expect("username");
    assert_eq!(
        turn["credential"].as_str(),
        Some(relay::ice::turn_credential("s3cret", user).as_str())
    );
    // Each asker gets an id of its own.
    let (_, again) = get_with(&server, "/ice-servers", "").await;
    let again: serde_json::Value = serde_json::from_str(&again).expect("json");
    assert_ne!(again["iceServers"][1]["username"], turn["username"]);

    // The same origin may read it; another may not.
    let own = format!("Origin: http://{}\r\n", server.addr);
    let (head, _) = get_with(&server, "/ice-servers", &own).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, body) = get_with(&server, "/ice-servers", "Origin: https://evil.test\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(!body.contains("credential"), "{body}");
}
