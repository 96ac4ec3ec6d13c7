use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Operation, Result};

/// Key/value tags every resource carries; ownership lives here, not in a state file.
pub type Tags = BTreeMap<String, String>;

/// Longest tag key accepted by every provider (Nova string tags are at most 60 chars
/// as `key=value`, so providers with that limit check the pair themselves).
pub const MAX_TAG_KEY_LEN: usize = 127;
/// Longest tag value accepted by every provider.
pub const MAX_TAG_VALUE_LEN: usize = 255;

pub(crate) fn validate_tags(op: Operation, field: &str, tags: &Tags) -> Result<()> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > MAX_TAG_KEY_LEN || k.contains('=') {
            return Err(Error::invalid(
                op,
                format!("{field}[{k:?}]"),
                format!("tag keys must be 1 to {MAX_TAG_KEY_LEN} characters without '='"),
            ));
        }
        if v.len() > MAX_TAG_VALUE_LEN {
            return Err(Error::invalid(
                op,
                format!("{field}[{k:?}]"),
                format!("tag values must be at most {MAX_TAG_VALUE_LEN} characters"),
            ));
        }
    }
    Ok(())
}

/// Selects resources whose tags contain every pair of the filter; the empty filter
/// selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagFilter {
    /// Pairs that must all be present with these values.
    pub tags: Tags,
}

impl TagFilter {
    /// The filter that matches everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// A filter on one pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::all().and(key, value)
    }

    /// Adds a pair that must also match.
    pub fn and(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Whether `tags` contain every pair of the filter.
    pub fn matches(&self, tags: &Tags) -> bool {
        self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

impl From<Tags> for TagFilter {
    fn from(tags: Tags) -> Self {
        Self { tags }
    }
}

/// The resource families of the trait, for calls that apply to any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A security group.
    SecurityGroup,
    /// A floating IP.
    FloatingIp,
    /// A block-storage volume.
    Volume,
    /// A compute instance.
    Instance,
    /// A load balancer.
    LoadBalancer,
}

impl ResourceKind {
    /// The family of operations that creates and deletes this kind.
    pub fn family(self) -> crate::Family {
        match self {
            ResourceKind::SecurityGroup => crate::Family::SecurityGroups,
            ResourceKind::FloatingIp => crate::Family::FloatingIps,
            ResourceKind::Volume => crate::Family::Volumes,
            ResourceKind::Instance => crate::Family::Instances,
            ResourceKind::LoadBalancer => crate::Family::LoadBalancers,
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::SecurityGroup => "security group",
            ResourceKind::FloatingIp => "floating IP",
            ResourceKind::Volume => "volume",
            ResourceKind::Instance => "instance",
            ResourceKind::LoadBalancer => "load balancer",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_matches_subset() {
        let tags: Tags = [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        assert!(TagFilter::all().matches(&tags));
        assert!(TagFilter::new("a", "1").matches(&tags));
        assert!(!TagFilter::new("a", "2").matches(&tags));
        assert!(!TagFilter::new("a", "1").and("c", "3").matches(&tags));
    }
}
