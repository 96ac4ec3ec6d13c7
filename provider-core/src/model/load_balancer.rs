use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{tags::validate_tags, validate_name, validate_non_empty, Tags};
use crate::{Error, Operation, Result};

/// Listener protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LbProtocol {
    /// Layer-4 TCP.
    Tcp,
    /// Layer-7 HTTP.
    Http,
}

/// How a pool checks its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckProtocol {
    /// A TCP connect.
    Tcp,
    /// An HTTP GET that must answer 2xx/3xx.
    Http,
}

/// Member health check of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// How to check.
    pub protocol: HealthCheckProtocol,
    /// Port to check; `None` means the member port.
    pub port: Option<u16>,
    /// Path for HTTP checks.
    pub path: Option<String>,
    /// Time between checks.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive successes that make a member healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures that make a member unhealthy.
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            protocol: HealthCheckProtocol::Tcp,
            port: None,
            path: None,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}

/// A pool member: an instance and the port traffic goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberSpec {
    /// The instance.
    pub instance_id: String,
    /// Port on the instance.
    pub port: u16,
}

/// A listener and the pool behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerSpec {
    /// Protocol.
    pub protocol: LbProtocol,
    /// Port the load balancer listens on; unique within the LB.
    pub port: u16,
    /// Health check of the pool (round robin).
    pub health_check: HealthCheck,
    /// Initial members.
    pub members: Vec<MemberSpec>,
}

/// What to create: a load balancer with listeners, pools and members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    /// Unique name.
    pub name: String,
    /// Subnet (id or name) for the VIP, where the provider needs one.
    pub subnet: Option<String>,
    /// Security group ids applied to the listeners, where the provider supports them.
    pub security_groups: Vec<String>,
    /// Listeners; at least one.
    pub listeners: Vec<ListenerSpec>,
    /// Tags.
    pub tags: Tags,
}

impl LoadBalancerSpec {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let op = Operation::CreateLoadBalancer;
        validate_name(op, "spec.name", &self.name)?;
        if self.listeners.is_empty() {
            return Err(Error::invalid(
                op,
                "spec.listeners",
                "add at least one listener",
            ));
        }
        let mut ports = std::collections::BTreeSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let field = format!("spec.listeners[{i}]");
            if l.port == 0 {
                return Err(Error::invalid(
                    op,
                    format!("{field}.port"),
                    "use a port from 1 to 65535",
                ));
            }
            if !ports.insert(l.port) {
                return Err(Error::invalid(
                    op,
                    format!("{field}.port"),
                    format!(
                        "port {} is used by another listener: give each listener its own port",
                        l.port
                    ),
                ));
            }
            validate_health_check(op, &format!("{field}.health_check"), &l.health_check)?;
            for (j, m) in l.members.iter().enumerate() {
                validate_member(op, &format!("{field}.members[{j}]"), m)?;
            }
        }
        validate_tags(op, "spec.tags", &self.tags)
    }
}

fn validate_health_check(op: Operation, field: &str, h: &HealthCheck) -> Result<()> {
    if h.interval.is_zero() || h.timeout.is_zero() || h.timeout > h.interval {
        return Err(Error::invalid(op, field, "use 0 < timeout <= interval"));
    }
    if h.healthy_threshold == 0 || h.unhealthy_threshold == 0 {
        return Err(Error::invalid(op, field, "thresholds must be at least 1"));
    }
    if h.protocol == HealthCheckProtocol::Http
        && h.path.as_deref().is_none_or(|p| !p.starts_with('/'))
    {
        return Err(Error::invalid(
            op,
            format!("{field}.path"),
            "HTTP checks need a path starting with '/'",
        ));
    }
    Ok(())
}

/// Checks a member spec; `field` is where it sits in the caller's input.
pub(crate) fn validate_member(op: Operation, field: &str, m: &MemberSpec) -> Result<()> {
    validate_non_empty(op, &format!("{field}.instance_id"), &m.instance_id)?;
    if m.port == 0 {
        return Err(Error::invalid(
            op,
            format!("{field}.port"),
            "use a port from 1 to 65535",
        ));
    }
    Ok(())
}

impl MemberSpec {
    /// Checks the member for `op`.
    pub fn validate(&self, op: Operation) -> Result<()> {
        validate_member(op, "member", self)
    }
}

/// Lifecycle state of a load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerState {
    /// Being created or changed; immutable until active again.
    Pending,
    /// Serving.
    Active,
    /// Failed; delete and recreate it.
    Error,
    /// Being deleted.
    Deleting,
}

/// What the health check last said of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberHealth {
    /// Not checked yet (or the provider cannot tell).
    Unknown,
    /// Receives traffic.
    Healthy,
    /// Receives no traffic.
    Unhealthy,
    /// Being removed; open connections finish.
    Draining,
}

/// A member that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The instance.
    pub instance_id: String,
    /// Port on the instance.
    pub port: u16,
    /// Health.
    pub health: MemberHealth,
}

/// A pool that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Health check.
    pub health_check: HealthCheck,
    /// Members.
    pub members: Vec<Member>,
}

/// A listener that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// Protocol.
    pub protocol: LbProtocol,
    /// Port.
    pub port: u16,
    /// The pool behind it.
    pub pool: Pool,
}

/// A load balancer that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    /// Provider id.
    pub id: String,
    /// Name.
    pub name: String,
    /// State.
    pub state: LoadBalancerState,
    /// Address clients connect to (IP or DNS name), once known.
    pub address: Option<String>,
    /// Security group ids on the listeners.
    pub security_groups: Vec<String>,
    /// Listeners.
    pub listeners: Vec<Listener>,
    /// Tags.
    pub tags: Tags,
}

impl LoadBalancer {
    /// The listener on `port`, if any.
    pub fn listener(&self, port: u16) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.port == port)
    }
}
