//! Raised hands and view sizes through the real relay: stamped and passed
//! on, kept for late joiners in `welcome.peers`, repeats swallowed, sizes
//! validated, nothing across rooms.

mod common;

use common::{Client, Server, id};
use serde_json::json;

#[tokio::test]
async fn a_hand_goes_up_and_down_and_late_joiners_see_the_order() {
    let server = Server::start().await;
    let (mut ada, wa) = Client::join(&server, "hands", "Ada", "broadcaster").await;
    let (mut vic, wv) = Client::join(&server, "hands", "Vic", "watcher").await;
    ada.recv_until(|m| m["event"] == "peerJoined").await;
    let (mut eve, _) = Client::join(&server, "elsewhere", "Eve", "broadcaster").await;

    vic.send(json!({"event":"hand","up":true,"from":"forged","ts":1}))
        .await;
    let got = ada.recv().await;
    assert_eq!(got["event"], "hand");
    assert_eq!(got["from"], id(&wv), "the relay's stamp");
    assert_eq!(got["up"], true);
    let vic_ts = got["ts"].as_u64().expect("ts");
    // A repeat changes nothing and is not passed on.
    vic.send(json!({"event":"hand","up":true})).await;
    ada.send(json!({"event":"hand","up":true})).await;
    let got = vic.recv().await;
    assert_eq!(
        (got["from"].as_str(), got["up"].as_bool()),
        (Some(id(&wa).as_str()), Some(true))
    );
    let ada_ts = got["ts"].as_u64().expect("ts");
    assert!(ada_ts >= vic_ts, "raised later, stamped later");
    eve.assert_quiet().await;

    // A late joiner gets both hands with the times they went up.
    let (_late, wl) = Client::join(&server, "hands", "Lou", "watcher").await;
    let hand = |name: &str| {
        wl["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["hand"].clone())
    };
    assert_eq!(hand("Vic"), Some(json!(vic_ts)));
    assert_eq!(hand("Ada"), Some(json!(ada_ts)));

    // Down: passed on, and gone from the next welcome.
    vic.send(json!({"event":"hand","up":false})).await;
    let got = ada.recv_until(|m| m["event"] == "hand").await;
    assert_eq!(got["up"], false);
    let (_later, wl2) = Client::join(&server, "hands", "Max", "watcher").await;
    let vic_info = wl2["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["name"] == "Vic")
        .cloned()
        .expect("Vic listed");
    assert!(vic_info.get("hand").is_none(), "{vic_info}");

    vic.send(json!({"event":"hand","up":"yes"})).await;
    let err = vic.recv_until(|m| m["event"] == "error").await;
    assert_eq!(err["code"], "badMessage", "{err}");
}

#[tokio::test]
async fn view_sizes_go_to_one_broadcaster_and_are_bounded() {
    let server = Server::start().await;
    let (mut ada, wa) = Client::join(&server, "sizes", "Ada", "broadcaster").await;
    let (mut vic, wv) = Client::join(&server, "sizes", "Vic", "watcher").await;
    let (mut bob, _) = Client::join(&server, "sizes", "Bob", "broadcaster").await;
    ada.recv_until(|m| m["event"] == "peerJoined" && m["peer"]["name"] == "Bob")
        .await;
    vic.recv_until(|m| m["event"] == "peerJoined").await;

    vic.send(json!({"event":"viewSize","to":id(&wa),"conn":3,"width":640,"height":360}))
        .await;
    assert_eq!(
        ada.recv().await,
        json!({"event":"viewSize","from":id(&wv),"conn":3,"width":640,"height":360})
    );
    bob.assert_quiet().await;

    for bad in [
        json!({"event":"viewSize","to":id(&wa),"width":8193,"height":10}),
        json!({"event":"viewSize","to":id(&wa),"width":10,"height":-1}),
        json!({"event":"viewSize","to":id(&wa),"width":1.5,"height":1}),
        json!({"event":"viewSize","to":id(&wa),"width":1}),
    ] {
        vic.send(bad).await;
        vic.expect_error("badMessage").await;
    }
    ada.assert_quiet().await;
    vic.send(json!({"event":"viewSize","to":"nobody","width":0,"height":0}))
        .await;
    vic.expect_error("unknownPeer").await;
    // The largest size passes; the socket stayed open through the errors.
    vic.send(json!({"event":"viewSize","to":id(&wa),"width":8192,"height":8192}))
        .await;
    assert_eq!(ada.recv().await["width"], 8192);
}
