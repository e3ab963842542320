//! What the UI shows of the call, and every user-facing word about it: the
//! status line, one [`TileData`] per remote broadcaster (state, path, why it
//! cannot connect), and the signals a call publishes them on.

use super::connections::Connections;
use super::negotiation::{ConnState, Dir, Negotiator, Remote};
use super::path::Path;
use super::peer::IceConfig;
use leptos::prelude::*;
use web_sys::MediaStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// In the lobby.
    NotJoined,
    Connecting,
    Connected,
    Reconnecting(u32),
    Unreachable(u32),
    /// The same participant opened the call elsewhere (close 4000).
    Replaced,
    RoomFull,
    Left,
    /// A verified room's link, but no WebCrypto (an insecure page).
    NoCrypto,
}

impl Status {
    pub fn text(self) -> String {
        match self {
            Status::NotJoined => "Not joined yet".into(),
            Status::Connecting => "Connecting…".into(),
            Status::Connected => "Connected".into(),
            Status::Reconnecting(n) => format!("Reconnecting (attempt {n})…"),
            Status::Unreachable(n) => format!("Relay unreachable (attempt {n})…"),
            Status::Replaced => "This call continued in another tab".into(),
            Status::RoomFull => "This room is full".into(),
            Status::Left => "You left the call".into(),
            Status::NoCrypto => {
                "This browser cannot check the room key: open the link over HTTPS".into()
            }
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Status::Connected => "ok",
            Status::Connecting | Status::Reconnecting(_) => "busy",
            Status::Unreachable(_) | Status::Replaced | Status::RoomFull | Status::NoCrypto => {
                "bad"
            }
            Status::Left | Status::NotJoined => "idle",
        }
    }
}

/// How a remote tile's connection is doing, as `data-state` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileState {
    Conn(ConnState),
    /// Broken and being healed (ICE restart or re-request under way).
    Reconnecting,
}

impl TileState {
    /// For `data-state` (tests read it).
    pub fn code(self) -> &'static str {
        match self {
            TileState::Conn(s) => s.as_str(),
            TileState::Reconnecting => "reconnecting",
        }
    }

    /// The words on the tile; empty when all is well.
    pub fn label(self) -> &'static str {
        match self {
            TileState::Conn(ConnState::Connected) => "",
            TileState::Conn(ConnState::New | ConnState::Connecting) => "Connecting…",
            TileState::Conn(ConnState::Disconnected) | TileState::Reconnecting => "Reconnecting…",
            TileState::Conn(ConnState::Failed) => "Connection failed",
            TileState::Conn(ConnState::Closed) => "Disconnected",
        }
    }
}

/// One remote broadcaster as the grid shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct TileData {
    pub id: String,
    pub name: String,
    pub audio: bool,
    pub video: bool,
    pub state: TileState,
    pub stream: Option<MediaStream>,
    /// The screen it shares, once its tracks arrived.
    pub screen: Option<MediaStream>,
    /// How media travels, once connected.
    pub path: Option<Path>,
    /// This connection is the relay-only retry of one that failed.
    pub relay_retry: bool,
    /// Why it cannot connect, in words, when that is known.
    pub problem: Option<&'static str>,
    /// Its raised hand's place in the order hands went up (1 = first).
    pub hand: Option<usize>,
    /// What getStats said of its connection over the last second.
    pub details: Option<super::stats::Details>,
    /// Its connection passed the room key's check: the safety code.
    pub code: Option<String>,
    /// Its description failed the room key's check (nothing of it plays).
    pub refused: bool,
}

impl TileData {
    /// The words on the tile: the problem if there is one, else the state's.
    pub fn label(&self) -> &'static str {
        self.problem.unwrap_or_else(|| self.state.label())
    }
}

