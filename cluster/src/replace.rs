//! Rolling replacement: every selected node is replaced by a new one in the same AZ and
//! role, without losing capacity (max-surge 1 / max-unavailable 0 by default, as Cluster
//! API's MachineDeployment).
//!
//! For each old node: create the replacement (`<slot>-r<generation>`), wait until it runs
//! and passes the probe and the [`Hooks::health`] check, call [`Hooks::on_ready`], add it
//! to every load balancer the old node is in and wait until the LB sees it healthy; then
//! take the old node out of the LBs, wait the drain period, call [`Hooks::drain`], move
//! its data volumes (detach, attach to the new node, check the new node again) and its
//! floating IPs, and only then delete it. Masters and storage nodes go one at a time, and
//! a master is only deleted while the others keep quorum.
//!
//! Crash safety: progress lives on the cloud. A run first tags every selected node
//! `plinth.replace=pending`, then records the command on the cluster's base security
//! group (`plinth.replace-op`); replacements carry `plinth.slot`, `plinth.generation` and
//! `plinth.replaces`. Every step is idempotent and derived from those tags, so rerunning
//! the same command after a crash at any point resumes where the cloud stands: the same
//! replacement name is found or created, nothing is duplicated, no volume is deleted.
//!
//! A replacement that never gets healthy is deleted again; the old node keeps serving
//! (its LB membership, volumes and floating IP are put back if they had moved) and the
//! error says why.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use provider_core::{
    Family, Instance, InstanceSpec, InstanceState, MemberHealth, MemberSpec, Provider, ProviderExt,
    ResourceKind, TagFilter, Tags,
};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::execute::Observer;
use crate::hooks::{Health, Hooks};
use crate::plan::{Desired, Observed, TAG_CLUSTER, TAG_ORDINAL, TAG_ROLE, TAG_SPEC_HASH};
use crate::slot::{
    canonical, generation_of, replacement_name, slot_of, TAG_GENERATION, TAG_REPLACE, TAG_REPLACES,
    TAG_SLOT,
};
use crate::spec::Role;
use crate::{Cluster, Error, Result};

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
    /// storage nodes always go one at a time).
    pub max_surge: usize,
    /// Nodes that may be replaced beyond `max_surge` at once. Old nodes always keep
    /// serving until their replacement is ready, so this only widens the batch.
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

/// What every step needs.
pub(crate) struct Ctx<'a> {
    pub(crate) p: Arc<dyn Provider>,
    pub(crate) cluster: &'a Cluster,
    pub(crate) opts: &'a ReplaceOptions,
    pub(crate) hooks: &'a dyn Hooks,
    pub(crate) progress: &'a dyn Observer,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(cluster: &'a Cluster, opts: &'a ReplaceOptions) -> Self {
        Self {
            p: cluster.retrying().clone(),
            cluster,
            opts,
            hooks: cluster.hooks(),
            progress: cluster.observer(),
        }
    }

    fn name(&self) -> &str {
        &self.cluster.spec().name
    }

    fn filter(&self) -> TagFilter {
        TagFilter::new(TAG_CLUSTER, self.name())
    }

    pub(crate) async fn observe(&self) -> Result<Observed> {
        Ok(Observed::fetch(self.p.as_ref(), self.name()).await?)
    }

    /// The desired state, with every role's count raised to cover the slots that exist
    /// (a role scaled beyond the spec's count still has a template for each slot).
    async fn desired(&self, observed: &Observed) -> Result<Desired> {
        let zones = self.cluster.zones().await?;
        let mut spec = self.cluster.spec().clone();
        for i in &observed.instances {
            let (Some(role), Some(ord)) = (role_of(i), ordinal_of(i)) else {
                continue;
            };
            let rs = spec.role_mut(role);
            rs.count = rs.count.max(ord + 1);
        }
        Ok(Desired::from_spec(
            &spec,
            &zones,
            &self.cluster.provider().capabilities(),
            &self.cluster.provider().families(),
        ))
    }
}

pub(crate) fn role_of(i: &Instance) -> Option<Role> {
    i.tags.get(TAG_ROLE).and_then(|r| Role::parse(r))
}

