//! Helpers of the rolling-replacement and crash tests: a seeded memory cloud, fast
//! options, and a snapshot of everything the cloud holds by name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cluster::execute::ExecuteOptions;
use cluster::plan::TAG_CLUSTER;
use cluster::replace::ReplaceOptions;
use cluster::{Cluster, ClusterSpec, LeaseOptions};
use provider_core::layer::Retry;
use provider_core::memory::{MemoryConfig, MemoryProvider};
use provider_core::wait::{Poller, Timeouts};
use provider_core::ProviderExt;
use provider_core::{Provider, TagFilter};

pub fn spec(name: &str, masters: usize, nodes: usize, storage: usize) -> ClusterSpec {
    let text = format!(
        "Provider = local\nClusterName = {name}\nMasterCount = {masters}\nNodeCount = {nodes}\n\
         GlusterNodeCount = {storage}\nGlusterVolumeSize = 2\n\
         Local.AvailabilityZones = az-1,az-2,az-3\nLocal.Image = linux\nLocal.FloatingIPPool = public\n\
         Local.JumpboxCIDR = 10.1.1.4/32\nLocal.LoadBalancerCIDR = 10.1.1.0/24\n"
    );
    ClusterSpec::parse("test.properties", &text).unwrap()
}

pub fn memory() -> Arc<MemoryProvider> {
    Arc::new(MemoryProvider::new(MemoryConfig {
        transition: Duration::from_millis(1),
        poller: Poller::new(Duration::from_millis(1), Duration::from_millis(5)),
        timeouts: Timeouts::all(Duration::from_secs(30)),
        ..MemoryConfig::default()
    }))
}

pub fn cluster(spec: ClusterSpec, p: Arc<dyn Provider>) -> Cluster {
    Cluster::new(spec, p).with_options(ExecuteOptions {
        concurrency: 4,
        retry: Retry::fast(4),
        lease: LeaseOptions {
            settle: Duration::ZERO,
            ..LeaseOptions::default()
        },
        ..ExecuteOptions::default()
    })
}

pub fn quick() -> ReplaceOptions {
    ReplaceOptions {
        ready_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(5),
        drain: Duration::ZERO,
        ..ReplaceOptions::default()
    }
}

pub type TagMap = BTreeMap<String, String>;

/// Everything the provider has, by name, without ids (they differ between runs):
/// AZs, tags, what a volume or address is attached to, and LB members, by name.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub groups: BTreeMap<String, TagMap>,
    pub instances: BTreeMap<String, (String, TagMap)>,
    pub volumes: BTreeMap<String, (String, Option<String>, TagMap)>,
    pub fips: BTreeMap<String, (Option<String>, TagMap)>,
    pub lbs: BTreeMap<String, (BTreeSet<String>, TagMap)>,
}

pub async fn snapshot(p: &dyn Provider) -> Snapshot {
    let all = TagFilter::all();
    let groups = p.list_security_groups(&all).await.unwrap();
    let instances = p.list_instances(&all).await.unwrap();
    let volumes = p.list_volumes(&all).await.unwrap();
    let fips = p.list_floating_ips(&all).await.unwrap();
    let lbs = p.list_load_balancers(&all).await.unwrap();
    let name_of = |id: &str| {
        instances
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| format!("missing instance {id}"))
    };
    // No orphans: everything listed without a filter carries its owner.
    for tags in groups
        .iter()
        .map(|g| &g.tags)
        .chain(instances.iter().map(|i| &i.tags))
        .chain(volumes.iter().map(|v| &v.tags))
        .chain(fips.iter().map(|f| &f.tags))
        .chain(lbs.iter().map(|l| &l.tags))
    {
        assert!(
            tags.contains_key(TAG_CLUSTER),
            "resource without owner: {tags:?}"
        );
    }
    let s = Snapshot {
        groups: groups
            .iter()
            .map(|g| (g.name.clone(), g.tags.clone()))
            .collect(),
        instances: instances
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    (i.availability_zone.clone(), i.tags.clone()),
                )
            })
            .collect(),
        volumes: volumes
            .iter()
            .map(|v| {
                (
                    v.name.clone(),
                    (
                        v.availability_zone.clone(),
                        v.attachment.as_ref().map(|a| name_of(&a.instance_id)),
                        v.tags.clone(),
                    ),
                )
            })
            .collect(),
        fips: fips
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    (f.instance_id.as_deref().map(name_of), f.tags.clone()),
                )
            })
            .collect(),
        lbs: lbs
            .iter()
            .map(|l| {
                let members = l
                    .listeners
                    .iter()
                    .flat_map(|x| x.pool.members.iter())
                    .map(|m| name_of(&m.instance_id))
                    .collect();
                (l.name.clone(), (members, l.tags.clone()))
            })
            .collect(),
    };
    // Same counts per kind as the lists (names are unique: nothing duplicated).
    assert_eq!(s.groups.len(), groups.len());
    assert_eq!(s.instances.len(), instances.len());
    assert_eq!(s.volumes.len(), volumes.len());
    assert_eq!(s.fips.len(), fips.len());
    assert_eq!(s.lbs.len(), lbs.len());
    s
}

