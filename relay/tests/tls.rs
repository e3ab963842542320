//! HTTPS and WSS: a TLS handshake and a `join` over WSS, plain HTTP to the
//! TLS port never answered in clear, a renewed certificate picked up
//! without dropping open sockets, a self-signed certificate kept across
//! restarts, and the plain-HTTP redirect.

mod common;

use common::{Server, WAIT};
use futures_util::{SinkExt, StreamExt};
use relay::tls::{Certs, Source};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// A fresh directory under the system's temp dir.
fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "meshcast-tls-{label}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A certificate for 127.0.0.1 written as PEM files; returns its DER.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).expect("write key");
    made.cert.der().clone()
}

fn files(dir: &Path) -> Source {
    Source::Files {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// A TLS connection to the relay that trusts only `trusted`; the certificate
/// the server showed.
async fn tls_connect(
    server: &Server,
    trusted: &[&CertificateDer<'static>],
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.expect("tcp");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio::time::timeout(
        WAIT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    let shown = tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone();
    (tls, shown)
}

async fn wss_join(
    server: &Server,
    cert: &CertificateDer<'static>,
    room: &str,
    name: &str,
) -> (WebSocketStream<TlsStream<TcpStream>>, Value) {
    let (tls, _) = tls_connect(server, &[cert]).await;
    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("wss upgrade");
    let join = json!({"event":"join","room":room,"name":name,"role":"broadcaster"});
    ws.send(Message::text(join.to_string()))
        .await
        .expect("send");
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["event"], "welcome");
    (ws, welcome)
}

async fn next_json(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("json");
        }
    }
}

#[tokio::test]
async fn wss_join_and_https_pages_and_no_cleartext() {
    let dir = temp_dir("join");
    let cert = write_cert(&dir);
    let server = Server::with(|c| {
        (c.tls.cert, c.tls.key) = (Some(dir.join("cert.pem")), Some(dir.join("key.pem")));
    })
    .await;
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
    let server = Server::with(|c| {
        (c.tls.cert, c.tls.key) = (Some(dir.join("cert.pem")), Some(dir.join("key.pem")));
        c.tls.check_every = Duration::from_millis(100);
    })
    .await;
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
    let server = Server::with(|c| {
        (c.tls.cert, c.tls.key) = (Some(dir.join("cert.pem")), Some(dir.join("key.pem")));
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
