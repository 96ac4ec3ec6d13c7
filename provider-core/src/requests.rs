//! Counts of the HTTP requests a cloud backend sends, per `service.operation`.
//!
//! The [`Instrumented`](crate::layer::Instrumented) layer counts trait calls; a backend
//! counts what they cost on the wire with one [`RequestCounts`] (every attempt counts, so
//! retries and re-authentications are included). Each cloud crate documents its keys
//! (`ec2.RunInstances`, `nova.POST /servers`, `vim25.CloneVM_Task`, ...).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Requests sent, per `service.operation`. Cheap to clone: clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct RequestCounts {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCounts {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.lock().clone()
    }

    /// All requests so far.
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    /// Requests of one key so far (0 if none).
    pub fn get(&self, key: &str) -> u64 {
        self.lock().get(key).copied().unwrap_or(0)
    }

    /// Starts counting from zero.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// Counts one request of `key`.
    pub fn add(&self, key: impl Into<String>) {
        *self.lock().entry(key.into()).or_insert(0) += 1;
    }

    /// The counts so far as one phase with its `floor`, and a fresh count for the next.
    pub fn take_phase(&self, phase: &str, floor: u64) -> PhaseCount {
        let counts = std::mem::take(&mut *self.lock());
        PhaseCount {
            phase: phase.to_string(),
            counts,
            floor,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request path with its ids replaced by `{id}` (any segment that contains a digit and
/// is longer than 8 characters, or is a UUID), so counts group by operation, not by
/// resource: `/servers/0f3c...e1/action` becomes `/servers/{id}/action`.
pub fn path_template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    path.split('/')
        .map(|seg| {
            let idish = seg.len() > 8 && seg.chars().any(|c| c.is_ascii_digit());
            if idish {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Requests of one phase of a run (bring-up, `status`, ...) against that phase's floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseCount {
    /// The phase.
    pub phase: String,
    /// Requests sent, per key.
    pub counts: BTreeMap<String, u64>,
    /// The floor: the requests the phase cannot do without.
    pub floor: u64,
}

impl PhaseCount {
    /// All requests of the phase.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// A table of phases: requests, floor and their ratio, then each phase's requests by key.
pub fn phase_table(cloud: &str, phases: &[PhaseCount]) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{cloud}: requests per phase of the seed topology\n{:<14} {:>8} {:>6} {:>6}\n",
        "phase", "requests", "floor", "ratio"
    );
    for p in phases {
        let ratio = if p.floor == 0 {
            0.0
        } else {
            p.total() as f64 / p.floor as f64
        };
        let _ = writeln!(
            out,
            "{:<14} {:>8} {:>6} {:>6.2}",
            p.phase,
            p.total(),
            p.floor,
            ratio
        );
    }
    for p in phases {
        let _ = writeln!(out, "{} by operation:", p.phase);
        for (k, v) in &p.counts {
            let _ = writeln!(out, "  {v:>4}  {k}");
        }
    }
    out
}

/// Each phase whose requests exceed its pin (`pins` in the order of `phases`), said in
/// one line: a test pins the counts a change must not raise.
pub fn over_pins(phases: &[PhaseCount], pins: &[u64]) -> Vec<String> {
    phases
        .iter()
        .zip(pins)
        .filter(|(p, pin)| p.total() > **pin)
        .map(|(p, pin)| {
            format!(
                "{}: {} requests, pinned at {pin} (floor {}): a change added requests",
                p.phase,
                p.total(),
                p.floor
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_over_its_pin_is_named() {
        let c = RequestCounts::new();
        c.add("a");
        c.add("a");
        let first = c.take_phase("first", 1);
        c.add("b");
        let second = c.take_phase("second", 1);
        assert_eq!((first.total(), second.total()), (2, 1));
        let over = over_pins(&[first, second], &[1, 1]);
        assert_eq!(over.len(), 1, "{over:?}");
        assert!(
            over[0].starts_with("first: 2 requests, pinned at 1"),
            "{over:?}"
        );
    }

    #[test]
    fn counts_group_by_key_and_reset() {
        let c = RequestCounts::new();
        c.add("a.X");
        c.clone().add("a.X");
        c.add("b.Y");
        assert_eq!(c.get("a.X"), 2);
        assert_eq!(c.total(), 3);
        c.reset();
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn ids_leave_the_path() {
        assert_eq!(
            path_template("/servers/0f3c5a2e-1b7d-4c3b-9a51-2f0e6f8a77e1/action"),
            "/servers/{id}/action"
        );
        assert_eq!(
            path_template("/v2.0/security-groups"),
            "/v2.0/security-groups"
        );
        assert_eq!(path_template("/servers/detail?limit=5"), "/servers/detail");
    }
}
