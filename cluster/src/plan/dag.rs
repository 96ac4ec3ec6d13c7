//! The plan: a DAG of actions. Actions name resources by their deterministic names;
//! the executor resolves names to provider ids as resources come into being, so an
//! action can start the moment its own dependencies are done.

use std::fmt;

use provider_core::{IngressRule, MemberSpec, PortRange, Protocol, RuleSource, VolumeSpec};
use serde::Serialize;

use super::desired::{DesiredInstance, DesiredLoadBalancer};
use provider_core::{FloatingIp, FloatingIpSpec};

/// An ingress rule whose group source is named, not yet resolved to an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleRef {
    /// A rule with a concrete source (a CIDR, or a group id already known).
    Rule(IngressRule),
    /// A rule whose source is the cluster group with this name.
    Group {
        /// Protocol.
        protocol: Protocol,
        /// Ports.
        ports: Option<PortRange>,
        /// Name of the source group.
        group: String,
    },
}

impl RuleRef {
    /// The rule with its group source resolved by `id_of` (a group name to its id).
    pub fn resolve(&self, id_of: impl Fn(&str) -> Option<String>) -> Option<IngressRule> {
        match self {
            RuleRef::Rule(r) => Some(r.clone()),
            RuleRef::Group {
                protocol,
                ports,
                group,
            } => id_of(group).map(|id| {
                let mut rule = IngressRule::new(*protocol, RuleSource::Group(id));
                rule.ports = *ports;
                rule
            }),
        }
    }
}

/// One step of a plan. Resource references are names; ids appear only for resources
/// that exist already (deletes).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create a security group with its CIDR rules.
    CreateSecurityGroup {
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Rules that need no other group.
        rules: Vec<IngressRule>,
        /// Tags.
        tags: provider_core::Tags,
    },
    /// Add rules (possibly naming groups) to a group.
    AddSecurityGroupRules {
        /// Group name.
        group: String,
        /// Rules to add.
        rules: Vec<RuleRef>,
    },
    /// Remove rules from a group (drift, or before deleting groups they name).
    RemoveSecurityGroupRules {
        /// Group name.
        group: String,
        /// Group id.
        id: String,
        /// Rules to remove.
        rules: Vec<IngressRule>,
    },
    /// Delete a security group.
    DeleteSecurityGroup {
        /// Name.
        name: String,
        /// Id.
        id: String,
    },
    /// Create a volume.
    CreateVolume {
        /// The volume.
        spec: VolumeSpec,
    },
    /// Create a batch of nodes (one `create_instances` call).
    CreateInstances {
        /// The nodes.
        instances: Vec<DesiredInstance>,
    },
    /// Attach a volume to a node.
    AttachVolume {
        /// Volume name.
        volume: String,
        /// Node name.
        instance: String,
    },
    /// Detach a volume.
    DetachVolume {
        /// Volume name.
        name: String,
        /// Volume id.
        id: String,
    },
    /// Delete a volume.
    DeleteVolume {
        /// Name.
        name: String,
        /// Id.
        id: String,
    },
    /// Allocate a floating IP.
    AllocateFloatingIp {
        /// The floating IP.
        spec: FloatingIpSpec,
    },
    /// Associate a floating IP with a node.
    AssociateFloatingIp {
        /// Floating IP name.
        floating_ip: String,
        /// Node name.
        instance: String,
    },
    /// Disassociate a floating IP from its node (releasing an associated one is
    /// `Conflict`).
    DisassociateFloatingIp {
        /// Name.
        name: String,
        /// Id.
        id: String,
    },
    /// Release a floating IP that is not associated.
    ReleaseFloatingIp {
        /// Name.
        name: String,
        /// Id.
        id: String,
    },
    /// Create a load balancer with its members.
    CreateLoadBalancer {
        /// The LB.
        lb: DesiredLoadBalancer,
    },
    /// Add a node to an existing LB's pool.
    AddLoadBalancerMember {
        /// LB name.
        lb: String,
        /// Listener port.
        port: u16,
        /// Node name.
        instance: String,
        /// Port on the node.
        target_port: u16,
    },
    /// Remove a member from an LB's pool.
    RemoveLoadBalancerMember {
        /// LB name.
        lb: String,
        /// LB id.
        lb_id: String,
        /// Listener port.
        port: u16,
        /// The member.
        member: MemberSpec,
    },
    /// Delete a load balancer.
    DeleteLoadBalancer {
        /// Name.
        name: String,
        /// Id.
        id: String,
    },
    /// Delete a node.
    DeleteInstance {
        /// Name.
        name: String,
        /// Id.
        id: String,
    },
    /// Wait until a node runs and passes the probe and the installer's health hook
    /// (replacement and scaling; see [`crate::ReplaceOptions`]).
    AwaitReady {
        /// Node name.
        instance: String,
    },
    /// Tell the installer's [`on_ready`](crate::Hooks::on_ready) hook a node is ready.
    OnReady {
        /// Node name.
        instance: String,
    },
    /// Wait until a load balancer sees a node healthy on a listener.
    AwaitMemberHealthy {
        /// LB name.
        lb: String,
        /// Listener port.
        port: u16,
        /// Node name.
        instance: String,
    },
    /// Drain a node on its way out: wait the drain period when it left a load balancer,
    /// then call the installer's [`drain`](crate::Hooks::drain) hook.
    Drain {
        /// Node name.
        instance: String,
        /// Whether it served in a load balancer (connections need the drain period).
        served: bool,
    },
    /// Refuse to go on unless the running masters other than this one keep quorum.
    CheckQuorum {
        /// The master about to go.
        instance: String,
        /// Running masters needed besides it.
        quorum: usize,
    },
    /// Set and remove tags of a node (replacement bookkeeping).
    TagInstance {
        /// Node name.
        instance: String,
        /// Tags to set.
        set: provider_core::Tags,
        /// Tag keys to remove.
        remove: Vec<String>,
    },
    /// Set and remove tags of a security group (the base group records a delete-first
    /// replacement's vacated slots).
    TagGroup {
        /// Group name.
        group: String,
        /// Tags to set.
        set: provider_core::Tags,
        /// Tag keys to remove.
        remove: Vec<String>,
    },
}

