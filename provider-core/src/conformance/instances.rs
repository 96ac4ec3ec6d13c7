//! Checks of instances, single and batch, and their placement.

use super::ctx::*;
use super::expect::*;
use super::fixtures::*;
use super::CheckResult;
use crate::model::*;
use crate::{Family, ProviderExt};

/// User data larger than every provider accepts (the trait's limit is 16 KiB, EC2's).
const OVERSIZED_USER_DATA: usize = 64 * 1024 + 1;

check! {
    /// Creates an instance (with a security group, when the provider has them); the
    /// record, `get_instance` and `list_instances` show it running in the requested zone
    /// with its name, group and tags; after `delete_instance` it is `NotFound` and no longer listed.
    instance_lifecycle => instance_lifecycle_body
}

async fn instance_lifecycle_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let group = if cx.p.supports(Family::SecurityGroups) {
        Some(cx.sg("inst-sg").await?.id)
    } else {
        None
    };
    let mut spec = cx.instance_spec("inst", &zone);
    spec.security_groups.extend(group.clone());
    let i = cx.create_instance(&spec).await?;
    ensure!(
        i.name == spec.name,
        "create_instance returned name {:?}, asked for {:?}",
        i.name,
        spec.name
    );
    ensure!(
        i.availability_zone == zone,
        "create_instance returned zone {:?}, asked for {zone:?}",
        i.availability_zone
    );
    ensure!(
        i.state == InstanceState::Running,
        "create_instance returned state {:?}, expected Running",
        i.state
    );
    if let Some(g) = &group {
        ensure!(
            i.security_groups.contains(g),
            "create_instance returned security groups {:?}, expected them to include {g}",
            i.security_groups
        );
    }
    ensure_tags(&spec.tags, &i.tags, "create_instance")?;

    let got = cx.p.get_instance(&i.id).await.step("get_instance")?;
    ensure!(
        got.id == i.id,
        "get_instance({}) returned instance {}",
        i.id,
        got.id
    );
    ensure!(
        got.name == spec.name
            && got.availability_zone == zone
            && got.state == InstanceState::Running,
        "get_instance returned {}, created {}",
        brief(&got),
        brief(&i)
    );
    if let Some(g) = &group {
        ensure!(
            got.security_groups.contains(g),
            "get_instance lost security group {g}: {:?}",
            got.security_groups
        );
    }
    ensure_tags(&spec.tags, &got.tags, "get_instance")?;

    let listed =
        cx.p.list_instances(&cx.filter())
            .await
            .step("list_instances")?;
    let n = listed.iter().filter(|x| x.id == i.id).count();
    ensure!(
        n == 1,
        "list_instances with the run's filter returned instance {} {n} times, expected once",
        i.id
    );

    cx.p.delete_instance(&i.id).await.step("delete_instance")?;
    expect_not_found(cx.p.get_instance(&i.id).await, "get_instance after delete")?;
    let listed =
        cx.p.list_instances(&cx.filter())
            .await
            .step("list_instances after delete")?;
    ensure!(
        !listed.iter().any(|x| x.id == i.id),
        "list_instances still returns instance {} after delete",
        i.id
    );
    Ok(())
}

check! {
    /// `create_instances` creates one running instance per spec, in spec order and in
    /// each spec's zone, and returns the same instances when repeated; `get_instances`
    /// answers in the order asked, answers nothing for no ids, and is `NotFound` when
    /// one id is missing; `delete_instances` deletes them all, one already gone
    /// included, and does nothing for no ids.
    instance_batch_forms => instance_batch_forms_body
}

