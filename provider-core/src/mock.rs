//! A mockall mock of [`Provider`](crate::Provider), for unit tests of code that drives one.
//!
//! ```
//! use provider_core::mock::MockProvider;
//! use provider_core::{AvailabilityZone, Provider};
//!
//! # tokio_test_block_on(async {
//! let mut mock = MockProvider::new();
//! mock.expect_list_availability_zones().times(1).returning(|| {
//!     Ok(vec![AvailabilityZone { name: "az1".into(), available: true }])
//! });
//! let zones = mock.list_availability_zones().await.unwrap();
//! assert_eq!(zones[0].name, "az1");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use async_trait::async_trait;

use crate::model::*;
use crate::{Capabilities, Result};

mockall::mock! {
    /// A mock provider: set expectations with `expect_*`.
    #[derive(Debug)]
    pub Provider {}

    #[async_trait]
    impl crate::Provider for Provider {
        fn name(&self) -> &str;
        fn capabilities(&self) -> Capabilities;
        async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>>;
        async fn update_tags(&self, kind: ResourceKind, id: &str, set: &Tags, remove: &[String]) -> Result<()>;
        async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup>;
        async fn get_security_group(&self, id: &str) -> Result<SecurityGroup>;
        async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>>;
        async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()>;
        async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()>;
        async fn delete_security_group(&self, id: &str) -> Result<()>;
        async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp>;
        async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp>;
        async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>>;
        async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp>;
        async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp>;
        async fn release_floating_ip(&self, id: &str) -> Result<()>;
        async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume>;
        async fn get_volume(&self, id: &str) -> Result<Volume>;
        async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>>;
        async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume>;
        async fn detach_volume(&self, volume_id: &str) -> Result<Volume>;
        async fn delete_volume(&self, id: &str) -> Result<()>;
        async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance>;
        async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>>;
        async fn get_instance(&self, id: &str) -> Result<Instance>;
        async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>>;
        async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>>;
        async fn delete_instance(&self, id: &str) -> Result<()>;
        async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer>;
        async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer>;
        async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>>;
        async fn add_load_balancer_member(&self, lb_id: &str, listener_port: u16, member: &MemberSpec) -> Result<LoadBalancer>;
        async fn remove_load_balancer_member(&self, lb_id: &str, listener_port: u16, member: &MemberSpec) -> Result<LoadBalancer>;
        async fn delete_load_balancer(&self, id: &str) -> Result<()>;
    }
}
