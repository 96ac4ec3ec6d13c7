//! `memory`: the in-memory reference provider.
//!
//! It behaves as the contract says a cloud behaves, so the cluster layer and the
//! conformance kit can be proven without one: resources pass through transitional
//! states that take [`MemoryConfig::transition`], creates wait through the shared
//! [`Poller`], lists follow pages of [`MemoryConfig::page_size`], and it answers
//! `NotFound`, `Conflict` and `InvalidInput` where a real cloud does. Compute and volume
//! AZ names may differ ([`MemoryConfig::volume_zones`]), as they can on OpenStack.
//!
//! ```
//! use provider_core::memory::MemoryProvider;
//! use provider_core::{Provider, VolumeSpec};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cloud = MemoryProvider::default();
//! let v = cloud
//!     .create_volume(&VolumeSpec {
//!         name: "data-0".into(),
//!         availability_zone: "az-1".into(),
//!         size_gib: 10,
//!         volume_type: None,
//!         tags: Default::default(),
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(v.state, provider_core::VolumeState::Available);
//! # });
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::model::*;
use crate::wait::{Poll, Poller, Timeouts};
use crate::{Capabilities, Error, Operation, Provider, Result};

/// Configuration of a [`MemoryProvider`].
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Compute AZ names.
    pub availability_zones: Vec<String>,
    /// Volume AZ name of each compute AZ, where they differ (OpenStack's Nova vs Cinder).
    pub volume_zones: BTreeMap<String, String>,
    /// Floating IP pools.
    pub floating_ip_pools: Vec<String>,
    /// Image catalog.
    pub images: Vec<String>,
    /// Flavor catalog.
    pub flavors: Vec<String>,
    /// Time a resource spends in a transitional state (pending, attaching, deleting...).
    pub transition: Duration,
    /// Page size of the simulated list API.
    pub page_size: usize,
    /// How creates and deletes wait.
    pub poller: Poller,
    /// How long they wait.
    pub timeouts: Timeouts,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            availability_zones: vec!["az-1".into(), "az-2".into(), "az-3".into()],
            volume_zones: BTreeMap::new(),
            floating_ip_pools: vec!["public".into()],
            images: vec!["linux".into()],
            flavors: vec!["small".into(), "medium".into(), "large".into()],
            transition: Duration::from_millis(20),
            page_size: 20,
            poller: Poller::new(Duration::from_millis(5), Duration::from_millis(50)),
            timeouts: Timeouts::all(Duration::from_secs(30)),
        }
    }
}

/// The in-memory reference provider. See the [module docs](self).
#[derive(Debug)]
pub struct MemoryProvider {
    config: MemoryConfig,
    state: Mutex<State>,
    next_id: AtomicU64,
    page_requests: AtomicU64,
}

impl Default for MemoryProvider {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

/// When a resource leaves its transitional state.
#[derive(Debug, Clone, Copy)]
struct Until(Instant);

impl Until {
    fn passed(self) -> bool {
        Instant::now() >= self.0
    }
}

#[derive(Debug, Clone)]
struct GroupRec {
    spec: SecurityGroupSpec,
    group: SecurityGroup,
    deleting: Option<Until>,
}

#[derive(Debug, Clone)]
struct FipRec {
    spec: FloatingIpSpec,
    fip: FloatingIp,
    deleting: Option<Until>,
}

#[derive(Debug, Clone)]
enum VolumePhase {
    Creating(Until),
    Available,
    Attaching(Until, VolumeAttachment),
    InUse(VolumeAttachment),
    Detaching(Until),
    Deleting(Until),
}

#[derive(Debug, Clone)]
struct VolumeRec {
    spec: VolumeSpec,
    id: String,
    /// The volume AZ name (may differ from the compute AZ in the spec).
    volume_zone: String,
    phase: VolumePhase,
    tags: Tags,
}

#[derive(Debug, Clone)]
struct InstanceRec {
    spec: InstanceSpec,
    instance: Instance,
    ready: Until,
    deleting: Option<Until>,
    failed: bool,
}

#[derive(Debug, Clone)]
struct LbRec {
    spec: LoadBalancerSpec,
    id: String,
    address: String,
    /// Members per listener port.
    members: BTreeMap<u16, Vec<MemberSpec>>,
    busy: Until,
    deleting: Option<Until>,
    failed: bool,
    tags: Tags,
}

#[derive(Debug, Default)]
struct State {
    groups: BTreeMap<String, GroupRec>,
    fips: BTreeMap<String, FipRec>,
    volumes: BTreeMap<String, VolumeRec>,
    instances: BTreeMap<String, InstanceRec>,
    lbs: BTreeMap<String, LbRec>,
}

impl State {
    /// Drops resources whose deletion has finished and settles finished transitions.
    fn settle(&mut self) {
        self.groups
            .retain(|_, g| !g.deleting.is_some_and(Until::passed));
        self.fips
            .retain(|_, f| !f.deleting.is_some_and(Until::passed));
        self.instances
            .retain(|_, i| !i.deleting.is_some_and(Until::passed));
        self.lbs
            .retain(|_, l| !l.deleting.is_some_and(Until::passed));
        self.volumes
            .retain(|_, v| !matches!(v.phase, VolumePhase::Deleting(u) if u.passed()));
        for v in self.volumes.values_mut() {
            v.phase = match std::mem::replace(&mut v.phase, VolumePhase::Available) {
                VolumePhase::Creating(u) | VolumePhase::Detaching(u) if u.passed() => {
                    VolumePhase::Available
                }
                VolumePhase::Attaching(u, a) if u.passed() => VolumePhase::InUse(a),
                other => other,
            };
        }
    }
}

fn instance_state(r: &InstanceRec) -> InstanceState {
    if r.deleting.is_some() {
        InstanceState::Deleting
    } else if r.failed {
        InstanceState::Failed
    } else if r.ready.passed() {
        InstanceState::Running
    } else {
        InstanceState::Pending
    }
}

impl MemoryProvider {
    /// A provider with `config`.
    pub fn new(config: MemoryConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            page_requests: AtomicU64::new(0),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &MemoryConfig {
        &self.config
    }

    /// How many list pages have been served, to show that lists follow pagination.
    pub fn page_requests(&self) -> u64 {
        self.page_requests.load(Ordering::Relaxed)
    }

    /// Marks an instance failed, as when its host dies (for tests of what sits above).
    pub fn fail_instance(&self, id: &str) -> Result<()> {
        let mut st = self.lock();
        let r = st
            .instances
            .get_mut(id)
            .ok_or_else(|| Error::not_found(Operation::GetInstance, format!("instance {id}")))?;
        r.failed = true;
        Ok(())
    }

    /// Puts a load balancer in ERROR, as when its amphora fails.
    pub fn fail_load_balancer(&self, id: &str) -> Result<()> {
        let mut st = self.lock();
        let r = st.lbs.get_mut(id).ok_or_else(|| {
            Error::not_found(Operation::GetLoadBalancer, format!("load balancer {id}"))
        })?;
        r.failed = true;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.settle();
        st
    }

    fn new_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}-{:08x}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn until(&self) -> Until {
        Until(Instant::now() + self.config.transition)
    }

