//! The kit catches faulty providers: each wrapper below breaks one family of behaviour
//! of the memory provider, and the checks of that family must fail (not pass, not be
//! skipped). The unbroken wrapper passes every check, so the failures come from the
//! fault alone.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use async_trait::async_trait;
use provider_core::conformance::{self, Check, ConformanceConfig, Outcome, Report};
use provider_core::layer::{Layer, Layered};
use provider_core::memory::MemoryProvider;
use provider_core::{
    AvailabilityZone, Capabilities, Error, ErrorKind, FloatingIp, FloatingIpSpec, FloatingIps,
    IngressRule, Instance, InstanceSpec, InstanceState, Instances, LoadBalancer, LoadBalancerSpec,
    LoadBalancerState, LoadBalancers, MemberSpec, Operation, Provider, ResourceKind, Result,
    SecurityGroup, SecurityGroupSpec, SecurityGroups, TagFilter, Tags, Volume, VolumeAttachment,
    VolumeSpec, VolumeState, Volumes,
};

/// One family of behaviour broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing broken.
    None,
    /// Answers a made-up record (or `Ok`) instead of `NotFound` for a missing id.
    LiesAboutNotFound,
    /// Lists ignore their tag filter.
    IgnoresTagFilters,
    /// Instances and volumes land in the zone after the requested one.
    WrongZone,
    /// Lists return their first page only.
    TruncatesLists,
    /// A create (or rule/member change) with bad input answers a made-up record.
    AcceptsInvalidInput,
    /// Deleting what is already gone answers `NotFound`.
    DeleteOfGoneFails,
    /// Creating a name that exists answers `AlreadyExists`, even with the same spec.
    NotIdempotent,
    /// Creating a name that exists with another spec returns the existing resource.
    IgnoresSpecOnConflict,
    /// Not a fault: no floating IPs and no load balancers (as vSphere): their accessors
    /// answer `None`.
    WithoutFloatingIpsOrLbs,
    /// Has load balancers, but its capabilities name no protocol they speak.
    CapabilitiesLie,
}

/// The memory provider with one fault.
#[derive(Debug)]
struct Faulty {
    inner: MemoryProvider,
    fault: Fault,
}

impl Faulty {
    fn new(fault: Fault) -> Self {
        Self {
            inner: MemoryProvider::default(),
            fault,
        }
    }

    fn is(&self, fault: Fault) -> bool {
        self.fault == fault
    }

    /// A made-up record instead of `NotFound`.
    fn lie<T>(&self, r: Result<T>, fake: impl FnOnce() -> T) -> Result<T> {
        match r {
            Err(e) if self.is(Fault::LiesAboutNotFound) && e.kind() == ErrorKind::NotFound => {
                Ok(fake())
            }
            r => r,
        }
    }

    /// A made-up record instead of `InvalidInput`.
    fn accept<T>(&self, r: Result<T>, fake: impl FnOnce() -> T) -> Result<T> {
        match r {
            Err(e)
                if self.is(Fault::AcceptsInvalidInput) && e.kind() == ErrorKind::InvalidInput =>
            {
                Ok(fake())
            }
            r => r,
        }
    }

    fn filter(&self, f: &TagFilter) -> TagFilter {
        if self.is(Fault::IgnoresTagFilters) {
            TagFilter::all()
        } else {
            f.clone()
        }
    }

    fn truncate<T>(&self, mut v: Vec<T>) -> Vec<T> {
        if self.is(Fault::TruncatesLists) {
            v.truncate(self.inner.config().page_size);
        }
        v
    }

    fn zone(&self, az: &str) -> String {
        let zones = &self.inner.config().availability_zones;
        match zones.iter().position(|z| z == az) {
            Some(i) if self.is(Fault::WrongZone) => zones[(i + 1) % zones.len()].clone(),
            _ => az.to_string(),
        }
    }

