//! Numbers collected over repeated runs, printed as Markdown tables: the
//! median of each, its range, and the meshcast/PeerJS ratio; and, per
//! workload, how busy each side was, which says what limited the number.

use crate::procstat::Usage;
use crate::proto::Kind;
use crate::stats::Summary;
use std::fmt::Write as _;

/// How a value prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Per second.
    Rate,
    /// Seconds (latencies, CPU time per message); infinite = lost.
    Secs,
    Bytes,
    /// 1.0 yes, 0.0 no.
    YesNo,
}

#[derive(Debug)]
struct Row {
    label: String,
    unit: Unit,
    values: [Vec<f64>; 2],
}

#[derive(Debug)]
struct LoadRow {
    label: String,
    /// What bounds the number when neither process is saturated.
    otherwise: String,
    server: [Vec<f64>; 2],
    generator: [Vec<f64>; 2],
}

/// A process this busy (share of its one core) is what limits the run.
const SATURATED: f64 = 0.85;

fn idx(kind: Kind) -> usize {
    match kind {
        Kind::Meshcast => 0,
        Kind::PeerJs => 1,
    }
}

#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
    loads: Vec<LoadRow>,
}

impl Report {
    pub fn add(&mut self, label: &str, unit: Unit, kind: Kind, value: Option<f64>) {
        let Some(value) = value else { return };
        let row = match self.rows.iter().position(|r| r.label == label) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    label: label.to_owned(),
                    unit,
                    values: Default::default(),
                });
                let last = self.rows.len() - 1;
                &mut self.rows[last]
            }
        };
        row.values[idx(kind)].push(value);
    }

    /// Records how busy the server and the generator were during `label`.
    pub fn load(&mut self, label: &str, otherwise: &str, kind: Kind, usage: &Usage) {
        let row = match self.loads.iter().position(|r| r.label == label) {
            Some(i) => &mut self.loads[i],
            None => {
                self.loads.push(LoadRow {
                    label: label.to_owned(),
                    otherwise: otherwise.to_owned(),
                    server: Default::default(),
                    generator: Default::default(),
                });
                let last = self.loads.len() - 1;
                &mut self.loads[last]
            }
        };
        if let Some(s) = usage.server_load() {
            row.server[idx(kind)].push(s);
        }
        if let Some(g) = usage.generator_load() {
            row.generator[idx(kind)].push(g);
        }
    }

    pub fn summary(&self, label: &str, kind: Kind) -> Option<Summary> {
        let row = self.rows.iter().find(|r| r.label == label)?;
        Summary::of(&row.values[idx(kind)])
    }

    /// The results: one row per number, a column per server, and the ratio.
    pub fn table(&self, kinds: &[Kind]) -> String {
        let mut out = String::new();
        let both = kinds.len() == 2;
        let mut header = "| |".to_owned();
        let mut rule = "|---|".to_owned();
        for k in kinds {
            let _ = write!(header, " {} |", k.name());
            rule.push_str("---:|");
        }
        if both {
            header.push_str(" meshcast ÷ PeerJS |");
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for row in &self.rows {
            let _ = write!(out, "| {} |", row.label);
            for &k in kinds {
                let cell = Summary::of(&row.values[idx(k)])
                    .map_or_else(|| "failed".to_owned(), |s| cell(row.unit, &s));
                let _ = write!(out, " {cell} |");
            }
            if both {
                let ratio = Summary::of(&row.values[0])
                    .zip(Summary::of(&row.values[1]))
                    .filter(|_| row.unit != Unit::YesNo)
                    .map(|(m, p)| m.median / p.median)
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .map_or_else(String::new, |r| format!("{r:.2}x"));
                let _ = write!(out, " {ratio} |");
            }
            out.push('\n');
        }
        out
    }

    /// How busy each side was per workload (share of one core, median) and
    /// so what limited the number.
    pub fn loads_table(&self, kinds: &[Kind]) -> String {
        let mut out = String::new();
        let mut header = "| workload |".to_owned();
        let mut rule = "|---|".to_owned();
        for k in kinds {
            let _ = write!(
                header,
                " {0} server CPU | generator CPU | {0} limited by |",
                k.name()
            );
            rule.push_str("---:|---:|---|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for row in &self.loads {
            let _ = write!(out, "| {} |", row.label);
            for &k in kinds {
                let server = Summary::of(&row.server[idx(k)]).map(|s| s.median);
                let generator = Summary::of(&row.generator[idx(k)]).map(|s| s.median);
                let pct = |v: Option<f64>| {
                    v.map_or_else(|| "?".to_owned(), |v| format!("{:.0}%", v * 100.0))
                };
                let limit = match (server, generator) {
                    (Some(s), _) if s >= SATURATED => "server CPU".to_owned(),
                    (_, Some(g)) if g >= SATURATED => "generator CPU".to_owned(),
                    (Some(_), Some(_)) => row.otherwise.clone(),
                    _ => "?".to_owned(),
                };
                let _ = write!(out, " {} | {} | {limit} |", pct(server), pct(generator));
            }
            out.push('\n');
        }
        out
    }
}

fn cell(unit: Unit, s: &Summary) -> String {
    if unit == Unit::YesNo {
        let yes = (s.median * s.runs as f64).round();
        return match s.runs {
            1 => if s.median > 0.5 { "yes" } else { "no" }.to_owned(),
            n => format!("{yes:.0}/{n} runs"),
        };
    }
    if s.runs == 1 || s.min == s.max {
        return value(unit, s.median);
    }
    format!(
        "{} ({}–{})",
        value(unit, s.median),
        value(unit, s.min),
        value(unit, s.max)
    )
}

/// One number in its unit, with three significant-ish digits.
pub fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Rate if v >= 1e6 => format!("{:.2}M/s", v / 1e6),
        Unit::Rate if v >= 1e4 => format!("{:.1}k/s", v / 1e3),
        Unit::Rate => format!("{v:.0}/s"),
        Unit::Secs if v.is_infinite() => "lost".to_owned(),
        Unit::Secs if v < 1e-5 => format!("{:.2}µs", v * 1e6),
        Unit::Secs if v < 1e-3 => format!("{:.0}µs", v * 1e6),
        Unit::Secs if v < 1.0 => format!("{:.2}ms", v * 1e3),
        Unit::Secs => format!("{v:.2}s"),
        Unit::Bytes if v.abs() >= 1024.0 * 1024.0 => format!("{:.1} MiB", v / 1024.0 / 1024.0),
        Unit::Bytes if v.abs() >= 1024.0 => format!("{:.1} KiB", v / 1024.0),
        Unit::Bytes => format!("{v:.0} B"),
        Unit::YesNo => if v > 0.5 { "yes" } else { "no" }.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats() {
        assert_eq!(value(Unit::Rate, 123_456.0), "123.5k/s");
        assert_eq!(value(Unit::Secs, 0.000_850), "850µs");
        assert_eq!(value(Unit::Secs, 0.000_003_1), "3.10µs");
        assert_eq!(value(Unit::Secs, 0.0123), "12.30ms");
        assert_eq!(value(Unit::Secs, f64::INFINITY), "lost");
        assert_eq!(value(Unit::Bytes, 12.5 * 1024.0), "12.5 KiB");
    }

    #[test]
    fn tables() {
        let mut r = Report::default();
        r.add("rate", Unit::Rate, Kind::Meshcast, Some(100_000.0));
        r.add("rate", Unit::Rate, Kind::Meshcast, Some(120_000.0));
        r.add("rate", Unit::Rate, Kind::Meshcast, Some(110_000.0));
        r.add("rate", Unit::Rate, Kind::PeerJs, Some(20_000.0));
        r.add("never", Unit::Secs, Kind::Meshcast, None);
        let t = r.table(&Kind::ALL);
        assert!(
            t.contains("| rate | 110.0k/s (100.0k/s–120.0k/s) | 20.0k/s | 5.50x |"),
            "{t}"
        );
        assert!(!t.contains("never"));
        let busy = Usage {
            wall: Duration::from_secs(10),
            server: Some(Duration::from_secs(10)),
            generator: Some(Duration::from_secs(4)),
        };
        r.load("throughput", "in flight", Kind::Meshcast, &busy);
        let l = r.loads_table(&[Kind::Meshcast]);
        assert!(
            l.contains("| throughput | 100% | 40% | server CPU |"),
            "{l}"
        );
    }
}
