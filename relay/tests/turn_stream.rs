//! The embedded TURN server over TCP and TLS, from the outside: a relay
//! serving HTTPS with --turn-listen and --turn-tls-listen on 127.0.0.1,
//! credentials and URLs taken from a `welcome` over WSS, and webrtc-rs's
//! TURN client on a TCP or TLS connection (framed as RFC 6062 §4.1 says).
//! The gate's rules hold as on UDP (authentication, quotas shared across
//! transports, refused peers, reply rates); a closed connection frees its
//! allocation; anything but TURN closes the connection; connections are
//! bounded; with --turn-on-https, TURN and HTTPS share the HTTPS port.

mod common;

use common::tls::{temp_dir, tls_connect_to, tls_server, write_cert, wss_join};
use common::{Server, WAIT, bare_allocate};
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use turn::client::{Client as TurnClient, ClientConfig};
use util::Conn as _;

trait Io: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Io for T {}
type Stream = Box<dyn Io + Unpin>;

/// A TURN client's socket over one TCP or TLS connection.
struct StreamSocket {
    reader: tokio::sync::Mutex<ReadHalf<Stream>>,
    writer: tokio::sync::Mutex<WriteHalf<Stream>>,
    server: SocketAddr,
}

/// Reads one STUN message or ChannelData (and its padding) from `r`.
async fn read_message(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head).await?;
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let (body, padding) = if head[0] < 0x40 {
        (16 + len, 0)
    } else {
        (len, (4 - len % 4) % 4)
    };
    let mut message = head.to_vec();
    message.resize(4 + body + padding, 0);
    r.read_exact(&mut message[4..]).await?;
    message.truncate(4 + body);
    Ok(message)
}

