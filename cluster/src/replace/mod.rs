//! Rolling replacement: every selected node is replaced by a new one in the same AZ and
//! role, without losing capacity (max-surge 1 / max-unavailable 0 by default, as Cluster
//! API's MachineDeployment).
//!
//! For each old node: create the replacement (`<slot>-r<generation>`), wait until it runs
//! and passes the probe and the [`Hooks::health`](crate::Hooks::health) check, call [`Hooks::on_ready`](crate::Hooks::on_ready), add it
//! to every load balancer the old node is in and wait until the LB sees it healthy; then
//! take the old node out of the LBs, wait the drain period, call [`Hooks::drain`](crate::Hooks::drain), move
//! its data volumes (detach, attach to the new node, check the new node again) and its
//! floating IPs, and only then delete it. Masters and storage nodes go one at a time, and
//! a master is only deleted while the others keep quorum.
//!
//! Each node's steps are actions of one [`Plan`] (built in `moves`), run by the same
//! executor as `apply`: masters one at a time, then storage nodes one at a time, then
//! nodes in a window of `max_surge + max_unavailable`, each starting as soon as the one
//! its window waits for is done.
//!
//! Crash safety: progress lives on the cloud. A run first tags every selected node
//! `plinth.replace=pending`, then records the command on the cluster's base security
//! group (`plinth.replace-op`); replacements carry `plinth.slot`, `plinth.generation` and
//! `plinth.replaces`. Every step is idempotent and derived from those tags, so rerunning
//! the same command after a crash at any point resumes where the cloud stands: the same
//! replacement name is found or created, nothing is duplicated, no volume is deleted.
//!
//! Delete-first (`max_surge` 0, for a project whose quota has no room for one more
//! node; see [`ReplaceOptions::max_surge`]): each old node leaves its load balancers,
//! drains, has its data volumes detached (kept) and is deleted before its successor is
//! created in the same slot and AZ, gets the volumes and floating IPs and serves again;
//! at most `max_unavailable` nodes at once, masters and storage nodes one at a time,
//! masters only while the others keep quorum. Before an old node goes, its slot is
//! recorded on the base group ([`crate::slot::TAG_VACANT`]) until the successor serves:
//! while the slot has no instance, a rerun finds it by that record. A surge create the
//! quota refuses stops the run with the old node serving and an error that suggests
//! `--max-surge 0`.
//!
//! A replacement that cannot be created or never gets healthy (or whose old node refuses
//! to drain) is undone by a second plan: the old node keeps serving (its LB membership,
//! volumes and floating IP are put back if they had moved), the successor is deleted,
//! and the error says why. A delete-first replacement is undone only while its old node
//! exists (a refused drain puts it back into its pools and drops the vacancy record);
//! once the old node is gone, a successor that fails is left for a rerun. Any other
//! failure (a provider call that failed hard) leaves the cloud as it is for a rerun to
//! resume.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use provider_core::{Instance, ResourceKind, Tags};
use serde::Serialize;

use crate::execute::execute;
use crate::plan::{Desired, Observed, Plan, TAG_ORDINAL, TAG_ROLE, TAG_SPEC_HASH};
use crate::slot::{self, canonical, slot_of, Vacancy, TAG_REPLACE, TAG_REPLACES};
use crate::spec::Role;
use crate::{Cluster, Error, Result};

pub(crate) mod moves;
mod preflight;

pub use crate::execute::run_probe;
use moves::Move;

/// Tag key on the base security group recording the replacement command in progress.
pub const TAG_REPLACE_OP: &str = "plinth.replace-op";
/// Prefix of [`TAG_REPLACE_OP`]'s value once the command finished.
pub const DONE: &str = "done:";
/// Value of [`TAG_REPLACE`] on a node selected for replacement.
pub const PENDING: &str = "pending";

/// Which nodes to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every node of the cluster (masters, then storage nodes, then nodes).
    All,
    /// Every node of one role.
    Role(Role),
    /// These nodes, by name (or slot name).
    Nodes(Vec<String>),
    /// The nodes whose spec hash differs from the spec's (after an image or flavor change).
    Stale,
}

