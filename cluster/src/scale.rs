//! Scaling one role up or down while keeping its AZ spread even.
//!
//! Up: the cluster is applied with the role's new count (every other role keeps the
//! count it has on the cloud, so an earlier `scale` is not undone); new slots go where
//! the planner's round robin puts them, which fills the least crowded AZs first. Each
//! new node is then checked for readiness and handed to [`Hooks::on_ready`](crate::Hooks::on_ready).
//!
//! Down: victims are taken from the most crowded AZ first (ties: the highest ordinal, so
//! a cluster laid out by `apply` keeps exactly the layout `apply` would give it); each
//! leaves its load balancers, drains, goes through [`Hooks::drain`](crate::Hooks::drain), has its data volumes
//! detached (kept, never deleted) and its floating IPs released, and is deleted.
//! Both directions derive everything from the cloud, so a rerun after a crash finishes
//! the job.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use provider_core::{Family, Instance, MemberSpec, ProviderExt, ResourceKind};
use serde::Serialize;

use crate::plan::TAG_CLUSTER;
use crate::replace::{ordinal_of, role_of, wait_ready, Ctx, ReplaceOptions, Step};
use crate::slot::{canonical, slot_of};
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
/// stop (see [`crate::ExecuteOptions::stop`], e.g. the first Ctrl-C) lets the steps in
/// flight finish and starts no new one; rerunning finishes the job.
pub(crate) async fn run(
    cluster: &Cluster,
    role: Role,
    count: usize,
    opts: &ReplaceOptions,
) -> Result<ScaleReport> {
    let start = Instant::now();
    let ctx = Ctx::new(cluster, opts);
    let observed = ctx.observe().await?;
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
    if role == Role::Master && count == 0 {
        return Err(Error::Plan {
            key: "MasterCount".into(),
            message: "a cluster needs at least one master".into(),
        });
    }

    if count >= from {
        // Every role keeps what it has on the cloud (an earlier scale is not undone),
        // except this one.
        let mut spec = cluster.spec().clone();
        for r in Role::ALL {
            let have = slots.values().filter(|i| role_of(i) == Some(r)).count();
            if have > 0 || r == role {
                spec.role_mut(r).count = if r == role { count } else { have };
            }
        }
        let before: Vec<String> = current.iter().map(|i| slot_of(i).to_string()).collect();
        let scaled =
            Cluster::new(spec, cluster.provider().clone()).with_options(cluster.options().clone());
        // The lease is held already (on the same base group).
        scaled.execute(scaled.plan().await?).await?;
        let observed = ctx.observe().await?;
        let mut new: Vec<&Instance> = canonical(&observed.instances)
            .values()
            .copied()
            .filter(|i| role_of(i) == Some(role) && !before.iter().any(|b| b == slot_of(i)))
            .collect();
        new.sort_by_key(|i| ordinal_of(i));
        for n in new {
            ctx.progress.replacing("", &n.name, &Step::Creating);
            let ready = wait_ready(&ctx, n)
                .await
                .map_err(|why| rolling(&n.name, why))?;
            ctx.hooks
                .on_ready(&ready)
                .await
                .map_err(|e| rolling(&n.name, format!("on_ready hook: {e}")))?;
            ctx.progress.replacing("", &n.name, &Step::Done);
            report.added.push(n.name.clone());
        }
    } else {
        let victims = pick_victims(&current, from - count);
        let total = victims.len();
        for (k, v) in victims.into_iter().enumerate() {
            if cluster.options().stop.load(Ordering::SeqCst) {
                return Err(Error::Stopped(format!(
                    "{k} of {total} {role} node(s) removed in this run"
                )));
            }
            remove_node(&ctx, v).await?;
            report.removed.push(v.name.clone());
        }
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

fn rolling(node: &str, message: impl Into<String>) -> Error {
    Error::Rolling {
        node: node.to_string(),
        message: message.into(),
    }
}

/// Cluster API's order: out of the LBs, connections finish, drain hook, detach volumes,
/// delete.
async fn remove_node(ctx: &Ctx<'_>, node: &Instance) -> Result<()> {
    let filter = provider_core::TagFilter::new(TAG_CLUSTER, &ctx.cluster.spec().name);
    ctx.progress.replacing(&node.name, "", &Step::Draining);
    let mut was_member = false;
    if ctx.cluster.provider().supports(Family::LoadBalancers) {
        for lb in ctx.p.list_load_balancers(&filter).await? {
            for l in &lb.listeners {
                for m in l.pool.members.iter().filter(|m| m.instance_id == node.id) {
                    was_member = true;
                    let member = MemberSpec::new(node.id.clone(), m.port);
                    ctx.p
                        .remove_load_balancer_member(&lb.id, l.port, &member)
                        .await?;
                }
            }
        }
    }
    if was_member && !ctx.opts.drain.is_zero() {
        tokio::time::sleep(ctx.opts.drain).await;
    }
    ctx.hooks
        .drain(node)
        .await
        .map_err(|e| rolling(&node.name, format!("drain hook: {e}")))?;
    for v in ctx.p.list_volumes(&filter).await? {
        if v.attachment
            .as_ref()
            .is_some_and(|a| a.instance_id == node.id)
        {
            // Data volumes are kept: only `destroy` deletes them.
            ctx.p.detach_volume(&v.id).await?;
        }
    }
    if ctx.cluster.provider().supports(Family::FloatingIps) {
        for f in ctx.p.list_floating_ips(&filter).await? {
            if f.instance_id.as_deref() == Some(node.id.as_str()) {
                ctx.p.release_floating_ip(&f.id).await?;
            }
        }
    }
    ctx.p.delete_instance(&node.id).await?;
    // Keep the kind in the log so an operator can match it with the provider's.
    tracing::info!(kind = %ResourceKind::Instance, node = %node.name, "removed");
    ctx.progress.replacing(&node.name, "", &Step::Done);
    Ok(())
}
