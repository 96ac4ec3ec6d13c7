//! The moves of replacement and scaling as plan actions, for the executor that runs
//! `apply`'s plans. Each function appends one node's chain to a [`Plan`], derived from
//! the cloud as observed, so a rerun after a crash plans only what is left: a successor
//! that exists is not created again, a volume already on it is not moved again.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use provider_core::{FloatingIp, Instance, MemberSpec, Tags};

use super::{Replaced, Step};
use crate::execute::Observer;
use crate::hooks::{READY_DONE, READY_PENDING, TAG_READY};
use crate::plan::dag::release_floating_ip;
use crate::plan::{
    Action, Desired, DesiredInstance, Observed, Plan, PlannedAction, TAG_ORDINAL, TAG_ROLE,
};
use crate::slot::{replacement_name, slot_of, Vacancy, TAG_GENERATION, TAG_REPLACES, TAG_SLOT};
use crate::spec::NetworkSpec;
use crate::{Error, Result};

mod delete_first;
mod tracker;

pub(crate) use delete_first::{replacement_delete_first, restore};
pub(crate) use tracker::Tracker;

/// What every move of one plan is derived from.
pub(crate) struct Context<'a> {
    /// The spec's resources (slot templates, the slots' volumes, floating IPs and pools).
    pub(crate) desired: &'a Desired,
    /// The spec's network (a successor's subnet follows its AZ).
    pub(crate) network: &'a NetworkSpec,
    /// The cloud as observed when the plan was made.
    pub(crate) observed: &'a Observed,
    /// Name of the cluster's base security group (where vacancies are recorded).
    pub(crate) base_group: &'a str,
    /// Whether hooks are set: `on_ready` is then recorded on each node ([`TAG_READY`]).
    pub(crate) tell: bool,
}

/// One node's chain of actions in a plan: which actions are its, and which of them mark
/// a [`Step`] for progress output.
#[derive(Debug, Clone)]
pub(crate) struct Move {
    /// The node that goes (empty when scaling up).
    pub(crate) old: String,
    /// The node that comes (empty when scaling down).
    pub(crate) new: String,
    pub(crate) role: String,
    pub(crate) availability_zone: String,
    /// Its actions, in plan order; the last one ends the move.
    pub(crate) actions: Vec<usize>,
    /// Steps reported when an action starts.
    on_start: Vec<(usize, Step)>,
    /// Steps reported when an action succeeds.
    on_end: Vec<(usize, Step)>,
    /// Actions whose failure rolls the move back (the successor cannot be brought up,
    /// or the old node refused to drain).
    rollback_on: Vec<usize>,
    /// Whether the old node goes before its successor comes (`max-surge 0`).
    pub(crate) delete_first: bool,
}

impl Move {
    fn new(old: &str, new: &str, role: &str, az: &str) -> Self {
        Self {
            old: old.to_string(),
            new: new.to_string(),
            role: role.to_string(),
            availability_zone: az.to_string(),
            actions: Vec::new(),
            on_start: Vec::new(),
            on_end: Vec::new(),
            rollback_on: Vec::new(),
            delete_first: false,
        }
    }

    fn push(&mut self, plan: &mut Plan, action: Action, deps: &[usize]) -> usize {
        let id = plan.push(action, deps.iter().copied());
        self.actions.push(id);
        id
    }

    /// The action that ends the move (the next move of a window waits for it).
    pub(crate) fn last(&self) -> Option<usize> {
        self.actions.last().copied()
    }

    /// Whether the failure of action `id` rolls this move back.
    pub(crate) fn rolls_back_on(&self, id: usize) -> bool {
        self.rollback_on.contains(&id)
    }
}