pub(crate) fn ordinal_of(i: &Instance) -> Option<usize> {
    i.tags.get(TAG_ORDINAL).and_then(|o| o.parse().ok())
}

fn rolling(node: &str, message: impl Into<String>) -> Error {
    Error::Rolling {
        node: node.to_string(),
        message: message.into(),
    }
}

/// Replaces the nodes `selector` picks, for [`Cluster::replace`] (which holds the
/// lease). Rerunning after a crash, a stop (see [`crate::ExecuteOptions::stop`]: the
/// replacements in flight finish, no new one starts) or a fixed failure resumes the
/// recorded command first.
pub(crate) async fn run(
    cluster: &Cluster,
    selector: &Selector,
    opts: &ReplaceOptions,
) -> Result<ReplaceReport> {
    let start = Instant::now();
    let ctx = Ctx::new(cluster, opts);
    let mut report = ReplaceReport::default();
    let key = selector.key();

    let observed = ctx.observe().await?;
    finalize_orphans(&ctx, &observed).await?;
    let base_name = format!("{}-base", ctx.name());
    let base = observed
        .groups
        .iter()
        .find(|g| g.name == base_name)
        .ok_or_else(|| Error::Plan {
            key: "ClusterName".into(),
            message: format!(
                "{} has no security group {base_name}: run apply first",
                ctx.name()
            ),
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
            run_marked(&ctx, &mut report).await?;
            finish_op(&ctx, &base.id, &op).await?;
            if op == key {
                report.elapsed = start.elapsed();
                return Ok(report);
            }
        }
        None => {}
    }

    let observed = ctx.observe().await?;
    let desired = ctx.desired(&observed).await?;
    let targets = select(selector, &observed, &desired)?;
    if targets.is_empty() {
        report.elapsed = start.elapsed();
        return Ok(report);
    }
    // Marks first, the command last: a crash in between leaves no command recorded, so
    // the rerun selects (and marks) the same nodes again.
    let mark: Tags = [(TAG_REPLACE.to_string(), PENDING.to_string())].into();
    for t in &targets {
        if t.tags.get(TAG_REPLACE).map(String::as_str) != Some(PENDING) {
            ctx.p
                .update_tags(ResourceKind::Instance, &t.id, &mark, &[])
                .await?;
        }
    }
    let op: Tags = [(TAG_REPLACE_OP.to_string(), key)].into();
    ctx.p
        .update_tags(ResourceKind::SecurityGroup, &base.id, &op, &[])
        .await?;
    let key = selector.key();
    run_marked(&ctx, &mut report).await?;
    finish_op(&ctx, &base.id, &key).await?;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Records that the command `key` finished (one tag write, so it is atomic).
async fn finish_op(ctx: &Ctx<'_>, base_id: &str, key: &str) -> Result<()> {
    let done: Tags = [(TAG_REPLACE_OP.to_string(), format!("{DONE}{key}"))].into();
    ctx.p
        .update_tags(ResourceKind::SecurityGroup, base_id, &done, &[])
        .await?;
    Ok(())
}

/// Replacements whose old node is gone lose their `replaces` tag (the last step of a
/// replacement, which a crash may have cut off).
async fn finalize_orphans(ctx: &Ctx<'_>, observed: &Observed) -> Result<()> {
    let names: BTreeSet<&str> = observed.instances.iter().map(|i| i.name.as_str()).collect();
    for i in &observed.instances {
        if let Some(old) = i.tags.get(TAG_REPLACES) {
            if !names.contains(old.as_str()) {
                ctx.p
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

/// Replaces every node marked pending: masters, then storage nodes, then nodes.
async fn run_marked(ctx: &Ctx<'_>, report: &mut ReplaceReport) -> Result<()> {
    for role in [Role::Master, Role::Storage, Role::Node] {
        let observed = ctx.observe().await?;
        let desired = ctx.desired(&observed).await?;
        let mut marked: Vec<&Instance> = observed
            .instances
            .iter()
            .filter(|i| {
                role_of(i) == Some(role)
                    && i.tags.get(TAG_REPLACE).map(String::as_str) == Some(PENDING)
            })
            .collect();
        marked.sort_by(|a, b| a.name.cmp(&b.name));
        let width = match role {
            Role::Node => (ctx.opts.max_surge + ctx.opts.max_unavailable).max(1),
            Role::Master | Role::Storage => 1,
        };
        for (k, chunk) in marked.chunks(width).enumerate() {
            if ctx.cluster.options().stop.load(Ordering::SeqCst) {
                return Err(Error::Stopped(format!(
                    "{} node(s) replaced in this run, {} of role {role} not started",
                    report.replaced.len(),
                    marked.len() - k * width
                )));
            }
            let results = join_all(chunk.iter().map(|old| replace_one(ctx, &desired, old))).await;
            for r in results {
                report.replaced.push(r?);
            }
        }
    }
    Ok(())
}

/// One LB membership: a listener and the member port.
#[derive(Debug, Clone)]
struct Membership {
    lb_id: String,
    lb_name: String,
    port: u16,
    target_port: u16,
}

async fn replace_one(ctx: &Ctx<'_>, desired: &Desired, old: &Instance) -> Result<Replaced> {
    let t0 = Instant::now();
    let slot = slot_of(old).to_string();
    let new_name = replacement_name(old);
    let role = old.tags.get(TAG_ROLE).cloned().unwrap_or_default();
    ctx.progress
        .replacing(&old.name, &new_name, &Step::Creating);

    let new = match ensure_replacement(ctx, desired, old, &slot, &new_name).await {
        Ok(n) => n,
        Err(e) => return Err(fail(ctx, old, &new_name, None, &[], e.to_string()).await),
    };
    let new = match wait_ready(ctx, &new).await {
        Ok(n) => n,
        Err(why) => return Err(fail(ctx, old, &new_name, Some(&new.id), &[], why).await),
    };
    ctx.progress.replacing(&old.name, &new_name, &Step::Ready);
    if let Err(e) = ctx.hooks.on_ready(&new).await {
        let why = format!("on_ready hook: {e}");
        return Err(fail(ctx, old, &new_name, Some(&new.id), &[], why).await);
    }

    // Load balancers: the new node joins every pool the old one is in (or, on a rerun,
    // the pools it already joined) and must be healthy there before the old one leaves.
    let memberships = memberships(ctx, old, &new).await?;
    for m in &memberships {
        let member = MemberSpec::new(new.id.clone(), m.target_port);
        ctx.p
            .add_load_balancer_member(&m.lb_id, m.port, &member)
            .await?;
    }
    if let Err(why) = wait_lb_healthy(ctx, &new.id, &memberships).await {
        return Err(fail(ctx, old, &new_name, Some(&new.id), &memberships, why).await);
    }
    ctx.progress
        .replacing(&old.name, &new_name, &Step::InLoadBalancer);

    for m in &memberships {
        let member = MemberSpec::new(old.id.clone(), m.target_port);
        ctx.p
            .remove_load_balancer_member(&m.lb_id, m.port, &member)
            .await?;
    }
    ctx.progress
        .replacing(&old.name, &new_name, &Step::Draining);
    if !memberships.is_empty() && !ctx.opts.drain.is_zero() {
        tokio::time::sleep(ctx.opts.drain).await;
    }
    if let Err(e) = ctx.hooks.drain(old).await {
        restore_members(ctx, &old.id, &memberships).await;
        let why = format!("drain hook: {e}");
        return Err(fail(ctx, old, &new_name, Some(&new.id), &memberships, why).await);
    }

    // Storage: detach from the old node, attach to the new one, check the new one again.
    let moved = move_volumes(ctx, desired, old, &new, &slot).await?;
    if moved {
        if let Err(why) = wait_ready(ctx, &new).await {
            let back = move_volumes_back(ctx, old, &new).await;
            restore_members(ctx, &old.id, &memberships).await;
            let why = match back {
                Ok(()) => why,
                Err(e) => format!("{why}; moving the volumes back failed too: {e}"),
            };
            return Err(fail(ctx, old, &new_name, Some(&new.id), &memberships, why).await);
        }
    }
    move_floating_ips(ctx, desired, old, &new, &slot).await?;
    ctx.progress.replacing(&old.name, &new_name, &Step::Moved);

    if role == Role::Master.as_str() {
        check_quorum(ctx, old).await?;
    }
    ctx.p.delete_instance(&old.id).await?;
    ctx.p
        .update_tags(
            ResourceKind::Instance,
            &new.id,
            &Tags::new(),
            &[TAG_REPLACES.to_string()],
        )
        .await?;
    ctx.progress.replacing(&old.name, &new_name, &Step::Done);
    Ok(Replaced {
        old: old.name.clone(),
        new: new_name,
        role,
        availability_zone: old.availability_zone.clone(),
        took: t0.elapsed(),
    })
}

/// Finds the replacement by its deterministic name, or creates it in the old node's AZ
/// from the spec's template of the slot.
async fn ensure_replacement(
    ctx: &Ctx<'_>,
    desired: &Desired,
    old: &Instance,
    slot: &str,
    new_name: &str,
) -> Result<Instance> {
    let existing = ctx
        .p
        .list_instances(&ctx.filter().and(TAG_SLOT, slot))
        .await?;
    if let Some(i) = existing.into_iter().find(|i| i.name == new_name) {
        return Ok(i);
    }
    let tmpl = desired
        .instances
        .iter()
        .find(|d| d.name == slot)
        .ok_or_else(|| rolling(&old.name, format!("the spec has no slot {slot}")))?;
    let observed_groups = ctx.p.list_security_groups(&ctx.filter()).await?;
    let mut groups = Vec::new();
    for g in &tmpl.groups {
        let id = observed_groups
            .iter()
            .find(|o| &o.name == g)
            .map(|o| o.id.clone())
            .ok_or_else(|| Error::Unresolved {
                kind: ResourceKind::SecurityGroup,
                name: g.clone(),
            })?;
        groups.push(id);
    }
    let subnet = match desired
        .zones
        .iter()
        .position(|z| z == &old.availability_zone)
    {
        Some(ix) => ctx.cluster.spec().network.subnet_for(ix),
        None => tmpl.subnet.clone(),
    };
    let mut tags = tmpl.tags.clone();
    tags.insert(TAG_SLOT.into(), slot.to_string());
    tags.insert(TAG_GENERATION.into(), (generation_of(old) + 1).to_string());
    tags.insert(TAG_REPLACES.into(), old.name.clone());
    let mut spec = InstanceSpec::new(
        new_name,
        old.availability_zone.clone(),
        tmpl.flavor.clone(),
        tmpl.image.clone(),
    )
    .with_security_groups(groups)
    .with_tags(tags);
    // The template holds the optional settings as options: copy them as they are.
    spec.network = tmpl.network.clone();
    spec.subnet = subnet;
    spec.keypair = tmpl.keypair.clone();
    spec.user_data = tmpl.user_data.clone();
    Ok(ctx.p.create_instance(&spec).await?)
}

/// Waits until `node` runs, passes the probe and the health hook; `Err` says why not.
pub(crate) async fn wait_ready(
    ctx: &Ctx<'_>,
    node: &Instance,
) -> std::result::Result<Instance, String> {
    let deadline = Instant::now() + ctx.opts.ready_timeout;
    loop {
        let last = match ctx.p.get_instance(&node.id).await {
            Ok(i) if i.state == InstanceState::Running => match check(ctx, &i).await {
                Ok(()) => return Ok(i),
                Err(why) => why,
            },
            Ok(i) if i.state == InstanceState::Failed => {
                return Err(format!("{} failed (state {:?})", i.name, i.state));
            }
            Ok(i) => format!("state {:?}", i.state),
            // Retryable errors were retried by the Retry layer already: this one is hard.
            Err(e) => return Err(e.to_string()),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{} not healthy after {}s: {last}",
                node.name,
                ctx.opts.ready_timeout.as_secs()
            ));
        }
        tokio::time::sleep(ctx.opts.poll_interval).await;
    }
}

async fn check(ctx: &Ctx<'_>, node: &Instance) -> std::result::Result<(), String> {
    if let Some(probe) = &ctx.opts.probe {
        let addr = node
            .private_ip
            .ok_or_else(|| "no private address yet".to_string())?;
        run_probe(addr, probe, ctx.opts.probe_timeout).await?;
    }
    match ctx.hooks.health(node).await {
        Health::Healthy => Ok(()),
        Health::Unhealthy(why) => Err(format!("health hook: {why}")),
    }
}

/// Runs one probe against `addr`.
pub async fn run_probe(
    addr: IpAddr,
    probe: &Probe,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let attempt = async {
        match probe {
            Probe::Tcp { port } => {
                tokio::net::TcpStream::connect((addr, *port))
                    .await
                    .map_err(|e| format!("tcp {addr}:{port}: {e}"))?;
                Ok(())
            }
            Probe::Http { port, path } => {
                let mut s = tokio::net::TcpStream::connect((addr, *port))
                    .await
                    .map_err(|e| format!("http {addr}:{port}: {e}"))?;
                let req =
                    format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
                s.write_all(req.as_bytes())
                    .await
                    .map_err(|e| format!("http {addr}:{port}: {e}"))?;
                let mut buf = Vec::new();
                s.read_to_end(&mut buf)
                    .await
                    .map_err(|e| format!("http {addr}:{port}: {e}"))?;
                let text = String::from_utf8_lossy(&buf);
                let status = text
                    .lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|c| c.parse::<u16>().ok());
                match status {
                    Some(c) if (200..400).contains(&c) => Ok(()),
                    Some(c) => Err(format!("http {addr}:{port}{path}: status {c}")),
                    None => Err(format!("http {addr}:{port}{path}: no HTTP answer")),
                }
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("probe of {addr} timed out after {timeout:?}")),
    }
}

async fn memberships(ctx: &Ctx<'_>, old: &Instance, new: &Instance) -> Result<Vec<Membership>> {
    if !ctx.cluster.provider().supports(Family::LoadBalancers) {
        return Ok(Vec::new());
    }
    let lbs = ctx.p.list_load_balancers(&ctx.filter()).await?;
    let mut out = Vec::new();
    for lb in &lbs {
        for l in &lb.listeners {
            let member = l
                .pool
                .members
                .iter()
                .find(|m| m.instance_id == old.id || m.instance_id == new.id);
            if let Some(m) = member {
                out.push(Membership {
                    lb_id: lb.id.clone(),
                    lb_name: lb.name.clone(),
                    port: l.port,
                    target_port: m.port,
                });
            }
        }
    }
    Ok(out)
}

async fn wait_lb_healthy(
    ctx: &Ctx<'_>,
    id: &str,
    memberships: &[Membership],
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + ctx.opts.ready_timeout;
    for m in memberships {
        loop {
            let health = match ctx.p.get_load_balancer(&m.lb_id).await {
                Ok(lb) => lb
                    .listener(m.port)
                    .and_then(|l| l.pool.members.iter().find(|x| x.instance_id == id))
                    .map(|x| x.health),
                Err(e) => return Err(e.to_string()),
            };
            if health == Some(MemberHealth::Healthy) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "load balancer {} never saw the new node healthy on port {} (last: {health:?})",
                    m.lb_name, m.port
                ));
            }
            tokio::time::sleep(ctx.opts.poll_interval).await;
        }
    }
    Ok(())
}

