//! The contract between Plinth and a cloud: [`Provider`] (zones, tags and an accessor per
//! family), one trait per family of resources, and [`ProviderExt`], which calls any
//! family's operation on any provider.

use async_trait::async_trait;
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::{Error, Family, Operation, Result};

/// What a provider supports within its families. Which families it has is said by its
/// accessors ([`Provider::load_balancers`] and the others; [`ProviderExt::supports`]).
///
/// Built with [`Capabilities::new`] and the `with_*` setters, so that capabilities added
/// later do not break providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Listener protocols the load balancers speak.
    pub lb_protocols: Vec<LbProtocol>,
    /// Security group rules may name another group as their source.
    pub group_sources: bool,
    /// Largest page the provider's list calls fetch; lists longer than this span pages.
    pub page_size: usize,
    /// Security groups filter traffic. `false` for a provider that only records them
    /// (its groups and rules are kept and listed as specified, and every other group
    /// capability describes those records): the network must be secured elsewhere.
    pub security_groups_enforced: bool,
    /// A tag write is visible to every read that starts after it returns
    /// (read-after-write consistency): true of the memory provider, provider-local,
    /// OpenStack's database-backed APIs and vCenter; not of AWS, whose tags are
    /// eventually consistent. The cluster's lease waits less on such clouds.
    #[serde(default)]
    pub tags_read_after_write: bool,
}

impl Capabilities {
    /// A provider whose lists fetch pages of `page_size` (at least 1), whose load
    /// balancers speak no protocol yet, whose rules take CIDR sources only, and whose
    /// security groups (if it has them) filter traffic.
    pub fn new(page_size: usize) -> Self {
        Self {
            lb_protocols: Vec::new(),
            group_sources: false,
            page_size,
            security_groups_enforced: true,
            tags_read_after_write: false,
        }
    }

    /// Sets whether tag writes are read-after-write consistent.
    pub fn with_tags_read_after_write(mut self, consistent: bool) -> Self {
        self.tags_read_after_write = consistent;
        self
    }

    /// Sets whether security groups filter traffic (`false`: they are records only).
    pub fn with_security_groups_enforced(mut self, enforced: bool) -> Self {
        self.security_groups_enforced = enforced;
        self
    }

    /// Sets the listener protocols the load balancers speak.
    pub fn with_lb_protocols(mut self, protocols: impl IntoIterator<Item = LbProtocol>) -> Self {
        self.lb_protocols = protocols.into_iter().collect();
        self
    }

    /// Sets whether rules may name another group as their source.
    pub fn with_group_sources(mut self, group_sources: bool) -> Self {
        self.group_sources = group_sources;
        self
    }
}

/// One cloud, as an object-safe async trait used as `Arc<dyn Provider>`.
///
/// Every provider has zones and tags; each other family of operations is a trait of its
/// own ([`SecurityGroups`], [`Instances`], [`Volumes`], [`FloatingIps`],
/// [`LoadBalancers`]) that a provider implements when its cloud has it, and returns from
/// the family's accessor. A family it lacks costs it nothing: the accessor's default is
/// `None`, and [`ProviderExt`] answers its calls with `Unsupported`.
///
/// Rules every implementation follows (the conformance kit checks them):
/// - Creates validate their spec first (`InvalidInput` naming the field), are idempotent
///   by name (same name and spec returns the existing resource; same name with another
///   spec is `Conflict`) and return once the resource is usable, or `Timeout`. "Same
///   spec" means the spec the resource was created with: tags set later through
///   [`Provider::update_tags`] and rules added through
///   [`SecurityGroups::add_security_group_rule`] do not make it another resource (the
///   cluster's lease tag lives on a group it re-creates idempotently).
/// - Deletes succeed when the resource is already gone and return once it is gone.
/// - `get_*` of a missing id is `NotFound`; every list takes a [`TagFilter`] and follows
///   pagination to the end. An id that never existed, or that is malformed for the
///   cloud, is missing like a deleted one: `get_*` is `NotFound` and the delete succeeds
///   (a provider cannot tell "never existed" from "already gone").
/// - Deletes of what is in use have one outcome on every cloud, written on each delete:
///   `Conflict` where going ahead would silently change what the user still relies on
///   (an attached volume's data, a group's traffic rules, an associated floating IP's
///   route to its instance); the implicit cleanup only where the delete says all the
///   caller means (a load balancer member is taken out of its pools with its instance).
///   Where the cloud answers otherwise, the provider makes the difference up.
/// - Backends classify errors; retry and rate limiting are layers ([`crate::layer`]).
///
/// Implementations use `#[async_trait]` (re-exported as [`crate::async_trait`]).
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// A short name for logs, e.g. `memory` or `openstack`.
    fn name(&self) -> &str;

    /// What this provider supports within its families.
    fn capabilities(&self) -> Capabilities;

    /// The availability zones new resources can be placed in.
    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>>;

    /// Sets the `set` tags and removes the `remove` keys on any resource.
    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()>;

    /// Checks, before anything is created, that every reference in `refs` resolves in
    /// the cloud (an id or a name; a name that several resources have is a problem that
    /// lists their ids) and, where the cloud reports quotas, that `refs.demand` fits.
    /// Answers every problem found, each naming the reference's key and the fix; an
    /// empty list means go ahead. `Err` only when the cloud could not be asked.
    ///
    /// Reads only: creates, changes and deletes nothing. The default checks the zones
    /// ([`References::check_zones`]); a backend overrides it to check the kinds of
    /// reference its cloud has, and ignores the others.
    async fn preflight(&self, refs: &References) -> Result<Vec<Problem>> {
        let offered = self.list_availability_zones().await?;
        Ok(refs.check_zones(&offered))
    }

    /// Security groups, if the cloud has them.
    fn security_groups(&self) -> Option<&dyn SecurityGroups> {
        None
    }

    /// Instances, if the cloud has them.
    fn instances(&self) -> Option<&dyn Instances> {
        None
    }

    /// Volumes, if the cloud has them.
    fn volumes(&self) -> Option<&dyn Volumes> {
        None
    }

    /// Floating IPs, if the cloud has them (vSphere has none).
    fn floating_ips(&self) -> Option<&dyn FloatingIps> {
        None
    }

    /// Load balancers, if the cloud has them (vSphere has none).
    fn load_balancers(&self) -> Option<&dyn LoadBalancers> {
        None
    }
}

