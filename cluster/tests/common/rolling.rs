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
