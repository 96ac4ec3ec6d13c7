//! `watch`: a loop that, every [`WatchOptions::interval`], fixes drift (runs the plan
//! `apply` would run, if it is not empty) and runs a repair pass ([`crate::repair`]),
//! logging each decision with `tracing`.
//!
//! - **Lease per action.** The loop holds no lease; each `apply` and each replacement
//!   takes the cluster's lease for its own work and releases it, so another operator's
//!   `replace` waits at most one action. A pass that finds the lease taken skips its
//!   action and tries again next interval.
//! - **Health across passes.** One [`HealthTracker`] lives as long as the loop: a bad
//!   signal is timed across passes (no pass waits for it), and nodes that appear while
//!   the loop runs get the start-up grace.
//! - **Circuit breaker** also for drift: a plan that would create more instances than
//!   [`RepairOptions::max_unhealthy`] allows (e.g. a listing that came back empty) is not
//!   run.
//! - **Stopping.** [`Cancel::cancel`] (the CLI calls it on Ctrl-C and SIGTERM) stops the
//!   loop: between passes at once; during an action, the executor starts no new step,
//!   lets those in flight finish (every step is crash-safe and a later run resumes),
//!   releases the lease, and `watch` returns `Ok`.
//! - **Outages.** A pass that fails (the cloud unreachable, a replacement that failed) is
//!   logged and the next one comes after a backoff that doubles from the interval up to
//!   [`WatchOptions::max_backoff`]; the first pass that succeeds resets it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::health::HealthTracker;
use crate::repair::{pass, RepairOptions};
use crate::replace::Replaced;
use crate::{Cluster, Error, Result};

/// Knobs of `watch`.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Time between passes.
    pub interval: Duration,
    /// Longest wait after failed passes.
    pub max_backoff: Duration,
    /// The repair pass (circuit breaker, how replacements run). `dry_run` also keeps
    /// drift from being fixed.
    pub repair: RepairOptions,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            max_backoff: Duration::from_secs(300),
            repair: RepairOptions::default(),
        }
    }
}

/// Stops a running [`Cluster::watch`]; clones stop the same loop.
#[derive(Debug, Clone)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
    /// Stop flags of the runs to stop with it, set at once by [`Cancel::cancel`] (so no
    /// new step starts after it returns).
    flags: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl Cancel {
    /// A handle not cancelled yet.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
            flags: Arc::default(),
        }
    }

    /// Asks the loop to stop (see the [module docs](self)).
    pub fn cancel(&self) {
        for f in lock(&self.flags).iter() {
            f.store(true, Ordering::SeqCst);
        }
        self.tx.send_replace(true);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`Cancel::cancel`] was called.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Sets `flag` when cancelled (at once if already cancelled).
    fn link(&self, flag: Arc<AtomicBool>) {
        let mut flags = lock(&self.flags);
        if self.is_cancelled() {
            flag.store(true, Ordering::SeqCst);
        }
        flags.push(flag);
    }

    /// Stops setting `flag`.
    fn unlink(&self, flag: &Arc<AtomicBool>) {
        lock(&self.flags).retain(|f| !Arc::ptr_eq(f, flag));
    }
}

/// What a `watch` loop did, when it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchReport {
    /// Passes run (failed ones included).
    pub passes: usize,
    /// Passes that failed (logged; the loop went on).
    pub failed_passes: usize,
    /// Drift-fixing actions run.
    pub drift_actions: usize,
    /// Nodes replaced because they were unhealthy.
    pub replaced: Vec<Replaced>,
    /// Passes in which the circuit breaker held.
    pub breaker_held: usize,
}

