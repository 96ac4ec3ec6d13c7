//! Checks of `update_tags`.

use super::ctx::*;
use super::expect::*;
use super::fixtures::*;
use super::CheckResult;
use super::{CHECK_TAG, RUN_TAG};
use crate::model::*;
use crate::{Family, ProviderExt};

fn key(k: &str) -> String {
    format!("plinth-conformance-{k}")
}

check! {
    /// `update_tags` on a resource (a security group, else a volume, else an instance:
    /// the first kind the provider has) sets new keys, overwrites existing ones, removes
    /// the `remove` keys (an absent key is fine), keeps the others, and lists filter on
    /// the new tags at once; an empty update changes nothing.
    update_tags_sets_and_removes => update_tags_sets_and_removes_body
}

/// Creates a resource of the first kind the provider has (security group, volume,
/// instance) with the run's tags plus `extra`; returns its kind, id and tags as asked.
async fn tagged_resource(cx: &Ctx<'_>, extra: Tags) -> Step<(ResourceKind, String, Tags)> {
    if cx.p.supports(Family::SecurityGroups) {
        let mut spec = cx.sg_spec("tags");
        spec.tags.extend(extra);
        let g = cx.create_sg(&spec).await?;
        return Ok((ResourceKind::SecurityGroup, g.id, spec.tags));
    }
    let zone = cx.zone().await?;
    if cx.p.supports(Family::Volumes) {
        let mut spec = cx.volume_spec("tags", &zone);
        spec.tags.extend(extra);
        let v = cx.create_volume(&spec).await?;
        return Ok((ResourceKind::Volume, v.id, spec.tags));
    }
    if cx.p.supports(Family::Instances) {
        let mut spec = cx.instance_spec("tags", &zone);
        spec.tags.extend(extra);
        let i = cx.create_instance(&spec).await?;
        return Ok((ResourceKind::Instance, i.id, spec.tags));
    }
    Err(skipped(
        "the provider has no security groups, volumes or instances to tag",
    ))
}

async fn update_tags_sets_and_removes_body(cx: &Ctx<'_>) -> CheckResult {
    let extra: Tags = [(key("a"), "1".to_string()), (key("b"), "2".to_string())].into();
    let (kind, id, created_tags) = tagged_resource(cx, extra).await?;

    let set: Tags = [(key("a"), "10".to_string()), (key("c"), "3".to_string())].into();
    cx.p.update_tags(kind, &id, &set, &[key("b"), key("absent")])
        .await
        .step(format!("update_tags on {kind} {id}"))?;
    let tags = cx
        .tags_of(kind, &id)
        .await
        .step(format!("get of {kind} {id} after update_tags"))?;
    ensure_tags(&set, &tags, "after update_tags")?;
    ensure!(
        !tags.contains_key(&key("b")),
        "update_tags did not remove key {:?}: {tags:?}",
        key("b")
    );
    for k in [RUN_TAG, CHECK_TAG] {
        ensure!(
            tags.get(k) == created_tags.get(k),
            "update_tags changed tag {k:?}, which it was not asked to touch: {tags:?}"
        );
    }

    let filter = cx.filter().and(key("c"), "3");
    let listed = cx
        .list_tagged(kind, &filter)
        .await
        .step(format!("listing {kind}s on the new tag"))?;
    ensure!(
        listed.iter().any(|(x, _)| *x == id),
        "listing {kind}s with filter {:?} does not return {id} after update_tags set those tags",
        filter.tags
    );
    let filter = cx.filter().and(key("b"), "2");
    let listed = cx
        .list_tagged(kind, &filter)
        .await
        .step(format!("listing {kind}s on the removed tag"))?;
    ensure!(
        !listed.iter().any(|(x, _)| *x == id),
        "listing {kind}s with filter {:?} still returns {id} after update_tags removed {:?}",
        filter.tags,
        key("b")
    );

    cx.p.update_tags(kind, &id, &Tags::new(), &[])
        .await
        .step("update_tags with nothing to change")?;
    let again = cx
        .tags_of(kind, &id)
        .await
        .step(format!("get of {kind} {id} after an empty update_tags"))?;
    ensure!(
        again == tags,
        "an empty update_tags changed the tags from {tags:?} to {again:?}"
    );
    Ok(())
}