/// Appends the replacement of `old` by its successor in the same slot, role and AZ:
/// create (unless it exists), ready, `on_ready`, into every pool `old` is in and healthy
/// there, `old` out of the pools, drain, data volumes and floating IPs over, quorum check
/// for masters, delete `old`, and the successor's `replaces` tag off. Starts after
/// `after`.
pub(crate) fn replacement(
    plan: &mut Plan,
    ctx: &Context<'_>,
    old: &Instance,
    quorum: Option<usize>,
    after: &[usize],
) -> Result<Move> {
    let (desired, observed) = (ctx.desired, ctx.observed);
    let new = replacement_name(old);
    let role = old.tags.get(TAG_ROLE).cloned().unwrap_or_default();
    let mut m = Move::new(&old.name, &new, &role, &old.availability_zone);
    let existing = observed.instances.iter().find(|i| i.name == new);

    let mut gate: Vec<usize> = after.to_vec();
    if existing.is_none() {
        let successor = successor_of(ctx, &Vacancy::of(old))?;
        let create = m.push(
            plan,
            Action::CreateInstances {
                instances: vec![successor],
            },
            &gate,
        );
        m.rollback_on.push(create);
        gate = vec![create];
    }
    let told = announce(&mut m, plan, &new, existing, ctx.tell, &gate);
    m.rollback_on.push(told.ready);
    m.rollback_on.extend(told.on_ready);
    m.on_end.push((told.ready, Step::Ready));
    let first = m.actions[0];
    m.on_start.push((first, Step::Creating));
    let on_ready = told.last;

    // The successor joins every pool the old node is in (or, on a rerun, already
    // joined) and must be healthy there, one pool after the other, before the old one
    // leaves any.
    let new_id = existing.map(|i| i.id.as_str());
    let mut gate = on_ready;
    let mut removals = Vec::new();
    let mut served = false;
    for lb in &observed.load_balancers {
        for l in &lb.listeners {
            let old_member = l.pool.members.iter().find(|x| x.instance_id == old.id);
            let new_member = l
                .pool
                .members
                .iter()
                .find(|x| Some(x.instance_id.as_str()) == new_id);
            let Some(target_port) = old_member.or(new_member).map(|x| x.port) else {
                continue;
            };
            if new_member.is_none() {
                gate = m.push(
                    plan,
                    Action::AddLoadBalancerMember {
                        lb: lb.name.clone(),
                        port: l.port,
                        instance: new.clone(),
                        target_port,
                    },
                    &[gate],
                );
            }
            gate = m.push(
                plan,
                Action::AwaitMemberHealthy {
                    lb: lb.name.clone(),
                    port: l.port,
                    instance: new.clone(),
                },
                &[gate],
            );
            m.rollback_on.push(gate);
            if old_member.is_some() {
                served = true;
                removals.push(RemoveMember {
                    lb: lb.name.clone(),
                    lb_id: lb.id.clone(),
                    port: l.port,
                    member: MemberSpec::new(old.id.clone(), target_port),
                });
            }
        }
    }
    if gate != on_ready {
        m.on_end.push((gate, Step::InLoadBalancer));
    }
    let removed: Vec<usize> = removals
        .into_iter()
        .map(|r| m.push(plan, r.action(), &[gate]))
        .collect();
    let drain_after = if removed.is_empty() {
        vec![gate]
    } else {
        removed
    };
    let drain = m.push(
        plan,
        Action::Drain {
            instance: old.name.clone(),
            served,
        },
        &drain_after,
    );
    m.rollback_on.push(drain);
    m.on_start.push((drain, Step::Draining));

    // Data volumes: on the old node, or left detached by a crash mid-move.
    let attached = move_volumes(&mut m, plan, desired, observed, old, &new, &[drain]);
    let mut gate = vec![drain];
    if !attached.is_empty() {
        // The new node is checked again with its data.
        let recheck = m.push(
            plan,
            Action::AwaitReady {
                instance: new.clone(),
            },
            &attached,
        );
        m.rollback_on.push(recheck);
        gate = vec![recheck];
    }
    let mut tail = gate.clone();
    tail.extend(move_floating_ips(
        &mut m, plan, desired, observed, old, &new, &gate,
    ));
    if let Some(last) = m.last().filter(|l| *l != drain) {
        m.on_end.push((last, Step::Moved));
    }
    if let Some(quorum) = quorum {
        tail = vec![m.push(
            plan,
            Action::CheckQuorum {
                instance: old.name.clone(),
                quorum,
            },
            &tail,
        )];
    }
    let delete = m.push(
        plan,
        Action::DeleteInstance {
            name: old.name.clone(),
            id: old.id.clone(),
        },
        &tail,
    );
    let untag = m.push(
        plan,
        Action::TagInstance {
            instance: new.clone(),
            set: Tags::new(),
            remove: vec![TAG_REPLACES.to_string()],
        },
        &[delete],
    );
    m.on_end.push((untag, Step::Done));
    Ok(m)
}

