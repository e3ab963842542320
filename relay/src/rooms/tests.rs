//! Room logic without sockets: members are plain channels.

use super::*;
use protocol::ServerMsg;
use serde_json::{Value, json};

struct Peer {
    rx: Inbox,
    outbox: Outbox,
}

fn peer(len: usize) -> Peer {
    peer_bytes(len, 1 << 20)
}

fn peer_bytes(len: usize, bytes: usize) -> Peer {
    let (outbox, rx) = queue(len, bytes);
    Peer { rx, outbox }
}

impl Peer {
    /// Every queued message as JSON (pings as markers), then the close
    /// requested, if any.
    fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(m) = self.rx.try_recv() {
            out.push(match m {
                Outbound::Text(t) => serde_json::from_str(t.as_str()).expect("json"),
                Outbound::Ping => json!("ping"),
            });
        }
        if let Some((code, _)) = self.outbox.close_frame() {
            out.push(json!({ "close": code }));
        }
        out
    }
}

fn registry(max: usize) -> Registry {
    Registry::new(max, Arc::new(Metrics::default()))
}

fn join(
    reg: &Registry,
    p: &Peer,
    id: &str,
    room: &str,
    role: Role,
) -> Result<Membership, RouteError> {
    reg.join(
        Join {
            id: id.into(),
            room: RoomId(room.into()),
            name: format!("name-{id}"),
            role,
            ice_servers: vec![],
        },
        p.outbox.clone(),
    )
}

fn info(id: &str, role: &str, broadcasting: bool) -> Value {
    json!({"id": id, "name": format!("name-{id}"), "role": role, "broadcasting": broadcasting})
}

#[test]
fn welcome_first_then_join_and_leave_announcements() {
    let reg = registry(16);
    let (mut a, mut b) = (peer(8), peer(8));
    let ma = join(&reg, &a, "a", "r", Role::Broadcaster).expect("join a");
    reg.set_broadcasting(&ma, true).expect("broadcast");
    let mb = join(&reg, &b, "b", "r", Role::Watcher).expect("join b");
    assert_eq!(
        a.drain(),
        vec![
            json!({"event":"welcome","id":"a","room":"r","peers":[],"iceServers":[],"chat":[]}),
            json!({"event":"peerJoined","peer":info("b","watcher",false)}),
        ]
    );
    assert_eq!(
        b.drain(),
        vec![
            json!({"event":"welcome","id":"b","room":"r","peers":[info("a","broadcaster",true)],"iceServers":[],"chat":[]})
        ]
    );
    drop(mb);
    assert_eq!(a.drain(), vec![json!({"event":"peerLeft","id":"b"})]);
    drop(ma);
    assert!(reg.peers(&RoomId("r".into())).is_empty());
    assert_eq!(reg.metrics.rooms.load(Relaxed), 0);
    assert_eq!(reg.metrics.peers.load(Relaxed), 0);
}

#[test]
fn direct_messages_stay_in_the_room() {
    let reg = registry(16);
    let (mut a, mut b, mut c) = (peer(8), peer(8), peer(8));
    let ma = join(&reg, &a, "a", "r1", Role::Broadcaster).expect("a");
    let _mb = join(&reg, &b, "b", "r1", Role::Watcher).expect("b");
    let _mc = join(&reg, &c, "c", "r2", Role::Watcher).expect("c");
    let text = encode(&ServerMsg::GetBroadcast { from: "a".into() });
    reg.send_to(&ma, &"b".into(), text.clone())
        .expect("same room");
    assert_eq!(
        reg.send_to(&ma, &"c".into(), text.clone()),
        Err(RouteError::UnknownPeer)
    );
    assert_eq!(
        reg.send_to(&ma, &"zz".into(), text),
        Err(RouteError::UnknownPeer)
    );
    a.drain();
    assert_eq!(
        b.drain().last(),
        Some(&json!({"event":"getBroadcast","from":"a"}))
    );
    assert_eq!(c.drain().len(), 1, "only its own welcome");
}

#[test]
fn room_full() {
    let reg = registry(2);
    let peers: Vec<Peer> = (0..3).map(|_| peer(8)).collect();
    let _m0 = join(&reg, &peers[0], "p0", "r", Role::Watcher).expect("p0");
    let _m1 = join(&reg, &peers[1], "p1", "r", Role::Watcher).expect("p1");
    assert_eq!(
        join(&reg, &peers[2], "p2", "r", Role::Watcher).err(),
        Some(RouteError::RoomFull)
    );
    // Another room is unaffected.
    assert!(join(&reg, &peers[2], "p2", "other", Role::Watcher).is_ok());
}

#[test]
fn watchers_cannot_announce_a_broadcast() {
    let reg = registry(16);
    let w = peer(8);
    let m = join(&reg, &w, "w", "r", Role::Watcher).expect("join");
    assert_eq!(
        reg.set_broadcasting(&m, true),
        Err(RouteError::NotABroadcaster)
    );
    assert!(!reg.peers(&m.room)[0].broadcasting);
}

