//! What a check works with: the provider, the config, its run id with the names and
//! tags derived from it, the bounds it runs in, and reading any kind of resource.
//! Assertions live in `expect`, what checks create in `fixtures`, the cleanup in `sweep`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, MutexGuard};

use futures::FutureExt;

use super::expect::*;
use super::fixtures::ROLE_TAG;
use super::{CheckFailure, CheckResult, ConformanceConfig, ZoneSelection, CHECK_TAG, RUN_TAG};
use crate::model::*;
use crate::{Family, Provider, ProviderExt};

/// Whether the provider has resources of `kind`.
pub(crate) fn supports(p: &dyn Provider, kind: ResourceKind) -> bool {
    p.supports(kind.family())
}

/// The name of the [`Provider`] accessor of `family`.
fn accessor(family: Family) -> &'static str {
    match family {
        Family::SecurityGroups => "security_groups",
        Family::Instances => "instances",
        Family::Volumes => "volumes",
        Family::FloatingIps => "floating_ips",
        Family::LoadBalancers => "load_balancers",
        _ => "its accessor",
    }
}

/// The context of one run of one check.
pub(crate) struct Ctx<'a> {
    /// The provider under test.
    pub(crate) p: &'a dyn Provider,
    /// The config.
    pub(crate) cfg: &'a ConformanceConfig,
    /// The name of the check.
    pub(super) check: &'static str,
    run_id: String,
    short: String,
    created: Mutex<Vec<(ResourceKind, String)>>,
}

impl<'a> Ctx<'a> {
    /// A context with a fresh run id.
    pub(crate) fn new(
        p: &'a dyn Provider,
        cfg: &'a ConformanceConfig,
        check: &'static str,
    ) -> Self {
        let uuid = uuid::Uuid::new_v4();
        let short = uuid.simple().to_string().chars().take(8).collect();
        Self {
            p,
            cfg,
            check,
            run_id: uuid.to_string(),
            short,
            created: Mutex::new(Vec::new()),
        }
    }

    /// Eight hex digits unique to this run.
    pub(crate) fn short(&self) -> &str {
        &self.short
    }

    /// A resource name unique to this run: `pc-<short>-<label>`.
    pub(crate) fn name(&self, label: &str) -> String {
        format!("pc-{}-{label}", self.short)
    }

    /// The tags every resource of this run carries.
    pub(crate) fn tags(&self) -> Tags {
        [
            (RUN_TAG.to_string(), self.run_id.clone()),
            (CHECK_TAG.to_string(), self.check.to_string()),
        ]
        .into()
    }

    /// The filter selecting this run's resources.
    pub(crate) fn filter(&self) -> TagFilter {
        TagFilter::new(RUN_TAG, self.run_id.clone())
    }

    /// The run's tags plus `role`.
    pub(crate) fn tags_with_role(&self, role: &str) -> Tags {
        let mut t = self.tags();
        t.insert(ROLE_TAG.to_string(), role.to_string());
        t
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(ResourceKind, String)>> {
        self.created.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a created resource for the sweep.
    pub(crate) fn track(&self, kind: ResourceKind, id: &str) {
        self.lock().push((kind, id.to_string()));
    }

    /// Takes the list of what the run created, for the sweep.
    pub(super) fn take_tracked(&self) -> Vec<(ResourceKind, String)> {
        std::mem::take(&mut *self.lock())
    }

    /// Runs `body` within the config's check timeout; a panic in it (in the provider,
    /// most likely) fails the check with the panic's message.
    pub(crate) async fn bounded(&self, body: impl Future<Output = CheckResult>) -> CheckResult {
        let body = AssertUnwindSafe(body).catch_unwind();
        match tokio::time::timeout(self.cfg.check_timeout, body).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(payload)) => Err(failed(format!(
                "panicked: {}",
                super::panic_message(payload.as_ref())
            ))),
            Err(_) => Err(failed(format!(
                "did not finish within {:?} (config.check_timeout)",
                self.cfg.check_timeout
            ))),
        }
    }

    /// Skips, naming the family, when the provider lacks the family this check belongs
    /// to (zone and tag checks belong to every provider).
    pub(crate) fn require_own_family(&self) -> Step<()> {
        let own = super::checks()
            .into_iter()
            .find(|c| c.name == self.check)
            .map(|c| c.family);
        match own {
            Some(Family::Core) | None => Ok(()),
            Some(family) => self.require(family),
        }
    }

