use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{tags::validate_tags, validate_name, validate_non_empty, Tags};
use crate::{Operation, Result};

/// What to allocate: a floating (public) IP from a pool.
///
/// Built with [`FloatingIpSpec::new`] and [`FloatingIpSpec::with_tags`], so that fields
/// added later do not break callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FloatingIpSpec {
    /// Unique name (a tag or description on clouds without names).
    pub name: String,
    /// The pool or external network to allocate from.
    pub pool: String,
    /// Tags.
    pub tags: Tags,
}

impl FloatingIpSpec {
    /// A spec with the fields every floating IP needs, without tags.
    pub fn new(name: impl Into<String>, pool: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            pool: pool.into(),
            tags: Tags::new(),
        }
    }

    /// Sets the tags, replacing any set before.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let op = Operation::AllocateFloatingIp;
        validate_name(op, "spec.name", &self.name)?;
        validate_non_empty(op, "spec.pool", &self.pool)?;
        validate_tags(op, "spec.tags", &self.tags)
    }
}

/// A floating IP that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingIp {
    /// Provider id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The address.
    pub address: IpAddr,
    /// The pool it came from.
    pub pool: String,
    /// The instance it forwards to, if associated.
    pub instance_id: Option<String>,
    /// Tags.
    pub tags: Tags,
}
