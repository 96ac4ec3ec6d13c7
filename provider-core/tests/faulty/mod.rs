//! The memory provider with one fault: each [`Fault`] breaks one behaviour of the
//! contract, and `conformance_faulty.rs` shows the kit's checks of that behaviour fail.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use async_trait::async_trait;
use provider_core::memory::MemoryProvider;
use provider_core::{
    AvailabilityZone, Capabilities, Error, ErrorKind, FloatingIp, FloatingIpSpec, FloatingIps,
    IngressRule, Instance, InstanceSpec, InstanceState, Instances, LoadBalancer, LoadBalancerSpec,
    LoadBalancerState, LoadBalancers, Member, MemberHealth, MemberSpec, Operation, Provider,
    ResourceKind, Result, SecurityGroup, SecurityGroupSpec, SecurityGroups, TagFilter, Tags,
    Volume, VolumeAttachment, VolumeSpec, VolumeState, Volumes,
};

/// One family of behaviour broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
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
    /// A create of an existing name compares the spec with the resource's current tags
    /// (as provider-openstack did for floating IPs and volumes): `Conflict` once
    /// `update_tags` has changed them.
    ComparesCurrentTags,
    /// A create of an existing name returns it when the spec's tags (and rules) are
    /// among its current ones (as provider-openstack did for groups): fewer is a match.
    MatchesSubset,
    /// `update_tags` answers `Ok` and changes nothing.
    NoOpUpdateTags,
    /// An id not shaped like the provider's own answers `InvalidInput` on get and delete.
    RejectsMalformedIds,
    /// A delete refused as in use answers `Ok` and deletes nothing.
    SwallowsInUseConflict,
    /// Releasing an associated floating IP disassociates and releases it (Neutron's own
    /// answer, unchecked).
    ReleasesAssociated,
    /// A deleted instance stays in its load balancer pools (Octavia's own behaviour).
    KeepsDeletedMembers,
    /// Deleting an instance that is a load balancer member is `Conflict`.
    RefusesMemberDelete,
    /// Volumes never report their attachment.
    HidesAttachments,
    /// Floating IPs never report their instance, nor instances their public IP.
    HidesAssociations,
    /// Load balancers report no members.
    HidesMembers,
}

/// The memory provider with one fault.
#[derive(Debug)]
pub struct Faulty {
    /// The provider underneath, for tests to look behind the fault.
    pub inner: MemoryProvider,
    fault: Fault,
    /// Memberships of deleted instances still shown (`KeepsDeletedMembers`): load
    /// balancer, listener port, member.
    ghosts: Mutex<Vec<(String, u16, MemberSpec)>>,
}

