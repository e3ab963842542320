use super::*;
use protocol::{Role, RoomId};

/// Feeds a state change of the live connection in `dir` with `peer`.
fn st(n: &mut Negotiator, dir: Dir, peer: &PeerId, state: &str, now: f64) -> Vec<Action> {
    let conn = n
        .peers()
        .iter()
        .find(|p| &p.info.id == peer)
        .and_then(|p| match dir {
            Dir::Inbound => p.inbound_conn(),
            Dir::Outbound => p.outbound,
        })
        .unwrap_or(0);
    n.connection_state(dir, peer, conn, ConnState::parse(state), now)
}

fn info(id: &str, broadcasting: bool) -> PeerInfo {
    PeerInfo {
        id: id.into(),
        name: id.to_uppercase(),
        role: Role::Broadcaster,
        broadcasting,
        hand: None,
    }
}

fn welcome(me: &str, peers: Vec<PeerInfo>) -> ServerMsg {
    ServerMsg::Welcome {
        id: me.into(),
        room: RoomId("r".into()),
        peers,
        ice_servers: vec![],
        chat: vec![],
    }
}

fn get(to: &str) -> Action {
    Action::Send(ClientMsg::GetBroadcast { to: to.into() })
}

fn offer(session: &str) -> String {
    format!("v=0\r\no=- {session} 2 IN IP4 127.0.0.1\r\ns=-\r\n")
}

fn cand(c: &str) -> IceCandidate {
    IceCandidate {
        candidate: c.into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    }
}

#[test]
fn a_viewer_asks_every_broadcaster_in_welcome_once() {
    let mut n = Negotiator::new(false, 1);
    let acts = n.on_server(welcome("me", vec![info("a", true), info("b", false)]), 0.0);
    assert_eq!(acts, vec![get("a")]);
    // Announcements while the request is fresh, or once watching, are ignored.
    assert_eq!(
        n.on_server(ServerMsg::BroadcastAvailable { from: "a".into() }, 1.0),
        vec![]
    );
    let acts = n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 1,
            sdp: offer("1"),
            sig: None,
        },
        2.0,
    );
    assert_eq!(
        acts,
        vec![Action::OpenReceiver {
            from: "a".into(),
            conn: 1,
            sdp: offer("1"),
            sig: None,
            relay_only: false,
        }]
    );
    assert_eq!(
        n.on_server(ServerMsg::BroadcastAvailable { from: "a".into() }, 99_999.0),
        vec![]
    );
    // b announces later.
    assert_eq!(
        n.on_server(ServerMsg::BroadcastAvailable { from: "b".into() }, 3.0),
        vec![get("b")]
    );
}

#[test]
fn an_unanswered_request_is_repeated_after_a_while() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    assert_eq!(
        n.on_server(
            ServerMsg::BroadcastAvailable { from: "a".into() },
            REQUEST_RETRY_MS - 1.0
        ),
        vec![]
    );
    assert_eq!(
        n.on_server(
            ServerMsg::BroadcastAvailable { from: "a".into() },
            REQUEST_RETRY_MS
        ),
        vec![get("a")]
    );
}

#[test]
fn the_broadcaster_offers_once_its_camera_is_ready() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![]), 0.0);
    n.on_server(
        ServerMsg::PeerJoined {
            peer: info("v", false),
        },
        0.0,
    );
    // Asked before the camera is ready: remembered, not dropped.
    assert_eq!(
        n.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0),
        vec![]
    );
    assert_eq!(
        n.local_media_ready(0.0),
        vec![
            Action::Send(ClientMsg::BroadcastAvailable),
            Action::OpenSender {
                to: "v".into(),
                conn: 1
            }
        ]
    );
    // The viewer asks again (it lost its side): the old connection is
    // replaced by a new one with a new number.
    assert_eq!(
        n.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0),
        vec![
            Action::Close {
                dir: Dir::Outbound,
                peer: "v".into()
            },
            Action::OpenSender {
                to: "v".into(),
                conn: 2
            }
        ]
    );
    let answer = |conn| ServerMsg::Answer {
        from: "v".into(),
        conn,
        sdp: "ans".into(),
        sig: None,
    };
    assert_eq!(
        n.on_server(answer(1), 0.0),
        vec![],
        "the old connection's answer is stale"
    );
    assert_eq!(
        n.on_server(answer(2), 0.0),
        vec![Action::AcceptAnswer {
            from: "v".into(),
            conn: 2,
            sdp: "ans".into(),
            sig: None,
        }]
    );
    let c = |conn| ServerMsg::IceAnswerCandidate {
        from: "v".into(),
        conn,
        candidate: cand("c1"),
    };
    assert_eq!(n.on_server(c(1), 0.0), vec![], "stale candidate");
    assert_eq!(
        n.on_server(c(2), 0.0),
        vec![Action::AddCandidate {
            dir: Dir::Outbound,
            peer: "v".into(),
            conn: 2,
            candidate: cand("c1")
        }]
    );
}

