//! Floods the relay's embedded TURN server with requests it cannot
//! authenticate, from many source ports, and prints the relay's memory while
//! it lasts: it must stay flat (relay/src/turn/gate.rs). Two kinds of
//! request, each of which makes webrtc-rs's bare server remember a new nonce
//! per request: Allocate without credentials (answered 401), and Allocate
//! with a made-up nonce and a MESSAGE-INTEGRITY (answered 438).
//!
//!   cargo build --release -p relay -p bench
//!   target/release/turn-flood [--seconds 20] [--sockets 256]

use anyhow::{Context as _, bail};
use bench::procstat::{cpu, rss};
use clap::Parser as _;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Parser, Debug)]
#[command(
    name = "turn-flood",
    about = "Unauthenticated TURN flood against the embedded server; prints the relay's RSS"
)]
struct Cli {
    #[arg(long, default_value = "target/release/meshcast-relay")]
    relay: PathBuf,
    /// How long to flood.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Source ports to spread the flood over (each a distinct 5-tuple).
    #[arg(long, default_value_t = 256)]
    sockets: usize,
    /// Pin the relay to these CPUs (`taskset -c`).
    #[arg(long)]
    server_cpus: Option<String>,
}

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port(udp: bool) -> anyhow::Result<u16> {
    Ok(if udp {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port()
    } else {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port()
    })
}

/// One counter from the relay's /metrics.
fn metric(http: SocketAddr, name: &str) -> anyhow::Result<f64> {
    let mut tcp = TcpStream::connect(http)?;
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    tcp.read_to_string(&mut body)?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}

/// An Allocate request: bare, or with a nonce the server never issued and a
/// (meaningless) MESSAGE-INTEGRITY.
fn allocate(txid: u64, with_nonce: bool) -> Vec<u8> {
    let mut m = vec![0x00, 0x03, 0, 0, 0x21, 0x12, 0xA4, 0x42];
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&txid.to_be_bytes());
    if with_nonce {
        let nonce = format!("{txid:016x}");
        m.extend_from_slice(&[0x00, 0x15, 0, nonce.len() as u8]); // NONCE
        m.extend_from_slice(nonce.as_bytes());
        m.extend_from_slice(&[0x00, 0x08, 0, 20]); // MESSAGE-INTEGRITY
        m.extend_from_slice(&[0; 20]);
    }
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.relay.is_file() {
        bail!(
            "no relay at {} (cargo build --release -p relay)",
            cli.relay.display()
        );
    }
    let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(false)?));
    let turn = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(true)?));
    let mut cmd = match &cli.server_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(&cli.relay);
            c
        }
        None => Command::new(&cli.relay),
    };
    cmd.args(["--listen", &http.to_string(), "--stun", "none"])
        .args([
            "--turn-listen",
            &turn.to_string(),
            "--turn-ports",
            "50000-50999",
        ])
        .arg("--dist")
        .arg(std::env::temp_dir().join("meshcast-bench-no-dist"))
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let relay = Relay(cmd.spawn().context("starting the relay")?);
    let pid = relay.0.id();
    let up = Instant::now();
    while TcpStream::connect(http).is_err() {
        if up.elapsed() > Duration::from_secs(10) {
            bail!("the relay is not listening on {http}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    let sockets: Vec<UdpSocket> = (0..cli.sockets)
        .map(|_| {
            let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect::<std::io::Result<_>>()?;
    let rss_mib = || rss(pid).map_or(f64::NAN, |b| b as f64 / 1_048_576.0);
    let cpu0 = cpu(pid).unwrap_or_default();
    let before = rss_mib();
    println!("relay pid {pid}, TURN on {turn}, RSS before the flood: {before:.1} MiB");
    println!("| second | requests sent | RSS (MiB) |");
    println!("|---:|---:|---:|");
    let start = Instant::now();
    let (mut sent, mut txid, mut peak) = (0u64, 0u64, before);
    let mut next_report = Duration::from_secs(1);
    while start.elapsed() < Duration::from_secs(cli.seconds) {
        for s in &sockets {
            txid += 1;
            // Drain the answers so the socket buffers never fill.
            let mut buf = [0u8; 256];
            while s.recv_from(&mut buf).is_ok() {}
            if s.send_to(&allocate(txid, txid % 2 == 0), turn).is_ok() {
                sent += 1;
            }
        }
        if start.elapsed() >= next_report {
            let now = rss_mib();
            peak = peak.max(now);
            println!("| {} | {sent} | {now:.1} |", next_report.as_secs());
            next_report += Duration::from_secs(1);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_mib();
    peak = peak.max(after);
    let used = cpu(pid).unwrap_or_default().saturating_sub(cpu0);
    let challenges = metric(http, "meshcast_turn_challenges_total")?;
    let dropped = metric(http, "meshcast_turn_replies_dropped_total")?;
    println!();
    println!(
        "sent {sent} requests in {secs:.1} s ({:.0}/s) from {} source ports",
        sent as f64 / secs,
        cli.sockets
    );
    println!(
        "the gate saw {challenges:.0}, answered {:.0} (rate-limited), dropped {dropped:.0}; relay CPU {:.1} s",
        challenges - dropped,
        used.as_secs_f64()
    );
    println!("relay RSS: before {before:.1} MiB, peak {peak:.1} MiB, after {after:.1} MiB");
    Ok(())
}