/// What [`Watch`] saw after each mutating call.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    /// Most instances at once.
    pub most_instances: usize,
    /// Most slots of each role not serving at once (not running; for masters and
    /// nodes also out of every LB pool; for storage nodes also without their volume).
    pub most_down: BTreeMap<String, usize>,
    /// Fewest running masters at once.
    pub fewest_masters: Option<usize>,
    /// Creates refused for quota.
    pub refused: usize,
}

/// A layer over a memory provider that plays a full project and watches the run: with a
/// `limit`, creating an instance while `limit` exist fails with `QuotaExceeded` (as a
/// project's quota would); after every mutating call it samples the cloud.
#[derive(Debug)]
pub struct Watch {
    memory: Arc<MemoryProvider>,
    limit: Option<usize>,
    /// Slots per role the cluster should have.
    slots: BTreeMap<String, usize>,
    samples: std::sync::Mutex<Samples>,
}

impl Watch {
    pub fn new(memory: Arc<MemoryProvider>, limit: Option<usize>, slots: &[(&str, usize)]) -> Self {
        Self {
            memory,
            limit,
            slots: slots.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            samples: Default::default(),
        }
    }

    pub fn samples(&self) -> Samples {
        self.samples.lock().unwrap().clone()
    }

    async fn sample(&self) {
        let all = TagFilter::all();
        let instances = self.memory.list_instances(&all).await.unwrap();
        let volumes = self.memory.list_volumes(&all).await.unwrap();
        let lbs = self.memory.list_load_balancers(&all).await.unwrap();
        let in_lb = |id: &str| {
            lbs.iter().any(|lb| {
                lb.listeners
                    .iter()
                    .any(|l| l.pool.members.iter().any(|m| m.instance_id == id))
            })
        };
        let mut up: BTreeMap<String, usize> = BTreeMap::new();
        let mut masters = 0;
        for i in &instances {
            let Some(role) = i.tags.get(cluster::plan::TAG_ROLE) else {
                continue;
            };
            if i.state != provider_core::InstanceState::Running {
                continue;
            }
            if role == "master" {
                masters += 1;
            }
            let serving = match role.as_str() {
                "storage" => volumes
                    .iter()
                    .any(|v| v.attachment.as_ref().is_some_and(|a| a.instance_id == i.id)),
                _ => in_lb(&i.id),
            };
            if serving {
                *up.entry(role.clone()).or_default() += 1;
            }
        }
        let mut s = self.samples.lock().unwrap();
        s.most_instances = s.most_instances.max(instances.len());
        for (role, n) in &self.slots {
            let down = n.saturating_sub(up.get(role).copied().unwrap_or(0));
            let e = s.most_down.entry(role.clone()).or_default();
            *e = (*e).max(down);
        }
        s.fewest_masters = Some(s.fewest_masters.map_or(masters, |f| f.min(masters)));
    }
}

#[async_trait::async_trait]
impl provider_core::layer::Layer for Watch {
    async fn call<T, F, Fut>(
        &self,
        op: provider_core::Operation,
        mut f: F,
    ) -> provider_core::Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = provider_core::Result<T>> + Send,
    {
        use provider_core::Operation as O;
        if let (Some(limit), O::CreateInstance | O::CreateInstances) = (self.limit, op) {
            let have = self.memory.list_instances(&TagFilter::all()).await?.len();
            if have >= limit {
                self.samples.lock().unwrap().refused += 1;
                return Err(provider_core::Error::QuotaExceeded {
                    operation: op,
                    message: format!("instances: {have} of {limit} in use"),
                });
            }
        }
        let s = op.as_str();
        let mutating = !(s.starts_with("get_") || s.starts_with("list_"));
        let r = f().await;
        if mutating {
            self.sample().await;
        }
        r
    }
}

/// `memory` behind a [`Watch`].
pub fn watched(memory: &Arc<MemoryProvider>, watch: Arc<Watch>) -> Arc<dyn Provider> {
    Arc::new(provider_core::layer::Layered::new(
        memory.clone(),
        ArcLayer(watch),
    ))
}

/// A shared layer.
#[derive(Debug)]
pub struct ArcLayer<L>(pub Arc<L>);

#[async_trait::async_trait]
impl<L: provider_core::layer::Layer> provider_core::layer::Layer for ArcLayer<L> {
    async fn call<T, F, Fut>(&self, op: provider_core::Operation, f: F) -> provider_core::Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = provider_core::Result<T>> + Send,
    {
        self.0.call(op, f).await
    }
}
