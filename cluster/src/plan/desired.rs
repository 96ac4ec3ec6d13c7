//! Desired state: every resource the spec asks for, with deterministic names and
//! ownership tags, spread evenly over the AZs.

use provider_core::{
    Capabilities, Family, HealthCheck, IngressRule, LbProtocol, PortRange, Protocol, RuleSource,
    Tags,
};
use serde::Serialize;

use super::{owner_tags, RuleRef, TAG_ORDINAL, TAG_SPEC_HASH};
use crate::spec::{ClusterSpec, LoadBalancerMode, Role, SecurityGroupsMode};

/// A security group to have, with rules that may name other groups of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredGroup {
    /// Name, `<cluster>-<purpose>`.
    pub name: String,
    /// Description.
    pub description: String,
    /// Ingress rules.
    pub rules: Vec<RuleRef>,
    /// Tags.
    pub tags: Tags,
}

/// A node to have. Its user data shows in `Debug` and in a plan's JSON only as
/// [`provider_core::user_data_digest`].
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct DesiredInstance {
    /// Name, `<cluster>-<role>-<ordinal>`.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Ordinal within the role.
    pub ordinal: usize,
    /// AZ.
    pub availability_zone: String,
    /// Flavor.
    pub flavor: String,
    /// Image.
    pub image: String,
    /// Network.
    pub network: Option<String>,
    /// Subnet.
    pub subnet: Option<String>,
    /// Names of its security groups.
    pub groups: Vec<String>,
    /// Keypair.
    pub keypair: Option<String>,
    /// User data.
    #[serde(serialize_with = "digest")]
    pub user_data: Option<String>,
    /// Tags (cluster, role, ordinal, spec hash).
    pub tags: Tags,
}

fn digest<S: serde::Serializer>(user_data: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match user_data {
        Some(u) => s.serialize_some(&provider_core::user_data_digest(u)),
        None => s.serialize_none(),
    }
}

impl std::fmt::Debug for DesiredInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredInstance")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("ordinal", &self.ordinal)
            .field("availability_zone", &self.availability_zone)
            .field("flavor", &self.flavor)
            .field("image", &self.image)
            .field("network", &self.network)
            .field("subnet", &self.subnet)
            .field("groups", &self.groups)
            .field("keypair", &self.keypair)
            .field(
                "user_data",
                &self
                    .user_data
                    .as_deref()
                    .map(provider_core::user_data_digest),
            )
            .field("tags", &self.tags)
            .finish()
    }
}

/// A data volume to have, attached to a node (named by [`volume_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredVolume {
    /// Name, `<node>-data` (then `<node>-data-1`, ...).
    pub name: String,
    /// The node it is attached to.
    pub instance: String,
    /// AZ (the node's).
    pub availability_zone: String,
    /// Size in GiB.
    pub size_gib: u64,
    /// The cloud's volume type; `None` for its default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    /// Tags.
    pub tags: Tags,
}

/// A floating IP to have, associated with a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredFloatingIp {
    /// Name, `<node>-fip`.
    pub name: String,
    /// Pool.
    pub pool: String,
    /// The node it forwards to.
    pub instance: String,
    /// Tags.
    pub tags: Tags,
}

/// One listener of a desired LB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredListener {
    /// Protocol.
    pub protocol: LbProtocol,
    /// Listener port.
    pub port: u16,
    /// Port on the members.
    pub target_port: u16,
    /// Member health check.
    pub health_check: HealthCheck,
}

/// A load balancer to have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredLoadBalancer {
    /// Name, `<cluster>-api` or `<cluster>-ingress`.
    pub name: String,
    /// Subnet of the VIP.
    pub subnet: Option<String>,
    /// Names of the groups on the listeners.
    pub groups: Vec<String>,
    /// Listeners (each fronting every member at its target port).
    pub listeners: Vec<DesiredListener>,
    /// Names of the member nodes.
    pub members: Vec<String>,
    /// Tags.
    pub tags: Tags,
}