async fn instance_batch_forms_body(cx: &Ctx<'_>) -> CheckResult {
    let zones = cx.zones().await?;
    let n = zones.len().max(2);
    let specs: Vec<InstanceSpec> = zones
        .iter()
        .cycle()
        .take(n)
        .enumerate()
        .map(|(i, z)| cx.instance_spec(&format!("batch-{i}"), z))
        .collect();
    let created = cx
        .try_create_instances(&specs)
        .await
        .step("create_instances")?;
    ensure!(
        created.len() == n,
        "create_instances of {n} specs returned {} instances",
        created.len()
    );
    for (s, i) in specs.iter().zip(&created) {
        ensure!(
            i.name == s.name,
            "create_instances returned {:?} where spec order has {:?}",
            i.name,
            s.name
        );
        ensure!(
            i.availability_zone == s.availability_zone,
            "create_instances placed {} in zone {:?}, asked for {:?}",
            i.name,
            i.availability_zone,
            s.availability_zone
        );
        ensure!(
            i.state == InstanceState::Running,
            "create_instances returned {} in state {:?}",
            i.name,
            i.state
        );
    }
    let again = cx
        .try_create_instances(&specs)
        .await
        .step("create_instances again with the same specs")?;
    let ids: Vec<&String> = created.iter().map(|i| &i.id).collect();
    let ids_again: Vec<&String> = again.iter().map(|i| &i.id).collect();
    ensure!(
        ids == ids_again,
        "create_instances again returned {ids_again:?} instead of {ids:?}"
    );

    let reversed: Vec<String> = created.iter().rev().map(|i| i.id.clone()).collect();
    let got = cx.p.get_instances(&reversed).await.step("get_instances")?;
    let got_ids: Vec<String> = got.iter().map(|i| i.id.clone()).collect();
    ensure!(
        got_ids == reversed,
        "get_instances({reversed:?}) answered {got_ids:?}: not in the order asked"
    );
    for i in &got {
        let s = specs.iter().find(|s| s.name == i.name);
        ensure!(
            s.is_some_and(|s| s.availability_zone == i.availability_zone),
            "get_instances shows {} in zone {:?}",
            i.name,
            i.availability_zone
        );
    }
    let none =
        cx.p.get_instances(&[])
            .await
            .step("get_instances of no ids")?;
    ensure!(
        none.is_empty(),
        "get_instances of no ids returned {} instances",
        none.len()
    );

    let (Some(first), Some(last)) = (created.first(), created.last()) else {
        return Err(failed("create_instances returned no instance"));
    };
    let (first, last) = (first.id.clone(), last.id.clone());
    cx.p.delete_instance(&last).await.step("delete_instance")?;
    expect_not_found(
        cx.p.get_instances(&[first, last.clone()]).await,
        format!("get_instances with deleted instance {last}"),
    )?;

    cx.p.delete_instances(&[])
        .await
        .step("delete_instances of no ids")?;
    let all: Vec<String> = created.iter().map(|i| i.id.clone()).collect();
    cx.p.delete_instances(&all)
        .await
        .step("delete_instances, one of them already gone")?;
    for id in &all {
        expect_not_found(
            cx.p.get_instance(id).await,
            format!("get_instance of {id} after delete_instances"),
        )?;
    }
    Ok(())
}

check! {
    /// An instance created in each selected zone is in that zone, in the create record,
    /// in `get_instance` and in `list_instances`.
    instance_zone_placement => instance_zone_placement_body
}

async fn instance_zone_placement_body(cx: &Ctx<'_>) -> CheckResult {
    let zones = cx.zones().await?;
    let labels: Vec<String> = (0..zones.len()).map(|i| format!("place-{i}")).collect();
    let created =
        futures::future::try_join_all(zones.iter().zip(&labels).map(|(z, l)| cx.instance(l, z)))
            .await?;
    let listed =
        cx.p.list_instances(&cx.filter())
            .await
            .step("list_instances")?;
    for (zone, i) in zones.iter().zip(&created) {
        ensure!(
            &i.availability_zone == zone,
            "create_instance in {zone:?} returned zone {:?}",
            i.availability_zone
        );
        let got = cx.p.get_instance(&i.id).await.step("get_instance")?;
        ensure!(
            &got.availability_zone == zone,
            "instance {} asked for zone {zone:?} is in {:?} according to get_instance",
            i.id,
            got.availability_zone
        );
        let l = listed.iter().find(|x| x.id == i.id);
        ensure!(
            l.is_some_and(|x| &x.availability_zone == zone),
            "list_instances shows instance {} in zone {:?}, asked for {zone:?}",
            i.id,
            l.map(|x| &x.availability_zone)
        );
    }
    Ok(())
}

check! {
    /// Creating an instance again with the same name and spec returns the same instance.
    instance_create_idempotent => instance_create_idempotent_body
}

async fn instance_create_idempotent_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let spec = cx.instance_spec("idem", &zone);
    let a = cx.create_instance(&spec).await?;
    let b = cx
        .try_create_instance(&spec)
        .await
        .step("create_instance again with the same name and spec")?;
    ensure!(
        a.id == b.id,
        "creating instance {} again returned a new instance {} instead of {}",
        spec.name,
        b.id,
        a.id
    );
    let listed =
        cx.p.list_instances(&cx.filter())
            .await
            .step("list_instances")?;
    let n = listed.iter().filter(|x| x.name == spec.name).count();
    ensure!(
        n == 1,
        "{n} instances are named {} after creating it twice",
        spec.name
    );
    Ok(())
}

