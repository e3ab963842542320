//! The TLS side of the listener: handshakes in tasks of their own, and
//! (with `--turn-on-https`) TURN told apart from HTTPS on one port by the
//! first byte a client sends after the handshake: STUN starts below 0x40,
//! an HTTP request with a method name in capitals.

use super::{Certs, HANDSHAKE_TIMEOUT, MAX_HANDSHAKES};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// rustls' server configuration, offering these ALPN protocols: HTTP/1.1
/// for the web app (WebSocket upgrades need it), with `stun.turn` beside
/// it when TURN shares the port, none on TURN's own TLS port (browsers
/// send none, and a client that does is served anyway).
pub fn acceptor(certs: Arc<Certs>, alpn: &[&[u8]]) -> TlsAcceptor {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| b.with_no_client_auth().with_cert_resolver(certs))
    .unwrap_or_else(|e| unreachable!("ring supports the default protocol versions: {e}"));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// Where TURN connections found on the HTTPS port go (`--turn-on-https`).
pub type TurnStreams = mpsc::Sender<(Peeked<TlsStream<TcpStream>>, SocketAddr)>;

/// A TLS connection that may have had its first byte read already (to tell
/// TURN from HTTP); reading gives that byte back first.
pub struct Peeked<S> {
    first: Option<u8>,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Peeked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if buf.remaining() > 0
            && let Some(byte) = self.first.take()
        {
            buf.put_slice(&[byte]);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Peeked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Sends a handshaken connection where it belongs: to TURN if `turn` is
/// given and its first byte is a STUN message's, else to the web app.
async fn dispatch(
    mut tls: TlsStream<TcpStream>,
    addr: SocketAddr,
    web: &mpsc::Sender<(Peeked<TlsStream<TcpStream>>, SocketAddr)>,
    turn: Option<&TurnStreams>,
) {
    let Some(turn) = turn else {
        let _ = web
            .send((
                Peeked {
                    first: None,
                    inner: tls,
                },
                addr,
            ))
            .await;
        return;
    };
    // Clients speak first on both protocols; one that does not is dropped.
    let Ok(Ok(first)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.read_u8()).await else {
        return;
    };
    let peeked = Peeked {
        first: Some(first),
        inner: tls,
    };
    let _ = if first < 0x40 {
        turn.send((peeked, addr)).await
    } else {
        web.send((peeked, addr)).await
    };
}

/// A listener whose connections have finished their TLS handshake: what
/// `axum::serve` takes in place of a `TcpListener`.
pub struct TlsListener {
    ready: mpsc::Receiver<(Peeked<TlsStream<TcpStream>>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp`; with `turn`, TURN clients go there (see [`dispatch`]).
    pub fn new(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        turn: Option<TurnStreams>,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let accepted = tokio::select! {
                    () = tx.closed() => return,
                    a = tcp.accept() => a,
                };
                let (tcp, addr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: do not spin.
                        tracing::debug!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {e}");
                }
                let (acceptor, tx, turn) = (acceptor.clone(), tx.clone(), turn.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => dispatch(tls, addr, &tx, turn.as_ref()).await,
                        Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Peeked<TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The acceptor task ended (it never does while we listen).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A TLS client's address, as `ConnectInfo` (axum gives `SocketAddr` one
/// only for its own listeners); [`peer_addr`] turns it into the
/// `ConnectInfo<SocketAddr>` the handlers read.
#[derive(Clone, Copy, Debug)]
pub struct TlsAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for TlsAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Middleware: a TLS client's address where plain HTTP's would be.
pub async fn peer_addr(mut req: axum::extract::Request) -> axum::extract::Request {
    use axum::extract::ConnectInfo;
    if let Some(ConnectInfo(TlsAddr(addr))) =
        req.extensions().get::<ConnectInfo<TlsAddr>>().copied()
    {
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    req
}
