//! Checks of load balancers, their listeners, pools and members. Each is skipped when
//! the provider has none.

use super::ctx::*;
use super::expect::*;
use super::fixtures::*;
use super::CheckResult;
use crate::model::*;
use crate::ProviderExt;

/// How many times the listener on `port` has `member` as a member that is not draining.
pub(super) fn serving(lb: &LoadBalancer, port: u16, member: &MemberSpec) -> usize {
    lb.listener(port).map_or(0, |l| {
        l.pool
            .members
            .iter()
            .filter(|m| {
                m.instance_id == member.instance_id
                    && m.port == member.port
                    && m.health != MemberHealth::Draining
            })
            .count()
    })
}

/// The members of the listener on `port`, for messages.
pub(super) fn members(lb: &LoadBalancer, port: u16) -> String {
    match lb.listener(port) {
        Some(l) => brief(&l.pool.members),
        None => format!("no listener on port {port}"),
    }
}

check! {
    /// Creates a load balancer with a listener and a member; the record,
    /// `get_load_balancer` and `list_load_balancers` show it active with that listener,
    /// protocol, member and tags; after `delete_load_balancer` it is `NotFound` and no
    /// longer listed.
    load_balancer_lifecycle => load_balancer_lifecycle_body
}

async fn load_balancer_lifecycle_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let zone = cx.zone().await?;
    let inst = cx.instance("lb-member", &zone).await?;
    let port = cx.cfg.lb_port;
    let member = cx.member(&inst.id);
    let spec = cx.lb_spec("lb", vec![cx.listener(port, vec![member.clone()])]);
    let lb = cx.create_lb(&spec).await?;
    ensure!(
        lb.name == spec.name,
        "create_load_balancer returned name {:?}, asked for {:?}",
        lb.name,
        spec.name
    );
    ensure!(
        lb.state == LoadBalancerState::Active,
        "create_load_balancer returned state {:?}, expected Active",
        lb.state
    );
    ensure!(
        lb.listeners.len() == 1,
        "create_load_balancer with one listener returned {}",
        lb.listeners.len()
    );
    let protocol = lb.listener(port).map(|l| l.protocol);
    ensure!(
        protocol == Some(cx.lb_protocol()),
        "create_load_balancer returned listener protocol {protocol:?} on port {port}, asked for {:?}",
        cx.lb_protocol()
    );
    ensure!(
        serving(&lb, port, &member) == 1,
        "create_load_balancer returned members {}, expected {member:?} once",
        members(&lb, port)
    );
    ensure_tags(&spec.tags, &lb.tags, "create_load_balancer")?;

    let got =
        cx.p.get_load_balancer(&lb.id)
            .await
            .step("get_load_balancer")?;
    ensure!(
        got.id == lb.id && got.name == spec.name,
        "get_load_balancer({}) returned {}",
        lb.id,
        brief(&got)
    );
    ensure!(
        got.state == LoadBalancerState::Active,
        "get_load_balancer says state {:?}, expected Active",
        got.state
    );
    ensure!(
        serving(&got, port, &member) == 1,
        "get_load_balancer shows members {}, expected {member:?} once",
        members(&got, port)
    );
    ensure_tags(&spec.tags, &got.tags, "get_load_balancer")?;

    let listed =
        cx.p.list_load_balancers(&cx.filter())
            .await
            .step("list_load_balancers")?;
    let n = listed.iter().filter(|x| x.id == lb.id).count();
    ensure!(
        n == 1,
        "list_load_balancers with the run's filter returned {} {n} times, expected once",
        lb.id
    );

    cx.p.delete_load_balancer(&lb.id)
        .await
        .step("delete_load_balancer")?;
    expect_not_found(
        cx.p.get_load_balancer(&lb.id).await,
        "get_load_balancer after delete",
    )?;
    let listed =
        cx.p.list_load_balancers(&cx.filter())
            .await
            .step("list_load_balancers after delete")?;
    ensure!(
        !listed.iter().any(|x| x.id == lb.id),
        "list_load_balancers still returns {} after delete",
        lb.id
    );
    Ok(())
}

check! {
    /// On a load balancer with two listeners that both have member A:
    /// `add_load_balancer_member` adds B to the first listener's pool only (adding it
    /// again succeeds without a duplicate); `remove_load_balancer_member` takes A out of
    /// the first pool only (absent or draining), and removing it again succeeds.
    load_balancer_members => load_balancer_members_body
}

