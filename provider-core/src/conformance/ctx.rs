//! What a check works with: its run id, names and tags, spec builders, creates that
//! remember what they made, expectations on results, and the sweep that runs after
//! every check.

use std::collections::BTreeSet;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::future::join_all;
use futures::{FutureExt, StreamExt, TryStreamExt};
use ipnet::IpNet;

use super::{CheckFailure, CheckResult, ConformanceConfig, ZoneSelection, CHECK_TAG, RUN_TAG};
use crate::model::*;
use crate::{Error, ErrorKind, Family, Provider, ProviderExt};

/// The result of one step of a check.
pub(crate) type Step<T> = Result<T, CheckFailure>;

/// Tag key the tag-filter checks use to tell two resources apart.
pub(crate) const ROLE_TAG: &str = "plinth-conformance-role";
/// Tag key the update-tags checks set and remove.
pub(crate) const EXTRA_TAG: &str = "plinth-conformance-extra";

/// Order the sweep deletes in: what depends on others first.
const SWEEP_ORDER: [ResourceKind; 5] = [
    ResourceKind::LoadBalancer,
    ResourceKind::FloatingIp,
    ResourceKind::Volume,
    ResourceKind::Instance,
    ResourceKind::SecurityGroup,
];

/// A failed step.
pub(crate) fn failed(reason: impl Into<String>) -> CheckFailure {
    CheckFailure::Failed(reason.into())
}

/// A skipped check.
pub(crate) fn skipped(reason: impl Into<String>) -> CheckFailure {
    CheckFailure::Skipped(reason.into())
}

/// Turns a provider error into a failed step that says what was being done.
pub(crate) trait StepExt<T> {
    /// `what` names the call, e.g. `create_volume pc-1234-vol`.
    fn step(self, what: impl Display) -> Step<T>;
}

impl<T> StepExt<T> for crate::Result<T> {
    fn step(self, what: impl Display) -> Step<T> {
        self.map_err(|e| failed(format!("{what}: unexpected {:?} error: {e}", e.kind())))
    }
}

/// A short rendering of a value for failure messages.
pub(crate) fn brief<T: Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// Expects an error of one of `kinds`; returns it.
pub(crate) fn expect_kind<T: Debug>(
    res: crate::Result<T>,
    kinds: &[ErrorKind],
    what: impl Display,
) -> Step<Error> {
    let wanted = kinds
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(" or ");
    match res {
        Ok(v) => Err(failed(format!(
            "{what}: expected {wanted}, got Ok({})",
            brief(&v)
        ))),
        Err(e) if kinds.contains(&e.kind()) => Ok(e),
        Err(e) => Err(failed(format!(
            "{what}: expected {wanted}, got {:?}: {e}",
            e.kind()
        ))),
    }
}

/// Expects `NotFound`.
pub(crate) fn expect_not_found<T: Debug>(res: crate::Result<T>, what: impl Display) -> Step<()> {
    expect_kind(res, &[ErrorKind::NotFound], what).map(|_| ())
}

/// Expects `Conflict`.
pub(crate) fn expect_conflict<T: Debug>(res: crate::Result<T>, what: impl Display) -> Step<()> {
    expect_kind(res, &[ErrorKind::Conflict], what).map(|_| ())
}

/// Expects `InvalidInput` whose field names `field` (e.g. `size_gib` matches
/// `spec.size_gib`).
pub(crate) fn expect_invalid<T: Debug>(
    res: crate::Result<T>,
    field: &str,
    what: impl Display,
) -> Step<()> {
    let e = expect_kind(res, &[ErrorKind::InvalidInput], &what)?;
    match &e {
        Error::InvalidInput { field: f, .. } if f.contains(field) => Ok(()),
        Error::InvalidInput { field: f, .. } => Err(failed(format!(
            "{what}: InvalidInput names the field {f:?}, expected one naming {field:?} ({e})"
        ))),
        _ => Err(failed(format!("{what}: expected InvalidInput, got {e}"))),
    }
}