#[test]
fn offers_from_strangers_and_answers_without_a_sender_are_ignored() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("a", false)]), 0.0);
    assert_eq!(
        n.on_server(
            ServerMsg::Offer {
                from: "x".into(),
                conn: 1,
                sdp: offer("1"),
                sig: None,
            },
            0.0
        ),
        vec![]
    );
    assert_eq!(
        n.on_server(
            ServerMsg::Answer {
                from: "a".into(),
                conn: 1,
                sdp: "s".into(),
                sig: None,
            },
            0.0
        ),
        vec![]
    );
    let c = ServerMsg::IceOfferCandidate {
        from: "a".into(),
        conn: 1,
        candidate: cand("c"),
    };
    assert_eq!(n.on_server(c, 0.0), vec![], "no inbound connection yet");
}

#[test]
fn the_same_conn_renegotiates_and_a_new_conn_replaces() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 111,
            sdp: offer("111"),
            sig: None,
        },
        0.0,
    );
    assert_eq!(
        n.on_server(
            ServerMsg::Offer {
                from: "a".into(),
                conn: 111,
                sdp: offer("111"),
                sig: None,
            },
            0.0
        ),
        vec![Action::Renegotiate {
            from: "a".into(),
            conn: 111,
            sdp: offer("111"),
            sig: None,
        }]
    );
    assert_eq!(
        n.on_server(
            ServerMsg::Offer {
                from: "a".into(),
                conn: 222,
                sdp: offer("222"),
                sig: None,
            },
            0.0
        ),
        vec![
            Action::Close {
                dir: Dir::Inbound,
                peer: "a".into()
            },
            Action::OpenReceiver {
                from: "a".into(),
                conn: 222,
                sdp: offer("222"),
                sig: None,
                relay_only: false,
            }
        ]
    );
}

#[test]
fn leaving_and_ending_close_the_right_connections() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("a", true), info("b", true)]), 0.0);
    n.local_media_ready(0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 1,
            sdp: offer("1"),
            sig: None,
        },
        0.0,
    );
    n.on_server(
        ServerMsg::Offer {
            from: "b".into(),
            conn: 2,
            sdp: offer("2"),
            sig: None,
        },
        0.0,
    );
    n.on_server(ServerMsg::GetBroadcast { from: "a".into() }, 0.0);
    assert_eq!(
        n.on_server(ServerMsg::PeerLeft { id: "a".into() }, 0.0),
        vec![
            Action::Close {
                dir: Dir::Inbound,
                peer: "a".into()
            },
            Action::Close {
                dir: Dir::Outbound,
                peer: "a".into()
            }
        ]
    );
    assert_eq!(n.peers().len(), 1);
    assert_eq!(
        n.on_server(ServerMsg::BroadcastEnded { from: "b".into() }, 0.0),
        vec![Action::Close {
            dir: Dir::Inbound,
            peer: "b".into()
        }]
    );
    assert_eq!(
        n.peers().len(),
        1,
        "b is still in the room, just not broadcasting"
    );
    // And it can come back.
    assert_eq!(
        n.on_server(ServerMsg::BroadcastAvailable { from: "b".into() }, 0.0),
        vec![get("b")]
    );
}

