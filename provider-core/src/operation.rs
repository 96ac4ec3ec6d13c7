//! The one table of the contract's operations, and what is generated from it here: the
//! [`Operation`] names used in errors, metrics and fault plans, and the [`Family`] each
//! belongs to.

/// Calls `$callback!` with the table of every operation of the contract, so that
/// everything that would otherwise restate the trait is generated from one list: the
/// [`Operation`] enum, [`ProviderExt`](crate::ProviderExt), [`Layered`](crate::layer::Layered),
/// the mock, and provider-local's wire protocol.
///
/// The callback receives the operations on [`Provider`](crate::Provider) itself, then
/// each family with its trait (also its [`Family`] variant), its accessor on `Provider`
/// and a label for messages:
///
/// ```text
/// core {
///     ListAvailabilityZones = call list_availability_zones() -> [Vec<AvailabilityZone>];
///     ...
/// }
/// families {
///     Volumes volumes "volumes" {
///         CreateVolume = call create_volume(spec: [&VolumeSpec] as VolumeSpec) -> [Volume];
///         ListVolumes = paged list_volumes(filter: [&TagFilter] as TagFilter) -> [Vec<Volume>];
///         ...
///     }
///     ...
/// }
/// ```
///
/// Each operation is `Variant = kind method(args) -> [T];`, the method returning
/// `Result<T>`. `kind` is `call`, or `paged` for lists (a remote backend fetches them in
/// pages). An argument passed by reference names the owned type it travels as after
/// `as` (`id: [&str] as String`); one without `as` is passed by value. Argument and
/// return types are bracketed so that a callback can pass them on as plain tokens
/// (mockall rejects types captured as `ty`). Types are named unqualified: the callback's
/// module imports [`crate::model`].
///
/// Adding an operation means adding it to its family trait, to this table, and to the
/// backends that support it.
#[macro_export]
macro_rules! for_each_operation {
    ($callback:ident) => {
        $callback! {
            core {
                ListAvailabilityZones = call list_availability_zones() -> [Vec<AvailabilityZone>];
                UpdateTags = call update_tags(kind: [ResourceKind], id: [&str] as String, set: [&Tags] as Tags, remove: [&[String]] as Vec<String>) -> [()];
                Preflight = call preflight(refs: [&References] as References) -> [Vec<Problem>];
            }
            families {
                SecurityGroups security_groups "security groups" {
                    CreateSecurityGroup = call create_security_group(spec: [&SecurityGroupSpec] as SecurityGroupSpec) -> [SecurityGroup];
                    GetSecurityGroup = call get_security_group(id: [&str] as String) -> [SecurityGroup];
                    ListSecurityGroups = paged list_security_groups(filter: [&TagFilter] as TagFilter) -> [Vec<SecurityGroup>];
                    AddSecurityGroupRule = call add_security_group_rule(group_id: [&str] as String, rule: [&IngressRule] as IngressRule) -> [()];
                    RemoveSecurityGroupRule = call remove_security_group_rule(group_id: [&str] as String, rule: [&IngressRule] as IngressRule) -> [()];
                    DeleteSecurityGroup = call delete_security_group(id: [&str] as String) -> [()];
                }
                FloatingIps floating_ips "floating IPs" {
                    AllocateFloatingIp = call allocate_floating_ip(spec: [&FloatingIpSpec] as FloatingIpSpec) -> [FloatingIp];
                    GetFloatingIp = call get_floating_ip(id: [&str] as String) -> [FloatingIp];
                    ListFloatingIps = paged list_floating_ips(filter: [&TagFilter] as TagFilter) -> [Vec<FloatingIp>];
                    AssociateFloatingIp = call associate_floating_ip(id: [&str] as String, instance_id: [&str] as String) -> [FloatingIp];
                    DisassociateFloatingIp = call disassociate_floating_ip(id: [&str] as String) -> [FloatingIp];
                    ReleaseFloatingIp = call release_floating_ip(id: [&str] as String) -> [()];
                }
                Volumes volumes "volumes" {
                    CreateVolume = call create_volume(spec: [&VolumeSpec] as VolumeSpec) -> [Volume];
                    GetVolume = call get_volume(id: [&str] as String) -> [Volume];
                    ListVolumes = paged list_volumes(filter: [&TagFilter] as TagFilter) -> [Vec<Volume>];
                    AttachVolume = call attach_volume(volume_id: [&str] as String, instance_id: [&str] as String) -> [Volume];
                    DetachVolume = call detach_volume(volume_id: [&str] as String) -> [Volume];
                    DeleteVolume = call delete_volume(id: [&str] as String) -> [()];
                }
                Instances instances "instances" {
                    CreateInstance = call create_instance(spec: [&InstanceSpec] as InstanceSpec) -> [Instance];
                    CreateInstances = call create_instances(specs: [&[InstanceSpec]] as Vec<InstanceSpec>) -> [Vec<Instance>];
                    GetInstance = call get_instance(id: [&str] as String) -> [Instance];
                    GetInstances = call get_instances(ids: [&[String]] as Vec<String>) -> [Vec<Instance>];
                    ListInstances = paged list_instances(filter: [&TagFilter] as TagFilter) -> [Vec<Instance>];
                    DeleteInstance = call delete_instance(id: [&str] as String) -> [()];
                    DeleteInstances = call delete_instances(ids: [&[String]] as Vec<String>) -> [()];
                }
                LoadBalancers load_balancers "load balancers" {
                    CreateLoadBalancer = call create_load_balancer(spec: [&LoadBalancerSpec] as LoadBalancerSpec) -> [LoadBalancer];
                    GetLoadBalancer = call get_load_balancer(id: [&str] as String) -> [LoadBalancer];
                    ListLoadBalancers = paged list_load_balancers(filter: [&TagFilter] as TagFilter) -> [Vec<LoadBalancer>];
                    AddLoadBalancerMember = call add_load_balancer_member(lb_id: [&str] as String, listener_port: [u16], member: [&MemberSpec] as MemberSpec) -> [LoadBalancer];
                    RemoveLoadBalancerMember = call remove_load_balancer_member(lb_id: [&str] as String, listener_port: [u16], member: [&MemberSpec] as MemberSpec) -> [LoadBalancer];
                    DeleteLoadBalancer = call delete_load_balancer(id: [&str] as String) -> [()];
                }
            }
        }
    };
}

