//! The relay's side of Janus (issue 15, being built; not wired to rooms
//! yet): a session that comes back when Janus does, and one VideoRoom room
//! per meshcast room, made on first need and destroyed when the room is
//! released. While Janus is down every call fails at once (no waiting on a
//! dead socket), so the caller can fall back to direct connections.

use crate::janus::{Error, Handle, Session};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// After a failed connect, the next attempt waits this long.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// Publishers a VideoRoom room admits (a mesh room's cap is far below).
const MAX_PUBLISHERS: u32 = 64;

pub struct Sfu {
    url: String,
    secret: Option<String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    live: Option<Live>,
    failed_at: Option<Instant>,
    /// meshcast room -> VideoRoom room, for the live session only.
    rooms: HashMap<String, u64>,
    next_room: u64,
}

struct Live {
    session: Session,
    /// The handle rooms are made and destroyed with.
    admin: Handle,
    _alive: tokio::task::JoinHandle<()>,
}

impl Sfu {
    pub fn new(url: String, secret: Option<String>) -> Self {
        Self {
            url,
            secret,
            state: Mutex::new(State {
                next_room: 1,
                ..State::default()
            }),
        }
    }

    /// Whether a session to Janus is up right now.
    pub async fn is_up(&self) -> bool {
        let mut state = self.state.lock().await;
        drop_if_closed(&mut state);
        state.live.is_some()
    }

    /// The VideoRoom room for `room`, made if it has none yet.
    pub async fn room(&self, room: &str) -> Result<u64, Error> {
        let mut state = self.state.lock().await;
        self.connect(&mut state).await?;
        if let Some(id) = state.rooms.get(room) {
            return Ok(*id);
        }
        let id = state.next_room;
        state.next_room += 1;
        let live = state.live.as_ref().ok_or(Error::Gone)?;
        let create = json!({"request": "create", "room": id, "publishers": MAX_PUBLISHERS});
        match live.admin.message(create, None).await {
            Ok(_) => {}
            Err(e @ (Error::Gone | Error::Timeout)) => {
                state.live = None;
                state.failed_at = Some(Instant::now());
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        state.rooms.insert(room.to_owned(), id);
        Ok(id)
    }

    /// `room` emptied: its VideoRoom room goes, if it has one.
    pub async fn release(&self, room: &str) {
        let mut state = self.state.lock().await;
        let Some(id) = state.rooms.remove(room) else {
            return;
        };
        if let Some(live) = &state.live
            && let Err(e) = live
                .admin
                .message(json!({"request": "destroy", "room": id}), None)
                .await
        {
            tracing::warn!(room, id, "janus: destroying a room failed: {e}");
        }
    }

    /// A live session, connecting if there is none (at most once per
    /// [`RECONNECT_PAUSE`] while Janus stays down).
    async fn connect(&self, state: &mut State) -> Result<(), Error> {
        drop_if_closed(state);
        if state.live.is_some() {
            return Ok(());
        }
        if state
            .failed_at
            .is_some_and(|t| t.elapsed() < RECONNECT_PAUSE)
        {
            return Err(Error::Gone);
        }
        let attempt = async {
            let session = Session::connect(&self.url, self.secret.clone()).await?;
            let admin = session.attach("janus.plugin.videoroom").await?;
            let alive = session.keep_alive();
            Ok::<_, Error>(Live {
                session,
                admin,
                _alive: alive,
            })
        };
        match attempt.await {
            Ok(live) => {
                tracing::info!(url = %self.url, session = live.session.id(), "janus: connected");
                state.live = Some(live);
                state.failed_at = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(url = %self.url, "janus: {e}");
                state.failed_at = Some(Instant::now());
                Err(e)
            }
        }
    }
}

/// A session whose socket closed is gone, and the rooms made in it with it
/// (Janus forgets them when it restarts).
fn drop_if_closed(state: &mut State) {
    if state.live.as_ref().is_some_and(|l| l.session.is_closed()) {
        tracing::warn!("janus: the session ended");
        state.live = None;
        state.rooms.clear();
        state.failed_at = Some(Instant::now());
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self._alive.abort();
    }
}
