//! TURN over TCP and TLS (RFC 5766 §2.1, RFC 6062 §4.1 framing): what
//! networks that let only TCP out need. Clients still get UDP relay
//! addresses; only the leg between client and server is a stream.
//!
//! The crate's server reads datagrams from one `util::Conn`, so
//! [`StreamConn`] is that conn for every accepted stream at once: each
//! connection's task cuts its bytes into STUN messages and ChannelData,
//! shows each to the same [gate](super::gate) as UDP (authentication,
//! quotas, refused peers, reply rates), and queues what passes for the
//! server, tagged with the connection's address; the server's answers
//! find their connection by that address. When a connection closes, its
//! allocation goes with it: the listener feeds the server a Refresh with
//! LIFETIME 0 on the client's behalf, so its quota slot is free at once.
//!
//! Bounds: at most `max_streams` connections (one more is closed at once),
//! 5 s for the TLS handshake and for the first message, 10 min of silence
//! (longer than any allocation lives unrefreshed), messages of at most
//! [`MAX_FRAME`] bytes (the server reads no more; anything longer or not
//! STUN/ChannelData closes the connection), a bounded queue towards a slow
//! reader (full: the packet is dropped, as UDP would) and 10 s for any
//! write (a client that stops reading loses its connection).

use super::gate::{Gate, Verdict};
use crate::metrics::Metrics;
use async_trait::async_trait;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stun::attributes::ATTR_USERNAME;
use stun::message::{CLASS_REQUEST, MAGIC_COOKIE, METHOD_ALLOCATE, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The largest message the server takes (it reads into 1500 bytes).
pub(crate) const MAX_FRAME: usize = 1500;
/// Time for the TLS handshake and, after it, for the first message.
const FIRST: Duration = Duration::from_secs(5);
/// A connection silent this long is closed: no allocation outlives it.
const IDLE: Duration = Duration::from_secs(600);
/// Packets queued towards one client (at most ~96 KB).
const QUEUE: usize = 64;
/// A write towards a client that takes longer closes its connection.
const WRITE_WAIT: Duration = Duration::from_secs(10);

/// How long a message is, from its first 4 bytes: the bytes to read in all
/// (ChannelData is padded to 4 over streams) and the bytes that are the
/// message. `None` for anything but STUN and ChannelData of at most
/// [`MAX_FRAME`] bytes.
pub(crate) fn frame_len(head: [u8; 4]) -> Option<(usize, usize)> {
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let (total, message) = match head[0] >> 6 {
        // STUN: a 20-byte header; attributes are whole 4-byte words.
        0 if len % 4 == 0 => (20 + len, 20 + len),
        // ChannelData: channel numbers 0x4000-0x7FFF.
        1 => (4 + len.next_multiple_of(4), 4 + len),
        _ => return None,
    };
    (message <= MAX_FRAME).then_some((total, message))
}

type Writers = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// Every TCP or TLS connection of one listener, as the server's one conn.
pub(super) struct StreamConn {
    inbound: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    /// The client whose message the server is handling.
    current: super::Current,
    writers: Writers,
    gate: Arc<Gate>,
    local: SocketAddr,
    stop: CancellationToken,
}

/// What each connection's task shares.
struct Shared {
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
    inbound: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    writers: Writers,
}

impl StreamConn {
    fn new(
        local: SocketAddr,
        gate: Arc<Gate>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> (Self, Arc<Shared>) {
        let (tx, rx) = mpsc::channel(1024);
        let writers = Writers::default();
        let shared = Arc::new(Shared {
            gate: gate.clone(),
            metrics,
            inbound: tx,
            writers: writers.clone(),
        });
        let conn = Self {
            inbound: tokio::sync::Mutex::new(rx),
            current: super::new_current(),
            writers,
            gate,
            local,
            stop,
        };
        (conn, shared)
    }

    /// Accepts on `listener` (TLS when `tls` is given) until `stop`.
    pub(super) fn serve(
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        max_streams: usize,
        gate: Arc<Gate>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> std::io::Result<Self> {
        let (conn, shared) = Self::new(listener.local_addr()?, gate, metrics, stop.clone());
        let slots = Arc::new(Semaphore::new(max_streams));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    a = listener.accept() => a,
                };
                let (tcp, addr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: do not spin.
                        tracing::debug!("TURN accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = shared.slot(&slots) else {
                    continue; // Dropped: closed at once.
                };
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {e}");
                }
                let (shared, tls, stop) = (shared.clone(), tls.clone(), stop.clone());
                tokio::spawn(async move {
                    let connection = async {
                        match tls {
                            None => client(tcp, addr, &shared).await,
                            Some(acceptor) => {
                                match tokio::time::timeout(FIRST, acceptor.accept(tcp)).await {
                                    Ok(Ok(stream)) => client(stream, addr, &shared).await,
                                    Ok(Err(e)) => {
                                        tracing::debug!(%addr, "TURN TLS handshake failed: {e}")
                                    }
                                    Err(_) => {
                                        tracing::debug!(%addr, "TURN TLS handshake timed out")
                                    }
                                }
                            }
                        }
                    };
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = connection => {}
                    }
                    drop(slot);
                });
            }
        });
        Ok(conn)
    }

    /// Serves connections another listener accepted and handed over
    /// (`--turn-on-https`: the HTTPS port's TURN clients), as if accepted
    /// on `local`.
    pub(super) fn adopt<S>(
        mut handed: mpsc::Receiver<(S, SocketAddr)>,
        local: SocketAddr,
        max_streams: usize,
        gate: Arc<Gate>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (conn, shared) = Self::new(local, gate, metrics, stop.clone());
        let slots = Arc::new(Semaphore::new(max_streams));
        tokio::spawn(async move {
            loop {
                let (stream, addr) = tokio::select! {
                    () = stop.cancelled() => return,
                    next = handed.recv() => match next {
                        Some(next) => next,
                        None => return,
                    },
                };
                let Some(slot) = shared.slot(&slots) else {
                    continue;
                };
                let (shared, stop) = (shared.clone(), stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = client(stream, addr, &shared) => {}
                    }
                    drop(slot);
                });
            }
        });
        conn
    }
}