impl Cluster {
    /// Fixes drift and repairs every `opts.interval` until `cancel` (see
    /// [`crate::watch`]). Fails only on a usage error (the spec or the options);
    /// everything else is logged and retried.
    pub async fn watch(&self, opts: &WatchOptions, cancel: &Cancel) -> Result<WatchReport> {
        opts.repair.replace.validate()?;
        let mut report = WatchReport::default();
        let mut tracker = HealthTracker::new();
        let mut failures: u32 = 0;
        // A cancel stops the executor from starting new steps (as a first Ctrl-C).
        let stop = self.options().stop.clone();
        cancel.link(stop.clone());
        while !cancel.is_cancelled() {
            report.passes += 1;
            let result = self.watch_pass(opts, &mut tracker, &mut report).await;
            let wait = match result {
                Ok(()) => {
                    failures = 0;
                    opts.interval
                }
                Err(_) if cancel.is_cancelled() => break,
                Err(e @ (Error::Locked { .. } | Error::Lease { .. })) => {
                    tracing::info!(error = %e, "another operator holds the cluster: next pass in {:?}", opts.interval);
                    opts.interval
                }
                Err(e @ (Error::Spec(_) | Error::Blocked(_) | Error::Preflight(_))) => {
                    cancel.unlink(&stop);
                    return Err(e);
                }
                Err(e) => {
                    failures += 1;
                    report.failed_passes += 1;
                    let wait = backoff(opts.interval, opts.max_backoff, failures);
                    tracing::warn!(error = %e, failures, "watch pass failed: next pass in {wait:?}");
                    wait
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        cancel.unlink(&stop);
        // The stop flag was ours to set; the cluster can run verbs again.
        stop.store(false, Ordering::SeqCst);
        tracing::info!(
            passes = report.passes,
            replaced = report.replaced.len(),
            "watch stopped"
        );
        Ok(report)
    }

    async fn watch_pass(
        &self,
        opts: &WatchOptions,
        tracker: &mut HealthTracker,
        report: &mut WatchReport,
    ) -> Result<()> {
        let plan = self.plan().await?;
        if !plan.is_empty() {
            let creates = plan.created_instances().len();
            let total = plan.observed.instances.len() + creates;
            let allowed = opts.repair.max_unhealthy.allowed(total);
            if creates > allowed {
                report.breaker_held += 1;
                tracing::warn!(
                    creates,
                    allowed,
                    "circuit breaker held: drift would recreate {creates} nodes at once; not applied"
                );
            } else if opts.repair.dry_run {
                tracing::info!(
                    "dry run: drift would be fixed by {} actions",
                    plan.actions.len()
                );
            } else {
                tracing::info!("fixing drift: {} actions", plan.actions.len());
                let done = self.run(plan).await?;
                report.drift_actions += done.report.done.len();
            }
        }
        let r = pass(self, &opts.repair, tracker, false).await?;
        if let Some(b) = &r.breaker {
            report.breaker_held += 1;
            tracing::warn!("{b}");
        }
        for s in r.health.slots.iter().filter(|s| {
            !matches!(
                s.health.state,
                crate::health::HealthState::Healthy | crate::health::HealthState::Starting
            )
        }) {
            tracing::info!(slot = %s.slot, state = %s.health.state, why = %s.health.why(), "health");
        }
        for x in &r.replaced {
            tracing::info!(old = %x.old, new = %x.new, az = %x.availability_zone, "replaced an unhealthy node");
        }
        report.replaced.extend(r.replaced);
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The wait after `failures` failed passes in a row: the interval doubled per failure,
/// at most `max`.
fn backoff(interval: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(16));
    interval.saturating_mul(factor).min(max.max(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(10), s(300), 1), s(20));
        assert_eq!(backoff(s(10), s(300), 3), s(80));
        assert_eq!(backoff(s(10), s(300), 30), s(300));
        assert_eq!(backoff(s(10), s(5), 2), s(10));
    }

    #[tokio::test]
    async fn cancel_is_seen_by_every_clone() {
        let c = Cancel::new();
        let d = c.clone();
        assert!(!d.is_cancelled());
        c.cancel();
        assert!(d.is_cancelled());
        d.cancelled().await;
    }
}
