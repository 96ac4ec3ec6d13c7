//! `repair`: one pass that replaces the nodes that are unhealthy ([`crate::health`])
//! and recreates the slots whose instance is gone, unless too many are unhealthy at once
//! (the circuit breaker, as Cluster API's `maxUnhealthy`).
//!
//! - An unhealthy node is replaced through [`Cluster::replace`] with a selector of its
//!   slot: the same crash-safe path as `plinth replace` (successor in the same AZ and
//!   role, load balancer drain, data volume and floating IP hand-over; delete-first
//!   with [`ReplaceOptions::max_surge`] 0). Each call takes the lease for its own work.
//! - A slot the spec wants that has no instance is recreated by [`Cluster::apply`]
//!   (which then also fixes any other drift).
//! - A replacement recorded on the cloud and not finished (a `replace` or an earlier
//!   repair that was stopped or crashed; its nodes show as replacing) is resumed first,
//!   as rerunning `replace` would. If its run is still going, its lease refuses us.
//! - **Circuit breaker.** Unhealthy nodes and gone slots are counted over the whole
//!   cluster (every slot the spec wants), like a MachineHealthCheck that selects every
//!   machine: a network partition or a cloud outage that makes every role look sick
//!   holds the repair of all of them. (A count per role would never repair a role of
//!   one or two nodes at 40 %, which rounds down to 0, as Cluster API rounds.) When
//!   more than [`RepairOptions::max_unhealthy`] are unhealthy, nothing is replaced or
//!   recreated and [`RepairReport::breaker`] says why; the CLI exits with status 3.
//!
//! A one-shot [`Cluster::repair`] keeps no state: a suspect node is looked at again
//! every [`HealthOptions::recheck`](crate::health::HealthOptions::recheck) until its
//! signal has held for its hold time (or cleared), so one pass may take up to the
//! longest hold time. [`Cluster::watch`](crate::Cluster::watch) keeps its tracker across
//! passes instead and never waits inside one.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::health::{checks, HealthReport, HealthState, HealthTracker};
use crate::replace::{ReplaceOptions, Replaced, Selector};
use crate::{Cluster, Error, Result};

/// Most nodes that may be unhealthy at once for `repair` to act (default 40 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxUnhealthy {
    /// A number of nodes.
    Count(usize),
    /// A percentage of the slots the spec wants, rounded down (as Cluster API does).
    Percent(u8),
}

impl Default for MaxUnhealthy {
    fn default() -> Self {
        MaxUnhealthy::Percent(40)
    }
}

impl MaxUnhealthy {
    /// How many of `total` slots may be unhealthy.
    pub fn allowed(self, total: usize) -> usize {
        match self {
            MaxUnhealthy::Count(n) => n,
            MaxUnhealthy::Percent(p) => total * usize::from(p) / 100,
        }
    }
}

impl fmt::Display for MaxUnhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxUnhealthy::Count(n) => write!(f, "{n}"),
            MaxUnhealthy::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl FromStr for MaxUnhealthy {
    type Err = Error;

    /// `N` (a count) or `N%` (0 to 100).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Plan {
            key: "max_unhealthy".into(),
            message: format!("{s:?} is neither a count nor a percentage: write e.g. 2 or 40%"),
        };
        let s = s.trim();
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= 100 => Ok(MaxUnhealthy::Percent(p)),
                _ => Err(bad()),
            },
            None => s.parse().map(MaxUnhealthy::Count).map_err(|_| bad()),
        }
    }
}

/// Knobs of `repair` (health itself is judged with the cluster's
/// [`HealthOptions`](crate::health::HealthOptions), see [`Cluster::with_health`]).
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// The circuit breaker: most unhealthy slots for which repair acts.
    pub max_unhealthy: MaxUnhealthy,
    /// How replacements run (surge or delete-first, probes, timeouts).
    pub replace: ReplaceOptions,
    /// Only say what would be done.
    pub dry_run: bool,
}

/// Why the circuit breaker held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerHeld {
    /// Unhealthy slots (nodes and gone slots).
    pub unhealthy: usize,
    /// Slots the spec wants.
    pub total: usize,
    /// How many may be unhealthy for repair to act.
    pub allowed: usize,
    /// The limit as given.
    pub max_unhealthy: MaxUnhealthy,
}

impl fmt::Display for BreakerHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker held: {} of {} nodes are unhealthy, more than --max-unhealthy {} \
             allows ({}); nothing was replaced. So many at once usually means the network or \
             the cloud, not the nodes: check them, then repair with a higher --max-unhealthy \
             or replace the nodes by hand",
            self.unhealthy, self.total, self.max_unhealthy, self.allowed
        )
    }
}