/// Security groups and their ingress rules.
#[async_trait]
pub trait SecurityGroups: Send + Sync {
    /// Creates a security group with its rules.
    async fn create_security_group(&self, spec: &SecurityGroupSpec) -> Result<SecurityGroup>;
    /// Gets a security group by id.
    async fn get_security_group(&self, id: &str) -> Result<SecurityGroup>;
    /// Lists security groups whose tags match.
    async fn list_security_groups(&self, filter: &TagFilter) -> Result<Vec<SecurityGroup>>;
    /// Adds an ingress rule; adding a rule that exists succeeds.
    async fn add_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()>;
    /// Removes an ingress rule; removing a rule that is absent succeeds.
    async fn remove_security_group_rule(&self, group_id: &str, rule: &IngressRule) -> Result<()>;
    /// Deletes a security group. `Conflict` while an instance or a load balancer uses
    /// it, or another group's rule names it as source (EC2's DependencyViolation,
    /// Neutron's SecurityGroupInUse): taking it off them would change their traffic
    /// behind the caller's back.
    async fn delete_security_group(&self, id: &str) -> Result<()>;
}

/// Floating IPs: addresses from a pool, associated with instances.
#[async_trait]
pub trait FloatingIps: Send + Sync {
    /// Allocates a floating IP from a pool.
    async fn allocate_floating_ip(&self, spec: &FloatingIpSpec) -> Result<FloatingIp>;
    /// Gets a floating IP by id.
    async fn get_floating_ip(&self, id: &str) -> Result<FloatingIp>;
    /// Lists floating IPs whose tags match.
    async fn list_floating_ips(&self, filter: &TagFilter) -> Result<Vec<FloatingIp>>;
    /// Associates a floating IP with an instance (moving it if associated elsewhere).
    async fn associate_floating_ip(&self, id: &str, instance_id: &str) -> Result<FloatingIp>;
    /// Disassociates a floating IP; succeeds when it is not associated.
    async fn disassociate_floating_ip(&self, id: &str) -> Result<FloatingIp>;
    /// Releases a floating IP. An associated one is `Conflict` (disassociate it first):
    /// the address may be how users reach the instance, so a release never cuts that
    /// route as a side effect. EC2 refuses the same way (`InvalidIPAddress.InUse`);
    /// Neutron would release it, so providers on such clouds check first.
    async fn release_floating_ip(&self, id: &str) -> Result<()>;
}

/// Block-storage volumes, attached to instances of their zone.
#[async_trait]
pub trait Volumes: Send + Sync {
    /// Creates a volume and waits until it is available.
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume>;
    /// Gets a volume by id.
    async fn get_volume(&self, id: &str) -> Result<Volume>;
    /// Lists volumes whose tags match.
    async fn list_volumes(&self, filter: &TagFilter) -> Result<Vec<Volume>>;
    /// Attaches a volume to an instance in the same AZ and waits until it is in use.
    /// Attaching to the instance it is already attached to succeeds.
    async fn attach_volume(&self, volume_id: &str, instance_id: &str) -> Result<Volume>;
    /// Detaches a volume and waits until it is available; succeeds when not attached.
    async fn detach_volume(&self, volume_id: &str) -> Result<Volume>;
    /// Deletes a volume; `Conflict` while attached (as EC2 and Cinder answer): detaching
    /// it from a running instance could lose data the instance has not written out.
    async fn delete_volume(&self, id: &str) -> Result<()>;
}