    fn check_zone(&self, op: Operation, field: &str, az: &str) -> Result<()> {
        if self.config.availability_zones.iter().any(|z| z == az) {
            Ok(())
        } else {
            Err(Error::invalid(
                op,
                field,
                format!(
                    "unknown availability zone {az:?}: use one of {}",
                    self.config.availability_zones.join(", ")
                ),
            ))
        }
    }

    fn volume_zone(&self, compute_zone: &str) -> String {
        self.config
            .volume_zones
            .get(compute_zone)
            .cloned()
            .unwrap_or_else(|| compute_zone.to_string())
    }

    fn compute_zone(&self, volume_zone: &str) -> String {
        self.config
            .volume_zones
            .iter()
            .find(|(_, v)| *v == volume_zone)
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| volume_zone.to_string())
    }

    /// Serves one list the way a paginated API does: sorted ids, `page_size` a page,
    /// following the marker to the end.
    fn paginate<T: Clone>(&self, all: &BTreeMap<String, T>, keep: impl Fn(&T) -> bool) -> Vec<T> {
        let page_size = self.config.page_size.max(1);
        let mut out = Vec::new();
        let mut marker: Option<&String> = None;
        loop {
            self.page_requests.fetch_add(1, Ordering::Relaxed);
            let page: Vec<(&String, &T)> = match marker {
                None => all.iter().take(page_size).collect(),
                Some(m) => all
                    .range::<String, _>((std::ops::Bound::Excluded(m), std::ops::Bound::Unbounded))
                    .take(page_size)
                    .collect(),
            };
            let full = page.len() == page_size;
            for (_, v) in &page {
                if keep(v) {
                    out.push((*v).clone());
                }
            }
            match page.last() {
                Some((k, _)) if full => marker = Some(k),
                _ => return out,
            }
        }
    }

    fn volume_record(&self, r: &VolumeRec) -> Volume {
        let (state, attachment) = match &r.phase {
            VolumePhase::Creating(_) => (VolumeState::Creating, None),
            VolumePhase::Available => (VolumeState::Available, None),
            VolumePhase::Attaching(_, a) => (VolumeState::Attaching, Some(a.clone())),
            VolumePhase::InUse(a) => (VolumeState::InUse, Some(a.clone())),
            VolumePhase::Detaching(_) => (VolumeState::Detaching, None),
            VolumePhase::Deleting(_) => (VolumeState::Deleting, None),
        };
        Volume {
            id: r.id.clone(),
            name: r.spec.name.clone(),
            availability_zone: self.compute_zone(&r.volume_zone),
            size_gib: r.spec.size_gib,
            volume_type: r.spec.volume_type.clone(),
            state,
            attachment,
            tags: r.tags.clone(),
        }
    }

    fn instance_record(&self, st: &State, r: &InstanceRec) -> Instance {
        let mut i = r.instance.clone();
        i.state = instance_state(r);
        i.public_ip = st
            .fips
            .values()
            .find(|f| f.fip.instance_id.as_deref() == Some(i.id.as_str()))
            .map(|f| f.fip.address);
        i
    }

