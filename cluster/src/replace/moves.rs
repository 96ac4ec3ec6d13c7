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

/// Appends the delete-first replacement (`max-surge 0`, for projects whose quota has no
/// room for one more node) of the node that fills `vacancy`'s slot. While `old` exists:
/// the quorum check for masters, the slot recorded as vacant on the base group (unless
/// `recorded`), `old` out of its pools, drain, its data volumes detached (kept), `old`
/// deleted. Then its successor is created in the same AZ (unless it exists), the slot's
/// data volumes are attached to it, it is waited for and told to `on_ready`, gets the
/// slot's floating IPs, joins the slot's pools and is healthy there; its `replaces` tag
/// and the vacancy record go last. A rerun after a crash finds a slot whose old node is
/// gone by its vacancy record, and every step is derived from the cloud: the slot's
/// volumes and floating IPs are found by name, its pools from the spec. Starts after
/// `after`.
pub(crate) fn replacement_delete_first(
    plan: &mut Plan,
    ctx: &Context<'_>,
    vacancy: &Vacancy,
    old: Option<&Instance>,
    recorded: bool,
    quorum: Option<usize>,
    after: &[usize],
) -> Result<Move> {
    let (desired, observed) = (ctx.desired, ctx.observed);
    let slot = vacancy.slot.as_str();
    let new = vacancy.successor();
    let role = desired
        .instances
        .iter()
        .find(|d| d.name == slot)
        .map(|d| d.role.as_str().to_string())
        .or_else(|| old.and_then(|o| o.tags.get(TAG_ROLE).cloned()))
        .unwrap_or_default();
    let mut m = Move::new(&vacancy.old_name(), &new, &role, &vacancy.availability_zone);
    m.delete_first = true;
    let existing = observed.instances.iter().find(|i| i.name == new);
    let new_id = existing.map(|i| i.id.as_str());
    let old_id = old.map(|o| o.id.as_str());

    // The old node goes.
    let mut gate: Vec<usize> = after.to_vec();
    if let Some(old) = old {
        if let Some(quorum) = quorum {
            gate = vec![m.push(
                plan,
                Action::CheckQuorum {
                    instance: old.name.clone(),
                    quorum,
                },
                &gate,
            )];
        }
        if !recorded {
            gate = vec![m.push(
                plan,
                Action::TagGroup {
                    group: ctx.base_group.to_string(),
                    set: [(vacancy.key(), vacancy.value())].into(),
                    remove: Vec::new(),
                },
                &gate,
            )];
        }
        let (drain, tail) = take_out(&mut m, plan, observed, old, &gate);
        m.rollback_on.push(drain);
        gate = vec![m.push(
            plan,
            Action::DeleteInstance {
                name: old.name.clone(),
                id: old.id.clone(),
            },
            &tail,
        )];
    }

    // Its successor comes.
    if existing.is_none() {
        let create = m.push(
            plan,
            Action::CreateInstances {
                instances: vec![successor_of(ctx, vacancy)?],
            },
            &gate,
        );
        m.on_start.push((create, Step::Creating));
        gate = vec![create];
    }
    // The slot's data volumes: on the old node (detached above) or left detached.
    let slot_volumes = of_slot(
        desired
            .volumes
            .iter()
            .map(|v| (v.instance.as_str(), v.name.as_str())),
        slot,
    );
    let mut attached = Vec::new();
    for v in &observed.volumes {
        let on_old = v
            .attachment
            .as_ref()
            .is_some_and(|a| Some(a.instance_id.as_str()) == old_id);
        let stranded = slot_volumes.contains(v.name.as_str()) && v.attachment.is_none();
        if on_old || stranded {
            let attach = Action::AttachVolume {
                volume: v.name.clone(),
                instance: new.clone(),
            };
            attached.push(m.push(plan, attach, &gate));
        }
    }
    if !attached.is_empty() {
        gate = attached;
    }
    let told = announce(&mut m, plan, &new, existing, ctx.tell, &gate);
    m.on_end.push((told.ready, Step::Ready));
    // The slot's floating IPs: on the old node (its delete dropped the association) or
    // left unassociated.
    let slot_fips = of_slot(
        desired
            .floating_ips
            .iter()
            .map(|f| (f.instance.as_str(), f.name.as_str())),
        slot,
    );
    let mut gate = vec![told.last];
    let mut moved = Vec::new();
    for f in &observed.floating_ips {
        let on_old = old_id.is_some() && f.instance_id.as_deref() == old_id;
        let stranded = slot_fips.contains(f.name.as_str()) && f.instance_id.is_none();
        if on_old || stranded {
            let associate = Action::AssociateFloatingIp {
                floating_ip: f.name.clone(),
                instance: new.clone(),
            };
            moved.push(m.push(plan, associate, &gate));
        }
    }
    if let Some(last) = moved.last() {
        m.on_end.push((*last, Step::Moved));
        gate = moved;
    }
    // Into the slot's pools (as the spec has them), healthy there before the next batch.
    let mut served = false;
    for dlb in desired
        .load_balancers
        .iter()
        .filter(|l| l.members.iter().any(|x| x == slot))
    {
        let Some(olb) = observed.load_balancers.iter().find(|l| l.name == dlb.name) else {
            continue;
        };
        for dl in &dlb.listeners {
            let Some(ol) = olb.listener(dl.port) else {
                continue;
            };
            let member = ol
                .pool
                .members
                .iter()
                .any(|x| Some(x.instance_id.as_str()) == new_id);
            if !member {
                gate = vec![m.push(
                    plan,
                    Action::AddLoadBalancerMember {
                        lb: dlb.name.clone(),
                        port: dl.port,
                        instance: new.clone(),
                        target_port: dl.target_port,
                    },
                    &gate,
                )];
            }
            gate = vec![m.push(
                plan,
                Action::AwaitMemberHealthy {
                    lb: dlb.name.clone(),
                    port: dl.port,
                    instance: new.clone(),
                },
                &gate,
            )];
            served = true;
        }
    }
    if served {
        m.on_end
            .extend(gate.last().map(|g| (*g, Step::InLoadBalancer)));
    }
    let untag = m.push(
        plan,
        Action::TagInstance {
            instance: new.clone(),
            set: Tags::new(),
            remove: vec![TAG_REPLACES.to_string()],
        },
        &gate,
    );
    let free = m.push(
        plan,
        Action::TagGroup {
            group: ctx.base_group.to_string(),
            set: Tags::new(),
            remove: vec![vacancy.key()],
        },
        &[untag],
    );
    m.on_end.push((free, Step::Done));
    Ok(m)
}