/// The actions that release floating IP `f` after `after`: disassociate it first when it
/// is associated (the contract makes releasing an associated address `Conflict`), then
/// release. `push` adds one action with its dependencies and returns its id; the result
/// is `(ends the association, released)`: the first is what the node's delete must wait
/// for, the second the release itself.
pub(crate) fn release_floating_ip(
    f: &FloatingIp,
    after: &[usize],
    mut push: impl FnMut(Action, Vec<usize>) -> usize,
) -> (usize, usize) {
    let (name, id) = (f.name.clone(), f.id.clone());
    let unbound = f.instance_id.as_ref().map(|_| {
        let disassociate = Action::DisassociateFloatingIp {
            name: name.clone(),
            id: id.clone(),
        };
        push(disassociate, after.to_vec())
    });
    let deps = unbound.map_or_else(|| after.to_vec(), |u| vec![u]);
    let released = push(Action::ReleaseFloatingIp { name, id }, deps);
    (unbound.unwrap_or(released), released)
}

impl Action {
    /// Whether the action only takes something away (the actions of a destroy plan).
    pub fn is_delete(&self) -> bool {
        matches!(
            self,
            Action::RemoveSecurityGroupRules { .. }
                | Action::DeleteSecurityGroup { .. }
                | Action::DetachVolume { .. }
                | Action::DeleteVolume { .. }
                | Action::DisassociateFloatingIp { .. }
                | Action::ReleaseFloatingIp { .. }
                | Action::RemoveLoadBalancerMember { .. }
                | Action::DeleteLoadBalancer { .. }
                | Action::DeleteInstance { .. }
        )
    }