/// What a repair pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// Every slot's health as the pass judged it last.
    pub health: HealthReport,
    /// Unhealthy nodes to replace, by instance name.
    pub unhealthy: Vec<String>,
    /// Wanted slots whose instance is gone, to recreate.
    pub gone: Vec<String>,
    /// A replacement command recorded on the cloud and not finished (stopped or
    /// crashed): the pass resumes it first.
    pub unfinished: Option<String>,
    /// Set when too many were unhealthy: nothing was done.
    pub breaker: Option<BreakerHeld>,
    /// Whether this was a dry run (nothing was done).
    pub dry_run: bool,
    /// Nodes replaced.
    pub replaced: Vec<Replaced>,
    /// Slots recreated (by `apply`).
    pub recreated: Vec<String>,
    /// Time taken.
    pub elapsed: Duration,
}

impl RepairReport {
    /// Whether the pass found nothing to do.
    pub fn is_clean(&self) -> bool {
        self.unhealthy.is_empty() && self.gone.is_empty()
    }
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.health.slots {
            if s.health.state != HealthState::Healthy {
                let name = s.name.as_deref().unwrap_or("(gone)");
                write!(f, "{} {name}: {}", s.slot, s.health.state)?;
                if !s.health.findings.is_empty() {
                    write!(f, ": {}", s.health.why())?;
                }
                writeln!(f)?;
            }
        }
        if let Some(b) = &self.breaker {
            return write!(f, "{b}");
        }
        if self.dry_run {
            if let Some(op) = &self.unfinished {
                writeln!(f, "would resume the unfinished replacement {op}")?;
            }
            for n in &self.unhealthy {
                writeln!(f, "would replace {n}")?;
            }
            for s in &self.gone {
                writeln!(f, "would recreate {s} (apply)")?;
            }
            return write!(f, "dry run: nothing was changed");
        }
        if self.is_clean() && self.replaced.is_empty() {
            return write!(f, "every node is healthy: nothing to repair");
        }
        for s in &self.recreated {
            writeln!(f, "recreated {s}")?;
        }
        for r in &self.replaced {
            writeln!(
                f,
                "replaced {} -> {} ({}, {}) in {:.1}s",
                r.old,
                r.new,
                r.role,
                r.availability_zone,
                r.took.as_secs_f64()
            )?;
        }
        write!(f, "repaired in {:.1}s", self.elapsed.as_secs_f64())
    }
}

impl Cluster {
    /// One repair pass (see [`crate::repair`]): re-checks suspect nodes until their
    /// signals held or cleared, then replaces the unhealthy nodes and recreates gone
    /// slots, unless the circuit breaker holds. Each replacement or recreation takes the
    /// lease for its own work.
    pub async fn repair(&self, opts: &RepairOptions) -> Result<RepairReport> {
        let mut tracker = HealthTracker::new();
        pass(self, opts, &mut tracker, true).await
    }

    /// Every slot's health now, judged with a fresh tracker (so a bad signal shows as
    /// suspect, with how long it must hold).
    pub async fn health(&self) -> Result<HealthReport> {
        let (desired, observed) = futures::try_join!(self.desired(), self.observe())?;
        Ok(self.judge_now(&desired, &observed).await)
    }

    /// Judges `observed` once, with a fresh tracker.
    pub(crate) async fn judge_now(
        &self,
        desired: &crate::Desired,
        observed: &crate::Observed,
    ) -> HealthReport {
        let checks = checks(observed, self.hooks_if_set(), self.health_options()).await;
        HealthTracker::new().assess(
            Instant::now(),
            desired,
            observed,
            &checks,
            self.health_options(),
        )
    }
}