#[async_trait::async_trait]
impl util::Conn for StreamSocket {
    async fn connect(&self, _: SocketAddr) -> util::Result<()> {
        Ok(())
    }
    async fn recv(&self, buf: &mut [u8]) -> util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> util::Result<(usize, SocketAddr)> {
        let message = read_message(&mut *self.reader.lock().await).await?;
        let n = message.len().min(buf.len());
        buf[..n].copy_from_slice(&message[..n]);
        Ok((n, self.server))
    }
    async fn send(&self, buf: &[u8]) -> util::Result<usize> {
        self.send_to(buf, self.server).await
    }
    async fn send_to(&self, buf: &[u8], _: SocketAddr) -> util::Result<usize> {
        self.writer.lock().await.write_all(buf).await?;
        Ok(buf.len())
    }
    fn local_addr(&self) -> util::Result<SocketAddr> {
        Ok("127.0.0.1:0".parse().expect("addr"))
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.server)
    }
    async fn close(&self) -> util::Result<()> {
        self.writer.lock().await.shutdown().await?;
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// A TURN client and the connection under it.
struct StreamClient {
    turn: TurnClient,
    socket: Arc<StreamSocket>,
}

impl StreamClient {
    async fn allocate(&self) -> Result<impl util::Conn + use<>, turn::Error> {
        self.turn.allocate().await
    }

    /// Closes the connection (what a browser does when it is done), not
    /// the allocation.
    async fn hang_up(self) {
        self.turn.close().await.expect("close");
        self.socket.close().await.expect("close");
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Tls,
}

/// A relay with every TURN transport, and what its `welcome` said.
struct Setup {
    server: Server,
    cert: CertificateDer<'static>,
    urls: Vec<String>,
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: SocketAddr,
    user: String,
    pass: String,
}

async fn setup(tweak: impl FnOnce(&mut relay::config::Config)) -> Setup {
    let dir = temp_dir("turn-stream");
    let cert = write_cert(&dir);
    let mut server = tls_server(&dir, |c| {
        c.turn.listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.turn.tls_listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.turn.ports = (42000, 42999);
        tweak(c);
    })
    .await;
    server.trusted = Some(cert.clone());
    let (_ws, welcome) = wss_join(&server, &cert, "turn-stream", "Ada").await;
    let turn = welcome["iceServers"]
        .as_array()
        .expect("iceServers")
        .iter()
        .find(|s| s["username"].is_string())
        .unwrap_or_else(|| panic!("no TURN server in {welcome}"))
        .clone();
    let urls: Vec<String> = turn["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .map(|u| u.as_str().expect("url").to_owned())
        .collect();
    let addr = |scheme: &str, transport: &str| -> SocketAddr {
        urls.iter()
            .find_map(|u| {
                u.strip_prefix(scheme)?
                    .strip_suffix(transport)?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {scheme}...{transport} in {urls:?}"))
    };
    let (udp, tcp, tls) = (
        addr("turn:", "?transport=udp"),
        addr("turn:", "?transport=tcp"),
        addr("turns:", "?transport=tcp"),
    );
    let text = |k: &str| turn[k].as_str().expect("text").to_owned();
    Setup {
        user: text("username"),
        pass: text("credential"),
        server,
        cert,
        urls,
        udp,
        tcp,
        tls,
    }
}

impl Setup {
    /// A TURN client on a new connection of transport `t`.
    async fn client(&self, t: Transport, pass: &str) -> StreamClient {
        let server = match t {
            Transport::Tcp => self.tcp,
            Transport::Tls => self.tls,
        };
        self.client_at(t, server, pass).await
    }

    /// The same, to `server`.
    async fn client_at(&self, t: Transport, server: SocketAddr, pass: &str) -> StreamClient {
        let stream: Stream = match t {
            Transport::Tcp => Box::new(TcpStream::connect(server).await.expect("tcp")),
            Transport::Tls => Box::new(tls_connect_to(server, &[&self.cert]).await.0),
        };
        let (reader, writer) = tokio::io::split(stream);
        let socket = Arc::new(StreamSocket {
            reader: tokio::sync::Mutex::new(reader),
            writer: tokio::sync::Mutex::new(writer),
            server,
        });
        StreamClient {
            turn: turn_client(server, socket.clone(), &self.user, pass).await,
            socket,
        }
    }

    async fn udp_client(&self) -> TurnClient {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        turn_client(self.udp, Arc::new(socket), &self.user, &self.pass).await
    }
}

async fn turn_client(
    server: SocketAddr,
    conn: Arc<dyn util::Conn + Send + Sync>,
    user: &str,
    pass: &str,
) -> TurnClient {
    let client = TurnClient::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: user.to_owned(),
        password: pass.to_owned(),
        realm: String::new(),
        software: String::new(),
        // A stream loses nothing: no retransmissions.
        rto_in_ms: 3000,
        conn,
        vnet: None,
    })
    .await
    .expect("client");
    client.listen().await.expect("listen");
    client
}

/// "ping" through the relayed address to a peer on loopback, "pong" back.
async fn ping_pong(relayed: &impl util::Conn) {
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    relayed
        .send_to(b"ping", peer.local_addr().expect("addr"))
        .await
        .expect("send");
    let mut buf = [0u8; 64];
    let (n, from) = timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .expect("the peer hears the client")
        .expect("recv");
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(from, relayed.local_addr().expect("relayed"));
    peer.send_to(b"pong", from).await.expect("reply");
    let (n, _) = timeout(WAIT, relayed.recv_from(&mut buf))
        .await
        .expect("the client hears the peer")
        .expect("recv");
    assert_eq!(&buf[..n], b"pong");
}

/// Polls the metric until it equals `want`.
async fn metric_becomes(server: &Server, name: &str, want: f64) {
    let mut last = f64::NAN;
    let reached = timeout(WAIT, async {
        loop {
            last = server.metric(name).await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{name} stayed {last}, not {want}");
}

#[tokio::test]
async fn every_transport_is_advertised_and_relays_both_ways() {
    let s = setup(|c| c.turn.allow_loopback = true).await;
    assert_eq!(
        s.urls,
        [
            format!("turn:{}?transport=udp", s.udp),
            format!("turn:{}?transport=tcp", s.tcp),
            format!("turns:{}?transport=tcp", s.tls),
        ]
    );
    assert_eq!(s.udp.port(), s.tcp.port(), "UDP and TCP share the port");
    for t in [Transport::Tcp, Transport::Tls] {
        let client = s.client(t, &s.pass).await;
        let relayed = timeout(WAIT, client.allocate())
            .await
            .expect("in time")
            .unwrap_or_else(|e| panic!("allocation over {t:?}: {e}"));
        assert!((42000..=42999).contains(&relayed.local_addr().expect("addr").port()));
        ping_pong(&relayed).await;
        assert_eq!(s.server.metric("meshcast_turn_allocations").await, 1.0);
        // Closing the connection (not the allocation) frees the allocation.
        client.hang_up().await;
        metric_becomes(&s.server, "meshcast_turn_allocations", 0.0).await;
    }
    metric_becomes(&s.server, "meshcast_turn_streams", 0.0).await;
}

#[tokio::test]
async fn the_gate_rules_hold_over_tcp_and_tls() {
    let s = setup(|c| c.turn.user_quota = 2).await;
    // Wrong credentials get no allocation, on either stream.
    for t in [Transport::Tcp, Transport::Tls] {
        let wrong = s.client(t, "bm90IHRoZSBwYXNzd29yZA==").await;
        let result = timeout(WAIT, wrong.allocate()).await.expect("answered");
        assert!(
            result.is_err(),
            "a wrong password over {t:?} must not allocate"
        );
        wrong.hang_up().await;
    }
    assert!(s.server.metric("meshcast_turn_auth_failures_total").await >= 2.0);

    // Refused peers: loopback is not allowed here.
    let tcp = s.client(Transport::Tcp, &s.pass).await;
    let relayed = timeout(WAIT, tcp.allocate())
        .await
        .expect("in time")
        .expect("allocation");
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    let sent = timeout(
        WAIT,
        relayed.send_to(b"in?", peer.local_addr().expect("addr")),
    )
    .await
    .expect("answered");
    assert!(sent.is_err(), "a permission for a loopback peer is refused");
    assert!(s.server.metric("meshcast_turn_peers_refused_total").await >= 1.0);

    // One quota across transports: UDP and TCP take the two slots, TLS gets 486.
    let udp = s.udp_client().await;
    let _udp_relayed = timeout(WAIT, udp.allocate())
        .await
        .expect("in time")
        .expect("the second allocation");
    let tls = s.client(Transport::Tls, &s.pass).await;
    let third = timeout(WAIT, tls.allocate()).await.expect("answered");
    let error = third.err().expect("over the quota").to_string();
    assert!(error.contains("486"), "quota reached, got: {error}");
    // Closing the TCP connection gives its slot to TLS.
    tcp.hang_up().await;
    metric_becomes(&s.server, "meshcast_turn_allocations", 1.0).await;
    timeout(WAIT, tls.allocate())
        .await
        .expect("in time")
        .expect("the freed slot");
}

#[tokio::test]
async fn a_flood_on_one_connection_is_answered_at_a_bounded_rate() {
    let s = setup(|c| {
        c.turn.allow_loopback = true;
        c.turn.challenge_rate = 100.0;
    })
    .await;
    let mut flood = TcpStream::connect(s.tcp).await.expect("tcp");
    let requests: Vec<u8> = (0..5000).flat_map(bare_allocate).collect();
    flood.write_all(&requests).await.expect("send");
    // Read the answers until a second passes without one.
    let mut answers = 0;
    while let Ok(Ok(_)) = timeout(Duration::from_secs(1), read_message(&mut flood)).await {
        answers += 1;
    }
    let seen = s.server.metric("meshcast_turn_challenges_total").await;
    assert_eq!(seen, 5000.0, "every request reached the gate");
    assert!(
        (1..=200).contains(&answers),
        "answers are rate-limited ({answers} of 5000)"
    );
    // A real client still gets through on a connection of its own.
    let client = s.client(Transport::Tcp, &s.pass).await;
    let relayed = timeout(WAIT, client.allocate())
        .await
        .expect("in time")
        .expect("allocation after the flood");
    ping_pong(&relayed).await;
}

#[tokio::test]
async fn anything_but_turn_closes_the_connection_and_connections_are_bounded() {
    // 8 allocations at most: 16 connections per listener.
    let s = setup(|c| c.turn.max_allocations = 8).await;
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x04, 1, 2, 3, 4][..],
        &[0xff; 8][..],
    ] {
        let mut tcp = TcpStream::connect(s.tcp).await.expect("tcp");
        tcp.write_all(garbage).await.expect("send");
        let mut rest = Vec::new();
        let read = timeout(WAIT, tcp.read_to_end(&mut rest)).await;
        // Closed (FIN or reset), nothing sent back.
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))) && rest.is_empty(),
            "closed without an answer: {read:?} {rest:?}"
        );
    }
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(TcpStream::connect(s.tcp).await.expect("tcp"));
    }
    metric_becomes(&s.server, "meshcast_turn_streams", 16.0).await;
    let mut over = TcpStream::connect(s.tcp).await.expect("tcp");
    let mut buf = [0u8; 1];
    let read = timeout(WAIT, over.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the 17th is closed: {read:?}"
    );
    assert_eq!(
        s.server.metric("meshcast_turn_streams_refused_total").await,
        1.0
    );
    // The TLS listener has its own 16, and a closed connection frees a place.
    open.pop();
    metric_becomes(&s.server, "meshcast_turn_streams", 15.0).await;
    let client = s.client(Transport::Tcp, &s.pass).await;
    timeout(WAIT, client.allocate())
        .await
        .expect("in time")
        .expect("allocation in the freed place");
}

