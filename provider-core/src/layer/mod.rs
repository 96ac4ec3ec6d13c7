//! Layers: behaviour wrapped around any provider, as OpenDAL's layers and
//! object_store's wrappers are, instead of code repeated in every backend.
//!
//! A [`Layer`] sees each call as an [`Operation`] and a closure that performs it (and can
//! perform it again, for retries). [`Layered`] applies a layer to every method of a
//! provider. Stack them by wrapping `Arc<dyn Provider>`s:
//!
//! ```
//! use std::sync::Arc;
//! use provider_core::layer::{Instrumented, Layered, RateLimit, Retry};
//! use provider_core::memory::MemoryProvider;
//! use provider_core::Provider;
//!
//! let metrics = Instrumented::new();
//! let base: Arc<dyn Provider> = Arc::new(MemoryProvider::default());
//! let p: Arc<dyn Provider> = Arc::new(Layered::new(base, metrics.clone()));
//! let p: Arc<dyn Provider> = Arc::new(Layered::new(p, Retry::default()));
//! let p: Arc<dyn Provider> = Arc::new(Layered::new(p, RateLimit::per_second(20)));
//! assert_eq!(p.name(), "memory");
//! ```

mod fault_injecting;
mod instrumented;
mod rate_limit;
mod retry;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

pub use fault_injecting::{Fault, FaultInjecting, FaultPlan};
pub use instrumented::{Instrumented, OperationStats, Snapshot};
pub use rate_limit::RateLimit;
pub use retry::Retry;

use crate::model::*;
use crate::{Capabilities, Operation, Provider, Result};

/// Behaviour around every provider call.
#[async_trait]
pub trait Layer: Send + Sync + std::fmt::Debug {
    /// Runs the call `f` for `op`, as often as the layer decides (at least zero times).
    async fn call<T, F, Fut>(&self, op: Operation, f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send;
}

/// A provider with a layer around every call.
#[derive(Debug)]
pub struct Layered<L> {
    inner: Arc<dyn Provider>,
    layer: L,
}

impl<L: Layer> Layered<L> {
    /// Wraps `inner` in `layer`.
    pub fn new(inner: Arc<dyn Provider>, layer: L) -> Self {
        Self { inner, layer }
    }

    /// The layer, e.g. to read an [`Instrumented`] snapshot.
    pub fn layer(&self) -> &L {
        &self.layer
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &Arc<dyn Provider> {
        &self.inner
    }
}

#[async_trait]
impl<L: Layer> Provider for Layered<L> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        self.layer
            .call(Operation::ListAvailabilityZones, || {
                self.inner.list_availability_zones()
            })
            .await
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        self.layer
            .call(Operation::UpdateTags, || {
                self.inner.update_tags(kind, id, set, remove)
            })
            .await
    }

    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup> {
        self.layer
            .call(Operation::CreateSecurityGroup, || {
                self.inner.create_security_group(spec)
            })
            .await
    }

    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup> {
        self.layer
            .call(Operation::GetSecurityGroup, || {
                self.inner.get_security_group(id)
            })
            .await
    }

    async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>> {
        self.layer
            .call(Operation::ListSecurityGroups, || {
                self.inner.list_security_groups(filter)
            })
            .await
    }

    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        self.layer
            .call(Operation::AddSecurityGroupRule, || {
                self.inner.add_security_group_rule(group_id, rule)
            })
            .await
    }

    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()> {
        self.layer
            .call(Operation::RemoveSecurityGroupRule, || {
                self.inner.remove_security_group_rule(group_id, rule)
            })
            .await
    }

    async fn delete_security_group(&self, id: &str) -> Result<()> {
        self.layer
            .call(Operation::DeleteSecurityGroup, || {
                self.inner.delete_security_group(id)
            })
            .await
    }

    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp> {
        self.layer
            .call(Operation::AllocateFloatingIp, || {
                self.inner.allocate_floating_ip(spec)
            })
            .await
    }

    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.layer
            .call(Operation::GetFloatingIp, || self.inner.get_floating_ip(id))
            .await
    }

    async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>> {
        self.layer
            .call(Operation::ListFloatingIps, || {
                self.inner.list_floating_ips(filter)
            })
            .await
    }

    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp> {
        self.layer
            .call(Operation::AssociateFloatingIp, || {
                self.inner.associate_floating_ip(id, instance_id)
            })
            .await
    }

    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp> {
        self.layer
            .call(Operation::DisassociateFloatingIp, || {
                self.inner.disassociate_floating_ip(id)
            })
            .await
    }

    async fn release_floating_ip(&self, id: &str) -> Result<()> {
        self.layer
            .call(Operation::ReleaseFloatingIp, || {
                self.inner.release_floating_ip(id)
            })
            .await
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        self.layer
            .call(Operation::CreateVolume, || self.inner.create_volume(spec))
            .await
    }

    async fn get_volume(&self, id: &str) -> Result<Volume> {
        self.layer
            .call(Operation::GetVolume, || self.inner.get_volume(id))
            .await
    }

    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>> {
        self.layer
            .call(Operation::ListVolumes, || self.inner.list_volumes(filter))
            .await
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume> {
        self.layer
            .call(Operation::AttachVolume, || {
                self.inner.attach_volume(volume_id, instance_id)
            })
            .await
    }

    async fn detach_volume(&self, volume_id: &str) -> Result<Volume> {
        self.layer
            .call(Operation::DetachVolume, || {
                self.inner.detach_volume(volume_id)
            })
            .await
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        self.layer
            .call(Operation::DeleteVolume, || self.inner.delete_volume(id))
            .await
    }

    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        self.layer
            .call(Operation::CreateInstance, || {
                self.inner.create_instance(spec)
            })
            .await
    }

    async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        self.layer
            .call(Operation::CreateInstances, || {
                self.inner.create_instances(specs)
            })
            .await
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        self.layer
            .call(Operation::GetInstance, || self.inner.get_instance(id))
            .await
    }

    async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        self.layer
            .call(Operation::GetInstances, || self.inner.get_instances(ids))
            .await
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        self.layer
            .call(Operation::ListInstances, || {
                self.inner.list_instances(filter)
            })
            .await
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        self.layer
            .call(Operation::DeleteInstance, || self.inner.delete_instance(id))
            .await
    }

    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        self.layer
            .call(Operation::CreateLoadBalancer, || {
                self.inner.create_load_balancer(spec)
            })
            .await
    }

    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        self.layer
            .call(Operation::GetLoadBalancer, || {
                self.inner.get_load_balancer(id)
            })
            .await
    }

    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>> {
        self.layer
            .call(Operation::ListLoadBalancers, || {
                self.inner.list_load_balancers(filter)
            })
            .await
    }

    async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.layer
            .call(Operation::AddLoadBalancerMember, || {
                self.inner
                    .add_load_balancer_member(lb_id, listener_port, member)
            })
            .await
    }

    async fn remove_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.layer
            .call(Operation::RemoveLoadBalancerMember, || {
                self.inner
                    .remove_load_balancer_member(lb_id, listener_port, member)
            })
            .await
    }

    async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        self.layer
            .call(Operation::DeleteLoadBalancer, || {
                self.inner.delete_load_balancer(id)
            })
            .await
    }
}
