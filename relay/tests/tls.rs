//! HTTPS and WSS: a TLS handshake and a `join` over WSS, plain HTTP to the
//! TLS port never answered in clear, a renewed certificate picked up
//! without dropping open sockets, a self-signed certificate kept across
//! restarts, and the plain-HTTP redirect.

mod common;

use common::WAIT;
use common::tls::{next_json, temp_dir, tls_connect, tls_server, write_cert, wss_join};
use relay::tls::{Certs, Source};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn files(dir: &Path) -> Source {
    Source::Files {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

#[tokio::test]
async fn wss_join_and_https_pages_and_no_cleartext() {
    let dir = temp_dir("join");
    let cert = write_cert(&dir);
    let server = tls_server(&dir, |_| {}).await;
    let (mut ada, _) = wss_join(&server, &cert, "tls-room", "Ada").await;
    let (_bob, _) = wss_join(&server, &cert, "tls-room", "Bob").await;
    let joined = next_json(&mut ada).await;
    assert_eq!(joined["event"], "peerJoined", "routing works over WSS");

    // HTTPS: /healthz answers over TLS.
    let (mut tls, _) = tls_connect(&server, &[&cert]).await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Plain HTTP to the TLS port gets nothing readable back.
    let mut plain = TcpStream::connect(server.addr).await.expect("tcp");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut got)).await;
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
        "answered in clear: {got:?}"
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_picked_up_and_open_sockets_stay() {
    let dir = temp_dir("reload");
    let first = write_cert(&dir);
    let server = tls_server(&dir, |c| c.tls.check_every = Duration::from_millis(100)).await;
    let (mut ada, _) = wss_join(&server, &first, "renew", "Ada").await;
    // The renewal: new files (a later modification time).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = write_cert(&dir);
    assert_ne!(first, second);
    let shown = async {
        loop {
            let (_, shown) = tls_connect(&server, &[&first, &second]).await;
            if shown == second {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, shown)
        .await
        .expect("new connections get the renewed certificate");
    // Ada's socket, made with the old certificate, still works.
    let (_bob, _) = wss_join(&server, &second, "renew", "Bob").await;
    assert_eq!(next_json(&mut ada).await["event"], "peerJoined");
}

#[test]
fn a_self_signed_certificate_is_kept_for_the_next_start() {
    let dir = temp_dir("self");
    let source = Source::SelfSigned {
        dir: dir.clone(),
        names: vec!["localhost".into(), "192.0.2.7".into()],
    };
    let a = Certs::open(&source).expect("made");
    let b = Certs::open(&source).expect("loaded again");
    assert_eq!(a.fingerprint(), b.fingerprint(), "the same certificate");
    let hex = a.fingerprint();
    assert_eq!(hex.len(), 32 * 3 - 1, "{hex}");
    assert!(hex.split(':').all(|b| {
        b.len() == 2
            && b.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    }));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("tls-key.pem"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is private");
    }
}

#[test]
fn a_key_that_is_not_the_certificate_s_is_refused() {
    let (a, b) = (temp_dir("pair-a"), temp_dir("pair-b"));
    write_cert(&a);
    write_cert(&b);
    let mixed = Source::Files {
        cert: a.join("cert.pem"),
        key: b.join("key.pem"),
    };
    let err = Certs::open(&mixed).expect_err("a mismatched pair");
    assert!(format!("{err:#}").contains("does not belong"), "{err:#}");
}

#[test]
fn a_broken_renewal_keeps_the_current_certificate() {
    let dir = temp_dir("broken");
    write_cert(&dir);
    let certs = Certs::open(&files(&dir)).expect("open");
    let before = certs.fingerprint();
    std::fs::write(dir.join("cert.pem"), "not a certificate").expect("write");
    assert!(certs.reload().is_err());
    assert_eq!(certs.fingerprint(), before);
}

#[tokio::test]
async fn plain_http_is_redirected_to_https() {
    let dir = temp_dir("redirect");
    write_cert(&dir);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let server = tls_server(&dir, |c| {
        c.tls.redirect_http = Some(format!("127.0.0.1:{port}").parse().expect("addr"));
    })
    .await;
    let mut plain = None;
    for _ in 0..50 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            plain = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut plain = plain.expect("the redirect listener");
    plain
        .write_all(
            b"GET /watch?room=r HTTP/1.1\r\nHost: example.test:80\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("write");
    let mut answer = String::new();
    plain.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    let want = format!(
        "location: https://example.test:{}/watch?room=r",
        server.addr.port()
    );
    assert!(answer.to_ascii_lowercase().contains(&want), "{answer}");
}