impl Faulty {
    pub fn new(fault: Fault) -> Self {
        Self {
            inner: MemoryProvider::default(),
            fault,
            ghosts: Mutex::new(Vec::new()),
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

    /// The id, current tags and rules of the resource of `kind` named `name`, if any.
    async fn by_name(
        &self,
        kind: ResourceKind,
        name: &str,
    ) -> Result<Option<(String, Tags, Vec<IngressRule>)>> {
        let all = TagFilter::all();
        let p = &self.inner;
        let no_rules = Vec::new;
        Ok(match kind {
            ResourceKind::SecurityGroup => p
                .list_security_groups(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| (x.id, x.tags, x.rules)),
            ResourceKind::FloatingIp => p
                .list_floating_ips(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| (x.id, x.tags, no_rules())),
            ResourceKind::Volume => p
                .list_volumes(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| (x.id, x.tags, no_rules())),
            ResourceKind::Instance => p
                .list_instances(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| (x.id, x.tags, no_rules())),
            ResourceKind::LoadBalancer => p
                .list_load_balancers(&all)
                .await?
                .into_iter()
                .find(|x| x.name == name)
                .map(|x| (x.id, x.tags, no_rules())),
        })
    }

    async fn id_by_name(&self, kind: ResourceKind, name: &str) -> Result<Option<String>> {
        Ok(self.by_name(kind, name).await?.map(|(id, _, _)| id))
    }

    /// Under `ComparesCurrentTags` and `MatchesSubset`, what a create of an existing
    /// name answers from the resource as it is now: `Conflict`, or the id to return.
    async fn compare_current(
        &self,
        op: Operation,
        kind: ResourceKind,
        name: &str,
        tags: &Tags,
        rules: &[IngressRule],
    ) -> Result<Option<String>> {
        if !self.is(Fault::ComparesCurrentTags) && !self.is(Fault::MatchesSubset) {
            return Ok(None);
        }
        let Some((id, have_tags, have_rules)) = self.by_name(kind, name).await? else {
            return Ok(None);
        };
        if self.is(Fault::ComparesCurrentTags) {
            if &have_tags != tags {
                return Err(Error::conflict(op, format!("{kind} {name}"), "other tags"));
            }
            return Ok(None);
        }
        let tags_in = tags.iter().all(|(k, v)| have_tags.get(k) == Some(v));
        let have: BTreeSet<&IngressRule> = have_rules.iter().collect();
        let rules_in = rules.iter().all(|r| have.contains(r));
        Ok((tags_in && rules_in).then_some(id))
    }

    /// `InvalidInput` for an id the memory provider could not have made, when that is
    /// the fault.
    fn check_id(&self, op: Operation, id: &str) -> Result<()> {
        let shaped = id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if self.is(Fault::RejectsMalformedIds) && !shaped {
            return Err(Error::invalid(op, "id", format!("{id:?} is not an id")));
        }
        Ok(())
    }

    /// `Ok` for a delete refused as in use, when that is the fault.
    fn swallow(&self, r: Result<()>) -> Result<()> {
        match r {
            Err(e) if self.is(Fault::SwallowsInUseConflict) && e.kind() == ErrorKind::Conflict => {
                Ok(())
            }
            r => r,
        }
    }

    /// The memberships of instance `id`: load balancer, listener port, member.
    async fn memberships(&self, id: &str) -> Result<Vec<(String, u16, MemberSpec)>> {
        let lbs = self.inner.list_load_balancers(&TagFilter::all()).await?;
        let mut out = Vec::new();
        for lb in lbs {
            for l in &lb.listeners {
                for m in l.pool.members.iter().filter(|m| m.instance_id == id) {
                    out.push((lb.id.clone(), l.port, MemberSpec::new(id, m.port)));
                }
            }
        }
        Ok(out)
    }

    fn shown_volume(&self, mut v: Volume) -> Volume {
        if self.is(Fault::HidesAttachments) {
            v.attachment = None;
            v.state = VolumeState::Available;
        }
        v
    }

    fn shown_fip(&self, mut f: FloatingIp) -> FloatingIp {
        if self.is(Fault::HidesAssociations) {
            f.instance_id = None;
        }
        f
    }

    fn shown_instance(&self, mut i: Instance) -> Instance {
        if self.is(Fault::HidesAssociations) {
            i.public_ip = None;
        }
        i
    }

    fn shown_lb(&self, mut lb: LoadBalancer) -> LoadBalancer {
        let ghosts = self.ghosts.lock().unwrap_or_else(|e| e.into_inner());
        for l in &mut lb.listeners {
            if self.is(Fault::HidesMembers) {
                l.pool.members.clear();
            }
            for (_, _, m) in ghosts
                .iter()
                .filter(|(lb_id, port, _)| *lb_id == lb.id && *port == l.port)
            {
                l.pool.members.push(Member {
                    instance_id: m.instance_id.clone(),
                    port: m.port,
                    health: MemberHealth::Unhealthy,
                });
            }
        }
        lb
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
        if self.is(Fault::NoOpUpdateTags) {
            return Ok(());
        }
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
        let (op, kind) = (Operation::CreateSecurityGroup, ResourceKind::SecurityGroup);
        self.before_create(op, kind, &spec.name).await?;
        let current = self.compare_current(op, kind, &spec.name, &spec.tags, &spec.rules);
        if let Some(id) = current.await? {
            return self.inner.get_security_group(&id).await;
        }
        let r = self.inner.create_security_group(spec).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_security_group(&id).await;
        }
        self.accept(r, || fake_sg(&fake_id(&spec.name), &spec.name))
    }

    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.check_id(Operation::GetSecurityGroup, id)?;
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
        self.check_id(Operation::DeleteSecurityGroup, id)?;
        self.delete_gone(self.inner.get_security_group(id)).await?;
        self.swallow(self.inner.delete_security_group(id).await)
    }
}

#[async_trait]
impl FloatingIps for Faulty {
    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        let (op, kind) = (Operation::AllocateFloatingIp, ResourceKind::FloatingIp);
        self.before_create(op, kind, &spec.name).await?;
        if let Some(id) = self
            .compare_current(op, kind, &spec.name, &spec.tags, &[])
            .await?
        {
            return self.inner.get_floating_ip(&id).await;
        }
        let r = self.inner.allocate_floating_ip(spec).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_floating_ip(&id).await;
        }
        self.accept(r, || fake_fip(&fake_id(&spec.name), &spec.name))
    }

    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.check_id(Operation::GetFloatingIp, id)?;
        let r = self.inner.get_floating_ip(id).await;
        self.lie(r, || fake_fip(id, "fake"))
            .map(|f| self.shown_fip(f))
    }

    async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>> {
        let v = self.inner.list_floating_ips(&self.filter(filter)).await?;
        Ok(self
            .truncate(v)
            .into_iter()
            .map(|f| self.shown_fip(f))
            .collect())
    }

    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        let r = self.inner.associate_floating_ip(id, instance_id).await;
        self.lie(r, || FloatingIp {
            instance_id: Some(instance_id.into()),
            ..fake_fip(id, "fake")
        })
        .map(|f| self.shown_fip(f))
    }

    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let r = self.inner.disassociate_floating_ip(id).await;
        self.lie(r, || fake_fip(id, "fake"))
    }

    async fn release_floating_ip(&self, id: &str) -> Result<()> {
        let op = Operation::ReleaseFloatingIp;
        self.check_id(op, id)?;
        self.delete_gone(self.inner.get_floating_ip(id)).await?;
        if self.is(Fault::ReleasesAssociated) {
            if let Ok(FloatingIp {
                instance_id: Some(_),
                ..
            }) = self.inner.get_floating_ip(id).await
            {
                self.inner.disassociate_floating_ip(id).await?;
            }
        }
        let r = self.inner.release_floating_ip(id).await;
        self.swallow(r)
    }
}