    /// `NotFound` for a delete of a gone resource, when that is the fault.
    async fn delete_gone<T, Fut: Future<Output = Result<T>>>(&self, get: Fut) -> Result<()> {
        if self.is(Fault::DeleteOfGoneFails) {
            if let Err(e) = get.await {
                if e.kind() == ErrorKind::NotFound {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The id of the resource of `kind` named `name`, if any.
    async fn id_by_name(&self, kind: ResourceKind, name: &str) -> Result<Option<String>> {
        let all = TagFilter::all();
        let p = &self.inner;
        Ok(match kind {
            ResourceKind::SecurityGroup => p
                .list_security_groups(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| x.id),
            ResourceKind::FloatingIp => p
                .list_floating_ips(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| x.id),
            ResourceKind::Volume => p
                .list_volumes(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| x.id),
            ResourceKind::Instance => p
                .list_instances(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| x.id),
            ResourceKind::LoadBalancer => p
                .list_load_balancers(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| x.id),
        })
    }

    /// `AlreadyExists` for an existing name, when that is the fault.
    async fn before_create(&self, op: Operation, kind: ResourceKind, name: &str) -> Result<()> {
        if self.is(Fault::NotIdempotent) && self.id_by_name(kind, name).await?.is_some() {
            return Err(Error::AlreadyExists {
                operation: op,
                resource: format!("{kind} {name}"),
            });
        }
        Ok(())
    }

    /// The id of the existing resource instead of `Conflict`, when that is the fault.
    async fn conflict_id<T>(
        &self,
        r: &Result<T>,
        kind: ResourceKind,
        name: &str,
    ) -> Option<String> {
        match r {
            Err(e) if self.is(Fault::IgnoresSpecOnConflict) && e.kind() == ErrorKind::Conflict => {
                self.id_by_name(kind, name).await.ok().flatten()
            }
            _ => None,
        }
    }
}

fn fake_sg(id: &str, name: &str) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        rules: vec![],
        tags: Tags::new(),
    }
}

fn fake_fip(id: &str, name: &str) -> FloatingIp {
    FloatingIp {
        id: id.into(),
        name: name.into(),
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99)),
        pool: "public".into(),
        instance_id: None,
        tags: Tags::new(),
    }
}

fn fake_volume(id: &str, name: &str) -> Volume {
    Volume {
        id: id.into(),
        name: name.into(),
        availability_zone: "az-1".into(),
        size_gib: 1,
        volume_type: None,
        state: VolumeState::Available,
        attachment: None,
        tags: Tags::new(),
    }
}

fn fake_instance(id: &str, name: &str) -> Instance {
    Instance {
        id: id.into(),
        name: name.into(),
        availability_zone: "az-1".into(),
        flavor: "small".into(),
        image: "linux".into(),
        state: InstanceState::Running,
        private_ip: None,
        public_ip: None,
        security_groups: vec![],
        tags: Tags::new(),
    }
}

fn fake_lb(id: &str, name: &str) -> LoadBalancer {
    LoadBalancer {
        id: id.into(),
        name: name.into(),
        state: LoadBalancerState::Active,
        address: None,
        security_groups: vec![],
        listeners: vec![],
        tags: Tags::new(),
    }
}

fn fake_id(name: &str) -> String {
    format!("fake-{name}")
}

#[async_trait]
impl Provider for Faulty {
    fn name(&self) -> &str {
        "faulty-memory"
    }

    fn capabilities(&self) -> Capabilities {
        let caps = self.inner.capabilities();
        if self.is(Fault::WithoutFloatingIpsOrLbs) || self.is(Fault::CapabilitiesLie) {
            caps.with_lb_protocols([])
        } else {
            caps
        }
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        self.inner.list_availability_zones().await
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let r = self.inner.update_tags(kind, id, set, remove).await;
        self.lie(r, || ())
    }

    fn security_groups(&self) -> Option<&dyn SecurityGroups> {
        Some(self)
    }

    fn instances(&self) -> Option<&dyn Instances> {
        Some(self)
    }

    fn volumes(&self) -> Option<&dyn Volumes> {
        Some(self)
    }

    // Without them, as vSphere, the kit must skip their checks.
    fn floating_ips(&self) -> Option<&dyn FloatingIps> {
        (!self.is(Fault::WithoutFloatingIpsOrLbs)).then_some(self as &dyn FloatingIps)
    }

    fn load_balancers(&self) -> Option<&dyn LoadBalancers> {
        (!self.is(Fault::WithoutFloatingIpsOrLbs)).then_some(self as &dyn LoadBalancers)
    }
}

#[async_trait]
impl SecurityGroups for Faulty {
    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        let kind = ResourceKind::SecurityGroup;
        self.before_create(Operation::CreateSecurityGroup, kind, &spec.name)
            .await?;
        let r = self.inner.create_security_group(spec).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_security_group(&id).await;
        }
        self.accept(r, || fake_sg(&fake_id(&spec.name), &spec.name))
    }

    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        let r = self.inner.get_security_group(id).await;
        self.lie(r, || fake_sg(id, "fake"))
    }

    async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>> {
        let v = self
            .inner
            .list_security_groups(&self.filter(filter))
            .await?;
        Ok(self.truncate(v))
    }

    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let r = self.inner.add_security_group_rule(group_id, rule).await;
        let r = self.lie(r, || ());
        self.accept(r, || ())
    }

    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let r = self.inner.remove_security_group_rule(group_id, rule).await;
        self.lie(r, || ())
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.delete_gone(self.inner.get_security_group(id)).await?;
        self.inner.delete_security_group(id).await
    }
}

