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
///
/// Built with [`HealthCheck::new`] (or [`HealthCheck::http`], or `Default`, a TCP check)
/// and the `with_*` setters, so that fields added later do not break callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

impl HealthCheck {
    /// A check of this protocol with the default timing (every 5 s, 3 s to answer, two
    /// results to change state) on the member port. HTTP checks also need
    /// [`HealthCheck::with_path`].
    pub fn new(protocol: HealthCheckProtocol) -> Self {
        Self {
            protocol,
            ..Self::default()
        }
    }

    /// An HTTP check of `path` with the default timing.
    pub fn http(path: impl Into<String>) -> Self {
        Self::new(HealthCheckProtocol::Http).with_path(path)
    }

    /// Checks this port instead of the member port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the path of an HTTP check.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets the time between checks.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the time one check may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the consecutive successes that make a member healthy.
    pub fn with_healthy_threshold(mut self, n: u32) -> Self {
        self.healthy_threshold = n;
        self
    }

    /// Sets the consecutive failures that make a member unhealthy.
    pub fn with_unhealthy_threshold(mut self, n: u32) -> Self {
        self.unhealthy_threshold = n;
        self
    }
}

/// A pool member: an instance and the port traffic goes to.
///
/// Built with [`MemberSpec::new`], so that fields added later do not break callers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemberSpec {
    /// The instance.
    pub instance_id: String,
    /// Port on the instance.
    pub port: u16,
}

impl MemberSpec {
    /// The member `instance_id`, receiving traffic on `port`.
    pub fn new(instance_id: impl Into<String>, port: u16) -> Self {
        Self {
            instance_id: instance_id.into(),
            port,
        }
    }

    /// Checks the member for `op`.
    pub fn validate(&self, op: Operation) -> Result<()> {
        validate_member(op, "member", self)
    }
}

/// A listener and the pool behind it.
///
/// Built with [`ListenerSpec::new`] and the `with_*` setters, so that fields added later
/// do not break callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

impl ListenerSpec {
    /// A listener on `port` with the default (TCP) health check and no members.
    pub fn new(protocol: LbProtocol, port: u16) -> Self {
        Self {
            protocol,
            port,
            health_check: HealthCheck::default(),
            members: Vec::new(),
        }
    }

    /// Sets the pool's health check.
    pub fn with_health_check(mut self, health_check: HealthCheck) -> Self {
        self.health_check = health_check;
        self
    }

    /// Sets the initial members, replacing any set before.
    pub fn with_members(mut self, members: impl IntoIterator<Item = MemberSpec>) -> Self {
        self.members = members.into_iter().collect();
        self
    }
}

/// What to create: a load balancer with listeners, pools and members.
///
/// Built with [`LoadBalancerSpec::new`] and the `with_*` setters, so that fields added
/// later do not break callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// A load balancer with these listeners (validation wants at least one), no subnet,
    /// security groups or tags.
    pub fn new(name: impl Into<String>, listeners: impl IntoIterator<Item = ListenerSpec>) -> Self {
        Self {
            name: name.into(),
            subnet: None,
            security_groups: Vec::new(),
            listeners: listeners.into_iter().collect(),
            tags: Tags::new(),
        }
    }

    /// Sets the VIP's subnet (id or name).
    pub fn with_subnet(mut self, subnet: impl Into<String>) -> Self {
        self.subnet = Some(subnet.into());
        self
    }

    /// Sets the security group ids, replacing any set before.
    pub fn with_security_groups<S: Into<String>>(
        mut self,
        groups: impl IntoIterator<Item = S>,
    ) -> Self {
        self.security_groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the tags, replacing any set before.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

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
