//! The executor's scenarios on the simulated cloud: bring-up (with and without a rate
//! limit) and rolling replacement.
//!
//! Each row's *measured* time is the executor's run of the plan: from the start of its
//! first action to the end of its last (recorded by [`Recorder`]), against the *limit*
//! of [`crate::model`] for the same plan. The detail column adds the whole command as a
//! user runs it (`apply`: planning, the operator lease, the run and the release;
//! `replace`: marking the nodes, the lease, the run), which the limit does not cover.
//! Every option is the library's default (concurrency 8, batches of 25, a 1 s lease
//! settle, ...) except the drain period, which is [`Costs::drain`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::plan::DiffOptions;
use cluster::replace::ReplaceOptions;
use cluster::{Cluster, ClusterSpec, Role, Selector};
use provider_core::layer::{Instrumented, RateLimit};

use crate::cloud::{sim_cloud, spec_text};
use crate::error::{Context, Error, Result};
use crate::model::{bringup_calls, critical_path, plan_calls, plan_steps, Costs};
use crate::record::Recorder;
use crate::report::{Row, Target, Value};

/// The target for a bring-up: wall <= 1.15 x critical path.
pub const BRINGUP_TARGET: f64 = 1.15;
/// The target under a rate limit: wall <= 1.10 x calls / rate.
pub const RATE_LIMITED_TARGET: f64 = 1.10;

/// A cluster on the simulated cloud, with what records its runs.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The cluster.
    pub cluster: Cluster,
    /// Records the executor's runs.
    pub recorder: Arc<Recorder>,
    /// Counts the calls that reach the cloud.
    pub metrics: Instrumented,
    /// The cloud's fixed costs.
    pub costs: Costs,
}

/// The node counts of a topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    /// Masters.
    pub masters: usize,
    /// Worker nodes.
    pub nodes: usize,
    /// Storage nodes (each with a data volume).
    pub storage: usize,
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}+{}", self.masters, self.nodes, self.storage)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A client-side rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls per second.
    pub rate: u32,
    /// Calls admitted at once after a quiet spell. A burst of 1 would make `calls /
    /// rate` an exact floor, but every late wake-up of a waiting call (tokio's 1 ms
    /// timer, a loaded machine) then loses its slot for good; a burst of 2 absorbs that
    /// and lowers the floor by one call's spacing at most.
    pub burst: u32,
}

/// Brings `topology` up from nothing on a fresh simulated cloud (behind a client-side
/// `rate` limit when given) and measures it against its limit. Returns the row and the
/// cluster, for the scenarios that follow on it.
pub async fn bring_up(
    scenario: &str,
    topology: Topology,
    costs: &Costs,
    rate: Option<Rate>,
) -> Result<(Row, Bench)> {
    let cloud = sim_cloud(costs, rate.map(|r| RateLimit::with_burst(r.rate, r.burst)));
    let text = spec_text("bench", topology.masters, topology.nodes, topology.storage);
    let spec = ClusterSpec::parse(&format!("{topology}.properties"), &text).during(scenario)?;
    let recorder = Arc::new(Recorder::new(cloud.metrics.clone()));
    let cluster = Cluster::new(spec, cloud.provider.clone()).with_observer(recorder.clone());
    let desired = cluster.desired().await.during(scenario)?;
    let min_calls = bringup_calls(&desired, DiffOptions::default().batch_size);

    let calls_before = cloud.metrics.snapshot().total_calls();
    let t0 = Instant::now();
    let plan = cluster.plan().await.during(scenario)?;
    cluster.run(plan.clone()).await.during(scenario)?;
    let command = t0.elapsed();
    let command_calls = cloud.metrics.snapshot().total_calls() - calls_before;
    let run = recorder.take();
    if run.actions.len() != plan.actions.len() || run.failed > 0 {
        return Err(Error::Unexpected {
            scenario: scenario.to_string(),
            message: format!(
                "{} of {} actions ran, {} failed",
                run.actions.len(),
                plan.actions.len(),
                run.failed
            ),
        });
    }

    let cp = critical_path(&plan_steps(&plan.actions, costs)).during(scenario)?;
    let plan_min = plan_calls(&plan.actions, costs);
    let (limit, target, bound) = match rate {
        None => (
            cp.length,
            Target::AtMost(BRINGUP_TARGET),
            format!(
                "critical path {} ({} steps)",
                secs(cp.length),
                cp.steps.len()
            ),
        ),
        Some(Rate { rate: r, burst }) => {
            let floor = Duration::from_secs_f64(min_calls as f64 / f64::from(r));
            (
                floor.max(cp.length),
                Target::AtMost(RATE_LIMITED_TARGET),
                format!(
                    "max(calls/rate {} at {r}/s (burst {burst}), critical path {})",
                    secs(floor),
                    secs(cp.length)
                ),
            )
        }
    };
    let mut detail = format!(
        "limit = {bound}; calls {min_calls} min / {} made; whole apply {} with {command_calls} calls (plan, lease, run)",
        run.calls,
        secs(command)
    );
    if plan_min != min_calls {
        detail.push_str(&format!(
            "; the plan's actions need {plan_min} calls, not {min_calls}"
        ));
    }
    let row = Row {
        scenario: scenario.to_string(),
        measured: Value::Time(run.wall),
        limit: Value::Time(limit),
        target,
        detail,
    };
    let bench = Bench {
        cluster,
        recorder,
        metrics: cloud.metrics,
        costs: *costs,
    };
    Ok((row, bench))
}

/// Replaces every worker node of `bench`'s cluster with `max_surge` (max-unavailable 0,
/// the drain period [`Costs::drain`]) and measures the run against the critical path
/// of the plan that ran. `nodes` is how many must be replaced.
pub async fn replace_nodes(
    scenario: &str,
    bench: &Bench,
    max_surge: usize,
    nodes: usize,
) -> Result<Row> {
    let opts = ReplaceOptions {
        max_surge,
        drain: bench.costs.drain,
        // The same selection again, when an earlier scenario replaced it already.
        again: true,
        ..ReplaceOptions::default()
    };
    bench.recorder.take();
    let calls_before = bench.metrics.snapshot().total_calls();
    let t0 = Instant::now();
    let report = bench
        .cluster
        .replace(&Selector::Role(Role::Node), &opts)
        .await
        .during(scenario)?;
    let command = t0.elapsed();
    let command_calls = bench.metrics.snapshot().total_calls() - calls_before;
    let run = bench.recorder.take();
    let in_order = run.actions.iter().enumerate().all(|(i, a)| a.id == i);
    if report.replaced.len() != nodes || run.failed > 0 || !in_order {
        return Err(Error::Unexpected {
            scenario: scenario.to_string(),
            message: format!(
                "{} of {nodes} nodes replaced, {} actions failed, every action started: {in_order}",
                report.replaced.len(),
                run.failed
            ),
        });
    }
    let costs = &bench.costs;
    let cp = critical_path(&plan_steps(&run.actions, costs)).during(scenario)?;
    let min_calls = plan_calls(&run.actions, costs);
    let per_node = cp.length.as_secs_f64() / nodes.div_ceil(max_surge.max(1)) as f64;
    Ok(Row {
        scenario: scenario.to_string(),
        measured: Value::Time(run.wall),
        limit: Value::Time(cp.length),
        target: Target::None,
        detail: format!(
            "limit = critical path ({} nodes in windows of {max_surge}, {per_node:.2} s a node); calls {min_calls} min / {} made; whole replace {} with {command_calls} calls",
            nodes,
            run.calls,
            secs(command)
        ),
    })
}
