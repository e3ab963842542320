//! Relay sockets: the UDP ports allocations relay through, one per slot
//! the gate reserved, each checking the peer address on every datagram.

use super::Current;
use super::policy::PeerPolicy;
use super::quota::{Claim, Quota};
use crate::metrics::Metrics;
use async_trait::async_trait;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use turn::relay::RelayAddressGenerator;

/// Binds relay sockets in the port range, one for each slot the gate
/// reserved: no reservation, no socket.
#[derive(Clone)]
pub(super) struct RelayPorts {
    pub(super) listen_ip: IpAddr,
    pub(super) relay_ip: IpAddr,
    pub(super) min_port: u16,
    pub(super) max_port: u16,
    pub(super) policy: Arc<PeerPolicy>,
    pub(super) quota: Arc<Quota>,
    pub(super) metrics: Arc<Metrics>,
    /// Whose Allocate this conn's server loop is handling.
    pub(super) current: Current,
}

#[async_trait]
impl RelayAddressGenerator for RelayPorts {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        _use_ipv4: bool,
        _requested_port: u16,
    ) -> Result<(Arc<dyn util::Conn + Send + Sync>, SocketAddr), turn::Error> {
        let slot = self
            .quota
            .claim(*self.current.lock().unwrap_or_else(|e| e.into_inner()))
            .ok_or_else(|| turn::Error::Other("no TURN allocation reserved".into()))?;
        let span = u32::from(self.max_port - self.min_port) + 1;
        let start = getrandom::u32().unwrap_or(0) % span;
        // Walk the range from a random point, so a busy range still finds a port.
        for i in 0..span.min(64) {
            let port = self.min_port + ((start + i) % span) as u16;
            if let Ok(socket) = UdpSocket::bind((self.listen_ip, port)).await {
                let relay_addr = SocketAddr::new(self.relay_ip, port);
                let conn = RelayConn {
                    socket,
                    policy: self.policy.clone(),
                    metrics: self.metrics.clone(),
                    stop: CancellationToken::new(),
                    _slot: slot,
                };
                return Ok((Arc::new(conn), relay_addr));
            }
        }
        Err(turn::Error::Other("no free TURN relay port".into()))
    }
}

/// An allocation's relay socket: nothing goes to or comes from a refused peer.
struct RelayConn {
    socket: UdpSocket,
    policy: Arc<PeerPolicy>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    /// Dropped with the socket: frees the allocation's slot.
    _slot: Claim,
}

#[async_trait]
impl util::Conn for RelayConn {
    async fn connect(&self, _addr: SocketAddr) -> util::Result<()> {
        Err(util::Error::Other("relay sockets are not connected".into()))
    }

    async fn recv(&self, _buf: &mut [u8]) -> util::Result<usize> {
        Err(util::Error::Other(
            "relay sockets have no single peer".into(),
        ))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> util::Result<(usize, SocketAddr)> {
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return Err(util::Error::Other("closed".into())),
                received = self.socket.recv_from(buf) => match received {
                    Ok((n, from)) if self.policy.allows(from.ip()) => return Ok((n, from)),
                    Ok(_) => {}
                    Err(e) => tracing::debug!("TURN relay socket: {e}"),
                },
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> util::Result<usize> {
        Err(util::Error::Other(
            "relay sockets have no single peer".into(),
        ))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> util::Result<usize> {
        if !self.policy.allows(target.ip()) {
            self.metrics.turn_peers_refused.fetch_add(1, Relaxed);
            return Err(util::Error::Other(format!(
                "relaying to {target} is refused"
            )));
        }
        Ok(self.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> util::Result<()> {
        self.stop.cancel();
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
