//! Checks of volumes, their attachments and their placement.

use std::collections::BTreeSet;

use super::ctx::*;
use super::expect::*;
use super::fixtures::*;
use super::CheckResult;
use crate::model::*;
use crate::ErrorKind;
use crate::ProviderExt;

fn attached_to(v: &Volume) -> Option<&str> {
    v.attachment.as_ref().map(|a| a.instance_id.as_str())
}

check! {
    /// Creates a volume; the record, `get_volume` and `list_volumes` show it available,
    /// unattached, in the requested zone with the requested size and tags; after
    /// `delete_volume` it is `NotFound` and no longer listed.
    volume_lifecycle => volume_lifecycle_body
}

async fn volume_lifecycle_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let spec = cx.volume_spec("vol", &zone);
    let v = cx.create_volume(&spec).await?;
    ensure!(
        v.name == spec.name,
        "create_volume returned name {:?}, asked for {:?}",
        v.name,
        spec.name
    );
    ensure!(
        v.availability_zone == zone,
        "create_volume returned zone {:?}, asked for {zone:?}",
        v.availability_zone
    );
    ensure!(
        v.size_gib == spec.size_gib,
        "create_volume returned {} GiB, asked for {}",
        v.size_gib,
        spec.size_gib
    );
    ensure!(
        v.state == VolumeState::Available,
        "create_volume returned state {:?}, expected Available",
        v.state
    );
    ensure!(
        v.attachment.is_none(),
        "a new volume is attached: {:?}",
        v.attachment
    );
    if spec.volume_type.is_some() {
        ensure!(
            v.volume_type.is_some(),
            "create_volume with type {:?} returned no type",
            spec.volume_type
        );
    }
    ensure_tags(&spec.tags, &v.tags, "create_volume")?;

    let got = cx.p.get_volume(&v.id).await.step("get_volume")?;
    ensure!(
        got.id == v.id,
        "get_volume({}) returned volume {}",
        v.id,
        got.id
    );
    ensure!(
        got.name == spec.name && got.availability_zone == zone && got.size_gib == spec.size_gib,
        "get_volume returned {}, created {}",
        brief(&got),
        brief(&v)
    );
    ensure!(
        got.state == VolumeState::Available,
        "get_volume says state {:?}, expected Available",
        got.state
    );
    ensure_tags(&spec.tags, &got.tags, "get_volume")?;

    let listed = cx.p.list_volumes(&cx.filter()).await.step("list_volumes")?;
    let n = listed.iter().filter(|x| x.id == v.id).count();
    ensure!(
        n == 1,
        "list_volumes with the run's filter returned volume {} {n} times, expected once",
        v.id
    );

    cx.p.delete_volume(&v.id).await.step("delete_volume")?;
    expect_not_found(cx.p.get_volume(&v.id).await, "get_volume after delete")?;
    let listed =
        cx.p.list_volumes(&cx.filter())
            .await
            .step("list_volumes after delete")?;
    ensure!(
        !listed.iter().any(|x| x.id == v.id),
        "list_volumes still returns volume {} after delete",
        v.id
    );
    Ok(())
}

check! {
    /// `attach_volume` returns the volume in use and attached to the instance (attaching
    /// again to the same instance succeeds); `detach_volume` returns it available and
    /// unattached, and succeeds again when it is not attached.
    volume_attach_detach => volume_attach_detach_body
}