/// Everything the spec asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Desired {
    /// The cluster (owner tag value).
    pub cluster: String,
    /// AZs nodes are spread over, in order.
    pub zones: Vec<String>,
    /// Security groups.
    pub groups: Vec<DesiredGroup>,
    /// Nodes, masters first, then nodes, then storage nodes.
    pub instances: Vec<DesiredInstance>,
    /// Data volumes.
    pub volumes: Vec<DesiredVolume>,
    /// Floating IPs.
    pub floating_ips: Vec<DesiredFloatingIp>,
    /// Load balancers.
    pub load_balancers: Vec<DesiredLoadBalancer>,
    /// Why `apply` must refuse before creating anything (e.g. no LB on this provider).
    pub blockers: Vec<String>,
    /// What the operator should know but does not stop `apply`.
    pub warnings: Vec<String>,
}

impl Desired {
    /// Nothing: what `destroy` diffs against.
    pub fn empty(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            ..Self::default()
        }
    }

    /// Builds the desired state of `spec` over `zones` (the AZs to use, in order), for a
    /// provider with `caps` and `families`.
    pub fn from_spec(
        spec: &ClusterSpec,
        zones: &[String],
        caps: &Capabilities,
        families: &[Family],
    ) -> Desired {
        let has_lbs = families.contains(&Family::LoadBalancers);
        let has_fips = families.contains(&Family::FloatingIps);
        let c = &spec.name;
        let net = &spec.network;
        let mut d = Desired {
            cluster: c.clone(),
            zones: zones.to_vec(),
            ..Desired::default()
        };
        if spec.name_is_default {
            d.warnings.push(format!(
                "ClusterName is not set: the cluster is named {c}, as is every other spec without one on this cloud; set ClusterName in {} to keep them apart",
                spec.source
            ));
        }
        d.warnings.extend(spec.ignored_keys.iter().cloned());
        let managed_lb = spec.load_balancer_mode == LoadBalancerMode::Provider;
        if managed_lb && !has_lbs {
            d.blockers.push(format!(
                "this provider has no load balancers: set LoadBalancer = external in {} and bring your own",
                spec.source
            ));
        }
        if !managed_lb {
            let wanted: Vec<String> = spec
                .load_balancers
                .iter()
                .filter(|lb| spec.role(lb.role).count > 0)
                .map(|lb| {
                    let mut w =
                        format!("{} :{} -> {}:{}", lb.name, lb.port, lb.role, lb.target_port);
                    // An LB with sources of its own says them; the rest share the CIDR.
                    if lb.sources != [net.load_balancer_cidr] {
                        let from: Vec<String> = lb.sources.iter().map(|c| c.to_string()).collect();
                        w.push_str(&format!(" from {}", from.join(" ")));
                    }
                    w
                })
                .collect();
            let none = if has_lbs {
                ""
            } else {
                " (this provider has none)"
            };
            d.warnings.push(format!(
                "LoadBalancer = external: Plinth creates no load balancers{none}; bring your own ({}) from {}",
                wanted.join(", "),
                spec.network.load_balancer_cidr
            ));
        }
        for lb in &spec.load_balancers {
            if managed_lb && has_lbs && !caps.lb_protocols.contains(&lb.protocol) {
                d.blockers.push(format!(
                    "the {} load balancer needs {:?} listeners, which this provider does not offer",
                    lb.name, lb.protocol
                ));
            }
        }
        let has_groups = families.contains(&Family::SecurityGroups);
        if has_groups && !caps.security_groups_enforced {
            match spec.security_groups_mode {
                SecurityGroupsMode::Provider => d.blockers.push(format!(
                    "this provider only records security groups, it does not enforce them: the cluster's least-privilege rules (SSH only from {}, the LB ports only from the load balancers) would not filter any traffic. Secure the network elsewhere (NSX, a distributed firewall) and set SecurityGroups = external in {} to say so",
                    net.jumpbox_cidr, spec.source
                )),
                SecurityGroupsMode::External => d.warnings.push(
                    "SecurityGroups = external: this provider only records the cluster's security groups; the network must be secured elsewhere, as the spec says it is".into(),
                ),
            }
        }
        if !caps.group_sources {
            d.warnings.push(
                "this provider cannot name a group as a rule source: intra-cluster and LB-to-node rules use the LoadBalancerCIDR instead".into(),
            );
        }

        // Least privilege: SSH from the jumpbox, listeners from the LB CIDR, members
        // reachable from the LBs, and the nodes from each other, by group reference.
        let group = |purpose: &str| format!("{c}-{purpose}");
        let mut base_rules = vec![RuleRef::Rule(IngressRule::tcp(22, net.jumpbox_cidr))];
        if caps.group_sources {
            base_rules.push(RuleRef::Group {
                protocol: Protocol::Any,
                ports: None,
                group: group("base"),
            });
        }
        d.groups.push(DesiredGroup {
            name: group("base"),
            description: format!("{c}: every node; SSH from the jumpbox, traffic between nodes"),
            rules: base_rules,
            tags: owner_tags(c, "base"),
        });
        let lbs: Vec<_> = spec
            .load_balancers
            .iter()
            .filter(|lb| spec.role(lb.role).count > 0)
            .collect();
        if managed_lb && has_lbs {
            // Each listener group opens its LBs' ports to their sources only.
            for lb in &lbs {
                let rules = lb
                    .sources
                    .iter()
                    .map(|cidr| RuleRef::Rule(IngressRule::tcp(lb.port, *cidr)));
                match d.groups.iter_mut().find(|g| g.name == group(&lb.group)) {
                    Some(g) => push_new(&mut g.rules, rules),
                    None => d.groups.push(DesiredGroup {
                        name: group(&lb.group),
                        description: if lb.group == "lb" {
                            format!("{c}: load balancer listeners, from LoadBalancerCIDR")
                        } else {
                            format!("{c}: the {} load balancer's listener", lb.name)
                        },
                        rules: rules.collect(),
                        tags: owner_tags(c, &lb.group),
                    }),
                }
            }
        }
        // Each role opens exactly the target ports of the LBs in front of it, each to
        // that LB's group (or, for an LB of the installer's, its sources).
        for lb in &lbs {
            let target = PortRange::single(lb.target_port);
            let rules: Vec<RuleRef> = if managed_lb && caps.group_sources {
                vec![RuleRef::Group {
                    protocol: Protocol::Tcp,
                    ports: Some(target),
                    group: group(&lb.group),
                }]
            } else {
                // An external LB is only known by where it connects from, and so is any
                // LB where a rule cannot name a group.
                lb.sources
                    .iter()
                    .map(|cidr| {
                        RuleRef::Rule(
                            IngressRule::new(Protocol::Tcp, RuleSource::Cidr(*cidr))
                                .with_ports(target),
                        )
                    })
                    .collect()
            };
            let name = group(lb.role.as_str());
            match d.groups.iter_mut().find(|g| g.name == name) {
                Some(g) => {
                    push_new(&mut g.rules, rules);
                    g.description = format!(
                        "{c}: {} nodes, the target ports of their load balancers",
                        lb.role
                    );
                }
                None => d.groups.push(DesiredGroup {
                    name,
                    description: format!("{c}: {} nodes, {} port from the LB", lb.role, lb.name),
                    rules,
                    tags: owner_tags(c, lb.role.as_str()),
                }),
            }
        }

        // Nodes: masters first across the AZs, then nodes round robin, then storage.
        for role in Role::ALL {
            let rs = spec.role(role);
            if rs.count == 0 {
                continue;
            }
            let mut groups = vec![group("base")];
            if d.groups.iter().any(|g| g.name == group(role.as_str())) {
                groups.push(group(role.as_str()));
            }
            let hash = spec_hash(spec, role, &groups, zones);
            for ordinal in 0..rs.count {
                let az_index = if zones.is_empty() {
                    0
                } else {
                    ordinal % zones.len()
                };
                let az = zones.get(az_index).cloned().unwrap_or_default();
                let name = format!("{c}-{role}-{ordinal}");
                let mut tags = owner_tags(c, role.as_str());
                tags.insert(TAG_ORDINAL.into(), ordinal.to_string());
                tags.insert(TAG_SPEC_HASH.into(), hash.clone());
                for (index, v) in rs
                    .volumes
                    .iter()
                    .flat_map(|v| (0..v.count).map(move |i| (i, v)))
                {
                    d.volumes.push(DesiredVolume {
                        name: volume_name(&name, index),
                        instance: name.clone(),
                        availability_zone: az.clone(),
                        size_gib: v.size_gib,
                        volume_type: v.volume_type.clone(),
                        tags: tags.clone(),
                    });
                }
                if rs.floating_ip && has_fips {
                    if let Some(pool) = &net.floating_ip_pool {
                        d.floating_ips.push(DesiredFloatingIp {
                            name: format!("{name}-fip"),
                            pool: pool.clone(),
                            instance: name.clone(),
                            tags: tags.clone(),
                        });
                    }
                }
                d.instances.push(DesiredInstance {
                    name,
                    role,
                    ordinal,
                    availability_zone: az,
                    flavor: rs.flavor.clone(),
                    image: rs.image.clone(),
                    network: net.network.clone(),
                    subnet: net.subnet_for(az_index),
                    groups: groups.clone(),
                    keypair: net.keypair.clone(),
                    user_data: rs.user_data.clone(),
                    tags,
                });
            }
        }
        let with_fips: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| spec.role(*r).floating_ip && spec.role(*r).count > 0)
            .map(|r| match r {
                Role::Master => "masters",
                Role::Node => "nodes",
                Role::Storage => "storage nodes",
            })
            .collect();
        if net.floating_ip_pool.is_some() && !has_fips && !with_fips.is_empty() {
            d.warnings.push(format!(
                "this provider has no floating IPs: the {} get none",
                with_fips.join(" and ")
            ));
        }

        if managed_lb && has_lbs {
            for lb in lbs {
                let members = d
                    .instances
                    .iter()
                    .filter(|i| i.role == lb.role)
                    .map(|i| i.name.clone())
                    .collect();
                d.load_balancers.push(DesiredLoadBalancer {
                    name: group(&lb.name),
                    subnet: net.subnet_for(0),
                    groups: vec![group(&lb.group)],
                    listeners: vec![DesiredListener {
                        protocol: lb.protocol,
                        port: lb.port,
                        target_port: lb.target_port,
                        health_check: lb.health_check.clone(),
                    }],
                    members,
                    tags: owner_tags(c, &lb.name),
                });
            }
        }
        d
    }
}

