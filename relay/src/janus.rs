//! A client of Janus's WebSocket API (subprotocol `janus-protocol`), for
//! the coming `--sfu janus` bridge (issue 15): one session, kept alive;
//! requests matched to their answers by transaction; the events Janus sends
//! on its own (a subscriber's offer, trickled candidates, `webrtcup`,
//! `hangup`) routed to the handle they are for. It knows Janus's envelope
//! only; what a VideoRoom request says is the caller's.
//!
//! One task owns the socket. When Janus goes away every pending request
//! fails, every handle's event stream ends and [`Session::closed`] resolves:
//! the caller decides what to fall back to.

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest as _};

/// How long an answer may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Janus drops a session it has not heard from for `session_timeout` (60 s
/// in deploy/janus): well within that.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(20);
/// Events queued for a handle that is not reading them.
const HANDLE_EVENTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach Janus: {0}")]
    Connect(#[from] tungstenite::Error),
    #[error("Janus is gone")]
    Gone,
    #[error("Janus did not answer in time")]
    Timeout,
    #[error("Janus refused: {code} {reason}")]
    Refused { code: i64, reason: String },
    #[error("Janus answered something unexpected: {0}")]
    Unexpected(String),
}

/// Requests waiting for their answer, by transaction: whether it is a
/// plugin message (its `ack` is not the answer), and where the answer goes.
type Pending = HashMap<String, (bool, oneshot::Sender<Value>)>;
type Handles = HashMap<u64, mpsc::Sender<Value>>;

struct Shared {
    out: mpsc::UnboundedSender<Value>,
    pending: std::sync::Mutex<Pending>,
    handles: std::sync::Mutex<Handles>,
    next: AtomicU64,
    secret: Option<String>,
}

