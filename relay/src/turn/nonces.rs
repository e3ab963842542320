//! The server nonces the gate hands out: which ones it knows, when to make
//! the server mint a new one, and when to present an expired one back so the
//! server forgets it (the server then holds at most three, whatever the
//! traffic).

use std::time::{Duration, Instant};

/// The server's nonce lifetime (turn 0.17: one hour, from RFC 5766).
const SERVER_NONCE_LIFETIME: Duration = Duration::from_secs(3600);
/// Clients may use a nonce this long; later they get 438 and the next one.
const ACCEPT_FOR: Duration = Duration::from_secs(3600 - 120);
/// A new nonce is minted when the newest is this old.
const ROTATE_AFTER: Duration = Duration::from_secs(1800);
/// An injected request unanswered this long is given up.
const INJECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server nonces the gate knows, oldest first.
#[derive(Debug, Default)]
pub(super) struct Nonces {
    known: Vec<(String, Instant)>,
    injected: Option<Instant>,
}

/// A request the gate feeds the server to make it mint a nonce.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Inject {
    /// An unauthenticated Allocate: the server answers 401 with a new nonce.
    Mint,
    /// An Allocate presenting this expired nonce: the server drops it and
    /// answers 438 with a new one.
    Retire(String),
}

impl Nonces {
    /// The nonce to hand out, if the newest is still good.
    pub(super) fn current(&self, now: Instant) -> Option<&str> {
        self.known
            .last()
            .filter(|(_, at)| now.saturating_duration_since(*at) < ACCEPT_FOR)
            .map(|(n, _)| n.as_str())
    }

    pub(super) fn accepts(&self, nonce: &[u8], now: Instant) -> bool {
        self.known
            .iter()
            .any(|(n, at)| n.as_bytes() == nonce && now.saturating_duration_since(*at) < ACCEPT_FOR)
    }

    /// What to feed the server now, if anything.
    pub(super) fn next(&mut self, now: Instant) -> Option<Inject> {
        if self
            .injected
            .is_some_and(|at| now.saturating_duration_since(at) < INJECT_TIMEOUT)
        {
            return None;
        }
        let inject = match self.known.as_slice() {
            [] => Inject::Mint,
            [.., (_, newest)] if now.saturating_duration_since(*newest) < ROTATE_AFTER => {
                return None;
            }
            [(oldest, at), _, ..]
                if now.saturating_duration_since(*at)
                    > SERVER_NONCE_LIFETIME + Duration::from_secs(5) =>
            {
                let oldest = oldest.clone();
                self.known.remove(0);
                Inject::Retire(oldest)
            }
            // Two good ones already: wait for the older to expire.
            [_, _, ..] => return None,
            [_] => Inject::Mint,
        };
        self.injected = Some(now);
        Some(inject)
    }

    /// The server minted `nonce`.
    pub(super) fn minted(&mut self, nonce: String, now: Instant) {
        self.injected = None;
        self.known.push((nonce, now));
        // Never more than three, whatever happens (each is ~40 bytes).
        if self.known.len() > 3 {
            self.known.remove(0);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_nonces_rotate_and_stay_few() {
        let t0 = Instant::now();
        let mut n = Nonces::default();
        assert_eq!(n.current(t0), None);
        assert_eq!(n.next(t0), Some(Inject::Mint));
        assert_eq!(n.next(t0), None, "one request at a time");
        n.minted("n1".into(), t0);
        assert_eq!(n.current(t0), Some("n1"));
        assert_eq!(n.next(t0 + Duration::from_secs(60)), None);

        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(n.next(at(1800)), Some(Inject::Mint));
        n.minted("n2".into(), at(1800));
        assert_eq!(n.current(at(1800)), Some("n2"));
        assert!(
            n.accepts(b"n1", at(3000)),
            "the old one still works for a while"
        );
        assert!(
            !n.accepts(b"n1", at(3500)),
            "and not up to the server's limit"
        );
        assert_eq!(n.next(at(3500)), None);
        // Past the server's lifetime the old one is presented back, so the
        // server drops it and mints the next.
        assert_eq!(n.next(at(3606)), Some(Inject::Retire("n1".into())));
        assert_eq!(n.len(), 1);
        n.minted("n3".into(), at(3606));

        // Two simulated days, a tick a second: always a nonce to hand out,
        // never more than three known (and so on the server).
        let mut minted = 3;
        for s in 3607..(2 * 24 * 3600) {
            if n.next(at(s)).is_some() {
                minted += 1;
                n.minted(format!("n{minted}"), at(s));
            }
            assert!(n.current(at(s)).is_some(), "no nonce at {s}s");
            assert!(n.len() <= 3);
        }
        assert!(minted >= 96, "rotates about every half hour ({minted})");
    }

    #[test]
    fn a_lost_answer_is_retried() {
        let t0 = Instant::now();
        let mut n = Nonces::default();
        assert_eq!(n.next(t0), Some(Inject::Mint));
        assert_eq!(n.next(t0 + Duration::from_secs(4)), None);
        assert_eq!(n.next(t0 + Duration::from_secs(6)), Some(Inject::Mint));
    }
}