/// The successor of the node `vacancy` describes: the slot's template, named
/// `<slot>-r<generation + 1>`, in the old node's AZ (and that AZ's subnet), tagged with
/// its slot, generation and the node it replaces (and owed an `on_ready` with hooks).
fn successor_of(ctx: &Context<'_>, vacancy: &Vacancy) -> Result<DesiredInstance> {
    let slot = &vacancy.slot;
    let tmpl = ctx
        .desired
        .instances
        .iter()
        .find(|d| &d.name == slot)
        .ok_or_else(|| Error::Rolling {
            node: vacancy.old_name(),
            message: format!("the spec has no slot {slot}"),
        })?;
    let mut successor = tmpl.clone();
    successor.name = vacancy.successor();
    successor.availability_zone = vacancy.availability_zone.clone();
    if let Some(ix) = ctx
        .desired
        .zones
        .iter()
        .position(|z| z == &vacancy.availability_zone)
    {
        successor.subnet = ctx.network.subnet_for(ix);
    }
    successor.tags.insert(TAG_SLOT.into(), slot.clone());
    successor
        .tags
        .insert(TAG_GENERATION.into(), (vacancy.generation + 1).to_string());
    successor
        .tags
        .insert(TAG_REPLACES.into(), vacancy.old_name());
    if ctx.tell {
        successor
            .tags
            .insert(TAG_READY.into(), READY_PENDING.into());
    }
    Ok(successor)
}

/// The actions [`announce`] appended.
struct Announced {
    /// The readiness wait.
    ready: usize,
    /// The `on_ready` call, unless the node was told before.
    on_ready: Option<usize>,
    /// The last of them.
    last: usize,
}

/// Appends the readiness wait of `node` and its `on_ready`, after `after`. With `tell`
/// (hooks set) `on_ready` is recorded on the node ([`TAG_READY`] done) and skipped when
/// `existing` (the node as observed) has that record already.
fn announce(
    m: &mut Move,
    plan: &mut Plan,
    node: &str,
    existing: Option<&Instance>,
    tell: bool,
    after: &[usize],
) -> Announced {
    let ready = m.push(
        plan,
        Action::AwaitReady {
            instance: node.to_string(),
        },
        after,
    );
    let told =
        existing.is_some_and(|i| i.tags.get(TAG_READY).map(String::as_str) == Some(READY_DONE));
    if tell && told {
        return Announced {
            ready,
            on_ready: None,
            last: ready,
        };
    }
    let on_ready = m.push(
        plan,
        Action::OnReady {
            instance: node.to_string(),
        },
        &[ready],
    );
    let last = if tell {
        m.push(plan, told_mark(node), &[on_ready])
    } else {
        on_ready
    };
    Announced {
        ready,
        on_ready: Some(on_ready),
        last,
    }
}

/// The action that records on `node` that `on_ready` succeeded.
pub(crate) fn told_mark(node: &str) -> Action {
    Action::TagInstance {
        instance: node.to_string(),
        set: [(TAG_READY.to_string(), READY_DONE.to_string())].into(),
        remove: Vec::new(),
    }
}

/// Marks every node `plan` creates as owed an `on_ready` ([`TAG_READY`] pending, part of
/// the create call), so a rerun after a crash tells the nodes it finds created but not
/// told.
pub(crate) fn owe_on_ready(plan: &mut Plan) {
    for a in &mut plan.actions {
        if let Action::CreateInstances { instances } = &mut a.action {
            for i in instances {
                i.tags.insert(TAG_READY.into(), READY_PENDING.into());
            }
        }
    }
}

/// Whether `node` is owed an `on_ready` (created with hooks set and not told yet).
pub(crate) fn owed_on_ready(node: &Instance) -> bool {
    node.tags.get(TAG_READY).map(String::as_str) == Some(READY_PENDING)
}

