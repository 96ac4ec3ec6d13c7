//! Scaling one role up or down while keeping its AZ spread even.
//!
//! Up: the plan `apply` would run with the role's new count (every other role keeps the
//! count it has on the cloud, so an earlier `scale` is not undone); new slots go where
//! the planner's round robin puts them, which fills the least crowded AZs first. Each
//! new node is then checked for readiness and handed to [`Hooks::on_ready`](crate::Hooks::on_ready),
//! as actions of the same plan.
//!
//! Down: victims are taken from the most crowded AZ first (ties: the highest ordinal, so
//! a cluster laid out by `apply` keeps exactly the layout `apply` would give it); each
//! leaves its load balancers, drains, goes through [`Hooks::drain`](crate::Hooks::drain), has its data volumes
//! detached (kept, never deleted) and its floating IPs released, and is deleted.
//! Both directions are one plan each, run by the executor `apply` uses, and derive
//! everything from the cloud, so a rerun after a crash finishes the job.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use provider_core::Instance;
use serde::Serialize;

use crate::plan::{diff, DesiredInstance, DiffOptions, Plan};
use crate::replace::{moves, ordinal_of, role_of, run_moves, ReplaceOptions};
use crate::slot::canonical;
use crate::spec::Role;
use crate::{Cluster, Error, Result};

/// What a scaling run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScaleReport {
    /// The role.
    pub role: Role,
    /// Nodes of the role before.
    pub from: usize,
    /// Nodes of the role after.
    pub to: usize,
    /// Nodes added.
    pub added: Vec<String>,
    /// Nodes removed.
    pub removed: Vec<String>,
    /// Time taken.
    pub elapsed: Duration,
}

impl std::fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} -> {} in {:.1}s",
            self.role,
            self.from,
            self.to,
            self.elapsed.as_secs_f64()
        )?;
        if !self.added.is_empty() {
            write!(f, "\n  added: {}", self.added.join(", "))?;
        }
        if !self.removed.is_empty() {
            write!(f, "\n  removed: {}", self.removed.join(", "))?;
        }
        Ok(())
    }
}

/// Picks `k` nodes to remove: each from the currently most crowded AZ, ties broken by
/// the highest ordinal (then name).
pub fn pick_victims<'a>(nodes: &[&'a Instance], k: usize) -> Vec<&'a Instance> {
    let mut by_az: BTreeMap<&str, Vec<&'a Instance>> = BTreeMap::new();
    for n in nodes {
        by_az
            .entry(n.availability_zone.as_str())
            .or_default()
            .push(n);
    }
    let rank = |i: &Instance| (ordinal_of(i), i.name.clone());
    let mut out = Vec::new();
    for _ in 0..k {
        let Some(most) = by_az.values().map(Vec::len).max() else {
            break;
        };
        if most == 0 {
            break;
        }
        let pick = by_az
            .iter()
            .filter(|(_, v)| v.len() == most)
            .flat_map(|(az, v)| v.iter().map(move |i| (*az, *i)))
            .max_by_key(|(_, i)| rank(i));
        let Some((az, victim)) = pick else { break };
        let az = az.to_string();
        if let Some(v) = by_az.get_mut(az.as_str()) {
            v.retain(|i| i.id != victim.id);
        }
        out.push(victim);
    }
    out
}

/// Nodes per AZ, for reports and tests.
pub fn spread<'a>(nodes: impl IntoIterator<Item = &'a Instance>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for n in nodes {
        *m.entry(n.availability_zone.clone()).or_insert(0) += 1;
    }
    m
}

/// Scales `role` to `count` nodes, for [`Cluster::scale`] (which holds the lease). A
/// stop (see [`crate::ExecuteOptions::stop`], e.g. the first Ctrl-C) lets the actions in
/// flight finish and starts no new one; rerunning finishes the job.
pub(crate) async fn run(
    cluster: &Cluster,
    role: Role,
    count: usize,
    opts: &ReplaceOptions,
) -> Result<ScaleReport> {
    let start = Instant::now();
    if role == Role::Master && count == 0 {
        return Err(Error::Plan {
            key: "MasterCount".into(),
            message: "a cluster needs at least one master".into(),
        });
    }
    let observed = cluster.observe().await?;
    let slots = canonical(&observed.instances);
    let current: Vec<&Instance> = slots
        .values()
        .copied()
        .filter(|i| role_of(i) == Some(role))
        .collect();
    let from = current.len();
    let mut report = ScaleReport {
        role,
        from,
        to: count,
        added: Vec::new(),
        removed: Vec::new(),
        elapsed: Duration::ZERO,
    };

    let mut moves = Vec::new();
    let plan = if count >= from {
        // Every role keeps what it has on the cloud (an earlier scale is not undone),
        // except this one.
        let mut spec = cluster.spec().clone();
        for r in Role::ALL {
            let have = slots.values().filter(|i| role_of(i) == Some(r)).count();
            if have > 0 || r == role {
                spec.role_mut(r).count = if r == role { count } else { have };
            }
        }
        let scaled = Cluster::new(spec, cluster.provider().clone());
        let mut plan = diff(&scaled.desired().await?, &observed, &DiffOptions::default());
        plan.observed = observed.clone();
        if !plan.blockers.is_empty() {
            return Err(Error::Blocked(plan.blockers));
        }
        // As `plan` does: what the new nodes need is checked before anything is created.
        scaled.preflight(&plan).await?;
        // Each new node of the role is checked for readiness and handed to on_ready;
        // with hooks set, every node created (or found created but not told by a
        // crashed run) is, and each is marked told.
        let tell = cluster.tells();
        if tell {
            moves::owe_on_ready(&mut plan);
        }
        let created: Vec<(usize, DesiredInstance)> = plan
            .created_instances()
            .into_iter()
            .filter(|(_, i)| tell || i.role == role)
            .map(|(id, i)| (id, i.clone()))
            .collect();
        for (create, node) in created {
            moves.push(moves::arrival(
                &mut plan,
                &node.name,
                node.role.as_str(),
                &node.availability_zone,
                Some(create),
                tell,
            ));
        }
        if tell {
            for node in observed
                .instances
                .iter()
                .filter(|i| moves::owed_on_ready(i))
            {
                let role = role_of(node).map(Role::as_str).unwrap_or_default();
                moves.push(moves::arrival(
                    &mut plan,
                    &node.name,
                    role,
                    &node.availability_zone,
                    None,
                    tell,
                ));
            }
        }
        plan
    } else {
        let mut plan = Plan::from_observed(&cluster.spec().name, observed.clone());
        let mut after = Vec::new();
        for victim in pick_victims(&current, from - count) {
            let m = moves::removal(&mut plan, &observed, victim, &after);
            after = m.last().into_iter().collect();
            moves.push(m);
        }
        plan
    };
    let (done, failed) = run_moves(cluster, opts, &plan, &moves).await;
    for m in done {
        if m.old.is_empty() {
            report.added.push(m.new);
        } else {
            report.removed.push(m.old);
        }
    }
    report.added.sort();
    if let Some((error, _)) = failed {
        return Err(error);
    }
    report.elapsed = start.elapsed();
    Ok(report)
}
