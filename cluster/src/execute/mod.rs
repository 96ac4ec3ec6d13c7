//! The executor: the one engine every verb runs on. `apply` and `destroy` plans,
//! rolling replacement and scaling ([`crate::replace`], [`crate::scale`]) are all a
//! [`Plan`]'s DAG of actions, run here with bounded concurrency. Each action starts the
//! moment its own dependencies are done (no waves), so a run approaches the plan's
//! critical path. Retryable provider errors are retried by provider-core's [`Retry`]
//! layer; a hard failure stops new actions, lets those in flight finish, and the
//! [`Report`] says what was and wasn't done. Rerunning converges: creates are idempotent
//! by name and the next plan only holds what is still missing.
//!
//! - `action`: what one action does (provider calls, waits, hooks).
//! - `ready`: the waits of replacement and scaling: a node ready, a member healthy.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use provider_core::layer::Retry;
use provider_core::{Provider, ProviderExt};
use serde::Serialize;

use crate::hooks::Hooks;
use crate::lease::LeaseOptions;
use crate::plan::{Action, Plan, PlannedAction};
use crate::replace::ReplaceOptions;
use crate::Error;

mod action;
mod ready;

use action::{perform, Registry};
pub use ready::run_probe;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// Most actions in flight at once (at least 1).
    pub concurrency: usize,
    /// Retry policy for retryable provider errors.
    pub retry: Retry,
    /// Set to stop starting new actions (e.g. on the first Ctrl-C); those in flight
    /// finish and the report lists the rest as not started.
    pub stop: Arc<AtomicBool>,
    /// How mutating commands take the operator lease (see [`crate::lease`]).
    pub lease: LeaseOptions,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            retry: Retry::default(),
            stop: Arc::new(AtomicBool::new(false)),
            lease: LeaseOptions::default(),
        }
    }
}

/// Told about progress (progress bars, logs, tests): each action of a plan as it starts
/// and ends, and each step of a node's replacement or scaling. Every method has a
/// no-op default.
pub trait Observer: Send + Sync {
    /// An action is starting.
    fn started(&self, _action: &PlannedAction) {}
    /// An action ended; `error` is `None` on success.
    fn finished(&self, _action: &PlannedAction, _error: Option<&Error>) {}
    /// Node `old` is being replaced by `new` and reached `step` (scaling up reports an
    /// empty `old`, scaling down an empty `new`).
    fn replacing(&self, _old: &str, _new: &str, _step: &crate::replace::Step) {}
}

/// An observer that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Observer for Quiet {}

/// An action, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRecord {
    /// Its id in the plan.
    pub id: usize,
    /// What it does.
    pub description: String,
}

/// An action that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedAction {
    /// Its id in the plan.
    pub id: usize,
    /// What it does.
    pub description: String,
    /// The error.
    pub error: String,
    /// The provider's error kind, when a provider call failed (e.g.
    /// [`QuotaExceeded`](provider_core::ErrorKind::QuotaExceeded)).
    pub kind: Option<provider_core::ErrorKind>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Actions that completed.
    pub done: Vec<ActionRecord>,
    /// Actions that failed.
    pub failed: Vec<FailedAction>,
    /// Actions never started (after a failure or a stop).
    pub not_started: Vec<ActionRecord>,
    /// Whether the run was stopped by [`ExecuteOptions::stop`].
    pub stopped: bool,
}

impl Report {
    /// Whether every action completed.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.not_started.is_empty() && !self.stopped
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.done.len() + self.failed.len() + self.not_started.len();
        write!(f, "{} of {total} actions done", self.done.len())?;
        if self.stopped {
            write!(f, " (stopped)")?;
        }
        for a in &self.failed {
            write!(f, "\n  failed: #{} {}: {}", a.id, a.description, a.error)?;
        }
        if !self.not_started.is_empty() {
            write!(f, "\n  not started: {}", self.not_started.len())?;
            for a in self.not_started.iter().take(10) {
                write!(f, "\n    #{} {}", a.id, a.description)?;
            }
            if self.not_started.len() > 10 {
                write!(f, "\n    ...")?;
            }
        }
        if !self.is_complete() {
            write!(f, "\nrun the same command again to finish the job")?;
        }
        Ok(())
    }
}

/// What the executor runs actions with: the provider (already wrapped in the retry
/// layer by its [`crate::Cluster`]), the installer's hooks, and the knobs of the waits
/// that replacement and scaling plans contain.
pub(crate) struct Engine<'a> {
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) options: &'a ExecuteOptions,
    pub(crate) rolling: &'a ReplaceOptions,
    pub(crate) hooks: &'a dyn Hooks,
    pub(crate) observer: &'a dyn Observer,
}

