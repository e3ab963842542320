//! The servers under test as child processes on 127.0.0.1: a fresh process
//! for every measurement, so CPU and memory start from nothing, optionally
//! pinned to given cores with `taskset`.

use crate::client::Target;
use crate::proto::Kind;
use crate::workload::wait_listening;
use anyhow::{Context as _, bail};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How to start each server.
#[derive(Clone, Debug)]
pub struct Launcher {
    /// `target/release/meshcast-relay`.
    pub relay: PathBuf,
    /// The directory with `server.mjs` and `node_modules/peer`.
    pub peerjs_dir: PathBuf,
    pub node: PathBuf,
    /// `taskset -c` list for the servers, e.g. "0".
    pub cpus: Option<String>,
    /// A command the server runs under, e.g. `valgrind --tool=callgrind`
    /// (after taskset, so the tool is pinned too).
    pub prefix: Vec<String>,
}

/// Every flag that differs from the relay's defaults in these runs: the
/// per-connection rate limit (50/s, burst 200) would otherwise be what the
/// throughput test measures, and every bench peer comes from 127.0.0.1, so
/// the per-address limit (64) is off.
pub const RELAY_FLAGS: &[&str] = &[
    "--stun",
    "none",
    "--max-connections",
    "20000",
    "--max-connections-per-ip",
    "0",
    "--rate-per-sec",
    "1000000",
    "--rate-burst",
    "1000000",
    "--max-room-peers",
    "16",
];

/// A running server; dropping it kills the process.
pub struct Running {
    child: Child,
    pub target: Target,
}

impl Launcher {
    pub async fn start(&self, kind: Kind) -> anyhow::Result<Running> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let program = match kind {
            Kind::Meshcast => &self.relay,
            Kind::PeerJs => &self.node,
        };
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cpus) = &self.cpus {
            argv.extend(["taskset".into(), "-c".into(), cpus.into()]);
        }
        argv.extend(self.prefix.iter().map(Into::into));
        argv.push(program.into());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        match kind {
            Kind::Meshcast => {
                if !self.relay.is_file() {
                    bail!(
                        "no relay at {} (cargo build --release -p relay)",
                        self.relay.display()
                    );
                }
                cmd.arg("--listen")
                    .arg(addr.to_string())
                    .arg("--dist")
                    .arg(std::env::temp_dir().join("meshcast-bench-no-dist"))
                    .args(RELAY_FLAGS)
                    .env("RUST_LOG", "error");
            }
            Kind::PeerJs => {
                if !self.peerjs_dir.join("node_modules/peer").is_dir() {
                    bail!(
                        "no PeerJS server in {}/node_modules (npm ci there; scripts/bench.sh does)",
                        self.peerjs_dir.display()
                    );
                }
                cmd.arg("server.mjs")
                    .arg(addr.port().to_string())
                    .current_dir(&self.peerjs_dir)
                    .env("NODE_ENV", "production");
            }
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}: {cmd:?}", kind.name()))?;
        let pid = child.id();
        let mut running = Running {
            child,
            target: Target {
                kind,
                addr,
                pid: Some(pid),
            },
        };
        if !wait_listening(addr, Duration::from_secs(15)).await {
            if let Some(status) = running.child.try_wait()? {
                bail!("{} exited at start: {status}", kind.name());
            }
            bail!("{} is not listening on {addr} after 15 s", kind.name());
        }
        Ok(running)
    }

    /// The PeerJS server's version, from its package.json.
    pub fn peerjs_version(&self) -> Option<String> {
        let path = self.peerjs_dir.join("node_modules/peer/package.json");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        json["version"].as_str().map(str::to_owned)
    }
}

/// How long a server may take to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl Drop for Running {
    /// SIGTERM first, so a tool it runs under (valgrind) writes its output.
    fn drop(&mut self) {
        let name = self.target.kind.name();
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        if let Err(e) = &term {
            eprintln!("kill -TERM {name}: {e}");
        }
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while term.is_ok() && std::time::Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    eprintln!("waiting for {name}: {e}");
                    break;
                }
            }
        }
        if let Err(e) = self.child.kill() {
            eprintln!("stopping {name}: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("waiting for {name}: {e}");
        }
    }
}

/// A port nobody listens on right now (the server binds it a moment later).
fn free_port() -> std::io::Result<u16> {
    let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(probe.local_addr()?.port())
}
