//! The benchmark driver: starts a fresh server per measurement, runs every
//! workload against meshcast and PeerJS in turn, repeats, and prints the
//! medians, their range, the ratios, what limited each number, and the goals.
//! `scripts/bench.sh` is the one command that sets it all up.

use anyhow::{Context as _, bail};
use bench::procstat::open_files_limit;
use bench::proto::Kind;
use bench::report::{Report, Unit, value};
use bench::server::{Launcher, RELAY_FLAGS};
use bench::stats::{Latency, secs};
use bench::workload::{Extra, IdleSpec, OpenLoopSpec, ThroughputSpec, idle, open_loop, throughput};
use clap::Parser as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Parser, Debug)]
#[command(
    name = "meshcast-bench",
    about = "Load-tests the meshcast relay against the PeerJS server on 127.0.0.1"
)]
struct Cli {
    /// The relay binary (cargo build --release -p relay).
    #[arg(long, default_value = "target/release/meshcast-relay")]
    relay: PathBuf,
    /// Directory holding server.mjs and node_modules/peer (npm ci).
    #[arg(long, default_value = "bench/peerjs")]
    peerjs_dir: PathBuf,
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Servers to measure.
    #[arg(long, value_delimiter = ',', default_value = "meshcast,peerjs")]
    servers: Vec<Kind>,
    /// Pin the servers to these CPUs (`taskset -c`); pin this generator
    /// elsewhere yourself (scripts/bench.sh does both).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Run the servers under this command, for profiling, e.g.
    /// "valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p".
    #[arg(long, value_delimiter = ' ')]
    server_prefix: Vec<String>,
    /// Workloads to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "throughput,latency,stuck,idle"
    )]
    workloads: Vec<Workload>,
    /// Repetitions of every measurement (medians and ranges are over these).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measured time of each timed run.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load before measuring starts.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// After an open-loop run, how long late messages may still arrive
    /// before they count as lost.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// Bytes of SDP-like payload per message.
    #[arg(long, default_value_t = 256)]
    payload: usize,
    /// Pairs of peers (one room each) for the throughput and latency runs.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Messages in flight per pair in the closed-loop throughput run.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Offered rates (messages/s, in total) for the open-loop latency runs.
    #[arg(long, value_delimiter = ',', default_value = "5000,20000")]
    rates: Vec<f64>,
    /// Offered rate in the stuck-peer runs (PeerJS saturates near 10k/s
    /// of 4 KiB messages on one core, which would hide the stuck peer).
    #[arg(long, default_value_t = 5000.0)]
    stuck_rate: f64,
    /// Payload in the stuck-peer runs: an SDP offer's size, so the stuck
    /// peer's buffers fill within the run.
    #[arg(long, default_value_t = 4096)]
    stuck_payload: usize,
    /// Rooms in the stuck-peer runs (room 0 gets the extra peer).
    #[arg(long, default_value_t = 10)]
    stuck_rooms: usize,
    #[arg(long, default_value_t = 4)]
    stuck_room_size: usize,
    /// Idle connections to hold, one fresh server per count.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    idle: Vec<usize>,
    /// Peers per room for the idle connections.
    #[arg(long, default_value_t = 8)]
    idle_room_size: usize,
    /// Connections being set up at once in the idle/upgrade runs.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Wait after the last idle connection joined before reading RSS.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Small sizes for a check in well under a minute (overrides the sizes above).
    #[arg(long)]
    quick: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    Throughput,
    Latency,
    Stuck,
    Idle,
}