/// What a call publishes for the UI.
#[derive(Clone, Copy, Debug)]
pub struct CallView {
    pub status: RwSignal<Status>,
    pub tiles: RwSignal<Vec<TileData>, LocalStorage>,
    pub my_id: RwSignal<Option<String>>,
    /// Other peers in the room, broadcasting or not.
    pub others: RwSignal<usize>,
    /// Open RTCPeerConnections.
    pub connections: RwSignal<usize>,
    /// Cameras in the room, mine included.
    pub cameras: RwSignal<usize>,
    /// The room's chat, oldest first.
    pub chat: RwSignal<Vec<super::chat::ChatLine>>,
    /// Others' chat lines since the chat was last looked at.
    pub chat_unread: RwSignal<usize>,
    /// The names of everyone else whose hand is up, in the order raised.
    pub hands: RwSignal<Vec<String>>,
    /// The loudest recent remote speaker.
    pub active: RwSignal<Option<String>>,
    /// The names of peers whose answer to my offer failed the room key's
    /// check, unless their tile already warns (viewers have none).
    pub refused: RwSignal<Vec<String>>,
    /// Some connection failed the room key's check.
    pub doubt: RwSignal<bool>,
}

impl CallView {
    pub fn new() -> Self {
        Self {
            status: RwSignal::new(Status::NotJoined),
            tiles: RwSignal::new_local(Vec::new()),
            my_id: RwSignal::new(None),
            others: RwSignal::new(0),
            connections: RwSignal::new(0),
            cameras: RwSignal::new(0),
            chat: RwSignal::new(Vec::new()),
            chat_unread: RwSignal::new(0),
            hands: RwSignal::new(Vec::new()),
            active: RwSignal::new(None),
            refused: RwSignal::new(Vec::new()),
            doubt: RwSignal::new(false),
        }
    }

    /// Publishes the tiles (one per remote broadcaster), the counts, and
    /// which connections failed the room key's check (`refused`).
    pub fn refresh(
        &self,
        neg: &Negotiator,
        conns: &Connections,
        ice: &IceConfig,
        refused: &[(Dir, protocol::PeerId)],
    ) {
        let order = hand_order(neg.peers());
        let is_refused =
            |dir, p: &Remote| refused.iter().any(|(d, id)| *d == dir && *id == p.info.id);
        // A refused camera keeps its tile between attempts: the warning
        // belongs there.
        let has_tile =
            |p: &Remote| p.has_tile() || (p.info.broadcasting && is_refused(Dir::Inbound, p));
        let tiles = neg
            .peers()
            .iter()
            .filter(|p| has_tile(p))
            .map(|p| {
                let mut t = tile(p, conns, ice);
                t.refused = is_refused(Dir::Inbound, p);
                t.hand = order
                    .iter()
                    .position(|r| r.info.id == p.info.id)
                    .map(|n| n + 1);
                t
            })
            .collect();
        let hands: Vec<String> = order.iter().map(|r| r.info.name.clone()).collect();
        if self.hands.with_untracked(|h| *h != hands) {
            self.hands.set(hands);
        }
        let tileless: Vec<String> = neg
            .peers()
            .iter()
            // The ones watching me whose answers failed, unless their
            // tile already warns.
            .filter(|p| {
                is_refused(Dir::Outbound, p) && !(has_tile(p) && is_refused(Dir::Inbound, p))
            })
            .map(|p| p.info.name.clone())
            .collect();
        if self.refused.with_untracked(|r| *r != tileless) {
            self.refused.set(tileless);
        }
        let doubt = !refused.is_empty();
        if self.doubt.get_untracked() != doubt {
            self.doubt.set(doubt);
        }
        let cameras = neg.peers().iter().filter(|p| p.info.broadcasting).count()
            + usize::from(neg.is_broadcasting());
        self.tiles.set(tiles);
        self.others.set(neg.peers().len());
        self.connections.set(conns.len());
        self.cameras.set(cameras);
    }
}

impl Default for CallView {
    fn default() -> Self {
        Self::new()
    }
}

/// Everyone whose hand is up, in the order the relay saw them go up.
pub fn hand_order(peers: &[Remote]) -> Vec<&Remote> {
    // A handful of hands: an insertion keeps the wasm free of a sort.
    fn key(p: &Remote) -> (Option<u64>, &protocol::PeerId) {
        (p.info.hand, &p.info.id)
    }
    let mut up: Vec<&Remote> = Vec::new();
    for p in peers.iter().filter(|p| p.info.hand.is_some()) {
        let at = up.iter().position(|q| key(q) > key(p)).unwrap_or(up.len());
        up.insert(at, p);
    }
    up
}

