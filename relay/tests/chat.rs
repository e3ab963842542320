//! Chat through the real relay: stamped and passed on to the room, limits
//! that answer with an error and keep the socket, the history a late joiner
//! gets, and nothing across rooms.

mod common;

use common::{Client, Server, id};
use serde_json::json;

#[tokio::test]
async fn a_message_reaches_everyone_else_stamped_and_as_sent() {
    let server = Server::start().await;
    let (mut ada, wa) = Client::join(&server, "chat", "Ada", "broadcaster").await;
    let (mut vic, _) = Client::join(&server, "chat", "Vic", "watcher").await;
    ada.recv_until(|m| m["event"] == "peerJoined").await;
    let (mut eve, _) = Client::join(&server, "other", "Eve", "broadcaster").await;

    let text = "<img src=x onerror=alert(1)> & \"Zoë\" 🎥\nhttps://example.org";
    ada.send(json!({"event":"chat","text":text,"from":"forged","ts":1}))
        .await;
    let got = vic.recv().await;
    assert_eq!(got["event"], "chat");
    assert_eq!(got["from"], id(&wa), "the relay's stamp, not the client's");
    assert_eq!(got["text"], text, "the text as sent, byte for byte");
    let ts = got["ts"].as_u64().expect("ts in ms");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    assert!(now.abs_diff(ts) < 60_000, "ts is ms since the epoch: {ts}");
    assert_eq!(got.as_object().map(|o| o.len()), Some(4), "{got}");
    ada.assert_quiet().await;
    eve.assert_quiet().await;

    // A viewer writes too.
    vic.send(json!({"event":"chat","text":"hi"})).await;
    assert_eq!(ada.recv().await["text"], "hi");
}

#[tokio::test]
async fn too_long_or_blank_gets_bad_message_and_the_socket_stays() {
    let server = Server::start().await;
    let (mut ada, _) = Client::join(&server, "limits", "Ada", "broadcaster").await;
    let (mut bob, _) = Client::join(&server, "limits", "Bob", "broadcaster").await;
    ada.recv_until(|m| m["event"] == "peerJoined").await;

    for bad in [
        "a".repeat(protocol::MAX_CHAT_CHARS + 1),
        String::new(),
        " \n\t ".into(),
    ] {
        ada.send(json!({"event":"chat","text":bad})).await;
        ada.expect_error("badMessage").await;
    }
    ada.send(json!({"event":"chat","text":7})).await;
    ada.expect_error("badMessage").await;
    bob.assert_quiet().await;

    // 2,000 characters of two bytes each: characters count, not bytes.
    let longest = "é".repeat(protocol::MAX_CHAT_CHARS);
    ada.send(json!({"event":"chat","text":longest})).await;
    assert_eq!(bob.recv().await["text"], longest, "the socket stayed open");
}

#[tokio::test]
async fn a_late_joiner_gets_exactly_the_last_fifty_and_an_emptied_room_forgets() {
    let server = Server::start().await;
    let (mut ada, wa) = Client::join(&server, "history", "Ada", "broadcaster").await;
    for n in 0..55 {
        ada.send(json!({"event":"chat","text":format!("message {n}")}))
            .await;
    }
    // Her socket is read in order: once the error for a blank message is
    // back, all 55 were handled.
    ada.send(json!({"event":"chat","text":""})).await;
    ada.expect_error("badMessage").await;
    let (bob, wb) = Client::join(&server, "history", "Bob", "broadcaster").await;
    let chat = wb["chat"].as_array().expect("welcome.chat");
    let texts: Vec<&str> = chat.iter().filter_map(|m| m["text"].as_str()).collect();
    let want: Vec<String> = (5..55).map(|n| format!("message {n}")).collect();
    assert_eq!(texts, want, "exactly the last 50, oldest first");
    assert!(
        chat.iter()
            .all(|m| m["from"] == id(&wa) && m["name"] == "Ada")
    );
    let ts: Vec<u64> = chat.iter().filter_map(|m| m["ts"].as_u64()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "in order: {ts:?}");
    assert_eq!(ada.recv().await["event"], "peerJoined");
    ada.assert_quiet().await; // no chat of her own came back

    let (_cyd, wc) = Client::join(&server, "elsewhere", "Cyd", "broadcaster").await;
    assert_eq!(wc["chat"], json!([]), "another room's history never leaks");

    ada.leave().await;
    bob.leave().await;
    // Until the relay has removed the room ("elsewhere" stays).
    for _ in 0..100 {
        if server.metric("meshcast_rooms").await <= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(server.metric("meshcast_rooms").await, 1.0);
    let (_dan, wd) = Client::join(&server, "history", "Dan", "broadcaster").await;
    assert_eq!(wd["chat"], json!([]), "the room emptied: its chat is gone");
}