impl Cli {
    fn quick(mut self) -> Self {
        if self.quick {
            self.runs = 1;
            self.duration = Duration::from_secs(2);
            self.warmup = Duration::from_millis(500);
            self.drain = Duration::from_millis(500);
            self.pairs = 10;
            self.rates = vec![2000.0];
            self.stuck_rate = 2000.0;
            self.stuck_rooms = 4;
            self.idle = vec![200, 1000];
            self.settle = Duration::from_secs(1);
        }
        self
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse().quick();
    // One thread: the script pins this process to one core, and the pacer of
    // the open-loop runs has its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let need = cli.idle.iter().max().copied().unwrap_or(0) as u64 + 256;
    if let Some(limit) = open_files_limit()
        && limit < need
    {
        bail!(
            "open files limit {limit} < {need}: run `ulimit -n {need}` first (scripts/bench.sh does)"
        );
    }
    let launcher = Launcher {
        relay: cli.relay.clone(),
        peerjs_dir: cli.peerjs_dir.clone(),
        node: cli.node.clone(),
        cpus: cli.server_cpus.clone(),
        prefix: cli.server_prefix.clone(),
    };
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| cli.servers.contains(k))
        .collect();
    eprintln!(
        "meshcast-bench: {} run(s) of {:?} against {}; relay flags: {}; PeerJS {}",
        cli.runs,
        cli.workloads,
        kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(" and "),
        RELAY_FLAGS.join(" "),
        launcher
            .peerjs_version()
            .as_deref()
            .unwrap_or("(not installed)"),
    );

    let mut report = Report::default();
    let mut failures = Vec::new();
    for run in 1..=cli.runs {
        // Alternate who goes first, so a drift in the machine hits both.
        let mut order = kinds.clone();
        if run % 2 == 0 {
            order.reverse();
        }
        for &workload in &cli.workloads {
            for &kind in &order {
                eprintln!("run {run}/{}: {workload:?} on {}", cli.runs, kind.name());
                if let Err(e) = measure(workload, kind, &launcher, &cli, &mut report).await {
                    eprintln!("  FAILED: {e:#}");
                    failures.push(format!("run {run}, {workload:?} on {}: {e:#}", kind.name()));
                }
            }
        }
    }

    println!(
        "\nrelay: {} {}\nPeerJS: peer {} (bench/peerjs/server.mjs: concurrent_limit raised)",
        cli.relay.display(),
        RELAY_FLAGS.join(" "),
        launcher.peerjs_version().as_deref().unwrap_or("?")
    );
    println!(
        "\n## Results (median (min–max) of {} run(s); servers on {}, payload {} B)\n",
        cli.runs,
        cli.server_cpus
            .as_deref()
            .map_or_else(|| "any CPU".to_owned(), |c| format!("CPU {c}")),
        cli.payload
    );
    println!("{}", report.table(&kinds));
    println!("## CPU (share of one core, median) and what limited each number\n");
    println!("{}", report.loads_table(&kinds));
    if kinds.len() == 2 {
        println!("## Goals\n");
        println!("{}", goals(&report, &cli));
    }
    if !failures.is_empty() {
        println!("## Failures\n");
        for f in &failures {
            println!("- {f}");
        }
    }
    Ok(())
}

fn throughput_label(cli: &Cli) -> String {
    format!(
        "forwarded msg/s, closed loop ({} pairs × {} in flight)",
        cli.pairs, cli.in_flight
    )
}

fn rate_label(rate: f64) -> String {
    value(Unit::Rate, rate)
}

