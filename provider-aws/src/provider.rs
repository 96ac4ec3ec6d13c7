//! The [`Provider`] and family implementations: each method delegates to its resource
//! family's module; `update_tags` is here because it spans them.

use async_trait::async_trait;
use provider_core::{
    AvailabilityZone, Capabilities, Error, FloatingIps, Instance, InstanceSpec, Instances,
    LbProtocol, LoadBalancer, LoadBalancerSpec, LoadBalancers, MemberSpec, Operation, Problem,
    Provider, References, ResourceKind, Result, SecurityGroups, TagFilter, Tags, Volumes,
};

use crate::error::sdk;
use crate::tags;
use crate::AwsProvider;

impl AwsProvider {
    async fn tag_ec2(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let op = Operation::UpdateTags;
        let resource = format!("{kind} {id}");
        // CreateTags of an unknown id may succeed (moto: addresses and instances;
        // DeleteTags of any kind): check the resource first. CreateTags of a group or a
        // volume fails on its own (moto and AWS), so setting tags on one needs no check.
        let validated =
            !set.is_empty() && matches!(kind, ResourceKind::SecurityGroup | ResourceKind::Volume);
        match kind {
            _ if validated => {}
            ResourceKind::SecurityGroup => {
                self.get_security_group(id)
                    .await
                    .map_err(|_| Error::not_found(op, &resource))?;
            }
            ResourceKind::FloatingIp => {
                self.get_floating_ip(id)
                    .await
                    .map_err(|_| Error::not_found(op, &resource))?;
            }
            ResourceKind::Volume => {
                self.get_volume(id)
                    .await
                    .map_err(|_| Error::not_found(op, &resource))?;
            }
            ResourceKind::Instance => {
                self.ec2_instance(op, id).await?;
            }
            ResourceKind::LoadBalancer => {}
        }
        if !set.is_empty() {
            self.ec2
                .create_tags()
                .resources(id)
                .set_tags(Some(tags::ec2_tags(set)))
                .send()
                .await
                .map_err(|e| {
                    let e = crate::error::AwsError::from_sdk(e);
                    // A malformed id is missing the same way (`InvalidID`).
                    if e.is_not_found() || e.code == "InvalidID" {
                        Error::not_found(op, &resource)
                    } else {
                        e.classify(op, &resource)
                    }
                })?;
        }
        if !remove.is_empty() {
            self.ec2
                .delete_tags()
                .resources(id)
                .set_tags(Some(crate::instances::tag_keys(remove)))
                .send()
                .await
                .map_err(sdk(op, &resource))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &str {
        "aws"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.config.page_size)
            .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
            .with_group_sources(true)
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        self.zones().await
    }

    /// Zones, AMIs, instance types, the VPC and its subnets (in AZ order), the key pair
    /// and the Elastic IP quota (see the crate docs).
    async fn preflight(&self, refs: &References) -> Result<Vec<Problem>> {
        self.preflight_checks(refs).await
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        let op = Operation::UpdateTags;
        tags::check_user_tags(op, "set", set)?;
        let mut check = Tags::new();
        for k in remove {
            check.insert(k.clone(), String::new());
        }
        tags::check_user_tags(op, "remove", &check)?;
        match kind {
            ResourceKind::LoadBalancer => self.tag_lb(id, set, remove).await,
            _ => self.tag_ec2(kind, id, set, remove).await,
        }
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

#[async_trait]
impl Instances for AwsProvider {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        self.create_many(std::slice::from_ref(spec))
            .await?
            .pop()
            .ok_or_else(|| Error::transient(Operation::CreateInstance, "launch returned nothing"))
    }

    async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        self.create_many(specs).await
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        self.get_many(
            Operation::GetInstance,
            std::slice::from_ref(&id.to_string()),
        )
        .await?
        .pop()
        .ok_or_else(|| Error::not_found(Operation::GetInstance, format!("instance {id}")))
    }

    async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        self.get_many(Operation::GetInstances, ids).await
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        self.list_insts(filter).await
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        self.delete_inst(id).await
    }

    async fn delete_instances(&self, ids: &[String]) -> Result<()> {
        self.delete_many(Operation::DeleteInstances, ids).await
    }
}

#[async_trait]
impl LoadBalancers for AwsProvider {
    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer> {
        self.create_lb(spec).await
    }

    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer> {
        self.get_lb(id).await
    }

    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>> {
        self.list_lbs(filter).await
    }

    async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer> {
        self.change_member(
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
        self.change_member(
            Operation::RemoveLoadBalancerMember,
            lb_id,
            listener_port,
            member,
            false,
        )
        .await
    }

    async fn delete_load_balancer(&self, id: &str) -> Result<()> {
        self.delete_lb(id).await
    }
}