    fn lb_record(&self, st: &State, r: &LbRec) -> LoadBalancer {
        let state = if r.deleting.is_some() {
            LoadBalancerState::Deleting
        } else if r.failed {
            LoadBalancerState::Error
        } else if r.busy.passed() {
            LoadBalancerState::Active
        } else {
            LoadBalancerState::Pending
        };
        let listeners = r
            .spec
            .listeners
            .iter()
            .map(|l| Listener {
                protocol: l.protocol,
                port: l.port,
                pool: Pool {
                    health_check: l.health_check.clone(),
                    members: r
                        .members
                        .get(&l.port)
                        .into_iter()
                        .flatten()
                        .map(|m| Member {
                            instance_id: m.instance_id.clone(),
                            port: m.port,
                            health: match st.instances.get(&m.instance_id).map(instance_state) {
                                Some(InstanceState::Running) => MemberHealth::Healthy,
                                _ => MemberHealth::Unhealthy,
                            },
                        })
                        .collect(),
                },
            })
            .collect();
        LoadBalancer {
            id: r.id.clone(),
            name: r.spec.name.clone(),
            state,
            address: Some(r.address.clone()),
            security_groups: r.spec.security_groups.clone(),
            listeners,
            tags: r.tags.clone(),
        }
    }

    fn get_lb_now(&self, op: Operation, id: &str) -> Result<LoadBalancer> {
        let st = self.lock();
        let r = st
            .lbs
            .get(id)
            .ok_or_else(|| Error::not_found(op, format!("load balancer {id}")))?;
        Ok(self.lb_record(&st, r))
    }

    /// Waits until the LB accepts changes (Octavia: immutable while PENDING_*).
    async fn wait_lb_active(&self, op: Operation, id: &str) -> Result<LoadBalancer> {
        self.config
            .poller
            .until(
                op,
                &format!("load balancer {id}"),
                "active",
                self.config.timeouts.load_balancer,
                || async {
                    let lb = self.get_lb_now(op, id)?;
                    match lb.state {
                        LoadBalancerState::Active => Ok(Poll::Ready(lb)),
                        LoadBalancerState::Error => Err(Error::Api {
                            operation: op,
                            status: None,
                            code: "ERROR".into(),
                            message: format!(
                                "load balancer {id} is in ERROR: delete and recreate it"
                            ),
                        }),
                        s => Ok(Poll::Pending(format!("{s:?}"))),
                    }
                },
            )
            .await
    }

    /// Waits until `gone` says the resource has disappeared.
    async fn wait_gone(
        &self,
        op: Operation,
        resource: String,
        gone: impl Fn(&State) -> bool,
    ) -> Result<()> {
        self.config
            .poller
            .until(
                op,
                &resource,
                "deleted",
                self.config.timeouts.delete,
                || {
                    let st = self.lock();
                    let done = gone(&st);
                    drop(st);
                    async move {
                        Ok(if done {
                            Poll::Ready(())
                        } else {
                            Poll::Pending("deleting".into())
                        })
                    }
                },
            )
            .await
    }

    async fn wait_volume(&self, op: Operation, id: &str, wanted: VolumeState) -> Result<Volume> {
        self.config
            .poller
            .until(
                op,
                &format!("volume {id}"),
                &format!("{wanted:?}"),
                self.config.timeouts.volume,
                || async {
                    let st = self.lock();
                    let r = st
                        .volumes
                        .get(id)
                        .ok_or_else(|| Error::not_found(op, format!("volume {id}")))?;
                    let v = self.volume_record(r);
                    Ok(if v.state == wanted {
                        Poll::Ready(v)
                    } else {
                        Poll::Pending(format!("{:?}", v.state))
                    })
                },
            )
            .await
    }

    async fn wait_instances(&self, op: Operation, ids: &[String]) -> Result<Vec<Instance>> {
        self.config
            .poller
            .until_all(
                op,
                "running",
                self.config.timeouts.instance,
                ids,
                |pending| async move {
                    let st = self.lock();
                    let mut out = Vec::new();
                    for id in pending {
                        let Some(r) = st.instances.get(&id) else {
                            return Err(Error::not_found(op, format!("instance {id}")));
                        };
                        let i = self.instance_record(&st, r);
                        let p = match i.state {
                            InstanceState::Running => Poll::Ready(i),
                            InstanceState::Failed => {
                                return Err(Error::Api {
                                    operation: op,
                                    status: None,
                                    code: "FAILED".into(),
                                    message: format!(
                                        "instance {id} failed to start: delete it and retry"
                                    ),
                                })
                            }
                            s => Poll::Pending(format!("{s:?}")),
                        };
                        out.push((id, p));
                    }
                    Ok(out)
                },
            )
            .await
    }