#[async_trait]
impl FloatingIps for Faulty {
    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        let kind = ResourceKind::FloatingIp;
        self.before_create(Operation::AllocateFloatingIp, kind, &spec.name)
            .await?;
        let r = self.inner.allocate_floating_ip(spec).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_floating_ip(&id).await;
        }
        self.accept(r, || fake_fip(&fake_id(&spec.name), &spec.name))
    }

    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let r = self.inner.get_floating_ip(id).await;
        self.lie(r, || fake_fip(id, "fake"))
    }

    async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>> {
        let v = self.inner.list_floating_ips(&self.filter(filter)).await?;
        Ok(self.truncate(v))
    }

    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        let r = self.inner.associate_floating_ip(id, instance_id).await;
        self.lie(r, || FloatingIp {
            instance_id: Some(instance_id.into()),
            ..fake_fip(id, "fake")
        })
    }

    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let r = self.inner.disassociate_floating_ip(id).await;
        self.lie(r, || fake_fip(id, "fake"))
    }

    async fn release_floating_ip(&self, id: &str) -> Result<()> {
        self.delete_gone(self.inner.get_floating_ip(id)).await?;
        self.inner.release_floating_ip(id).await
    }
}

#[async_trait]
impl Volumes for Faulty {
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let kind = ResourceKind::Volume;
        self.before_create(Operation::CreateVolume, kind, &spec.name)
            .await?;
        let mut moved = spec.clone();
        moved.availability_zone = self.zone(&spec.availability_zone);
        let r = self.inner.create_volume(&moved).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_volume(&id).await;
        }
        self.accept(r, || fake_volume(&fake_id(&spec.name), &spec.name))
    }

    async fn get_volume(&self, id: &str) -> Result<Volume> {
        let r = self.inner.get_volume(id).await;
        self.lie(r, || fake_volume(id, "fake"))
    }

    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>> {
        let v = self.inner.list_volumes(&self.filter(filter)).await?;
        Ok(self.truncate(v))
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        let r = self.inner.attach_volume(volume_id, instance_id).await;
        self.lie(r, || Volume {
            state: VolumeState::InUse,
            attachment: Some(VolumeAttachment {
                instance_id: instance_id.into(),
                device: "/dev/vdz".into(),
            }),
            ..fake_volume(volume_id, "fake")
        })
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let r = self.inner.detach_volume(volume_id).await;
        self.lie(r, || fake_volume(volume_id, "fake"))
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        self.delete_gone(self.inner.get_volume(id)).await?;
        self.inner.delete_volume(id).await
    }
}

#[async_trait]
impl Instances for Faulty {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let kind = ResourceKind::Instance;
        self.before_create(Operation::CreateInstance, kind, &spec.name)
            .await?;
        let mut moved = spec.clone();
        moved.availability_zone = self.zone(&spec.availability_zone);
        let r = self.inner.create_instance(&moved).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_instance(&id).await;
        }
        self.accept(r, || fake_instance(&fake_id(&spec.name), &spec.name))
    }

    async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        for s in specs {
            self.before_create(Operation::CreateInstances, ResourceKind::Instance, &s.name)
                .await?;
        }
        let moved: Vec<InstanceSpec> = specs
            .iter()
            .map(|s| {
                let mut moved = s.clone();
                moved.availability_zone = self.zone(&s.availability_zone);
                moved
            })
            .collect();
        let r = self.inner.create_instances(&moved).await;
        self.accept(r, || {
            specs
                .iter()
                .map(|s| fake_instance(&fake_id(&s.name), &s.name))
                .collect()
        })
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        let r = self.inner.get_instance(id).await;
        self.lie(r, || fake_instance(id, "fake"))
    }

    async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        let r = self.inner.get_instances(ids).await;
        self.lie(r, || {
            ids.iter().map(|id| fake_instance(id, "fake")).collect()
        })
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        let v = self.inner.list_instances(&self.filter(filter)).await?;
        Ok(self.truncate(v))
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        self.delete_gone(self.inner.get_instance(id)).await?;
        self.inner.delete_instance(id).await
    }
}