#[test]
fn a_new_welcome_drops_peers_that_left_meanwhile_and_keeps_the_rest() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("a", true), info("b", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 1,
            sdp: offer("1"),
            sig: None,
        },
        0.0,
    );
    n.on_server(
        ServerMsg::Offer {
            from: "b".into(),
            conn: 2,
            sdp: offer("2"),
            sig: None,
        },
        0.0,
    );
    n.local_media_ready(0.0);
    // Reconnected: b is gone; a's connection is untouched; c is new.
    let acts = n.on_server(welcome("me", vec![info("a", true), info("c", true)]), 10.0);
    assert_eq!(
        acts,
        vec![
            Action::Close {
                dir: Dir::Inbound,
                peer: "b".into()
            },
            get("c"),
            Action::Send(ClientMsg::BroadcastAvailable),
        ]
    );
    assert!(
        n.peers()
            .iter()
            .find(|p| p.info.id.0 == "a")
            .is_some_and(Remote::watching)
    );
}

#[test]
fn a_reloaded_page_first_ends_its_old_broadcast() {
    let mut n = Negotiator::new(true, 1);
    let acts = n.on_server(welcome("me", vec![]), 0.0);
    assert_eq!(
        acts,
        vec![
            Action::Send(ClientMsg::BroadcastEnded),
            // ...and lowers a hand it may have left up.
            Action::Send(ClientMsg::Hand { up: false })
        ]
    );
    assert_eq!(n.on_server(welcome("me", vec![]), 0.0), vec![], "only once");
}

#[test]
fn media_state_is_told_and_repeated_to_newcomers() {
    let mut n = Negotiator::new(false, 1);
    assert_eq!(n.set_local_media(false, true), vec![], "not joined yet");
    n.on_server(welcome("me", vec![]), 0.0);
    assert_eq!(
        n.set_local_media(false, true),
        vec![Action::Send(ClientMsg::MediaState {
            audio: false,
            video: true,
            screen: None,
        })]
    );
    assert_eq!(
        n.on_server(
            ServerMsg::PeerJoined {
                peer: info("x", false)
            },
            0.0
        ),
        vec![Action::Send(ClientMsg::MediaState {
            audio: false,
            video: true,
            screen: None,
        })]
    );
    n.on_server(
        ServerMsg::MediaState {
            from: "x".into(),
            audio: false,
            video: false,
            screen: Some("s1".into()),
        },
        0.0,
    );
    assert!(!n.peers()[0].audio && !n.peers()[0].video);
    assert_eq!(n.peers()[0].screen.as_deref(), Some("s1"));
}

#[test]
fn a_shared_screen_is_told_and_repeated_to_newcomers() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![]), 0.0);
    let sharing = Action::Send(ClientMsg::MediaState {
        audio: true,
        video: true,
        screen: Some("s1".into()),
    });
    assert_eq!(n.set_screen(Some("s1".into())), vec![sharing.clone()]);
    let joined = |n: &mut Negotiator, id: &str| {
        n.on_server(
            ServerMsg::PeerJoined {
                peer: info(id, false),
            },
            0.0,
        )
    };
    assert_eq!(
        joined(&mut n, "x"),
        vec![sharing],
        "a newcomer hears of the screen"
    );
    assert_eq!(
        n.set_screen(None),
        vec![Action::Send(ClientMsg::MediaState {
            audio: true,
            video: true,
            screen: None,
        })]
    );
    assert_eq!(
        joined(&mut n, "y"),
        vec![],
        "all on and no screen: nothing to tell"
    );
}

fn restart(to: &str) -> Action {
    Action::RestartIce {
        to: to.into(),
        conn: 1,
    }
}

fn close(dir: Dir, peer: &str) -> Action {
    Action::Close {
        dir,
        peer: peer.into(),
    }
}

/// A broadcaster "me" with one viewer "v" connected.
fn sending_to_v() -> Negotiator {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("v", false)]), 0.0);
    n.local_media_ready(0.0);
    n.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0);
    assert_eq!(
        st(&mut n, Dir::Outbound, &"v".into(), "connected", 0.0),
        vec![]
    );
    n
}