#[test]
fn rejoining_with_the_same_id_replaces_silently() {
    let reg = registry(16);
    let (mut a, mut old, mut new) = (peer(8), peer(8), peer(8));
    let _ma = join(&reg, &a, "a", "r", Role::Broadcaster).expect("a");
    let m_old = join(&reg, &old, "x", "r", Role::Broadcaster).expect("old");
    reg.set_broadcasting(&m_old, true).expect("broadcast");
    a.drain();
    let m_new = join(&reg, &new, "x", "r", Role::Broadcaster).expect("new");
    assert_eq!(old.drain().last(), Some(&json!({"close": 4000})));
    // The old connection's membership going away must not announce a leave.
    drop(m_old);
    assert_eq!(a.drain(), Vec::<Value>::new());
    let welcome = new.drain();
    assert_eq!(
        welcome[0]["peers"],
        json!([info("a", "broadcaster", false)])
    );
    assert_eq!(reg.peers(&m_new.room).len(), 2);
    // A role change is an update the room hears about.
    let newer = peer(8);
    let _m = join(&reg, &newer, "x", "r", Role::Watcher).expect("newer");
    assert_eq!(
        a.drain(),
        vec![json!({"event":"peerJoined","peer":info("x","watcher",false)})]
    );
}

#[test]
fn rejoining_in_another_room_leaves_the_first() {
    let reg = registry(16);
    let (mut a, old, new) = (peer(8), peer(8), peer(8));
    let _ma = join(&reg, &a, "a", "r1", Role::Watcher).expect("a");
    let _m_old = join(&reg, &old, "x", "r1", Role::Watcher).expect("old");
    a.drain();
    let _m_new = join(&reg, &new, "x", "r2", Role::Watcher).expect("new");
    assert_eq!(a.drain(), vec![json!({"event":"peerLeft","id":"x"})]);
    assert_eq!(reg.peers(&RoomId("r1".into())).len(), 1);
}

#[test]
fn a_full_queue_evicts_only_that_peer() {
    let reg = registry(16);
    let (mut a, slow, mut c) = (peer(64), peer(2), peer(64));
    let ma = join(&reg, &a, "a", "r", Role::Broadcaster).expect("a");
    let _ms = join(&reg, &slow, "slow", "r", Role::Watcher).expect("slow"); // welcome: 1 queued
    let _mc = join(&reg, &c, "c", "r", Role::Watcher).expect("c"); // peerJoined: 2 queued
    a.drain();
    c.drain();
    reg.set_broadcasting(&ma, true).expect("overflows slow");
    assert_eq!(slow.outbox.close_frame().map(|c| c.0), Some(1008));
    assert_eq!(reg.peers(&ma.room).len(), 2);
    assert_eq!(
        c.drain(),
        vec![
            json!({"event":"broadcastAvailable","from":"a"}),
            json!({"event":"peerLeft","id":"slow"})
        ]
    );
    assert_eq!(a.drain(), vec![json!({"event":"peerLeft","id":"slow"})]);
    assert_eq!(reg.metrics.slow_consumers_dropped.load(Relaxed), 1);
}

#[test]
fn no_leave_announcements_during_shutdown() {
    let reg = registry(16);
    let (mut a, b) = (peer(8), peer(8));
    let _ma = join(&reg, &a, "a", "r", Role::Watcher).expect("a");
    let mb = join(&reg, &b, "b", "r", Role::Watcher).expect("b");
    a.drain();
    reg.begin_shutdown();
    drop(mb);
    assert!(a.drain().is_empty());
}

#[test]
fn a_queue_over_its_byte_budget_evicts_that_peer() {
    let reg = registry(16);
    let (mut a, slow) = (peer(64), peer_bytes(64, 600));
    let ma = join(&reg, &a, "a", "r", Role::Broadcaster).expect("a");
    let _ms = join(&reg, &slow, "slow", "r", Role::Watcher).expect("slow");
    a.drain();
    let big = encode(&ServerMsg::Offer {
        from: "a".into(),
        conn: 1,
        sdp: "x".repeat(300),
        sig: None,
    });
    reg.send_to(&ma, &"slow".into(), big.clone()).expect("fits");
    assert!(slow.outbox.close_frame().is_none());
    reg.send_to(&ma, &"slow".into(), big).expect("overflows");
    assert_eq!(slow.outbox.close_frame().map(|c| c.0), Some(1008));
    assert_eq!(a.drain(), vec![json!({"event":"peerLeft","id":"slow"})]);
}

#[test]
fn a_replaced_connection_can_no_longer_send() {
    let reg = registry(16);
    let (mut a, old, new) = (peer(8), peer(8), peer(8));
    let _ma = join(&reg, &a, "a", "r", Role::Broadcaster).expect("a");
    let m_old = join(&reg, &old, "x", "r", Role::Broadcaster).expect("old");
    let _m_new = join(&reg, &new, "x", "r", Role::Broadcaster).expect("new");
    a.drain();
    let text = encode(&ServerMsg::GetBroadcast { from: "x".into() });
    reg.send_to(&m_old, &"a".into(), text.clone())
        .expect("dropped, not an error");
    reg.broadcast(&m_old, &text);
    reg.set_broadcasting(&m_old, true).expect("dropped");
    assert_eq!(a.drain(), Vec::<Value>::new());
    assert!(!reg.peers(&RoomId("r".into()))[1].broadcasting);
}

