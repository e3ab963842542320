use super::*;
use protocol::{Role, RoomId};

fn info(id: &str, broadcasting: bool) -> PeerInfo {
    PeerInfo {
        id: id.into(),
        name: id.to_uppercase(),
        role: Role::Broadcaster,
        broadcasting,
    }
}

fn welcome(me: &str, peers: Vec<PeerInfo>) -> ServerMsg {
    ServerMsg::Welcome {
        id: me.into(),
        room: RoomId("r".into()),
        peers,
        ice_servers: vec![],
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
    let mut n = Negotiator::new(false);
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
            sdp: offer("1"),
        },
        2.0,
    );
    assert_eq!(
        acts,
        vec![Action::OpenReceiver {
            from: "a".into(),
            sdp: offer("1")
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
    let mut n = Negotiator::new(false);
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
    let mut n = Negotiator::new(false);
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
        n.local_media_ready(),
        vec![
            Action::Send(ClientMsg::BroadcastAvailable),
            Action::OpenSender("v".into())
        ]
    );
    // The viewer asks again (it lost its side): the old connection is replaced.
    assert_eq!(
        n.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0),
        vec![
            Action::Close {
                dir: Dir::Outbound,
                peer: "v".into()
            },
            Action::OpenSender("v".into())
        ]
    );
    let answer = ServerMsg::Answer {
        from: "v".into(),
        sdp: "ans".into(),
    };
    assert_eq!(
        n.on_server(answer, 0.0),
        vec![Action::AcceptAnswer {
            from: "v".into(),
            sdp: "ans".into()
        }]
    );
    let c = ServerMsg::IceAnswerCandidate {
        from: "v".into(),
        candidate: cand("c1"),
    };
    assert_eq!(
        n.on_server(c, 0.0),
        vec![Action::AddCandidate {
            dir: Dir::Outbound,
            peer: "v".into(),
            candidate: cand("c1")
        }]
    );
}

#[test]
fn offers_from_strangers_and_answers_without_a_sender_are_ignored() {
    let mut n = Negotiator::new(false);
    n.on_server(welcome("me", vec![info("a", false)]), 0.0);
    assert_eq!(
        n.on_server(
            ServerMsg::Offer {
                from: "x".into(),
                sdp: offer("1")
            },
            0.0
        ),
        vec![]
    );
    assert_eq!(
        n.on_server(
            ServerMsg::Answer {
                from: "a".into(),
                sdp: "s".into()
            },
            0.0
        ),
        vec![]
    );
    let c = ServerMsg::IceOfferCandidate {
        from: "a".into(),
        candidate: cand("c"),
    };
    assert_eq!(n.on_server(c, 0.0), vec![], "no inbound connection yet");
}

#[test]
fn same_session_renegotiates_and_a_new_session_replaces() {
    let mut n = Negotiator::new(false);
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            sdp: offer("111"),
        },
        0.0,
    );
    assert_eq!(
        n.on_server(
            ServerMsg::Offer {
                from: "a".into(),
                sdp: offer("111")
            },
            0.0
        ),
        vec![Action::Renegotiate {
            from: "a".into(),
            sdp: offer("111")
        }]
    );
    assert_eq!(
        n.on_server(
            ServerMsg::Offer {
                from: "a".into(),
                sdp: offer("222")
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
                sdp: offer("222")
            }
        ]
    );
}

