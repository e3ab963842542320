//! The workloads. Each takes a running server ([`Target`]) and a spec,
//! connects its own peers, measures, and returns plain numbers; starting
//! servers and repeating runs is the caller's business.
//!
//! - [`throughput`]: closed loop. Pairs of peers bounce direct messages,
//!   `in_flight` per pair: the forwarded rate the server sustains.
//! - [`open_loop`]: messages go out on a fixed schedule whatever comes
//!   back, each stamped with the time it was *due*, so a server that falls
//!   behind is charged for the whole delay (no coordinated omission). With
//!   [`Extra::Stuck`], one more peer in room 0 never reads.
//! - [`idle`]: many peers connect and join, then sit: upgrades/s while
//!   connecting, server memory per connection once they are in.

use crate::client::{Clock, Dial, Peer, Target, Ws, join};
use crate::procstat::{Sample, Usage, rss};
use crate::proto::{Template, stamp};
use crate::stats::Latency;
use anyhow::bail;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _, TryStreamExt as _};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Peers connecting at once while a workload sets up.
const SETUP_CONCURRENCY: usize = 64;

/// The measured part of a run, in [`Clock`] nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Window {
    clock: Clock,
    start: u64,
    end: u64,
}

impl Window {
    fn after(warmup: Duration, duration: Duration) -> Self {
        let clock = Clock::start();
        let start = clock.now_ns() + nanos(warmup);
        Self {
            clock,
            start,
            end: start + nanos(duration),
        }
    }

    fn contains(&self, ns: u64) -> bool {
        (self.start..self.end).contains(&ns)
    }

    fn at(&self, ns: u64) -> tokio::time::Instant {
        self.clock.instant(ns).into()
    }

