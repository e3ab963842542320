//! HTTPS clients for the tests: certificates in temp dirs, TLS
//! connections that trust only them, and a `join` over WSS.

use super::{Server, WAIT};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// A fresh directory under the system's temp dir.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "meshcast-tls-{label}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A certificate for 127.0.0.1 written as PEM files; returns its DER.
pub fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).expect("write key");
    made.cert.der().clone()
}

/// A relay serving HTTPS with the certificate files in `dir`.
pub async fn tls_server(dir: &Path, tweak: impl FnOnce(&mut relay::config::Config)) -> Server {
    Server::with(|c| {
        (c.tls.cert, c.tls.key) = (Some(dir.join("cert.pem")), Some(dir.join("key.pem")));
        tweak(c);
    })
    .await
}

/// A TLS connection to the relay that trusts only `trusted`; the certificate
/// the server showed.
pub async fn tls_connect(
    server: &Server,
    trusted: &[&CertificateDer<'static>],
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    tls_connect_to(server.addr, trusted).await
}

/// A TLS connection to `addr` (for 127.0.0.1) that trusts only `trusted`;
/// the certificate the server showed.
pub async fn tls_connect_to(
    addr: SocketAddr,
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
    let tcp = TcpStream::connect(addr).await.expect("tcp");
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

pub async fn wss_join(
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

pub async fn next_json(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Value {
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
