//! Counters for `/metrics`, in the Prometheus text format. Plain atomics:
//! the per-message path only does relaxed increments.

use protocol::ErrorCode;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub rooms: AtomicU64,
    pub peers: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub slow_consumers_dropped: AtomicU64,
    pub heartbeat_timeouts: AtomicU64,
    pub join_timeouts: AtomicU64,
    pub ip_rejections: AtomicU64,
    pub grace_expiries: AtomicU64,
    pub grace_resumes: AtomicU64,
    pub turn_allocations: AtomicU64,
    pub turn_challenges: AtomicU64,
    pub turn_auth_failures: AtomicU64,
    pub turn_peers_refused: AtomicU64,
    pub turn_quota_rejections: AtomicU64,
    pub turn_replies_dropped: AtomicU64,
    pub turn_replies_dropped_per_ip: AtomicU64,
    pub turn_malformed: AtomicU64,
    pub turn_streams: AtomicU64,
    pub turn_streams_refused: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl Metrics {
    pub fn error(&self, code: ErrorCode) {
        self.errors[code as usize].fetch_add(1, Relaxed);
    }

    pub fn errors(&self, code: ErrorCode) -> u64 {
        self.errors[code as usize].load(Relaxed)
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                value.load(Relaxed)
            );
        };
        metric(
            "meshcast_connections",
            "gauge",
            "Open WebSocket connections.",
            &self.connections,
        );
        metric(
            "meshcast_connections_total",
            "counter",
            "WebSocket connections accepted.",
            &self.connections_total,
        );
        metric(
            "meshcast_connections_rejected_total",
            "counter",
            "Connections refused at the connection limit (closed with 1013).",
            &self.connections_rejected,
        );
        metric(
            "meshcast_rooms",
            "gauge",
            "Rooms with at least one peer.",
            &self.rooms,
        );
        metric(
            "meshcast_peers",
            "gauge",
            "Peers joined to a room.",
            &self.peers,
        );
        metric(
            "meshcast_messages_in_total",
            "counter",
            "Text messages received from clients.",
            &self.messages_in,
        );
        metric(
            "meshcast_messages_out_total",
            "counter",
            "Text messages written to clients.",
            &self.messages_out,
        );
        metric(
            "meshcast_slow_consumers_dropped_total",
            "counter",
            "Peers closed because their outbound queue was full.",
            &self.slow_consumers_dropped,
        );
        metric(
            "meshcast_heartbeat_timeouts_total",
            "counter",
            "Peers dropped for silence.",
            &self.heartbeat_timeouts,
        );
        metric(
            "meshcast_join_timeouts_total",
            "counter",
            "Connections closed (1008) for not joining within the join timeout.",
            &self.join_timeouts,
        );
        metric(
            "meshcast_ip_rejections_total",
            "counter",
            "Connections refused at the per-address limit (closed with 1013).",
            &self.ip_rejections,
        );
        metric(
            "meshcast_leave_grace_expiries_total",
            "counter",
            "Dropped members announced as left after the leave grace ran out.",
            &self.grace_expiries,
        );
        metric(
            "meshcast_leave_grace_resumes_total",
            "counter",
            "Dropped members that rejoined within the leave grace.",
            &self.grace_resumes,
        );
        metric(
            "meshcast_turn_allocations",
            "gauge",
            "Live allocations on the embedded TURN server.",
            &self.turn_allocations,
        );
        metric(
            "meshcast_turn_challenges_total",
            "counter",
            "401/438 challenges the embedded TURN server answered.",
            &self.turn_challenges,
        );
        metric(
            "meshcast_turn_auth_failures_total",
            "counter",
            "TURN requests with wrong or expired credentials.",
            &self.turn_auth_failures,
        );
        metric(
            "meshcast_turn_peers_refused_total",
            "counter",
            "TURN permissions or datagrams refused for a forbidden peer address.",
            &self.turn_peers_refused,
        );
        metric(
            "meshcast_turn_quota_rejections_total",
            "counter",
            "TURN allocations refused at the per-user or total limit.",
            &self.turn_quota_rejections,
        );
        metric(
            "meshcast_turn_replies_dropped_total",
            "counter",
            "TURN requests left unanswered over the challenge rates (per IP or global).",
            &self.turn_replies_dropped,
        );
        metric(
            "meshcast_turn_replies_dropped_per_ip_total",
            "counter",
            "Of those, left unanswered over the per-IP challenge rate.",
            &self.turn_replies_dropped_per_ip,
        );
        metric(
            "meshcast_turn_malformed_total",
            "counter",
            "Datagrams to the TURN port that were not valid STUN.",
            &self.turn_malformed,
        );
        metric(
            "meshcast_turn_streams",
            "gauge",
            "Open TCP and TLS connections to the embedded TURN server.",
            &self.turn_streams,
        );
        metric(
            "meshcast_turn_streams_refused_total",
            "counter",
            "TCP and TLS connections to the TURN server closed at once, over the limit.",
            &self.turn_streams_refused,
        );
        // `writeln!` into a String cannot fail.
        let _ = writeln!(
            out,
            "# HELP meshcast_errors_total Error replies sent, by code.\n# TYPE meshcast_errors_total counter"
        );
        for code in ErrorCode::ALL {
            let _ = writeln!(
                out,
                "meshcast_errors_total{{code=\"{}\"}} {}",
                code.as_str(),
                self.errors(code)
            );
        }
        out
    }
}
