//! Checks of floating IPs. Each is skipped when the provider has none.

use super::ctx::*;
use super::expect::*;
use super::fixtures::*;
use super::CheckResult;
use crate::model::*;
use crate::ProviderExt;

/// The public address `get_instance` reports for `id`.
async fn public_ip_of(cx: &Ctx<'_>, id: &str) -> Step<Option<std::net::IpAddr>> {
    Ok(cx
        .p
        .get_instance(id)
        .await
        .step(format!("get_instance {id}"))?
        .public_ip)
}

check! {
    /// Allocates an address; the record, `get_floating_ip` and `list_floating_ips` show
    /// it unassociated with its name and tags; after `release_floating_ip` it is
    /// `NotFound` and no longer listed.
    floating_ip_lifecycle => floating_ip_lifecycle_body
}

async fn floating_ip_lifecycle_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let spec = cx.fip_spec("fip")?;
    let f = cx.create_fip(&spec).await?;
    ensure!(
        f.name == spec.name,
        "allocate_floating_ip returned name {:?}, asked for {:?}",
        f.name,
        spec.name
    );
    ensure!(
        !f.pool.trim().is_empty(),
        "allocate_floating_ip returned an empty pool"
    );
    ensure!(
        f.instance_id.is_none(),
        "a new floating IP is associated with {:?}",
        f.instance_id
    );
    ensure_tags(&spec.tags, &f.tags, "allocate_floating_ip")?;

    let got = cx.p.get_floating_ip(&f.id).await.step("get_floating_ip")?;
    ensure!(
        got.id == f.id && got.address == f.address,
        "get_floating_ip({}) returned {} at {}, allocated {} at {}",
        f.id,
        got.id,
        got.address,
        f.id,
        f.address
    );
    ensure_tags(&spec.tags, &got.tags, "get_floating_ip")?;

    let listed =
        cx.p.list_floating_ips(&cx.filter())
            .await
            .step("list_floating_ips")?;
    let n = listed.iter().filter(|x| x.id == f.id).count();
    ensure!(
        n == 1,
        "list_floating_ips with the run's filter returned {} {n} times, expected once",
        f.id
    );

    cx.p.release_floating_ip(&f.id)
        .await
        .step("release_floating_ip")?;
    expect_not_found(
        cx.p.get_floating_ip(&f.id).await,
        "get_floating_ip after release",
    )?;
    let listed =
        cx.p.list_floating_ips(&cx.filter())
            .await
            .step("list_floating_ips after release")?;
    ensure!(
        !listed.iter().any(|x| x.id == f.id),
        "list_floating_ips still returns {} after release",
        f.id
    );
    Ok(())
}

check! {
    /// `associate_floating_ip` links the address to an instance (the instance reports it
    /// as its public IP; associating again with the same instance succeeds);
    /// `disassociate_floating_ip` unlinks it, and succeeds again when not associated.
    floating_ip_associate => floating_ip_associate_body
}

async fn floating_ip_associate_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let zone = cx.zone().await?;
    let f = cx.fip("assoc").await?;
    let inst = cx.instance("assoc-inst", &zone).await?;

    let a =
        cx.p.associate_floating_ip(&f.id, &inst.id)
            .await
            .step("associate_floating_ip")?;
    ensure!(
        a.instance_id.as_deref() == Some(inst.id.as_str()),
        "associate_floating_ip returned instance_id {:?}, expected {}",
        a.instance_id,
        inst.id
    );
    let got = cx.p.get_floating_ip(&f.id).await.step("get_floating_ip")?;
    ensure!(
        got.instance_id.as_deref() == Some(inst.id.as_str()),
        "get_floating_ip after associate says instance_id {:?}, expected {}",
        got.instance_id,
        inst.id
    );
    let public = public_ip_of(cx, &inst.id).await?;
    ensure!(
        public == Some(f.address),
        "instance {} reports public_ip {public:?} after associating {}",
        inst.id,
        f.address
    );
    let again =
        cx.p.associate_floating_ip(&f.id, &inst.id)
            .await
            .step("associate_floating_ip again with the same instance")?;
    ensure!(
        again.instance_id.as_deref() == Some(inst.id.as_str()),
        "associating again returned instance_id {:?}",
        again.instance_id
    );

    let d =
        cx.p.disassociate_floating_ip(&f.id)
            .await
            .step("disassociate_floating_ip")?;
    ensure!(
        d.instance_id.is_none(),
        "disassociate_floating_ip returned instance_id {:?}",
        d.instance_id
    );
    let got = cx.p.get_floating_ip(&f.id).await.step("get_floating_ip")?;
    ensure!(
        got.instance_id.is_none(),
        "get_floating_ip after disassociate says instance_id {:?}",
        got.instance_id
    );
    let public = public_ip_of(cx, &inst.id).await?;
    ensure!(
        public.is_none(),
        "instance {} still reports public_ip {public:?} after disassociate",
        inst.id
    );
    let d =
        cx.p.disassociate_floating_ip(&f.id)
            .await
            .step("disassociate_floating_ip of an address that is not associated")?;
    ensure!(
        d.instance_id.is_none(),
        "disassociating again returned instance_id {:?}",
        d.instance_id
    );
    Ok(())
}