/// Puts `id` back into its pools (best effort: on a failure path, to keep serving).
async fn restore_members(ctx: &Ctx<'_>, id: &str, memberships: &[Membership]) {
    for m in memberships {
        let member = MemberSpec::new(id.to_string(), m.target_port);
        if let Err(e) = ctx
            .p
            .add_load_balancer_member(&m.lb_id, m.port, &member)
            .await
        {
            tracing::warn!(error = %e, lb = %m.lb_name, "could not put {id} back");
        }
    }
}

/// Moves the slot's data volumes (attached to the old node, or left detached by a crash
/// mid-move) to the new node. Returns whether any volume moved.
async fn move_volumes(
    ctx: &Ctx<'_>,
    desired: &Desired,
    old: &Instance,
    new: &Instance,
    slot: &str,
) -> Result<bool> {
    let slot_volumes: BTreeSet<&str> = desired
        .volumes
        .iter()
        .filter(|v| v.instance == slot)
        .map(|v| v.name.as_str())
        .collect();
    let volumes = ctx.p.list_volumes(&ctx.filter()).await?;
    let mut moved = false;
    for v in volumes {
        let on_old = v
            .attachment
            .as_ref()
            .is_some_and(|a| a.instance_id == old.id);
        let stranded = slot_volumes.contains(v.name.as_str()) && v.attachment.is_none();
        if !(on_old || stranded) {
            continue;
        }
        if on_old {
            ctx.p.detach_volume(&v.id).await?;
        }
        ctx.p.attach_volume(&v.id, &new.id).await?;
        moved = true;
    }
    Ok(moved)
}

