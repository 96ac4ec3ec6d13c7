use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{tags::validate_tags, validate_name, Tags};
use crate::{Error, Operation, Result};

/// IP protocol of an ingress rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP, with a port range.
    Tcp,
    /// UDP, with a port range.
    Udp,
    /// ICMP (no ports).
    Icmp,
    /// Every protocol and port.
    Any,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    /// First port.
    pub from: u16,
    /// Last port, inclusive.
    pub to: u16,
}

impl PortRange {
    /// A single port.
    pub fn single(port: u16) -> Self {
        Self {
            from: port,
            to: port,
        }
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.from..=self.to).contains(&port)
    }
}

/// Where allowed traffic may come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSource {
    /// Any address in this network.
    Cidr(IpNet),
    /// Any member of the security group with this id.
    Group(String),
}

/// One ingress rule: what may reach members of a group.
///
/// Built with [`IngressRule::new`] (and [`IngressRule::with_ports`]) or the shorthands
/// [`IngressRule::tcp`] and [`IngressRule::tcp_from_group`], so that fields added later
/// do not break callers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IngressRule {
    /// The protocol.
    pub protocol: Protocol,
    /// The ports; `None` for ICMP and `Any`.
    pub ports: Option<PortRange>,
    /// Who may connect.
    pub source: RuleSource,
}

impl IngressRule {
    /// A rule for every port of `protocol` from `source`; TCP and UDP rules also need
    /// [`IngressRule::with_ports`] (validation says so otherwise).
    pub fn new(protocol: Protocol, source: RuleSource) -> Self {
        Self {
            protocol,
            ports: None,
            source,
        }
    }

    /// Sets the port range.
    pub fn with_ports(mut self, ports: PortRange) -> Self {
        self.ports = Some(ports);
        self
    }

    /// A TCP rule for one port from a CIDR.
    pub fn tcp(port: u16, cidr: IpNet) -> Self {
        Self {
            protocol: Protocol::Tcp,
            ports: Some(PortRange::single(port)),
            source: RuleSource::Cidr(cidr),
        }
    }

    /// A TCP rule for one port from members of another group.
    pub fn tcp_from_group(port: u16, group_id: impl Into<String>) -> Self {
        Self {
            protocol: Protocol::Tcp,
            ports: Some(PortRange::single(port)),
            source: RuleSource::Group(group_id.into()),
        }
    }

    /// Whether this rule admits TCP traffic to `port`.
    pub fn allows_tcp_port(&self, port: u16) -> bool {
        match self.protocol {
            Protocol::Any => true,
            Protocol::Tcp => self.ports.is_none_or(|r| r.contains(port)),
            _ => false,
        }
    }

    /// Checks the rule; `field` is where it sits in the caller's input.
    pub fn validate(&self, op: Operation, field: &str) -> Result<()> {
        match (self.protocol, self.ports) {
            (Protocol::Tcp | Protocol::Udp, None) => Err(Error::invalid(
                op,
                format!("{field}.ports"),
                "TCP and UDP rules need a port range",
            )),
            (Protocol::Tcp | Protocol::Udp, Some(r)) if r.from == 0 || r.from > r.to => {
                Err(Error::invalid(
                    op,
                    format!("{field}.ports"),
                    format!(
                        "{}-{} is not a port range: use 1 <= from <= to <= 65535",
                        r.from, r.to
                    ),
                ))
            }
            (Protocol::Icmp | Protocol::Any, Some(_)) => Err(Error::invalid(
                op,
                format!("{field}.ports"),
                "ICMP and Any rules take no ports: leave ports empty",
            )),
            _ => match &self.source {
                RuleSource::Group(id) if id.trim().is_empty() => Err(Error::invalid(
                    op,
                    format!("{field}.source"),
                    "a group source needs the group's id",
                )),
                _ => Ok(()),
            },
        }
    }
}

/// What to create: a security group with its ingress rules.
///
/// Built with [`SecurityGroupSpec::new`] and the `with_*` setters, so that fields added
/// later do not break callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecurityGroupSpec {
    /// Unique name; creating the same name and spec again returns the existing group.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Ingress rules; egress is always open.
    pub rules: Vec<IngressRule>,
    /// Tags.
    pub tags: Tags,
}

impl SecurityGroupSpec {
    /// A group with this name and no description, rules or tags.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            rules: Vec::new(),
            tags: Tags::new(),
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the ingress rules, replacing any set before.
    pub fn with_rules(mut self, rules: impl IntoIterator<Item = IngressRule>) -> Self {
        self.rules = rules.into_iter().collect();
        self
    }

    /// Sets the tags, replacing any set before.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let op = Operation::CreateSecurityGroup;
        validate_name(op, "spec.name", &self.name)?;
        for (i, r) in self.rules.iter().enumerate() {
            r.validate(op, &format!("spec.rules[{i}]"))?;
        }
        validate_tags(op, "spec.tags", &self.tags)
    }
}

/// A security group that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// Provider id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Ingress rules, in no particular order.
    pub rules: Vec<IngressRule>,
    /// Tags.
    pub tags: Tags,
}