    /// A short kind name, e.g. `create_instances`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::CreateSecurityGroup { .. } => "create_security_group",
            Action::AddSecurityGroupRules { .. } => "add_security_group_rules",
            Action::RemoveSecurityGroupRules { .. } => "remove_security_group_rules",
            Action::DeleteSecurityGroup { .. } => "delete_security_group",
            Action::CreateVolume { .. } => "create_volume",
            Action::CreateInstances { .. } => "create_instances",
            Action::AttachVolume { .. } => "attach_volume",
            Action::DetachVolume { .. } => "detach_volume",
            Action::DeleteVolume { .. } => "delete_volume",
            Action::AllocateFloatingIp { .. } => "allocate_floating_ip",
            Action::AssociateFloatingIp { .. } => "associate_floating_ip",
            Action::DisassociateFloatingIp { .. } => "disassociate_floating_ip",
            Action::ReleaseFloatingIp { .. } => "release_floating_ip",
            Action::CreateLoadBalancer { .. } => "create_load_balancer",
            Action::AddLoadBalancerMember { .. } => "add_load_balancer_member",
            Action::RemoveLoadBalancerMember { .. } => "remove_load_balancer_member",
            Action::DeleteLoadBalancer { .. } => "delete_load_balancer",
            Action::DeleteInstance { .. } => "delete_instance",
            Action::AwaitReady { .. } => "await_ready",
            Action::OnReady { .. } => "on_ready",
            Action::AwaitMemberHealthy { .. } => "await_member_healthy",
            Action::Drain { .. } => "drain",
            Action::CheckQuorum { .. } => "check_quorum",
            Action::TagInstance { .. } => "tag_instance",
            Action::TagGroup { .. } => "tag_group",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateSecurityGroup { name, rules, .. } => {
                write!(f, "create security group {name} ({} rules)", rules.len())
            }
            Action::AddSecurityGroupRules { group, rules } => {
                write!(f, "add {} rules to security group {group}", rules.len())
            }
            Action::RemoveSecurityGroupRules { group, rules, .. } => {
                write!(
                    f,
                    "remove {} rules from security group {group}",
                    rules.len()
                )
            }
            Action::DeleteSecurityGroup { name, .. } => write!(f, "delete security group {name}"),
            Action::CreateVolume { spec } => write!(
                f,
                "create volume {} ({} GiB in {})",
                spec.name, spec.size_gib, spec.availability_zone
            ),
            Action::CreateInstances { instances } => {
                let names: Vec<String> = instances
                    .iter()
                    .map(|i| format!("{} ({})", i.name, i.availability_zone))
                    .collect();
                write!(f, "create instances {}", names.join(", "))
            }
            Action::AttachVolume { volume, instance } => {
                write!(f, "attach volume {volume} to {instance}")
            }
            Action::DetachVolume { name, .. } => write!(f, "detach volume {name}"),
            Action::DeleteVolume { name, .. } => write!(f, "delete volume {name}"),
            Action::AllocateFloatingIp { spec } => {
                write!(f, "allocate floating IP {} from {}", spec.name, spec.pool)
            }
            Action::AssociateFloatingIp {
                floating_ip,
                instance,
            } => write!(f, "associate floating IP {floating_ip} with {instance}"),
            Action::DisassociateFloatingIp { name, .. } => {
                write!(f, "disassociate floating IP {name}")
            }
            Action::ReleaseFloatingIp { name, .. } => write!(f, "release floating IP {name}"),
            Action::CreateLoadBalancer { lb } => {
                let ports: Vec<String> = lb.listeners.iter().map(|l| l.port.to_string()).collect();
                write!(
                    f,
                    "create load balancer {} (port {}, {} members)",
                    lb.name,
                    ports.join(","),
                    lb.members.len()
                )
            }
            Action::AddLoadBalancerMember {
                lb, port, instance, ..
            } => write!(f, "add {instance} to load balancer {lb} port {port}"),
            Action::RemoveLoadBalancerMember {
                lb, port, member, ..
            } => write!(
                f,
                "remove {} from load balancer {lb} port {port}",
                member.instance_id
            ),
            Action::DeleteLoadBalancer { name, .. } => write!(f, "delete load balancer {name}"),
            Action::DeleteInstance { name, .. } => write!(f, "delete instance {name}"),
            Action::AwaitReady { instance } => write!(f, "wait until {instance} is ready"),
            Action::OnReady { instance } => write!(f, "tell the installer {instance} is ready"),
            Action::AwaitMemberHealthy { lb, port, instance } => write!(
                f,
                "wait until load balancer {lb} port {port} sees {instance} healthy"
            ),
            Action::Drain { instance, .. } => write!(f, "drain {instance}"),
            Action::CheckQuorum { instance, quorum } => write!(
                f,
                "check that {quorum} running master(s) besides {instance} keep quorum"
            ),
            Action::TagInstance {
                instance,
                set,
                remove,
            } => {
                let mut parts: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
                parts.extend(remove.iter().map(|k| format!("-{k}")));
                write!(f, "tag {instance}: {}", parts.join(" "))
            }
            Action::TagGroup { group, set, remove } => {
                let mut parts: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
                parts.extend(remove.iter().map(|k| format!("-{k}")));
                write!(f, "tag security group {group}: {}", parts.join(" "))
            }
        }
    }
}

