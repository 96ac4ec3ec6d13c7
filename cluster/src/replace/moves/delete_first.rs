//! Delete-first replacement (`max-surge 0`): the old node goes before its successor
//! comes, for projects whose quota has no room for one more node; and its undo.

use super::*;

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
