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
