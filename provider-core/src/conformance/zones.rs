//! Checks of `capabilities()` and availability zones.

use std::collections::BTreeSet;

use super::ctx::*;
use super::expect::*;
use super::CheckResult;
use super::ZoneSelection;
use crate::model::*;
use crate::ErrorKind;
use crate::{Family, ProviderExt};

check! {
    /// `name()` is set and `capabilities()` is coherent with the families: `page_size`
    /// is at least 1, a provider with load balancers names their protocols, a kind of a
    /// family the provider lacks answers `Unsupported`, and every list with a filter
    /// nothing matches is empty.
    capabilities_are_consistent => capabilities_are_consistent_body
}

async fn capabilities_are_consistent_body(cx: &Ctx<'_>) -> CheckResult {
    ensure!(!cx.p.name().trim().is_empty(), "name() is empty");
    let caps = cx.p.capabilities();
    ensure!(
        caps.page_size >= 1,
        "capabilities().page_size is 0: give the largest page the lists fetch"
    );
    if cx.p.supports(Family::LoadBalancers) {
        ensure!(
            !caps.lb_protocols.is_empty(),
            "capabilities() has load balancers but lists no lb_protocols"
        );
    }
    let filter = cx.filter();
    for kind in [
        ResourceKind::SecurityGroup,
        ResourceKind::FloatingIp,
        ResourceKind::Volume,
        ResourceKind::Instance,
        ResourceKind::LoadBalancer,
    ] {
        if !supports(cx.p, kind) {
            continue;
        }
        let listed = cx
            .list_tagged(kind, &filter)
            .await
            .step(format!("listing {kind}s with a filter nothing matches"))?;
        ensure!(
            listed.is_empty(),
            "listing {kind}s with a filter on a fresh run id returned {} of them, expected none",
            listed.len()
        );
    }
    if !cx.p.supports(Family::SecurityGroups) {
        expect_kind(
            cx.try_create_sg(&cx.sg_spec("unsupported-sg")).await,
            &[ErrorKind::Unsupported],
            "create_security_group on a provider without security groups",
        )?;
    }
    if !cx.p.supports(Family::FloatingIps) {
        let pool = cx
            .cfg
            .floating_ip_pool
            .clone()
            .unwrap_or_else(|| "default".into());
        let spec = FloatingIpSpec::new(cx.name("unsupported-fip"), pool).with_tags(cx.tags());
        expect_kind(
            cx.try_create_fip(&spec).await,
            &[ErrorKind::Unsupported],
            "allocate_floating_ip on a provider without floating IPs",
        )?;
    }
    if !cx.p.supports(Family::LoadBalancers) {
        let spec = cx.lb_spec(
            "unsupported-lb",
            vec![cx.listener(cx.cfg.lb_port, Vec::new())],
        );
        expect_kind(
            cx.try_create_lb(&spec).await,
            &[ErrorKind::Unsupported],
            "create_load_balancer on a provider without load balancers",
        )?;
    }
    Ok(())
}

check! {
    /// `list_availability_zones` returns at least one available zone, with unique
    /// non-empty names, and every zone the config names exists and is available.
    zones_are_listed => zones_are_listed_body
}

async fn zones_are_listed_body(cx: &Ctx<'_>) -> CheckResult {
    let zones =
        cx.p.list_availability_zones()
            .await
            .step("list_availability_zones")?;
    ensure!(
        !zones.is_empty(),
        "list_availability_zones returned no zone"
    );
    let mut seen = BTreeSet::new();
    for z in &zones {
        ensure!(
            !z.name.trim().is_empty(),
            "list_availability_zones returned a zone with an empty name"
        );
        ensure!(
            seen.insert(z.name.clone()),
            "list_availability_zones returned zone {:?} twice",
            z.name
        );
    }
    ensure!(
        zones.iter().any(|z| z.available),
        "no zone is available: {zones:?}"
    );
    match &cx.cfg.availability_zones {
        ZoneSelection::Named(names) => {
            for name in names {
                let zone = zones.iter().find(|z| &z.name == name);
                ensure!(
                    zone.is_some(),
                    "config names zone {name:?}, which list_availability_zones does not return ({:?})",
                    seen
                );
                ensure!(
                    zone.is_some_and(|z| z.available),
                    "config names zone {name:?}, which is not available"
                );
            }
        }
        ZoneSelection::First(n) => {
            ensure!(
                *n >= 1,
                "config selects the first 0 zones: select at least one"
            );
        }
    }
    let chosen = cx.zones().await?;
    ensure!(!chosen.is_empty(), "the config selects no zone");
    Ok(())
}

