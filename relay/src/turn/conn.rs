//! The server's UDP socket, seen through the gate: a `util::Conn` that
//! hands the server only what the gate forwards (plus the gate's own
//! nonce requests), sends the gate's answers itself, and shows the gate
//! everything the server sends.

use super::gate::{Gate, SELF_ADDR, Verdict};
use async_trait::async_trait;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The server's UDP socket, seen through the gate.
pub(super) struct GateConn {
    pub(super) gate: Arc<Gate>,
    pub(super) socket: UdpSocket,
    pub(super) inject: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
    pub(super) stop: CancellationToken,
    /// The client whose datagram the server is handling.
    pub(super) current: super::Current,
}

#[async_trait]
impl util::Conn for GateConn {
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
        let mut inject = self.inject.lock().await;
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return Err(util::Error::Other("closed".into())),
                Some(request) = inject.recv() => {
                    let n = request.len().min(buf.len());
                    buf[..n].copy_from_slice(&request[..n]);
                    super::set_current(&self.current, SELF_ADDR);
                    return Ok((n, SELF_ADDR));
                }
                received = self.socket.recv_from(buf) => {
                    let (n, src) = match received {
                        Ok(r) => r,
                        Err(e) => {
                            // An ICMP error surfacing on the socket must not end the server.
                            tracing::debug!("TURN socket: {e}");
                            continue;
                        }
                    };
                    match self.gate.inspect(&buf[..n], src, Instant::now()) {
                        Verdict::Forward => {
                            super::set_current(&self.current, src);
                            return Ok((n, src));
                        }
                        Verdict::Reply(reply) => {
                            if let Err(e) = self.socket.send_to(&reply, src).await {
                                tracing::debug!(%src, "TURN reply: {e}");
                            }
                        }
                        Verdict::Drop => {}
                    }
                }
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
        Ok(self.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// The server calls this for every allocation it closes, on the socket
    /// they all share: it must not close anything. The listener stops with
    /// the server (`stop`).
    async fn close(&self) -> util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