/// Deletes the instances of several `DeleteInstance` actions with one batch call.
async fn delete_instances(
    engine: &Engine<'_>,
    actions: &[&PlannedAction],
) -> provider_core::Result<()> {
    let ids: Vec<String> = actions
        .iter()
        .filter_map(|pa| match &pa.action {
            Action::DeleteInstance { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    engine.provider.delete_instances(&ids).await
}

/// Runs `plan`, starting from the ids of the state it was made from.
pub(crate) async fn execute(engine: &Engine<'_>, plan: &Plan) -> Report {
    execute_made(engine, plan, None).await
}

/// As [`execute`], with `made`: the base group the lease created just before the run,
/// which the plan's create of it uses as it is (see [`crate::lease::Lease::created`]).
pub(crate) async fn execute_made(
    engine: &Engine<'_>,
    plan: &Plan,
    made: Option<provider_core::SecurityGroup>,
) -> Report {
    let registry =
        Registry::from_observed(&plan.observed, engine.rolling.poll_interval).with_made(made);
    let observer = engine.observer;
    let opts = engine.options;
    let n = plan.actions.len();
    let mut waiting: Vec<usize> = plan.actions.iter().map(|a| a.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for a in &plan.actions {
        for d in &a.deps {
            if let Some(list) = dependents.get_mut(*d) {
                list.push(a.id);
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut started = vec![false; n];
    let mut report = Report::default();
    let mut running = FuturesUnordered::new();
    let limit = opts.concurrency.max(1);
    let mut halted = false;
    // In a plan that only removes (destroy), instance deletes wait for each other (while
    // other actions run) so they go as one batch; a plan that also creates or waits
    // never holds one back.
    let hold_deletes = plan.actions.iter().all(|a| a.action.is_delete());
    let deletes_instance =
        |i: usize| matches!(plan.actions[i].action, Action::DeleteInstance { .. });
    let mut deletes_blocked = (0..n)
        .filter(|i| deletes_instance(*i) && waiting[*i] > 0)
        .count();
    let mut held: Vec<usize> = Vec::new();

    loop {
        if opts.stop.load(Ordering::SeqCst) && !halted {
            halted = true;
            report.stopped = true;
        }
        if !held.is_empty() && (deletes_blocked == 0 || running.is_empty()) {
            ready.extend(held.drain(..));
        }
        while !halted && running.len() < limit {
            let Some(i) = ready.pop_front() else { break };
            if hold_deletes && deletes_instance(i) && deletes_blocked > 0 && !running.is_empty() {
                held.push(i);
                continue;
            }
            // Instance deletes ready together go as one batch (one terminate call on
            // clouds that batch); each stays its own action in the report.
            let mut batch = vec![i];
            if matches!(plan.actions[i].action, Action::DeleteInstance { .. }) {
                ready.retain(|j| {
                    let same = matches!(plan.actions[*j].action, Action::DeleteInstance { .. });
                    if same {
                        batch.push(*j);
                    }
                    !same
                });
            }
            let actions: Vec<&PlannedAction> = batch.iter().map(|i| &plan.actions[*i]).collect();
            for pa in &actions {
                started[pa.id] = true;
                observer.started(pa);
            }
            let reg = &registry;
            running.push(async move {
                if let [pa] = actions.as_slice() {
                    let r = perform(engine, &pa.action, reg).await;
                    return vec![(*pa, r)];
                }
                let r = delete_instances(engine, &actions).await;
                actions
                    .into_iter()
                    .map(|pa| (pa, r.clone().map_err(Error::from)))
                    .collect()
            });
        }
        if running.is_empty() && !held.is_empty() && !halted {
            continue;
        }
        let Some(results) = running.next().await else {
            break;
        };
        for (pa, result) in results {
            observer.finished(pa, result.as_ref().err());
            let record = ActionRecord {
                id: pa.id,
                description: pa.action.to_string(),
            };
            match result {
                Ok(()) => {
                    tracing::debug!(action = pa.id, "{}", pa.action);
                    report.done.push(record);
                    for d in &dependents[pa.id] {
                        waiting[*d] -= 1;
                        if waiting[*d] == 0 {
                            if deletes_instance(*d) {
                                deletes_blocked -= 1;
                            }
                            ready.push_back(*d);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(action = pa.id, error = %e, "{}", pa.action);
                    halted = true;
                    let kind = match &e {
                        Error::Provider(p) => Some(p.kind()),
                        _ => None,
                    };
                    report.failed.push(FailedAction {
                        id: record.id,
                        description: record.description,
                        error: e.to_string(),
                        kind,
                    });
                }
            }
        }
    }
    report.not_started = plan
        .actions
        .iter()
        .filter(|a| !started[a.id])
        .map(|a| ActionRecord {
            id: a.id,
            description: a.action.to_string(),
        })
        .collect();
    report
}
