//! The reconnect policy and what is held while the socket is down: pure,
//! host-tested.

use protocol::{ClientMsg, close};

/// Reconnection delay: immediately the first time, then growing to ~7 s,
/// with ±20% jitter so a restarted relay is not hit by everyone at once.
pub fn backoff_ms(attempt: u32, jitter: f64) -> u32 {
    if attempt == 0 {
        return 0;
    }
    let base = (250u32 << (attempt - 1).min(5)).min(7_000);
    (f64::from(base) * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as u32
}

/// What to do after the socket closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Retry {
        in_ms: u32,
    },
    /// Do not reconnect: another tab took this call over (4000).
    Stop,
}

/// The reconnect policy. The attempt counter resets on `welcome` (a relay
/// that accepts the socket and then closes it at once is still failing);
/// a relay that is full (1013) or closed us for policy (1008) is given at
/// least a second, and more each time.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

/// The least wait after 1013 or 1008.
pub const MIN_WAIT_AFTER_REFUSAL_MS: u32 = 1_000;

impl Backoff {
    /// Consecutive failed attempts since the last `welcome`.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn welcomed(&mut self) {
        self.attempt = 0;
    }

    /// The socket closed with `code`; `jitter` in 0..=1.
    pub fn closed(&mut self, code: u16, jitter: f64) -> Next {
        let attempt = self.attempt;
        let in_ms = match code {
            close::REPLACED => return Next::Stop,
            close::TRY_AGAIN_LATER | close::POLICY => {
                backoff_ms(attempt.saturating_add(3), jitter).max(MIN_WAIT_AFTER_REFUSAL_MS)
            }
            _ => backoff_ms(attempt, jitter),
        };
        self.attempt = attempt.saturating_add(1);
        Next::Retry { in_ms }
    }
}

/// Messages that belong to one peer connection: held while the socket is
/// down and sent after the next `welcome`, so a negotiation is not lost.
pub fn held_while_down(msg: &ClientMsg) -> bool {
    matches!(
        msg,
        ClientMsg::Offer { .. }
            | ClientMsg::Answer { .. }
            | ClientMsg::IceOfferCandidate { .. }
            | ClientMsg::IceAnswerCandidate { .. }
    )
}

/// Held messages, at most (a long outage: the oldest go first).
pub const MAX_HELD: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_counter_resets_on_welcome_not_on_open() {
        let mut b = Backoff::default();
        // A relay that accepts sockets and closes them before welcome:
        // opening is not success, so the waits keep growing.
        let waits: Vec<u32> = (0..6)
            .map(|_| match b.closed(1006, 0.5) {
                Next::Retry { in_ms } => in_ms,
                Next::Stop => panic!("1006 retries"),
            })
            .collect();
        assert_eq!(waits, vec![0, 250, 500, 1000, 2000, 4000]);
        b.welcomed();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.closed(1006, 0.5), Next::Retry { in_ms: 0 });
    }

    #[test]
    fn a_full_relay_or_a_policy_close_waits_at_least_a_second_and_backs_off() {
        for code in [close::TRY_AGAIN_LATER, close::POLICY] {
            let mut b = Backoff::default();
            let mut last = 0;
            for n in 0..8 {
                let Next::Retry { in_ms } = b.closed(code, 0.0) else {
                    panic!("{code} retries");
                };
                assert!(in_ms >= MIN_WAIT_AFTER_REFUSAL_MS, "{code} #{n}: {in_ms}");
                assert!(in_ms >= last, "{code} #{n}: {in_ms} < {last}");
                last = in_ms;
            }
            assert!(last >= 5_000, "{code}: backs off to {last}");
        }
    }

    #[test]
    fn replaced_stops() {
        let mut b = Backoff::default();
        assert_eq!(b.closed(close::REPLACED, 0.5), Next::Stop);
    }

    #[test]
    fn only_connection_messages_are_held() {
        let c = protocol::IceCandidate {
            candidate: "c".into(),
            sdp_mid: None,
            sdp_m_line_index: None,
            username_fragment: None,
        };
        assert!(held_while_down(&ClientMsg::IceAnswerCandidate {
            to: "p".into(),
            conn: 1,
            candidate: c
        }));
        assert!(held_while_down(&ClientMsg::Answer {
            to: "p".into(),
            conn: 1,
            sdp: "s".into(),
            sig: None
        }));
        assert!(!held_while_down(&ClientMsg::BroadcastAvailable));
        assert!(!held_while_down(&ClientMsg::GetBroadcast {
            to: "p".into()
        }));
    }

    #[test]
    fn backoff_starts_immediately_and_caps_near_seven_seconds() {
        assert_eq!(backoff_ms(0, 0.5), 0);
        assert_eq!(backoff_ms(1, 0.5), 250);
        assert_eq!(backoff_ms(2, 0.5), 500);
        assert_eq!(backoff_ms(3, 0.5), 1000);
        assert_eq!(backoff_ms(6, 0.5), 7000);
        assert_eq!(backoff_ms(60, 0.5), 7000);
        assert_eq!(backoff_ms(60, 0.0), 5600);
        assert_eq!(backoff_ms(60, 1.0), 8400);
        let growing: Vec<u32> = (0..8).map(|a| backoff_ms(a, 0.5)).collect();
        assert!(growing.windows(2).all(|w| w[0] <= w[1]), "{growing:?}");
    }
}