#[test]
fn the_broadcaster_restarts_ice_a_bounded_number_of_times_then_gives_up() {
    let mut n = sending_to_v();
    let v = PeerId::from("v");
    // Briefly disconnected: nothing yet.
    assert_eq!(
        st(&mut n, Dir::Outbound, &v, "disconnected", 1_000.0),
        vec![]
    );
    assert_eq!(n.tick(1_000.0 + DISCONNECTED_GRACE_MS - 1.0), vec![]);
    assert_eq!(n.tick(1_000.0 + DISCONNECTED_GRACE_MS), vec![restart("v")]);
    // The restart gets its time.
    let t = 1_000.0 + DISCONNECTED_GRACE_MS;
    assert_eq!(st(&mut n, Dir::Outbound, &v, "failed", t + 100.0), vec![]);
    assert_eq!(n.tick(t + ICE_RESTART_WAIT_MS - 1.0), vec![]);
    let mut restarts = 1;
    let mut now = t;
    loop {
        now += ICE_RESTART_WAIT_MS;
        let acts = n.tick(now);
        if acts == vec![restart("v")] {
            restarts += 1;
            continue;
        }
        assert_eq!(acts, vec![close(Dir::Outbound, "v")]);
        break;
    }
    assert_eq!(restarts, MAX_ICE_RESTARTS);
    assert_eq!(n.viewer_count(), 0);
    assert_eq!(n.tick(now + 60_000.0), vec![], "nothing more once given up");
}

#[test]
fn a_failed_connection_is_restarted_at_once_and_recovery_resets_the_count() {
    let mut n = sending_to_v();
    let v = PeerId::from("v");
    assert_eq!(
        st(&mut n, Dir::Outbound, &v, "failed", 10.0),
        vec![restart("v")]
    );
    assert_eq!(st(&mut n, Dir::Outbound, &v, "connected", 500.0), vec![]);
    assert_eq!(
        st(&mut n, Dir::Outbound, &v, "failed", 1_000.0),
        vec![restart("v")]
    );
}

#[test]
fn the_viewer_waits_for_restarts_then_drops_and_asks_again() {
    let mut n = Negotiator::new(false, 1);
    let a = PeerId::from("a");
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 1,
            sdp: offer("1"),
            sig: None,
        },
        0.0,
    );
    st(&mut n, Dir::Inbound, &a, "connected", 100.0);
    assert!(n.peers()[0].has_tile());
    assert_eq!(st(&mut n, Dir::Inbound, &a, "failed", 1_000.0), vec![]);
    assert!(n.peers()[0].healing());
    // An ICE restart offer (same session) renegotiates and keeps the tile.
    assert_eq!(
        n.on_server(
            ServerMsg::Offer {
                from: "a".into(),
                conn: 1,
                sdp: offer("1"),
                sig: None,
            },
            2_000.0
        ),
        vec![Action::Renegotiate {
            from: "a".into(),
            conn: 1,
            sdp: offer("1"),
            sig: None,
        }]
    );
    assert_eq!(n.tick(1_000.0 + INBOUND_GIVE_UP_MS - 1.0), vec![]);
    assert_eq!(st(&mut n, Dir::Inbound, &a, "failed", 3_000.0), vec![]);
    assert_eq!(
        n.tick(3_000.0 + INBOUND_GIVE_UP_MS),
        vec![close(Dir::Inbound, "a"), get("a")]
    );
    assert!(
        !n.peers()[0].has_tile(),
        "a lost broadcast has no tile until it is offered again"
    );
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 2,
            sdp: offer("2"),
            sig: None,
        },
        20_000.0,
    );
    assert!(n.peers()[0].has_tile());
}

#[test]
fn after_a_relay_restart_missing_peers_keep_flowing_media_for_a_grace_period() {
    let mut n = Negotiator::new(false, 1);
    let (a, b) = (PeerId::from("a"), PeerId::from("b"));
    n.on_server(welcome("me", vec![info("a", true), info("b", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 1,
            sdp: offer("1"),
            sig: None,
        },
        0.0,
    );
    n.on_server(
        ServerMsg::Offer {
            from: "b".into(),
            conn: 2,
            sdp: offer("2"),
            sig: None,
        },
        0.0,
    );
    st(&mut n, Dir::Inbound, &a, "connected", 0.0);
    st(&mut n, Dir::Inbound, &b, "connected", 0.0);
    // The relay restarted and we are back first: the room looks empty.
    assert_eq!(n.on_server(welcome("me", vec![]), 1_000.0), vec![]);
    assert_eq!(n.peers().len(), 2);
    // a comes back: confirmed. b never does and its media stops: dropped.
    n.on_server(
        ServerMsg::PeerJoined {
            peer: info("a", false),
        },
        2_000.0,
    );
    assert_eq!(
        st(&mut n, Dir::Inbound, &b, "failed", 3_000.0),
        vec![close(Dir::Inbound, "b")]
    );
    assert_eq!(n.peers().len(), 1);
    // Even with media flowing, the grace ends.
    n.on_server(welcome("me", vec![]), 4_000.0);
    assert_eq!(
        n.tick(4_000.0 + REJOIN_GRACE_MS),
        vec![close(Dir::Inbound, "a")]
    );
    assert!(n.peers().is_empty());
}

#[test]
fn peers_without_flowing_media_go_at_once_when_missing_from_a_welcome() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("a", false)]), 0.0);
    assert_eq!(n.on_server(welcome("me", vec![]), 1.0), vec![]);
    assert!(n.peers().is_empty());
}