check! {
    /// `update_tags` works on every resource kind the provider has (security group,
    /// volume, instance, floating IP, load balancer): the tag is read back by `get_*`,
    /// found by `list_*`, and removed again.
    update_tags_every_kind => update_tags_every_kind_body
}

async fn update_tags_every_kind_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let mut targets = Vec::new();
    if cx.p.supports(Family::SecurityGroups) {
        targets.push((ResourceKind::SecurityGroup, cx.sg("ut-sg").await?.id));
    }
    if cx.p.supports(Family::Volumes) {
        targets.push((ResourceKind::Volume, cx.volume("ut-vol", &zone).await?.id));
    }
    if cx.p.supports(Family::Instances) {
        targets.push((
            ResourceKind::Instance,
            cx.instance("ut-inst", &zone).await?.id,
        ));
    }
    if cx.p.supports(Family::FloatingIps) {
        targets.push((ResourceKind::FloatingIp, cx.fip("ut-fip").await?.id));
    }
    if cx.p.supports(Family::LoadBalancers) {
        targets.push((ResourceKind::LoadBalancer, cx.empty_lb("ut-lb").await?.id));
    }
    for (kind, id) in targets {
        let value = format!("{kind}").replace(' ', "-");
        let set: Tags = [(EXTRA_TAG.to_string(), value.clone())].into();
        cx.p.update_tags(kind, &id, &set, &[])
            .await
            .step(format!("update_tags on {kind} {id}"))?;
        let tags = cx
            .tags_of(kind, &id)
            .await
            .step(format!("get of {kind} {id} after update_tags"))?;
        ensure_tags(&set, &tags, format!("{kind} {id} after update_tags"))?;
        ensure_tags(
            &cx.tags(),
            &tags,
            format!("{kind} {id} after update_tags (its other tags)"),
        )?;
        let filter = cx.filter().and(EXTRA_TAG, value);
        let listed = cx
            .list_tagged(kind, &filter)
            .await
            .step(format!("listing {kind}s on the new tag"))?;
        ensure!(
            listed.iter().any(|(x, _)| *x == id),
            "list of {kind}s with filter {:?} does not return {id} after update_tags set it",
            filter.tags
        );
        cx.p.update_tags(kind, &id, &Tags::new(), &[EXTRA_TAG.to_string()])
            .await
            .step(format!("update_tags removing a key on {kind} {id}"))?;
        let tags = cx.tags_of(kind, &id).await.step(format!(
            "get of {kind} {id} after update_tags removed a key"
        ))?;
        ensure!(
            !tags.contains_key(EXTRA_TAG),
            "update_tags did not remove {EXTRA_TAG:?} from {kind} {id}: {tags:?}"
        );
    }
    Ok(())
}

check! {
    /// `update_tags` on a missing id of each kind is `NotFound`.
    update_tags_missing_not_found => update_tags_missing_not_found_body
}

async fn update_tags_missing_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let mut gone = Vec::new();
    if cx.p.supports(Family::SecurityGroups) {
        gone.push((ResourceKind::SecurityGroup, cx.gone_sg().await?));
    }
    if cx.p.supports(Family::Volumes) {
        gone.push((ResourceKind::Volume, cx.gone_volume(&zone).await?));
    }
    if cx.p.supports(Family::Instances) {
        gone.push((ResourceKind::Instance, cx.gone_instance(&zone).await?));
    }
    if cx.p.supports(Family::FloatingIps) {
        gone.push((ResourceKind::FloatingIp, cx.gone_fip().await?));
    }
    if cx.p.supports(Family::LoadBalancers) {
        gone.push((ResourceKind::LoadBalancer, cx.gone_lb().await?));
    }
    let set: Tags = [(EXTRA_TAG.to_string(), "x".to_string())].into();
    for (kind, id) in gone {
        expect_not_found(
            cx.p.update_tags(kind, &id, &set, &[]).await,
            format!("update_tags on deleted {kind} {id}"),
        )?;
    }
    Ok(())
}
