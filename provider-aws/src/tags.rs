//! Tag mapping between Plinth and AWS, and the small encodings the provider needs
//! (spec hashes, deterministic client tokens, base64 user data).
//!
//! See the crate docs for the mapping and its limits.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use provider_core::{Error, Operation, Result, TagFilter, Tags};
use serde::Serialize;

/// Tag carrying the Plinth name of every resource (the AWS console shows it).
pub const NAME_TAG: &str = "Name";
/// Prefix of the tags this crate keeps for itself; they never appear in records.
pub const INTERNAL_PREFIX: &str = "plinth-aws:";
/// Hash of the spec a resource was created from, for idempotent create by name.
pub const SPEC_HASH_TAG: &str = "plinth-aws:spec-hash";
/// Id of the `RunInstances` batch an instance was launched in.
pub const BATCH_TAG: &str = "plinth-aws:batch";
/// Listener ports of a load balancer, comma-separated (to find its target groups).
pub const PORTS_TAG: &str = "plinth-aws:ports";
/// The floating IP pool an Elastic IP was allocated from.
pub const POOL_TAG: &str = "plinth-aws:pool";
/// Marks an instance's root volume: tagged with its cluster like everything Plinth
/// creates, and never listed as a volume of its own (it goes with its instance).
pub const ROOT_TAG: &str = "plinth-aws:root";

/// Most tags an AWS resource carries (user tags plus the reserved ones).
pub const MAX_TAGS: usize = 50;

/// Whether `key` is reserved by this crate (`Name` or the internal prefix).
pub fn is_reserved(key: &str) -> bool {
    key == NAME_TAG || key.starts_with(INTERNAL_PREFIX)
}

/// Checks user tags against AWS's rules and the reserved keys.
pub fn check_user_tags(op: Operation, field: &str, tags: &Tags) -> Result<()> {
    if tags.len() + 4 > MAX_TAGS {
        return Err(Error::invalid(
            op,
            field,
            format!(
                "{} tags are too many: AWS resources carry at most {MAX_TAGS}, of which Plinth uses 4",
                tags.len()
            ),
        ));
    }
    for k in tags.keys() {
        if is_reserved(k) {
            return Err(Error::invalid(
                op,
                format!("{field}[{k:?}]"),
                format!("the tag key {k:?} is reserved by the AWS provider: choose another key"),
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(Error::invalid(
                op,
                format!("{field}[{k:?}]"),
                "tag keys starting with \"aws:\" are reserved by AWS: choose another key",
            ));
        }
    }
    Ok(())
}

/// User tags of a resource: its AWS tags less the reserved ones.
pub fn user_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
    tags.into_iter()
        .filter(|(k, _)| !is_reserved(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of `key` among AWS tags.
pub fn tag_value<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &str,
) -> Option<String> {
    tags.into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// EC2 tags as `(key, value)` pairs.
pub fn ec2_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
}

/// EC2 tags from pairs.
pub fn ec2_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The full tag set of a new resource: user tags, its name and its spec hash.
pub fn create_tags(name: &str, user: &Tags, spec_hash: &str) -> Tags {
    let mut all = user.clone();
    all.insert(NAME_TAG.into(), name.into());
    all.insert(SPEC_HASH_TAG.into(), spec_hash.into());
    all
}

/// A `TagSpecification` for `RunInstances`, `CreateVolume` and friends.
pub fn tag_spec(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

/// Server-side EC2 filters for a tag filter: one `tag:KEY = VALUE` filter per pair.
pub fn ec2_filters(filter: &TagFilter) -> Vec<Filter> {
    filter
        .tags
        .iter()
        .map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build())
        .collect()
}

/// A filter of one name and several values.
pub fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

/// A stable 64-bit FNV-1a hash of `bytes`.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The hash of a spec, as 16 hex digits: equal specs hash equal in every process.
pub fn spec_hash<T: Serialize>(spec: &T) -> String {
    // Serializing a spec of plain data cannot fail; fall back to Debug-free bytes.
    let bytes = serde_json::to_vec(spec).unwrap_or_default();
    format!("{:016x}", fnv64(&bytes))
}

/// A client token (at most 64 ASCII characters) derived from `parts`.
pub fn client_token(parts: &[&str]) -> String {
    format!("plinth-{:016x}", fnv64(parts.join("\u{1f}").as_bytes()))
}

/// Standard base64 with padding (user data for `RunInstances`).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (i, o) in cases {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn reserved_keys_are_refused_and_hidden() {
        let op = Operation::CreateVolume;
        let mut t = Tags::new();
        t.insert("Name".into(), "x".into());
        assert!(check_user_tags(op, "spec.tags", &t).is_err());
        let mut t = Tags::new();
        t.insert("aws:x".into(), "x".into());
        assert!(check_user_tags(op, "spec.tags", &t).is_err());
        let shown = user_tags([("Name", "n"), (SPEC_HASH_TAG, "h"), ("role", "master")]);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown.get("role").map(String::as_str), Some("master"));
    }

    #[test]
    fn hashes_are_stable() {
        assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(spec_hash(&("a", 1)), spec_hash(&("a", 1)));
        assert_ne!(spec_hash(&("a", 1)), spec_hash(&("a", 2)));
        assert!(client_token(&["x", "y"]).len() <= 64);
    }
}