#[test]
fn stop_broadcast_closes_every_sender() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("v", false)]), 0.0);
    n.local_media_ready(0.0);
    n.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0);
    assert_eq!(
        n.stop_broadcast(),
        vec![
            Action::Send(ClientMsg::BroadcastEnded),
            Action::Close {
                dir: Dir::Outbound,
                peer: "v".into()
            }
        ]
    );
    assert_eq!(
        n.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0),
        vec![],
        "queued until ready again"
    );
}

#[test]
fn ticks_repeat_stale_requests_and_a_welcome_repeats_all() {
    let mut n = Negotiator::new(false, 1);
    assert_eq!(n.tick(0.0), vec![], "not joined");
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    assert_eq!(n.tick(REQUEST_RETRY_MS - 1.0), vec![]);
    assert_eq!(n.tick(REQUEST_RETRY_MS), vec![get("a")]);
    // After a reconnect the request may have been lost: ask again at once.
    assert_eq!(
        n.on_server(welcome("me", vec![info("a", true)]), REQUEST_RETRY_MS + 1.0),
        vec![get("a")]
    );
}

#[test]
fn a_fresh_connection_that_fails_is_replaced_at_once() {
    let mut n = Negotiator::new(false, 1);
    let a = PeerId::from("a");
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 1,
            sdp: offer("1"),
            sig: None,
        },
        0.0,
    );
    assert_eq!(
        st(&mut n, Dir::Inbound, &a, "failed", 100.0),
        vec![close(Dir::Inbound, "a"), get("a")]
    );
    // The broadcaster side too: nothing to restart.
    let mut b = Negotiator::new(false, 1);
    b.on_server(welcome("me", vec![info("v", false)]), 0.0);
    b.local_media_ready(0.0);
    b.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0);
    assert_eq!(
        st(&mut b, Dir::Outbound, &"v".into(), "failed", 100.0),
        vec![close(Dir::Outbound, "v")]
    );
}

/// Messages one side sent, as the relay delivers them to the other.
fn deliver(from: &str, acts: &[Action]) -> Vec<ServerMsg> {
    let from = PeerId::from(from);
    acts.iter()
        .filter_map(|a| match a {
            Action::Send(m) => match m.clone().route(from.clone()) {
                protocol::Route::Peer(_, out) | protocol::Route::Room(out) => Some(out),
                protocol::Route::Join { .. } => None,
            },
            _ => None,
        })
        .collect()
}

fn answer_to(to: &str, conn: ConnId) -> ClientMsg {
    ClientMsg::Answer {
        to: to.into(),
        conn,
        sdp: format!("answer for {conn}"),
        sig: None,
    }
}

