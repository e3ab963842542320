//! Verified rooms through the real relay: `sig` on offers and answers is
//! passed on untouched (and bounded), sealed names and chat are accepted
//! and kept as the opaque strings they are, and their limits hold.

mod common;

use common::{Client, Server, id};
use protocol::verify::{SEALED_PREFIX, sealed_len};
use protocol::{MAX_CHAT_CHARS, MAX_NAME_LEN, base64url};
use serde_json::json;

/// A sealed string of `bytes` bytes of ciphertext (the relay cannot tell it
/// from a real one, and must not try).
fn sealed(bytes: usize) -> String {
    format!("{SEALED_PREFIX}{}", base64url::encode(&vec![0x5a; bytes]))
}

const SIG: &str = "mgEBbiKh6onVrqFyEI50qikWUAJqYUBFKb_6puS3HYs";

#[tokio::test]
async fn sig_is_forwarded_untouched_and_bounded() {
    let server = Server::start().await;
    let (mut ada, wa) = Client::join(&server, "signed", "Ada", "broadcaster").await;
    let (mut vic, wv) = Client::join(&server, "signed", "Vic", "watcher").await;
    ada.recv_until(|m| m["event"] == "peerJoined").await;

    ada.send(json!({"event":"offer","to":id(&wv),"conn":5,"sdp":"v=0\r\n","sig":SIG}))
        .await;
    let got = vic.recv().await;
    assert_eq!(
        got,
        json!({"event":"offer","from":id(&wa),"conn":5,"sdp":"v=0\r\n","sig":SIG})
    );
    vic.send(json!({"event":"answer","to":id(&wa),"conn":5,"sdp":"v=0\r\n","sig":"x"}))
        .await;
    let got = ada.recv().await;
    assert_eq!(got["sig"], "x");
    // No sig: none is added.
    ada.send(json!({"event":"offer","to":id(&wv),"conn":6,"sdp":"v=0"}))
        .await;
    assert!(vic.recv().await.get("sig").is_none());

    let long = "A".repeat(protocol::MAX_SIG_LEN + 1);
    for bad in [
        json!(long),
        json!(""),
        json!("a+b"),
        json!(7),
        json!("sig with spaces"),
    ] {
        ada.send(json!({"event":"offer","to":id(&wv),"conn":7,"sdp":"v=0","sig":bad}))
            .await;
        ada.expect_error("badMessage").await;
    }
    let longest = "A".repeat(protocol::MAX_SIG_LEN);
    vic.send(json!({"event":"answer","to":id(&wa),"conn":7,"sdp":"v=0","sig":longest}))
        .await;
    assert_eq!(ada.recv().await["sig"], longest);
    vic.assert_quiet().await;
}

#[tokio::test]
async fn sealed_names_and_chat_pass_as_opaque_strings() {
    let server = Server::start().await;
    // The longest name: 64 chars of 4 bytes, sealed.
    let name = sealed(12 + 4 * MAX_NAME_LEN + 16);
    assert_eq!(name.len(), sealed_len(MAX_NAME_LEN));
    let (mut ada, wa) = Client::join(&server, "sealed", &name, "broadcaster").await;
    assert_eq!(wa["event"], "welcome");
    let (mut vic, wv) = Client::join(&server, "sealed", &sealed(40), "watcher").await;
    assert_eq!(wv["peers"][0]["name"], name, "stored as sent");
    let joined = ada.recv_until(|m| m["event"] == "peerJoined").await;
    assert_eq!(joined["peer"]["name"], sealed(40));

    let text = sealed(12 + 4 * MAX_CHAT_CHARS + 16);
    ada.send(json!({"event":"chat","text":text})).await;
    let got = vic.recv_until(|m| m["event"] == "chat").await;
    assert_eq!(got["text"], text);
    let (_late, wl) = Client::join(&server, "sealed", "Lou", "watcher").await;
    assert_eq!(wl["chat"][0]["text"], text);
    assert_eq!(wl["chat"][0]["name"], name);
    ada.recv_until(|m| m["event"] == "peerJoined").await;

    // One byte past the longest chat; malformed and too long for plain text.
    for bad in [
        sealed(12 + 4 * MAX_CHAT_CHARS + 16 + 3),
        format!("{SEALED_PREFIX}{}", "!".repeat(MAX_CHAT_CHARS)),
    ] {
        ada.send(json!({"event":"chat","text":bad})).await;
        ada.expect_error("badMessage").await;
    }
    // Sealed-looking text is still ordinary chat when short enough.
    ada.send(json!({"event":"chat","text":"e1.hello"})).await;
    assert_eq!(
        vic.recv_until(|m| m["event"] == "chat").await["text"],
        "e1.hello"
    );
}

#[tokio::test]
async fn names_past_the_limits_are_refused() {
    let server = Server::start().await;
    for bad in [
        "x".repeat(MAX_NAME_LEN + 1),
        sealed(12 + 4 * MAX_NAME_LEN + 16 + 3),
        format!("{SEALED_PREFIX}{}", "!".repeat(100)),
    ] {
        let mut c = Client::connect(&server).await;
        c.send(json!({"event":"join","room":"limits","name":bad,"role":"watcher"}))
            .await;
        c.expect_error("badMessage").await;
    }
}
