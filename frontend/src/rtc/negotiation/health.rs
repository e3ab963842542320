//! How one connection is doing: its `connectionState` as a type, and the
//! clocks the healing decisions read (trouble since, restarts, set-up time).

/// An RTCPeerConnection's `connectionState`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConnState {
    #[default]
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl ConnState {
    /// The browser's string; anything unknown reads as `New`.
    pub fn parse(s: &str) -> Self {
        match s {
            "connecting" => Self::Connecting,
            "connected" => Self::Connected,
            "disconnected" => Self::Disconnected,
            "failed" => Self::Failed,
            "closed" => Self::Closed,
            _ => Self::New,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }
}

/// A connection `disconnected` this long counts as broken (`failed` at once).
pub const DISCONNECTED_GRACE_MS: f64 = 3_000.0;
/// A connection that has not connected this long after it was opened is
/// stuck (`new` or `connecting`): the viewer gives it up and asks again.
pub const CONNECT_TIMEOUT_MS: f64 = 10_000.0;

/// The history of one connection, for the healing decisions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    pub state: ConnState,
    /// It has been connected at least once (a fresh connection that fails
    /// is replaced at once: there is nothing to restart).
    pub ever_connected: bool,
    /// When it stopped being connected (`None` while healthy).
    pub trouble_since: Option<f64>,
    pub failed: bool,
    pub restarts: u32,
    pub last_restart: f64,
    /// When the connection was opened.
    pub opened_ms: f64,
}

impl Health {
    /// A new connection, opened at `now_ms`.
    pub fn opened(now_ms: f64) -> Self {
        Self {
            opened_ms: now_ms,
            ..Self::default()
        }
    }

    pub fn connected(&self) -> bool {
        self.state == ConnState::Connected
    }

    pub fn update(&mut self, state: ConnState, now_ms: f64) {
        self.state = state;
        match state {
            ConnState::Connected => {
                *self = Health {
                    state,
                    ever_connected: true,
                    opened_ms: self.opened_ms,
                    ..Health::default()
                }
            }
            ConnState::Disconnected | ConnState::Failed => {
                self.trouble_since.get_or_insert(now_ms);
                self.failed |= state == ConnState::Failed;
            }
            ConnState::New | ConnState::Connecting | ConnState::Closed => {}
        }
    }

    /// Connected once, then lost: `failed`, or `disconnected` for a while.
    pub fn broken(&self, now_ms: f64) -> bool {
        self.trouble_since
            .is_some_and(|t| self.failed || now_ms - t >= DISCONNECTED_GRACE_MS)
    }

    /// Failed before it ever connected: nothing to restart.
    pub fn stillborn(&self) -> bool {
        self.failed && !self.ever_connected
    }

    /// Still not connected [`CONNECT_TIMEOUT_MS`] after it was opened.
    pub fn stuck(&self, now_ms: f64) -> bool {
        !self.ever_connected && now_ms - self.opened_ms >= CONNECT_TIMEOUT_MS
    }
}