fn tile(p: &Remote, conns: &Connections, ice: &IceConfig) -> TileData {
    let screen_id = p.screen.as_deref();
    let live = conns.with_any(Dir::Inbound, &p.info.id, |c| {
        (
            c.camera(screen_id),
            c.screen(screen_id),
            c.path,
            c.ice_error,
            (c.details.clone(), c.code.clone()),
        )
    });
    let has_conn = live.is_some();
    let (stream, screen, path, ice_error, (details, code)) =
        live.unwrap_or((None, None, None, None, (None, None)));
    let state = match p.inbound_state() {
        _ if has_conn && p.healing() => TileState::Reconnecting,
        s if has_conn => TileState::Conn(s),
        _ => TileState::Conn(ConnState::New),
    };
    TileData {
        id: p.info.id.0.clone(),
        name: p.info.name.clone(),
        audio: p.audio,
        video: p.video,
        state,
        stream,
        screen,
        path,
        relay_retry: p.relay_retry(),
        problem: has_conn
            .then(|| problem(p.inbound_state(), ice_error, ice, p.unreachable()))
            .flatten(),
        hand: None,
        details,
        code,
        refused: false,
    }
}

/// What to tell the user when a connection cannot be made. `failed_before`:
/// an earlier connection to this peer failed and none has connected since,
/// so a retry in progress still shows why.
pub fn problem(
    state: ConnState,
    ice_error: Option<u16>,
    ice: &IceConfig,
    failed_before: bool,
) -> Option<&'static str> {
    let failed = match state {
        ConnState::Connected => false,
        ConnState::Failed => true,
        _ => failed_before,
    };
    match ice_error {
        Some(401) if ice.relay_only || state != ConnState::Connected => {
            Some("The TURN server refused our credentials (401)")
        }
        _ if failed && !ice.has_turn() => Some("Can't connect directly: a TURN server is needed"),
        _ if failed => Some("Can't connect, even through TURN"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::IceServer;

    fn ice(turn: bool, relay_only: bool) -> IceConfig {
        let url = if turn { "turn:t:3478" } else { "stun:s:3478" };
        IceConfig {
            servers: vec![IceServer {
                urls: vec![url.into()],
                username: None,
                credential: None,
            }],
            relay_only,
            certificate: None,
        }
    }

    #[test]
    fn problems_in_words() {
        use ConnState::*;
        assert_eq!(problem(Connected, None, &ice(false, false), true), None);
        assert_eq!(
            problem(Failed, None, &ice(false, false), false),
            Some("Can't connect directly: a TURN server is needed")
        );
        assert_eq!(
            problem(Connecting, None, &ice(true, false), true),
            Some("Can't connect, even through TURN"),
            "a retry keeps saying why"
        );
        assert_eq!(
            problem(Connecting, Some(401), &ice(true, true), false),
            Some("The TURN server refused our credentials (401)")
        );
        assert_eq!(
            problem(Connected, Some(401), &ice(true, false), false),
            None
        );
        assert_eq!(problem(Connecting, None, &ice(true, false), false), None);
    }

    #[test]
    fn hands_in_the_order_they_went_up() {
        use protocol::{PeerInfo, Role, RoomId, ServerMsg};
        let info = |id: &str, hand: Option<u64>| PeerInfo {
            id: id.into(),
            name: id.to_uppercase(),
            role: Role::Watcher,
            broadcasting: false,
            hand,
        };
        let mut n = Negotiator::new(false, 1);
        n.on_server(
            ServerMsg::Welcome {
                id: "me".into(),
                room: RoomId("r".into()),
                peers: vec![
                    info("c", Some(30)),
                    info("a", None),
                    info("d", Some(10)),
                    info("b", Some(30)),
                ],
                ice_servers: vec![],
                chat: vec![],
            },
            0.0,
        );
        let names: Vec<&str> = hand_order(n.peers())
            .iter()
            .map(|p| p.info.name.as_str())
            .collect();
        assert_eq!(names, ["D", "B", "C"], "by time, then by id");
    }

    #[test]
    fn tile_words() {
        assert_eq!(TileState::Conn(ConnState::Connected).label(), "");
        assert_eq!(TileState::Reconnecting.code(), "reconnecting");
        assert_eq!(TileState::Conn(ConnState::Failed).code(), "failed");
        assert_eq!(
            Status::Replaced.text(),
            "This call continued in another tab"
        );
    }
}