#[test]
fn a_re_request_while_an_answer_is_in_flight_ignores_the_stale_answer() {
    let (bv, vb) = (
        info("b", true),
        PeerInfo {
            role: Role::Watcher,
            ..info("v", false)
        },
    );
    let mut b = Negotiator::new(false, 100);
    let mut v = Negotiator::new(false, 1);
    b.on_server(welcome("b", vec![vb]), 0.0);
    b.local_media_ready(0.0);
    // The viewer asks; the broadcaster opens connection 100 and offers.
    let ask = v.on_server(welcome("v", vec![bv]), 0.0);
    let mut opened = Vec::new();
    for m in deliver("v", &ask) {
        opened.extend(b.on_server(m, 0.0));
    }
    assert_eq!(
        opened,
        vec![Action::OpenSender {
            to: "v".into(),
            conn: 100
        }]
    );
    let offer_100 = ServerMsg::Offer {
        from: "b".into(),
        conn: 100,
        sdp: offer("9"),
        sig: None,
    };
    assert_eq!(
        v.on_server(offer_100, 10.0),
        vec![Action::OpenReceiver {
            from: "b".into(),
            conn: 100,
            sdp: offer("9"),
            sig: None,
            relay_only: false,
        }]
    );
    // The viewer answers 100; while that answer is in flight its connection
    // is given up (it never connected) and it asks again.
    let stale = deliver("v", &[Action::Send(answer_to("b", 100))]);
    let again = v.tick(10.0 + CONNECT_TIMEOUT_MS);
    assert_eq!(
        again,
        vec![
            Action::Close {
                dir: Dir::Inbound,
                peer: "b".into()
            },
            get("b")
        ]
    );
    let mut reopened = Vec::new();
    for m in deliver("v", &again) {
        reopened.extend(b.on_server(m, 20_000.0));
    }
    assert_eq!(
        reopened,
        vec![
            Action::Close {
                dir: Dir::Outbound,
                peer: "v".into()
            },
            Action::OpenSender {
                to: "v".into(),
                conn: 101
            }
        ]
    );
    // The stale answer arrives now: ignored, connection 101 stays open.
    for m in stale {
        assert_eq!(
            b.on_server(m, 20_001.0),
            vec![],
            "the answer for 100 is stale"
        );
    }
    assert!(b.is_live(Dir::Outbound, &"v".into(), 101));
    // A late candidate of connection 100 reaches the viewer: dropped too.
    let late = ServerMsg::IceOfferCandidate {
        from: "b".into(),
        conn: 100,
        candidate: cand("x"),
    };
    assert_eq!(v.on_server(late, 20_002.0), vec![]);
    // Connection 101 completes.
    let offer_101 = ServerMsg::Offer {
        from: "b".into(),
        conn: 101,
        sdp: offer("9"),
        sig: None,
    };
    assert_eq!(
        v.on_server(offer_101, 20_003.0),
        vec![Action::OpenReceiver {
            from: "b".into(),
            conn: 101,
            sdp: offer("9"),
            sig: None,
            relay_only: false,
        }],
        "a new conn with the same SDP session is still a new connection"
    );
    for m in deliver("v", &[Action::Send(answer_to("b", 101))]) {
        assert_eq!(
            b.on_server(m, 20_004.0),
            vec![Action::AcceptAnswer {
                from: "v".into(),
                conn: 101,
                sdp: "answer for 101".into(),
                sig: None,
            }]
        );
    }
    assert_eq!(
        st(&mut b, Dir::Outbound, &"v".into(), "connected", 20_100.0),
        vec![]
    );
    assert_eq!(
        st(&mut v, Dir::Inbound, &"b".into(), "connected", 20_100.0),
        vec![]
    );
    assert_eq!(
        v.tick(60_000.0),
        vec![],
        "a connected connection is never stuck"
    );
    assert!(v.peers()[0].has_tile() && v.peers()[0].watching());
    // A state change of the replaced connection is ignored.
    assert_eq!(
        b.connection_state(Dir::Outbound, &"v".into(), 100, ConnState::Failed, 20_200.0),
        vec![]
    );
    assert_eq!(b.viewer_count(), 1);
}

