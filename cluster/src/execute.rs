//! The executor: runs a [`Plan`]'s DAG with bounded concurrency. Each action starts
//! the moment its own dependencies are done (no waves), so bring-up time approaches the
//! plan's critical path. Retryable provider errors are retried by provider-core's
//! [`Retry`] layer; a hard failure stops new actions, lets those in flight finish, and
//! the [`Report`] says what was and wasn't done. Rerunning converges: creates are
//! idempotent by name and the next diff only plans what is still missing.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::{FuturesUnordered, StreamExt};
use provider_core::layer::Retry;
use provider_core::ProviderExt;
use provider_core::{
    InstanceSpec, ListenerSpec, LoadBalancerSpec, MemberSpec, Provider, ResourceKind,
    SecurityGroupSpec,
};
use serde::Serialize;

use crate::lease::LeaseOptions;
use crate::plan::{Action, Observed, Plan, PlannedAction};
use crate::{Error, Result};

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

/// Names to provider ids, seeded from observed state and filled as resources appear.
#[derive(Debug, Default)]
struct Registry(Mutex<HashMap<(ResourceKind, String), String>>);

impl Registry {
    fn from_observed(o: &Observed) -> Self {
        let mut m = HashMap::new();
        for g in &o.groups {
            m.insert((ResourceKind::SecurityGroup, g.name.clone()), g.id.clone());
        }
        for i in &o.instances {
            m.insert((ResourceKind::Instance, i.name.clone()), i.id.clone());
        }
        // A slot's name resolves to the instance standing for it (a replacement's own
        // name differs from its slot's).
        for (slot, i) in crate::slot::canonical(&o.instances) {
            m.insert((ResourceKind::Instance, slot.to_string()), i.id.clone());
        }
        for v in &o.volumes {
            m.insert((ResourceKind::Volume, v.name.clone()), v.id.clone());
        }
        for f in &o.floating_ips {
            m.insert((ResourceKind::FloatingIp, f.name.clone()), f.id.clone());
        }
        for l in &o.load_balancers {
            m.insert((ResourceKind::LoadBalancer, l.name.clone()), l.id.clone());
        }
        Self(Mutex::new(m))
    }

    fn insert(&self, kind: ResourceKind, name: &str, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((kind, name.to_string()), id.to_string());
    }

    fn lookup(&self, kind: ResourceKind, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(kind, name.to_string()))
            .cloned()
    }

    fn id(&self, kind: ResourceKind, name: &str) -> Result<String> {
        self.lookup(kind, name).ok_or_else(|| Error::Unresolved {
            kind,
            name: name.to_string(),
        })
    }
}

