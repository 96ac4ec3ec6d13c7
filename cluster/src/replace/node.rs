//! One node's replacement: create (or find) its successor in the same AZ and role, wait
//! until it is ready, move LB membership, drain the old node, hand its data volumes and
//! floating IPs over, and delete it; or, when the successor never gets healthy, put
//! everything back and delete the successor.

use std::collections::BTreeSet;
use std::time::Instant;

use provider_core::{
    Family, Instance, InstanceSpec, InstanceState, MemberHealth, MemberSpec, ProviderExt,
    ResourceKind, Tags,
};

use super::ready::wait_ready;
use super::{rolling, Ctx, Replaced, Step};
use crate::plan::{Desired, TAG_ROLE};
use crate::slot::{
    generation_of, replacement_name, slot_of, TAG_GENERATION, TAG_REPLACES, TAG_SLOT,
};
use crate::spec::Role;
use crate::{Error, Result};

/// One LB membership: a listener and the member port.
#[derive(Debug, Clone)]
struct Membership {
    lb_id: String,
    lb_name: String,
    port: u16,
    target_port: u16,
}

pub(super) async fn replace_one(
    ctx: &Ctx<'_>,
    desired: &Desired,
    old: &Instance,
) -> Result<Replaced> {
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