impl StreamConn {
    /// Who the server is handling now (for this conn's relay ports).
    pub(super) fn current(&self) -> super::Current {
        self.current.clone()
    }
}

impl Shared {
    /// A place for one more connection, if there is one.
    fn slot(&self, slots: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        let slot = Arc::clone(slots).try_acquire_owned().ok();
        if slot.is_none() {
            self.metrics.turn_streams_refused.fetch_add(1, Relaxed);
        }
        slot
    }
}

/// One client connection, after any handshake, until it closes.
async fn client<S>(stream: S, addr: SocketAddr, shared: &Shared)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    shared.metrics.turn_streams.fetch_add(1, Relaxed);
    serve_client(stream, addr, shared).await;
    shared.metrics.turn_streams.fetch_sub(1, Relaxed);
}

async fn serve_client<S>(stream: S, addr: SocketAddr, shared: &Shared)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    {
        let mut writers = lock(&shared.writers);
        // One connection per address (a second, e.g. on another local
        // address of a 0.0.0.0 listener, is not served).
        if writers.contains_key(&addr) {
            return;
        }
        writers.insert(addr, tx.clone());
    }
    // A client that stops reading must not hold its connection: a write
    // that does not finish in time ends it.
    let write = async move {
        while let Some(packet) = rx.recv().await {
            match tokio::time::timeout(WRITE_WAIT, writer.write_all(&packet)).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        let _ = tokio::time::timeout(WRITE_WAIT, writer.shutdown()).await;
    };
    let username = std::sync::Mutex::new(None);
    let read = async {
        let mut buf = [0u8; MAX_FRAME];
        let mut wait = FIRST;
        while let Some(n) = read_frame(&mut reader, &mut buf, wait).await {
            wait = IDLE;
            let packet = &buf[..n];
            match shared.gate.inspect(packet, addr, Instant::now()) {
                Verdict::Forward => {
                    if let Some(name) = allocating_user(packet) {
                        *lock(&username) = Some(name);
                    }
                    if shared.inbound.send((packet.to_vec(), addr)).await.is_err() {
                        break;
                    }
                }
                Verdict::Reply(reply) => {
                    let _ = tx.try_send(reply);
                }
                Verdict::Drop => {}
            }
        }
    };
    // Either side ending ends the connection.
    tokio::select! {
        () = read => {}
        () = write => {}
    }
    lock(&shared.writers).remove(&addr);
    let username = lock(&username).take();
    if let Some(release) = username.and_then(|u| shared.gate.release(&u, Instant::now())) {
        let _ = shared.inbound.send((release, addr)).await;
    }
}

