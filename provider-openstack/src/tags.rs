//! Tags: the trait's key/value tags on OpenStack's string tags and metadata.
//!
//! - Neutron (security groups, floating IPs) and Octavia (load balancers) have string
//!   tags: a pair is the tag `key=value` (keys never contain `=`), at most 255 characters;
//!   list filters use the services' `tags=` (all must match) and are checked again here.
//! - Nova servers keep the pairs in their metadata (key and value at most 255 characters,
//!   the source of truth), and also as server tags `key=value` (microversion 2.26+) when
//!   the pair fits Nova's 60-character limit and has no comma, so lists filter server-side;
//!   a pair too long for a server tag is filtered client-side from the metadata.
//! - Cinder volumes keep the pairs in their metadata.

use provider_core::{Error, Operation, Result, TagFilter, Tags};

/// The string tag key holding the hash of the spec a Neutron resource (security group,
/// floating IP) was created with, which has no field for it: a create of an existing
/// name compares it, not the tags and rules changed since. Records leave it out.
pub const SPEC_TAG: &str = "plinth.spec";

/// The tags of a Neutron record: its string tags without [`SPEC_TAG`].
pub(crate) fn user_tags<'a>(strings: impl IntoIterator<Item = &'a String>) -> Tags {
    let mut tags = from_strings(strings);
    tags.remove(SPEC_TAG);
    tags
}

/// The spec hash recorded in a Neutron resource's string tags, if any.
pub(crate) fn spec_of(strings: &[String]) -> Option<&str> {
    strings
        .iter()
        .find_map(|s| s.strip_prefix(SPEC_TAG)?.strip_prefix('='))
}

/// `tags` with the spec hash, as written on a new Neutron resource.
pub(crate) fn with_spec(tags: &Tags, hash: &str) -> Tags {
    let mut all = tags.clone();
    all.insert(SPEC_TAG.to_string(), hash.to_string());
    all
}

/// Longest Neutron / Octavia string tag.
pub const MAX_STRING_TAG_LEN: usize = 255;
/// Longest Nova server tag.
pub const MAX_NOVA_TAG_LEN: usize = 60;
/// Longest Nova / Cinder metadata key or value.
pub const MAX_METADATA_LEN: usize = 255;

/// `key=value`.
pub(crate) fn encode(k: &str, v: &str) -> String {
    format!("{k}={v}")
}

/// The string tags of `tags`, checked against `max` characters each.
pub(crate) fn to_strings(
    op: Operation,
    field: &str,
    tags: &Tags,
    max: usize,
) -> Result<Vec<String>> {
    tags.iter()
        .map(|(k, v)| {
            let t = encode(k, v);
            if t.chars().count() > max {
                Err(Error::invalid(
                    op,
                    format!("{field}[{k:?}]"),
                    format!(
                        "`key=value` is {} characters; this OpenStack service takes at most {max}",
                        t.chars().count()
                    ),
                ))
            } else {
                Ok(t)
            }
        })
        .collect()
}

/// Tags from string tags; a string without `=` (set by someone else) becomes a key
/// with an empty value.
pub(crate) fn from_strings<'a>(strings: impl IntoIterator<Item = &'a String>) -> Tags {
    strings
        .into_iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.clone(), String::new()),
        })
        .collect()
}

/// The Nova server tags among `tags`: the pairs that fit 60 characters and have no comma.
pub(crate) fn nova_server_tags(tags: &Tags) -> Vec<String> {
    tags.iter()
        .map(|(k, v)| encode(k, v))
        .filter(|t| t.chars().count() <= MAX_NOVA_TAG_LEN && !t.contains(',') && !t.contains('/'))
        .collect()
}

/// Checks tags fit Nova / Cinder metadata.
pub(crate) fn check_metadata(op: Operation, field: &str, tags: &Tags) -> Result<()> {
    for (k, v) in tags {
        if k.chars().count() > MAX_METADATA_LEN || v.chars().count() > MAX_METADATA_LEN {
            return Err(Error::invalid(
                op,
                format!("{field}[{k:?}]"),
                format!("metadata keys and values take at most {MAX_METADATA_LEN} characters"),
            ));
        }
    }
    Ok(())
}

/// The `tags=` query value for a filter on string tags: the pairs that can be sent
/// (no comma); `None` when none can.
pub(crate) fn filter_query(filter: &TagFilter, max: usize) -> Option<String> {
    let parts: Vec<String> = filter
        .tags
        .iter()
        .map(|(k, v)| encode(k, v))
        .filter(|t| !t.contains(',') && t.chars().count() <= max)
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let tags: Tags = [
            ("plinth-cluster".to_string(), "c1".to_string()),
            ("k".to_string(), "a=b".to_string()),
        ]
        .into();
        let s = to_strings(Operation::CreateSecurityGroup, "spec.tags", &tags, 255).unwrap();
        assert_eq!(from_strings(&s), tags);
        let long: Tags = [("k".to_string(), "v".repeat(70))].into();
        assert!(nova_server_tags(&long).is_empty());
        assert!(to_strings(Operation::CreateSecurityGroup, "t", &long, 60).is_err());
        assert_eq!(
            filter_query(&TagFilter::new("a", "1").and("b", "x,y"), 255).as_deref(),
            Some("a=1")
        );
    }
}