    /// Validates an instance spec against the catalog and the current state; answers the
    /// id of an existing instance of the same name and spec, or `None` to create.
    fn check_instance(
        &self,
        st: &State,
        op: Operation,
        field: &str,
        spec: &InstanceSpec,
    ) -> Result<Option<String>> {
        spec.validate_for(op, field)?;
        self.check_zone(
            op,
            &format!("{field}.availability_zone"),
            &spec.availability_zone,
        )?;
        if !self.config.images.contains(&spec.image) {
            return Err(Error::invalid(
                op,
                format!("{field}.image"),
                format!(
                    "unknown image {:?}: use one of {}",
                    spec.image,
                    self.config.images.join(", ")
                ),
            ));
        }
        if !self.config.flavors.contains(&spec.flavor) {
            return Err(Error::invalid(
                op,
                format!("{field}.flavor"),
                format!(
                    "unknown flavor {:?}: use one of {}",
                    spec.flavor,
                    self.config.flavors.join(", ")
                ),
            ));
        }
        for (i, g) in spec.security_groups.iter().enumerate() {
            if st.groups.get(g).is_none_or(|r| r.deleting.is_some()) {
                return Err(Error::invalid(
                    op,
                    format!("{field}.security_groups[{i}]"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        match st
            .instances
            .values()
            .find(|r| r.spec.name == spec.name && r.deleting.is_none())
        {
            Some(r) if r.spec == *spec => Ok(Some(r.instance.id.clone())),
            Some(r) => Err(Error::conflict(
                op,
                format!("instance {} ({})", spec.name, r.instance.id),
                "an instance of this name exists with a different spec: delete it or choose another name",
            )),
            None => Ok(None),
        }
    }

    fn insert_instance(&self, st: &mut State, spec: &InstanceSpec) -> String {
        let id = self.new_id("i");
        let n = self.next_id.load(Ordering::Relaxed);
        let ip = Ipv4Addr::new(
            10,
            ((n >> 16) & 0xff) as u8,
            ((n >> 8) & 0xff) as u8,
            (n & 0xff) as u8,
        );
        st.instances.insert(
            id.clone(),
            InstanceRec {
                spec: spec.clone(),
                instance: Instance {
                    id: id.clone(),
                    name: spec.name.clone(),
                    availability_zone: spec.availability_zone.clone(),
                    flavor: spec.flavor.clone(),
                    image: spec.image.clone(),
                    state: InstanceState::Pending,
                    private_ip: Some(IpAddr::V4(ip)),
                    public_ip: None,
                    security_groups: spec.security_groups.clone(),
                    tags: spec.tags.clone(),
                },
                ready: self.until(),
                deleting: None,
                failed: false,
            },
        );
        id
    }

    fn check_rule_sources(
        &self,
        st: &State,
        op: Operation,
        field: &str,
        rule: &IngressRule,
    ) -> Result<()> {
        if let RuleSource::Group(g) = &rule.source {
            if st.groups.get(g).is_none_or(|r| r.deleting.is_some()) {
                return Err(Error::invalid(
                    op,
                    format!("{field}.source"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            floating_ips: true,
            load_balancers: true,
            lb_protocols: vec![LbProtocol::Tcp, LbProtocol::Http],
            group_sources: true,
            page_size: self.config.page_size,
        }
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        Ok(self
            .config
            .availability_zones
            .iter()
            .map(|name| AvailabilityZone {
                name: name.clone(),
                available: true,
            })
            .collect())
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let op = Operation::UpdateTags;
        crate::model::validate_tags(op, "set", set)?;
        let mut st = self.lock();
        let tags = match kind {
            ResourceKind::SecurityGroup => st.groups.get_mut(id).map(|r| &mut r.group.tags),
            ResourceKind::FloatingIp => st.fips.get_mut(id).map(|r| &mut r.fip.tags),
            ResourceKind::Volume => st.volumes.get_mut(id).map(|r| &mut r.tags),
            ResourceKind::Instance => st.instances.get_mut(id).map(|r| &mut r.instance.tags),
            ResourceKind::LoadBalancer => st.lbs.get_mut(id).map(|r| &mut r.tags),
        }
        .ok_or_else(|| Error::not_found(op, format!("{kind} {id}")))?;
        for k in remove {
            tags.remove(k);
        }
        tags.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(())
    }

    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        let op = Operation::CreateSecurityGroup;
        spec.validate()?;
        let mut st = self.lock();
        for (i, r) in spec.rules.iter().enumerate() {
            self.check_rule_sources(&st, op, &format!("spec.rules[{i}]"), r)?;
        }
        if let Some(r) = st
            .groups
            .values()
            .find(|r| r.spec.name == spec.name && r.deleting.is_none())
        {
            return if r.spec == *spec {
                Ok(r.group.clone())
            } else {
                Err(Error::conflict(
                    op,
                    format!("security group {} ({})", spec.name, r.group.id),
                    "a group of this name exists with a different spec: delete it or choose another name",
                ))
            };
        }
        let id = self.new_id("sg");
        let mut rules = spec.rules.clone();
        rules.sort();
        rules.dedup();
        let group = SecurityGroup {
            id: id.clone(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            rules,
            tags: spec.tags.clone(),
        };
        st.groups.insert(
            id,
            GroupRec {
                spec: spec.clone(),
                group: group.clone(),
                deleting: None,
            },
        );
        Ok(group)
    }

    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        let st = self.lock();
        st.groups.get(id).map(|r| r.group.clone()).ok_or_else(|| {
            Error::not_found(Operation::GetSecurityGroup, format!("security group {id}"))
        })
    }

    async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.groups, |r| filter.matches(&r.group.tags))
            .into_iter()
            .map(|r| r.group)
            .collect())
    }

    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let op = Operation::AddSecurityGroupRule;
        rule.validate(op, "rule")?;
        let mut st = self.lock();
        self.check_rule_sources(&st, op, "rule", rule)?;
        let r = st
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Error::not_found(op, format!("security group {group_id}")))?;
        if !r.group.rules.contains(rule) {
            r.group.rules.push(rule.clone());
            r.group.rules.sort();
        }
        Ok(())
    }

    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        let op = Operation::RemoveSecurityGroupRule;
        let mut st = self.lock();
        let r = st
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Error::not_found(op, format!("security group {group_id}")))?;
        r.group.rules.retain(|x| x != rule);
        Ok(())
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteSecurityGroup;
        {
            let mut st = self.lock();
            if !st.groups.contains_key(id) {
                return Ok(());
            }
            if let Some(i) = st
                .instances
                .values()
                .find(|i| i.instance.security_groups.iter().any(|g| g == id))
            {
                return Err(Error::conflict(
                    op,
                    format!("security group {id}"),
                    format!(
                        "in use by instance {}: delete the instance first",
                        i.instance.id
                    ),
                ));
            }
            if let Some(g) = st.groups.values().find(|g| {
                g.group.id != id
                    && g.group
                        .rules
                        .iter()
                        .any(|r| r.source == RuleSource::Group(id.to_string()))
            }) {
                return Err(Error::conflict(
                    op,
                    format!("security group {id}"),
                    format!(
                        "referenced by a rule of group {}: remove that rule first",
                        g.group.id
                    ),
                ));
            }
            if let Some(lb) = st
                .lbs
                .values()
                .find(|l| l.spec.security_groups.iter().any(|g| g == id))
            {
                return Err(Error::conflict(
                    op,
                    format!("security group {id}"),
                    format!("in use by load balancer {}: delete it first", lb.id),
                ));
            }
            let until = self.until();
            if let Some(g) = st.groups.get_mut(id) {
                g.deleting.get_or_insert(until);
            }
        }
        self.wait_gone(op, format!("security group {id}"), |st| {
            !st.groups.contains_key(id)
        })
        .await
    }

    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        let op = Operation::AllocateFloatingIp;
        spec.validate()?;
        if !self.config.floating_ip_pools.contains(&spec.pool) {
            return Err(Error::invalid(
                op,
                "spec.pool",
                format!(
                    "unknown floating IP pool {:?}: use one of {}",
                    spec.pool,
                    self.config.floating_ip_pools.join(", ")
                ),
            ));
        }
        let mut st = self.lock();
        if let Some(r) = st
            .fips
            .values()
            .find(|r| r.spec.name == spec.name && r.deleting.is_none())
        {
            return if r.spec == *spec {
                Ok(r.fip.clone())
            } else {
                Err(Error::conflict(
                    op,
                    format!("floating IP {} ({})", spec.name, r.fip.id),
                    "a floating IP of this name exists with a different spec: release it or choose another name",
                ))
            };
        }
        let used: BTreeSet<IpAddr> = st.fips.values().map(|f| f.fip.address).collect();
        let address = (1..=u16::MAX)
            .map(|n| IpAddr::V4(Ipv4Addr::new(203, 0, (n >> 8) as u8, (n & 0xff) as u8)))
            .find(|a| !used.contains(a))
            .ok_or_else(|| Error::QuotaExceeded {
                operation: op,
                message: format!("pool {} has no free address", spec.pool),
            })?;
        let id = self.new_id("fip");
        let fip = FloatingIp {
            id: id.clone(),
            name: spec.name.clone(),
            address,
            pool: spec.pool.clone(),
            instance_id: None,
            tags: spec.tags.clone(),
        };
        st.fips.insert(
            id,
            FipRec {
                spec: spec.clone(),
                fip: fip.clone(),
                deleting: None,
            },
        );
        Ok(fip)
    }

    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let st = self.lock();
        st.fips
            .get(id)
            .map(|r| r.fip.clone())
            .ok_or_else(|| Error::not_found(Operation::GetFloatingIp, format!("floating IP {id}")))
    }

    async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.fips, |r| filter.matches(&r.fip.tags))
            .into_iter()
            .map(|r| r.fip)
            .collect())
    }

    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        let op = Operation::AssociateFloatingIp;
        let mut st = self.lock();
        match st.instances.get(instance_id).map(instance_state) {
            None => return Err(Error::not_found(op, format!("instance {instance_id}"))),
            // The instance's port does not exist yet: a cloud answers "retry".
            Some(InstanceState::Pending) => {
                return Err(Error::transient(
                    op,
                    format!("instance {instance_id} has no port yet"),
                ))
            }
            Some(InstanceState::Deleting) => {
                return Err(Error::conflict(
                    op,
                    format!("instance {instance_id}"),
                    "the instance is being deleted",
                ))
            }
            Some(_) => {}
        }
        let r = st
            .fips
            .get_mut(id)
            .ok_or_else(|| Error::not_found(op, format!("floating IP {id}")))?;
        r.fip.instance_id = Some(instance_id.to_string());
        Ok(r.fip.clone())
    }

    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        let op = Operation::DisassociateFloatingIp;
        let mut st = self.lock();
        let r = st
            .fips
            .get_mut(id)
            .ok_or_else(|| Error::not_found(op, format!("floating IP {id}")))?;
        r.fip.instance_id = None;
        Ok(r.fip.clone())
    }

    async fn release_floating_ip(&self, id: &str) -> Result<()> {
        let op = Operation::ReleaseFloatingIp;
        {
            let mut st = self.lock();
            let until = self.until();
            match st.fips.get_mut(id) {
                None => return Ok(()),
                Some(r) => {
                    r.fip.instance_id = None;
                    r.deleting.get_or_insert(until);
                }
            }
        }
        self.wait_gone(op, format!("floating IP {id}"), |st| {
            !st.fips.contains_key(id)
        })
        .await
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let op = Operation::CreateVolume;
        spec.validate()?;
        self.check_zone(op, "spec.availability_zone", &spec.availability_zone)?;
        let id = {
            let mut st = self.lock();
            match st
                .volumes
                .values()
                .find(|r| r.spec.name == spec.name && !matches!(r.phase, VolumePhase::Deleting(_)))
            {
                Some(r) if r.spec == *spec => r.id.clone(),
                Some(r) => {
                    return Err(Error::conflict(
                        op,
                        format!("volume {} ({})", spec.name, r.id),
                        "a volume of this name exists with a different spec: delete it or choose another name",
                    ))
                }
                None => {
                    let id = self.new_id("vol");
                    st.volumes.insert(
                        id.clone(),
                        VolumeRec {
                            spec: spec.clone(),
                            id: id.clone(),
                            volume_zone: self.volume_zone(&spec.availability_zone),
                            phase: VolumePhase::Creating(self.until()),
                            tags: spec.tags.clone(),
                        },
                    );
                    id
                }
            }
        };
        // An existing volume may be attached: return it in whatever settled state it has.
        self.config
            .poller
            .until(
                op,
                &format!("volume {id}"),
                "available",
                self.config.timeouts.volume,
                || async {
                    let st = self.lock();
                    let r = st
                        .volumes
                        .get(&id)
                        .ok_or_else(|| Error::not_found(op, format!("volume {id}")))?;
                    let v = self.volume_record(r);
                    Ok(match v.state {
                        VolumeState::Available | VolumeState::InUse => Poll::Ready(v),
                        s => Poll::Pending(format!("{s:?}")),
                    })
                },
            )
            .await
    }

    async fn get_volume(&self, id: &str) -> Result<Volume> {
        let st = self.lock();
        st.volumes
            .get(id)
            .map(|r| self.volume_record(r))
            .ok_or_else(|| Error::not_found(Operation::GetVolume, format!("volume {id}")))
    }

    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.volumes, |r| filter.matches(&r.tags))
            .iter()
            .map(|r| self.volume_record(r))
            .collect())
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        let op = Operation::AttachVolume;
        {
            let mut st = self.lock();
            let inst_zone = match st.instances.get(instance_id) {
                Some(i) if i.deleting.is_none() => i.instance.availability_zone.clone(),
                _ => return Err(Error::not_found(op, format!("instance {instance_id}"))),
            };
            let device_index = st
                .volumes
                .values()
                .filter(|v| match &v.phase {
                    VolumePhase::Attaching(_, a) | VolumePhase::InUse(a) => {
                        a.instance_id == instance_id
                    }
                    _ => false,
                })
                .count();
            let until = self.until();
            let want_zone = self.volume_zone(&inst_zone);
            let v = st
                .volumes
                .get_mut(volume_id)
                .ok_or_else(|| Error::not_found(op, format!("volume {volume_id}")))?;
            if v.volume_zone != want_zone {
                return Err(Error::invalid(
                    op,
                    "instance_id",
                    format!(
                        "volume {volume_id} is in {} and instance {instance_id} in {inst_zone}: attach within one availability zone",
                        self.compute_zone(&v.volume_zone)
                    ),
                ));
            }
            match &v.phase {
                VolumePhase::Available => {
                    let device = format!("/dev/vd{}", (b'b' + device_index as u8) as char);
                    v.phase = VolumePhase::Attaching(
                        until,
                        VolumeAttachment {
                            instance_id: instance_id.to_string(),
                            device,
                        },
                    );
                }
                VolumePhase::Attaching(_, a) | VolumePhase::InUse(a)
                    if a.instance_id == instance_id => {}
                VolumePhase::Attaching(_, a) | VolumePhase::InUse(a) => {
                    return Err(Error::conflict(
                        op,
                        format!("volume {volume_id}"),
                        format!("attached to instance {}: detach it first", a.instance_id),
                    ))
                }
                VolumePhase::Creating(_) | VolumePhase::Detaching(_) => {
                    return Err(Error::transient(op, format!("volume {volume_id} is busy")))
                }
                VolumePhase::Deleting(_) => {
                    return Err(Error::not_found(op, format!("volume {volume_id}")))
                }
            }
        }
        self.wait_volume(op, volume_id, VolumeState::InUse).await
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let op = Operation::DetachVolume;
        {
            let mut st = self.lock();
            let until = self.until();
            let v = st
                .volumes
                .get_mut(volume_id)
                .ok_or_else(|| Error::not_found(op, format!("volume {volume_id}")))?;
            match &v.phase {
                VolumePhase::Attaching(..) | VolumePhase::InUse(_) => {
                    v.phase = VolumePhase::Detaching(until)
                }
                VolumePhase::Creating(_) => {
                    return Err(Error::transient(
                        op,
                        format!("volume {volume_id} is being created"),
                    ))
                }
                VolumePhase::Deleting(_) => {
                    return Err(Error::not_found(op, format!("volume {volume_id}")))
                }
                VolumePhase::Available | VolumePhase::Detaching(_) => {}
            }
        }
        self.wait_volume(op, volume_id, VolumeState::Available)
            .await
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteVolume;
        {
            let mut st = self.lock();
            let until = self.until();
            let Some(v) = st.volumes.get_mut(id) else {
                return Ok(());
            };
            match &v.phase {
                VolumePhase::Attaching(_, a) | VolumePhase::InUse(a) => {
                    return Err(Error::conflict(
                        op,
                        format!("volume {id}"),
                        format!("attached to instance {}: detach it first", a.instance_id),
                    ))
                }
                VolumePhase::Creating(_) | VolumePhase::Detaching(_) => {
                    return Err(Error::transient(op, format!("volume {id} is busy")))
                }
                VolumePhase::Available => v.phase = VolumePhase::Deleting(until),
                VolumePhase::Deleting(_) => {}
            }
        }
        self.wait_gone(op, format!("volume {id}"), |st| {
            !st.volumes.contains_key(id)
        })
        .await
    }

    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let mut v = self.create_instances(std::slice::from_ref(spec)).await?;
        v.pop()
            .ok_or_else(|| Error::transient(Operation::CreateInstance, "launch returned nothing"))
    }

    /// Launches every instance in one call, as a batch API does, then waits for all with
    /// one probe per interval.
    async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        let op = if specs.len() == 1 {
            Operation::CreateInstance
        } else {
            Operation::CreateInstances
        };
        let ids = {
            let mut st = self.lock();
            let mut names = BTreeSet::new();
            let mut existing = Vec::with_capacity(specs.len());
            for (i, spec) in specs.iter().enumerate() {
                let field = if specs.len() == 1 {
                    "spec".to_string()
                } else {
                    format!("specs[{i}]")
                };
                if !names.insert(&spec.name) {
                    return Err(Error::invalid(
                        op,
                        format!("{field}.name"),
                        format!(
                            "{:?} appears twice in the batch: give each instance its own name",
                            spec.name
                        ),
                    ));
                }
                existing.push(self.check_instance(&st, op, &field, spec)?);
            }
            specs
                .iter()
                .zip(existing)
                .map(|(spec, found)| found.unwrap_or_else(|| self.insert_instance(&mut st, spec)))
                .collect::<Vec<_>>()
        };
        self.wait_instances(op, &ids).await
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        let st = self.lock();
        st.instances
            .get(id)
            .map(|r| self.instance_record(&st, r))
            .ok_or_else(|| Error::not_found(Operation::GetInstance, format!("instance {id}")))
    }

    async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        let st = self.lock();
        ids.iter()
            .map(|id| {
                st.instances
                    .get(id)
                    .map(|r| self.instance_record(&st, r))
                    .ok_or_else(|| {
                        Error::not_found(Operation::GetInstances, format!("instance {id}"))
                    })
            })
            .collect()
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.instances, |r| filter.matches(&r.instance.tags))
            .iter()
            .map(|r| self.instance_record(&st, r))
            .collect())
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteInstance;
        {
            let mut st = self.lock();
            if !st.instances.contains_key(id) {
                return Ok(());
            }
            if let Some(v) = st.volumes.values().find(|v| match &v.phase {
                VolumePhase::Attaching(_, a) | VolumePhase::InUse(a) => a.instance_id == id,
                _ => false,
            }) {
                return Err(Error::conflict(
                    op,
                    format!("instance {id}"),
                    format!(
                        "volume {} is attached: detach it first so it is not lost",
                        v.id
                    ),
                ));
            }
            for f in st.fips.values_mut() {
                if f.fip.instance_id.as_deref() == Some(id) {
                    f.fip.instance_id = None;
                }
            }
            let until = self.until();
            if let Some(r) = st.instances.get_mut(id) {
                r.deleting.get_or_insert(until);
            }
        }
        self.wait_gone(op, format!("instance {id}"), |st| {
            !st.instances.contains_key(id)
        })
        .await
    }

    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        let op = Operation::CreateLoadBalancer;
        spec.validate()?;
        let id = {
            let mut st = self.lock();
            for (i, g) in spec.security_groups.iter().enumerate() {
                if !st.groups.contains_key(g) {
                    return Err(Error::invalid(
                        op,
                        format!("spec.security_groups[{i}]"),
                        format!("no security group with id {g:?}: create it first"),
                    ));
                }
            }
            for (i, l) in spec.listeners.iter().enumerate() {
                for (j, m) in l.members.iter().enumerate() {
                    if !st.instances.contains_key(&m.instance_id) {
                        return Err(Error::invalid(
                            op,
                            format!("spec.listeners[{i}].members[{j}].instance_id"),
                            format!("no instance with id {:?}", m.instance_id),
                        ));
                    }
                }
            }
            match st
                .lbs
                .values()
                .find(|r| r.spec.name == spec.name && r.deleting.is_none())
            {
                Some(r) if r.spec == *spec => r.id.clone(),
                Some(r) => {
                    return Err(Error::conflict(
                        op,
                        format!("load balancer {} ({})", spec.name, r.id),
                        "a load balancer of this name exists with a different spec: delete it or choose another name",
                    ))
                }
                None => {
                    let id = self.new_id("lb");
                    let n = self.next_id.load(Ordering::Relaxed);
                    st.lbs.insert(
                        id.clone(),
                        LbRec {
                            spec: spec.clone(),
                            id: id.clone(),
                            address: format!("198.51.{}.{}", (n >> 8) & 0xff, n & 0xff),
                            members: spec
                                .listeners
                                .iter()
                                .map(|l| (l.port, l.members.clone()))
                                .collect(),
                            busy: self.until(),
                            deleting: None,
                            failed: false,
                            tags: spec.tags.clone(),
                        },
                    );
                    id
                }
            }
        };
        self.wait_lb_active(op, &id).await
    }

    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        self.get_lb_now(Operation::GetLoadBalancer, id)
    }

    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>> {
        let st = self.lock();
        Ok(self
            .paginate(&st.lbs, |r| filter.matches(&r.tags))
            .iter()
            .map(|r| self.lb_record(&st, r))
            .collect())
    }

    async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_members(
            Operation::AddLoadBalancerMember,
            lb_id,
            listener_port,
            member,
            true,
        )
        .await
    }

    async fn remove_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_members(
            Operation::RemoveLoadBalancerMember,
            lb_id,
            listener_port,
            member,
            false,
        )
        .await
    }

    async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteLoadBalancer;
        {
            let mut st = self.lock();
            let until = self.until();
            match st.lbs.get_mut(id) {
                None => return Ok(()),
                Some(r) => {
                    r.deleting.get_or_insert(until);
                }
            }
        }
        self.wait_gone(op, format!("load balancer {id}"), |st| {
            !st.lbs.contains_key(id)
        })
        .await
    }
}