    fn secs(&self) -> f64 {
        (self.end - self.start) as f64 / 1e9
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What one peer saw.
#[derive(Debug, Default)]
struct Tally {
    /// Messages it sent to measured peers (open loop only).
    sent: u64,
    received: u64,
    latencies: Vec<u64>,
    /// Open loop: how late each message left the generator (flushed minus
    /// due), to tell the generator's delays from the server's.
    lags: Vec<u64>,
}

impl Tally {
    fn record(&mut self, sent_ns: u64, now_ns: u64) {
        self.received += 1;
        self.latencies.push(now_ns.saturating_sub(sent_ns));
    }

    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.received += other.received;
        self.latencies.extend(other.latencies);
        self.lags.extend(other.lags);
    }
}

/// The stamp of a forwarded message, `None` for frames to skip; an error
/// if the server closed or broke the connection.
fn payload(frame: Option<Result<Message, WsError>>) -> anyhow::Result<Option<u64>> {
    match frame {
        Some(Ok(Message::Text(text))) => Ok(stamp(text.as_str())),
        Some(Ok(Message::Close(frame))) => bail!("the server closed a busy peer: {frame:?}"),
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => Err(e.into()),
        None => bail!("the server dropped a busy peer"),
    }
}

/// Connects `rooms` rooms of `size` peers, room by room in join order.
async fn connect_rooms(
    target: &Target,
    prefix: &str,
    rooms: usize,
    size: usize,
    dial: Dial,
) -> anyhow::Result<Vec<Vec<Peer>>> {
    let peers: Vec<Peer> = futures_util::stream::iter(0..rooms * size)
        .map(|i| {
            let room = format!("{prefix}{}", i / size);
            let hint = format!("{prefix}{}x{}", i / size, i % size);
            async move { join(target, &room, &hint, dial).await }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let mut peers = peers.into_iter();
    Ok((0..rooms)
        .map(|_| peers.by_ref().take(size).collect())
        .collect())
}

#[derive(Clone, Debug)]
pub struct ThroughputSpec {
    pub pairs: usize,
    /// Messages in flight per pair.
    pub in_flight: usize,
    pub payload: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

#[derive(Clone, Debug)]
pub struct ThroughputResult {
    /// Messages forwarded (received by a peer) inside the window.
    pub forwarded: u64,
    pub per_sec: f64,
    /// Send to receive, per message; in a closed loop this is mostly time
    /// queued behind the other messages in flight.
    pub latency: Latency,
    pub usage: Usage,
}

/// Closed loop: in each pair A primes `in_flight` messages to B, and every
/// message received is answered with a new one to the sender's partner.
pub async fn throughput(
    target: &Target,
    spec: &ThroughputSpec,
) -> anyhow::Result<ThroughputResult> {
    let rooms = connect_rooms(target, "tp", spec.pairs, 2, Dial::BUSY).await?;
    let window = Window::after(spec.warmup, spec.duration);
    let mut tasks = Vec::new();
    for room in rooms {
        let [a, b]: [Peer; 2] = room
            .try_into()
            .map_err(|_| anyhow::anyhow!("a pair is two peers"))?;
        let to_b = target.kind.template(&b.id, spec.payload);
        let to_a = target.kind.template(&a.id, spec.payload);
        tasks.push(tokio::spawn(bounce(a.ws, to_b, spec.in_flight, window)));
        tasks.push(tokio::spawn(bounce(b.ws, to_a, 0, window)));
    }
    sleep_until(window.at(window.start)).await;
    let before = Sample::take(target.pid);
    sleep_until(window.at(window.end)).await;
    let after = Sample::take(target.pid);
    let mut all = Tally::default();
    for task in tasks {
        all.merge(task.await??);
    }
    Ok(ThroughputResult {
        forwarded: all.received,
        per_sec: all.received as f64 / window.secs(),
        latency: Latency::new(all.latencies, 0),
        usage: before.until(&after),
    })
}

/// One side of a pair: answers every message it gets until the window ends.
/// Replies to a batch of reads go out with one flush.
async fn bounce(
    mut ws: Ws,
    reply: Template,
    prime: usize,
    window: Window,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    for _ in 0..prime {
        ws.feed(Message::text(reply.frame(window.clock.now_ns())))
            .await?;
    }
    ws.flush().await?;
    let stop = sleep_until(window.at(window.end));
    tokio::pin!(stop);
    loop {
        let first = tokio::select! {
            frame = ws.next() => frame,
            () = &mut stop => return Ok(tally),
        };
        let mut next = Some(first);
        while let Some(frame) = next {
            if let Some(sent) = payload(frame)? {
                let now = window.clock.now_ns();
                if window.contains(now) {
                    tally.record(sent, now);
                }
                ws.feed(Message::text(reply.frame(now))).await?;
            }
            next = ws.next().now_or_never();
        }
        ws.flush().await?;
    }
}

/// One more peer in room 0, which gets half of its roommates' messages
/// (they alternate between it and each other), so that when it stops
/// reading it backs up within seconds, not minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extra {
    /// It reads like everyone else (the baseline for `Stuck`).
    Reading,
    /// It never reads, with a small receive buffer so it backs up quickly.
    Stuck,
}

#[derive(Clone, Debug)]
pub struct OpenLoopSpec {
    pub rooms: usize,
    pub room_size: usize,
    /// Messages per second offered, in total, spread evenly over all senders.
    pub rate: f64,
    pub payload: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// How long after the window messages may still arrive before they
    /// count as lost.
    pub drain: Duration,
    pub extra: Option<Extra>,
}

#[derive(Clone, Debug)]
pub struct OpenLoopResult {
    /// Every measured receiver (all but the extra peer).
    pub latency: Latency,
    /// The extra peer's roommates only (with an extra peer).
    pub neighbours: Option<Latency>,
    /// How late messages left the generator (flushed minus due): if this is
    /// close to `latency`, the generator, not the server, was behind.
    pub send_lag: Latency,
    /// Messages due inside the window, per second.
    pub offered: f64,
    pub usage: Usage,
    /// Server RSS at the end of the window minus at its start.
    pub rss_growth: Option<i64>,
    /// Whether the server disconnected the stuck peer.
    pub extra_dropped: Option<bool>,
}

/// Open loop: a pacer thread hands each sender the due times of its
/// messages; senders stamp each message with its due time and send it to
/// their roommates in turn; receivers record `arrival - due`.
pub async fn open_loop(target: &Target, spec: &OpenLoopSpec) -> anyhow::Result<OpenLoopResult> {
    let mut rooms = connect_rooms(target, "ol", spec.rooms, spec.room_size, Dial::BUSY).await?;
    let extra = match spec.extra {
        None => None,
        Some(mode) => {
            let dial = Dial {
                recv_buffer: (mode == Extra::Stuck).then_some(4096),
                ..Dial::BUSY
            };
            Some((mode, join(target, "ol0", "olextra", dial).await?))
        }
    };
    let window = Window::after(spec.warmup, spec.duration);
    let drain_end = window.end + nanos(spec.drain);

    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for (r, room) in rooms.iter_mut().enumerate() {
        let ids: Vec<String> = room.iter().map(|p| p.id.clone()).collect();
        for (i, peer) in room.drain(..).enumerate() {
            let mut targets: Vec<(Template, bool)> = Vec::new();
            for (_, id) in ids.iter().enumerate().filter(|&(j, _)| j != i) {
                targets.push((target.kind.template(id, spec.payload), true));
                if r == 0
                    && let Some((_, extra)) = &extra
                {
                    targets.push((target.kind.template(&extra.id, spec.payload), false));
                }
            }
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            let run = paced(peer.ws, targets, rx, window, drain_end);
            tasks.push((r == 0, tokio::spawn(run)));
        }
    }
    // The extra peer is not measured: if it reads, it reads and discards.
    let (extra_mode, mut extra_ws) = match extra {
        Some((Extra::Reading, peer)) => {
            let stop = window.at(drain_end);
            tokio::spawn(discard(peer.ws, stop));
            (Some(Extra::Reading), None)
        }
        Some((Extra::Stuck, peer)) => (Some(Extra::Stuck), Some(peer.ws)),
        None => (None, None),
    };

    let pacer = pace(senders, spec.rate, window);
    sleep_until(window.at(window.start)).await;
    let before = Sample::take(target.pid);
    let rss_before = target.pid.and_then(rss);
    sleep_until(window.at(window.end)).await;
    let after = Sample::take(target.pid);
    let rss_after = target.pid.and_then(rss);

    let mut all = Tally::default();
    let mut neighbours = Tally::default();
    for (in_room_0, task) in tasks {
        let tally = task.await??;
        if in_room_0 && extra_mode.is_some() {
            neighbours.sent += tally.sent;
            neighbours.received += tally.received;
            neighbours.latencies.extend_from_slice(&tally.latencies);
        }
        all.merge(tally);
    }
    let due = tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    let extra_dropped = match extra_ws.take() {
        Some(ws) => Some(was_dropped(ws, spec.drain.max(Duration::from_secs(1))).await),
        None => None,
    };
    let lost = |t: &Tally| usize::try_from(t.sent.saturating_sub(t.received)).unwrap_or(0);
    Ok(OpenLoopResult {
        latency: Latency::new(all.latencies.clone(), lost(&all)),
        send_lag: Latency::new(all.lags.clone(), 0),
        neighbours: extra_mode.map(|_| {
            let lost = lost(&neighbours);
            Latency::new(neighbours.latencies, lost)
        }),
        offered: due as f64 / window.secs(),
        usage: before.until(&after),
        rss_growth: rss_before
            .zip(rss_after)
            .map(|(a, b)| i64::try_from(b).unwrap_or(i64::MAX) - i64::try_from(a).unwrap_or(0)),
        extra_dropped,
    })
}

/// The schedule, on its own thread because tokio's timers tick in whole
/// milliseconds. Message `j` is due at `j / rate` after the warm-up starts
/// and goes to sender `j mod n`; a due time is handed over once it has
/// passed, so any lateness here (sleep slack, a busy core) is charged to
/// the measured latency. Returns how many messages were due in the window.
fn pace(
    senders: Vec<mpsc::UnboundedSender<u64>>,
    rate: f64,
    window: Window,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let begin = window.clock.now_ns();
        let interval = 1e9 / rate.max(1e-3);
        let mut in_window = 0;
        for j in 0u64.. {
            let due = begin + (j as f64 * interval) as u64;
            if due >= window.end || senders.is_empty() {
                break;
            }
            let now = window.clock.now_ns();
            if due > now {
                std::thread::sleep(Duration::from_nanos(due - now));
            }
            let to = &senders[(j % senders.len() as u64) as usize];
            if to.send(due).is_ok() && window.contains(due) {
                in_window += 1;
            }
        }
        in_window
    })
}

/// One paced peer: sends what the pacer hands it, round robin over
/// `targets` (`true` = a measured receiver), and records what it receives,
/// until `drain_end`.
async fn paced(
    mut ws: Ws,
    targets: Vec<(Template, bool)>,
    mut due: mpsc::UnboundedReceiver<u64>,
    window: Window,
    drain_end: u64,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut turn = 0;
    let mut pacing = true;
    let stop = sleep_until(window.at(drain_end));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(tally),
            first = due.recv(), if pacing => {
                let Some(first) = first else {
                    pacing = false;
                    continue;
                };
                let mut next = Some(first);
                let mut batch = Vec::new();
                while let Some(at) = next {
                    let Some((template, measured)) = targets.get(turn % targets.len().max(1)) else {
                        break;
                    };
                    turn += 1;
                    if window.contains(at) {
                        batch.push(at);
                        tally.sent += u64::from(*measured);
                    }
                    ws.feed(Message::text(template.frame(at))).await?;
                    next = due.try_recv().ok();
                }
                ws.flush().await?;
                let now = window.clock.now_ns();
                tally.lags.extend(batch.iter().map(|&at| now.saturating_sub(at)));
            }
            first = ws.next() => {
                let mut next = Some(first);
                while let Some(frame) = next {
                    if let Some(sent) = payload(frame)?
                        && window.contains(sent)
                    {
                        tally.record(sent, window.clock.now_ns());
                    }
                    next = ws.next().now_or_never();
                }
            }
        }
    }
}