/// Reads one whole message into `buf` within `wait`; `None` at the end of
/// the stream, on a timeout, or on anything that is not STUN or ChannelData.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8; MAX_FRAME],
    wait: Duration,
) -> Option<usize> {
    tokio::time::timeout(wait, async {
        reader.read_exact(&mut buf[..4]).await.ok()?;
        let (total, len) = frame_len([buf[0], buf[1], buf[2], buf[3]])?;
        let mut start = 4;
        if buf[0] >> 6 == 0 {
            // STUN carries the magic cookie (a TLS hello sent here does not).
            reader.read_exact(&mut buf[4..8]).await.ok()?;
            if buf[4..8] != MAGIC_COOKIE.to_be_bytes() {
                return None;
            }
            start = 8;
        }
        reader.read_exact(&mut buf[start..total]).await.ok()?;
        Some(len)
    })
    .await
    .ok()
    .flatten()
}

/// The USERNAME of an Allocate request: whose allocation a connection holds.
fn allocating_user(packet: &[u8]) -> Option<String> {
    let mut m = Message::new();
    m.unmarshal_binary(packet).ok()?;
    if m.typ.method != METHOD_ALLOCATE || m.typ.class != CLASS_REQUEST {
        return None;
    }
    String::from_utf8(m.get(ATTR_USERNAME).ok()?).ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding it leaves a plain map behind; carry on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl util::Conn for StreamConn {
    async fn connect(&self, _addr: SocketAddr) -> util::Result<()> {
        Err(util::Error::Other(
            "the TURN listener is not connected".into(),
        ))
    }

    async fn recv(&self, _buf: &mut [u8]) -> util::Result<usize> {
        Err(util::Error::Other(
            "the TURN listener has no single peer".into(),
        ))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> util::Result<(usize, SocketAddr)> {
        let mut inbound = self.inbound.lock().await;
        tokio::select! {
            () = self.stop.cancelled() => Err(util::Error::Other("closed".into())),
            next = inbound.recv() => {
                let (packet, from) = next.ok_or_else(|| util::Error::Other("closed".into()))?;
                super::set_current(&self.current, from);
                let n = packet.len().min(buf.len());
                buf[..n].copy_from_slice(&packet[..n]);
                Ok((n, from))
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> util::Result<usize> {
        Err(util::Error::Other(
            "the TURN listener has no single peer".into(),
        ))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> util::Result<usize> {
        if !self.gate.outbound(buf, target, Instant::now()) {
            return Ok(buf.len());
        }
        let writer = lock(&self.writers).get(&target).cloned();
        // Gone or too slow: dropped, as a datagram would be.
        if let Some(writer) = writer {
            let _ = writer.try_send(buf.to_vec());
        }
        Ok(buf.len())
    }

    fn local_addr(&self) -> util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Called for every allocation the server closes: nothing to close here.
    /// The listener stops with the server (`stop`).
    async fn close(&self) -> util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_stun_or_padded_channel_data() {
        // A Binding request with 8 bytes of attributes.
        assert_eq!(frame_len([0x00, 0x01, 0x00, 0x08]), Some((28, 28)));
        // STUN attributes are whole words.
        assert_eq!(frame_len([0x00, 0x01, 0x00, 0x07]), None);
        // ChannelData of 5 bytes on channel 0x4000: 3 bytes of padding.
        assert_eq!(frame_len([0x40, 0x00, 0x00, 0x05]), Some((12, 9)));
        assert_eq!(frame_len([0x7f, 0xff, 0x00, 0x08]), Some((12, 12)));
        // Longer than the server reads.
        assert_eq!(frame_len([0x40, 0x00, 0x05, 0xdd]), None);
        assert_eq!(frame_len([0x00, 0x01, 0x05, 0xcc]), None);
        // HTTP, a TLS hello (odd length) and the reserved ranges are not TURN.
        assert_eq!(frame_len(*b"GET "), None);
        assert_eq!(frame_len([0x16, 0x03, 0x01, 0x02]), None);
        assert_eq!(frame_len([0x80, 0x00, 0x00, 0x00]), None);
        assert_eq!(frame_len([0xc0, 0x00, 0x00, 0x00]), None);
    }
}