/// Appends what undoes a failed replacement of `old` by `new`, from the cloud as now
/// observed: `old` back into every pool the successor is in, the successor out, data
/// volumes and floating IPs of the slot back on `old`, and the successor deleted.
pub(crate) fn rollback(
    plan: &mut Plan,
    desired: &Desired,
    observed: &Observed,
    old: &Instance,
    new: &str,
) {
    let Some(successor) = observed.instances.iter().find(|i| i.name == new) else {
        return;
    };
    let mut m = Move::new(&old.name, new, "", &old.availability_zone);
    let mut before_delete = Vec::new();
    for lb in &observed.load_balancers {
        for l in &lb.listeners {
            let Some(member) = l
                .pool
                .members
                .iter()
                .find(|x| x.instance_id == successor.id)
            else {
                continue;
            };
            let mut deps = Vec::new();
            if !l.pool.members.iter().any(|x| x.instance_id == old.id) {
                deps.push(m.push(
                    plan,
                    Action::AddLoadBalancerMember {
                        lb: lb.name.clone(),
                        port: l.port,
                        instance: old.name.clone(),
                        target_port: member.port,
                    },
                    &[],
                ));
            }
            let out = RemoveMember {
                lb: lb.name.clone(),
                lb_id: lb.id.clone(),
                port: l.port,
                member: MemberSpec::new(successor.id.clone(), member.port),
            };
            before_delete.push(m.push(plan, out.action(), &deps));
        }
    }
    before_delete.extend(move_volumes(
        &mut m,
        plan,
        desired,
        observed,
        successor,
        &old.name,
        &[],
    ));
    before_delete.extend(move_floating_ips(
        &mut m,
        plan,
        desired,
        observed,
        successor,
        &old.name,
        &[],
    ));
    m.push(
        plan,
        Action::DeleteInstance {
            name: successor.name.clone(),
            id: successor.id.clone(),
        },
        &before_delete,
    );
}

/// Appends the hand-over of the slot's data volumes from node `from` (or left detached
/// by a crash mid-move) to node `to`, after `after`; returns the attach actions.
fn move_volumes(
    m: &mut Move,
    plan: &mut Plan,
    desired: &Desired,
    observed: &Observed,
    from: &Instance,
    to: &str,
    after: &[usize],
) -> Vec<usize> {
    let slot_volumes = of_slot(
        desired
            .volumes
            .iter()
            .map(|v| (v.instance.as_str(), v.name.as_str())),
        slot_of(from),
    );
    let mut attached = Vec::new();
    for v in &observed.volumes {
        let on_from = v
            .attachment
            .as_ref()
            .is_some_and(|a| a.instance_id == from.id);
        let stranded = slot_volumes.contains(v.name.as_str()) && v.attachment.is_none();
        if !(on_from || stranded) {
            continue;
        }
        let mut deps = after.to_vec();
        if on_from {
            let detach = Action::DetachVolume {
                name: v.name.clone(),
                id: v.id.clone(),
            };
            deps = vec![m.push(plan, detach, &deps)];
        }
        let attach = Action::AttachVolume {
            volume: v.name.clone(),
            instance: to.to_string(),
        };
        attached.push(m.push(plan, attach, &deps));
    }
    attached
}

/// Appends the hand-over of the slot's floating IPs from node `from` (or left
/// unassociated by a crash mid-move) to node `to`, after `after`.
fn move_floating_ips(
    m: &mut Move,
    plan: &mut Plan,
    desired: &Desired,
    observed: &Observed,
    from: &Instance,
    to: &str,
    after: &[usize],
) -> Vec<usize> {
    let slot_fips = of_slot(
        desired
            .floating_ips
            .iter()
            .map(|f| (f.instance.as_str(), f.name.as_str())),
        slot_of(from),
    );
    let mut moved = Vec::new();
    for f in &observed.floating_ips {
        let on_from = f.instance_id.as_deref() == Some(from.id.as_str());
        let stranded = slot_fips.contains(f.name.as_str()) && f.instance_id.is_none();
        if on_from || stranded {
            let associate = Action::AssociateFloatingIp {
                floating_ip: f.name.clone(),
                instance: to.to_string(),
            };
            moved.push(m.push(plan, associate, after));
        }
    }
    moved
}

/// The names of the `(node, name)` pairs that belong to `slot`.
fn of_slot<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, slot: &str) -> BTreeSet<&'a str> {
    pairs
        .filter(|(n, _)| *n == slot)
        .map(|(_, name)| name)
        .collect()
}

