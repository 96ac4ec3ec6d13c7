//! Deletes of things in use that the family modules do not check: a group a load
//! balancer uses (`Conflict`), an associated floating IP (`Conflict`, the association
//! kept), an instance that is a load balancer member (deleted, and out of every pool).
//! The outcomes are the ones written on the family traits.

use super::ctx::*;
use super::expect::*;
use super::fixtures::*;
use super::load_balancers::{members, serving};
use super::CheckResult;
use crate::model::*;
use crate::ProviderExt;

check! {
    /// Deleting a group a load balancer uses is `Conflict` and leaves the group; once
    /// the load balancer is deleted, the group deletes. Skipped without load balancers.
    security_group_lb_in_use_conflict => security_group_lb_in_use_conflict_body
}

async fn security_group_lb_in_use_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let g = cx.sg("lb-sg").await?;
    let spec = edited(
        cx.lb_spec("sg-lb", vec![cx.listener(cx.cfg.lb_port, Vec::new())]),
        |s| s.security_groups = vec![g.id.clone()],
    );
    let lb = cx.create_lb(&spec).await?;
    let got =
        cx.p.get_load_balancer(&lb.id)
            .await
            .step("get_load_balancer")?;
    ensure!(
        got.security_groups.contains(&g.id),
        "load balancer {} created with group {} reports groups {:?}",
        lb.id,
        g.id,
        got.security_groups
    );
    expect_conflict(
        cx.p.delete_security_group(&g.id).await,
        format!(
            "delete_security_group of group {} used by load balancer {}",
            g.id, lb.id
        ),
    )?;
    cx.p.get_security_group(&g.id)
        .await
        .step("get_security_group after the refused delete")?;
    cx.p.delete_load_balancer(&lb.id)
        .await
        .step("delete_load_balancer")?;
    cx.p.delete_security_group(&g.id)
        .await
        .step("delete_security_group once its load balancer is gone")?;
    Ok(())
}

check! {
    /// Releasing an associated address is `Conflict` and changes nothing: the address
    /// stays associated and the instance keeps its public IP; once disassociated, the
    /// release succeeds and the address is `NotFound`.
    floating_ip_release_associated => floating_ip_release_associated_body
}

async fn floating_ip_release_associated_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let zone = cx.zone().await?;
    let f = cx.fip("rel").await?;
    let inst = cx.instance("rel-inst", &zone).await?;
    cx.p.associate_floating_ip(&f.id, &inst.id)
        .await
        .step("associate_floating_ip")?;
    let got = cx.p.get_floating_ip(&f.id).await.step("get_floating_ip")?;
    ensure!(
        got.instance_id.as_deref() == Some(inst.id.as_str()),
        "get_floating_ip after associate says instance_id {:?}, expected {}",
        got.instance_id,
        inst.id
    );
    expect_conflict(
        cx.p.release_floating_ip(&f.id).await,
        format!(
            "release_floating_ip of {} associated with {}",
            f.id, inst.id
        ),
    )?;
    let kept = cx.p.get_floating_ip(&f.id).await.step(format!(
        "get_floating_ip {} after the refused release",
        f.id
    ))?;
    ensure!(
        kept.instance_id.as_deref() == Some(inst.id.as_str()),
        "after the refused release floating IP {} says instance_id {:?}, expected {}",
        f.id,
        kept.instance_id,
        inst.id
    );
    let i = cx.p.get_instance(&inst.id).await.step(format!(
        "get_instance {} after the refused release",
        inst.id
    ))?;
    ensure!(
        i.public_ip == Some(f.address) && i.state == InstanceState::Running,
        "after the refused release instance {} says public_ip {:?}, state {:?}; expected {}, running",
        inst.id,
        i.public_ip,
        i.state,
        f.address
    );
    cx.p.disassociate_floating_ip(&f.id)
        .await
        .step("disassociate_floating_ip")?;
    cx.p.release_floating_ip(&f.id)
        .await
        .step("release_floating_ip once disassociated")?;
    expect_not_found(
        cx.p.get_floating_ip(&f.id).await,
        "get_floating_ip after the release",
    )
}

check! {
    /// Deleting an instance that is a member of two listeners' pools succeeds and takes
    /// it out of both (absent or draining); the load balancer and its other member stay.
    load_balancer_member_deleted => load_balancer_member_deleted_body
}

async fn load_balancer_member_deleted_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let zone = cx.zone().await?;
    let (a, b) = futures::try_join!(cx.instance("del-a", &zone), cx.instance("del-b", &zone))?;
    let (ma, mb) = (cx.member(&a.id), cx.member(&b.id));
    let p1 = cx.cfg.lb_port;
    let p2 = p1.checked_add(1).unwrap_or(p1 - 1);
    let spec = cx.lb_spec(
        "del-member",
        vec![
            cx.listener(p1, vec![ma.clone(), mb.clone()]),
            cx.listener(p2, vec![ma.clone()]),
        ],
    );
    let lb = cx.create_lb(&spec).await?;
    let got =
        cx.p.get_load_balancer(&lb.id)
            .await
            .step("get_load_balancer")?;
    ensure!(
        serving(&got, p1, &ma) == 1 && serving(&got, p2, &ma) == 1,
        "load balancer {} created with member A on {p1} and {p2} shows {} and {}",
        lb.id,
        members(&got, p1),
        members(&got, p2)
    );
    cx.p.delete_instance(&a.id)
        .await
        .step(format!("delete_instance of member {} of {}", a.id, lb.id))?;
    let got = cx.p.get_load_balancer(&lb.id).await.step(format!(
        "get_load_balancer {} after deleting its member {}",
        lb.id, a.id
    ))?;
    ensure!(
        serving(&got, p1, &ma) == 0 && serving(&got, p2, &ma) == 0,
        "deleted instance {} is still a member: {} on {p1}, {} on {p2}",
        a.id,
        members(&got, p1),
        members(&got, p2)
    );
    ensure!(
        serving(&got, p1, &mb) == 1,
        "deleting member A also took B out of the listener on {p1}: {}",
        members(&got, p1)
    );
    ensure!(
        got.state != LoadBalancerState::Error,
        "deleting member A left load balancer {} in state {:?}",
        lb.id,
        got.state
    );
    Ok(())
}
