//! Pagination of the kinds whose checks live here (instances, floating IPs, load
//! balancers; groups and volumes have theirs in their modules): with
//! `capabilities().page_size + 1` resources, the filtered list returns every one once.

use std::collections::BTreeSet;

use super::ctx::*;
use super::expect::*;
use super::CheckResult;
use crate::model::*;

/// How many resources cross one page, or a skip when that is above the config's bound.
fn over_one_page(cx: &Ctx<'_>, kind: ResourceKind) -> Step<(usize, usize)> {
    let page = cx.p.capabilities().page_size;
    let n = page.saturating_add(1);
    if n > cx.cfg.max_pagination_resources {
        return Err(skipped(format!(
            "a page of {page} needs {n} {kind}s, more than config.max_pagination_resources ({})",
            cx.cfg.max_pagination_resources
        )));
    }
    Ok((page, n))
}

/// Checks that the run's filtered list of `kind` returns each of `created` once.
async fn lists_every_one(
    cx: &Ctx<'_>,
    kind: ResourceKind,
    created: Vec<String>,
    page: usize,
) -> CheckResult {
    let n = created.len();
    let want: BTreeSet<String> = created.into_iter().collect();
    ensure!(
        want.len() == n,
        "creating {n} {kind}s with distinct names returned {} distinct ids",
        want.len()
    );
    let listed = cx
        .list_tagged(kind, &cx.filter())
        .await
        .step(format!("listing {kind}s"))?;
    let got: BTreeSet<&String> = listed.iter().map(|(id, _)| id).collect();
    let missing: Vec<&String> = want.iter().filter(|id| !got.contains(id)).collect();
    ensure!(
        missing.is_empty(),
        "the list of {kind}s with a filter matching {n} of them (page size {page}) returned {} of them; missing {} (e.g. {:?}): it does not follow pagination",
        listed.len(),
        missing.len(),
        missing.first()
    );
    let ours = listed.iter().filter(|(id, _)| want.contains(id)).count();
    ensure!(
        ours == n,
        "the list of {kind}s returned {ours} entries for {n} of them: some twice"
    );
    Ok(())
}

check! {
    /// `list_instances` follows pagination: with `capabilities().page_size + 1`
    /// instances, the filtered list returns every one of them, once. Skipped when that
    /// is more than `config.max_pagination_resources`.
    instance_pagination => instance_pagination_body
}

async fn instance_pagination_body(cx: &Ctx<'_>) -> CheckResult {
    let kind = ResourceKind::Instance;
    let (page, n) = over_one_page(cx, kind)?;
    let zone = cx.zone().await?;
    let specs: Vec<InstanceSpec> = (0..n)
        .map(|i| cx.instance_spec(&format!("pg-{i}"), &zone))
        .collect();
    let creates = specs
        .iter()
        .map(|s| cx.create_instance(s))
        .collect::<Vec<_>>();
    let created = cx.create_many(creates).await?;
    lists_every_one(cx, kind, created.into_iter().map(|x| x.id).collect(), page).await
}

check! {
    /// `list_floating_ips` follows pagination: with `capabilities().page_size + 1`
    /// addresses, the filtered list returns every one of them, once. Skipped when that
    /// is more than `config.max_pagination_resources`.
    floating_ip_pagination => floating_ip_pagination_body
}

async fn floating_ip_pagination_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_floating_ips()?;
    let kind = ResourceKind::FloatingIp;
    let (page, n) = over_one_page(cx, kind)?;
    let specs = (0..n)
        .map(|i| cx.fip_spec(&format!("pg-{i}")))
        .collect::<Step<Vec<FloatingIpSpec>>>()?;
    let creates = specs.iter().map(|s| cx.create_fip(s)).collect::<Vec<_>>();
    let created = cx.create_many(creates).await?;
    lists_every_one(cx, kind, created.into_iter().map(|x| x.id).collect(), page).await
}

check! {
    /// `list_load_balancers` follows pagination: with `capabilities().page_size + 1`
    /// load balancers, the filtered list returns every one of them, once. Skipped when
    /// that is more than `config.max_pagination_resources`.
    load_balancer_pagination => load_balancer_pagination_body
}

async fn load_balancer_pagination_body(cx: &Ctx<'_>) -> CheckResult {
    cx.require_load_balancers()?;
    let kind = ResourceKind::LoadBalancer;
    let (page, n) = over_one_page(cx, kind)?;
    let port = cx.cfg.lb_port;
    let specs: Vec<LoadBalancerSpec> = (0..n)
        .map(|i| cx.lb_spec(&format!("pg-{i}"), vec![cx.listener(port, Vec::new())]))
        .collect();
    let creates = specs.iter().map(|s| cx.create_lb(s)).collect::<Vec<_>>();
    let created = cx.create_many(creates).await?;
    lists_every_one(cx, kind, created.into_iter().map(|x| x.id).collect(), page).await
}
