//! What HTTPS costs the relay per connection: starts the release relay
//! twice, plain and with `--tls-self-signed`, opens the same number of
//! WebSocket connections to each (ws:// and wss://, every one joined to a
//! room of 8 and then idle), and prints the relay's CPU time per
//! connection set-up (TCP accept, TLS handshake, upgrade, join) and its
//! resident memory per open connection, from /proc.
//!
//!   cargo build --release -p relay -p bench
//!   target/release/tls-cost [--conns 2000] [--runs 3]

use anyhow::{Context as _, bail};
use bench::procstat::{cpu, rss};
use clap::Parser as _;
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Parser, Debug)]
#[command(
    name = "tls-cost",
    about = "The relay's CPU and memory per connection, ws:// against wss://"
)]
struct Cli {
    #[arg(long, default_value = "target/release/meshcast-relay")]
    relay: PathBuf,
    /// Connections opened (and held) in each run.
    #[arg(long, default_value_t = 2000)]
    conns: usize,
    /// Runs of each kind; the table shows the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// What one run measured.
struct Cost {
    cpu_per_conn: Duration,
    rss_per_conn: f64,
}

/// A TLS client that trusts only the relay's self-signed certificate.
fn connector(state: &Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let cert = CertificateDer::from_pem_file(state.join("tls-cert.pem"))
        .context("reading the relay's certificate")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Opens one connection, joins `room`, reads the welcome; returns the socket.
async fn join(
    addr: SocketAddr,
    tls: Option<&tokio_rustls::TlsConnector>,
    room: String,
) -> anyhow::Result<Box<dyn std::any::Any + Send>> {
    let tcp = TcpStream::connect(addr).await?;
    let join = serde_json::json!({"event": "join", "room": room, "name": "b", "role": "watcher"});
    async fn welcome<S>(
        mut ws: tokio_tungstenite::WebSocketStream<S>,
        join: String,
    ) -> anyhow::Result<tokio_tungstenite::WebSocketStream<S>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        ws.send(Message::text(join)).await?;
        while let Some(m) = ws.next().await {
            if let Message::Text(t) = m? {
                if t.contains("\"welcome\"") {
                    return Ok(ws);
                }
                bail!("not a welcome: {t}");
            }
        }
        bail!("closed before the welcome")
    }
    Ok(match tls {
        None => {
            let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp).await?;
            Box::new(welcome(ws, join.to_string()).await?)
        }
        Some(connector) => {
            let name = ServerName::try_from("127.0.0.1")?;
            let stream = connector.connect(name, tcp).await?;
            let (ws, _) =
                tokio_tungstenite::client_async(format!("wss://{addr}/ws"), stream).await?;
            Box::new(welcome(ws, join.to_string()).await?)
        }
    })
}

async fn run(cli: &Cli, tls: bool) -> anyhow::Result<Cost> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let state = std::env::temp_dir().join(format!("meshcast-tls-cost-{}", std::process::id()));
    let mut cmd = Command::new(&cli.relay);
    cmd.args(["--listen", &addr.to_string(), "--stun", "none"])
        .args(["--max-connections-per-ip", "0", "--rate-burst", "100000"])
        .arg("--dist")
        .arg(std::env::temp_dir().join("meshcast-bench-no-dist"))
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if tls {
        cmd.arg("--tls-self-signed").arg("--state-dir").arg(&state);
    }
    let relay = Relay(cmd.spawn().context("starting the relay")?);
    let pid = relay.0.id();
    let up = Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        if up.elapsed() > Duration::from_secs(10) {
            bail!("the relay is not listening on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connector = if tls { Some(connector(&state)?) } else { None };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cpu0, rss0) = (cpu(pid).unwrap_or_default(), rss(pid).unwrap_or(0));
    let mut held = Vec::with_capacity(cli.conns);
    // 32 at a time: set-up cost, not a connection storm.
    for chunk in (0..cli.conns).collect::<Vec<_>>().chunks(32) {
        let joins = chunk
            .iter()
            .map(|i| join(addr, connector.as_ref(), format!("room-{}", i / 8)));
        for peer in futures_util::future::join_all(joins).await {
            held.push(peer?);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let used = cpu(pid).unwrap_or_default().saturating_sub(cpu0);
    let grown = rss(pid).unwrap_or(0).saturating_sub(rss0);
    drop(held);
    let n = cli.conns as u32;
    Ok(Cost {
        cpu_per_conn: used / n,
        rss_per_conn: grown as f64 / f64::from(n),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.relay.is_file() {
        bail!(
            "no relay at {} (cargo build --release -p relay)",
            cli.relay.display()
        );
    }
    println!(
        "{} connections per run, {} runs each (median)",
        cli.conns, cli.runs
    );
    println!("| | ws:// | wss:// | TLS adds |");
    println!("|---|---:|---:|---:|");
    let mut cpu = [Vec::new(), Vec::new()];
    let mut mem = [Vec::new(), Vec::new()];
    for _ in 0..cli.runs {
        for (i, tls) in [false, true].into_iter().enumerate() {
            let cost = run(&cli, tls).await?;
            cpu[i].push(cost.cpu_per_conn.as_secs_f64() * 1e6);
            mem[i].push(cost.rss_per_conn / 1024.0);
        }
    }
    let [plain_cpu, tls_cpu] = cpu.map(median);
    let [plain_mem, tls_mem] = mem.map(median);
    println!(
        "| relay CPU per connection set-up | {plain_cpu:.0} µs | {tls_cpu:.0} µs | {:.0} µs |",
        tls_cpu - plain_cpu
    );
    println!(
        "| relay RSS per open connection | {plain_mem:.1} KiB | {tls_mem:.1} KiB | {:.1} KiB |",
        tls_mem - plain_mem
    );
    Ok(())
}