/// Appends the removal of `node` (scaling down), in Cluster API's order: out of the
/// pools, drain, data volumes detached (kept: only `destroy` deletes them), floating IPs
/// released, delete. Starts after `after`.
pub(crate) fn removal(
    plan: &mut Plan,
    observed: &Observed,
    node: &Instance,
    after: &[usize],
) -> Move {
    let role = node.tags.get(TAG_ROLE).cloned().unwrap_or_default();
    let mut m = Move::new(&node.name, "", &role, &node.availability_zone);
    let (drain, mut tail) = take_out(&mut m, plan, observed, node, after);
    // The node's addresses, and its slot's address that a crash left disassociated.
    let same_slot = |f: &FloatingIp| {
        [TAG_ROLE, TAG_ORDINAL]
            .iter()
            .all(|k| f.tags.contains_key(*k) && f.tags.get(*k) == node.tags.get(*k))
    };
    for f in &observed.floating_ips {
        let on_node = f.instance_id.as_deref() == Some(node.id.as_str());
        if on_node || (f.instance_id.is_none() && same_slot(f)) {
            let (_, released) = release_floating_ip(f, &[drain], |a, deps| m.push(plan, a, &deps));
            tail.push(released);
        }
    }
    let delete = m.push(
        plan,
        Action::DeleteInstance {
            name: node.name.clone(),
            id: node.id.clone(),
        },
        &tail,
    );
    m.on_end.push((delete, Step::Done));
    m
}

/// Appends `node`'s way out, after `after`: out of every pool it is in, the drain (its
/// period only if it served), and each volume attached to it detached (kept). Returns the
/// drain and what the node's delete must wait for (the drain and the detaches).
fn take_out(
    m: &mut Move,
    plan: &mut Plan,
    observed: &Observed,
    node: &Instance,
    after: &[usize],
) -> (usize, Vec<usize>) {
    let mut removed = Vec::new();
    for lb in &observed.load_balancers {
        for l in &lb.listeners {
            for x in l.pool.members.iter().filter(|x| x.instance_id == node.id) {
                let out = RemoveMember {
                    lb: lb.name.clone(),
                    lb_id: lb.id.clone(),
                    port: l.port,
                    member: MemberSpec::new(node.id.clone(), x.port),
                };
                removed.push(m.push(plan, out.action(), after));
            }
        }
    }
    let drain = m.push(
        plan,
        Action::Drain {
            instance: node.name.clone(),
            served: !removed.is_empty(),
        },
        if removed.is_empty() { after } else { &removed },
    );
    let first = m.actions[0];
    m.on_start.push((first, Step::Draining));
    let mut tail = vec![drain];
    for v in &observed.volumes {
        if v.attachment
            .as_ref()
            .is_some_and(|a| a.instance_id == node.id)
        {
            let detach = Action::DetachVolume {
                name: v.name.clone(),
                id: v.id.clone(),
            };
            tail.push(m.push(plan, detach, &[drain]));
        }
    }
    (drain, tail)
}

/// Appends the readiness check and `on_ready` of `node` (scaling up): created by action
/// `create`, or, with `create` `None`, found created but not told yet. With `tell` (hooks
/// set) `on_ready` is recorded on the node.
pub(crate) fn arrival(
    plan: &mut Plan,
    node: &str,
    role: &str,
    az: &str,
    create: Option<usize>,
    tell: bool,
) -> Move {
    let mut m = Move::new("", node, role, az);
    if let Some(create) = create {
        m.actions.push(create);
    }
    let after: Vec<usize> = create.into_iter().collect();
    let told = announce(&mut m, plan, node, None, tell, &after);
    let first = m.actions[0];
    m.on_start.push((first, Step::Creating));
    m.on_end.push((told.last, Step::Done));
    m
}

/// A pool membership to end.
struct RemoveMember {
    lb: String,
    lb_id: String,
    port: u16,
    member: MemberSpec,
}

impl RemoveMember {
    fn action(self) -> Action {
        Action::RemoveLoadBalancerMember {
            lb: self.lb,
            lb_id: self.lb_id,
            port: self.port,
            member: self.member,
        }
    }
}