async fn volume_attach_detach_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let (v, inst) = futures::try_join!(cx.volume("att", &zone), cx.instance("att-inst", &zone))?;

    let a =
        cx.p.attach_volume(&v.id, &inst.id)
            .await
            .step("attach_volume")?;
    ensure!(
        a.state == VolumeState::InUse,
        "attach_volume returned state {:?}, expected InUse",
        a.state
    );
    ensure!(
        attached_to(&a) == Some(inst.id.as_str()),
        "attach_volume returned attachment {:?}, expected instance {}",
        a.attachment,
        inst.id
    );
    ensure!(
        a.attachment
            .as_ref()
            .is_some_and(|x| !x.device.trim().is_empty()),
        "attach_volume returned an empty device: {:?}",
        a.attachment
    );
    let got =
        cx.p.get_volume(&v.id)
            .await
            .step("get_volume after attach")?;
    ensure!(
        got.state == VolumeState::InUse && attached_to(&got) == Some(inst.id.as_str()),
        "get_volume after attach says state {:?}, attachment {:?}",
        got.state,
        got.attachment
    );
    let again =
        cx.p.attach_volume(&v.id, &inst.id)
            .await
            .step("attach_volume again to the same instance")?;
    ensure!(
        attached_to(&again) == Some(inst.id.as_str()),
        "attaching again returned attachment {:?}",
        again.attachment
    );

    let d = cx.p.detach_volume(&v.id).await.step("detach_volume")?;
    ensure!(
        d.state == VolumeState::Available,
        "detach_volume returned state {:?}, expected Available",
        d.state
    );
    ensure!(
        d.attachment.is_none(),
        "detach_volume returned attachment {:?}",
        d.attachment
    );
    let got =
        cx.p.get_volume(&v.id)
            .await
            .step("get_volume after detach")?;
    ensure!(
        got.state == VolumeState::Available && got.attachment.is_none(),
        "get_volume after detach says state {:?}, attachment {:?}",
        got.state,
        got.attachment
    );
    let d =
        cx.p.detach_volume(&v.id)
            .await
            .step("detach_volume of a volume that is not attached")?;
    ensure!(
        d.state == VolumeState::Available && d.attachment.is_none(),
        "detaching again returned state {:?}, attachment {:?}",
        d.state,
        d.attachment
    );
    Ok(())
}

check! {
    /// Deleting an attached volume is `Conflict` and leaves it attached; once detached,
    /// it deletes.
    volume_delete_attached_conflict => volume_delete_attached_conflict_body
}

async fn volume_delete_attached_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let (v, inst) = futures::try_join!(
        cx.volume("delatt", &zone),
        cx.instance("delatt-inst", &zone)
    )?;
    cx.p.attach_volume(&v.id, &inst.id)
        .await
        .step("attach_volume")?;
    expect_conflict(
        cx.p.delete_volume(&v.id).await,
        format!("delete_volume of volume {} attached to {}", v.id, inst.id),
    )?;
    let got =
        cx.p.get_volume(&v.id)
            .await
            .step("get_volume after the refused delete")?;
    ensure!(
        attached_to(&got) == Some(inst.id.as_str()),
        "after the refused delete the volume's attachment is {:?}",
        got.attachment
    );
    cx.p.detach_volume(&v.id).await.step("detach_volume")?;
    cx.p.delete_volume(&v.id)
        .await
        .step("delete_volume once detached")?;
    Ok(())
}

check! {
    /// Attaching a volume to an instance in another zone is refused (`InvalidInput` or
    /// `Conflict`) and leaves it unattached. Skipped when the config selects one zone.
    volume_cross_zone_attach => volume_cross_zone_attach_body
}

async fn volume_cross_zone_attach_body(cx: &Ctx<'_>) -> CheckResult {
    let zones = cx.zones().await?;
    let (Some(z0), Some(z1)) = (zones.first(), zones.get(1)) else {
        return Err(skipped(format!(
            "needs two zones; the config selects {zones:?}"
        )));
    };
    let (v, inst) = futures::try_join!(cx.volume("xaz", z0), cx.instance("xaz-inst", z1))?;
    expect_kind(
        cx.p.attach_volume(&v.id, &inst.id).await,
        &[ErrorKind::InvalidInput, ErrorKind::Conflict],
        format!("attach_volume of a volume in {z0} to an instance in {z1}"),
    )?;
    let got =
        cx.p.get_volume(&v.id)
            .await
            .step("get_volume after the refused attach")?;
    ensure!(
        got.attachment.is_none() && got.state == VolumeState::Available,
        "after the refused attach the volume says state {:?}, attachment {:?}",
        got.state,
        got.attachment
    );
    Ok(())
}

check! {
    /// A volume created in each selected zone is in that zone, in the create record, in
    /// `get_volume` and in `list_volumes`.
    volume_zone_placement => volume_zone_placement_body
}

