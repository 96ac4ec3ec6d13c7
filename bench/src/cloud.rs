//! The simulated cloud: provider-core's memory provider behind its layers.
//!
//! ```text
//! Cluster (adds Retry) -> [RateLimit] -> Instrumented -> FaultInjecting -> memory
//! ```
//!
//! The memory provider settles every transition at once; [`FaultInjecting`] gives each
//! call the fixed latency and each instance create the boot time of [`Costs`];
//! [`Instrumented`] counts the calls that reach the cloud; [`RateLimit`] (for the
//! rate-limited scenario) spaces them as a client-side limit does. No fault is
//! injected, so nothing is retried.

use std::sync::Arc;
use std::time::Duration;

use provider_core::layer::{FaultInjecting, FaultPlan, Instrumented, Layered, RateLimit};
use provider_core::memory::{MemoryConfig, MemoryProvider};
use provider_core::Provider;

use crate::model::Costs;

/// The memory provider's default AZs, which the specs use.
pub const ZONES: [&str; 3] = ["az-1", "az-2", "az-3"];

/// A spec for the memory provider's catalog (the keys of `examples/local.properties`):
/// `masters` + `nodes` + `storage` nodes over [`ZONES`], a volume per storage node, a
/// floating IP per master, the API and ingress load balancers.
pub fn spec_text(name: &str, masters: usize, nodes: usize, storage: usize) -> String {
    format!(
        "Provider = local\nClusterName = {name}\nMasterCount = {masters}\nNodeCount = {nodes}\n\
         GlusterNodeCount = {storage}\nGlusterVolumeSize = 2\n\
         Local.AvailabilityZones = {}\nLocal.Image = linux\nLocal.FloatingIPPool = public\n\
         Local.JumpboxCIDR = 10.1.1.4/32\nLocal.LoadBalancerCIDR = 10.1.1.0/24\n",
        ZONES.join(",")
    )
}

/// A simulated cloud and its call counter.
#[derive(Debug, Clone)]
pub struct SimCloud {
    /// What the cluster is given.
    pub provider: Arc<dyn Provider>,
    /// Counts every call that reaches the cloud (below the rate limit).
    pub metrics: Instrumented,
}

/// A fresh cloud with `costs`, and a client-side rate limit when `rate` is given.
pub fn sim_cloud(costs: &Costs, rate: Option<RateLimit>) -> SimCloud {
    let memory = MemoryProvider::new(MemoryConfig {
        transition: Duration::ZERO,
        ..MemoryConfig::default()
    });
    let faults = FaultInjecting::new(FaultPlan::timed(0, costs.latency, costs.boot));
    let metrics = Instrumented::new();
    let p: Arc<dyn Provider> = Arc::new(Layered::new(Arc::new(memory), faults));
    let mut p: Arc<dyn Provider> = Arc::new(Layered::new(p, metrics.clone()));
    if let Some(rate) = rate {
        p = Arc::new(Layered::new(p, rate));
    }
    SimCloud {
        provider: p,
        metrics,
    }
}