/// Checks every pair of `want` is in `got`.
pub(crate) fn ensure_tags(want: &Tags, got: &Tags, what: impl Display) -> Step<()> {
    for (k, v) in want {
        if got.get(k) != Some(v) {
            return Err(failed(format!(
                "{what}: tag {k:?} is {:?}, expected {v:?} (tags: {got:?})",
                got.get(k)
            )));
        }
    }
    Ok(())
}

/// A /32 network of TEST-NET-1 (192.0.2.0/24) for rules.
/// `base` with one edit. The specs are `#[non_exhaustive]`, so outside provider-core
/// (where readers of the kit write their own checks) struct update syntax is not
/// available; this is the shape that works everywhere.
pub(crate) fn edited<T>(mut base: T, edit: impl FnOnce(&mut T)) -> T {
    edit(&mut base);
    base
}

pub(crate) fn net(host: u8) -> IpNet {
    IpNet::from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, host)))
}

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
    check: &'static str,
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
        match own.and_then(|f| f.provider_family()) {
            Some(family) => self.require(family),
            None => Ok(()),
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

    // --- specs

    /// A security group spec with one rule for the member port.
    pub(crate) fn sg_spec(&self, label: &str) -> SecurityGroupSpec {
        SecurityGroupSpec::new(self.name(label))
            .with_description(format!("plinth conformance check {}", self.check))
            .with_rules([IngressRule::tcp(self.cfg.member_port, net(1))])
            .with_tags(self.tags())
    }

    /// A floating IP spec from the configured pool.
    pub(crate) fn fip_spec(&self, label: &str) -> Step<FloatingIpSpec> {
        let pool = self.cfg.floating_ip_pool.clone().ok_or_else(|| {
            failed("the provider has floating IPs but config.floating_ip_pool is not set: set it with with_floating_ip_pool")
        })?;
        Ok(FloatingIpSpec::new(self.name(label), pool).with_tags(self.tags()))
    }

    /// A volume spec in `zone`.
    pub(crate) fn volume_spec(&self, label: &str, zone: &str) -> VolumeSpec {
        let mut spec = VolumeSpec::new(self.name(label), zone, self.cfg.volume_size_gib)
            .with_tags(self.tags());
        // The optional settings come from the kit's config as options, so they are set
        // directly rather than through the `with_*` setters.
        spec.volume_type = self.cfg.volume_type.clone();
        spec
    }

    /// An instance spec in `zone`.
    pub(crate) fn instance_spec(&self, label: &str, zone: &str) -> InstanceSpec {
        let mut spec = InstanceSpec::new(
            self.name(label),
            zone,
            self.cfg.flavor.clone(),
            self.cfg.image.clone(),
        )
        .with_security_groups(self.cfg.extra_security_groups.clone())
        .with_tags(self.tags());
        // Optional settings come from the kit's config as options: set them directly.
        spec.network = self.cfg.network.clone();
        spec.subnet = self
            .cfg
            .zone_subnets
            .get(zone)
            .cloned()
            .or_else(|| self.cfg.subnet.clone());
        spec.keypair = self.cfg.keypair.clone();
        spec.user_data = self.cfg.user_data.clone();
        spec
    }

    /// The listener protocol to use: TCP when the provider speaks it.
    pub(crate) fn lb_protocol(&self) -> LbProtocol {
        let protocols = self.p.capabilities().lb_protocols;
        if protocols.contains(&LbProtocol::Tcp) {
            LbProtocol::Tcp
        } else {
            protocols.first().copied().unwrap_or(LbProtocol::Tcp)
        }
    }

    /// A member on the configured member port.
    pub(crate) fn member(&self, instance_id: &str) -> MemberSpec {
        MemberSpec::new(instance_id, self.cfg.member_port)
    }

    /// A listener on `port` with these members.
    pub(crate) fn listener(&self, port: u16, members: Vec<MemberSpec>) -> ListenerSpec {
        ListenerSpec::new(self.lb_protocol(), port).with_members(members)
    }

    /// A load balancer spec with these listeners.
    pub(crate) fn lb_spec(&self, label: &str, listeners: Vec<ListenerSpec>) -> LoadBalancerSpec {
        let mut spec = LoadBalancerSpec::new(self.name(label), listeners).with_tags(self.tags());
        spec.subnet = self
            .cfg
            .lb_subnet
            .clone()
            .or_else(|| self.cfg.subnet.clone());
        spec
    }

    // --- creates that remember what they made

    /// `create_security_group`, remembering the group.
    pub(crate) async fn try_create_sg(
        &self,
        spec: &SecurityGroupSpec,
    ) -> crate::Result<SecurityGroup> {
        let r = self.p.create_security_group(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::SecurityGroup, &x.id);
        }
        r
    }

    /// `create_security_group` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_sg(&self, spec: &SecurityGroupSpec) -> Step<SecurityGroup> {
        self.require(Family::SecurityGroups)?;
        self.try_create_sg(spec)
            .await
            .step(format!("create_security_group {}", spec.name))
    }

    /// A default security group.
    pub(crate) async fn sg(&self, label: &str) -> Step<SecurityGroup> {
        self.create_sg(&self.sg_spec(label)).await
    }

    /// `allocate_floating_ip`, remembering the address.
    pub(crate) async fn try_create_fip(&self, spec: &FloatingIpSpec) -> crate::Result<FloatingIp> {
        let r = self.p.allocate_floating_ip(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::FloatingIp, &x.id);
        }
        r
    }

    /// `allocate_floating_ip` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_fip(&self, spec: &FloatingIpSpec) -> Step<FloatingIp> {
        self.require(Family::FloatingIps)?;
        self.try_create_fip(spec)
            .await
            .step(format!("allocate_floating_ip {}", spec.name))
    }

    /// A default floating IP.
    pub(crate) async fn fip(&self, label: &str) -> Step<FloatingIp> {
        self.create_fip(&self.fip_spec(label)?).await
    }

    /// `create_volume`, remembering the volume.
    pub(crate) async fn try_create_volume(&self, spec: &VolumeSpec) -> crate::Result<Volume> {
        let r = self.p.create_volume(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::Volume, &x.id);
        }
        r
    }

    /// `create_volume` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_volume(&self, spec: &VolumeSpec) -> Step<Volume> {
        self.require(Family::Volumes)?;
        self.try_create_volume(spec)
            .await
            .step(format!("create_volume {}", spec.name))
    }

    /// A default volume in `zone`.
    pub(crate) async fn volume(&self, label: &str, zone: &str) -> Step<Volume> {
        self.create_volume(&self.volume_spec(label, zone)).await
    }

    /// `create_instance`, remembering the instance.
    pub(crate) async fn try_create_instance(&self, spec: &InstanceSpec) -> crate::Result<Instance> {
        let r = self.p.create_instance(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::Instance, &x.id);
        }
        r
    }

    /// `create_instance` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_instance(&self, spec: &InstanceSpec) -> Step<Instance> {
        self.require(Family::Instances)?;
        self.try_create_instance(spec)
            .await
            .step(format!("create_instance {}", spec.name))
    }

    /// A default instance in `zone`.
    pub(crate) async fn instance(&self, label: &str, zone: &str) -> Step<Instance> {
        self.create_instance(&self.instance_spec(label, zone)).await
    }

    /// `create_instances`, remembering the instances.
    pub(crate) async fn try_create_instances(
        &self,
        specs: &[InstanceSpec],
    ) -> crate::Result<Vec<Instance>> {
        let r = self.p.create_instances(specs).await;
        if let Ok(xs) = &r {
            for x in xs {
                self.track(ResourceKind::Instance, &x.id);
            }
        }
        r
    }

    /// `create_load_balancer`, remembering the load balancer.
    pub(crate) async fn try_create_lb(
        &self,
        spec: &LoadBalancerSpec,
    ) -> crate::Result<LoadBalancer> {
        let r = self.p.create_load_balancer(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::LoadBalancer, &x.id);
        }
        r
    }

    /// `create_load_balancer` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_lb(&self, spec: &LoadBalancerSpec) -> Step<LoadBalancer> {
        self.require(Family::LoadBalancers)?;
        self.try_create_lb(spec)
            .await
            .step(format!("create_load_balancer {}", spec.name))
    }

    /// A load balancer with one listener on the configured port and no members.
    pub(crate) async fn empty_lb(&self, label: &str) -> Step<LoadBalancer> {
        let spec = self.lb_spec(label, vec![self.listener(self.cfg.lb_port, Vec::new())]);
        self.create_lb(&spec).await
    }

    /// Runs many creates with the configured concurrency; all must succeed. (A `Vec`,
    /// not an iterator: a closure inside the future would defeat the `Send` proof.)
    pub(crate) async fn create_many<T, Fut>(&self, creates: Vec<Fut>) -> Step<Vec<T>>
    where
        Fut: Future<Output = Step<T>>,
    {
        futures::stream::iter(creates)
            .buffer_unordered(self.cfg.concurrency.max(1))
            .try_collect()
            .await
    }

    // --- ids of resources that existed and are gone

    /// The id of a security group created and deleted.
    pub(crate) async fn gone_sg(&self) -> Step<String> {
        let x = self.sg("gone-sg").await?;
        self.p
            .delete_security_group(&x.id)
            .await
            .step("delete_security_group")?;
        Ok(x.id)
    }

    /// The id of a floating IP allocated and released.
    pub(crate) async fn gone_fip(&self) -> Step<String> {
        let x = self.fip("gone-fip").await?;
        self.p
            .release_floating_ip(&x.id)
            .await
            .step("release_floating_ip")?;
        Ok(x.id)
    }

    /// The id of a volume created and deleted.
    pub(crate) async fn gone_volume(&self, zone: &str) -> Step<String> {
        let x = self.volume("gone-vol", zone).await?;
        self.p.delete_volume(&x.id).await.step("delete_volume")?;
        Ok(x.id)
    }

    /// The id of an instance created and deleted.
    pub(crate) async fn gone_instance(&self, zone: &str) -> Step<String> {
        let x = self.instance("gone-inst", zone).await?;
        self.p
            .delete_instance(&x.id)
            .await
            .step("delete_instance")?;
        Ok(x.id)
    }

    /// The id of a load balancer created and deleted.
    pub(crate) async fn gone_lb(&self) -> Step<String> {
        let x = self.empty_lb("gone-lb").await?;
        self.p
            .delete_load_balancer(&x.id)
            .await
            .step("delete_load_balancer")?;
        Ok(x.id)
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

    /// Checks tag filters on `kind`, given resource `a` tagged with role `a` and `b` with
    /// role `b`: each role's filter returns its resource, not the other, and only
    /// resources whose tags match; the run filter returns both.
    pub(crate) async fn check_tag_filter(&self, kind: ResourceKind, a: &str, b: &str) -> Step<()> {
        for (role, want, other) in [("a", a, b), ("b", b, a)] {
            let filter = self.filter().and(ROLE_TAG, role);
            let listed = self
                .list_tagged(kind, &filter)
                .await
                .step(format!("listing {kind}s with filter {:?}", filter.tags))?;
            ensure!(
                listed.iter().any(|(id, _)| id == want),
                "list of {kind}s with filter {:?} did not return {want}, which carries those tags",
                filter.tags
            );
            ensure!(
                !listed.iter().any(|(id, _)| id == other),
                "list of {kind}s with filter {:?} returned {other}, whose {ROLE_TAG} is not {role:?}",
                filter.tags
            );
            if let Some((id, tags)) = listed.iter().find(|(_, t)| !filter.matches(t)) {
                return Err(failed(format!(
                    "list of {kind}s with filter {:?} returned {id} whose tags {tags:?} do not match it ({} returned in all)",
                    filter.tags,
                    listed.len()
                )));
            }
        }
        let listed = self
            .list_tagged(kind, &self.filter())
            .await
            .step(format!("listing {kind}s with the run's filter"))?;
        for id in [a, b] {
            ensure!(
                listed.iter().any(|(x, _)| x == id),
                "list of {kind}s with filter on {RUN_TAG} alone did not return {id}"
            );
        }
        Ok(())
    }

    // --- the sweep

    /// Deletes everything this run created or tagged, in dependency order, then checks
    /// nothing tagged with the run is left.
    async fn sweep(&self) -> Result<(), String> {
        let filter = self.filter();
        let tracked = std::mem::take(&mut *self.lock());
        let mut problems: Vec<String> = Vec::new();

        for kind in SWEEP_ORDER {
            let mut ids: BTreeSet<String> = tracked
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, id)| id.clone())
                .collect();
            // A kind of a family the provider lacks cannot be listed.
            if supports(self.p, kind) {
                match self.list_tagged(kind, &filter).await {
                    // Only what carries our run tag, whatever the provider returned.
                    Ok(listed) => ids.extend(
                        listed
                            .into_iter()
                            .filter(|(_, tags)| filter.matches(tags))
                            .map(|(id, _)| id),
                    ),
                    Err(e) => problems.push(format!("listing {kind}s to sweep: {e}")),
                }
            }
            if ids.is_empty() {
                continue;
            }
            match kind {
                ResourceKind::Volume => {
                    for id in &ids {
                        self.detach_for_sweep(id, &mut problems).await;
                    }
                }
                ResourceKind::SecurityGroup => {
                    for id in &ids {
                        self.unlink_group_for_sweep(id, &mut problems).await;
                    }
                }
                _ => {}
            }
            let results = join_all(ids.iter().map(|id| self.delete_for_sweep(kind, id))).await;
            for (id, r) in ids.iter().zip(results) {
                if let Err(e) = r {
                    problems.push(format!("deleting {kind} {id}: {e}"));
                }
            }
        }

        for kind in SWEEP_ORDER {
            if !supports(self.p, kind) {
                continue;
            }
            match self.list_tagged(kind, &filter).await {
                Ok(listed) => {
                    for (id, _) in listed.iter().filter(|(_, tags)| filter.matches(tags)) {
                        problems.push(format!("{kind} {id} is still listed after the sweep"));
                    }
                }
                Err(e) => problems.push(format!("listing {kind}s after the sweep: {e}")),
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    async fn detach_for_sweep(&self, id: &str, problems: &mut Vec<String>) {
        match self.p.get_volume(id).await {
            Ok(v) if v.attachment.is_some() || v.state == VolumeState::InUse => {
                match self.p.detach_volume(id).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => problems.push(format!("detaching volume {id}: {e}")),
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("getting volume {id} to sweep it: {e}")),
        }
    }

    async fn unlink_group_for_sweep(&self, id: &str, problems: &mut Vec<String>) {
        let group = match self.p.get_security_group(id).await {
            Ok(g) => g,
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(e) => {
                problems.push(format!("getting security group {id} to sweep it: {e}"));
                return;
            }
        };
        for rule in group
            .rules
            .iter()
            .filter(|r| matches!(r.source, RuleSource::Group(_)))
        {
            match self.p.remove_security_group_rule(id, rule).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => problems.push(format!("removing a group rule of {id}: {e}")),
            }
        }
    }

    /// Deletes, tolerating `NotFound` and retrying retryable errors a few times.
    async fn delete_for_sweep(&self, kind: ResourceKind, id: &str) -> crate::Result<()> {
        let mut wait = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.delete(kind, id).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) if e.is_retryable() && attempt < 4 => {
                    tokio::time::sleep(e.retry_after().unwrap_or(wait)).await;
                    wait *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