async fn volume_zone_placement_body(cx: &Ctx<'_>) -> CheckResult {
    let zones = cx.zones().await?;
    let labels: Vec<String> = (0..zones.len()).map(|i| format!("place-{i}")).collect();
    let created =
        futures::future::try_join_all(zones.iter().zip(&labels).map(|(z, l)| cx.volume(l, z)))
            .await?;
    let listed = cx.p.list_volumes(&cx.filter()).await.step("list_volumes")?;
    for (zone, v) in zones.iter().zip(&created) {
        ensure!(
            &v.availability_zone == zone,
            "create_volume in {zone:?} returned zone {:?}",
            v.availability_zone
        );
        let got = cx.p.get_volume(&v.id).await.step("get_volume")?;
        ensure!(
            &got.availability_zone == zone,
            "volume {} asked for zone {zone:?} is in {:?} according to get_volume",
            v.id,
            got.availability_zone
        );
        let l = listed.iter().find(|x| x.id == v.id);
        ensure!(
            l.is_some_and(|x| &x.availability_zone == zone),
            "list_volumes shows volume {} in zone {:?}, asked for {zone:?}",
            v.id,
            l.map(|x| &x.availability_zone)
        );
    }
    Ok(())
}

check! {
    /// Creating a volume again with the same name and spec returns the same volume.
    volume_create_idempotent => volume_create_idempotent_body
}

async fn volume_create_idempotent_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let spec = cx.volume_spec("idem", &zone);
    let a = cx.create_volume(&spec).await?;
    let b = cx
        .try_create_volume(&spec)
        .await
        .step("create_volume again with the same name and spec")?;
    ensure!(
        a.id == b.id,
        "creating volume {} again returned a new volume {} instead of {}",
        spec.name,
        b.id,
        a.id
    );
    let listed = cx.p.list_volumes(&cx.filter()).await.step("list_volumes")?;
    let n = listed.iter().filter(|x| x.name == spec.name).count();
    ensure!(
        n == 1,
        "{n} volumes are named {} after creating it twice",
        spec.name
    );
    Ok(())
}

check! {
    /// Creating a volume with the name of an existing volume but another size is
    /// `Conflict`, and the existing volume is unchanged.
    volume_name_conflict => volume_name_conflict_body
}

async fn volume_name_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let spec = cx.volume_spec("conflict", &zone);
    let a = cx.create_volume(&spec).await?;
    let other = edited(spec.clone(), |s| s.size_gib = spec.size_gib + 1);
    expect_conflict(
        cx.try_create_volume(&other).await,
        "create_volume with an existing name and another size",
    )?;
    let got = cx.p.get_volume(&a.id).await.step("get_volume")?;
    ensure!(
        got.size_gib == spec.size_gib,
        "the refused create resized the volume to {} GiB",
        got.size_gib
    );
    Ok(())
}

check! {
    /// `get_volume`, `attach_volume` and `detach_volume` of a deleted volume are
    /// `NotFound`, and so is attaching a volume to a deleted instance.
    volume_missing_not_found => volume_missing_not_found_body
}

async fn volume_missing_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let gone = cx.gone_volume(&zone).await?;
    let gone_inst = cx.gone_instance(&zone).await?;
    let (v, inst) = futures::try_join!(cx.volume("live", &zone), cx.instance("live-inst", &zone))?;
    expect_not_found(
        cx.p.get_volume(&gone).await,
        format!("get_volume of deleted volume {gone}"),
    )?;
    expect_not_found(
        cx.p.attach_volume(&gone, &inst.id).await,
        format!("attach_volume of deleted volume {gone}"),
    )?;
    expect_not_found(
        cx.p.detach_volume(&gone).await,
        format!("detach_volume of deleted volume {gone}"),
    )?;
    expect_not_found(
        cx.p.attach_volume(&v.id, &gone_inst).await,
        format!("attach_volume to deleted instance {gone_inst}"),
    )?;
    Ok(())
}

check! {
    /// Deleting a volume that is already deleted succeeds.
    volume_delete_gone_ok => volume_delete_gone_ok_body
}

async fn volume_delete_gone_ok_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let v = cx.volume("gone", &zone).await?;
    cx.p.delete_volume(&v.id).await.step("delete_volume")?;
    cx.p.delete_volume(&v.id)
        .await
        .step(format!("delete_volume of already deleted volume {}", v.id))?;
    Ok(())
}

