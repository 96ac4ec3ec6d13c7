//! The cloud itself: every operation of the trait, run by the daemon against the store
//! and the running processes, forwarders and load balancers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ipnet::IpNet;
use provider_core::{
    AvailabilityZone, Error, FloatingIp, FloatingIpSpec, IngressRule, Instance, InstanceSpec,
    InstanceState, Listener, LoadBalancer, LoadBalancerSpec, LoadBalancerState, Member,
    MemberHealth, MemberSpec, Operation, Pool, ResourceKind, Result, RuleSource, SecurityGroup,
    SecurityGroupSpec, TagFilter, Tags, Volume, VolumeAttachment, VolumeSpec, VolumeState,
    MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN,
};
use tokio::time::Instant;

use super::rows::{FipRow, GroupRow, InstanceRow, LbRow, Row, VolumeRow};
use crate::acl::{InstanceNet, NetView, SharedView};
use crate::catalog::{self, Image, HTTP_IMAGE_PORT};
use crate::config::LocalConfig;
use crate::forwarder::Forwarder;
use crate::lb::{LbRuntime, ListenerPlan};
use crate::locate::HelperCommand;
use crate::protocol::Page;
use crate::store::{Store, StoreError, Table};
use crate::supervisor::{self, files, InstanceBoot};

const GIB: u64 = 1024 * 1024 * 1024;
/// How long a stopped instance gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn db(op: Operation) -> impl Fn(StoreError) -> Error {
    move |e| e.into_error(op)
}

fn io_err(op: Operation, what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Api {
        operation: op,
        status: None,
        code: "local_io".into(),
        message: format!("{what}: {e}"),
    }
}

fn new_id(prefix: &str) -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &u[..12])
}

/// The daemon's cloud: store, runtime and the lock that serialises changes.
#[derive(Debug)]
pub struct Cloud {
    cfg: LocalConfig,
    helper: HelperCommand,
    store: Store,
    /// Held while a change is decided and written, never while waiting.
    changes: tokio::sync::Mutex<()>,
    view: SharedView,
    forwarders: Mutex<HashMap<String, Forwarder>>,
    lbs: Mutex<HashMap<String, LbRuntime>>,
}