/// A Janus session: dropping it ends the socket task, and Janus drops the
/// session (and its handles) once the keepalives stop.
pub struct Session {
    id: u64,
    shared: Arc<Shared>,
    closed: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A handle attached to a plugin, with the events Janus sends for it.
pub struct Handle {
    pub id: u64,
    session: u64,
    shared: Arc<Shared>,
    pub events: mpsc::Receiver<Value>,
}

impl Session {
    /// Connects to `url` (e.g. `ws://127.0.0.1:8188`) and creates a session;
    /// `secret` is Janus's `api_secret`, if it has one.
    pub async fn connect(url: &str, secret: Option<String>) -> Result<Self, Error> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static("janus-protocol"),
        );
        let (ws, _) = tokio::time::timeout(REQUEST_TIMEOUT, tokio_tungstenite::connect_async(req))
            .await
            .map_err(|_| Error::Timeout)??;
        let (out, out_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            out,
            pending: Default::default(),
            handles: Default::default(),
            next: AtomicU64::new(1),
            secret,
        });
        let (closed_tx, closed) = watch::channel(false);
        let task = tokio::spawn(run(ws, out_rx, shared.clone(), closed_tx));
        let created = request(&shared, json!({"janus": "create"})).await?;
        let id = data_id(&created)?;
        Ok(Self {
            id,
            shared,
            closed,
            task,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Attaches a handle to `plugin` (e.g. `janus.plugin.videoroom`).
    pub async fn attach(&self, plugin: &str) -> Result<Handle, Error> {
        let (tx, events) = mpsc::channel(HANDLE_EVENTS);
        let attached = request(
            &self.shared,
            json!({"janus": "attach", "session_id": self.id, "plugin": plugin}),
        )
        .await?;
        let id = data_id(&attached)?;
        lock(&self.shared.handles).insert(id, tx);
        Ok(Handle {
            id,
            session: self.id,
            shared: self.shared.clone(),
            events,
        })
    }

    /// Keeps the session alive until dropped (Janus's `session_timeout`).
    pub fn keep_alive(&self) -> tokio::task::JoinHandle<()> {
        let (shared, id) = (self.shared.clone(), self.id);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(KEEPALIVE_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                if request(&shared, json!({"janus": "keepalive", "session_id": id}))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    }

    /// Whether the socket to Janus is gone.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the socket to Janus is gone.
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        // An error means the task ended: closed as well.
        let _ = closed.wait_for(|c| *c).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Handle {
    /// A plugin request. Synchronous ones (`create`, `destroy`, `exists`...)
    /// answer with their `plugindata.data`; asynchronous ones (`join`,
    /// `configure`, `start`...) are acknowledged first and answered by an
    /// event: its `plugindata.data`, with the `jsep` if Janus sent one.
    pub async fn message(&self, body: Value, jsep: Option<Value>) -> Result<Reply, Error> {
        let mut msg = json!({
            "janus": "message",
            "session_id": self.session,
            "handle_id": self.id,
            "body": body,
        });
        if let Some(jsep) = jsep {
            msg["jsep"] = jsep;
        }
        let answer = request(&self.shared, msg).await?;
        let data = answer
            .pointer("/plugindata/data")
            .cloned()
            .ok_or_else(|| Error::Unexpected(answer.to_string()))?;
        if let Some(code) = data.get("error_code").and_then(Value::as_i64) {
            let reason = data["error"].as_str().unwrap_or_default().to_owned();
            return Err(Error::Refused { code, reason });
        }
        Ok(Reply {
            data,
            jsep: answer.get("jsep").cloned(),
        })
    }

    /// Sends one of the browser's candidates (`None`: gathering is complete).
    pub async fn trickle(&self, candidate: Option<Value>) -> Result<(), Error> {
        let candidate = candidate.unwrap_or_else(|| json!({"completed": true}));
        request(
            &self.shared,
            json!({"janus": "trickle", "session_id": self.session, "handle_id": self.id, "candidate": candidate}),
        )
        .await
        .map(drop)
    }

    /// Detaches the handle (its PeerConnection, if any, goes with it).
    pub async fn detach(self) -> Result<(), Error> {
        lock(&self.shared.handles).remove(&self.id);
        request(
            &self.shared,
            json!({"janus": "detach", "session_id": self.session, "handle_id": self.id}),
        )
        .await
        .map(drop)
    }
}

/// A plugin's answer: its data, and a session description if any.
#[derive(Debug)]
pub struct Reply {
    pub data: Value,
    pub jsep: Option<Value>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one is still sound.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn data_id(answer: &Value) -> Result<u64, Error> {
    answer
        .pointer("/data/id")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Unexpected(answer.to_string()))
}

/// Sends `msg` with a fresh transaction; the final answer (an `ack` is not
/// one, unless it is all a request gets, like `trickle` and `keepalive`).
async fn request(shared: &Shared, mut msg: Value) -> Result<Value, Error> {
    let transaction = shared.next.fetch_add(1, Ordering::Relaxed).to_string();
    msg["transaction"] = transaction.clone().into();
    if let Some(secret) = &shared.secret {
        msg["apisecret"] = secret.clone().into();
    }
    let (tx, rx) = oneshot::channel();
    let message = msg["janus"] == "message";
    lock(&shared.pending).insert(transaction.clone(), (message, tx));
    if shared.out.send(msg).is_err() {
        lock(&shared.pending).remove(&transaction);
        return Err(Error::Gone);
    }
    let answer = match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => return Err(Error::Gone),
        Err(_) => {
            lock(&shared.pending).remove(&transaction);
            return Err(Error::Timeout);
        }
    };
    match answer["janus"].as_str() {
        Some("success" | "event" | "ack") => Ok(answer),
        Some("error") => Err(Error::Refused {
            code: answer
                .pointer("/error/code")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            reason: answer
                .pointer("/error/reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }),
        _ => Err(Error::Unexpected(answer.to_string())),
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The socket's task: writes what the session sends, routes what Janus
/// says, and on the way out fails everything still waiting.
async fn run(
    ws: Ws,
    mut out: mpsc::UnboundedReceiver<Value>,
    shared: Arc<Shared>,
    closed: watch::Sender<bool>,
) {
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            msg = out.recv() => {
                let Some(msg) = msg else { break };
                if sink.send(Message::text(msg.to_string())).await.is_err() {
                    break;
                }
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(msg) = serde_json::from_str::<Value>(&text) else {
                    tracing::warn!("janus: not JSON: {text}");
                    continue;
                };
                route(&shared, msg);
            }
        }
    }
    lock(&shared.pending).clear();
    lock(&shared.handles).clear();
    let _ = closed.send(true);
}

fn route(shared: &Shared, msg: Value) {
    if let Some(t) = msg["transaction"].as_str() {
        let mut pending = lock(&shared.pending);
        // The ack of a plugin message: its event follows.
        let early_ack =
            msg["janus"] == "ack" && pending.get(t).is_some_and(|(message, _)| *message);
        if !early_ack && let Some((_, tx)) = pending.remove(t) {
            let _ = tx.send(msg);
        }
        return;
    }
    // Unprompted: for the handle named in `sender`.
    let Some(handle) = msg["sender"].as_u64() else {
        return;
    };
    let mut handles = lock(&shared.handles);
    let Some(tx) = handles.get(&handle) else {
        return;
    };
    // Never wait on one handle's reader: the socket serves them all.
    match tx.try_send(msg) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(msg)) => {
            tracing::warn!(
                handle,
                "janus: an event dropped, its handle is not reading: {msg}"
            );
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            handles.remove(&handle);
        }
    }
}
