//! The relay's shared state ([`Relay`]) and connection admission: the
//! total connection limit and the per-client-address limit, each slot held
//! by an [`Admitted`] for the life of its socket.

use crate::config::Config;
use crate::{ice, metrics, rooms};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything a connection needs, behind cheap clones.
#[derive(Clone, Debug)]
pub struct Relay {
    pub config: Arc<Config>,
    pub registry: rooms::Registry,
    pub metrics: Arc<metrics::Metrics>,
    pub ice: Arc<ice::IceConfig>,
    /// Cancelled when the relay shuts down; every session watches it.
    pub shutdown: CancellationToken,
    pub(crate) sessions: TaskTracker,
    slots: Arc<Mutex<Slots>>,
}

/// Open connections, in total and per client address.
#[derive(Debug, Default)]
struct Slots {
    open: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted (it is closed with 1013).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The relay is at `--max-connections`.
    Full,
    /// This client address is at `--max-connections-per-ip`.
    PerIp,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Full => "relay is full",
            Refused::PerIp => "too many connections from your address",
        }
    }
}

impl Relay {
    pub fn new(config: Config) -> Self {
        Self::with_metrics(config, Arc::default())
    }

    pub(crate) fn with_metrics(config: Config, metrics: Arc<metrics::Metrics>) -> Self {
        let ice = ice::IceConfig {
            stun_urls: config.stun_urls(),
            turn_urls: config.ice.turn_urls.clone(),
            turn_secret: config.ice.turn_secret.clone(),
            turn_ttl: config.ice.turn_ttl,
        };
        Self {
            registry: rooms::Registry::new(config.limits.max_room_peers, metrics.clone()),
            config: Arc::new(config),
            metrics,
            ice: Arc::new(ice),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            slots: Arc::default(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // Counters only: a panic elsewhere leaves them usable.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a connection slot for a client at `ip`, or says why not (and
    /// counts the refusal).
    pub fn admit(&self, ip: IpAddr) -> Result<Admitted, Refused> {
        let limits = &self.config.limits;
        let mut slots = self.slots();
        if slots.open >= limits.max_connections {
            self.metrics.connections_rejected.fetch_add(1, Relaxed);
            return Err(Refused::Full);
        }
        let from_ip = slots.per_ip.entry(ip).or_default();
        if limits.max_connections_per_ip > 0 && *from_ip >= limits.max_connections_per_ip {
            if *from_ip == 0 {
                slots.per_ip.remove(&ip);
            }
            self.metrics.ip_rejections.fetch_add(1, Relaxed);
            return Err(Refused::PerIp);
        }
        *from_ip += 1;
        slots.open += 1;
        self.metrics.connections.fetch_add(1, Relaxed);
        self.metrics.connections_total.fetch_add(1, Relaxed);
        Ok(Admitted {
            relay: self.clone(),
            ip,
        })
    }
}

/// One admitted connection; dropping it frees its slots.
#[derive(Debug)]
pub struct Admitted {
    relay: Relay,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut slots = self.relay.slots();
        slots.open = slots.open.saturating_sub(1);
        if let Some(n) = slots.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                slots.per_ip.remove(&self.ip);
            }
        }
        self.relay.metrics.connections.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_per_address_and_in_total() {
        let mut config = Config::defaults();
        config.limits.max_connections = 3;
        config.limits.max_connections_per_ip = 2;
        let relay = Relay::new(config);
        let (a, b): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().expect("ip"), "::1".parse().expect("ip"));
        let a1 = relay.admit(a).expect("a1");
        let _a2 = relay.admit(a).expect("a2");
        assert_eq!(relay.admit(a).err(), Some(Refused::PerIp));
        let _b1 = relay.admit(b).expect("b1");
        assert_eq!(relay.admit(b).err(), Some(Refused::Full));
        drop(a1);
        let _a3 = relay.admit(a).expect("a slot came back");
        assert_eq!(relay.metrics.ip_rejections.load(Relaxed), 1);
        assert_eq!(relay.metrics.connections_rejected.load(Relaxed), 1);
        assert_eq!(relay.metrics.connections.load(Relaxed), 3);
    }
}