    /// Sweeps what the run created and folds a cleanup failure into `outcome`. A panic
    /// in the sweep is a cleanup failure.
    pub(crate) async fn finish(self, outcome: CheckResult) -> CheckResult {
        let swept = AssertUnwindSafe(self.sweep())
            .catch_unwind()
            .await
            .unwrap_or_else(|payload| {
                Err(format!(
                    "the sweep panicked: {}",
                    super::panic_message(payload.as_ref())
                ))
            });
        match (outcome, swept) {
            (outcome, Ok(())) => outcome,
            (Ok(()) | Err(CheckFailure::Skipped(_)), Err(e)) => {
                Err(failed(format!("cleanup failed: {e}")))
            }
            (Err(CheckFailure::Failed(r)), Err(e)) => {
                Err(failed(format!("{r}; cleanup also failed: {e}")))
            }
        }
    }

    // --- capabilities and zones

    /// Skips unless the provider has floating IPs.
    pub(crate) fn require_floating_ips(&self) -> Step<()> {
        self.require(Family::FloatingIps)
    }

    /// Skips unless the provider has load balancers.
    pub(crate) fn require_load_balancers(&self) -> Step<()> {
        self.require(Family::LoadBalancers)
    }

    /// Skips, naming the family and its accessor, unless the provider has `family`.
    pub(crate) fn require(&self, family: Family) -> Step<()> {
        if self.p.supports(family) {
            Ok(())
        } else {
            Err(skipped(format!(
                "the provider has no {} ({}() is None)",
                family.label(),
                accessor(family)
            )))
        }
    }

    /// The zones the config selects.
    pub(crate) async fn zones(&self) -> Step<Vec<String>> {
        match &self.cfg.availability_zones {
            ZoneSelection::Named(names) if names.is_empty() => Err(failed(
                "config.availability_zones names no zone: name at least one",
            )),
            ZoneSelection::Named(names) => Ok(names.clone()),
            ZoneSelection::First(n) => {
                let zones = self
                    .p
                    .list_availability_zones()
                    .await
                    .step("list_availability_zones")?;
                let names: Vec<String> = zones
                    .into_iter()
                    .filter(|z| z.available)
                    .map(|z| z.name)
                    .take(*n)
                    .collect();
                if names.is_empty() {
                    Err(failed(format!(
                        "no available zone to use: list_availability_zones has none available (or config asks for the first {n})"
                    )))
                } else {
                    Ok(names)
                }
            }
        }
    }

    /// The first selected zone.
    pub(crate) async fn zone(&self) -> Step<String> {
        let zones = self.zones().await?;
        zones
            .into_iter()
            .next()
            .ok_or_else(|| failed("no zone selected"))
    }
    // --- any kind

    /// The tags of a resource of any kind, read with its `get_*`.
    pub(crate) async fn tags_of(&self, kind: ResourceKind, id: &str) -> crate::Result<Tags> {
        Ok(match kind {
            ResourceKind::SecurityGroup => self.p.get_security_group(id).await?.tags,
            ResourceKind::FloatingIp => self.p.get_floating_ip(id).await?.tags,
            ResourceKind::Volume => self.p.get_volume(id).await?.tags,
            ResourceKind::Instance => self.p.get_instance(id).await?.tags,
            ResourceKind::LoadBalancer => self.p.get_load_balancer(id).await?.tags,
        })
    }

    /// Ids and tags of the resources of `kind` that `list_*` returns for `filter`.
    pub(crate) async fn list_tagged(
        &self,
        kind: ResourceKind,
        filter: &TagFilter,
    ) -> crate::Result<Vec<(String, Tags)>> {
        Ok(match kind {
            ResourceKind::SecurityGroup => self
                .p
                .list_security_groups(filter)
                .await?
                .into_iter()
                .map(|x| (x.id, x.tags))
                .collect(),
            ResourceKind::FloatingIp => self
                .p
                .list_floating_ips(filter)
                .await?
                .into_iter()
                .map(|x| (x.id, x.tags))
                .collect(),
            ResourceKind::Volume => self
                .p
                .list_volumes(filter)
                .await?
                .into_iter()
                .map(|x| (x.id, x.tags))
                .collect(),
            ResourceKind::Instance => self
                .p
                .list_instances(filter)
                .await?
                .into_iter()
                .map(|x| (x.id, x.tags))
                .collect(),
            ResourceKind::LoadBalancer => self
                .p
                .list_load_balancers(filter)
                .await?
                .into_iter()
                .map(|x| (x.id, x.tags))
                .collect(),
        })
    }

    /// Deletes a resource of any kind.
    pub(crate) async fn delete(&self, kind: ResourceKind, id: &str) -> crate::Result<()> {
        match kind {
            ResourceKind::SecurityGroup => self.p.delete_security_group(id).await,
            ResourceKind::FloatingIp => self.p.release_floating_ip(id).await,
            ResourceKind::Volume => self.p.delete_volume(id).await,
            ResourceKind::Instance => self.p.delete_instance(id).await,
            ResourceKind::LoadBalancer => self.p.delete_load_balancer(id).await,
        }
    }
}
