//! How many error replies (401/438 challenges, and 4xx to authenticated
//! requests) the gate sends, and to whom: a token bucket per source IP (an
//! IPv6 /64 counts as one), then one global cap.
//!
//! A source address the gate has not answered lately ("fresh") may use the
//! whole per-IP bucket; one it has answered may not touch the last half. So
//! a flood from many ports of one IP, once each port has had its answer,
//! leaves the reserve to the next new port, which is what a real client
//! behind that IP (or NAT) is. A flood that changes source port on every
//! packet looks fresh every time and starves its own IP, not others; a
//! flood from enough IPs to exhaust the global cap still slows everyone.
//!
//! Memory: a bucket or an address is only recorded when it is answered, so
//! both maps are bounded by the global rate; entries that have refilled or
//! aged out carry no information and are swept every second; hard caps hold
//! whatever the rates.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// An answered address counts as fresh again after this long.
const FRESH_AFTER: Duration = Duration::from_secs(10);
/// How often full buckets and old addresses are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// At most this many per-IP buckets and this many answered addresses.
const MAX_TRACKED: usize = 16_384;

/// The rates, in replies per second, and bursts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReplyRates {
    pub per_sec: f64,
    pub burst: f64,
    pub per_ip_per_sec: f64,
    pub per_ip_burst: f64,
}

/// What the reply is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// 401/438 to an unauthenticated request: fresh sources first.
    Challenge,
    /// An error to a request that carried valid credentials (403, 486...):
    /// from the source IP's bucket, with no share kept for fresh sources,
    /// so a real client hearing several (one 403 per refused candidate) is
    /// not cut short.
    Rejection,
}

/// Why a reply was not sent.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// The source IP's bucket (or, for a repeat, its share of it) is empty.
    PerIp,
    /// The global cap.
    Global,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Refills at `rate` up to `cap`; returns the level.
    fn level(&mut self, now: Instant, rate: f64, cap: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(cap);
        self.tokens
    }
}

#[derive(Debug)]
pub(super) struct Limiter {
    rates: ReplyRates,
    global: Bucket,
    per_ip: HashMap<IpAddr, Bucket>,
    /// Addresses answered, and when.
    answered: HashMap<SocketAddr, Instant>,
    swept: Instant,
}

/// IPv4 (and IPv4-mapped) addresses by themselves, IPv6 by /64: one host
/// usually has a whole /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

impl Limiter {
    pub(super) fn new(rates: ReplyRates, now: Instant) -> Self {
        Self {
            rates,
            global: Bucket {
                tokens: rates.burst,
                last: now,
            },
            per_ip: HashMap::new(),
            answered: HashMap::new(),
            swept: now,
        }
    }

    /// Whether to answer `src` now; takes the tokens if so.
    pub(super) fn allow(
        &mut self,
        src: SocketAddr,
        now: Instant,
        kind: Kind,
    ) -> Result<(), Refused> {
        let ReplyRates {
            per_sec,
            burst,
            per_ip_per_sec,
            per_ip_burst,
        } = self.rates;
        if now.saturating_duration_since(self.swept) >= SWEEP_EVERY
            || self.per_ip.len() >= MAX_TRACKED
            || self.answered.len() >= MAX_TRACKED
        {
            self.sweep(now);
        }
        let key = ip_key(src.ip());
        let fresh = kind == Kind::Rejection
            || self
                .answered
                .get(&src)
                .is_none_or(|at| now.saturating_duration_since(*at) >= FRESH_AFTER);
        let floor = if fresh { 1.0 } else { 1.0 + per_ip_burst / 2.0 };
        let full = self.per_ip.len() >= MAX_TRACKED;
        let level = match self.per_ip.get_mut(&key) {
            Some(b) => b.level(now, per_ip_per_sec, per_ip_burst),
            None if full => 0.0, // every slot busy
            None => per_ip_burst,
        };
        if level < floor {
            return Err(Refused::PerIp);
        }
        if self.global.level(now, per_sec, burst) < 1.0 {
            return Err(Refused::Global);
        }
        self.global.tokens -= 1.0;
        self.per_ip
            .entry(key)
            .or_insert(Bucket {
                tokens: per_ip_burst,
                last: now,
            })
            .tokens -= 1.0;
        if kind == Kind::Challenge
            && (self.answered.len() < MAX_TRACKED || self.answered.contains_key(&src))
        {
            self.answered.insert(src, now);
        }
        Ok(())
    }

