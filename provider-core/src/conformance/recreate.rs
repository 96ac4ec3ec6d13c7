//! Checks that a create repeated with the spec a resource was created with returns it
//! after later changes (tags set by `update_tags`, rules added by
//! `add_security_group_rule`), and that a spec with fewer tags or rules than it was
//! created with is `Conflict`, not a match.

use super::ctx::*;
use super::expect::*;
use super::fixtures::*;
use super::CheckResult;
use crate::model::*;
use crate::ProviderExt;

/// The tag a check's creation spec carries besides the run's: the spec with fewer tags
/// leaves it out.
fn created_tags(cx: &Ctx<'_>) -> Tags {
    let mut tags = cx.tags();
    tags.insert(EXTRA_TAG.to_string(), "created".to_string());
    tags
}

/// The tag `update_tags` sets after the create.
fn later_tags() -> Tags {
    [(LATER_TAG.to_string(), "later".to_string())].into()
}

/// Sets [`later_tags`] on `id` and reads them back: a provider whose `update_tags` does
/// nothing would otherwise pass the re-create untested.
async fn tag_later(cx: &Ctx<'_>, kind: ResourceKind, id: &str) -> Step<()> {
    cx.p.update_tags(kind, id, &later_tags(), &[])
        .await
        .step(format!("update_tags on {kind} {id}"))?;
    let tags = cx
        .tags_of(kind, id)
        .await
        .step(format!("get of {kind} {id} after update_tags"))?;
    ensure_tags(
        &later_tags(),
        &tags,
        format!("{kind} {id} after update_tags"),
    )
}

/// Expects `again` (the create repeated with the creation spec) to return `id`.
fn expect_same<T: std::fmt::Debug>(
    again: crate::Result<T>,
    id_of: impl Fn(&T) -> &str,
    kind: ResourceKind,
    id: &str,
    changes: &str,
) -> Step<()> {
    let got = again.step(format!(
        "creating {kind} {id} again with the spec it was created with, after {changes}"
    ))?;
    ensure!(
        id_of(&got) == id,
        "creating {kind} {id} again with its creation spec after {changes} returned another {kind} {}",
        id_of(&got)
    );
    Ok(())
}

/// The creation spec without [`EXTRA_TAG`]: fewer tags than it was created with.
fn fewer_tags(tags: &Tags) -> Tags {
    let mut fewer = tags.clone();
    fewer.remove(EXTRA_TAG);
    fewer
}

const FEWER_TAGS: &str = "with the same name and fewer tags than it was created with";

check! {
    /// A group created with tags and rules, then given another tag (`update_tags`) and
    /// another rule (`add_security_group_rule`), is returned by a create with its
    /// creation spec; a create with fewer rules, or fewer tags, than it was created with
    /// is `Conflict`.
    security_group_recreate_after_rules => security_group_recreate_after_rules_body
}

async fn security_group_recreate_after_rules_body(cx: &Ctx<'_>) -> CheckResult {
    let mut spec = cx.sg_spec("again").with_tags(created_tags(cx));
    spec.rules.push(IngressRule::tcp(22, net(8)));
    let g = cx.create_sg(&spec).await?;
    let kind = ResourceKind::SecurityGroup;
    tag_later(cx, kind, &g.id).await?;
    let later_rule = IngressRule::new(Protocol::Icmp, RuleSource::Cidr(net(9)));
    cx.p.add_security_group_rule(&g.id, &later_rule)
        .await
        .step("add_security_group_rule")?;
    let rules =
        cx.p.get_security_group(&g.id)
            .await
            .step("get_security_group after add_security_group_rule")?
            .rules;
    ensure!(
        rules.contains(&later_rule),
        "after add_security_group_rule({later_rule:?}) group {} has rules {rules:?}",
        g.id
    );
    expect_same(
        cx.try_create_sg(&spec).await,
        |x| &x.id,
        kind,
        &g.id,
        "update_tags and add_security_group_rule",
    )?;
    let fewer_rules = edited(spec.clone(), |s| {
        s.rules.pop();
    });
    expect_conflict(
        cx.try_create_sg(&fewer_rules).await,
        "create_security_group with the same name and fewer rules than it was created with",
    )?;
    let fewer = edited(spec.clone(), |s| s.tags = fewer_tags(&s.tags));
    expect_conflict(
        cx.try_create_sg(&fewer).await,
        format!("create_security_group {FEWER_TAGS}"),
    )
}