impl Cloud {
    /// A cloud over an open store; call [`Cloud::restore`] next.
    pub fn new(cfg: LocalConfig, helper: HelperCommand, store: Store) -> Self {
        Self {
            cfg,
            helper,
            store,
            changes: tokio::sync::Mutex::new(()),
            view: SharedView::default(),
            forwarders: Mutex::new(HashMap::new()),
            lbs: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty().unwrap_or(false)
    }

    /// The page size of list answers.
    pub fn page_size(&self) -> usize {
        self.cfg.page_size.max(1)
    }

    // ------------------------------------------------------------------ runtime

    /// Re-adopts what the store says exists: instance processes keep running on their
    /// own (their liveness is read from /proc), load balancers and forwarders restart.
    pub async fn restore(&self) -> Result<()> {
        let op = Operation::ListLoadBalancers;
        let _g = self.changes.lock().await;
        self.refresh_view(op)?;
        for row in self
            .store
            .all::<LbRow>(Table::LoadBalancers)
            .map_err(db(op))?
        {
            let plans = plans_of(&row.record);
            match LbRuntime::start(&row.record.id, row.address, &plans, &self.view) {
                Ok(rt) => {
                    lock(&self.lbs).insert(row.record.id.clone(), rt);
                }
                Err(e) => {
                    tracing::error!(lb = %row.record.id, "cannot restart load balancer: {e}");
                }
            }
        }
        for row in self
            .store
            .all::<InstanceRow>(Table::Instances)
            .map_err(db(op))?
        {
            let alive = row.process.is_some_and(|p| p.alive());
            tracing::info!(instance = %row.record.id, alive, "re-adopted instance");
        }
        Ok(())
    }

    /// Rebuilds the ACL snapshot and makes forwarders listen on what groups open now.
    fn refresh_view(&self, op: Operation) -> Result<()> {
        let groups = self
            .store
            .all::<GroupRow>(Table::SecurityGroups)
            .map_err(db(op))?;
        let instances = self
            .store
            .all::<InstanceRow>(Table::Instances)
            .map_err(db(op))?;
        let lbs = self
            .store
            .all::<LbRow>(Table::LoadBalancers)
            .map_err(db(op))?;
        let fips = self
            .store
            .all::<FipRow>(Table::FloatingIps)
            .map_err(db(op))?;
        let mut view = NetView::default();
        for g in groups {
            view.groups.insert(g.record.id, g.record.rules);
        }
        for i in instances {
            if let Some(address) = i.record.private_ip {
                view.instances.insert(
                    i.record.id,
                    InstanceNet {
                        address,
                        groups: i.record.security_groups,
                    },
                );
            }
        }
        for l in lbs {
            view.load_balancers
                .insert(l.record.id, (l.address, l.record.security_groups));
        }
        let mut fwd = lock(&self.forwarders);
        let mut wanted = HashSet::new();
        for f in fips {
            let Some(iid) = f.record.instance_id.clone() else {
                continue;
            };
            let Some(inst) = view.instances.get(&iid) else {
                continue;
            };
            let ports = view.open_tcp_ports(&inst.groups, self.cfg.max_forwarded_ports);
            wanted.insert(f.record.id.clone());
            let entry = fwd
                .entry(f.record.id.clone())
                .or_insert_with(|| Forwarder::new(f.record.address, iid.clone()));
            if entry.instance_id() != iid {
                *entry = Forwarder::new(f.record.address, iid.clone());
            }
            // Publish the view first so the new listeners see the current rules.
            if entry.ports() != ports {
                self.view.set(view.clone());
                entry.set_ports(&ports, &self.view);
            }
        }
        fwd.retain(|id, _| wanted.contains(id));
        drop(fwd);
        self.view.set(view);
        Ok(())
    }

    /// Stops every forwarder and load balancer (instances keep running).
    pub fn stop_runtime(&self) {
        lock(&self.forwarders).clear();
        lock(&self.lbs).clear();
    }

    // ------------------------------------------------------------------ helpers

    fn check_zone(&self, op: Operation, field: &str, zone: &str) -> Result<()> {
        if self.cfg.availability_zones.iter().any(|z| z == zone) {
            Ok(())
        } else {
            Err(Error::invalid(
                op,
                field,
                format!(
                    "unknown availability zone {zone:?}: use one of {}",
                    self.cfg.availability_zones.join(", ")
                ),
            ))
        }
    }

    fn get_row<T: Row>(&self, op: Operation, table: Table, kind: &str, id: &str) -> Result<T> {
        self.store
            .get::<T>(table, id)
            .map_err(db(op))?
            .ok_or_else(|| Error::not_found(op, format!("{kind} {id}")))
    }

    fn find_by_name<T: Row>(&self, op: Operation, table: Table, name: &str) -> Result<Option<T>> {
        Ok(self
            .store
            .all::<T>(table)
            .map_err(db(op))?
            .into_iter()
            .find(|r| r.name() == name))
    }

    fn page<T: Row, R>(
        &self,
        op: Operation,
        table: Table,
        filter: &TagFilter,
        after: Option<&str>,
        view: impl Fn(&Self, T) -> R,
    ) -> Result<Page<R>> {
        let rows = self.store.all::<T>(table).map_err(db(op))?;
        let mut matching = rows
            .into_iter()
            .filter(|r| filter.matches(r.tags()))
            .filter(|r| after.is_none_or(|a| r.id() > a));
        let mut items = Vec::new();
        let mut last = None;
        for r in matching.by_ref().take(self.page_size()) {
            last = Some(r.id().to_string());
            items.push(view(self, r));
        }
        let next = if matching.next().is_some() {
            last
        } else {
            None
        };
        Ok(Page { items, next })
    }

    fn pick_address(
        &self,
        net: &IpNet,
        used: &HashSet<IpAddr>,
        probe_port: Option<u16>,
    ) -> Option<IpAddr> {
        let IpNet::V4(v4) = net else { return None };
        let base = u32::from(v4.network());
        let size = 1u64 << (32 - u32::from(v4.prefix_len()));
        if size < 4 {
            return None;
        }
        for _ in 0..500 {
            let r = (uuid::Uuid::new_v4().as_u128() % u128::from(size - 2)) as u32 + 1;
            let ip = Ipv4Addr::from(base.wrapping_add(r));
            let last = ip.octets()[3];
            if last == 0 || last == 255 || !ip.is_loopback() {
                continue;
            }
            let ip = IpAddr::V4(ip);
            if used.contains(&ip) {
                continue;
            }
            // Another state dir's daemon may use it: probe that the port is free.
            if let Some(p) = probe_port {
                if std::net::TcpListener::bind(SocketAddr::new(ip, p)).is_err() {
                    continue;
                }
            }
            return Some(ip);
        }
        None
    }

    fn instance_view(&self, row: InstanceRow, fips: &[FipRow]) -> Instance {
        let mut i = row.record;
        if i.state == InstanceState::Running && !row.process.is_some_and(|p| p.alive()) {
            i.state = InstanceState::Failed;
        }
        i.public_ip = fips
            .iter()
            .find(|f| f.record.instance_id.as_deref() == Some(i.id.as_str()))
            .map(|f| f.record.address);
        i
    }

    fn lb_view(&self, row: LbRow) -> LoadBalancer {
        let mut lb = row.record;
        let lbs = lock(&self.lbs);
        match lbs.get(&lb.id) {
            Some(rt) => {
                for l in &mut lb.listeners {
                    if let Some(ms) = rt.members(l.port) {
                        l.pool.members = ms;
                    }
                }
            }
            None => lb.state = LoadBalancerState::Error,
        }
        lb
    }

    // ------------------------------------------------------------------ zones, tags

    /// The configured zones.
    pub fn list_availability_zones(&self) -> Vec<AvailabilityZone> {
        self.cfg
            .availability_zones
            .iter()
            .map(|z| AvailabilityZone {
                name: z.clone(),
                available: true,
            })
            .collect()
    }

    /// Sets and removes tags on any resource.
    pub async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let op = Operation::UpdateTags;
        for (k, v) in set {
            if k.is_empty() || k.len() > MAX_TAG_KEY_LEN || k.contains('=') {
                return Err(Error::invalid(
                    op,
                    format!("set[{k:?}]"),
                    format!("tag keys must be 1 to {MAX_TAG_KEY_LEN} characters without '='"),
                ));
            }
            if v.len() > MAX_TAG_VALUE_LEN {
                return Err(Error::invalid(
                    op,
                    format!("set[{k:?}]"),
                    format!("tag values must be at most {MAX_TAG_VALUE_LEN} characters"),
                ));
            }
        }
        let _g = self.changes.lock().await;
        fn apply<T: Row>(
            c: &Cloud,
            op: Operation,
            table: Table,
            kind: ResourceKind,
            id: &str,
            set: &Tags,
            remove: &[String],
        ) -> Result<()> {
            let mut row: T = c.get_row(op, table, &kind.to_string(), id)?;
            for k in remove {
                row.tags_mut().remove(k);
            }
            row.tags_mut()
                .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            c.store.put(table, id, &row).map_err(db(op))
        }
        match kind {
            ResourceKind::SecurityGroup => {
                apply::<GroupRow>(self, op, Table::SecurityGroups, kind, id, set, remove)
            }
            ResourceKind::FloatingIp => {
                apply::<FipRow>(self, op, Table::FloatingIps, kind, id, set, remove)
            }
            ResourceKind::Volume => {
                apply::<VolumeRow>(self, op, Table::Volumes, kind, id, set, remove)
            }
            ResourceKind::Instance => {
                apply::<InstanceRow>(self, op, Table::Instances, kind, id, set, remove)
            }
            ResourceKind::LoadBalancer => {
                apply::<LbRow>(self, op, Table::LoadBalancers, kind, id, set, remove)
            }
        }
    }