async fn move_volumes_back(ctx: &Ctx<'_>, old: &Instance, new: &Instance) -> Result<()> {
    let volumes = ctx.p.list_volumes(&ctx.filter()).await?;
    for v in volumes {
        if v.attachment
            .as_ref()
            .is_some_and(|a| a.instance_id == new.id)
        {
            ctx.p.detach_volume(&v.id).await?;
            ctx.p.attach_volume(&v.id, &old.id).await?;
        }
    }
    Ok(())
}

async fn move_floating_ips(
    ctx: &Ctx<'_>,
    desired: &Desired,
    old: &Instance,
    new: &Instance,
    slot: &str,
) -> Result<()> {
    if !ctx.cluster.provider().supports(Family::FloatingIps) {
        return Ok(());
    }
    let slot_fips: BTreeSet<&str> = desired
        .floating_ips
        .iter()
        .filter(|f| f.instance == slot)
        .map(|f| f.name.as_str())
        .collect();
    for f in ctx.p.list_floating_ips(&ctx.filter()).await? {
        let on_old = f.instance_id.as_deref() == Some(old.id.as_str());
        let stranded = slot_fips.contains(f.name.as_str()) && f.instance_id.is_none();
        if on_old || stranded {
            ctx.p.associate_floating_ip(&f.id, &new.id).await?;
        }
    }
    Ok(())
}