#[test]
fn a_connection_stuck_connecting_is_given_up_with_growing_pauses() {
    let mut n = Negotiator::new(false, 1);
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    let mut now = 0.0;
    let mut pauses = Vec::new();
    for round in 1..=5u64 {
        let o = ServerMsg::Offer {
            from: "a".into(),
            conn: round,
            sdp: offer("1"),
            sig: None,
        };
        n.on_server(o, now);
        st(&mut n, Dir::Inbound, &"a".into(), "connecting", now + 1.0);
        assert_eq!(n.tick(now + CONNECT_TIMEOUT_MS - 1.0), vec![], "not yet");
        now += CONNECT_TIMEOUT_MS;
        let acts = n.tick(now);
        assert_eq!(
            acts.first(),
            Some(&close(Dir::Inbound, "a")),
            "round {round}"
        );
        // Ask again once the pause is over (ticks are 1 s apart).
        let asked_at = if acts.contains(&get("a")) {
            now
        } else {
            let mut t = now;
            loop {
                t += 1_000.0;
                if n.tick(t).contains(&get("a")) {
                    break t;
                }
                assert!(t - now <= MAX_RETRY_PAUSE_MS, "asks again within the cap");
            }
        };
        pauses.push(asked_at - now);
        now = asked_at;
    }
    assert_eq!(pauses[0], 0.0, "the first give-up asks again at once");
    assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
    assert!(pauses[4] >= 8_000.0, "{pauses:?}");
    assert!(
        n.peers()[0].unreachable(),
        "the tile keeps saying it cannot connect"
    );
    // Once a connection works, the pauses start over.
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            conn: 9,
            sdp: offer("1"),
            sig: None,
        },
        now,
    );
    st(&mut n, Dir::Inbound, &"a".into(), "connected", now + 1.0);
    assert_eq!(n.peers()[0].give_ups, 0);
    assert!(!n.peers()[0].unreachable());
}

#[test]
fn retry_pauses_grow_to_a_cap() {
    assert_eq!(retry_pause_ms(1), 0.0);
    assert_eq!(retry_pause_ms(2), 2_000.0);
    assert_eq!(retry_pause_ms(3), 4_000.0);
    assert_eq!(retry_pause_ms(100), MAX_RETRY_PAUSE_MS);
}

#[test]
fn connection_states_parse() {
    for s in [
        "new",
        "connecting",
        "connected",
        "disconnected",
        "failed",
        "closed",
    ] {
        assert_eq!(ConnState::parse(s).as_str(), s);
    }
    assert_eq!(ConnState::parse("weird"), ConnState::New);
}

#[test]
fn an_offer_older_than_the_live_connection_is_dropped() {
    let mut v = Negotiator::new(false, 1);
    v.on_server(welcome("v", vec![info("b", true)]), 0.0);
    let offer_of = |conn| ServerMsg::Offer {
        from: "b".into(),
        conn,
        sdp: offer("1"),
        sig: None,
    };
    assert_eq!(
        v.on_server(offer_of(200), 0.0),
        vec![Action::OpenReceiver {
            from: "b".into(),
            conn: 200,
            sdp: offer("1"),
            sig: None,
            relay_only: false,
        }]
    );
    assert_eq!(
        v.on_server(offer_of(150), 1.0),
        vec![],
        "older: stale, dropped"
    );
    assert!(v.is_live(Dir::Inbound, &"b".into(), 200), "200 stays live");
    assert_eq!(
        v.on_server(offer_of(201), 2.0),
        vec![
            Action::Close {
                dir: Dir::Inbound,
                peer: "b".into()
            },
            Action::OpenReceiver {
                from: "b".into(),
                conn: 201,
                sdp: offer("1"),
                sig: None,
                relay_only: false,
            }
        ],
        "newer: a new connection replaces it"
    );
}

#[test]
fn hands_follow_the_relay_and_mine_is_repeated_after_welcome() {
    let hand = |up| Action::Send(ClientMsg::Hand { up });
    let mut n = Negotiator::new(false, 1);
    assert_eq!(n.set_hand(true), vec![], "not joined yet: nothing to send");
    let mut up = info("a", false);
    up.hand = Some(5);
    let acts = n.on_server(welcome("me", vec![up, info("b", false)]), 0.0);
    assert_eq!(
        acts,
        vec![hand(true)],
        "a hand raised before joining goes up"
    );
    let hand_of = |n: &Negotiator, id: &str| {
        n.peers()
            .iter()
            .find(|p| p.info.id.0 == id)
            .and_then(|p| p.info.hand)
    };
    assert_eq!(hand_of(&n, "a"), Some(5), "from welcome.peers");
    n.on_server(
        ServerMsg::Hand {
            from: "b".into(),
            up: true,
            ts: 9,
        },
        1.0,
    );
    n.on_server(
        ServerMsg::Hand {
            from: "a".into(),
            up: false,
            ts: 10,
        },
        1.0,
    );
    assert_eq!((hand_of(&n, "a"), hand_of(&n, "b")), (None, Some(9)));
    assert_eq!(n.set_hand(false), vec![hand(false)]);
    // Down and not reloaded: a reconnect's welcome says nothing of it.
    assert_eq!(n.on_server(welcome("me", vec![]), 2.0), vec![]);

    // A reloaded page lowers the hand its previous page may have left up.
    let mut r = Negotiator::new(true, 1);
    let acts = r.on_server(welcome("me", vec![]), 0.0);
    assert_eq!(
        acts,
        vec![Action::Send(ClientMsg::BroadcastEnded), hand(false)]
    );
}

