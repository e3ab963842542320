//! Golden tests: the exact JSON of every event. If one of these changes, the
//! wire changed, and every deployed client with it.

use super::*;
use serde_json::{Value, json};

fn cand() -> IceCandidate {
    IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    }
}

fn cand_json() -> Value {
    json!({"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0})
}

/// Serializes to exactly `expected` and parses back from it.
fn golden<T>(msg: T, expected: Value)
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
{
    let text = serde_json::to_string(&msg).expect("serialize");
    let got: Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(got, expected, "wire form of {msg:?}");
    let back: T = serde_json::from_value(expected).expect("parse golden");
    assert_eq!(back, msg);
}

/// A server message: as [`golden`], and [`ServerMsg::from_json`] (the
/// browser's decoder) reads the same.
fn golden_server(msg: ServerMsg, expected: Value) {
    assert_eq!(
        ServerMsg::from_json(&expected.to_string()).as_ref(),
        Ok(&msg),
        "from_json of {expected}"
    );
    golden(msg, expected);
}

/// A client message: as [`golden`], and [`ClientMsg::to_json`] (the
/// browser's encoder) writes exactly what serde_json writes.
fn golden_client(msg: ClientMsg, expected: Value) {
    assert_eq!(
        msg.to_json(),
        serde_json::to_string(&msg).expect("serialize"),
        "to_json of {msg:?}"
    );
    golden(msg, expected);
}

#[test]
fn ice_servers_for_the_browser() {
    let servers = vec![
        IceServer {
            urls: vec!["stun:s:3478".into(), "turn:t:3478?transport=tcp".into()],
            username: Some("1700000000:p".into()),
            credential: Some("c/+=".into()),
        },
        IceServer {
            urls: vec![],
            username: None,
            credential: None,
        },
    ];
    assert_eq!(
        encode::ice_servers_json(&servers),
        serde_json::to_string(&servers).expect("serialize")
    );
    assert_eq!(encode::ice_servers_json(&[]), "[]");
}

#[test]
fn client_messages() {
    golden_client(
        ClientMsg::Join {
            room: RoomId("standup".into()),
            name: "Ada".into(),
            role: Role::Broadcaster,
            token: Some("t".repeat(32)),
        },
        json!({"event":"join","room":"standup","name":"Ada","role":"broadcaster","token":"t".repeat(32)}),
    );
    golden_client(
        ClientMsg::Join {
            room: RoomId("r".into()),
            name: "Bo".into(),
            role: Role::Watcher,
            token: None,
        },
        json!({"event":"join","room":"r","name":"Bo","role":"watcher"}),
    );
    golden_client(
        ClientMsg::BroadcastAvailable,
        json!({"event":"broadcastAvailable"}),
    );
    golden_client(ClientMsg::BroadcastEnded, json!({"event":"broadcastEnded"}));
    golden_client(
        ClientMsg::GetBroadcast { to: "p1".into() },
        json!({"event":"getBroadcast","to":"p1"}),
    );
    golden_client(
        ClientMsg::Offer {
            to: "p1".into(),
            conn: 7,
            sdp: "v=0".into(),
            sig: None,
        },
        json!({"event":"offer","to":"p1","conn":7,"sdp":"v=0"}),
    );
    golden_client(
        ClientMsg::Offer {
            to: "p1".into(),
            conn: 7,
            sdp: "v=0".into(),
            sig: Some("q6cEJ_sXw0bM1Wm0T3Yk2rR8Jk9wDq0Qm1oZl2vX4aA".into()),
        },
        json!({"event":"offer","to":"p1","conn":7,"sdp":"v=0","sig":"q6cEJ_sXw0bM1Wm0T3Yk2rR8Jk9wDq0Qm1oZl2vX4aA"}),
    );
    golden_client(
        ClientMsg::Answer {
            to: "p1".into(),
            conn: 7,
            sdp: "v=0".into(),
            sig: None,
        },
        json!({"event":"answer","to":"p1","conn":7,"sdp":"v=0"}),
    );
    golden_client(
        ClientMsg::Answer {
            to: "p1".into(),
            conn: 7,
            sdp: "v=0".into(),
            sig: Some("q6cEJ_sXw0bM1Wm0T3Yk2rR8Jk9wDq0Qm1oZl2vX4aA".into()),
        },
        json!({"event":"answer","to":"p1","conn":7,"sdp":"v=0","sig":"q6cEJ_sXw0bM1Wm0T3Yk2rR8Jk9wDq0Qm1oZl2vX4aA"}),
    );
    golden_client(
        ClientMsg::IceOfferCandidate {
            to: "p1".into(),
            conn: (1 << 53) - 1,
            candidate: cand(),
        },
        json!({"event":"iceOfferCandidate","to":"p1","conn":(1u64 << 53) - 1,"candidate":cand_json()}),
    );
    golden_client(
        ClientMsg::IceAnswerCandidate {
            to: "p1".into(),
            conn: (1 << 53) - 1,
            candidate: cand(),
        },
        json!({"event":"iceAnswerCandidate","to":"p1","conn":(1u64 << 53) - 1,"candidate":cand_json()}),
    );
    golden_client(
        ClientMsg::Chat {
            text: "<img src=x onerror=alert(1)>".into(),
        },
        json!({"event":"chat","text":"<img src=x onerror=alert(1)>"}),
    );
    golden_client(
        ClientMsg::MediaState {
            audio: false,
            video: true,
            screen: None,
        },
        json!({"event":"mediaState","audio":false,"video":true}),
    );
    golden_client(
        ClientMsg::MediaState {
            audio: true,
            video: true,
            screen: Some("{5c1f0d2e-9a4b-4c3d-8e7f-0123456789ab}".into()),
        },
        json!({"event":"mediaState","audio":true,"video":true,"screen":"{5c1f0d2e-9a4b-4c3d-8e7f-0123456789ab}"}),
    );
    golden_client(
        ClientMsg::IceAnswerCandidate {
            to: "p1".into(),
            conn: 0,
            candidate: IceCandidate {
                candidate: String::new(),
                sdp_mid: None,
                sdp_m_line_index: None,
                username_fragment: Some("uf".into()),
            },
        },
        json!({"event":"iceAnswerCandidate","to":"p1","conn":0,
               "candidate":{"candidate":"","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":"uf"}}),
    );
    golden_client(
        ClientMsg::Hand { up: true },
        json!({"event":"hand","up":true}),
    );
    golden_client(
        ClientMsg::ViewSize {
            to: "p1".into(),
            conn: 7,
            width: 640,
            height: 0,
        },
        json!({"event":"viewSize","to":"p1","conn":7,"width":640,"height":0}),
    );
    golden_client(
        ClientMsg::Chat {
            text: "quote \" slash \\ / tab \t nl \n cr \r bell \u{7} é 😀".into(),
        },
        json!({"event":"chat","text":"quote \" slash \\ / tab \t nl \n cr \r bell \u{7} é 😀"}),
    );
}

#[test]
fn server_messages() {
    let peer = PeerInfo {
        id: "p2".into(),
        name: "Bo".into(),
        role: Role::Watcher,
        broadcasting: false,
        hand: None,
    };
    golden_server(
        ServerMsg::Welcome {
            id: "p1".into(),
            room: RoomId("standup".into()),
            peers: vec![peer.clone()],
            ice_servers: vec![
                IceServer {
                    urls: vec!["stun:stun.l.google.com:19302".into()],
                    username: None,
                    credential: None,
                },
                IceServer {
                    urls: vec!["turn:turn.example:3478?transport=udp".into()],
                    username: Some("1700000000:p1".into()),
                    credential: Some("c2VjcmV0".into()),
                },
            ],
            chat: vec![ChatEntry {
                from: "p2".into(),
                name: "Bo".into(),
                text: "hi <b>all</b>".into(),
                ts: 1_764_633_600_000,
            }],
        },
        json!({"event":"welcome","id":"p1","room":"standup",
               "peers":[{"id":"p2","name":"Bo","role":"watcher","broadcasting":false}],
               "iceServers":[{"urls":["stun:stun.l.google.com:19302"]},
                             {"urls":["turn:turn.example:3478?transport=udp"],"username":"1700000000:p1","credential":"c2VjcmV0"}],
               "chat":[{"from":"p2","name":"Bo","text":"hi <b>all</b>","ts":1_764_633_600_000u64}]}),
    );
    golden_server(
        ServerMsg::Chat {
            from: "p2".into(),
            text: "Zoë: \"see https://example.org\" 🎥".into(),
            ts: 1_764_633_600_123,
        },
        json!({"event":"chat","from":"p2","text":"Zoë: \"see https://example.org\" 🎥","ts":1_764_633_600_123u64}),
    );
    golden_server(
        ServerMsg::PeerJoined {
            peer: PeerInfo {
                id: "p3".into(),
                name: "Cy".into(),
                role: Role::Broadcaster,
                broadcasting: true,
                hand: Some(1_764_633_600_456),
            },
        },
        json!({"event":"peerJoined","peer":{"id":"p3","name":"Cy","role":"broadcaster","broadcasting":true,"hand":1_764_633_600_456u64}}),
    );
    golden_server(
        ServerMsg::Hand {
            from: "p3".into(),
            up: false,
            ts: 0,
        },
        json!({"event":"hand","from":"p3","up":false,"ts":0}),
    );
    golden_server(
        ServerMsg::ViewSize {
            from: "p3".into(),
            conn: 9,
            width: 1920,
            height: 1080,
        },
        json!({"event":"viewSize","from":"p3","conn":9,"width":1920,"height":1080}),
    );
    golden_server(
        ServerMsg::PeerJoined { peer },
        json!({"event":"peerJoined","peer":{"id":"p2","name":"Bo","role":"watcher","broadcasting":false}}),
    );
    golden_server(
        ServerMsg::PeerLeft { id: "p2".into() },
        json!({"event":"peerLeft","id":"p2"}),
    );
    golden_server(
        ServerMsg::BroadcastAvailable { from: "p1".into() },
        json!({"event":"broadcastAvailable","from":"p1"}),
    );
    golden_server(
        ServerMsg::BroadcastEnded { from: "p1".into() },
        json!({"event":"broadcastEnded","from":"p1"}),
    );
    golden_server(
        ServerMsg::GetBroadcast { from: "p1".into() },
        json!({"event":"getBroadcast","from":"p1"}),
    );
    golden_server(
        ServerMsg::Offer {
            from: "p1".into(),
            conn: 7,
            sdp: "v=0".into(),
            sig: None,
        },
        json!({"event":"offer","from":"p1","conn":7,"sdp":"v=0"}),
    );
    golden_server(
        ServerMsg::Offer {
            from: "p1".into(),
            conn: 7,
            sdp: "v=0".into(),
            sig: Some("q6cEJ_sXw0bM1Wm0T3Yk2rR8Jk9wDq0Qm1oZl2vX4aA".into()),
        },
        json!({"event":"offer","from":"p1","conn":7,"sdp":"v=0","sig":"q6cEJ_sXw0bM1Wm0T3Yk2rR8Jk9wDq0Qm1oZl2vX4aA"}),
    );
    golden_server(
        ServerMsg::Answer {
            from: "p1".into(),
            conn: 7,
            sdp: "v=0".into(),
            sig: None,
        },
        json!({"event":"answer","from":"p1","conn":7,"sdp":"v=0"}),
    );
    golden_server(
        ServerMsg::Answer {
            from: "p1".into(),
            conn: 7,
            sdp: "v=0".into(),
            sig: Some("q6cEJ_sXw0bM1Wm0T3Yk2rR8Jk9wDq0Qm1oZl2vX4aA".into()),
        },
        json!({"event":"answer","from":"p1","conn":7,"sdp":"v=0","sig":"q6cEJ_sXw0bM1Wm0T3Yk2rR8Jk9wDq0Qm1oZl2vX4aA"}),
    );
    golden_server(
        ServerMsg::IceOfferCandidate {
            from: "p1".into(),
            conn: (1 << 53) - 1,
            candidate: cand(),
        },
        json!({"event":"iceOfferCandidate","from":"p1","conn":(1u64 << 53) - 1,"candidate":cand_json()}),
    );
    golden_server(
        ServerMsg::IceAnswerCandidate {
            from: "p1".into(),
            conn: (1 << 53) - 1,
            candidate: cand(),
        },
        json!({"event":"iceAnswerCandidate","from":"p1","conn":(1u64 << 53) - 1,"candidate":cand_json()}),
    );
    golden_server(
        ServerMsg::MediaState {
            from: "p1".into(),
            audio: true,
            video: false,
            screen: None,
        },
        json!({"event":"mediaState","from":"p1","audio":true,"video":false}),
    );
    for code in ErrorCode::ALL {
        golden_server(
            ServerMsg::Error {
                code,
                message: "why".into(),
            },
            json!({"event":"error","code":code.as_str(),"message":"why"}),
        );
    }
}

#[test]
fn ice_servers_push() {
    golden_server(
        ServerMsg::IceServers {
            ice_servers: vec![IceServer {
                urls: vec!["turn:turn.example:3478?transport=udp".into()],
                username: Some("1700000600:p1".into()),
                credential: Some("c2VjcmV0".into()),
            }],
        },
        json!({"event":"iceServers","iceServers":[{"urls":["turn:turn.example:3478?transport=udp"],
               "username":"1700000600:p1","credential":"c2VjcmV0"}]}),
    );
}

#[test]
fn close_codes() {
    assert_eq!(
        [
            close::NORMAL,
            close::GOING_AWAY,
            close::LEAVING,
            close::POLICY,
            close::TOO_BIG,
            close::TRY_AGAIN_LATER,
            close::REPLACED
        ],
        [1000, 1001, 1001, 1008, 1009, 1013, 4000]
    );
}

#[test]
fn conn_is_optional_for_old_clients() {
    for (old, event) in [
        (json!({"event":"offer","to":"p2","sdp":"v=0"}), "offer"),
        (json!({"event":"answer","to":"p2","sdp":"v=0"}), "answer"),
        (
            json!({"event":"iceOfferCandidate","to":"p2","candidate":cand_json()}),
            "iceOfferCandidate",
        ),
        (
            json!({"event":"iceAnswerCandidate","to":"p2","candidate":cand_json()}),
            "iceAnswerCandidate",
        ),
    ] {
        let msg: ClientMsg = serde_json::from_value(old).expect("old clients parse");
        let Route::Peer(to, out) = msg.route("p1".into()) else {
            panic!("{event} goes to one peer");
        };
        assert_eq!(to, PeerId::from("p2"));
        let out = serde_json::to_value(out).expect("serialize");
        assert_eq!(out["event"], event);
        assert_eq!(out["conn"], 0, "absent conn is 0");
    }
}

#[test]
fn routing_drops_to_stamps_from_and_keeps_conn() {
    let sent: ClientMsg = serde_json::from_value(
        json!({"event":"offer","to":"p2","from":"spoofed","conn":42,"sdp":"v=0"}),
    )
    .expect("parse");
    let Route::Peer(to, out) = sent.route("p1".into()) else {
        panic!("an offer goes to one peer");
    };
    assert_eq!(to, PeerId::from("p2"));
    assert_eq!(
        serde_json::to_value(out).expect("serialize"),
        json!({"event":"offer","from":"p1","conn":42,"sdp":"v=0"})
    );
    let room_wide = [
        (ClientMsg::BroadcastAvailable, "broadcastAvailable"),
        (ClientMsg::BroadcastEnded, "broadcastEnded"),
        (
            ClientMsg::MediaState {
                audio: true,
                video: false,
                screen: Some("s1".into()),
            },
            "mediaState",
        ),
    ];
    for (msg, event) in room_wide {
        let Route::Room(out) = msg.route("p1".into()) else {
            panic!("{event} goes to the room");
        };
        let out = serde_json::to_value(out).expect("serialize");
        assert_eq!(
            (out["event"].as_str(), out["from"].as_str()),
            (Some(event), Some("p1"))
        );
    }
    let size = ClientMsg::ViewSize {
        to: "p3".into(),
        conn: 5,
        width: 320,
        height: 180,
    };
    assert_eq!(
        size.route("p1".into()),
        Route::Peer(
            "p3".into(),
            ServerMsg::ViewSize {
                from: "p1".into(),
                conn: 5,
                width: 320,
                height: 180
            }
        )
    );
    assert_eq!(
        ClientMsg::Hand { up: true }.route("p1".into()),
        Route::Room(ServerMsg::Hand {
            from: "p1".into(),
            up: true,
            ts: 0
        })
    );
    let get = ClientMsg::GetBroadcast { to: "p3".into() };
    assert_eq!(
        get.route("p1".into()),
        Route::Peer("p3".into(), ServerMsg::GetBroadcast { from: "p1".into() })
    );
    let join = ClientMsg::Join {
        room: RoomId("r".into()),
        name: "n".into(),
        role: Role::Watcher,
        token: None,
    };
    assert!(matches!(join.route("p1".into()), Route::Join { .. }));
}

#[test]
fn candidates_keep_the_username_fragment_and_accept_nulls() {
    let c: IceCandidate = serde_json::from_value(
        json!({"candidate":"","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":"abcd"}),
    )
    .expect("parse");
    assert_eq!(c.username_fragment.as_deref(), Some("abcd"));
    assert_eq!(c.sdp_mid, None);
    assert_eq!(
        serde_json::to_value(&c).expect("serialize"),
        json!({"candidate":"","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":"abcd"})
    );
}

#[test]
fn rejects_unknown_events_and_missing_fields() {
    for bad in [
        json!({"event":"dance"}),
        json!({"event":"offer","to":"p1"}),
        json!({"event":"join","room":"r","name":"n","role":"boss"}),
        json!({"to":"p1"}),
        json!([1, 2]),
    ] {
        assert!(
            serde_json::from_value::<ClientMsg>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn the_browser_decoder_refuses_what_the_derive_refuses() {
    for bad in [
        json!({"event":"nope"}),
        json!({"event":"offer","conn":1,"sdp":"v=0"}),
        json!({"event":"welcome","id":"p1","room":"r","peers":[]}),
        json!({"event":"mediaState","from":"p1","audio":true}),
        json!({"event":"offer","from":"p1","conn":"1","sdp":"v=0"}),
        json!({"event":"offer","from":"p1","conn":null,"sdp":"v=0"}),
        json!({"event":"offer","from":"p1","conn":-1,"sdp":"v=0"}),
        json!({"event":"mediaState","from":"p1","audio":true,"video":true,"screen":1}),
        json!({"from":"p1"}),
        json!([1, 2]),
    ] {
        assert!(ServerMsg::from_json(&bad.to_string()).is_err(), "{bad}");
        assert!(
            serde_json::from_value::<ServerMsg>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        ServerMsg::from_json(r#"{"event":"broadcastEnded","from":"p1","extra":1}"#),
        Ok(ServerMsg::BroadcastEnded { from: "p1".into() }),
        "unknown fields are ignored"
    );
    assert!(ServerMsg::from_json("not json").is_err());
    // What old relays send, and what sharing adds.
    for (text, msg) in [
        (
            json!({"event":"offer","from":"p1","sdp":"v=0"}),
            ServerMsg::Offer {
                from: "p1".into(),
                conn: 0,
                sdp: "v=0".into(),
                sig: None,
            },
        ),
        (
            json!({"event":"mediaState","from":"p1","audio":true,"video":false,"screen":"s1"}),
            ServerMsg::MediaState {
                from: "p1".into(),
                audio: true,
                video: false,
                screen: Some("s1".into()),
            },
        ),
    ] {
        assert_eq!(ServerMsg::from_json(&text.to_string()).as_ref(), Ok(&msg));
        assert_eq!(
            serde_json::from_value::<ServerMsg>(text).ok().as_ref(),
            Some(&msg)
        );
    }
}

#[test]
fn view_sizes() {
    assert!(valid_view_size(0, 0), "0 x 0: not shown");
    assert!(valid_view_size(MAX_VIEW_SIDE, MAX_VIEW_SIDE));
    assert!(!valid_view_size(MAX_VIEW_SIDE + 1, 1));
    assert!(!valid_view_size(1, MAX_VIEW_SIDE + 1));
}

#[test]
fn room_names() {
    assert!(valid_room("a"));
    assert!(valid_room("Team_standup-2"));
    assert!(valid_room(&"x".repeat(64)));
    assert!(!valid_room(""));
    assert!(!valid_room(&"x".repeat(65)));
    for bad in ["a b", "a/b", "é", "a.b", "a\n"] {
        assert!(!valid_room(bad), "{bad:?}");
    }
}

#[test]
fn chat_texts() {
    assert!(valid_chat("hi"));
    assert!(
        valid_chat(&"é".repeat(MAX_CHAT_CHARS)),
        "characters, not bytes"
    );
    assert!(!valid_chat(&"a".repeat(MAX_CHAT_CHARS + 1)));
    assert!(!valid_chat(""));
    assert!(!valid_chat(" \n\t "));
    assert!(valid_chat("line one\nline two"));
}

#[test]
fn stream_ids() {
    assert!(valid_stream_id("5c1f0d2e-9a4b-4c3d-8e7f-0123456789ab"));
    assert!(valid_stream_id("{5c1f0d2e-9a4b-4c3d-8e7f-0123456789ab}"));
    assert!(valid_stream_id(&"x".repeat(MAX_STREAM_ID_LEN)));
    assert!(!valid_stream_id(""));
    assert!(!valid_stream_id(&"x".repeat(MAX_STREAM_ID_LEN + 1)));
    for bad in ["a b", "<img>", "é", "a\n", "a\"b"] {
        assert!(!valid_stream_id(bad), "{bad:?}");
    }
}

#[test]
fn display_names() {
    assert_eq!(clean_name("  Ada  "), Some("Ada"));
    assert_eq!(clean_name("Zoë 🎥"), Some("Zoë 🎥"));
    assert_eq!(
        clean_name(&"é".repeat(64)).map(|n| n.chars().count()),
        Some(64)
    );
    assert_eq!(clean_name(&"é".repeat(65)), None);
    assert_eq!(clean_name("   "), None);
    assert_eq!(clean_name("a\u{7}b"), None);
    assert_eq!(clean_name("a\nb"), None);
}

#[test]
fn tokens() {
    assert!(valid_token(&"a".repeat(32)));
    assert!(valid_token(&"Z9_-".repeat(32)));
    assert!(!valid_token(&"a".repeat(31)));
    assert!(!valid_token(&"a".repeat(129)));
    assert!(!valid_token(&format!("{}!", "a".repeat(40))));
}
