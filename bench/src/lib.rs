//! meshcast-bench: a load generator that measures the relay, and the PeerJS
//! server under the same load, over WebSocket on 127.0.0.1.
//!
//! Layout:
//! - [`proto`]: both servers' wire formats, without sockets;
//! - [`client`]: one test peer (connect, upgrade, join) and the shared clock;
//! - [`workload`]: closed-loop throughput, open-loop latency (with and
//!   without a stuck peer), idle connections and upgrade rate;
//! - [`procstat`]: CPU time and RSS of a process from `/proc`;
//! - [`stats`]: percentiles and median/range over runs;
//! - [`server`]: starting the servers under test as pinned child processes;
//! - [`report`]: the Markdown tables.
//!
//! The workloads take any running server's address, so the smoke test runs
//! them against an in-process relay; only `server` knows about binaries.
//! Not here: anything that runs in CI beyond that smoke test.

pub mod client;
pub mod procstat;
pub mod proto;
pub mod report;
pub mod server;
pub mod stats;
pub mod workload;