#[async_trait]
impl LoadBalancers for Faulty {
    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        let kind = ResourceKind::LoadBalancer;
        self.before_create(Operation::CreateLoadBalancer, kind, &spec.name)
            .await?;
        let r = self.inner.create_load_balancer(spec).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_load_balancer(&id).await;
        }
        self.accept(r, || fake_lb(&fake_id(&spec.name), &spec.name))
    }

    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        let r = self.inner.get_load_balancer(id).await;
        self.lie(r, || fake_lb(id, "fake"))
    }

    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>> {
        let v = self.inner.list_load_balancers(&self.filter(filter)).await?;
        Ok(self.truncate(v))
    }

    async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        let r = self
            .inner
            .add_load_balancer_member(lb_id, listener_port, member)
            .await;
        let r = self.lie(r, || fake_lb(lb_id, "fake"));
        self.accept(r, || fake_lb(lb_id, "fake"))
    }

    async fn remove_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        let r = self
            .inner
            .remove_load_balancer_member(lb_id, listener_port, member)
            .await;
        self.lie(r, || fake_lb(lb_id, "fake"))
    }

    async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        self.delete_gone(self.inner.get_load_balancer(id)).await?;
        self.inner.delete_load_balancer(id).await
    }
}

/// A layer that keeps `InvalidInput` but stops naming the field: a provider whose
/// errors a caller cannot act on.
#[derive(Debug)]
struct VagueErrors;

#[async_trait]
impl Layer for VagueErrors {
    async fn call<T, F, Fut>(&self, _op: Operation, mut f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        f().await.map_err(|e| match e {
            Error::InvalidInput {
                operation, message, ..
            } => Error::invalid(operation, "input", message),
            e => e,
        })
    }
}

fn config() -> ConformanceConfig {
    ConformanceConfig::new("linux", "small").with_floating_ip_pool("public")
}

/// The checks whose names end with one of `suffixes`.
fn family(suffixes: &[&str]) -> Vec<Check> {
    let checks: Vec<Check> = conformance::checks()
        .into_iter()
        .filter(|c| suffixes.iter().any(|s| c.name.ends_with(s)))
        .collect();
    assert!(!checks.is_empty(), "no check ends with {suffixes:?}");
    checks
}

/// Runs `checks` against `provider` and asserts every one failed.
async fn assert_caught(provider: &dyn Provider, checks: &[Check], expected: usize) -> Report {
    let report = conformance::run_checks(provider, &config(), checks).await;
    println!("{report}");
    assert_eq!(report.checks.len(), expected, "{report}");
    for c in &report.checks {
        assert!(
            matches!(c.outcome, Outcome::Failed(_)),
            "{} did not catch the fault: {:?}\n{report}",
            c.name,
            c.outcome
        );
    }
    report
}

fn reason<'a>(report: &'a Report, check: &str) -> &'a str {
    report
        .outcome(check)
        .and_then(Outcome::reason)
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn the_unbroken_wrapper_passes_every_check() {
    let p = Faulty::new(Fault::None);
    let report = conformance::run_all(&p, &config()).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.skipped(), 0, "{report}");
}

#[tokio::test(start_paused = true)]
async fn not_found_lies_are_caught() {
    let p = Faulty::new(Fault::LiesAboutNotFound);
    let checks = family(&["_missing_not_found"]);
    let report = assert_caught(&p, &checks, 6).await;
    assert!(
        reason(&report, "volume_missing_not_found").contains("expected NotFound, got Ok"),
        "{report}"
    );
    // Lifecycle checks see the deleted resource "still there" too.
    let report = conformance::run_checks(&p, &config(), &family(&["_lifecycle"])).await;
    assert_eq!(report.failed(), 5, "{report}");
}