async fn measure(
    workload: Workload,
    kind: Kind,
    launcher: &Launcher,
    cli: &Cli,
    report: &mut Report,
) -> anyhow::Result<()> {
    match workload {
        Workload::Throughput => {
            let server = launcher.start(kind).await?;
            let spec = ThroughputSpec {
                pairs: cli.pairs,
                in_flight: cli.in_flight,
                payload: cli.payload,
                warmup: cli.warmup,
                duration: cli.duration,
            };
            let r = throughput(&server.target, &spec).await?;
            drop(server);
            eprintln!(
                "  {} forwarded/s, p99 {}, server {:?}, generator {:?}",
                value(Unit::Rate, r.per_sec),
                value(Unit::Secs, secs(r.latency.p99)),
                r.usage.server_load(),
                r.usage.generator_load()
            );
            report.add(&throughput_label(cli), Unit::Rate, kind, Some(r.per_sec));
            latency_rows(report, "closed loop", kind, &r.latency);
            report.add(
                "server CPU per forwarded msg, closed loop",
                Unit::Secs,
                kind,
                r.usage.server_per(r.forwarded).map(|d| d.as_secs_f64()),
            );
            report.load(
                "throughput (closed loop)",
                "messages in flight (latency-bound)",
                kind,
                &r.usage,
            );
        }
        Workload::Latency => {
            for &rate in &cli.rates {
                let server = launcher.start(kind).await?;
                let spec = OpenLoopSpec {
                    rooms: cli.pairs,
                    room_size: 2,
                    rate,
                    payload: cli.payload,
                    warmup: cli.warmup,
                    duration: cli.duration,
                    drain: cli.drain,
                    extra: None,
                };
                let r = open_loop(&server.target, &spec).await?;
                drop(server);
                let at = format!("@ {} offered", rate_label(rate));
                eprintln!(
                    "  {at}: p50 {} p99 {} p99.9 {}, {} lost; generator send lag p99 {}; server CPU {:?}",
                    value(Unit::Secs, secs(r.latency.p50)),
                    value(Unit::Secs, secs(r.latency.p99)),
                    value(Unit::Secs, secs(r.latency.p999)),
                    r.latency.lost,
                    value(Unit::Secs, secs(r.send_lag.p99)),
                    r.usage.server_load()
                );
                latency_rows(report, &at, kind, &r.latency);
                report.add(
                    &format!("generator send lag p99 {at} (its own delay, included above)"),
                    Unit::Secs,
                    kind,
                    Some(secs(r.send_lag.p99)),
                );
                report.add(
                    &format!("server CPU per forwarded msg {at}"),
                    Unit::Secs,
                    kind,
                    r.usage
                        .server_per(r.latency.received as u64)
                        .map(|d| d.as_secs_f64()),
                );
                report.load(
                    &format!("open loop {at}"),
                    "the offered rate (open loop)",
                    kind,
                    &r.usage,
                );
            }
        }
        Workload::Stuck => {
            for extra in [Extra::Reading, Extra::Stuck] {
                let server = launcher.start(kind).await?;
                let spec = OpenLoopSpec {
                    rooms: cli.stuck_rooms,
                    room_size: cli.stuck_room_size,
                    rate: cli.stuck_rate,
                    payload: cli.stuck_payload,
                    warmup: cli.warmup,
                    duration: cli.duration,
                    drain: cli.drain,
                    extra: Some(extra),
                };
                let r = open_loop(&server.target, &spec).await?;
                drop(server);
                let mode = match extra {
                    Extra::Reading => "every peer reading",
                    Extra::Stuck => "one peer stuck",
                };
                let at = format!(
                    "@ {} of {} B, {mode}",
                    rate_label(cli.stuck_rate),
                    cli.stuck_payload
                );
                eprintln!(
                    "  {at}: p99 others {}, p99 its roommates {}, send lag p99 {}, dropped {:?}, server RSS +{:?}",
                    value(Unit::Secs, secs(r.latency.p99)),
                    value(Unit::Secs, secs(r.neighbours.as_ref().and_then(|l| l.p99))),
                    value(Unit::Secs, secs(r.send_lag.p99)),
                    r.extra_dropped,
                    r.rss_growth
                );
                report.add(
                    &format!("p99, all other peers {at}"),
                    Unit::Secs,
                    kind,
                    Some(secs(r.latency.p99)),
                );
                report.add(
                    &format!("p99, the extra peer's roommates {at}"),
                    Unit::Secs,
                    kind,
                    Some(secs(r.neighbours.as_ref().and_then(|l| l.p99))),
                );
                report.add(
                    &format!("server RSS growth over the run {at}"),
                    Unit::Bytes,
                    kind,
                    r.rss_growth.map(|b| b as f64),
                );
                if extra == Extra::Stuck {
                    report.add(
                        "stuck peer disconnected by the server",
                        Unit::YesNo,
                        kind,
                        r.extra_dropped.map(|d| if d { 1.0 } else { 0.0 }),
                    );
                }
                report.load(
                    &format!("open loop {at}"),
                    "the offered rate (open loop)",
                    kind,
                    &r.usage,
                );
            }
        }
        Workload::Idle => {
            for &conns in &cli.idle {
                let server = launcher.start(kind).await?;
                // Let the fresh process settle before its baseline.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let spec = IdleSpec {
                    conns,
                    room_size: cli.idle_room_size,
                    concurrency: cli.connect_concurrency,
                    settle: cli.settle,
                };
                let r = idle(&server.target, &spec).await?;
                drop(server);
                eprintln!(
                    "  {conns} idle: {} per connection, {} total, {} upgrades/s",
                    r.per_conn()
                        .map_or_else(|| "?".into(), |b| value(Unit::Bytes, b)),
                    r.rss_after
                        .map_or_else(|| "?".into(), |b| value(Unit::Bytes, b as f64)),
                    value(Unit::Rate, r.upgrades_per_sec)
                );
                report.add(
                    &format!("server RSS per idle connection, {conns} joined"),
                    Unit::Bytes,
                    kind,
                    r.per_conn(),
                );
                report.add(
                    &format!("server RSS with {conns} idle connections"),
                    Unit::Bytes,
                    kind,
                    r.rss_after.map(|b| b as f64),
                );
                report.add(
                    &format!(
                        "upgrades/s (connect+join+welcome, {} at once), {conns} peers",
                        cli.connect_concurrency
                    ),
                    Unit::Rate,
                    kind,
                    Some(r.upgrades_per_sec),
                );
                report.add(
                    &format!("server CPU per upgrade, {conns} peers"),
                    Unit::Secs,
                    kind,
                    r.usage.server_per(conns as u64).map(|d| d.as_secs_f64()),
                );
                report.load(
                    &format!("connecting {conns} peers"),
                    "connect concurrency",
                    kind,
                    &r.usage,
                );
            }
        }
    }
    Ok(())
}