    // ------------------------------------------------------------------ security groups

    fn check_rule_source(&self, op: Operation, field: &str, rule: &IngressRule) -> Result<()> {
        if let RuleSource::Group(g) = &rule.source {
            if self
                .store
                .get::<GroupRow>(Table::SecurityGroups, g)
                .map_err(db(op))?
                .is_none()
            {
                return Err(Error::invalid(
                    op,
                    format!("{field}.source"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        Ok(())
    }

    /// Creates a security group (idempotent by name and spec).
    pub async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        let op = Operation::CreateSecurityGroup;
        spec.validate()?;
        let _g = self.changes.lock().await;
        for (i, r) in spec.rules.iter().enumerate() {
            self.check_rule_source(op, &format!("spec.rules[{i}]"), r)?;
        }
        if let Some(r) = self.find_by_name::<GroupRow>(op, Table::SecurityGroups, &spec.name)? {
            return if r.spec == *spec {
                Ok(r.record)
            } else {
                Err(Error::conflict(op, format!("security group {} ({})", spec.name, r.record.id), "a security group of this name exists with a different spec: delete it or choose another name"))
            };
        }
        let mut rules = spec.rules.clone();
        rules.sort();
        rules.dedup();
        let record = SecurityGroup {
            id: new_id("sg"),
            name: spec.name.clone(),
            description: spec.description.clone(),
            rules,
            tags: spec.tags.clone(),
        };
        let row = GroupRow {
            spec: spec.clone(),
            record: record.clone(),
        };
        self.store
            .put(Table::SecurityGroups, &record.id, &row)
            .map_err(db(op))?;
        self.refresh_view(op)?;
        Ok(record)
    }

    /// Gets a security group.
    pub fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        let op = Operation::GetSecurityGroup;
        Ok(self
            .get_row::<GroupRow>(op, Table::SecurityGroups, "security group", id)?
            .record)
    }

    /// One page of security groups.
    pub fn list_security_groups(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<SecurityGroup>> {
        self.page(
            Operation::ListSecurityGroups,
            Table::SecurityGroups,
            filter,
            after,
            |_, r: GroupRow| r.record,
        )
    }

    /// Adds or removes a rule.
    pub async fn change_rule(&self, group_id: &str, rule: &IngressRule, add: bool) -> Result<()> {
        let op = if add {
            Operation::AddSecurityGroupRule
        } else {
            Operation::RemoveSecurityGroupRule
        };
        if add {
            rule.validate(op, "rule")?;
        }
        let _g = self.changes.lock().await;
        if add {
            self.check_rule_source(op, "rule", rule)?;
        }
        let mut row: GroupRow =
            self.get_row(op, Table::SecurityGroups, "security group", group_id)?;
        let present = row.record.rules.contains(rule);
        if add && !present {
            row.record.rules.push(rule.clone());
            row.record.rules.sort();
        } else if !add && present {
            row.record.rules.retain(|r| r != rule);
        } else {
            return Ok(());
        }
        self.store
            .put(Table::SecurityGroups, group_id, &row)
            .map_err(db(op))?;
        self.refresh_view(op)
    }

    /// Deletes a security group; `Conflict` while used.
    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteSecurityGroup;
        let _g = self.changes.lock().await;
        let Some(_) = self
            .store
            .get::<GroupRow>(Table::SecurityGroups, id)
            .map_err(db(op))?
        else {
            return Ok(());
        };
        let res = format!("security group {id}");
        if let Some(i) = self
            .store
            .all::<InstanceRow>(Table::Instances)
            .map_err(db(op))?
            .into_iter()
            .find(|i| i.record.security_groups.iter().any(|g| g == id))
        {
            return Err(Error::conflict(
                op,
                res,
                format!(
                    "in use by instance {}: delete the instance first",
                    i.record.id
                ),
            ));
        }
        if let Some(g) = self
            .store
            .all::<GroupRow>(Table::SecurityGroups)
            .map_err(db(op))?
            .into_iter()
            .find(|g| {
                g.record.id != id
                    && g.record
                        .rules
                        .iter()
                        .any(|r| r.source == RuleSource::Group(id.to_string()))
            })
        {
            return Err(Error::conflict(
                op,
                res,
                format!(
                    "referenced by a rule of group {}: remove that rule first",
                    g.record.id
                ),
            ));
        }
        if let Some(l) = self
            .store
            .all::<LbRow>(Table::LoadBalancers)
            .map_err(db(op))?
            .into_iter()
            .find(|l| l.record.security_groups.iter().any(|g| g == id))
        {
            return Err(Error::conflict(
                op,
                res,
                format!("in use by load balancer {}: delete it first", l.record.id),
            ));
        }
        self.store
            .delete(Table::SecurityGroups, id)
            .map_err(db(op))?;
        self.refresh_view(op)
    }

    // ------------------------------------------------------------------ floating IPs

    /// Allocates a floating IP from the pool.
    pub async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        let op = Operation::AllocateFloatingIp;
        spec.validate()?;
        if spec.pool != self.cfg.floating_ip_pool {
            return Err(Error::invalid(
                op,
                "spec.pool",
                format!(
                    "unknown floating IP pool {:?}: use {:?}",
                    spec.pool, self.cfg.floating_ip_pool
                ),
            ));
        }
        let _g = self.changes.lock().await;
        if let Some(r) = self.find_by_name::<FipRow>(op, Table::FloatingIps, &spec.name)? {
            return if r.spec == *spec {
                Ok(r.record)
            } else {
                Err(Error::conflict(op, format!("floating IP {} ({})", spec.name, r.record.id), "a floating IP of this name exists with a different spec: release it or choose another name"))
            };
        }
        let used: HashSet<IpAddr> = self
            .store
            .all::<FipRow>(Table::FloatingIps)
            .map_err(db(op))?
            .into_iter()
            .map(|f| f.record.address)
            .collect();
        let address = self
            .pick_address(&self.cfg.floating_ip_network, &used, None)
            .ok_or_else(|| Error::QuotaExceeded {
                operation: op,
                message: format!(
                    "pool {} ({}) has no free address",
                    spec.pool, self.cfg.floating_ip_network
                ),
            })?;
        let record = FloatingIp {
            id: new_id("fip"),
            name: spec.name.clone(),
            address,
            pool: spec.pool.clone(),
            instance_id: None,
            tags: spec.tags.clone(),
        };
        self.store
            .put(
                Table::FloatingIps,
                &record.id,
                &FipRow {
                    spec: spec.clone(),
                    record: record.clone(),
                },
            )
            .map_err(db(op))?;
        Ok(record)
    }

    /// Gets a floating IP.
    pub fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        Ok(self
            .get_row::<FipRow>(
                Operation::GetFloatingIp,
                Table::FloatingIps,
                "floating IP",
                id,
            )?
            .record)
    }

    /// One page of floating IPs.
    pub fn list_floating_ips(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<FloatingIp>> {
        self.page(
            Operation::ListFloatingIps,
            Table::FloatingIps,
            filter,
            after,
            |_, r: FipRow| r.record,
        )
    }

    /// Associates (or moves, or with `None` disassociates) a floating IP.
    pub async fn set_floating_ip_target(
        &self,
        id: &str,
        instance_id: Option<&str>,
    ) -> Result<FloatingIp> {
        let op = if instance_id.is_some() {
            Operation::AssociateFloatingIp
        } else {
            Operation::DisassociateFloatingIp
        };
        let _g = self.changes.lock().await;
        if let Some(iid) = instance_id {
            let _: InstanceRow = self.get_row(op, Table::Instances, "instance", iid)?;
        }
        let mut row: FipRow = self.get_row(op, Table::FloatingIps, "floating IP", id)?;
        if row.record.instance_id.as_deref() == instance_id {
            return Ok(row.record);
        }
        // One floating IP per instance, as on the clouds: a previous one is released from it.
        if let Some(iid) = instance_id {
            for mut other in self
                .store
                .all::<FipRow>(Table::FloatingIps)
                .map_err(db(op))?
            {
                if other.record.id != id && other.record.instance_id.as_deref() == Some(iid) {
                    other.record.instance_id = None;
                    self.store
                        .put(Table::FloatingIps, &other.record.id.clone(), &other)
                        .map_err(db(op))?;
                }
            }
        }
        row.record.instance_id = instance_id.map(str::to_string);
        self.store
            .put(Table::FloatingIps, id, &row)
            .map_err(db(op))?;
        self.refresh_view(op)?;
        Ok(row.record)
    }

    /// Releases a floating IP.
    pub async fn release_floating_ip(&self, id: &str) -> Result<()> {
        let op = Operation::ReleaseFloatingIp;
        let _g = self.changes.lock().await;
        self.store.delete(Table::FloatingIps, id).map_err(db(op))?;
        self.refresh_view(op)
    }

    // ------------------------------------------------------------------ volumes

    fn volume_path(&self, id: &str) -> PathBuf {
        self.cfg.state_dir.join("volumes").join(format!("{id}.img"))
    }

    /// Creates a sparse file of the size asked.
    pub async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        let op = Operation::CreateVolume;
        spec.validate()?;
        self.check_zone(op, "spec.availability_zone", &spec.availability_zone)?;
        let _g = self.changes.lock().await;
        if let Some(r) = self.find_by_name::<VolumeRow>(op, Table::Volumes, &spec.name)? {
            return if r.spec == *spec {
                Ok(r.record)
            } else {
                Err(Error::conflict(op, format!("volume {} ({})", spec.name, r.record.id), "a volume of this name exists with a different spec: delete it or choose another name"))
            };
        }
        let id = new_id("vol");
        let path = self.volume_path(&id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(op, "creating the volumes directory"))?;
        }
        let f = std::fs::File::create(&path).map_err(io_err(op, "creating the volume file"))?;
        // set_len makes a sparse file: the size is there, the blocks are not.
        f.set_len(spec.size_gib * GIB)
            .map_err(io_err(op, "sizing the volume file"))?;
        let record = Volume {
            id: id.clone(),
            name: spec.name.clone(),
            availability_zone: spec.availability_zone.clone(),
            size_gib: spec.size_gib,
            volume_type: spec.volume_type.clone(),
            state: VolumeState::Available,
            attachment: None,
            tags: spec.tags.clone(),
        };
        self.store
            .put(
                Table::Volumes,
                &id,
                &VolumeRow {
                    spec: spec.clone(),
                    record: record.clone(),
                    path,
                },
            )
            .map_err(db(op))?;
        Ok(record)
    }

