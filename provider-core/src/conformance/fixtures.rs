//! What checks create: names and spec builders, creates that remember what they made
//! for the sweep, and ids of resources that existed and are gone.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};

use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;

use super::ctx::Ctx;
use super::expect::*;
use crate::model::*;
use crate::{Family, ProviderExt};

/// Tag key the tag-filter checks use to tell two resources apart.
pub(crate) const ROLE_TAG: &str = "plinth-conformance-role";
/// Tag key the update-tags checks set and remove.
pub(crate) const EXTRA_TAG: &str = "plinth-conformance-extra";
/// Tag key checks set with `update_tags` after a create, to re-create after.
pub(crate) const LATER_TAG: &str = "plinth-conformance-later";
/// `base` with one edit. The specs are `#[non_exhaustive]`, so outside provider-core
/// (where readers of the kit write their own checks) struct update syntax is not
/// available; this is the shape that works everywhere.
pub(crate) fn edited<T>(mut base: T, edit: impl FnOnce(&mut T)) -> T {
    edit(&mut base);
    base
}
/// A /32 network of TEST-NET-1 (192.0.2.0/24) for rules.
pub(crate) fn net(host: u8) -> IpNet {
    IpNet::from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, host)))
}
impl Ctx<'_> {
    // --- specs

    /// A security group spec with one rule for the member port.
    pub(crate) fn sg_spec(&self, label: &str) -> SecurityGroupSpec {
        SecurityGroupSpec::new(self.name(label))
            .with_description(format!("plinth conformance check {}", self.check))
            .with_rules([IngressRule::tcp(self.cfg.member_port, net(1))])
            .with_tags(self.tags())
    }

    /// A floating IP spec from the configured pool.
    pub(crate) fn fip_spec(&self, label: &str) -> Step<FloatingIpSpec> {
        let pool = self.cfg.floating_ip_pool.clone().ok_or_else(|| {
            failed("the provider has floating IPs but config.floating_ip_pool is not set: set it with with_floating_ip_pool")
        })?;
        Ok(FloatingIpSpec::new(self.name(label), pool).with_tags(self.tags()))
    }

    /// A volume spec in `zone`.
    pub(crate) fn volume_spec(&self, label: &str, zone: &str) -> VolumeSpec {
        let mut spec = VolumeSpec::new(self.name(label), zone, self.cfg.volume_size_gib)
            .with_tags(self.tags());
        // The optional settings come from the kit's config as options, so they are set
        // directly rather than through the `with_*` setters.
        spec.volume_type = self.cfg.volume_type.clone();
        spec
    }

    /// An instance spec in `zone`.
    pub(crate) fn instance_spec(&self, label: &str, zone: &str) -> InstanceSpec {
        let mut spec = InstanceSpec::new(
            self.name(label),
            zone,
            self.cfg.flavor.clone(),
            self.cfg.image.clone(),
        )
        .with_security_groups(self.cfg.extra_security_groups.clone())
        .with_tags(self.tags());
        // Optional settings come from the kit's config as options: set them directly.
        spec.network = self.cfg.network.clone();
        spec.subnet = self
            .cfg
            .zone_subnets
            .get(zone)
            .cloned()
            .or_else(|| self.cfg.subnet.clone());
        spec.keypair = self.cfg.keypair.clone();
        spec.user_data = self.cfg.user_data.clone();
        spec
    }

    /// The listener protocol to use: TCP when the provider speaks it.
    pub(crate) fn lb_protocol(&self) -> LbProtocol {
        let protocols = self.p.capabilities().lb_protocols;
        if protocols.contains(&LbProtocol::Tcp) {
            LbProtocol::Tcp
        } else {
            protocols.first().copied().unwrap_or(LbProtocol::Tcp)
        }
    }

    /// A member on the configured member port.
    pub(crate) fn member(&self, instance_id: &str) -> MemberSpec {
        MemberSpec::new(instance_id, self.cfg.member_port)
    }

    /// A listener on `port` with these members.
    pub(crate) fn listener(&self, port: u16, members: Vec<MemberSpec>) -> ListenerSpec {
        ListenerSpec::new(self.lb_protocol(), port).with_members(members)
    }

    /// A load balancer spec with these listeners.
    pub(crate) fn lb_spec(&self, label: &str, listeners: Vec<ListenerSpec>) -> LoadBalancerSpec {
        let mut spec = LoadBalancerSpec::new(self.name(label), listeners).with_tags(self.tags());
        spec.subnet = self
            .cfg
            .lb_subnet
            .clone()
            .or_else(|| self.cfg.subnet.clone());
        spec
    }

    // --- creates that remember what they made

    /// `create_security_group`, remembering the group.
    pub(crate) async fn try_create_sg(
        &self,
        spec: &SecurityGroupSpec,
    ) -> crate::Result<SecurityGroup> {
        let r = self.p.create_security_group(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::SecurityGroup, &x.id);
        }
        r
    }

    /// `create_security_group` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_sg(&self, spec: &SecurityGroupSpec) -> Step<SecurityGroup> {
        self.require(Family::SecurityGroups)?;
        self.try_create_sg(spec)
            .await
            .step(format!("create_security_group {}", spec.name))
    }

    /// A default security group.
    pub(crate) async fn sg(&self, label: &str) -> Step<SecurityGroup> {
        self.create_sg(&self.sg_spec(label)).await
    }

    /// `allocate_floating_ip`, remembering the address.
    pub(crate) async fn try_create_fip(&self, spec: &FloatingIpSpec) -> crate::Result<FloatingIp> {
        let r = self.p.allocate_floating_ip(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::FloatingIp, &x.id);
        }
        r
    }

    /// `allocate_floating_ip` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_fip(&self, spec: &FloatingIpSpec) -> Step<FloatingIp> {
        self.require(Family::FloatingIps)?;
        self.try_create_fip(spec)
            .await
            .step(format!("allocate_floating_ip {}", spec.name))
    }

    /// A default floating IP.
    pub(crate) async fn fip(&self, label: &str) -> Step<FloatingIp> {
        self.create_fip(&self.fip_spec(label)?).await
    }

    /// `create_volume`, remembering the volume.
    pub(crate) async fn try_create_volume(&self, spec: &VolumeSpec) -> crate::Result<Volume> {
        let r = self.p.create_volume(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::Volume, &x.id);
        }
        r
    }

    /// `create_volume` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_volume(&self, spec: &VolumeSpec) -> Step<Volume> {
        self.require(Family::Volumes)?;
        self.try_create_volume(spec)
            .await
            .step(format!("create_volume {}", spec.name))
    }

    /// A default volume in `zone`.
    pub(crate) async fn volume(&self, label: &str, zone: &str) -> Step<Volume> {
        self.create_volume(&self.volume_spec(label, zone)).await
    }

    /// `create_instance`, remembering the instance.
    pub(crate) async fn try_create_instance(&self, spec: &InstanceSpec) -> crate::Result<Instance> {
        let r = self.p.create_instance(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::Instance, &x.id);
        }
        r
    }

    /// `create_instance` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_instance(&self, spec: &InstanceSpec) -> Step<Instance> {
        self.require(Family::Instances)?;
        self.try_create_instance(spec)
            .await
            .step(format!("create_instance {}", spec.name))
    }

    /// A default instance in `zone`.
    pub(crate) async fn instance(&self, label: &str, zone: &str) -> Step<Instance> {
        self.create_instance(&self.instance_spec(label, zone)).await
    }

    /// `create_instances`, remembering the instances.
    pub(crate) async fn try_create_instances(
        &self,
        specs: &[InstanceSpec],
    ) -> crate::Result<Vec<Instance>> {
        let r = self.p.create_instances(specs).await;
        if let Ok(xs) = &r {
            for x in xs {
                self.track(ResourceKind::Instance, &x.id);
            }
        }
        r
    }

    /// `create_load_balancer`, remembering the load balancer.
    pub(crate) async fn try_create_lb(
        &self,
        spec: &LoadBalancerSpec,
    ) -> crate::Result<LoadBalancer> {
        let r = self.p.create_load_balancer(spec).await;
        if let Ok(x) = &r {
            self.track(ResourceKind::LoadBalancer, &x.id);
        }
        r
    }

    /// `create_load_balancer` that must succeed; skips the check when the provider
    /// lacks the family.
    pub(crate) async fn create_lb(&self, spec: &LoadBalancerSpec) -> Step<LoadBalancer> {
        self.require(Family::LoadBalancers)?;
        self.try_create_lb(spec)
            .await
            .step(format!("create_load_balancer {}", spec.name))
    }

    /// A load balancer with one listener on the configured port and no members.
    pub(crate) async fn empty_lb(&self, label: &str) -> Step<LoadBalancer> {
        let spec = self.lb_spec(label, vec![self.listener(self.cfg.lb_port, Vec::new())]);
        self.create_lb(&spec).await
    }

    /// Runs many creates with the configured concurrency; all must succeed. (A `Vec`,
    /// not an iterator: a closure inside the future would defeat the `Send` proof.)
    pub(crate) async fn create_many<T, Fut>(&self, creates: Vec<Fut>) -> Step<Vec<T>>
    where
        Fut: Future<Output = Step<T>>,
    {
        futures::stream::iter(creates)
            .buffer_unordered(self.cfg.concurrency.max(1))
            .try_collect()
            .await
    }

    // --- ids of resources that existed and are gone

    /// The id of a security group created and deleted.
    pub(crate) async fn gone_sg(&self) -> Step<String> {
        let x = self.sg("gone-sg").await?;
        self.p
            .delete_security_group(&x.id)
            .await
            .step("delete_security_group")?;
        Ok(x.id)
    }

    /// The id of a floating IP allocated and released.
    pub(crate) async fn gone_fip(&self) -> Step<String> {
        let x = self.fip("gone-fip").await?;
        self.p
            .release_floating_ip(&x.id)
            .await
            .step("release_floating_ip")?;
        Ok(x.id)
    }

    /// The id of a volume created and deleted.
    pub(crate) async fn gone_volume(&self, zone: &str) -> Step<String> {
        let x = self.volume("gone-vol", zone).await?;
        self.p.delete_volume(&x.id).await.step("delete_volume")?;
        Ok(x.id)
    }

    /// The id of an instance created and deleted.
    pub(crate) async fn gone_instance(&self, zone: &str) -> Step<String> {
        let x = self.instance("gone-inst", zone).await?;
        self.p
            .delete_instance(&x.id)
            .await
            .step("delete_instance")?;
        Ok(x.id)
    }

    /// The id of a load balancer created and deleted.
    pub(crate) async fn gone_lb(&self) -> Step<String> {
        let x = self.empty_lb("gone-lb").await?;
        self.p
            .delete_load_balancer(&x.id)
            .await
            .step("delete_load_balancer")?;
        Ok(x.id)
    }
}