impl MemoryProvider {
    /// Adds or removes one member, serialised the Octavia way: wait for ACTIVE, change,
    /// wait for ACTIVE again.
    async fn change_members(
        &self,
        op: Operation,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
        add: bool,
    ) -> Result<LoadBalancer> {
        member.validate(op)?;
        loop {
            self.wait_lb_active(op, lb_id).await?;
            match self.apply_member_change(op, lb_id, port, member, add)? {
                // Another change slipped in between the wait and the lock: wait again.
                MemberChange::Busy => continue,
                MemberChange::Unchanged => return self.get_lb_now(op, lb_id),
                MemberChange::Changed => return self.wait_lb_active(op, lb_id).await,
            }
        }
    }

    fn apply_member_change(
        &self,
        op: Operation,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
        add: bool,
    ) -> Result<MemberChange> {
        let mut st = self.lock();
        if add && !st.instances.contains_key(&member.instance_id) {
            return Err(Error::invalid(
                op,
                "member.instance_id",
                format!("no instance with id {:?}", member.instance_id),
            ));
        }
        let until = self.until();
        let r = st
            .lbs
            .get_mut(lb_id)
            .ok_or_else(|| Error::not_found(op, format!("load balancer {lb_id}")))?;
        if !r.busy.passed() {
            return Ok(MemberChange::Busy);
        }
        let members = r.members.get_mut(&port).ok_or_else(|| {
            Error::invalid(
                op,
                "listener_port",
                format!("load balancer {lb_id} has no listener on port {port}"),
            )
        })?;
        let present = members.contains(member);
        if add && !present {
            members.push(member.clone());
        } else if !add && present {
            members.retain(|m| m != member);
        } else {
            return Ok(MemberChange::Unchanged);
        }
        r.busy = until;
        Ok(MemberChange::Changed)
    }
}