/// An action and the actions it waits for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    /// Index in [`Plan::actions`].
    pub id: usize,
    /// What to do.
    pub action: Action,
    /// Ids of the actions that must be done first (always smaller ids).
    pub deps: Vec<usize>,
}

/// A DAG of actions. Dependencies always point to earlier actions, so the list order
/// is one valid sequential order and the graph has no cycle by construction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The cluster.
    pub cluster: String,
    /// The actions.
    pub actions: Vec<PlannedAction>,
    /// Why `apply` must refuse (e.g. the provider has no LBs); empty for a plan that
    /// can run.
    pub blockers: Vec<String>,
    /// Notes for the operator.
    pub warnings: Vec<String>,
    /// The state the plan was made from (the executor starts from its ids).
    #[serde(skip)]
    pub(crate) observed: super::Observed,
    /// Whether it removes the whole cluster (made by [`crate::Cluster::plan_destroy`]).
    #[serde(skip)]
    pub(crate) teardown: bool,
}

impl Plan {
    /// An empty plan for `cluster`, to start from `observed`.
    pub(crate) fn from_observed(cluster: &str, observed: super::Observed) -> Self {
        Self {
            cluster: cluster.to_string(),
            observed,
            ..Self::default()
        }
    }

    /// The nodes the plan creates, each with the id of the action that creates it.
    pub fn created_instances(&self) -> Vec<(usize, &DesiredInstance)> {
        self.actions
            .iter()
            .filter_map(|a| match &a.action {
                Action::CreateInstances { instances } => Some((a.id, instances)),
                _ => None,
            })
            .flat_map(|(id, list)| list.iter().map(move |i| (id, i)))
            .collect()
    }

    /// A plan with nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Adds an action after its dependencies; returns its id.
    pub fn push(&mut self, action: Action, deps: impl IntoIterator<Item = usize>) -> usize {
        let id = self.actions.len();
        let mut deps: Vec<usize> = deps.into_iter().filter(|d| *d < id).collect();
        deps.sort_unstable();
        deps.dedup();
        self.actions.push(PlannedAction { id, action, deps });
        id
    }

    /// The state the plan was made from.
    pub fn observed(&self) -> &super::Observed {
        &self.observed
    }

    /// How many resources the cluster held when the plan was made (what a
    /// [`crate::Cluster::plan_destroy`] plan removes).
    pub fn resources(&self) -> usize {
        self.observed.len()
    }

    /// Counts of actions by kind, for summaries.
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut m = std::collections::BTreeMap::new();
        for a in &self.actions {
            *m.entry(a.action.kind()).or_default() += 1;
        }
        m
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            writeln!(f, "cluster {}: nothing to do", self.cluster)?;
        } else {
            writeln!(
                f,
                "cluster {}: {} actions",
                self.cluster,
                self.actions.len()
            )?;
            for a in &self.actions {
                let after = if a.deps.is_empty() {
                    String::new()
                } else {
                    let ids: Vec<String> = a.deps.iter().map(|d| format!("#{d}")).collect();
                    format!("  (after {})", ids.join(", "))
                };
                writeln!(f, "  #{:<4} {}{after}", a.id, a.action)?;
            }
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        for b in &self.blockers {
            writeln!(f, "cannot apply: {b}")?;
        }
        Ok(())
    }
}