fn latency_rows(report: &mut Report, at: &str, kind: Kind, l: &Latency) {
    for (name, v) in [("p50", l.p50), ("p99", l.p99), ("p99.9", l.p999)] {
        report.add(
            &format!("latency {name} {at}"),
            Unit::Secs,
            kind,
            Some(secs(v)),
        );
    }
}

/// The goals, each checked against the medians.
fn goals(report: &Report, cli: &Cli) -> String {
    let mut out = String::new();
    let mut line = |goal: &str, verdict: Option<(bool, String)>| {
        let (mark, detail) = match verdict {
            Some((true, d)) => ("MET", d),
            Some((false, d)) => ("MISSED", d),
            None => ("not measured", String::new()),
        };
        out.push_str(&format!("- {goal}: **{mark}** {detail}\n"));
    };
    let med = |label: &str, kind: Kind| report.summary(label, kind).map(|s| s.median);
    let both = |label: &str| med(label, Kind::Meshcast).zip(med(label, Kind::PeerJs));

    let tp = both(&throughput_label(cli));
    let p99 = both("latency p99 closed loop");
    line(
        ">= 5x PeerJS's forwarded msg/s at equal or better p99",
        tp.zip(p99).map(|((m, p), (ml, pl))| {
            (
                m >= 5.0 * p && ml <= pl,
                format!(
                    "({:.2}x: {} vs {}; closed-loop p99 {} vs {})",
                    m / p,
                    value(Unit::Rate, m),
                    value(Unit::Rate, p),
                    value(Unit::Secs, ml),
                    value(Unit::Secs, pl)
                ),
            )
        }),
    );
    let biggest = cli.idle.iter().max().copied().unwrap_or(0);
    let per_conn = both(&format!("server RSS per idle connection, {biggest} joined"));
    line(
        &format!(
            "<= 1/4 of PeerJS's memory per idle connection and <= 16 KiB ({biggest} connections)"
        ),
        per_conn.map(|(m, p)| {
            (
                m <= p / 4.0 && m <= 16.0 * 1024.0,
                format!(
                    "({} vs {}, {:.2}x)",
                    value(Unit::Bytes, m),
                    value(Unit::Bytes, p),
                    m / p
                ),
            )
        }),
    );
    let at_20k = cli
        .rates
        .contains(&20_000.0)
        .then(|| med("latency p99 @ 20.0k/s offered", Kind::Meshcast))
        .flatten();
    line(
        "p99 <= 2 ms at 20k msg/s",
        at_20k.map(|p| (p <= 0.002, format!("({})", value(Unit::Secs, p)))),
    );
    let total = cli
        .idle
        .contains(&10_000)
        .then(|| med("server RSS with 10000 idle connections", Kind::Meshcast))
        .flatten();
    line(
        "10k idle connections in < 200 MiB",
        total.map(|b| {
            (
                b < 200.0 * 1024.0 * 1024.0,
                format!("({})", value(Unit::Bytes, b)),
            )
        }),
    );
    out
}