check! {
    /// Creating an instance with the name of an existing instance but other user data
    /// is `Conflict`.
    instance_name_conflict => instance_name_conflict_body
}

async fn instance_name_conflict_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let spec = cx.instance_spec("conflict", &zone);
    cx.create_instance(&spec).await?;
    let other = spec.clone().with_user_data(format!(
        "{}\n# another spec",
        spec.user_data.clone().unwrap_or_default()
    ));
    expect_conflict(
        cx.try_create_instance(&other).await,
        "create_instance with an existing name and other user data",
    )?;
    Ok(())
}

check! {
    /// `get_instance` and `get_instances` of a deleted instance are `NotFound`.
    instance_missing_not_found => instance_missing_not_found_body
}

async fn instance_missing_not_found_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let gone = cx.gone_instance(&zone).await?;
    expect_not_found(
        cx.p.get_instance(&gone).await,
        format!("get_instance of deleted instance {gone}"),
    )?;
    expect_not_found(
        cx.p.get_instances(std::slice::from_ref(&gone)).await,
        format!("get_instances of deleted instance {gone}"),
    )?;
    Ok(())
}

check! {
    /// Deleting an instance that is already deleted succeeds.
    instance_delete_gone_ok => instance_delete_gone_ok_body
}

async fn instance_delete_gone_ok_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let i = cx.instance("gone", &zone).await?;
    cx.p.delete_instance(&i.id).await.step("delete_instance")?;
    cx.p.delete_instance(&i.id).await.step(format!(
        "delete_instance of already deleted instance {}",
        i.id
    ))?;
    Ok(())
}

check! {
    /// Bad instance specs are `InvalidInput` naming the field: a bad name, an empty
    /// flavor, image or zone, an empty security group id, user data over the limit, a
    /// tag key with `=`; `create_instances` rejects a bad spec the same way.
    instance_invalid_input => instance_invalid_input_body
}

async fn instance_invalid_input_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let base = cx.instance_spec("inv", &zone);
    let named = |label: &str| cx.instance_spec(label, &zone);
    let mut bad_tag = named("inv-tag");
    bad_tag.tags.insert("a=b".into(), "c".into());
    let mut bad_group = named("inv-sg");
    bad_group.security_groups.push(String::new());
    let cases = vec![
        (
            "a name starting with '_'",
            edited(base.clone(), |s| s.name = format!("_{}", base.name)),
            "name",
        ),
        (
            "an empty flavor",
            edited(named("inv-flavor"), |s| s.flavor = String::new()),
            "flavor",
        ),
        (
            "an empty image",
            edited(named("inv-image"), |s| s.image = " ".into()),
            "image",
        ),
        (
            "an empty zone",
            edited(named("inv-zone"), |s| s.availability_zone = String::new()),
            "availability_zone",
        ),
        ("an empty security group id", bad_group, "security_groups"),
        (
            "user data over the limit",
            edited(named("inv-ud"), |s| {
                s.user_data = Some("x".repeat(OVERSIZED_USER_DATA))
            }),
            "user_data",
        ),
        ("a tag key containing '='", bad_tag, "tags"),
    ];
    for (what, spec, field) in cases {
        expect_invalid(
            cx.try_create_instance(&spec).await,
            field,
            format!("create_instance with {what}"),
        )?;
    }
    let batch = vec![edited(base.clone(), |s| s.name = format!("-{}", base.name))];
    expect_invalid(
        cx.try_create_instances(&batch).await,
        "name",
        "create_instances with a spec whose name starts with '-'",
    )?;
    Ok(())
}

check! {
    /// `list_instances` with a tag filter returns the instances that match and only
    /// those.
    instance_tag_filter => instance_tag_filter_body
}

async fn instance_tag_filter_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = cx.zone().await?;
    let mut a = cx.instance_spec("tf-a", &zone);
    a.tags = cx.tags_with_role("a");
    let mut b = cx.instance_spec("tf-b", &zone);
    b.tags = cx.tags_with_role("b");
    let (a, b) = futures::try_join!(cx.create_instance(&a), cx.create_instance(&b))?;
    cx.check_tag_filter(ResourceKind::Instance, &a.id, &b.id)
        .await
}