impl Selector {
    /// The value recorded on the cloud while this command is in progress.
    fn key(&self) -> String {
        let key = match self {
            Selector::All => "all".to_string(),
            Selector::Role(r) => format!("role={r}"),
            Selector::Stale => "stale".to_string(),
            Selector::Nodes(names) => {
                let set: BTreeSet<&String> = names.iter().collect();
                let joined: Vec<&str> = set.into_iter().map(String::as_str).collect();
                format!("nodes={}", joined.join(","))
            }
        };
        // Tag values are bounded; a long node list is recorded by its hash.
        if key.len() > 200 {
            format!("nodes#{}", fnv(&key))
        } else {
            key
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A readiness probe on a node's private address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to the port is accepted.
    Tcp {
        /// Port.
        port: u16,
    },
    /// `GET path` on the port answers 2xx or 3xx.
    Http {
        /// Port.
        port: u16,
        /// Path, starting with `/`.
        path: String,
    },
}

/// Knobs of replacement and scaling.
#[derive(Debug, Clone)]
pub struct ReplaceOptions {
    /// Replacements created before their old nodes go, at once (nodes only; masters and
    /// storage nodes always go one at a time). 0 replaces delete-first, for projects
    /// whose quota has no room for one more node: each old node leaves its load
    /// balancers, drains, hands its data volumes over (detached, kept) and is deleted
    /// before its successor is created in the same slot and AZ; the successor gets the
    /// volumes and floating IPs and is healthy in the load balancers before the next
    /// node of the window goes. Needs `max_unavailable` >= 1. Masters go one at a time
    /// and only while the other running masters keep quorum: a replacement that would
    /// take them below it (e.g. a single master) is refused before anything changes.
    pub max_surge: usize,
    /// With `max_surge` 0: how many nodes may be down at once (nodes only; masters and
    /// storage nodes go one at a time). Otherwise the nodes that may be replaced beyond
    /// `max_surge` at once; old nodes keep serving until their replacement is ready, so
    /// this only widens the batch.
    pub max_unavailable: usize,
    /// How long a new node may take to run and pass its checks.
    pub ready_timeout: Duration,
    /// Pause between readiness polls.
    pub poll_interval: Duration,
    /// Probe a new node must pass, if any.
    pub probe: Option<Probe>,
    /// Timeout of one probe.
    pub probe_timeout: Duration,
    /// How long an old node stays up after leaving its load balancers.
    pub drain: Duration,
    /// Replace the same selection again although the last run of it finished (the
    /// cloud records finished commands so a rerun after a crash does not repeat them).
    pub again: bool,
}

impl ReplaceOptions {
    /// Checks the options: `max_surge` 0 needs `max_unavailable` >= 1 (the error names
    /// the CLI flags).
    pub fn validate(&self) -> Result<()> {
        if self.max_surge == 0 && self.max_unavailable == 0 {
            return Err(Error::Plan {
                key: "max_surge".into(),
                message: "--max-surge 0 replaces delete-first and needs --max-unavailable 1 or \
                          more (how many nodes of a role may be down at once)"
                    .into(),
            });
        }
        Ok(())
    }
}

impl Default for ReplaceOptions {
    fn default() -> Self {
        Self {
            max_surge: 1,
            max_unavailable: 0,
            ready_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            probe: None,
            probe_timeout: Duration::from_secs(2),
            drain: Duration::from_secs(5),
            again: false,
        }
    }
}

/// A step of one node's replacement, for progress output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The replacement is being created (or found, on a rerun).
    Creating,
    /// It runs and passed its checks.
    Ready,
    /// It serves in the load balancers.
    InLoadBalancer,
    /// The old node left the load balancers and is draining.
    Draining,
    /// Data volumes and floating IPs moved to the replacement.
    Moved,
    /// The old node is gone.
    Done,
    /// The replacement failed; the old node keeps serving.
    Failed(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Creating => f.write_str("creating"),
            Step::Ready => f.write_str("ready"),
            Step::InLoadBalancer => f.write_str("in load balancer"),
            Step::Draining => f.write_str("draining"),
            Step::Moved => f.write_str("volumes and addresses moved"),
            Step::Done => f.write_str("done"),
            Step::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// One node replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replaced {
    /// The old node's name.
    pub old: String,
    /// The new node's name.
    pub new: String,
    /// Role.
    pub role: String,
    /// AZ (both nodes').
    pub availability_zone: String,
    /// Time taken.
    pub took: Duration,
}

/// What a replacement run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplaceReport {
    /// Nodes replaced, in order.
    pub replaced: Vec<Replaced>,
    /// Whether the run resumed a command a previous run had started.
    pub resumed: bool,
    /// Whether nothing was done because the same command had finished already (see
    /// [`ReplaceOptions::again`]).
    pub already_done: bool,
    /// Time taken.
    pub elapsed: Duration,
}

impl fmt::Display for ReplaceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.already_done {
            return f.write_str(
                "nothing to do: the same replacement finished before (ask again to repeat it)",
            );
        }
        write!(
            f,
            "replaced {} node(s) in {:.1}s{}",
            self.replaced.len(),
            self.elapsed.as_secs_f64(),
            if self.resumed {
                " (resumed an earlier run)"
            } else {
                ""
            }
        )?;
        for r in &self.replaced {
            write!(
                f,
                "\n  {} -> {} ({}, {}) in {:.1}s",
                r.old,
                r.new,
                r.role,
                r.availability_zone,
                r.took.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

pub(crate) fn role_of(i: &Instance) -> Option<Role> {
    i.tags.get(TAG_ROLE).and_then(|r| Role::parse(r))
}

pub(crate) fn ordinal_of(i: &Instance) -> Option<usize> {
    i.tags.get(TAG_ORDINAL).and_then(|o| o.parse().ok())
}

/// The desired state, with every role's count raised to cover the slots that exist
/// (a role scaled beyond the spec's count still has a template for each slot).
async fn desired_covering(cluster: &Cluster, observed: &Observed) -> Result<Desired> {
    let zones = cluster.zones().await?;
    let mut spec = cluster.spec().clone();
    let mut slots: Vec<(Role, usize)> = observed
        .instances
        .iter()
        .filter_map(|i| Some((role_of(i)?, ordinal_of(i)?)))
        .collect();
    // Slots a delete-first replacement emptied still need their template.
    let base = crate::lease::base_group_name(&spec.name);
    slots.extend(
        vacancies_of(observed, &base)
            .iter()
            .filter_map(|v| slot::parse_slot(&spec.name, &v.slot)),
    );
    for (role, ord) in slots {
        let rs = spec.role_mut(role);
        rs.count = rs.count.max(ord + 1);
    }
    Ok(Desired::from_spec(
        &spec,
        &zones,
        &cluster.provider().capabilities(),
        &provider_core::ProviderExt::families(cluster.provider().as_ref()),
    ))
}

/// Replaces the nodes `selector` picks, for [`Cluster::replace`] (which holds the
/// lease). Rerunning after a crash, a stop (see [`crate::ExecuteOptions::stop`]: the
/// actions in flight finish, no new one starts) or a fixed failure resumes the recorded
/// command first.
pub(crate) async fn run(
    cluster: &Cluster,
    selector: &Selector,
    opts: &ReplaceOptions,
) -> Result<ReplaceReport> {
    opts.validate()?;
    let start = Instant::now();
    let p = cluster.retrying();
    let name = &cluster.spec().name;
    let mut report = ReplaceReport::default();
    let key = selector.key();

    let observed = cluster.observe().await?;
    finalize_orphans(cluster, &observed).await?;
    let base_name = crate::lease::base_group_name(name);
    let base = observed
        .groups
        .iter()
        .find(|g| g.name == base_name)
        .ok_or_else(|| Error::Plan {
            key: "ClusterName".into(),
            message: format!("{name} has no security group {base_name}: run apply first"),
        })?
        .clone();

    match base.tags.get(TAG_REPLACE_OP).cloned() {
        // The cloud cannot tell "finished, reply lost" from "finished": a repeat of the
        // same selection is refused unless asked for (stale selection repeats naturally
        // find nothing).
        Some(op)
            if op.strip_prefix(DONE) == Some(key.as_str())
                && !opts.again
                && *selector != Selector::Stale =>
        {
            report.already_done = true;
            report.elapsed = start.elapsed();
            return Ok(report);
        }
        Some(op) if op.starts_with(DONE) => {}
        Some(op) => {
            report.resumed = true;
            run_marked(cluster, opts, &mut report).await?;
            finish_op(cluster, &base.id, &op).await?;
            if op == key {
                report.elapsed = start.elapsed();
                return Ok(report);
            }
        }
        None => {}
    }

    let observed = cluster.observe().await?;
    let desired = desired_covering(cluster, &observed).await?;
    let targets = select(selector, &observed, &desired)?;
    if targets.is_empty() {
        report.elapsed = start.elapsed();
        return Ok(report);
    }
    if opts.max_surge == 0 {
        // Refused before anything is marked.
        let quorum = cluster.spec().masters.count / 2 + 1;
        let vacant = vacancies_of(&observed, &base_name);
        refuse_below_quorum(name, &observed, &vacant, quorum, |i| {
            targets.iter().any(|t| t.id == i.id)
        })?;
    }
    preflight::check(cluster, &targets, opts).await?;
    // Marks first, the command last: a crash in between leaves no command recorded, so
    // the rerun selects (and marks) the same nodes again.
    let mark: Tags = [(TAG_REPLACE.to_string(), PENDING.to_string())].into();
    for t in &targets {
        if t.tags.get(TAG_REPLACE).map(String::as_str) != Some(PENDING) {
            p.update_tags(ResourceKind::Instance, &t.id, &mark, &[])
                .await?;
        }
    }
    let op: Tags = [(TAG_REPLACE_OP.to_string(), key.clone())].into();
    p.update_tags(ResourceKind::SecurityGroup, &base.id, &op, &[])
        .await?;
    run_marked(cluster, opts, &mut report).await?;
    finish_op(cluster, &base.id, &key).await?;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Records that the command `key` finished (one tag write, so it is atomic).
async fn finish_op(cluster: &Cluster, base_id: &str, key: &str) -> Result<()> {
    let done: Tags = [(TAG_REPLACE_OP.to_string(), format!("{DONE}{key}"))].into();
    cluster
        .retrying()
        .update_tags(ResourceKind::SecurityGroup, base_id, &done, &[])
        .await?;
    Ok(())
}

/// Replacements whose old node is gone lose their `replaces` tag (the last step of a
/// replacement, which a crash may have cut off).
async fn finalize_orphans(cluster: &Cluster, observed: &Observed) -> Result<()> {
    let names: BTreeSet<&str> = observed.instances.iter().map(|i| i.name.as_str()).collect();
    for i in &observed.instances {
        if let Some(old) = i.tags.get(TAG_REPLACES) {
            if !names.contains(old.as_str()) {
                cluster
                    .retrying()
                    .update_tags(
                        ResourceKind::Instance,
                        &i.id,
                        &Tags::new(),
                        &[TAG_REPLACES.to_string()],
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// The nodes `selector` picks now, one per slot.
fn select(selector: &Selector, observed: &Observed, desired: &Desired) -> Result<Vec<Instance>> {
    let by_slot = canonical(&observed.instances);
    let mut nodes: Vec<&Instance> = by_slot
        .values()
        .copied()
        .filter(|i| role_of(i).is_some())
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let picked: Vec<&Instance> = match selector {
        Selector::All => nodes,
        Selector::Role(r) => nodes
            .into_iter()
            .filter(|i| role_of(i) == Some(*r))
            .collect(),
        Selector::Stale => nodes
            .into_iter()
            .filter(|i| {
                let want = desired
                    .instances
                    .iter()
                    .find(|d| d.name == slot_of(i))
                    .and_then(|d| d.tags.get(TAG_SPEC_HASH));
                want.is_some() && i.tags.get(TAG_SPEC_HASH) != want
            })
            .collect(),
        Selector::Nodes(names) => {
            let mut out = Vec::new();
            for n in names {
                match nodes.iter().find(|i| &i.name == n || slot_of(i) == n) {
                    Some(i) => out.push(*i),
                    None => {
                        return Err(Error::Plan {
                            key: "nodes".into(),
                            message: format!(
                            "{n} is not a node of this cluster: see `plinth status` for the names"
                        ),
                        })
                    }
                }
            }
            out
        }
    };
    Ok(picked.into_iter().cloned().collect())
}

/// Replaces every node marked pending, as one plan: masters one at a time, then storage
/// nodes one at a time, then nodes in windows of `max_surge + max_unavailable`. With
/// `max_surge` 0 the old nodes go first ([`moves::replacement_delete_first`]); slots a
/// delete-first run emptied (recorded on the base group) are filled first, whatever the
/// options, and a node whose slot is recorded as vacant continues delete-first.
async fn run_marked(
    cluster: &Cluster,
    opts: &ReplaceOptions,
    report: &mut ReplaceReport,
) -> Result<()> {
    let observed = cluster.observe().await?;
    let desired = desired_covering(cluster, &observed).await?;
    let name = &cluster.spec().name;
    let quorum = cluster.spec().masters.count / 2 + 1;
    let base_group = crate::lease::base_group_name(name);
    let vacant = vacancies_of(&observed, &base_group);
    let network = cluster.spec().network.clone();
    let plan_observed = observed.clone();
    let ctx = moves::Context {
        desired: &desired,
        network: &network,
        observed: &plan_observed,
        base_group: &base_group,
        tell: cluster.tells(),
    };
    let delete_first = opts.max_surge == 0;
    if delete_first {
        refuse_below_quorum(name, &observed, &vacant, quorum, |i| {
            i.tags.get(TAG_REPLACE).map(String::as_str) == Some(PENDING)
                && !vacant.iter().any(|v| v.old_name() == i.name)
        })?;
    }
    let mut plan = Plan::from_observed(name, observed);
    // A slot filled again by someone else (e.g. `apply` run after a crash, which
    // creates the slot's first-generation name) is no longer vacant: its record goes,
    // and nothing is created for it. The slot's own nodes are the old one while marked
    // pending, and the successor.
    let (vacant, refilled): (Vec<Vacancy>, Vec<Vacancy>) = vacant.into_iter().partition(|v| {
        !ctx.observed.instances.iter().any(|i| {
            let old = i.name == v.old_name()
                && i.tags.get(TAG_REPLACE).map(String::as_str) == Some(PENDING);
            slot_of(i) == v.slot && !old && i.name != v.successor()
        })
    });
    for v in refilled {
        tracing::warn!(slot = %v.slot, "the slot was filled again: its vacancy record is dropped");
        plan.push(
            crate::plan::Action::TagGroup {
                group: base_group.clone(),
                set: Tags::new(),
                remove: vec![v.key()],
            },
            [],
        );
    }
    let mut moves = Vec::new();
    let mut previous_role: Vec<usize> = Vec::new();
    for role in [Role::Master, Role::Storage, Role::Node] {
        let pending = |i: &Instance| {
            role_of(i) == Some(role) && i.tags.get(TAG_REPLACE).map(String::as_str) == Some(PENDING)
        };
        // Slots emptied by a delete-first run first (their nodes are down), then the
        // marked nodes by name.
        let mut jobs: Vec<(Option<&Vacancy>, Option<&Instance>)> = vacant
            .iter()
            .filter(|v| slot::parse_slot(name, &v.slot).map(|(r, _)| r) == Some(role))
            .filter(|v| {
                !ctx.observed
                    .instances
                    .iter()
                    .any(|i| i.name == v.old_name())
            })
            .map(|v| (Some(v), None))
            .collect();
        let mut marked: Vec<&Instance> = ctx
            .observed
            .instances
            .iter()
            .filter(|i| pending(i))
            .collect();
        marked.sort_by(|a, b| a.name.cmp(&b.name));
        jobs.extend(marked.into_iter().map(|i| {
            let recorded = vacant
                .iter()
                .find(|v| v.old_name() == i.name && v.slot == slot_of(i));
            (recorded, Some(i))
        }));
        let width = match role {
            Role::Node => (opts.max_surge + opts.max_unavailable).max(1),
            Role::Master | Role::Storage => 1,
        };
        let master_quorum = (role == Role::Master).then_some(quorum);
        let mut ends: Vec<usize> = Vec::new();
        for (k, (recorded, old)) in jobs.into_iter().enumerate() {
            let mut after = previous_role.clone();
            if k >= width {
                after.extend(ends.get(k - width).copied());
            }
            let m = match (recorded, old) {
                (Some(v), old) => moves::replacement_delete_first(
                    &mut plan,
                    &ctx,
                    v,
                    old,
                    true,
                    master_quorum,
                    &after,
                )?,
                (None, Some(old)) if delete_first => moves::replacement_delete_first(
                    &mut plan,
                    &ctx,
                    &Vacancy::of(old),
                    Some(old),
                    false,
                    master_quorum,
                    &after,
                )?,
                (None, Some(old)) => {
                    moves::replacement(&mut plan, &ctx, old, master_quorum, &after)?
                }
                (None, None) => continue,
            };
            ends.extend(m.last());
            moves.push(m);
        }
        if !ends.is_empty() {
            previous_role = ends;
        }
    }
    let (done, failed) = run_moves(cluster, opts, &plan, &moves).await;
    report.replaced.extend(done);
    let Some((outcome, failures)) = failed else {
        return Ok(());
    };
    // Undo the replacements that failed their checks; anything else is resumed by a rerun.
    let failing: Vec<(&Move, &crate::execute::FailedAction)> = moves
        .iter()
        .filter_map(|m| {
            failures
                .iter()
                .find(|f| m.rolls_back_on(f.id))
                .map(|f| (m, f))
        })
        .collect();
    let Some((first, failure)) = failing.first() else {
        return Err(outcome);
    };
    let observed = cluster.observe().await?;
    let mut undo = Plan::from_observed(name, observed);
    let undo_observed = undo.observed.clone();
    let undo_ctx = moves::Context {
        observed: &undo_observed,
        ..ctx
    };
    for (m, _) in &failing {
        if let Some(old) = undo_observed.instances.iter().find(|i| i.name == m.old) {
            if m.delete_first {
                moves::restore(&mut undo, &undo_ctx, old);
            } else {
                moves::rollback(&mut undo, &desired, &undo_observed, old, &m.new);
            }
        }
    }
    let (_, undo_failed) = run_moves(cluster, opts, &undo, &[]).await;
    let mut message = if first.delete_first {
        format!(
            "replacement of {} failed: {}; it keeps serving (back in its load balancers)",
            first.old, failure.error
        )
    } else {
        format!(
            "replacement {} failed: {}; {} keeps serving (the replacement was removed)",
            first.new, failure.error, first.old
        )
    };
    if failure.kind == Some(provider_core::ErrorKind::QuotaExceeded) {
        message.push_str(&format!(
            "; the project's quota has no room for a new node next to the old one: \
             replace delete-first with --max-surge 0 --max-unavailable 1 (each old node goes \
             before its successor comes, at most {} node(s) of a role down at once)",
            opts.max_unavailable.max(1)
        ));
    }
    if let Some((_, failures)) = undo_failed {
        let errors: Vec<String> = failures.into_iter().map(|f| f.error).collect();
        message.push_str(&format!(
            "; cleanup failed: {} (rerun to retry)",
            errors.join("; ")
        ));
    }
    Err(Error::Rolling {
        node: first.old.clone(),
        message,
    })
}

/// The vacancies recorded on the base group `base_group`.
fn vacancies_of(observed: &Observed, base_group: &str) -> Vec<Vacancy> {
    observed
        .groups
        .iter()
        .find(|g| g.name == base_group)
        .map(|g| slot::vacancies(&g.tags))
        .unwrap_or_default()
}

/// Refuses a delete-first replacement of the masters `selected` picks when the cluster's
/// masters could not keep quorum with one of them down (e.g. a single master): such
/// masters need a surge node. Counts master slots (filled, or emptied by a delete-first
/// run), not running masters: whether the others run when a master is about to go is
/// checked then, by the move's quorum check.
fn refuse_below_quorum(
    cluster: &str,
    observed: &Observed,
    vacant: &[Vacancy],
    quorum: usize,
    selected: impl Fn(&Instance) -> bool,
) -> Result<()> {
    let masters: Vec<&Instance> = canonical(&observed.instances)
        .into_values()
        .filter(|i| role_of(i) == Some(Role::Master))
        .collect();
    if !masters.iter().any(|i| selected(i)) {
        return Ok(());
    }
    let emptied = vacant
        .iter()
        .filter(|v| slot::parse_slot(cluster, &v.slot).map(|(r, _)| r) == Some(Role::Master))
        .filter(|v| !masters.iter().any(|i| slot_of(i) == v.slot))
        .count();
    let others = (masters.len() + emptied).saturating_sub(1);
    if others < quorum {
        return Err(Error::Plan {
            key: "max_surge".into(),
            message: format!(
                "--max-surge 0 deletes a master before its successor exists, which would leave \
                 {others} master(s), below the quorum of {quorum}: replace the masters with \
                 --max-surge 1 (room for one more instance), or other roles with --max-surge 0"
            ),
        });
    }
    Ok(())
}

/// Runs a plan of moves with the cluster's engine. Returns the moves completed and, when
/// the run did not complete, the error to report with the failed actions.
pub(crate) async fn run_moves(
    cluster: &Cluster,
    opts: &ReplaceOptions,
    plan: &Plan,
    moves: &[Move],
) -> (
    Vec<Replaced>,
    Option<(Error, Vec<crate::execute::FailedAction>)>,
) {
    let tracker = moves::Tracker::new(cluster.observer(), moves);
    let engine = cluster.engine(opts, &tracker);
    let report = execute(&engine, plan).await;
    let done: BTreeSet<usize> = report.done.iter().map(|a| a.id).collect();
    let finished = tracker.finished(&done);
    if report.is_complete() {
        return (finished, None);
    }
    let failures = report.failed.clone();
    let error = if report.stopped && failures.is_empty() {
        Error::Stopped(format!(
            "{} node(s) done in this run, {} action(s) not started",
            finished.len(),
            report.not_started.len()
        ))
    } else {
        Error::Incomplete(Box::new(report))
    };
    (finished, Some((error, failures)))
}