/// Appends what undoes a delete-first replacement that failed before its old node went
/// (the drain hook refused): `old` back into the slot's pools and the vacancy record
/// off, from the cloud as now observed.
pub(crate) fn restore(plan: &mut Plan, ctx: &Context<'_>, old: &Instance) {
    let slot = slot_of(old);
    let mut m = Move::new(&old.name, "", "", &old.availability_zone);
    let mut back = Vec::new();
    for dlb in ctx
        .desired
        .load_balancers
        .iter()
        .filter(|l| l.members.iter().any(|x| x == slot))
    {
        let Some(olb) = ctx
            .observed
            .load_balancers
            .iter()
            .find(|l| l.name == dlb.name)
        else {
            continue;
        };
        for dl in &dlb.listeners {
            let Some(ol) = olb.listener(dl.port) else {
                continue;
            };
            if !ol.pool.members.iter().any(|x| x.instance_id == old.id) {
                back.push(m.push(
                    plan,
                    Action::AddLoadBalancerMember {
                        lb: dlb.name.clone(),
                        port: dl.port,
                        instance: old.name.clone(),
                        target_port: dl.target_port,
                    },
                    &[],
                ));
            }
        }
    }
    m.push(
        plan,
        Action::TagGroup {
            group: ctx.base_group.to_string(),
            set: Tags::new(),
            remove: vec![Vacancy::of(old).key()],
        },
        &back,
    );
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

/// Follows a run's moves: tells the cluster's observer each node's steps (besides every
/// action) and times each move.
pub(crate) struct Tracker<'a> {
    inner: &'a dyn Observer,
    moves: &'a [Move],
    by_action: HashMap<usize, Vec<usize>>,
    times: Mutex<HashMap<usize, (Instant, Option<Duration>)>>,
}

impl<'a> Tracker<'a> {
    pub(crate) fn new(inner: &'a dyn Observer, moves: &'a [Move]) -> Self {
        let mut by_action: HashMap<usize, Vec<usize>> = HashMap::new();
        for (k, m) in moves.iter().enumerate() {
            for a in &m.actions {
                by_action.entry(*a).or_default().push(k);
            }
        }
        Self {
            inner,
            moves,
            by_action,
            times: Mutex::new(HashMap::new()),
        }
    }

    fn each(&self, action: usize, mut f: impl FnMut(usize, &Move)) {
        for k in self.by_action.get(&action).into_iter().flatten() {
            f(*k, &self.moves[*k]);
        }
    }

    /// The moves whose every action is in `done`, with the time each took.
    pub(crate) fn finished(&self, done: &BTreeSet<usize>) -> Vec<Replaced> {
        let times = self.times.lock().unwrap_or_else(|p| p.into_inner());
        self.moves
            .iter()
            .enumerate()
            .filter(|(_, m)| m.actions.iter().all(|a| done.contains(a)))
            .map(|(k, m)| Replaced {
                old: m.old.clone(),
                new: m.new.clone(),
                role: m.role.clone(),
                availability_zone: m.availability_zone.clone(),
                took: times.get(&k).and_then(|t| t.1).unwrap_or_default(),
            })
            .collect()
    }
}

impl Observer for Tracker<'_> {
    fn started(&self, action: &PlannedAction) {
        self.inner.started(action);
        self.each(action.id, |k, m| {
            self.times
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(k)
                .or_insert((Instant::now(), None));
            for (_, step) in m.on_start.iter().filter(|(a, _)| *a == action.id) {
                self.inner.replacing(&m.old, &m.new, step);
            }
        });
    }

    fn finished(&self, action: &PlannedAction, error: Option<&Error>) {
        self.inner.finished(action, error);
        self.each(action.id, |k, m| match error {
            Some(e) => {
                let step = Step::Failed(e.to_string());
                self.inner.replacing(&m.old, &m.new, &step);
            }
            None => {
                for (_, step) in m.on_end.iter().filter(|(a, _)| *a == action.id) {
                    self.inner.replacing(&m.old, &m.new, step);
                }
                if m.last() == Some(action.id) {
                    if let Some(t) = self
                        .times
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(&k)
                    {
                        t.1 = Some(t.0.elapsed());
                    }
                }
            }
        });
    }

    fn replacing(&self, old: &str, new: &str, step: &Step) {
        self.inner.replacing(old, new, step);
    }
}