check! {
    /// Bad volume specs are `InvalidInput` naming the field: a bad name, size 0, a size
    /// over the maximum, an empty zone, an empty volume type, a tag key with `=`.
    volume_invalid_input => volume_invalid_input_body
}

async fn volume_invalid_input_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let base = cx.volume_spec("inv", &zone);
    let named = |label: &str| cx.volume_spec(label, &zone);
    let mut bad_tag = named("inv-tag");
    bad_tag.tags.insert("a=b".into(), "c".into());
    let cases = vec![
        (
            "a name with '/'",
            edited(base.clone(), |s| s.name = format!("{}/x", base.name)),
            "name",
        ),
        (
            "size 0",
            edited(named("inv-zero"), |s| s.size_gib = 0),
            "size_gib",
        ),
        (
            "a size over the maximum",
            edited(named("inv-huge"), |s| s.size_gib = u64::MAX),
            "size_gib",
        ),
        (
            "an empty zone",
            edited(named("inv-zone"), |s| s.availability_zone = String::new()),
            "availability_zone",
        ),
        (
            "an empty volume type",
            edited(named("inv-type"), |s| s.volume_type = Some(" ".into())),
            "volume_type",
        ),
        ("a tag key containing '='", bad_tag, "tags"),
    ];
    for (what, spec, field) in cases {
        expect_invalid(
            cx.try_create_volume(&spec).await,
            field,
            format!("create_volume with {what}"),
        )?;
    }
    Ok(())
}

check! {
    /// `list_volumes` with a tag filter returns the volumes that match and only those.
    volume_tag_filter => volume_tag_filter_body
}

async fn volume_tag_filter_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let mut a = cx.volume_spec("tf-a", &zone);
    a.tags = cx.tags_with_role("a");
    let mut b = cx.volume_spec("tf-b", &zone);
    b.tags = cx.tags_with_role("b");
    let (a, b) = futures::try_join!(cx.create_volume(&a), cx.create_volume(&b))?;
    cx.check_tag_filter(ResourceKind::Volume, &a.id, &b.id)
        .await
}

check! {
    /// `list_volumes` follows pagination: with `capabilities().page_size + 1` volumes,
    /// the filtered list returns every one of them, once. Skipped when that is more than
    /// `config.max_pagination_resources`.
    volume_pagination => volume_pagination_body
}

async fn volume_pagination_body(cx: &Ctx<'_>) -> CheckResult {
    let page = cx.p.capabilities().page_size;
    let n = page.saturating_add(1);
    if n > cx.cfg.max_pagination_resources {
        return Err(skipped(format!(
            "a page of {page} needs {n} volumes, more than config.max_pagination_resources ({})",
            cx.cfg.max_pagination_resources
        )));
    }
    let zone = cx.zone().await?;
    let specs: Vec<VolumeSpec> = (0..n)
        .map(|i| cx.volume_spec(&format!("pg-{i}"), &zone))
        .collect();
    let created = cx
        .create_many(
            specs
                .iter()
                .map(|s| cx.create_volume(s))
                .collect::<Vec<_>>(),
        )
        .await?;
    let want: BTreeSet<String> = created.into_iter().map(|v| v.id).collect();
    ensure!(
        want.len() == n,
        "creating {n} volumes with distinct names returned {} distinct ids",
        want.len()
    );
    let listed = cx.p.list_volumes(&cx.filter()).await.step("list_volumes")?;
    let got: BTreeSet<&String> = listed.iter().map(|v| &v.id).collect();
    let missing: Vec<&String> = want.iter().filter(|id| !got.contains(id)).collect();
    ensure!(
        missing.is_empty(),
        "list_volumes with a filter matching {n} volumes (page size {page}) returned {} of them; missing {} (e.g. {:?}): it does not follow pagination",
        listed.len(),
        missing.len(),
        missing.first()
    );
    let ours = listed.iter().filter(|v| want.contains(&v.id)).count();
    ensure!(
        ours == n,
        "list_volumes returned {ours} entries for {n} volumes: some twice"
    );
    Ok(())
}
