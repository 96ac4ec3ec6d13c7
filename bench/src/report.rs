//! The table: one row per measurement, each against its limit and its target.

use std::fmt;
use std::time::Duration;

/// How a row's ratio is judged against its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The ratio must be at most this (a time against its limit).
    AtMost(f64),
    /// The ratio must be below this (a cost against its budget).
    Below(f64),
    /// The ratio must be at least this (a throughput against a reference).
    AtLeast(f64),
    /// No target: the ratio is reported only.
    None,
}

impl Target {
    /// Whether `ratio` meets it (`None` when there is no target).
    pub fn met(self, ratio: f64) -> Option<bool> {
        match self {
            Target::AtMost(t) => Some(ratio <= t),
            Target::Below(t) => Some(ratio < t),
            Target::AtLeast(t) => Some(ratio >= t),
            Target::None => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::AtMost(t) => write!(f, "<= {t:.2}"),
            Target::Below(t) => write!(f, "< {t:.2}"),
            Target::AtLeast(t) => write!(f, ">= {t:.2}"),
            Target::None => f.write_str("none set"),
        }
    }
}

/// A quantity with its unit, printed the way the table shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A duration.
    Time(Duration),
    /// Bytes, shown in MiB.
    Bytes(u64),
    /// Requests per second.
    Rate(f64),
}

impl Value {
    fn number(self) -> f64 {
        match self {
            Value::Time(d) => d.as_secs_f64(),
            Value::Bytes(b) => b as f64,
            Value::Rate(r) => r,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Time(d) if d < Duration::from_secs(1) => {
                write!(f, "{:.1} ms", d.as_secs_f64() * 1e3)
            }
            Value::Time(d) => write!(f, "{:.2} s", d.as_secs_f64()),
            Value::Bytes(b) => write!(f, "{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
            Value::Rate(r) => write!(f, "{r:.0} req/s"),
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured.
    pub scenario: String,
    /// What it measured.
    pub measured: Value,
    /// What it is held against: a limit, a budget or a reference.
    pub limit: Value,
    /// The target for `measured / limit`.
    pub target: Target,
    /// What else the reader needs (calls, the whole command's time, ...).
    pub detail: String,
}

impl Row {
    /// `measured / limit`.
    pub fn ratio(&self) -> f64 {
        let l = self.limit.number();
        if l == 0.0 {
            f64::INFINITY
        } else {
            self.measured.number() / l
        }
    }

    /// Whether the ratio meets the target (`None` when there is none).
    pub fn met(&self) -> Option<bool> {
        self.target.met(self.ratio())
    }
}

/// Rows printed as one Markdown table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table(pub Vec<Row>);

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = [
            "scenario", "measured", "limit", "ratio", "target", "met", "detail",
        ];
        let rows: Vec<[String; 7]> = self
            .0
            .iter()
            .map(|r| {
                [
                    r.scenario.clone(),
                    r.measured.to_string(),
                    r.limit.to_string(),
                    format!("{:.2}", r.ratio()),
                    r.target.to_string(),
                    match r.met() {
                        Some(true) => "yes",
                        Some(false) => "NO",
                        None => "-",
                    }
                    .to_string(),
                    r.detail.clone(),
                ]
            })
            .collect();
        let mut width = head.map(str::len);
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            write!(f, "|")?;
            for (c, w) in cells.iter().zip(width) {
                write!(f, " {c:<w$} |")?;
            }
            writeln!(f)
        };
        line(f, &head.map(String::from))?;
        line(f, &width.map(|w| "-".repeat(w)))?;
        for r in &rows {
            line(f, r)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_targets() {
        let r = Row {
            scenario: "x".into(),
            measured: Value::Time(Duration::from_millis(1100)),
            limit: Value::Time(Duration::from_secs(1)),
            target: Target::AtMost(1.15),
            detail: String::new(),
        };
        assert!((r.ratio() - 1.1).abs() < 1e-9);
        assert_eq!(r.met(), Some(true));
        assert_eq!(Target::AtLeast(0.7).met(0.5), Some(false));
        assert_eq!(Target::Below(1.0).met(1.0), Some(false));
        assert_eq!(Target::None.met(9.0), None);
        let t = Table(vec![r]).to_string();
        assert!(t.contains("| x "), "{t}");
        assert!(t.contains("1.10 s"), "{t}");
        assert!(t.contains("1.00 s"), "{t}");
    }
}