async fn load_balancer_members_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let zone = cx.zone().await?;
    let (a, b) = futures::try_join!(cx.instance("mem-a", &zone), cx.instance("mem-b", &zone))?;
    let (ma, mb) = (cx.member(&a.id), cx.member(&b.id));
    let p1 = cx.cfg.lb_port;
    let p2 = p1.checked_add(1).unwrap_or(p1 - 1);
    let spec = cx.lb_spec(
        "members",
        vec![
            cx.listener(p1, vec![ma.clone()]),
            cx.listener(p2, vec![ma.clone()]),
        ],
    );
    let lb = cx.create_lb(&spec).await?;

    let after =
        cx.p.add_load_balancer_member(&lb.id, p1, &mb)
            .await
            .step("add_load_balancer_member")?;
    ensure!(
        serving(&after, p1, &ma) == 1 && serving(&after, p1, &mb) == 1,
        "after adding B to the listener on {p1} its members are {}",
        members(&after, p1)
    );
    ensure!(
        serving(&after, p2, &mb) == 0 && serving(&after, p2, &ma) == 1,
        "adding B to the listener on {p1} changed the listener on {p2}: {}",
        members(&after, p2)
    );
    let again =
        cx.p.add_load_balancer_member(&lb.id, p1, &mb)
            .await
            .step("add_load_balancer_member of a member that is present")?;
    ensure!(
        serving(&again, p1, &mb) == 1,
        "after adding B twice the listener on {p1} has members {}",
        members(&again, p1)
    );
    let got =
        cx.p.get_load_balancer(&lb.id)
            .await
            .step("get_load_balancer")?;
    ensure!(
        serving(&got, p1, &ma) == 1 && serving(&got, p1, &mb) == 1,
        "get_load_balancer after adding B shows members {}",
        members(&got, p1)
    );

    let after =
        cx.p.remove_load_balancer_member(&lb.id, p1, &ma)
            .await
            .step("remove_load_balancer_member")?;
    ensure!(
        serving(&after, p1, &ma) == 0 && serving(&after, p1, &mb) == 1,
        "after removing A from the listener on {p1} its members are {}",
        members(&after, p1)
    );
    ensure!(
        serving(&after, p2, &ma) == 1,
        "removing A from the listener on {p1} also removed it from the listener on {p2}: {}",
        members(&after, p2)
    );
    cx.p.remove_load_balancer_member(&lb.id, p1, &ma)
        .await
        .step("remove_load_balancer_member of a member that is absent")?;
    let got =
        cx.p.get_load_balancer(&lb.id)
            .await
            .step("get_load_balancer")?;
    ensure!(
        serving(&got, p1, &ma) == 0 && serving(&got, p1, &mb) == 1 && serving(&got, p2, &ma) == 1,
        "get_load_balancer after the changes shows {} on {p1} and {} on {p2}",
        members(&got, p1),
        members(&got, p2)
    );
    ensure!(
        got.state == LoadBalancerState::Active,
        "after member changes the load balancer is {:?}, expected Active",
        got.state
    );
    Ok(())
}

check! {
    /// Creating a load balancer again with the same name and spec returns the same one.
    load_balancer_create_idempotent => load_balancer_create_idempotent_body
}

async fn load_balancer_create_idempotent_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let spec = cx.lb_spec("idem", vec![cx.listener(cx.cfg.lb_port, Vec::new())]);
    let a = cx.create_lb(&spec).await?;
    let b = cx
        .try_create_lb(&spec)
        .await
        .step("create_load_balancer again with the same name and spec")?;
    ensure!(
        a.id == b.id,
        "creating load balancer {} again returned a new one {} instead of {}",
        spec.name,
        b.id,
        a.id
    );
    let listed =
        cx.p.list_load_balancers(&cx.filter())
            .await
            .step("list_load_balancers")?;
    let n = listed.iter().filter(|x| x.name == spec.name).count();
    ensure!(
        n == 1,
        "{n} load balancers are named {} after creating it twice",
        spec.name
    );
    Ok(())
}

check! {
    /// Creating a load balancer with the name of an existing one but another listener
    /// port is `Conflict`, and the existing one is unchanged.
    load_balancer_name_conflict => load_balancer_name_conflict_body
}

async fn load_balancer_name_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let port = cx.cfg.lb_port;
    let spec = cx.lb_spec("conflict", vec![cx.listener(port, Vec::new())]);
    let a = cx.create_lb(&spec).await?;
    let other_port = port.checked_add(1).unwrap_or(port - 1);
    let other = edited(spec.clone(), |s| {
        s.listeners = vec![cx.listener(other_port, Vec::new())]
    });
    expect_conflict(
        cx.try_create_lb(&other).await,
        "create_load_balancer with an existing name and another listener port",
    )?;
    let got =
        cx.p.get_load_balancer(&a.id)
            .await
            .step("get_load_balancer")?;
    ensure!(
        got.listener(port).is_some() && got.listener(other_port).is_none(),
        "the refused create changed the listeners of {}: {}",
        a.id,
        brief(&got.listeners)
    );
    Ok(())
}

check! {
    /// `get_load_balancer`, `add_load_balancer_member` and `remove_load_balancer_member`
    /// of a deleted load balancer are `NotFound`.
    load_balancer_missing_not_found => load_balancer_missing_not_found_body
}

