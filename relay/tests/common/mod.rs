//! A real relay on 127.0.0.1:0 and WebSocket test peers.

#![allow(dead_code)] // each test file uses part of this

pub mod tls;

use futures_util::{SinkExt, StreamExt};
use relay::config::Config;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// An unauthenticated Allocate (no attributes) with transaction id `i`.
pub fn bare_allocate(i: u32) -> [u8; 20] {
    let mut allocate = [0u8; 20];
    allocate[1] = 0x03;
    allocate[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
    allocate[8..12].copy_from_slice(&i.to_be_bytes());
    allocate
}

/// The peer id a `welcome` gave.
pub fn id(welcome: &Value) -> String {
    welcome["id"].as_str().expect("id").to_owned()
}

/// Long enough for anything that should happen; tests await events, never sleep.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct Server {
    pub addr: SocketAddr,
    /// Set for a relay serving HTTPS: `get` and `metric` trust this certificate.
    pub trusted: Option<rustls::pki_types::CertificateDer<'static>>,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::defaults();
        config.ice.stun = vec!["stun:stun.test:3478".into()];
        config.dist = std::env::temp_dir().join("meshcast-no-dist");
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            trusted: None,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Asks for a graceful shutdown.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        match &self.trusted {
            None => http_get(self.addr, path).await,
            Some(cert) => {
                let (tls, _) = tls::tls_connect_to(self.addr, &[cert]).await;
                get_on(tls, self.addr, path).await
            }
        }
    }

    /// A counter or gauge from /metrics.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in\n{body}"))
    }
}

/// A minimal HTTP/1.1 GET (the relay is the only server these tests talk to).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    get_on(TcpStream::connect(addr).await.expect("connect"), addr, path).await
}

async fn get_on(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    addr: SocketAddr,
    path: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(server: &Server) -> Self {
        let (ws, _) = connect_async(server.url()).await.expect("connect");
        Self { ws }
    }

    /// Connects and joins; returns the client and its `welcome`.
    pub async fn join(server: &Server, room: &str, name: &str, role: &str) -> (Self, Value) {
        Self::join_with(
            server,
            json!({"event":"join","room":room,"name":name,"role":role}),
        )
        .await
    }

    /// Connects with a tiny TCP receive buffer, so that whatever the relay
    /// sends while this client does not read piles up on the relay's side
    /// (in its kernel send queue), where a reset would discard it.
    pub async fn connect_small_window(server: &Server) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let tcp = socket.connect(server.addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(server.url(), MaybeTlsStream::Plain(tcp))
            .await
            .expect("handshake");
        Self { ws }
    }

    /// Connects with extra request headers (e.g. `X-Forwarded-For`).
    pub async fn connect_with_headers(server: &Server, headers: &[(&str, &str)]) -> Self {
        let mut req = server.url().into_client_request().expect("request");
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName =
                name.parse().expect("header name");
            req.headers_mut()
                .append(name, value.parse().expect("header value"));
        }
        let (ws, _) = connect_async(req).await.expect("connect");
        Self { ws }
    }

    /// Joins on an open connection; returns its `welcome`.
    pub async fn join_here(&mut self, room: &str, name: &str) -> Value {
        self.send(json!({"event":"join","room":room,"name":name,"role":"watcher"}))
            .await;
        let welcome = self.recv().await;
        assert_eq!(welcome["event"], "welcome", "{welcome}");
        welcome
    }

    /// Leaves cleanly: a close frame with `code` (1000 or 1001 is a leave),
    /// then reads until the relay's reply or the end.
    pub async fn close_with(mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "bye".into(),
        };
        self.ws.close(Some(frame)).await.expect("close");
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Leaves the call the way the app does (close 1000).
    pub async fn leave(self) {
        self.close_with(1000).await;
    }

    pub async fn join_with(server: &Server, join: Value) -> (Self, Value) {
        let mut c = Self::connect(server).await;
        c.send(join).await;
        let welcome = c.recv().await;
        assert_eq!(welcome["event"], "welcome", "{welcome}");
        (c, welcome)
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, s: String) {
        self.ws.send(Message::text(s)).await.expect("send");
    }

    /// The next text message as JSON (fails after [`WAIT`]).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("socket ended")
                .expect("socket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json"),
                Message::Close(c) => panic!("closed while waiting for a message: {c:?}"),
                _ => continue,
            }
        }
    }

    /// Skips messages until one matches.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.recv().await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// Expects an error reply with this code.
    pub async fn expect_error(&mut self, code: &str) {
        let v = self.recv().await;
        assert_eq!(v["event"], "error", "{v}");
        assert_eq!(v["code"], code, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }

    /// Reads until the close frame and returns its code; text messages before
    /// it are returned too.
    pub async fn closed(&mut self) -> (Option<u16>, Vec<Value>) {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for close")
            {
                Some(Ok(Message::Close(frame))) => return (frame.map(|f| u16::from(f.code)), seen),
                Some(Ok(Message::Text(t))) => {
                    seen.push(serde_json::from_str(t.as_str()).expect("json"))
                }
                Some(Ok(_)) => {}
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return (None, seen);
                }
                Some(Err(WsError::Protocol(_) | WsError::Io(_))) => return (None, seen),
                Some(Err(e)) => panic!("unexpected error: {e}"),
            }
        }
    }

    /// Asserts nothing arrives for a moment (only for "must not happen" checks,
    /// after a round trip that proves earlier messages were delivered).
    pub async fn assert_quiet(&mut self) {
        match tokio::time::timeout(Duration::from_millis(200), self.ws.next()).await {
            Err(_) => {}
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(other) => panic!("expected nothing, got {other:?}"),
        }
    }
}

pub fn close_code(c: CloseCode) -> u16 {
    u16::from(c)
}

/// A WebSocket handshake with an Origin header: Ok, or the HTTP status.
pub async fn connect_with_origin(server: &Server, origin: &str) -> Result<(), u16> {
    let mut req = server.url().into_client_request().expect("request");
    req.headers_mut()
        .insert("origin", origin.parse().expect("header"));
    match connect_async(req).await {
        Ok(_) => Ok(()),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected error: {e}"),
    }
}