check! {
    /// Associating an address that is associated with instance A with instance B moves
    /// it: B reports it, A no longer does.
    floating_ip_move => floating_ip_move_body
}

async fn floating_ip_move_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let zone = cx.zone().await?;
    let f = cx.fip("move").await?;
    let (a, b) = futures::try_join!(cx.instance("move-a", &zone), cx.instance("move-b", &zone))?;
    cx.p.associate_floating_ip(&f.id, &a.id)
        .await
        .step("associate_floating_ip with A")?;
    let moved =
        cx.p.associate_floating_ip(&f.id, &b.id)
            .await
            .step("associate_floating_ip with B")?;
    ensure!(
        moved.instance_id.as_deref() == Some(b.id.as_str()),
        "associating with B returned instance_id {:?}, expected {}",
        moved.instance_id,
        b.id
    );
    let got = cx.p.get_floating_ip(&f.id).await.step("get_floating_ip")?;
    ensure!(
        got.instance_id.as_deref() == Some(b.id.as_str()),
        "get_floating_ip after the move says instance_id {:?}, expected {}",
        got.instance_id,
        b.id
    );
    let (pa, pb) = (
        public_ip_of(cx, &a.id).await?,
        public_ip_of(cx, &b.id).await?,
    );
    ensure!(
        pb == Some(f.address),
        "instance B reports public_ip {pb:?} after the move to it, expected {}",
        f.address
    );
    ensure!(
        pa.is_none(),
        "instance A still reports public_ip {pa:?} after the address moved to B"
    );
    Ok(())
}

check! {
    /// Deleting an instance with an associated address leaves the address allocated and
    /// unassociated.
    floating_ip_outlives_instance => floating_ip_outlives_instance_body
}

async fn floating_ip_outlives_instance_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let zone = cx.zone().await?;
    let f = cx.fip("outlive").await?;
    let inst = cx.instance("outlive-inst", &zone).await?;
    cx.p.associate_floating_ip(&f.id, &inst.id)
        .await
        .step("associate_floating_ip")?;
    cx.p.delete_instance(&inst.id)
        .await
        .step("delete_instance with an associated address")?;
    let got =
        cx.p.get_floating_ip(&f.id)
            .await
            .step("get_floating_ip after its instance was deleted")?;
    ensure!(
        got.instance_id.is_none(),
        "the address still names deleted instance {:?} as its instance",
        got.instance_id
    );
    Ok(())
}

check! {
    /// Allocating again with the same name and spec returns the same address.
    floating_ip_create_idempotent => floating_ip_create_idempotent_body
}

async fn floating_ip_create_idempotent_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let spec = cx.fip_spec("idem")?;
    let a = cx.create_fip(&spec).await?;
    let b = cx
        .try_create_fip(&spec)
        .await
        .step("allocate_floating_ip again with the same name and spec")?;
    ensure!(
        a.id == b.id && a.address == b.address,
        "allocating {} again returned {} ({}) instead of {} ({})",
        spec.name,
        b.id,
        b.address,
        a.id,
        a.address
    );
    let listed =
        cx.p.list_floating_ips(&cx.filter())
            .await
            .step("list_floating_ips")?;
    let n = listed.iter().filter(|x| x.name == spec.name).count();
    ensure!(
        n == 1,
        "{n} addresses are named {} after allocating it twice",
        spec.name
    );
    Ok(())
}