/// The name of a node's data volume `index`: `<node>-data`, then `<node>-data-1`, ...
pub fn volume_name(node: &str, index: usize) -> String {
    match index {
        0 => format!("{node}-data"),
        i => format!("{node}-data-{i}"),
    }
}

/// Adds the rules of `new` that `rules` does not have yet.
fn push_new(rules: &mut Vec<RuleRef>, new: impl IntoIterator<Item = RuleRef>) {
    for r in new {
        if !rules.contains(&r) {
            rules.push(r);
        }
    }
}

/// The hash of what defines a node of `role` (image, flavor, user data, volumes,
/// security groups, AZ list), never its count: scaling does not make nodes stale.
pub fn spec_hash(spec: &ClusterSpec, role: Role, groups: &[String], zones: &[String]) -> String {
    let rs = spec.role(role);
    let mut groups = groups.to_vec();
    groups.sort();
    let canonical = format!(
        "role={role}\nimage={}\nflavor={}\nuser_data={}\nvolume={}\ngroups={}\nzones={}",
        rs.image,
        rs.flavor,
        rs.user_data.as_deref().unwrap_or(""),
        volumes_canonical(rs.volumes.as_ref()),
        groups.join(","),
        zones.join(","),
    );
    // FNV-1a: stable across Rust releases, unlike std's DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canonical.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The volumes in the spec hash: one volume of the default type is its size alone, as
/// before volume counts and types existed, so existing nodes stay current.
fn volumes_canonical(v: Option<&crate::spec::VolumeDef>) -> String {
    match v {
        None => String::new(),
        Some(v) if v.count == 1 && v.volume_type.is_none() => v.size_gib.to_string(),
        Some(v) => format!(
            "{}x{}:{}",
            v.count,
            v.size_gib,
            v.volume_type.as_deref().unwrap_or("")
        ),
    }
}
