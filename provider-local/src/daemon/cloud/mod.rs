//! The cloud itself: every operation of the contract, run by the daemon against the
//! store and the running processes, forwarders and load balancers. One file per family;
//! here the cloud's state, the helpers they share, zones and tags, and teardown.

mod floating_ips;
mod instances;
mod load_balancers;
mod security_groups;
mod volumes;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ipnet::IpNet;
use provider_core::{
    AvailabilityZone, Error, Instance, InstanceState, LoadBalancer, LoadBalancerState, Operation,
    Problem, References, ResourceKind, Result, RuleSource, TagFilter, Tags, MAX_TAG_KEY_LEN,
    MAX_TAG_VALUE_LEN,
};

use super::rows::{FipRow, GroupRow, InstanceRow, LbRow, Row, VolumeRow};
use crate::acl::{InstanceNet, NetView, SharedView};
use crate::catalog::Image;
use crate::config::LocalConfig;
use crate::forwarder::Forwarder;
use crate::lb::LbRuntime;
use crate::locate::HelperCommand;
use crate::protocol::Page;
use crate::store::{Store, StoreError, Table};

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
    // The message keeps the cause's text: the source stays in the daemon, the message
    // crosses the socket.
    move |e| Error::api(op, None, "local_io", format!("{what}: {e}")).with_source(e)
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
            let plans = load_balancers::plans_of(&row.record);
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
    pub async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        Ok(self
            .cfg
            .availability_zones
            .iter()
            .map(|z| AvailabilityZone {
                name: z.clone(),
                available: true,
            })
            .collect())
    }

    /// Checks zones, images, flavors and the floating IP pool against the configuration
    /// and the catalog. A local cloud has no networks, keypairs or quotas to check.
    pub async fn preflight(&self, refs: &References) -> Result<Vec<Problem>> {
        let mut problems = refs.check_zones(&self.list_availability_zones().await?);
        let images: Vec<&str> = Image::ALL.iter().map(|(n, _)| *n).collect();
        for r in refs
            .images
            .iter()
            .filter(|r| Image::by_name(&r.value).is_none())
        {
            problems.push(Problem::not_found(r, "image", &images));
        }
        let flavors: Vec<&str> = crate::catalog::FLAVORS.iter().map(|f| f.name).collect();
        for r in refs
            .flavors
            .iter()
            .filter(|r| crate::catalog::flavor(&r.value).is_none())
        {
            problems.push(Problem::not_found(r, "flavor", &flavors));
        }
        let pool = self.cfg.floating_ip_pool.as_str();
        let pools = refs
            .floating_ip_pool
            .iter()
            .chain(&refs.floating_ip_pool_aliases);
        for r in pools.filter(|r| r.value != pool) {
            problems.push(Problem::not_found(r, "floating IP pool", &[pool]));
        }
        Ok(problems)
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
            self.disassociate_floating_ip(&f.record.id).await?;
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
                self.remove_security_group_rule(&g.record.id, r).await?;
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