check! {
    /// An address allocated with tags, then given another tag (`update_tags`), is
    /// returned by an allocation with its creation spec; one with fewer tags than it was
    /// allocated with is `Conflict`.
    floating_ip_recreate_after_tags => floating_ip_recreate_after_tags_body
}

async fn floating_ip_recreate_after_tags_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let spec = cx.fip_spec("again")?.with_tags(created_tags(cx));
    let f = cx.create_fip(&spec).await?;
    let kind = ResourceKind::FloatingIp;
    tag_later(cx, kind, &f.id).await?;
    expect_same(
        cx.try_create_fip(&spec).await,
        |x| &x.id,
        kind,
        &f.id,
        "update_tags",
    )?;
    let fewer = edited(spec.clone(), |s| s.tags = fewer_tags(&s.tags));
    expect_conflict(
        cx.try_create_fip(&fewer).await,
        format!("allocate_floating_ip {FEWER_TAGS}"),
    )
}

check! {
    /// A volume created with tags, then given another tag (`update_tags`), is returned
    /// by a create with its creation spec; one with fewer tags is `Conflict`.
    volume_recreate_after_tags => volume_recreate_after_tags_body
}

async fn volume_recreate_after_tags_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let spec = cx.volume_spec("again", &zone).with_tags(created_tags(cx));
    let v = cx.create_volume(&spec).await?;
    let kind = ResourceKind::Volume;
    tag_later(cx, kind, &v.id).await?;
    expect_same(
        cx.try_create_volume(&spec).await,
        |x| &x.id,
        kind,
        &v.id,
        "update_tags",
    )?;
    let fewer = edited(spec.clone(), |s| s.tags = fewer_tags(&s.tags));
    expect_conflict(
        cx.try_create_volume(&fewer).await,
        format!("create_volume {FEWER_TAGS}"),
    )
}

check! {
    /// An instance created with tags, then given another tag (`update_tags`), is
    /// returned by a create with its creation spec; one with fewer tags is `Conflict`.
    instance_recreate_after_tags => instance_recreate_after_tags_body
}

async fn instance_recreate_after_tags_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let spec = cx.instance_spec("again", &zone).with_tags(created_tags(cx));
    let i = cx.create_instance(&spec).await?;
    let kind = ResourceKind::Instance;
    tag_later(cx, kind, &i.id).await?;
    expect_same(
        cx.try_create_instance(&spec).await,
        |x| &x.id,
        kind,
        &i.id,
        "update_tags",
    )?;
    let fewer = edited(spec.clone(), |s| s.tags = fewer_tags(&s.tags));
    expect_conflict(
        cx.try_create_instance(&fewer).await,
        format!("create_instance {FEWER_TAGS}"),
    )
}

check! {
    /// A load balancer created with tags, then given another tag (`update_tags`), is
    /// returned by a create with its creation spec; one with fewer tags is `Conflict`.
    load_balancer_recreate_after_tags => load_balancer_recreate_after_tags_body
}

async fn load_balancer_recreate_after_tags_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let spec = cx
        .lb_spec("again", vec![cx.listener(cx.cfg.lb_port, Vec::new())])
        .with_tags(created_tags(cx));
    let lb = cx.create_lb(&spec).await?;
    let kind = ResourceKind::LoadBalancer;
    tag_later(cx, kind, &lb.id).await?;
    expect_same(
        cx.try_create_lb(&spec).await,
        |x| &x.id,
        kind,
        &lb.id,
        "update_tags",
    )?;
    let fewer = edited(spec.clone(), |s| s.tags = fewer_tags(&s.tags));
    expect_conflict(
        cx.try_create_lb(&fewer).await,
        format!("create_load_balancer {FEWER_TAGS}"),
    )
}