    /// Forgets what no longer matters: full buckets, addresses fresh again.
    fn sweep(&mut self, now: Instant) {
        let ReplyRates {
            per_ip_per_sec,
            per_ip_burst,
            ..
        } = self.rates;
        self.per_ip
            .retain(|_, b| b.level(now, per_ip_per_sec, per_ip_burst) < per_ip_burst);
        self.answered
            .retain(|_, at| now.saturating_duration_since(*at) < FRESH_AFTER);
        self.swept = now;
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        (self.per_ip.len(), self.answered.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: ReplyRates = ReplyRates {
        per_sec: 500.0,
        burst: 1000.0,
        per_ip_per_sec: 20.0,
        per_ip_burst: 40.0,
    };

    fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[test]
    fn a_flood_from_many_ports_of_one_ip_leaves_new_ports_their_answer() {
        let t0 = Instant::now();
        let mut l = Limiter::new(RATES, t0);
        let flooder = [203, 0, 113, 9];
        let mut flood_answers = 0;
        let mut newcomers = 0;
        // Ten seconds; every millisecond each of 64 ports sends one request.
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            for port in 0..64 {
                flood_answers += u32::from(
                    l.allow(addr(flooder, 1000 + port), now, Kind::Challenge)
                        .is_ok(),
                );
            }
            // From 1.5 s on (every flood port answered once), a new port of
            // the same IP every 100 ms is answered at once, every time.
            if ms >= 1500 && ms % 100 == 0 {
                let port = 20_000 + (ms / 100) as u16;
                assert_eq!(
                    l.allow(addr(flooder, port), now, Kind::Challenge),
                    Ok(()),
                    "at {ms} ms"
                );
                newcomers += 1;
            }
        }
        assert_eq!(newcomers, 85);
        // The flood got its IP's rate and no more: 40 + 20/s over 10 s.
        assert!(flood_answers <= 40 + 200, "{flood_answers}");
        // Another IP was never affected.
        let later = t0 + Duration::from_secs(10);
        assert!((0..40).all(|p| {
            l.allow(addr([198, 51, 100, 1], p), later, Kind::Challenge)
                .is_ok()
        }));
        // A repeat from a flood port gets nothing while the reserve is short.
        assert_eq!(
            l.allow(addr(flooder, 1063), later, Kind::Challenge),
            Err(Refused::PerIp)
        );
    }

    #[test]
    fn the_global_cap_holds_and_spoofed_sources_leave_bounded_state() {
        let t0 = Instant::now();
        let mut l = Limiter::new(RATES, t0);
        let mut answered = 0;
        let mut refused_globally = 0;
        // A million requests from a million spoofed addresses over 10 s.
        for i in 0..1_000_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 10);
            let [_, b, c, d] = i.to_be_bytes();
            match l.allow(
                addr([10, b, c, d], 1024 + (i % 50_000) as u16),
                now,
                Kind::Challenge,
            ) {
                Ok(()) => answered += 1,
                Err(Refused::Global) => refused_globally += 1,
                Err(Refused::PerIp) => {}
            }
            let (ips, addrs) = l.tracked();
            assert!(ips <= MAX_TRACKED && addrs <= MAX_TRACKED);
        }
        assert!(answered <= 1000 + 500 * 10 + 1, "{answered}");
        assert!(refused_globally > 900_000);
        let (ips, addrs) = l.tracked();
        // Only answered sources are remembered, and only for a while.
        assert!(
            ips <= 1000 + 500 * 2 && addrs <= 1000 + 500 * 11,
            "{ips} {addrs}"
        );
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let t0 = Instant::now();
        let mut l = Limiter::new(RATES, t0);
        let v6 = |host: u16, port| {
            SocketAddr::new(format!("2001:db8::{host:x}").parse().expect("ip"), port)
        };
        let answered = (0..100u16)
            .filter(|h| l.allow(v6(*h, 1), t0, Kind::Challenge).is_ok())
            .count();
        assert_eq!(answered, 40, "one bucket for the whole /64");
        let other: SocketAddr = "[2001:db8:0:1::1]:1".parse().expect("addr");
        assert_eq!(l.allow(other, t0, Kind::Challenge), Ok(()));
        assert_eq!(
            ip_key("::ffff:192.0.2.1".parse().expect("ip")),
            ip_key("192.0.2.1".parse().expect("ip"))
        );
    }
}
