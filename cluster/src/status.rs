//! `status`: the nodes by role and AZ with addresses and states, and the load
//! balancers with their members' health, as the cloud reports them.

use std::collections::{BTreeMap, HashMap};

use provider_core::{InstanceState, LbProtocol, LoadBalancerState, MemberHealth};
use serde::Serialize;

use crate::health::{HealthReport, HealthState, NodeHealth};
use crate::plan::{Desired, Observed, TAG_ORDINAL, TAG_ROLE, TAG_SPEC_HASH};

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// The slot it fills, `<cluster>-<role>-<ordinal>` (see [`crate::slot`]).
    pub slot: String,
    /// The instance's name (the slot's, or a replacement's `<slot>-r<generation>`).
    pub name: String,
    /// Role tag (`master`, `node`, `storage`).
    pub role: String,
    /// Ordinal tag.
    pub ordinal: Option<usize>,
    /// AZ.
    pub availability_zone: String,
    /// State.
    pub state: InstanceState,
    /// Private address.
    pub private_ip: Option<String>,
    /// Public (floating) address.
    pub public_ip: Option<String>,
    /// Whether the spec hash differs from the spec's (a replacement is due).
    pub stale: bool,
    /// Whether the spec asks for this node (false: `apply` will remove it).
    pub wanted: bool,
    /// Names of the volumes attached to it.
    pub volumes: Vec<String>,
    /// Its health and why (see [`crate::health`]); healthy until
    /// [`ClusterStatus::with_health`] sets it.
    pub health: NodeHealth,
}

/// One LB member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    /// Node name (or id, for a node the cluster does not own).
    pub instance: String,
    /// Port on the node.
    pub port: u16,
    /// Health.
    pub health: MemberHealth,
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerStatus {
    /// Protocol.
    pub protocol: LbProtocol,
    /// Port.
    pub port: u16,
    /// Members.
    pub members: Vec<MemberStatus>,
}

/// One load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadBalancerStatus {
    /// Name.
    pub name: String,
    /// State.
    pub state: LoadBalancerState,
    /// Address clients connect to.
    pub address: Option<String>,
    /// Listeners.
    pub listeners: Vec<ListenerStatus>,
}

impl LoadBalancerStatus {
    /// `host:port` of each listener, for printing how to reach it.
    pub fn endpoints(&self) -> Vec<String> {
        let Some(addr) = &self.address else {
            return Vec::new();
        };
        self.listeners
            .iter()
            .map(|l| match l.protocol {
                LbProtocol::Http => format!("http://{addr}:{}/", l.port),
                LbProtocol::Tcp => format!("{addr}:{}", l.port),
            })
            .collect()
    }
}

/// The whole cluster as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    /// Cluster name.
    pub cluster: String,
    /// Nodes, by role then ordinal.
    pub nodes: Vec<NodeStatus>,
    /// Load balancers.
    pub load_balancers: Vec<LoadBalancerStatus>,
    /// Nodes per role and AZ.
    pub spread: BTreeMap<String, BTreeMap<String, usize>>,
    /// Slots the spec asks for that no instance fills (what `apply` would create).
    pub missing: Vec<String>,
    /// What the operator should know (the plan's warnings, e.g. a default cluster name).
    pub warnings: Vec<String>,
}

impl ClusterStatus {
    /// Summarises `observed` against `desired`.
    pub fn new(desired: &Desired, observed: &Observed) -> Self {
        let want: HashMap<&str, &crate::plan::DesiredInstance> = desired
            .instances
            .iter()
            .map(|i| (i.name.as_str(), i))
            .collect();
        let name_of: HashMap<&str, &str> = observed
            .instances
            .iter()
            .map(|i| (i.id.as_str(), i.name.as_str()))
            .collect();
        let mut volumes_of: HashMap<&str, Vec<String>> = HashMap::new();
        for v in &observed.volumes {
            if let Some(a) = &v.attachment {
                volumes_of
                    .entry(a.instance_id.as_str())
                    .or_default()
                    .push(v.name.clone());
            }
        }
        let mut nodes: Vec<NodeStatus> = observed
            .instances
            .iter()
            .map(|i| {
                // By slot: a replacement stands for its slot under another name.
                let d = want.get(crate::slot::slot_of(i));
                NodeStatus {
                    slot: crate::slot::slot_of(i).to_string(),
                    name: i.name.clone(),
                    role: i.tags.get(TAG_ROLE).cloned().unwrap_or_default(),
                    ordinal: i.tags.get(TAG_ORDINAL).and_then(|o| o.parse().ok()),
                    availability_zone: i.availability_zone.clone(),
                    state: i.state,
                    private_ip: i.private_ip.map(|a| a.to_string()),
                    public_ip: i.public_ip.map(|a| a.to_string()),
                    stale: d
                        .is_some_and(|d| d.tags.get(TAG_SPEC_HASH) != i.tags.get(TAG_SPEC_HASH)),
                    wanted: d.is_some(),
                    volumes: volumes_of.get(i.id.as_str()).cloned().unwrap_or_default(),
                    health: NodeHealth::healthy(),
                }
            })
            .collect();
        let role_rank = |r: &str| match r {
            "master" => 0,
            "node" => 1,
            "storage" => 2,
            _ => 3,
        };
        nodes.sort_by(|a, b| {
            (role_rank(&a.role), a.ordinal, &a.name).cmp(&(role_rank(&b.role), b.ordinal, &b.name))
        });
        let mut spread: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for n in &nodes {
            *spread
                .entry(n.role.clone())
                .or_default()
                .entry(n.availability_zone.clone())
                .or_default() += 1;
        }
        let mut load_balancers: Vec<LoadBalancerStatus> = observed
            .load_balancers
            .iter()
            .map(|lb| LoadBalancerStatus {
                name: lb.name.clone(),
                state: lb.state,
                address: lb.address.clone(),
                listeners: lb
                    .listeners
                    .iter()
                    .map(|l| ListenerStatus {
                        protocol: l.protocol,
                        port: l.port,
                        members: l
                            .pool
                            .members
                            .iter()
                            .map(|m| MemberStatus {
                                instance: name_of
                                    .get(m.instance_id.as_str())
                                    .map_or_else(|| m.instance_id.clone(), |n| n.to_string()),
                                port: m.port,
                                health: m.health,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        load_balancers.sort_by(|a, b| a.name.cmp(&b.name));
        let present: std::collections::HashSet<&str> = observed
            .instances
            .iter()
            .map(crate::slot::slot_of)
            .collect();
        let missing = desired
            .instances
            .iter()
            .filter(|d| !present.contains(d.name.as_str()))
            .map(|d| d.name.clone())
            .collect();
        Self {
            cluster: desired.cluster.clone(),
            nodes,
            load_balancers,
            spread,
            missing,
            warnings: desired.warnings.clone(),
        }
    }
}

impl ClusterStatus {
    /// Sets each node's health from `health` (a node it did not judge, such as a
    /// successor while its replacement runs, shows as replacing).
    pub fn with_health(mut self, health: &HealthReport) -> Self {
        for n in &mut self.nodes {
            n.health = health.of(&n.name).cloned().unwrap_or(NodeHealth {
                state: HealthState::Replacing,
                findings: Vec::new(),
            });
        }
        self
    }
}