#[tokio::test]
async fn with_turn_on_https_turn_and_the_app_share_the_https_port() {
    let s = setup(|c| {
        c.turn.allow_loopback = true;
        c.turn.on_https = true;
    })
    .await;
    let https = s.server.addr;
    assert_eq!(
        s.urls.last(),
        Some(&format!("turns:{https}?transport=tcp")),
        "the HTTPS port is advertised for TURN over TLS"
    );
    let client = s.client_at(Transport::Tls, https, &s.pass).await;
    let relayed = timeout(WAIT, client.allocate())
        .await
        .expect("in time")
        .expect("allocation through the HTTPS port");
    ping_pong(&relayed).await;
    // Meanwhile the same port serves HTTPS (and served the WSS join).
    assert_eq!(s.server.get("/healthz").await, (200, "ok\n".to_owned()));
    client.hang_up().await;
    metric_becomes(&s.server, "meshcast_turn_allocations", 0.0).await;
}

#[tokio::test]
async fn simultaneous_allocates_over_udp_tcp_and_tls_each_take_their_own_slot() {
    let s = setup(|c| c.turn.allow_loopback = true).await;
    let mut streams = Vec::new();
    for t in [Transport::Tcp, Transport::Tls].repeat(3) {
        streams.push(s.client(t, &s.pass).await);
    }
    let udp = [s.udp_client().await, s.udp_client().await];
    // All at once: the server's UDP, TCP and TLS loops handle them together.
    let (over_streams, over_udp) = tokio::join!(
        futures_util::future::join_all(streams.iter().map(|c| timeout(WAIT, c.allocate()))),
        futures_util::future::join_all(udp.iter().map(|c| timeout(WAIT, c.allocate()))),
    );
    let mut relayed = Vec::new();
    for r in over_streams {
        relayed.push(
            r.expect("in time")
                .expect("an allocation for every stream client"),
        );
    }
    for r in over_udp {
        r.expect("in time")
            .expect("an allocation for every UDP client");
    }
    assert_eq!(s.server.metric("meshcast_turn_allocations").await, 8.0);
    for conn in &relayed {
        ping_pong(conn).await;
    }
    // Each closed connection frees its own slot, and only that one.
    for (i, c) in streams.into_iter().enumerate() {
        c.hang_up().await;
        metric_becomes(&s.server, "meshcast_turn_allocations", (7 - i) as f64).await;
    }
}
