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
//! use provider_core::{VolumeSpec, Volumes};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cloud = MemoryProvider::default();
//! let v = cloud
//!     .create_volume(&VolumeSpec::new("data-0", "az-1", 10))
//!     .await
//!     .unwrap();
//! assert_eq!(v.state, provider_core::VolumeState::Available);
//! # });
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

mod floating_ips;
mod instances;
mod load_balancers;
mod security_groups;
mod state;
#[cfg(test)]
mod tests;
mod volumes;

use crate::model::*;
use crate::wait::{Poll, Poller, Timeouts};
use crate::{
    Capabilities, Error, FloatingIps, Instances, LoadBalancers, Operation, Provider, Result,
    SecurityGroups, Volumes,
};
use state::{State, Until};

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
    /// Most instances the project may have (`None`: no limit): a create beyond it is
    /// `QuotaExceeded`, and the preflight reports a demand that does not fit.
    pub max_instances: Option<usize>,
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
            max_instances: None,
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
}

#[async_trait]
impl Provider for MemoryProvider {
    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.config.page_size)
            .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
            .with_group_sources(true)
            // Tags live in one database: a write is seen by every later read.
            .with_tags_read_after_write(true)
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

    /// Checks zones, images, flavors and the floating IP pool against its catalog, and
    /// the new instances against [`MemoryConfig::max_instances`]; it has no networks,
    /// subnets or keypairs to check.
    async fn preflight(&self, refs: &References) -> Result<Vec<Problem>> {
        let c = &self.config;
        let offered = self.list_availability_zones().await?;
        let mut problems = refs.check_zones(&offered);
        for (refs, catalog, what) in [
            (&refs.images, &c.images, "image"),
            (&refs.flavors, &c.flavors, "flavor"),
        ] {
            for r in refs.iter().filter(|r| !catalog.contains(&r.value)) {
                problems.push(Problem::not_found(r, what, &names(catalog)));
            }
        }
        let pools = refs
            .floating_ip_pool
            .iter()
            .chain(&refs.floating_ip_pool_aliases);
        for r in pools.filter(|r| !c.floating_ip_pools.contains(&r.value)) {
            problems.push(Problem::not_found(
                r,
                "floating IP pool",
                &names(&c.floating_ip_pools),
            ));
        }
        if let Some(max) = c.max_instances {
            let used = self
                .lock()
                .instances
                .values()
                .filter(|r| r.deleting.is_none())
                .count();
            let needed = refs.demand.instance_count();
            if used + needed > max {
                problems.push(Problem::quota(
                    "instances",
                    needed as u64,
                    used as u64,
                    max as u64,
                ));
            }
        }
        Ok(problems)
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

    fn security_groups(&self) -> Option<&dyn SecurityGroups> {
        Some(self)
    }

    fn instances(&self) -> Option<&dyn Instances> {
        Some(self)
    }

    fn volumes(&self) -> Option<&dyn Volumes> {
        Some(self)
    }

    fn floating_ips(&self) -> Option<&dyn FloatingIps> {
        Some(self)
    }

    fn load_balancers(&self) -> Option<&dyn LoadBalancers> {
        Some(self)
    }
}

/// The names in `list`, borrowed.
fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}