/// Instances, one at a time or in batches.
#[async_trait]
pub trait Instances: Send + Sync {
    /// Creates an instance and waits until it runs.
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance>;
    /// Creates several instances; clouds that launch in batches override this. The whole
    /// batch is validated before anything is created.
    async fn create_instances(&self, specs: &[InstanceSpec]) -> Result<Vec<Instance>> {
        for (i, spec) in specs.iter().enumerate() {
            spec.validate_for(Operation::CreateInstances, &format!("specs[{i}]"))?;
        }
        try_join_all(specs.iter().map(|s| self.create_instance(s))).await
    }
    /// Gets an instance by id.
    async fn get_instance(&self, id: &str) -> Result<Instance>;
    /// Gets several instances by id, in the order asked; `NotFound` if any is missing.
    async fn get_instances(&self, ids: &[String]) -> Result<Vec<Instance>> {
        try_join_all(ids.iter().map(|id| self.get_instance(id))).await
    }
    /// Lists instances whose tags match.
    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>>;
    /// Deletes an instance and waits until it is gone. Its floating IPs stay allocated,
    /// unassociated; it is taken out of every load balancer pool it is a member of (ELB
    /// deregisters a terminated target itself, Octavia keeps the member in ERROR and the
    /// OpenStack provider removes it first): a member whose instance is gone only serves
    /// errors. Detaches nothing: detach volumes first.
    async fn delete_instance(&self, id: &str) -> Result<()>;
    /// Deletes several instances and waits until all are gone, each as
    /// [`Instances::delete_instance`] would (`Conflict` for one with a volume attached
    /// fails the call; ids already gone succeed). Clouds that terminate in batches
    /// override this; the default deletes them concurrently, one call each.
    async fn delete_instances(&self, ids: &[String]) -> Result<()> {
        try_join_all(ids.iter().map(|id| self.delete_instance(id)))
            .await
            .map(|_| ())
    }
}

/// Load balancers with their listeners, pools, members and health checks.
#[async_trait]
pub trait LoadBalancers: Send + Sync {
    /// Creates a load balancer with its listeners, pools and members; waits until active.
    async fn create_load_balancer(&self, spec: &LoadBalancerSpec) -> Result<LoadBalancer>;
    /// Gets a load balancer by id.
    async fn get_load_balancer(&self, id: &str) -> Result<LoadBalancer>;
    /// Lists load balancers whose tags match.
    async fn list_load_balancers(&self, filter: &TagFilter) -> Result<Vec<LoadBalancer>>;
    /// Adds a member to the pool of the listener on `listener_port`; adding a member
    /// that is present succeeds.
    async fn add_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer>;
    /// Removes a member from the pool of the listener on `listener_port`, letting its
    /// open connections finish; removing an absent member succeeds.
    async fn remove_load_balancer_member(
        &self,
        lb_id: &str,
        listener_port: u16,
        member: &MemberSpec,
    ) -> Result<LoadBalancer>;
    /// Deletes a load balancer and waits until it is gone; its members' instances and
    /// its groups stay.
    async fn delete_load_balancer(&self, id: &str) -> Result<()>;
}

/// The `Unsupported` answer to an operation of a family the provider lacks.
fn unsupported(provider: &str, op: Operation) -> Error {
    let family = op.family();
    Error::unsupported(
        op,
        format!("the {provider} provider has no {family}: check provider.supports(Family::{family:?}) first"),
    )
}

macro_rules! provider_ext {
    (
        core { $($core:tt)* }
        families { $(
            $fam:ident $acc:ident $label:literal {
                $($v:ident = $k:ident $m:ident ($($a:ident : [$($t:tt)*] $(as $o:ty)?),*) -> [$($r:tt)*];)*
            }
        )* }
    ) => {
        /// Every family's operations on any provider, under their own names: each call goes
        /// to the family's accessor, or answers `Unsupported` (naming the family) when the
        /// provider lacks it. Implemented for every [`Provider`], including `dyn Provider`,
        /// so `provider.create_volume(&spec)` works on an `Arc<dyn Provider>`.
        ///
        /// On a concrete type that implements a family trait itself, having both that trait
        /// and `ProviderExt` in scope makes the call ambiguous: import one of them (or
        /// call through `&dyn Provider`).
        #[async_trait]
        pub trait ProviderExt: Provider {
            /// Whether the provider has this family (the core one always).
            fn supports(&self, family: Family) -> bool {
                match family {
                    Family::Core => true,
                    $(Family::$fam => self.$acc().is_some(),)*
                }
            }

            /// The families the provider has, in table order.
            fn families(&self) -> Vec<Family> {
                Family::ALL.iter().copied().filter(|f| self.supports(*f)).collect()
            }

            $($(
                #[doc = concat!("[`", stringify!($fam), "::", stringify!($m), "`], or `Unsupported` without ", $label, ".")]
                async fn $m(&self, $($a: $($t)*),*) -> Result<$($r)*> {
                    match self.$acc() {
                        Some(family) => $fam::$m(family, $($a),*).await,
                        None => Err(unsupported(self.name(), Operation::$v)),
                    }
                }
            )*)*
        }
    };
}

crate::for_each_operation!(provider_ext);

impl<P: Provider + ?Sized> ProviderExt for P {}