#[async_trait]
impl Volumes for Faulty {
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let (op, kind) = (Operation::CreateVolume, ResourceKind::Volume);
        self.before_create(op, kind, &spec.name).await?;
        if let Some(id) = self
            .compare_current(op, kind, &spec.name, &spec.tags, &[])
            .await?
        {
            return self.inner.get_volume(&id).await;
        }
        let mut moved = spec.clone();
        moved.availability_zone = self.zone(&spec.availability_zone);
        let r = self.inner.create_volume(&moved).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_volume(&id).await;
        }
        self.accept(r, || fake_volume(&fake_id(&spec.name), &spec.name))
    }

    async fn get_volume(&self, id: &str) -> Result<Volume> {
        self.check_id(Operation::GetVolume, id)?;
        let r = self.inner.get_volume(id).await;
        self.lie(r, || fake_volume(id, "fake"))
            .map(|v| self.shown_volume(v))
    }

    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>> {
        let v = self.inner.list_volumes(&self.filter(filter)).await?;
        Ok(self
            .truncate(v)
            .into_iter()
            .map(|v| self.shown_volume(v))
            .collect())
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
        .map(|v| self.shown_volume(v))
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let r = self.inner.detach_volume(volume_id).await;
        self.lie(r, || fake_volume(volume_id, "fake"))
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        self.check_id(Operation::DeleteVolume, id)?;
        self.delete_gone(self.inner.get_volume(id)).await?;
        self.swallow(self.inner.delete_volume(id).await)
    }
}

#[async_trait]
impl Instances for Faulty {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let (op, kind) = (Operation::CreateInstance, ResourceKind::Instance);
        self.before_create(op, kind, &spec.name).await?;
        if let Some(id) = self
            .compare_current(op, kind, &spec.name, &spec.tags, &[])
            .await?
        {
            return self.inner.get_instance(&id).await;
        }
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
        self.check_id(Operation::GetInstance, id)?;
        let r = self.inner.get_instance(id).await;
        self.lie(r, || fake_instance(id, "fake"))
            .map(|i| self.shown_instance(i))
    }

    async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        let r = self.inner.get_instances(ids).await;
        self.lie(r, || {
            ids.iter().map(|id| fake_instance(id, "fake")).collect()
        })
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        let v = self.inner.list_instances(&self.filter(filter)).await?;
        Ok(self
            .truncate(v)
            .into_iter()
            .map(|i| self.shown_instance(i))
            .collect())
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteInstance;
        self.check_id(op, id)?;
        self.delete_gone(self.inner.get_instance(id)).await?;
        let memberships = self.memberships(id).await?;
        if self.is(Fault::RefusesMemberDelete) && !memberships.is_empty() {
            let why = "a load balancer member: remove it from its pools first";
            return Err(Error::conflict(op, format!("instance {id}"), why));
        }
        self.inner.delete_instance(id).await?;
        if self.is(Fault::KeepsDeletedMembers) {
            let mut ghosts = self.ghosts.lock().unwrap_or_else(|e| e.into_inner());
            ghosts.extend(memberships);
        }
        Ok(())
    }
}

#[async_trait]
impl LoadBalancers for Faulty {
    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        let (op, kind) = (Operation::CreateLoadBalancer, ResourceKind::LoadBalancer);
        self.before_create(op, kind, &spec.name).await?;
        if let Some(id) = self
            .compare_current(op, kind, &spec.name, &spec.tags, &[])
            .await?
        {
            return self.inner.get_load_balancer(&id).await;
        }
        let r = self.inner.create_load_balancer(spec).await;
        if let Some(id) = self.conflict_id(&r, kind, &spec.name).await {
            return self.inner.get_load_balancer(&id).await;
        }
        self.accept(r, || fake_lb(&fake_id(&spec.name), &spec.name))
            .map(|lb| self.shown_lb(lb))
    }

    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        self.check_id(Operation::GetLoadBalancer, id)?;
        let r = self.inner.get_load_balancer(id).await;
        self.lie(r, || fake_lb(id, "fake"))
            .map(|lb| self.shown_lb(lb))
    }

    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>> {
        let v = self.inner.list_load_balancers(&self.filter(filter)).await?;
        Ok(self
            .truncate(v)
            .into_iter()
            .map(|lb| self.shown_lb(lb))
            .collect())
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
            .map(|lb| self.shown_lb(lb))
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
            .map(|lb| self.shown_lb(lb))
    }

    async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        self.check_id(Operation::DeleteLoadBalancer, id)?;
        self.delete_gone(self.inner.get_load_balancer(id)).await?;
        self.inner.delete_load_balancer(id).await
    }
}
