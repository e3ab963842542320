//! What a process costs, read from `/proc`: CPU time (`stat` utime + stime,
//! all threads) and resident memory (`status` VmRSS). Linux only; elsewhere
//! the readers return `None` and the report leaves those cells empty.

use std::time::{Duration, Instant};

/// Clock ticks per second in `/proc/*/stat`: USER_HZ, which Linux fixes at
/// 100 on every architecture it exposes to user space.
const USER_HZ: u64 = 100;

/// CPU time used so far by `pid` (user + system, every thread).
pub fn cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu(&stat)
}

fn parse_cpu(stat: &str) -> Option<Duration> {
    // The command name (field 2) may contain spaces: count from its ')'.
    let (_, after) = stat.rsplit_once(')')?;
    let mut fields = after.split_whitespace();
    // After ')' come state (3), ppid (4), ... utime is field 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// Resident memory of `pid` in bytes.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss(&status)
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The server's and the generator's CPU clocks at one instant.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    at: Instant,
    server: Option<Duration>,
    generator: Option<Duration>,
}

impl Sample {
    pub fn take(server: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            server: server.and_then(cpu),
            generator: cpu(std::process::id()),
        }
    }

    /// What both processes used from `self` to `later`.
    pub fn until(&self, later: &Sample) -> Usage {
        let delta = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
        Usage {
            wall: later.at.saturating_duration_since(self.at),
            server: delta(self.server, later.server),
            generator: delta(self.generator, later.generator),
        }
    }
}

/// CPU used over a measured interval.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub wall: Duration,
    pub server: Option<Duration>,
    pub generator: Option<Duration>,
}

impl Usage {
    /// Server CPU as a share of one core (1.0 = one core busy all the time).
    pub fn server_load(&self) -> Option<f64> {
        Some(self.server?.as_secs_f64() / self.wall.as_secs_f64().max(1e-9))
    }

    pub fn generator_load(&self) -> Option<f64> {
        Some(self.generator?.as_secs_f64() / self.wall.as_secs_f64().max(1e-9))
    }

    /// Server CPU per unit of work (a message, an upgrade).
    pub fn server_per(&self, count: u64) -> Option<Duration> {
        let count = u32::try_from(count).ok().filter(|&c| c > 0)?;
        Some(self.server? / count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "1234 (node server.mjs) S 1 1234 1234 0 -1 4194560 2750 0 0 0 250 37 0 0 20 0 11 0 1000 1 1";
        assert_eq!(parse_cpu(stat), Some(Duration::from_millis(2870)));
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\tnode\nVmPeak:\t  9 kB\nVmRSS:\t   51200 kB\nThreads:\t11\n";
        assert_eq!(parse_rss(status), Some(51200 * 1024));
    }

    #[test]
    fn reads_itself() {
        if cfg!(target_os = "linux") {
            assert!(cpu(std::process::id()).is_some());
            assert!(rss(std::process::id()).is_some_and(|r| r > 0));
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }
}