#[tokio::test]
async fn a_dropped_member_keeps_its_place_for_the_grace() {
    let reg = registry(16);
    let (mut a, x, mut again) = (peer(8), peer(8), peer(8));
    let ma = join(&reg, &a, "a", "r", Role::Broadcaster).expect("a");
    let mx = join(&reg, &x, "x", "r", Role::Watcher).expect("x");
    a.drain();
    mx.depart(Departure::Dropped(Duration::from_secs(30)));
    // Still listed; direct messages to it are held, room-wide ones skip it.
    assert_eq!(reg.peers(&RoomId("r".into())).len(), 2);
    let text = encode(&ServerMsg::GetBroadcast { from: "a".into() });
    assert_eq!(reg.send_to(&ma, &"x".into(), text), Ok(()));
    reg.set_broadcasting(&ma, true).expect("announce");
    let mx = join(&reg, &again, "x", "r", Role::Watcher).expect("rejoin");
    assert_eq!(a.drain(), Vec::<Value>::new(), "no peerLeft, no peerJoined");
    let got = again.drain();
    assert_eq!(got[0]["event"], "welcome");
    assert_eq!(
        got[1..],
        [json!({"event":"getBroadcast","from":"a"})],
        "the held message follows the welcome"
    );
    assert_eq!(reg.metrics.grace_resumes.load(Relaxed), 1);

    // Dropped again, and this time the grace runs out.
    mx.depart(Departure::Dropped(Duration::from_millis(20)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.drain(), vec![json!({"event":"peerLeft","id":"x"})]);
    assert_eq!(reg.peers(&RoomId("r".into())).len(), 1);
    assert_eq!(reg.metrics.grace_expiries.load(Relaxed), 1);
}

#[tokio::test]
async fn what_is_held_for_a_member_in_grace_is_bounded() {
    let reg = registry(16);
    let (a, x, mut again) = (peer(8), peer(8), peer(MAX_HELD_MESSAGES + 8));
    let ma = join(&reg, &a, "a", "r", Role::Broadcaster).expect("a");
    let mx = join(&reg, &x, "x", "r", Role::Watcher).expect("x");
    mx.depart(Departure::Dropped(Duration::from_secs(30)));
    let text = encode(&ServerMsg::GetBroadcast { from: "a".into() });
    for _ in 0..MAX_HELD_MESSAGES + 50 {
        assert_eq!(reg.send_to(&ma, &"x".into(), text.clone()), Ok(()));
    }
    let _mx = join(&reg, &again, "x", "r", Role::Watcher).expect("rejoin");
    assert_eq!(
        again.drain().len(),
        1 + MAX_HELD_MESSAGES,
        "welcome and the held ones"
    );

    // And in bytes.
    let (b, y, mut back) = (peer(8), peer(8), peer(MAX_HELD_MESSAGES + 8));
    let mb = join(&reg, &b, "b", "s", Role::Broadcaster).expect("b");
    let my = join(&reg, &y, "y", "s", Role::Watcher).expect("y");
    my.depart(Departure::Dropped(Duration::from_secs(30)));
    let big = encode(&ServerMsg::Offer {
        from: "b".into(),
        conn: 1,
        sdp: "x".repeat(60 * 1024),
        sig: None,
    });
    for _ in 0..10 {
        assert_eq!(reg.send_to(&mb, &"y".into(), big.clone()), Ok(()));
    }
    let _my = join(&reg, &back, "y", "s", Role::Watcher).expect("rejoin");
    let held = back.drain().len() - 1;
    assert_eq!(held, MAX_HELD_BYTES / big.len());
}

#[tokio::test]
async fn held_messages_that_do_not_fit_the_queue_never_cost_the_place() {
    let reg = registry(16);
    let (mut a, x, mut small) = (peer(8), peer(8), peer(4));
    let ma = join(&reg, &a, "a", "r", Role::Broadcaster).expect("a");
    let mx = join(&reg, &x, "x", "r", Role::Watcher).expect("x");
    a.drain();
    mx.depart(Departure::Dropped(Duration::from_secs(30)));
    let text = encode(&ServerMsg::GetBroadcast { from: "a".into() });
    for _ in 0..MAX_HELD_MESSAGES {
        assert_eq!(reg.send_to(&ma, &"x".into(), text.clone()), Ok(()));
    }
    let _mx = join(&reg, &small, "x", "r", Role::Watcher).expect("rejoin");
    assert_eq!(small.drain().len(), 4, "welcome and what fits");
    assert_eq!(
        a.drain(),
        Vec::<Value>::new(),
        "no peerLeft: still in the room"
    );
    assert_eq!(reg.peers(&RoomId("r".into())).len(), 2);
}