async fn load_balancer_missing_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let zone = cx.zone().await?;
    let gone = cx.gone_lb().await?;
    let inst = cx.instance("gone-lb-member", &zone).await?;
    let member = cx.member(&inst.id);
    let port = cx.cfg.lb_port;
    expect_not_found(
        cx.p.get_load_balancer(&gone).await,
        format!("get_load_balancer of deleted {gone}"),
    )?;
    expect_not_found(
        cx.p.add_load_balancer_member(&gone, port, &member).await,
        format!("add_load_balancer_member on deleted {gone}"),
    )?;
    expect_not_found(
        cx.p.remove_load_balancer_member(&gone, port, &member).await,
        format!("remove_load_balancer_member on deleted {gone}"),
    )?;
    Ok(())
}

check! {
    /// Deleting a load balancer that is already deleted succeeds.
    load_balancer_delete_gone_ok => load_balancer_delete_gone_ok_body
}

async fn load_balancer_delete_gone_ok_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let lb = cx.empty_lb("gone").await?;
    cx.p.delete_load_balancer(&lb.id)
        .await
        .step("delete_load_balancer")?;
    cx.p.delete_load_balancer(&lb.id)
        .await
        .step(format!("delete_load_balancer of already deleted {}", lb.id))?;
    Ok(())
}

check! {
    /// Bad load balancer specs are `InvalidInput` naming the field: no listeners, a bad
    /// name, listener port 0, two listeners on one port, member port 0, an HTTP health
    /// check without a path, a bad health check timing; and so is adding a member on
    /// port 0.
    load_balancer_invalid_input => load_balancer_invalid_input_body
}

async fn load_balancer_invalid_input_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let port = cx.cfg.lb_port;
    let named = |label: &str| cx.lb_spec(label, vec![cx.listener(port, Vec::new())]);
    let placeholder = MemberSpec::new(cx.name("no-instance"), 0);
    let http_check = HealthCheck::new(HealthCheckProtocol::Http);
    let slow_check = HealthCheck::default().with_timeout(HealthCheck::default().interval * 2);
    let with_check = |label: &str, health_check: HealthCheck| {
        let mut spec = named(label);
        for l in &mut spec.listeners {
            l.health_check = health_check.clone();
        }
        spec
    };
    let base = named("inv");
    let mut bad_tag = named("inv-tag");
    bad_tag.tags.insert("a=b".into(), "c".into());
    let cases = vec![
        (
            "no listeners",
            edited(named("inv-none"), |s| s.listeners = Vec::new()),
            "listeners",
        ),
        (
            "a name longer than 63 characters",
            edited(base.clone(), |s| {
                s.name = format!("{}{}", base.name, "y".repeat(60))
            }),
            "name",
        ),
        (
            "listener port 0",
            edited(named("inv-port"), |s| {
                s.listeners = vec![cx.listener(0, Vec::new())]
            }),
            "port",
        ),
        (
            "two listeners on one port",
            edited(named("inv-dup"), |s| {
                s.listeners = vec![cx.listener(port, Vec::new()), cx.listener(port, Vec::new())]
            }),
            "port",
        ),
        (
            "member port 0",
            edited(named("inv-member"), |s| {
                s.listeners = vec![cx.listener(port, vec![placeholder.clone()])]
            }),
            "port",
        ),
        (
            "an HTTP health check without a path",
            with_check("inv-http", http_check),
            "path",
        ),
        (
            "a health check timeout longer than its interval",
            with_check("inv-timing", slow_check),
            "health_check",
        ),
        ("a tag key containing '='", bad_tag, "tags"),
    ];
    for (what, spec, field) in cases {
        expect_invalid(
            cx.try_create_lb(&spec).await,
            field,
            format!("create_load_balancer with {what}"),
        )?;
    }
    let lb = cx.empty_lb("inv-ok").await?;
    expect_invalid(
        cx.p.add_load_balancer_member(&lb.id, port, &placeholder)
            .await,
        "port",
        "add_load_balancer_member with member port 0",
    )?;
    Ok(())
}

check! {
    /// `list_load_balancers` with a tag filter returns the load balancers that match and
    /// only those.
    load_balancer_tag_filter => load_balancer_tag_filter_body
}

async fn load_balancer_tag_filter_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let port = cx.cfg.lb_port;
    let mut a = cx.lb_spec("tf-a", vec![cx.listener(port, Vec::new())]);
    a.tags = cx.tags_with_role("a");
    let mut b = cx.lb_spec("tf-b", vec![cx.listener(port, Vec::new())]);
    b.tags = cx.tags_with_role("b");
    let (a, b) = futures::try_join!(cx.create_lb(&a), cx.create_lb(&b))?;
    cx.check_tag_filter(ResourceKind::LoadBalancer, &a.id, &b.id)
        .await
}