    /// Gets a volume.
    pub fn get_volume(&self, id: &str) -> Result<Volume> {
        Ok(self
            .get_row::<VolumeRow>(Operation::GetVolume, Table::Volumes, "volume", id)?
            .record)
    }

    /// One page of volumes, with the next token.
    pub fn list_volumes_page(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<Volume>> {
        self.page(
            Operation::ListVolumes,
            Table::Volumes,
            filter,
            after,
            |_, r: VolumeRow| r.record,
        )
    }

    /// Attaches: a link to the file appears in the instance's volumes directory.
    pub async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        let op = Operation::AttachVolume;
        let _g = self.changes.lock().await;
        let inst: InstanceRow = self.get_row(op, Table::Instances, "instance", instance_id)?;
        let mut row: VolumeRow = self.get_row(op, Table::Volumes, "volume", volume_id)?;
        if row.record.availability_zone != inst.record.availability_zone {
            return Err(Error::invalid(op, "instance_id", format!(
                "volume {volume_id} is in {} and instance {instance_id} in {}: attach within one availability zone",
                row.record.availability_zone, inst.record.availability_zone
            )));
        }
        match &row.record.attachment {
            Some(a) if a.instance_id == instance_id => return Ok(row.record),
            Some(a) => {
                return Err(Error::conflict(
                    op,
                    format!("volume {volume_id}"),
                    format!("attached to instance {}: detach it first", a.instance_id),
                ))
            }
            None => {}
        }
        let link = inst.dir.join(files::VOLUMES).join(volume_id);
        std::fs::create_dir_all(inst.dir.join(files::VOLUMES))
            .map_err(io_err(op, "creating the volumes directory"))?;
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&row.path, &link).map_err(io_err(op, "linking the volume"))?;
        row.record.state = VolumeState::InUse;
        row.record.attachment = Some(VolumeAttachment {
            instance_id: instance_id.to_string(),
            device: link.to_string_lossy().into_owned(),
        });
        self.store
            .put(Table::Volumes, volume_id, &row)
            .map_err(db(op))?;
        Ok(row.record)
    }

    /// Detaches: the link goes.
    pub async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        let op = Operation::DetachVolume;
        let _g = self.changes.lock().await;
        let mut row: VolumeRow = self.get_row(op, Table::Volumes, "volume", volume_id)?;
        if let Some(a) = row.record.attachment.take() {
            if let Err(e) = std::fs::remove_file(&a.device) {
                tracing::debug!("removing volume link {}: {e}", a.device);
            }
            row.record.state = VolumeState::Available;
            self.store
                .put(Table::Volumes, volume_id, &row)
                .map_err(db(op))?;
        }
        Ok(row.record)
    }

    /// Deletes the volume and its file; `Conflict` while attached.
    pub async fn delete_volume(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteVolume;
        let _g = self.changes.lock().await;
        let Some(row) = self
            .store
            .get::<VolumeRow>(Table::Volumes, id)
            .map_err(db(op))?
        else {
            return Ok(());
        };
        if let Some(a) = &row.record.attachment {
            return Err(Error::conflict(
                op,
                format!("volume {id}"),
                format!("attached to instance {}: detach it first", a.instance_id),
            ));
        }
        match std::fs::remove_file(&row.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(op, "removing the volume file")(e)),
        }
        self.store.delete(Table::Volumes, id).map_err(db(op))
    }

    // ------------------------------------------------------------------ instances

    /// Starts an instance process and waits until it serves.
    pub async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        let op = Operation::CreateInstance;
        spec.validate()?;
        self.check_zone(op, "spec.availability_zone", &spec.availability_zone)?;
        let Some(image) = Image::by_name(&spec.image) else {
            return Err(Error::invalid(
                op,
                "spec.image",
                format!(
                    "unknown image {:?}: use one of {}",
                    spec.image,
                    catalog::image_names()
                ),
            ));
        };
        if catalog::flavor(&spec.flavor).is_none() {
            return Err(Error::invalid(
                op,
                "spec.flavor",
                format!(
                    "unknown flavor {:?}: use one of {}",
                    spec.flavor,
                    catalog::flavor_names()
                ),
            ));
        }
        let id = {
            let _g = self.changes.lock().await;
            for (i, g) in spec.security_groups.iter().enumerate() {
                if self
                    .store
                    .get::<GroupRow>(Table::SecurityGroups, g)
                    .map_err(db(op))?
                    .is_none()
                {
                    return Err(Error::invalid(
                        op,
                        format!("spec.security_groups[{i}]"),
                        format!("no security group with id {g:?}: create it first"),
                    ));
                }
            }
            match self.find_by_name::<InstanceRow>(op, Table::Instances, &spec.name)? {
                Some(r) if r.spec == *spec => r.record.id,
                Some(r) => {
                    return Err(Error::conflict(op, format!("instance {} ({})", spec.name, r.record.id), "an instance of this name exists with a different spec: delete it or choose another name"));
                }
                None => self.launch(op, spec, image)?,
            }
        };
        self.wait_running(op, &id).await
    }

    fn launch(&self, op: Operation, spec: &InstanceSpec, image: Image) -> Result<String> {
        let used: HashSet<IpAddr> = self
            .store
            .all::<InstanceRow>(Table::Instances)
            .map_err(db(op))?
            .into_iter()
            .filter_map(|i| i.record.private_ip)
            .collect();
        let address = self
            .pick_address(&self.cfg.instance_network, &used, Some(HTTP_IMAGE_PORT))
            .ok_or_else(|| Error::QuotaExceeded {
                operation: op,
                message: format!("no free address in {}", self.cfg.instance_network),
            })?;
        let id = new_id("i");
        let dir = self.cfg.state_dir.join("instances").join(&id);
        std::fs::create_dir_all(dir.join(files::VOLUMES))
            .map_err(io_err(op, "creating the instance directory"))?;
        let boot = InstanceBoot {
            id: id.clone(),
            name: spec.name.clone(),
            availability_zone: spec.availability_zone.clone(),
            address,
            image,
            volumes: Vec::new(),
        };
        let boot_json = serde_json::to_vec_pretty(&boot)
            .map_err(|e| io_err(op, "writing boot.json")(std::io::Error::other(e)))?;
        std::fs::write(dir.join(files::BOOT), boot_json)
            .map_err(io_err(op, "writing boot.json"))?;
        if let Some(u) = &spec.user_data {
            std::fs::write(dir.join(files::USER_DATA), u)
                .map_err(io_err(op, "writing the user data"))?;
        }
        let mut row = InstanceRow {
            spec: spec.clone(),
            record: Instance {
                id: id.clone(),
                name: spec.name.clone(),
                availability_zone: spec.availability_zone.clone(),
                flavor: spec.flavor.clone(),
                image: spec.image.clone(),
                state: InstanceState::Pending,
                private_ip: Some(address),
                public_ip: None,
                security_groups: spec.security_groups.clone(),
                tags: spec.tags.clone(),
            },
            process: None,
            dir: dir.clone(),
        };
        // Record first, so a crash right after the spawn still finds the instance.
        self.store
            .put(Table::Instances, &id, &row)
            .map_err(db(op))?;
        let (pid, mut child) = supervisor::spawn_instance(&self.helper, &dir, &boot)
            .map_err(io_err(op, "starting the instance process"))?;
        // Reap it when it exits, so it never lingers as a zombie of the daemon.
        tokio::spawn(async move {
            let status = child.wait().await;
            tracing::info!(pid = pid.pid, ?status, "instance process exited");
        });
        row.process = Some(pid);
        self.store
            .put(Table::Instances, &id, &row)
            .map_err(db(op))?;
        self.refresh_view(op)?;
        tracing::info!(instance = %id, %address, pid = pid.pid, "instance started");
        Ok(id)
    }

    async fn wait_running(&self, op: Operation, id: &str) -> Result<Instance> {
        let deadline = Instant::now() + self.cfg.timeouts.instance;
        loop {
            let row: InstanceRow = self.get_row(op, Table::Instances, "instance", id)?;
            match row.record.state {
                InstanceState::Pending => {}
                _ => return self.get_instance_op(op, id),
            }
            let alive = row.process.is_some_and(|p| p.alive());
            if row.dir.join(files::READY).exists() && alive {
                let _g = self.changes.lock().await;
                if let Some(mut r) = self
                    .store
                    .get::<InstanceRow>(Table::Instances, id)
                    .map_err(db(op))?
                {
                    if r.record.state == InstanceState::Pending {
                        r.record.state = InstanceState::Running;
                        self.store.put(Table::Instances, id, &r).map_err(db(op))?;
                    }
                }
                drop(_g);
                return self.get_instance_op(op, id);
            }
            if row.process.is_some() && !alive {
                let console =
                    std::fs::read_to_string(row.dir.join(files::CONSOLE)).unwrap_or_default();
                let tail: String = console
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ");
                let _g = self.changes.lock().await;
                if let Some(mut r) = self
                    .store
                    .get::<InstanceRow>(Table::Instances, id)
                    .map_err(db(op))?
                {
                    r.record.state = InstanceState::Failed;
                    self.store.put(Table::Instances, id, &r).map_err(db(op))?;
                }
                return Err(Error::Api {
                    operation: op,
                    status: None,
                    code: "instance_failed".into(),
                    message: format!("instance {id} exited while booting: {tail}"),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    operation: op,
                    resource: format!("instance {id}"),
                    wanted: "running".into(),
                    last_state: "pending".into(),
                    waited: self.cfg.timeouts.instance,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn get_instance_op(&self, op: Operation, id: &str) -> Result<Instance> {
        let row: InstanceRow = self.get_row(op, Table::Instances, "instance", id)?;
        let fips = self
            .store
            .all::<FipRow>(Table::FloatingIps)
            .map_err(db(op))?;
        Ok(self.instance_view(row, &fips))
    }

    /// Gets an instance (a dead process shows as `Failed`).
    pub fn get_instance(&self, id: &str) -> Result<Instance> {
        self.get_instance_op(Operation::GetInstance, id)
    }

    /// One page of instances.
    pub fn list_instances(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<Instance>> {
        let op = Operation::ListInstances;
        let fips = self
            .store
            .all::<FipRow>(Table::FloatingIps)
            .map_err(db(op))?;
        self.page(op, Table::Instances, filter, after, |c, r: InstanceRow| {
            c.instance_view(r, &fips)
        })
    }

    /// Stops the process group and removes the instance; `Conflict` while a volume is
    /// attached. Its floating IP is disassociated.
    pub async fn delete_instance(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteInstance;
        let row = {
            let _g = self.changes.lock().await;
            let Some(mut row) = self
                .store
                .get::<InstanceRow>(Table::Instances, id)
                .map_err(db(op))?
            else {
                return Ok(());
            };
            if let Some(v) = self
                .store
                .all::<VolumeRow>(Table::Volumes)
                .map_err(db(op))?
                .into_iter()
                .find(|v| {
                    v.record
                        .attachment
                        .as_ref()
                        .is_some_and(|a| a.instance_id == id)
                })
            {
                return Err(Error::conflict(
                    op,
                    format!("instance {id}"),
                    format!(
                        "volume {} is attached: detach it first so it is not lost",
                        v.record.id
                    ),
                ));
            }
            for mut f in self
                .store
                .all::<FipRow>(Table::FloatingIps)
                .map_err(db(op))?
            {
                if f.record.instance_id.as_deref() == Some(id) {
                    f.record.instance_id = None;
                    self.store
                        .put(Table::FloatingIps, &f.record.id.clone(), &f)
                        .map_err(db(op))?;
                }
            }
            row.record.state = InstanceState::Deleting;
            self.store.put(Table::Instances, id, &row).map_err(db(op))?;
            self.refresh_view(op)?;
            row
        };
        if let Some(p) = row.process {
            p.stop_group(STOP_GRACE).await;
        }
        let _g = self.changes.lock().await;
        if let Err(e) = std::fs::remove_dir_all(&row.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %row.dir.display(), "removing instance directory: {e}");
            }
        }
        self.store.delete(Table::Instances, id).map_err(db(op))?;
        self.refresh_view(op)
    }

    // ------------------------------------------------------------------ load balancers

    /// Starts a load balancer's listeners on a fresh address.
    pub async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        let op = Operation::CreateLoadBalancer;
        spec.validate()?;
        let _g = self.changes.lock().await;
        for (i, g) in spec.security_groups.iter().enumerate() {
            if self
                .store
                .get::<GroupRow>(Table::SecurityGroups, g)
                .map_err(db(op))?
                .is_none()
            {
                return Err(Error::invalid(
                    op,
                    format!("spec.security_groups[{i}]"),
                    format!("no security group with id {g:?}: create it first"),
                ));
            }
        }
        for (i, l) in spec.listeners.iter().enumerate() {
            for (j, m) in l.members.iter().enumerate() {
                if self
                    .store
                    .get::<InstanceRow>(Table::Instances, &m.instance_id)
                    .map_err(db(op))?
                    .is_none()
                {
                    return Err(Error::invalid(
                        op,
                        format!("spec.listeners[{i}].members[{j}].instance_id"),
                        format!("no instance with id {:?}", m.instance_id),
                    ));
                }
            }
        }
        if let Some(r) = self.find_by_name::<LbRow>(op, Table::LoadBalancers, &spec.name)? {
            return if r.spec == *spec {
                Ok(self.lb_view(r))
            } else {
                Err(Error::conflict(op, format!("load balancer {} ({})", spec.name, r.record.id), "a load balancer of this name exists with a different spec: delete it or choose another name"))
            };
        }
        let id = new_id("lb");
        let record = LoadBalancer {
            id: id.clone(),
            name: spec.name.clone(),
            state: LoadBalancerState::Active,
            address: None,
            security_groups: spec.security_groups.clone(),
            listeners: spec
                .listeners
                .iter()
                .map(|l| Listener {
                    protocol: l.protocol,
                    port: l.port,
                    pool: Pool {
                        health_check: l.health_check.clone(),
                        members: dedup_members(&l.members)
                            .into_iter()
                            .map(|m| Member {
                                instance_id: m.instance_id,
                                port: m.port,
                                health: MemberHealth::Unknown,
                            })
                            .collect(),
                    },
                })
                .collect(),
            tags: spec.tags.clone(),
        };
        let plans = plans_of(&record);
        let mut used: HashSet<IpAddr> = self
            .store
            .all::<LbRow>(Table::LoadBalancers)
            .map_err(db(op))?
            .into_iter()
            .map(|l| l.address)
            .collect();
        let mut started = None;
        for _ in 0..20 {
            let Some(addr) = self.pick_address(&self.cfg.load_balancer_network, &used, None) else {
                break;
            };
            used.insert(addr);
            match LbRuntime::start(&id, addr, &plans, &self.view) {
                Ok(rt) => {
                    started = Some((addr, rt));
                    break;
                }
                Err(e) => tracing::info!(%addr, "load balancer address busy, trying another: {e}"),
            }
        }
        let Some((address, rt)) = started else {
            return Err(Error::QuotaExceeded {
                operation: op,
                message: format!("no free address in {}", self.cfg.load_balancer_network),
            });
        };
        let mut record = record;
        record.address = Some(address.to_string());
        let row = LbRow {
            spec: spec.clone(),
            record,
            address,
        };
        self.store
            .put(Table::LoadBalancers, &id, &row)
            .map_err(db(op))?;
        lock(&self.lbs).insert(id.clone(), rt);
        self.refresh_view(op)?;
        tracing::info!(lb = %id, %address, "load balancer started");
        Ok(self.lb_view(row))
    }

    /// Gets a load balancer with its members' health.
    pub fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        let op = Operation::GetLoadBalancer;
        Ok(self.lb_view(self.get_row(op, Table::LoadBalancers, "load balancer", id)?))
    }

    /// One page of load balancers.
    pub fn list_load_balancers(
        &self,
        filter: &TagFilter,
        after: Option<&str>,
    ) -> Result<Page<LoadBalancer>> {
        self.page(
            Operation::ListLoadBalancers,
            Table::LoadBalancers,
            filter,
            after,
            |c, r: LbRow| c.lb_view(r),
        )
    }

    /// Adds a member, or removes one after draining it.
    pub async fn change_member(
        &self,
        lb_id: &str,
        port: u16,
        member: &MemberSpec,
        add: bool,
    ) -> Result<LoadBalancer> {
        let op = if add {
            Operation::AddLoadBalancerMember
        } else {
            Operation::RemoveLoadBalancerMember
        };
        member.validate(op)?;
        let drained = {
            let _g = self.changes.lock().await;
            let mut row: LbRow = self.get_row(op, Table::LoadBalancers, "load balancer", lb_id)?;
            if add
                && self
                    .store
                    .get::<InstanceRow>(Table::Instances, &member.instance_id)
                    .map_err(db(op))?
                    .is_none()
            {
                return Err(Error::invalid(
                    op,
                    "member.instance_id",
                    format!("no instance with id {:?}", member.instance_id),
                ));
            }
            let listener = row
                .record
                .listeners
                .iter_mut()
                .find(|l| l.port == port)
                .ok_or_else(|| {
                    Error::invalid(
                        op,
                        "listener_port",
                        format!("load balancer {lb_id} has no listener on port {port}"),
                    )
                })?;
            let present = listener
                .pool
                .members
                .iter()
                .any(|m| m.instance_id == member.instance_id && m.port == member.port);
            if add && !present {
                listener.pool.members.push(Member {
                    instance_id: member.instance_id.clone(),
                    port: member.port,
                    health: MemberHealth::Unknown,
                });
            } else if !add && present {
                listener
                    .pool
                    .members
                    .retain(|m| !(m.instance_id == member.instance_id && m.port == member.port));
            }
            if add != present {
                self.store
                    .put(Table::LoadBalancers, lb_id, &row)
                    .map_err(db(op))?;
            }
            let lbs = lock(&self.lbs);
            match lbs.get(lb_id) {
                Some(rt) if add => {
                    rt.add_member(port, member);
                    None
                }
                Some(rt) => Some(rt.remove_member(port, member, self.cfg.drain_timeout)),
                None => None,
            }
        };
        // Drain outside the lock: other calls go on while connections finish.
        if let Some(d) = drained {
            d.await;
        }
        self.get_load_balancer(lb_id)
    }

    /// Stops the proxies and removes the load balancer.
    pub async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        let op = Operation::DeleteLoadBalancer;
        let _g = self.changes.lock().await;
        lock(&self.lbs).remove(id);
        self.store
            .delete(Table::LoadBalancers, id)
            .map_err(db(op))?;
        self.refresh_view(op)
    }

    /// Deletes everything, in dependency order (for tests and `destroy_all`).
    pub async fn destroy_all(&self) -> Result<()> {
        let op = Operation::DeleteInstance;
        for l in self
            .store
            .all::<LbRow>(Table::LoadBalancers)
            .map_err(db(op))?
        {
            self.delete_load_balancer(&l.record.id).await?;
        }
        for f in self
            .store
            .all::<FipRow>(Table::FloatingIps)
            .map_err(db(op))?
        {
            self.release_floating_ip(&f.record.id).await?;
        }
        for v in self
            .store
            .all::<VolumeRow>(Table::Volumes)
            .map_err(db(op))?
        {
            self.detach_volume(&v.record.id).await?;
            self.delete_volume(&v.record.id).await?;
        }
        for i in self
            .store
            .all::<InstanceRow>(Table::Instances)
            .map_err(db(op))?
        {
            self.delete_instance(&i.record.id).await?;
        }
        let groups = self
            .store
            .all::<GroupRow>(Table::SecurityGroups)
            .map_err(db(op))?;
        for g in &groups {
            for r in g
                .record
                .rules
                .iter()
                .filter(|r| matches!(r.source, RuleSource::Group(_)))
            {
                self.change_rule(&g.record.id, r, false).await?;
            }
        }
        for g in &groups {
            self.delete_security_group(&g.record.id).await?;
        }
        Ok(())
    }

    /// Stops the process group of every instance (when the state dir vanished).
    pub async fn kill_all_instances(&self) {
        if let Ok(rows) = self.store.all::<InstanceRow>(Table::Instances) {
            for r in rows {
                if let Some(p) = r.process {
                    p.stop_group(Duration::from_secs(2)).await;
                }
            }
        }
    }
}

fn dedup_members(ms: &[MemberSpec]) -> Vec<MemberSpec> {
    let mut seen = BTreeSet::new();
    ms.iter()
        .filter(|m| seen.insert((m.instance_id.clone(), m.port)))
        .cloned()
        .collect()
}

fn plans_of(lb: &LoadBalancer) -> Vec<ListenerPlan> {
    lb.listeners
        .iter()
        .map(|l| ListenerPlan {
            port: l.port,
            health_check: l.pool.health_check.clone(),
            members: l
                .pool
                .members
                .iter()
                .map(|m| MemberSpec {
                    instance_id: m.instance_id.clone(),
                    port: m.port,
                })
                .collect(),
        })
        .collect()
}
