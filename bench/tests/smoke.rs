//! Every workload with tiny sizes against an in-process relay on
//! 127.0.0.1:0, so the benchmark cannot rot between real runs. The numbers
//! mean nothing here (the relay shares this process); only that each
//! workload connects, sends, receives and measures.

use bench::client::Target;
use bench::proto::Kind;
use bench::workload::{Extra, IdleSpec, OpenLoopSpec, ThroughputSpec, idle, open_loop, throughput};
use relay::config::Config;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const MS: Duration = Duration::from_millis(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_against_the_relay() {
    let mut config = Config::defaults();
    config.ice.stun = Vec::new();
    config.dist = std::env::temp_dir().join("meshcast-no-dist");
    config.limits.rate_per_sec = 1e6;
    config.limits.rate_burst = 1e6;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(relay::run(listener, config, async move {
        // A dropped sender also means stop.
        stopped.await.ok();
    }));
    let target = Target {
        kind: Kind::Meshcast,
        addr,
        // This process: exercises the /proc readers.
        pid: Some(std::process::id()),
    };

    let tp = throughput(
        &target,
        &ThroughputSpec {
            pairs: 2,
            in_flight: 2,
            payload: 64,
            warmup: 100 * MS,
            duration: 300 * MS,
        },
    )
    .await
    .expect("throughput");
    assert!(tp.forwarded > 0 && tp.per_sec > 0.0, "{tp:?}");
    assert!(tp.latency.p99.is_some(), "{tp:?}");

    let spec = OpenLoopSpec {
        rooms: 2,
        room_size: 2,
        rate: 400.0,
        payload: 64,
        warmup: 100 * MS,
        duration: 300 * MS,
        drain: 200 * MS,
        extra: None,
    };
    let ol = open_loop(&target, &spec).await.expect("open loop");
    assert!(ol.latency.received > 50, "{ol:?}");
    assert_eq!(ol.latency.lost, 0, "{ol:?}");
    assert!((ol.offered - 400.0).abs() < 100.0, "{ol:?}");

    let stuck = OpenLoopSpec {
        rooms: 1,
        room_size: 3,
        extra: Some(Extra::Stuck),
        ..spec
    };
    let st = open_loop(&target, &stuck).await.expect("stuck peer");
    assert!(st.latency.received > 0, "{st:?}");
    assert!(
        st.neighbours.is_some() && st.extra_dropped.is_some(),
        "{st:?}"
    );

    let id = idle(
        &target,
        &IdleSpec {
            conns: 20,
            room_size: 4,
            concurrency: 8,
            settle: 50 * MS,
        },
    )
    .await
    .expect("idle");
    assert!(
        id.upgrades_per_sec > 0.0 && id.per_conn().is_some(),
        "{id:?}"
    );

    stop.send(()).expect("relay still running");
    server.await.expect("join").expect("relay run");
}
