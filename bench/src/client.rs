//! One test peer: a WebSocket over TCP to 127.0.0.1 that has joined (a
//! room on meshcast, the server on PeerJS) and knows its id.

use crate::proto::Kind;
use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = WebSocketStream<TcpStream>;

/// Where the peers connect and how their sockets are set up.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// The server process, for its CPU and memory; `None` skips them.
    pub pid: Option<u32>,
}

/// Socket options for one peer.
#[derive(Clone, Copy, Debug)]
pub struct Dial {
    /// tungstenite's read buffer, allocated up front and zeroed up to its
    /// size before every read: small for the 10k idle peers, a few messages'
    /// worth for busy ones (64 KiB cost more in memset than it saved).
    pub read_buffer: usize,
    /// SO_RCVBUF, to make a peer that stops reading back up quickly.
    pub recv_buffer: Option<u32>,
}

impl Dial {
    pub const BUSY: Dial = Dial {
        read_buffer: 8 * 1024,
        recv_buffer: None,
    };
    pub const IDLE: Dial = Dial {
        read_buffer: 4 * 1024,
        recv_buffer: None,
    };
}

pub struct Peer {
    pub ws: Ws,
    pub id: String,
}

/// How long a join may take before the run is called failed.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects, upgrades, joins `room` and waits for the welcome (meshcast) or
/// OPEN (PeerJS). `hint` names the peer (its PeerJS id, its meshcast name).
pub async fn join(target: &Target, room: &str, hint: &str, dial: Dial) -> anyhow::Result<Peer> {
    tokio::time::timeout(JOIN_TIMEOUT, join_inner(target, room, hint, dial))
        .await
        .with_context(|| format!("{hint} did not get in within {JOIN_TIMEOUT:?}"))?
        .with_context(|| format!("{hint} joining {} at {}", room, target.addr))
}

async fn join_inner(target: &Target, room: &str, hint: &str, dial: Dial) -> anyhow::Result<Peer> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = dial.recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    let tcp = socket.connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(dial.read_buffer)
        .write_buffer_size(64 * 1024);
    let url = target.kind.url(target.addr, hint);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await?;
    if let Some(hello) = target.kind.hello(room, hint) {
        ws.send(Message::text(hello)).await?;
    }
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match target.kind.welcome(text.as_str(), hint) {
                Ok(Some(id)) => return Ok(Peer { ws, id }),
                Ok(None) => {}
                Err(refused) => bail!("refused: {refused}"),
            },
            Some(Ok(Message::Close(frame))) => bail!("closed before joining: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended before joining"),
        }
    }
}

/// Nanoseconds since a common start, for timestamps that sender and
/// receiver (both in this process) compare.
#[derive(Clone, Copy, Debug)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    pub fn now_ns(&self) -> u64 {
        self.ns(Instant::now())
    }

    pub fn ns(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.0).as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn instant(&self, ns: u64) -> Instant {
        self.0 + Duration::from_nanos(ns)
    }
}