#[test]
fn leaving_and_ending_close_the_right_connections() {
    let mut n = Negotiator::new(false);
    n.on_server(welcome("me", vec![info("a", true), info("b", true)]), 0.0);
    n.local_media_ready();
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            sdp: offer("1"),
        },
        0.0,
    );
    n.on_server(
        ServerMsg::Offer {
            from: "b".into(),
            sdp: offer("2"),
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
    let mut n = Negotiator::new(false);
    n.on_server(welcome("me", vec![info("a", true), info("b", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            sdp: offer("1"),
        },
        0.0,
    );
    n.on_server(
        ServerMsg::Offer {
            from: "b".into(),
            sdp: offer("2"),
        },
        0.0,
    );
    n.local_media_ready();
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
    let mut n = Negotiator::new(true);
    let acts = n.on_server(welcome("me", vec![]), 0.0);
    assert_eq!(acts, vec![Action::Send(ClientMsg::BroadcastEnded)]);
    assert_eq!(n.on_server(welcome("me", vec![]), 0.0), vec![], "only once");
}

#[test]
fn media_state_is_told_and_repeated_to_newcomers() {
    let mut n = Negotiator::new(false);
    assert_eq!(n.set_local_media(false, true), vec![], "not joined yet");
    n.on_server(welcome("me", vec![]), 0.0);
    assert_eq!(
        n.set_local_media(false, true),
        vec![Action::Send(ClientMsg::MediaState {
            audio: false,
            video: true
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
            video: true
        })]
    );
    n.on_server(
        ServerMsg::MediaState {
            from: "x".into(),
            audio: false,
            video: false,
        },
        0.0,
    );
    assert!(!n.peers()[0].audio && !n.peers()[0].video);
}

fn restart(to: &str) -> Action {
    Action::RestartIce(to.into())
}

fn close(dir: Dir, peer: &str) -> Action {
    Action::Close {
        dir,
        peer: peer.into(),
    }
}

/// A broadcaster "me" with one viewer "v" connected.
fn sending_to_v() -> Negotiator {
    let mut n = Negotiator::new(false);
    n.on_server(welcome("me", vec![info("v", false)]), 0.0);
    n.local_media_ready();
    n.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0);
    assert_eq!(
        n.connection_state(Dir::Outbound, &"v".into(), "connected", 0.0),
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
        n.connection_state(Dir::Outbound, &v, "disconnected", 1_000.0),
        vec![]
    );
    assert_eq!(n.tick(1_000.0 + DISCONNECTED_GRACE_MS - 1.0), vec![]);
    assert_eq!(n.tick(1_000.0 + DISCONNECTED_GRACE_MS), vec![restart("v")]);
    // The restart gets its time.
    let t = 1_000.0 + DISCONNECTED_GRACE_MS;
    assert_eq!(
        n.connection_state(Dir::Outbound, &v, "failed", t + 100.0),
        vec![]
    );
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
        n.connection_state(Dir::Outbound, &v, "failed", 10.0),
        vec![restart("v")]
    );
    assert_eq!(
        n.connection_state(Dir::Outbound, &v, "connected", 500.0),
        vec![]
    );
    assert_eq!(
        n.connection_state(Dir::Outbound, &v, "failed", 1_000.0),
        vec![restart("v")]
    );
}

#[test]
fn the_viewer_waits_for_restarts_then_drops_and_asks_again() {
    let mut n = Negotiator::new(false);
    let a = PeerId::from("a");
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            sdp: offer("1"),
        },
        0.0,
    );
    n.connection_state(Dir::Inbound, &a, "connected", 100.0);
    assert!(n.peers()[0].has_tile());
    assert_eq!(
        n.connection_state(Dir::Inbound, &a, "failed", 1_000.0),
        vec![]
    );
    assert!(n.peers()[0].healing());
    // An ICE restart offer (same session) renegotiates and keeps the tile.
    assert_eq!(
        n.on_server(
            ServerMsg::Offer {
                from: "a".into(),
                sdp: offer("1")
            },
            2_000.0
        ),
        vec![Action::Renegotiate {
            from: "a".into(),
            sdp: offer("1")
        }]
    );
    assert_eq!(n.tick(1_000.0 + INBOUND_GIVE_UP_MS - 1.0), vec![]);
    assert_eq!(
        n.connection_state(Dir::Inbound, &a, "failed", 3_000.0),
        vec![]
    );
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
            sdp: offer("2"),
        },
        20_000.0,
    );
    assert!(n.peers()[0].has_tile());
}

#[test]
fn after_a_relay_restart_missing_peers_keep_flowing_media_for_a_grace_period() {
    let mut n = Negotiator::new(false);
    let (a, b) = (PeerId::from("a"), PeerId::from("b"));
    n.on_server(welcome("me", vec![info("a", true), info("b", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            sdp: offer("1"),
        },
        0.0,
    );
    n.on_server(
        ServerMsg::Offer {
            from: "b".into(),
            sdp: offer("2"),
        },
        0.0,
    );
    n.connection_state(Dir::Inbound, &a, "connected", 0.0);
    n.connection_state(Dir::Inbound, &b, "connected", 0.0);
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
        n.connection_state(Dir::Inbound, &b, "failed", 3_000.0),
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
    let mut n = Negotiator::new(false);
    n.on_server(welcome("me", vec![info("a", false)]), 0.0);
    assert_eq!(n.on_server(welcome("me", vec![]), 1.0), vec![]);
    assert!(n.peers().is_empty());
}

#[test]
fn stop_broadcast_closes_every_sender() {
    let mut n = Negotiator::new(false);
    n.on_server(welcome("me", vec![info("v", false)]), 0.0);
    n.local_media_ready();
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
fn sdp_session_ids() {
    assert_eq!(
        sdp_session_id("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"),
        Some("4611731400430051336")
    );
    assert_eq!(sdp_session_id("v=0\r\n"), None);
}

#[test]
fn candidates_wait_for_the_remote_description() {
    let mut q = CandidateQueue::default();
    assert_eq!(q.push(cand("1")), None);
    assert_eq!(q.push(cand("2")), None);
    assert_eq!(q.queued(), 2);
    assert_eq!(q.remote_description_set(), vec![cand("1"), cand("2")]);
    assert_eq!(q.push(cand("3")), Some(cand("3")));
    q.renegotiating();
    assert_eq!(q.push(cand("4")), None);
    assert_eq!(q.remote_description_set(), vec![cand("4")]);
}

#[test]
fn ticks_repeat_stale_requests_and_a_welcome_repeats_all() {
    let mut n = Negotiator::new(false);
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
    let mut n = Negotiator::new(false);
    let a = PeerId::from("a");
    n.on_server(welcome("me", vec![info("a", true)]), 0.0);
    n.on_server(
        ServerMsg::Offer {
            from: "a".into(),
            sdp: offer("1"),
        },
        0.0,
    );
    assert_eq!(
        n.connection_state(Dir::Inbound, &a, "failed", 100.0),
        vec![close(Dir::Inbound, "a"), get("a")]
    );
    // The broadcaster side too: nothing to restart.
    let mut b = Negotiator::new(false);
    b.on_server(welcome("me", vec![info("v", false)]), 0.0);
    b.local_media_ready();
    b.on_server(ServerMsg::GetBroadcast { from: "v".into() }, 0.0);
    assert_eq!(
        b.connection_state(Dir::Outbound, &"v".into(), "failed", 100.0),
        vec![close(Dir::Outbound, "v")]
    );
}