/// Reads and throws away until `stop` (or the connection ends).
async fn discard(mut ws: Ws, stop: tokio::time::Instant) {
    let until = sleep_until(stop);
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return,
            frame = ws.next() => if !matches!(frame, Some(Ok(_))) { return },
        }
    }
}

/// Reads what a stuck peer has waiting; `true` if the server had closed it.
async fn was_dropped(mut ws: Ws, patience: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[derive(Clone, Debug)]
pub struct IdleSpec {
    pub conns: usize,
    pub room_size: usize,
    /// Connections being set up at once.
    pub concurrency: usize,
    /// Wait after the last join before reading the server's memory.
    pub settle: Duration,
}

#[derive(Clone, Debug)]
pub struct IdleResult {
    pub conns: usize,
    /// Connect + upgrade + join + welcome, per second, at `concurrency`.
    pub upgrades_per_sec: f64,
    /// CPU while connecting.
    pub usage: Usage,
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
}

impl IdleResult {
    /// Server memory per connection, in bytes.
    pub fn per_conn(&self) -> Option<f64> {
        let (before, after) = self.rss_before.zip(self.rss_after)?;
        Some((after as f64 - before as f64) / self.conns.max(1) as f64)
    }
}

/// Connects `conns` peers in rooms of `room_size`, keeps them open (each
/// read by a task that answers pings), and measures the server.
pub async fn idle(target: &Target, spec: &IdleSpec) -> anyhow::Result<IdleResult> {
    let rss_before = target.pid.and_then(rss);
    let before = Sample::take(target.pid);
    let peers: Vec<Peer> = futures_util::stream::iter(0..spec.conns)
        .map(|i| {
            let room = format!("idle{}", i / spec.room_size.max(1));
            let hint = format!("idle{i}");
            async move { join(target, &room, &hint, Dial::IDLE).await }
        })
        .buffer_unordered(spec.concurrency.max(1))
        .try_collect()
        .await?;
    let after = Sample::take(target.pid);
    let usage = before.until(&after);
    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
    let readers: Vec<_> = peers
        .into_iter()
        .map(|p| tokio::spawn(discard(p.ws, far)))
        .collect();
    tokio::time::sleep(spec.settle).await;
    let rss_after = target.pid.and_then(rss);
    let alive = readers.iter().filter(|r| !r.is_finished()).count();
    for r in &readers {
        r.abort();
    }
    if alive < spec.conns {
        bail!(
            "{} of {} idle connections were closed by the server",
            spec.conns - alive,
            spec.conns
        );
    }
    Ok(IdleResult {
        conns: spec.conns,
        upgrades_per_sec: spec.conns as f64 / usage.wall.as_secs_f64().max(1e-9),
        usage,
        rss_before,
        rss_after,
    })
}

/// Waits until `addr` accepts TCP connections, up to `patience`.
pub async fn wait_listening(addr: std::net::SocketAddr, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