enum MemberChange {
    Busy,
    Unchanged,
    Changed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, az: &str) -> InstanceSpec {
        InstanceSpec {
            name: name.into(),
            availability_zone: az.into(),
            flavor: "small".into(),
            image: "linux".into(),
            network: None,
            subnet: None,
            security_groups: vec![],
            keypair: None,
            user_data: None,
            tags: Tags::new(),
        }
    }

    #[tokio::test]
    async fn volume_zone_mapping_is_invisible_to_callers_but_enforced() {
        let cloud = MemoryProvider::new(MemoryConfig {
            volume_zones: [
                ("az-1".to_string(), "cinder-1".to_string()),
                ("az-2".to_string(), "cinder-2".to_string()),
            ]
            .into(),
            ..Default::default()
        });
        let i1 = cloud.create_instance(&spec("a", "az-1")).await.unwrap();
        let i2 = cloud.create_instance(&spec("b", "az-2")).await.unwrap();
        let v = cloud
            .create_volume(&VolumeSpec {
                name: "v".into(),
                availability_zone: "az-1".into(),
                size_gib: 1,
                volume_type: None,
                tags: Tags::new(),
            })
            .await
            .unwrap();
        assert_eq!(v.availability_zone, "az-1");
        assert_eq!(cloud.lock().volumes[&v.id].volume_zone, "cinder-1");
        let err = cloud.attach_volume(&v.id, &i2.id).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        let v = cloud.attach_volume(&v.id, &i1.id).await.unwrap();
        assert_eq!(v.state, VolumeState::InUse);
    }

    #[tokio::test]
    async fn lists_follow_pages() {
        let cloud = MemoryProvider::new(MemoryConfig {
            page_size: 3,
            ..Default::default()
        });
        for i in 0..7 {
            cloud
                .create_security_group(&SecurityGroupSpec {
                    name: format!("g{i}"),
                    description: String::new(),
                    rules: vec![],
                    tags: Tags::new(),
                })
                .await
                .unwrap();
        }
        let before = cloud.page_requests();
        assert_eq!(
            cloud
                .list_security_groups(&TagFilter::all())
                .await
                .unwrap()
                .len(),
            7
        );
        assert_eq!(cloud.page_requests() - before, 3);
    }

    #[tokio::test]
    async fn failed_instance_is_reported_not_waited_on() {
        let cloud = MemoryProvider::new(MemoryConfig {
            transition: Duration::from_millis(200),
            ..Default::default()
        });
        let c = std::sync::Arc::new(cloud);
        let c2 = c.clone();
        let h = tokio::spawn(async move { c2.create_instance(&spec("x", "az-1")).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let id = c.list_instances(&TagFilter::all()).await.unwrap()[0]
            .id
            .clone();
        c.fail_instance(&id).unwrap();
        let err = h.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Api, "{err}");
    }
}
