//! The names of the trait's operations: used in errors, metrics and fault plans.

macro_rules! operations {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// One method of the [`Provider`](crate::Provider) trait.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Operation {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Operation {
            /// Every operation, in trait order.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),*];

            /// The snake_case method name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Operation::$variant => $name,)*
                }
            }
        }
    };
}

operations! {
    ListAvailabilityZones => "list_availability_zones",
    UpdateTags => "update_tags",
    CreateSecurityGroup => "create_security_group",
    GetSecurityGroup => "get_security_group",
    ListSecurityGroups => "list_security_groups",
    AddSecurityGroupRule => "add_security_group_rule",
    RemoveSecurityGroupRule => "remove_security_group_rule",
    DeleteSecurityGroup => "delete_security_group",
    AllocateFloatingIp => "allocate_floating_ip",
    GetFloatingIp => "get_floating_ip",
    ListFloatingIps => "list_floating_ips",
    AssociateFloatingIp => "associate_floating_ip",
    DisassociateFloatingIp => "disassociate_floating_ip",
    ReleaseFloatingIp => "release_floating_ip",
    CreateVolume => "create_volume",
    GetVolume => "get_volume",
    ListVolumes => "list_volumes",
    AttachVolume => "attach_volume",
    DetachVolume => "detach_volume",
    DeleteVolume => "delete_volume",
    CreateInstance => "create_instance",
    CreateInstances => "create_instances",
    GetInstance => "get_instance",
    GetInstances => "get_instances",
    ListInstances => "list_instances",
    DeleteInstance => "delete_instance",
    CreateLoadBalancer => "create_load_balancer",
    GetLoadBalancer => "get_load_balancer",
    ListLoadBalancers => "list_load_balancers",
    AddLoadBalancerMember => "add_load_balancer_member",
    RemoveLoadBalancerMember => "remove_load_balancer_member",
    DeleteLoadBalancer => "delete_load_balancer",
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