/// An offer of connection `conn` from `a`, as the relay delivers it.
fn offer_from_a(conn: ConnId) -> ServerMsg {
    ServerMsg::Offer {
        from: "a".into(),
        conn,
        sdp: offer("1"),
        sig: None,
    }
}

#[test]
fn with_turn_a_failed_connection_is_retried_once_relay_only_before_it_is_given_up() {
    let mut n = Negotiator::new(false, 1);
    n.set_turn(true);
    let a = PeerId::from("a");
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    let opened = |acts: Vec<Action>| {
        acts.into_iter().find_map(|act| match act {
            Action::OpenReceiver { relay_only, .. } => Some(relay_only),
            _ => None,
        })
    };
    assert_eq!(opened(n.on_server(offer_from_a(1), 0.0)), Some(false));
    // It fails with every candidate: asked again at once, to be relay-only.
    assert_eq!(
        st(&mut n, Dir::Inbound, &a, "failed", 100.0),
        vec![close(Dir::Inbound, "a"), get("a")]
    );
    assert_eq!(opened(n.on_server(offer_from_a(2), 200.0)), Some(true));
    assert!(n.peers()[0].relay_retry(), "the tile says so");
    // That fails too: given up as before (the first give-up asks again at
    // once, the next after growing pauses), with every candidate again.
    assert_eq!(
        st(&mut n, Dir::Inbound, &a, "failed", 300.0),
        vec![close(Dir::Inbound, "a"), get("a")]
    );
    assert!(!n.peers()[0].relay_retry());
    assert_eq!(n.peers()[0].give_ups, 1);
    assert_eq!(opened(n.on_server(offer_from_a(3), 400.0)), Some(false));
    let acts = st(&mut n, Dir::Inbound, &a, "failed", 500.0);
    assert_eq!(
        acts,
        vec![close(Dir::Inbound, "a")],
        "no second relay-only retry: a pause"
    );
    let t = 600.0 + MAX_RETRY_PAUSE_MS;
    assert!(n.tick(t).contains(&get("a")));
    assert_eq!(opened(n.on_server(offer_from_a(5), t)), Some(false));
    // One that connects earns a relay-only retry again; one that connects
    // relay-only stays relay-only, and its failure is retried relay-only.
    st(&mut n, Dir::Inbound, &a, "connected", t + 1.0);
    st(&mut n, Dir::Inbound, &a, "failed", t + 2.0);
    let acts = n.tick(t + 2.0 + INBOUND_GIVE_UP_MS);
    assert!(acts.contains(&get("a")), "asked again at once: {acts:?}");
    let t = t + 3.0 + INBOUND_GIVE_UP_MS;
    assert_eq!(opened(n.on_server(offer_from_a(6), t)), Some(true));
    st(&mut n, Dir::Inbound, &a, "connected", t + 1.0);
    assert!(n.peers()[0].relay_retry());
    assert_eq!(
        st(&mut n, Dir::Inbound, &a, "failed", t + 2.0),
        vec![],
        "waits for the broadcaster's restarts first"
    );
    let acts = n.tick(t + 2.0 + INBOUND_GIVE_UP_MS);
    assert!(acts.contains(&get("a")), "{acts:?}");
    let t = t + 3.0 + INBOUND_GIVE_UP_MS;
    assert_eq!(opened(n.on_server(offer_from_a(7), t)), Some(true));

    // Without TURN there is nothing to retry through.
    let mut plain = Negotiator::new(false, 1);
    plain.on_server(welcome("me", vec![info("a", true)]), 0.0);
    plain.on_server(offer_from_a(1), 0.0);
    st(&mut plain, Dir::Inbound, &a, "failed", 100.0);
    assert_eq!(opened(plain.on_server(offer_from_a(2), 200.0)), Some(false));
}