/// Runs `plan` against `provider` (already wrapped in the retry layer by its
/// [`crate::Cluster`]), whose state was `observed` when the plan was made.
pub async fn execute(
    provider: Arc<dyn Provider>,
    plan: &Plan,
    observed: &Observed,
    opts: &ExecuteOptions,
    observer: &dyn Observer,
) -> Report {
    let registry = Registry::from_observed(observed);
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

    loop {
        if opts.stop.load(Ordering::SeqCst) && !halted {
            halted = true;
            report.stopped = true;
        }
        while !halted && running.len() < limit {
            let Some(i) = ready.pop_front() else { break };
            let pa = &plan.actions[i];
            started[i] = true;
            observer.started(pa);
            let p = provider.clone();
            let reg = &registry;
            running.push(async move {
                let r = run(p.as_ref(), &pa.action, reg).await;
                (pa, r)
            });
        }
        let Some((pa, result)) = running.next().await else {
            break;
        };
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
                        ready.push_back(*d);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(action = pa.id, error = %e, "{}", pa.action);
                halted = true;
                report.failed.push(FailedAction {
                    id: record.id,
                    description: record.description,
                    error: e.to_string(),
                });
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

/// Performs one action.
async fn run(p: &dyn Provider, action: &Action, reg: &Registry) -> Result<()> {
    use ResourceKind as K;
    match action {
        Action::CreateSecurityGroup {
            name,
            description,
            rules,
            tags,
        } => {
            let g = p
                .create_security_group(
                    &SecurityGroupSpec::new(name.clone())
                        .with_description(description.clone())
                        .with_rules(rules.clone())
                        .with_tags(tags.clone()),
                )
                .await?;
            reg.insert(K::SecurityGroup, name, &g.id);
        }
        Action::AddSecurityGroupRules { group, rules } => {
            let gid = reg.id(K::SecurityGroup, group)?;
            for r in rules {
                let rule = match r.resolve(|n| reg.lookup(K::SecurityGroup, n)) {
                    Some(rule) => rule,
                    None => {
                        return Err(Error::Unresolved {
                            kind: K::SecurityGroup,
                            name: format!("{r:?}"),
                        })
                    }
                };
                p.add_security_group_rule(&gid, &rule).await?;
            }
        }
        Action::RemoveSecurityGroupRules { id, rules, .. } => {
            for r in rules {
                p.remove_security_group_rule(id, r).await?;
            }
        }
        Action::DeleteSecurityGroup { id, .. } => p.delete_security_group(id).await?,
        Action::CreateVolume { spec } => {
            let v = p.create_volume(spec).await?;
            reg.insert(K::Volume, &spec.name, &v.id);
        }
        Action::CreateInstances { instances } => {
            let mut specs = Vec::with_capacity(instances.len());
            for i in instances {
                let mut groups = Vec::with_capacity(i.groups.len());
                for g in &i.groups {
                    groups.push(reg.id(K::SecurityGroup, g)?);
                }
                let mut spec = InstanceSpec::new(
                    i.name.clone(),
                    i.availability_zone.clone(),
                    i.flavor.clone(),
                    i.image.clone(),
                )
                .with_security_groups(groups)
                .with_tags(i.tags.clone());
                // The plan holds the optional settings as options: copy them as they are.
                spec.network = i.network.clone();
                spec.subnet = i.subnet.clone();
                spec.keypair = i.keypair.clone();
                spec.user_data = i.user_data.clone();
                specs.push(spec);
            }
            let created = if specs.len() == 1 {
                vec![p.create_instance(&specs[0]).await?]
            } else {
                p.create_instances(&specs).await?
            };
            for inst in created {
                reg.insert(K::Instance, &inst.name, &inst.id);
            }
        }
        Action::AttachVolume { volume, instance } => {
            let v = reg.id(K::Volume, volume)?;
            let i = reg.id(K::Instance, instance)?;
            p.attach_volume(&v, &i).await?;
        }
        Action::DetachVolume { id, .. } => {
            p.detach_volume(id).await?;
        }
        Action::DeleteVolume { id, .. } => p.delete_volume(id).await?,
        Action::AllocateFloatingIp { spec } => {
            let f = p.allocate_floating_ip(spec).await?;
            reg.insert(K::FloatingIp, &spec.name, &f.id);
        }
        Action::AssociateFloatingIp {
            floating_ip,
            instance,
        } => {
            let f = reg.id(K::FloatingIp, floating_ip)?;
            let i = reg.id(K::Instance, instance)?;
            p.associate_floating_ip(&f, &i).await?;
        }
        Action::ReleaseFloatingIp { id, .. } => p.release_floating_ip(id).await?,
        Action::CreateLoadBalancer { lb } => {
            let mut groups = Vec::new();
            for g in &lb.groups {
                groups.push(reg.id(K::SecurityGroup, g)?);
            }
            let mut member_ids = Vec::new();
            for m in &lb.members {
                member_ids.push(reg.id(K::Instance, m)?);
            }
            let listeners = lb.listeners.iter().map(|l| {
                ListenerSpec::new(l.protocol, l.port)
                    .with_health_check(l.health_check.clone())
                    .with_members(
                        member_ids
                            .iter()
                            .map(|id| MemberSpec::new(id.clone(), l.target_port)),
                    )
            });
            let mut spec = LoadBalancerSpec::new(lb.name.clone(), listeners)
                .with_security_groups(groups)
                .with_tags(lb.tags.clone());
            spec.subnet = lb.subnet.clone();
            let created = p.create_load_balancer(&spec).await?;
            reg.insert(K::LoadBalancer, &lb.name, &created.id);
        }
        Action::AddLoadBalancerMember {
            lb,
            port,
            instance,
            target_port,
        } => {
            let l = reg.id(K::LoadBalancer, lb)?;
            let i = reg.id(K::Instance, instance)?;
            p.add_load_balancer_member(&l, *port, &MemberSpec::new(i, *target_port))
                .await?;
        }
        Action::RemoveLoadBalancerMember {
            lb_id,
            port,
            member,
            ..
        } => {
            p.remove_load_balancer_member(lb_id, *port, member).await?;
        }
        Action::DeleteLoadBalancer { id, .. } => p.delete_load_balancer(id).await?,
        Action::DeleteInstance { id, .. } => p.delete_instance(id).await?,
    }
    Ok(())
}