macro_rules! operations {
    (
        core { $($cv:ident = $ck:ident $cm:ident ($($ca:ident : [$($ct:tt)*] $(as $co:ty)?),*) -> [$($cr:tt)*];)* }
        families { $(
            $fam:ident $acc:ident $label:literal {
                $($v:ident = $k:ident $m:ident ($($a:ident : [$($t:tt)*] $(as $o:ty)?),*) -> [$($r:tt)*];)*
            }
        )* }
    ) => {
        /// One method of the contract: of [`Provider`](crate::Provider) or of a family trait.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Operation {
            $(
                #[doc = concat!("`", stringify!($cm), "`")]
                $cv,
            )*
            $($(
                #[doc = concat!("`", stringify!($m), "`")]
                $v,
            )*)*
        }

        impl Operation {
            /// Every operation, in table order.
            pub const ALL: &'static [Operation] = &[$(Operation::$cv,)* $($(Operation::$v,)*)*];

            /// The snake_case method name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Operation::$cv => stringify!($cm),)*
                    $($(Operation::$v => stringify!($m),)*)*
                }
            }

            /// The family the operation belongs to.
            pub fn family(self) -> Family {
                match self {
                    $(Operation::$cv => Family::Core,)*
                    $($(Operation::$v => Family::$fam,)*)*
                }
            }
        }

        /// A family of operations. A provider has the core family and those whose
        /// accessor on [`Provider`](crate::Provider) returns `Some`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Family {
            /// Zones and tags: the operations on [`Provider`](crate::Provider) itself, which
            /// every provider has.
            Core,
            $(
                #[doc = concat!("The ", $label, " of [`", stringify!($fam), "`](crate::", stringify!($fam), ").")]
                $fam,
            )*
        }

        impl Family {
            /// Every family, in table order.
            pub const ALL: &'static [Family] = &[Family::Core, $(Family::$fam,)*];

            /// What the family's resources are called in messages, e.g. `load balancers`.
            pub fn label(self) -> &'static str {
                match self {
                    Family::Core => "zones and tags",
                    $(Family::$fam => $label,)*
                }
            }
        }
    };
}

for_each_operation!(operations);

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}