check! {
    /// Creating an instance or a volume (of the families the provider has) in a zone that
    /// does not exist is `InvalidInput` naming `availability_zone`.
    unknown_zone_invalid_input => unknown_zone_invalid_input_body
}

async fn unknown_zone_invalid_input_body(cx: &Ctx<'_>) -> CheckResult {
    let zone = format!("plinth-no-such-zone-{}", cx.short());
    if cx.p.supports(Family::Instances) {
        let spec = cx.instance_spec("badzone-inst", &zone);
        expect_invalid(
            cx.try_create_instance(&spec).await,
            "availability_zone",
            format!("create_instance in unknown zone {zone:?}"),
        )?;
    }
    if cx.p.supports(Family::Volumes) {
        let spec = cx.volume_spec("badzone-vol", &zone);
        expect_invalid(
            cx.try_create_volume(&spec).await,
            "availability_zone",
            format!("create_volume in unknown zone {zone:?}"),
        )?;
    }
    Ok(())
}

check! {
    /// `preflight` passes the config's own references (zones, image, flavor, network,
    /// subnets, floating IP pool, keypair) and reports a zone that does not exist,
    /// under the key it was given; every problem names a key the caller gave.
    preflight_reports_unknown_zone => preflight_reports_unknown_zone_body
}

async fn preflight_reports_unknown_zone_body(cx: &Ctx<'_>) -> CheckResult {
    let c = cx.cfg;
    let zones = cx.zones().await?;
    let mut refs = References::new()
        .with_image(Reference::new("kit.image", &c.image))
        .with_flavor(Reference::new("kit.flavor", &c.flavor));
    for z in &zones {
        refs = refs.with_zone(Reference::new("kit.zones", z));
    }
    if let Some(n) = &c.network {
        refs = refs.with_network(Reference::new("kit.network", n));
    }
    // One subnet per zone, in zone order, where the cloud's subnets live in one zone.
    let zone_subnets: Vec<&String> = zones.iter().filter_map(|z| c.zone_subnets.get(z)).collect();
    if zone_subnets.len() == zones.len() {
        for s in zone_subnets {
            refs = refs.with_subnet(Reference::new("kit.subnets", s));
        }
    } else if let Some(s) = &c.subnet {
        refs = refs.with_subnet(Reference::new("kit.subnets", s));
    }
    if let (Some(pool), true) = (&c.floating_ip_pool, cx.p.supports(Family::FloatingIps)) {
        refs = refs.with_floating_ip_pool(Reference::new("kit.pool", pool));
    }
    if let Some(k) = &c.keypair {
        refs = refs.with_keypair(Reference::new("kit.keypair", k));
    }
    let problems =
        cx.p.preflight(&refs)
            .await
            .step("preflight of the config's own references")?;
    ensure!(
        problems.is_empty(),
        "preflight reports problems with the config's own references: {problems:?}"
    );
    let zone = format!("plinth-no-such-zone-{}", cx.short());
    let bad = refs.with_zone(Reference::new("kit.bad-zone", &zone));
    let problems =
        cx.p.preflight(&bad)
            .await
            .step(format!("preflight with unknown zone {zone:?}"))?;
    ensure!(
        problems.iter().any(|p| p.key == "kit.bad-zone"),
        "preflight did not report the unknown zone {zone:?}: {problems:?}"
    );
    ensure!(
        problems.iter().all(|p| p.key == "kit.bad-zone"),
        "preflight reported problems besides the unknown zone: {problems:?}"
    );
    Ok(())
}