/// One pass with `tracker`; with `recheck`, waits for suspects to settle first.
pub(crate) async fn pass(
    cluster: &Cluster,
    opts: &RepairOptions,
    tracker: &mut HealthTracker,
    recheck: bool,
) -> Result<RepairReport> {
    let start = Instant::now();
    let hopts = cluster.health_options().clone();
    // A signal that keeps flapping does not keep a one-shot pass going for ever.
    let longest = hopts.cloud_hold.max(hopts.lb_hold).max(hopts.check_hold);
    let deadline = start + longest * 2 + hopts.recheck;
    let (health, total, unfinished) = loop {
        let (desired, observed) = futures::try_join!(cluster.desired(), cluster.observe())?;
        let checks = checks(&observed, cluster.hooks_if_set(), &hopts).await;
        let health = tracker.assess(Instant::now(), &desired, &observed, &checks, &hopts);
        let total = desired.instances.len();
        // The longest a suspect still has to hold.
        let left = health
            .in_state(HealthState::Suspect)
            .flat_map(|s| &s.health.findings)
            .map(|f| f.hold.saturating_sub(f.held))
            .max();
        match left {
            Some(left) if recheck && Instant::now() < deadline => {
                if cluster.options().stop.load(Ordering::SeqCst) {
                    return Err(Error::Stopped(
                        "repair was re-checking suspect nodes".into(),
                    ));
                }
                tracing::info!(
                    suspects = health.in_state(HealthState::Suspect).count(),
                    "re-checking suspect nodes in {:?}",
                    hopts.recheck.min(left)
                );
                tokio::time::sleep(hopts.recheck.min(left).max(Duration::from_millis(10))).await;
            }
            _ => break (health, total, unfinished_replacement(cluster, &observed)),
        }
    };
    let mut report = RepairReport {
        dry_run: opts.dry_run,
        ..RepairReport::default()
    };
    for s in health.in_state(HealthState::Unhealthy).filter(|s| s.wanted) {
        match &s.name {
            Some(n) => report.unhealthy.push(n.clone()),
            None => report.gone.push(s.slot.clone()),
        }
    }
    let slots: Vec<String> = health
        .in_state(HealthState::Unhealthy)
        .filter(|s| s.wanted && s.name.is_some())
        .map(|s| s.slot.clone())
        .collect();
    report.health = health;
    let unhealthy = report.unhealthy.len() + report.gone.len();
    let allowed = opts.max_unhealthy.allowed(total);
    if unhealthy > allowed {
        let held = BreakerHeld {
            unhealthy,
            total,
            allowed,
            max_unhealthy: opts.max_unhealthy,
        };
        tracing::warn!(
            unhealthy,
            total,
            allowed,
            "circuit breaker held: nothing replaced"
        );
        report.breaker = Some(held);
        report.elapsed = start.elapsed();
        return Ok(report);
    }
    report.unfinished = unfinished.clone();
    if opts.dry_run {
        report.elapsed = start.elapsed();
        return Ok(report);
    }
    if let Some(op) = unfinished {
        // A replacement that was stopped or crashed (its nodes show as replacing, so
        // nothing else would ever finish it): resumed as `replace` does, and nothing
        // more (an empty selection).
        tracing::info!(op = %op, "resuming an unfinished replacement");
        let resumed = cluster
            .replace(&Selector::Nodes(Vec::new()), &opts.replace)
            .await?;
        report.replaced.extend(resumed.replaced);
    }
    if report.is_clean() {
        report.elapsed = start.elapsed();
        return Ok(report);
    }
    if !report.gone.is_empty() {
        tracing::info!(slots = ?report.gone, "recreating gone nodes (apply)");
        cluster.apply().await?;
        report.recreated = report.gone.clone();
    }
    if !slots.is_empty() {
        tracing::info!(nodes = ?report.unhealthy, "replacing unhealthy nodes");
        // `again`: the same slots may need repair more than once in a cluster's life.
        let ropts = ReplaceOptions {
            again: true,
            ..opts.replace.clone()
        };
        let replaced = cluster.replace(&Selector::Nodes(slots), &ropts).await?;
        report.replaced.extend(replaced.replaced);
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// The replacement command recorded on the base group and not finished, if any.
fn unfinished_replacement(cluster: &Cluster, observed: &crate::Observed) -> Option<String> {
    let base = crate::lease::base_group_name(&cluster.spec().name);
    let g = observed.groups.iter().find(|g| g.name == base)?;
    g.tags
        .get(crate::replace::TAG_REPLACE_OP)
        .filter(|op| !op.starts_with(crate::replace::DONE))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_unhealthy_parses_counts_and_percentages_and_rounds_down() {
        assert_eq!(
            "2".parse::<MaxUnhealthy>().ok(),
            Some(MaxUnhealthy::Count(2))
        );
        assert_eq!(
            " 40% ".parse::<MaxUnhealthy>().ok(),
            Some(MaxUnhealthy::Percent(40))
        );
        assert!("140%".parse::<MaxUnhealthy>().is_err());
        assert!("-1".parse::<MaxUnhealthy>().is_err());
        assert!("many".parse::<MaxUnhealthy>().is_err());
        assert_eq!(MaxUnhealthy::Percent(40).allowed(6), 2);
        assert_eq!(MaxUnhealthy::Percent(40).allowed(2), 0);
        assert_eq!(MaxUnhealthy::Percent(100).allowed(3), 3);
        assert_eq!(MaxUnhealthy::Count(1).allowed(30), 1);
        assert_eq!(MaxUnhealthy::default(), MaxUnhealthy::Percent(40));
    }
}