/// A master may only go while the other running masters keep quorum.
async fn check_quorum(ctx: &Ctx<'_>, old: &Instance) -> Result<()> {
    let want = ctx.cluster.spec().masters.count;
    let quorum = want / 2 + 1;
    let masters = ctx
        .p
        .list_instances(&ctx.filter().and(TAG_ROLE, Role::Master.as_str()))
        .await?;
    let others = masters
        .iter()
        .filter(|m| m.id != old.id && m.state == InstanceState::Running)
        .count();
    if others < quorum {
        return Err(rolling(
            &old.name,
            format!(
                "deleting it would leave {others} running master(s), below the quorum of {quorum}: it keeps running"
            ),
        ));
    }
    Ok(())
}

/// The failure path: the new node goes again (out of the LBs first), the old one keeps
/// serving, and the error says why.
async fn fail(
    ctx: &Ctx<'_>,
    old: &Instance,
    new_name: &str,
    new_id: Option<&str>,
    memberships: &[Membership],
    why: String,
) -> Error {
    ctx.progress
        .replacing(&old.name, new_name, &Step::Failed(why.clone()));
    let mut cleanup = Vec::new();
    let new_id = match new_id {
        Some(id) => Some(id.to_string()),
        // A create that failed may still have left an instance behind.
        None => ctx
            .p
            .list_instances(&ctx.filter().and(TAG_SLOT, slot_of(old)))
            .await
            .ok()
            .and_then(|l| l.into_iter().find(|i| i.name == new_name).map(|i| i.id)),
    };
    if let Some(id) = &new_id {
        for m in memberships {
            let member = MemberSpec::new(id.clone(), m.target_port);
            if let Err(e) = ctx
                .p
                .remove_load_balancer_member(&m.lb_id, m.port, &member)
                .await
            {
                cleanup.push(e.to_string());
            }
        }
        if let Err(e) = ctx.p.delete_instance(id).await {
            cleanup.push(e.to_string());
        }
    }
    let mut message = format!(
        "replacement {new_name} failed: {why}; {} keeps serving (the replacement was removed)",
        old.name
    );
    if !cleanup.is_empty() {
        message.push_str(&format!(
            "; cleanup failed: {} (rerun to retry)",
            cleanup.join("; ")
        ));
    }
    rolling(&old.name, message)
}