#[tokio::test(start_paused = true)]
async fn ignored_tag_filters_are_caught() {
    let p = Faulty::new(Fault::IgnoresTagFilters);
    let report = assert_caught(&p, &family(&["_tag_filter"]), 5).await;
    assert!(
        reason(&report, "instance_tag_filter").contains("whose"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_sweep_deletes_only_its_own_resources_when_filters_are_ignored() {
    let p = Faulty::new(Fault::IgnoresTagFilters);
    let bystander = p
        .inner
        .create_security_group(
            &SecurityGroupSpec::new("not-the-kits")
                .with_tags([("owner".to_string(), "someone-else".to_string())].into()),
        )
        .await
        .unwrap();
    let report = conformance::run_checks(&p, &config(), &family(&["_tag_filter"])).await;
    assert_eq!(report.failed(), 5, "{report}");
    p.inner
        .get_security_group(&bystander.id)
        .await
        .expect("the sweep deleted a group the kit did not create");
}

#[tokio::test(start_paused = true)]
async fn wrong_zone_placement_is_caught() {
    let p = Faulty::new(Fault::WrongZone);
    let checks = family(&["_zone_placement", "instance_batch_forms"]);
    let report = assert_caught(&p, &checks, 3).await;
    assert!(
        reason(&report, "instance_zone_placement").contains("returned zone"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn lists_truncated_to_one_page_are_caught() {
    let p = Faulty::new(Fault::TruncatesLists);
    let report = assert_caught(&p, &family(&["_pagination"]), 2).await;
    assert!(
        reason(&report, "security_group_pagination").contains("does not follow pagination"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn accepted_invalid_input_is_caught() {
    let p = Faulty::new(Fault::AcceptsInvalidInput);
    let report = assert_caught(&p, &family(&["_invalid_input"]), 6).await;
    assert!(
        reason(&report, "volume_invalid_input").contains("expected InvalidInput, got Ok"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_input_that_does_not_name_the_field_is_caught() {
    let base: Arc<dyn Provider> = Arc::new(MemoryProvider::default());
    let p = Layered::new(base, VagueErrors);
    let report = assert_caught(&p, &family(&["_invalid_input"]), 6).await;
    assert!(
        reason(&report, "security_group_invalid_input").contains("names the field \"input\""),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn failing_delete_of_gone_resources_is_caught() {
    let p = Faulty::new(Fault::DeleteOfGoneFails);
    let report = assert_caught(&p, &family(&["_delete_gone_ok"]), 5).await;
    assert!(
        reason(&report, "instance_delete_gone_ok").contains("NotFound"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_create_is_caught() {
    let p = Faulty::new(Fault::NotIdempotent);
    let checks = family(&["_create_idempotent", "instance_batch_forms"]);
    let report = assert_caught(&p, &checks, 6).await;
    assert!(
        reason(&report, "volume_create_idempotent").contains("AlreadyExists"),
        "{report}"
    );
    // The same name with another spec is not Conflict either.
    assert_caught(&p, &family(&["_name_conflict"]), 5).await;
}

#[tokio::test(start_paused = true)]
async fn a_create_that_ignores_the_spec_of_an_existing_name_is_caught() {
    let p = Faulty::new(Fault::IgnoresSpecOnConflict);
    let report = assert_caught(&p, &family(&["_name_conflict"]), 5).await;
    assert!(
        reason(&report, "load_balancer_name_conflict").contains("expected Conflict, got Ok"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn checks_needing_floating_ips_or_lbs_are_skipped_without_them() {
    let p = Faulty::new(Fault::WithoutFloatingIpsOrLbs);
    let report = conformance::run_all(&p, &config()).await;
    assert!(report.is_success(), "{report}");
    let needing: Vec<&str> = conformance::checks()
        .iter()
        .filter(|c| c.name.starts_with("floating_ip_") || c.name.starts_with("load_balancer_"))
        .map(|c| c.name)
        .collect();
    assert_eq!(needing.len(), 18);
    assert_eq!(report.skipped(), needing.len(), "{report}");
    for name in needing {
        match report.outcome(name) {
            Some(Outcome::Skipped(r)) => assert!(r.contains("() is None"), "{name}: {r}"),
            other => panic!("{name}: expected a skip, got {other:?}"),
        }
    }
    // The checks that use every kind it has still pass.
    assert!(report
        .outcome("update_tags_every_kind")
        .is_some_and(Outcome::is_passed));
    assert!(report
        .outcome("capabilities_are_consistent")
        .is_some_and(Outcome::is_passed));
}

#[tokio::test(start_paused = true)]
async fn capabilities_that_lie_are_caught_and_what_was_made_is_swept() {
    let p = Faulty::new(Fault::CapabilitiesLie);
    let check = family(&["capabilities_are_consistent"]);
    let report = assert_caught(&p, &check, 1).await;
    assert!(
        reason(&report, "capabilities_are_consistent").contains("lists no lb_protocols"),
        "{report}"
    );
    let all = TagFilter::all();
    assert!(p.inner.list_floating_ips(&all).await.unwrap().is_empty());
    assert!(p.inner.list_load_balancers(&all).await.unwrap().is_empty());
}
