//! Shared helpers of the cluster tests: specs for the memory provider.
#![allow(dead_code)]

pub mod rolling;

use std::sync::Arc;

use cluster::execute::ExecuteOptions;
use cluster::{Cluster, ClusterSpec, LeaseOptions};
use provider_core::layer::{Instrumented, Layered, Retry};
use provider_core::memory::MemoryProvider;
use provider_core::Provider;

/// A local-provider spec that fits the memory provider's catalog.
pub fn memory_spec_text(name: &str, masters: usize, nodes: usize, storage: usize) -> String {
    format!(
        "Provider = local\nClusterName = {name}\nMasterCount = {masters}\nNodeCount = {nodes}\n\
         GlusterNodeCount = {storage}\nGlusterVolumeSize = 2\n\
         Local.AvailabilityZones = az-1,az-2,az-3\nLocal.Image = linux\nLocal.FloatingIPPool = public\n\
         Local.JumpboxCIDR = 10.1.1.4/32\nLocal.LoadBalancerCIDR = 10.1.1.0/24\n"
    )
}

pub fn memory_spec(name: &str, masters: usize, nodes: usize, storage: usize) -> ClusterSpec {
    ClusterSpec::parse(
        "test.properties",
        &memory_spec_text(name, masters, nodes, storage),
    )
    .expect("test spec is valid")
}

/// The default lease without the race-detection pause (one operator per test).
pub fn quick_lease() -> LeaseOptions {
    LeaseOptions {
        settle: std::time::Duration::ZERO,
        ..LeaseOptions::default()
    }
}

/// Fast retries and a little concurrency.
pub fn options() -> ExecuteOptions {
    ExecuteOptions {
        concurrency: 4,
        retry: Retry::fast(6),
        lease: quick_lease(),
        ..ExecuteOptions::default()
    }
}

/// A memory provider, counted.
pub fn counted() -> (Arc<MemoryProvider>, Instrumented, Arc<dyn Provider>) {
    let memory = Arc::new(MemoryProvider::default());
    let metrics = Instrumented::new();
    let p: Arc<dyn Provider> = Arc::new(Layered::new(memory.clone(), metrics.clone()));
    (memory, metrics, p)
}

pub fn cluster(spec: ClusterSpec, p: Arc<dyn Provider>) -> Cluster {
    Cluster::new(spec, p).with_options(options())
}