check! {
    /// Allocating with the name of an existing address but another spec (another tag)
    /// is `Conflict`.
    floating_ip_name_conflict => floating_ip_name_conflict_body
}

async fn floating_ip_name_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let spec = cx.fip_spec("conflict")?;
    cx.create_fip(&spec).await?;
    let mut other = spec.clone();
    other.tags.insert(EXTRA_TAG.into(), "other".into());
    expect_conflict(
        cx.try_create_fip(&other).await,
        "allocate_floating_ip with an existing name and other tags",
    )?;
    Ok(())
}

check! {
    /// `get_floating_ip`, `associate_floating_ip` and `disassociate_floating_ip` of a
    /// released address are `NotFound`, and so is associating an address with a deleted
    /// instance.
    floating_ip_missing_not_found => floating_ip_missing_not_found_body
}

async fn floating_ip_missing_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let zone = cx.zone().await?;
    let gone = cx.gone_fip().await?;
    let gone_inst = cx.gone_instance(&zone).await?;
    let f = cx.fip("live").await?;
    let inst = cx.instance("live-inst", &zone).await?;
    expect_not_found(
        cx.p.get_floating_ip(&gone).await,
        format!("get_floating_ip of released {gone}"),
    )?;
    expect_not_found(
        cx.p.associate_floating_ip(&gone, &inst.id).await,
        format!("associate_floating_ip of released {gone}"),
    )?;
    expect_not_found(
        cx.p.disassociate_floating_ip(&gone).await,
        format!("disassociate_floating_ip of released {gone}"),
    )?;
    expect_not_found(
        cx.p.associate_floating_ip(&f.id, &gone_inst).await,
        format!("associate_floating_ip with deleted instance {gone_inst}"),
    )?;
    Ok(())
}

check! {
    /// Releasing an address that is already released succeeds.
    floating_ip_delete_gone_ok => floating_ip_delete_gone_ok_body
}

async fn floating_ip_delete_gone_ok_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let f = cx.fip("gone").await?;
    cx.p.release_floating_ip(&f.id)
        .await
        .step("release_floating_ip")?;
    cx.p.release_floating_ip(&f.id)
        .await
        .step(format!("release_floating_ip of already released {}", f.id))?;
    Ok(())
}

check! {
    /// Bad floating IP specs are `InvalidInput` naming the field: a bad name, an empty
    /// pool, a tag key with `=`.
    floating_ip_invalid_input => floating_ip_invalid_input_body
}

async fn floating_ip_invalid_input_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let base = cx.fip_spec("inv")?;
    let mut bad_tag = cx.fip_spec("inv-tag")?;
    bad_tag.tags.insert("a=b".into(), "c".into());
    let cases = vec![
        (
            "a name starting with '.'",
            edited(base.clone(), |s| s.name = format!(".{}", base.name)),
            "name",
        ),
        (
            "an empty name",
            edited(base.clone(), |s| s.name = String::new()),
            "name",
        ),
        (
            "an empty pool",
            edited(base.clone(), |s| {
                s.name = cx.name("inv-pool");
                s.pool = " ".into();
            }),
            "pool",
        ),
        ("a tag key containing '='", bad_tag, "tags"),
    ];
    for (what, spec, field) in cases {
        expect_invalid(
            cx.try_create_fip(&spec).await,
            field,
            format!("allocate_floating_ip with {what}"),
        )?;
    }
    Ok(())
}

check! {
    /// `list_floating_ips` with a tag filter returns the addresses that match and only
    /// those.
    floating_ip_tag_filter => floating_ip_tag_filter_body
}

async fn floating_ip_tag_filter_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let mut a = cx.fip_spec("tf-a")?;
    a.tags = cx.tags_with_role("a");
    let mut b = cx.fip_spec("tf-b")?;
    b.tags = cx.tags_with_role("b");
    let a = cx.create_fip(&a).await?;
    let b = cx.create_fip(&b).await?;
    cx.check_tag_filter(ResourceKind::FloatingIp, &a.id, &b.id)
        .await
}
