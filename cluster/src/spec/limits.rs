//! The limits every spec is held to, stated once, and how errors quote what they
//! refuse.
//!
//! A spec is small: the seed's has 25 keys. The limits are far above any real one and
//! low enough that rejecting the worst input costs time linear in its size (well under
//! a second for the largest accepted file) and memory a few times its size.
//!
//! | what | limit |
//! |---|---|
//! | file | [`MAX_FILE_BYTES`] (1 MiB) |
//! | line (with its continuations) | [`MAX_LINE_BYTES`] (32 KiB: user data fits) |
//! | key | [`MAX_KEY_BYTES`] |
//! | value (user data: `provider_core::MAX_USER_DATA_BYTES`) | [`MAX_VALUE_BYTES`] |
//! | items of a list (AZs, subnets) | [`MAX_LIST_ITEMS`] |
//! | masters / nodes / storage nodes | [`MAX_MASTERS`] / [`MAX_NODES`] / [`MAX_STORAGE_NODES`] |
//! | data volumes of one node | [`MAX_VOLUMES_PER_NODE`] |
//! | load balancers listed (`LoadBalancers.<name>.*`) | [`MAX_LOAD_BALANCERS`] |
//! | a load balancer's name | [`MAX_LB_NAME_CHARS`] |
//! | problems reported | [`MAX_PROBLEMS`], then "and N more" |
//!
//! The node counts: 7 masters is etcd's recommended maximum (more slows every write);
//! 500 nodes and 100 storage nodes keep a plan under a few thousand actions, which the
//! planner builds in milliseconds and the executor runs with bounded concurrency.
//!
//! Errors quote at most a key and a short [`excerpt`] of a value; [`scrub`] then
//! removes every value written to a secret key from the whole report, whatever the line
//! endings and continuations put it into.

use std::collections::BTreeSet;

use super::keys::is_secret_key;
use super::validate::{SpecError, SpecErrors};

/// Largest spec file.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Longest logical line of a properties file (continuations included).
pub const MAX_LINE_BYTES: usize = 32 * 1024;
/// Longest key (every real key is under 40).
pub const MAX_KEY_BYTES: usize = 128;
/// Longest value, user data excepted.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most items of a comma-separated list.
pub const MAX_LIST_ITEMS: usize = 64;
/// Most masters.
pub const MAX_MASTERS: usize = 7;
/// Most worker nodes.
pub const MAX_NODES: usize = 500;
/// Most storage nodes.
pub const MAX_STORAGE_NODES: usize = 100;
/// Most data volumes on one node (a VM's disk slots run out well above it).
pub const MAX_VOLUMES_PER_NODE: usize = 16;
/// Most load balancers a spec lists.
pub const MAX_LOAD_BALANCERS: usize = 16;
/// Longest load balancer name (it becomes part of resource names).
pub const MAX_LB_NAME_CHARS: usize = 24;
/// Most problems reported; the rest are counted.
pub const MAX_PROBLEMS: usize = 20;

/// Longest excerpt of a value an error quotes.
const EXCERPT_CHARS: usize = 32;

/// A value as an error may quote it: whole when short, else its start and its length.
/// Text after a line break or a key-value separator is never quoted (it may be another
/// line's value, pulled in by a continuation).
pub fn excerpt(value: &str) -> String {
    let cut = value
        .find(|c: char| c.is_control() || c == '=' || c == '\\')
        .unwrap_or(value.len());
    let head: String = value[..cut].chars().take(EXCERPT_CHARS).collect();
    if head.len() == value.len() {
        format!("{value:?}")
    } else {
        format!(
            "{:?}... ({} characters)",
            head.trim_end(),
            value.chars().count()
        )
    }
}

/// The values written to secret keys in `text`, found line by line whatever the line
/// endings (`\n`, `\r\n`, `\r`) and the separator (`=`, `:`, whitespace), in both spec
/// formats: a key of a provider's table marked secret, or any key ending in `password`
/// or `secret` (a TOML key under `[OpenStack]`, an inline table) wherever it stands on
/// the line.
pub fn secrets_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |value: &str| {
        let value = value.trim().trim_end_matches('\\').trim();
        for v in [value, value.trim_matches(['"', '\''])] {
            if !v.is_empty() {
                out.insert(v.to_string());
            }
        }
    };
    // A secret key's line that continues (`Password \` or `Password = ab\`) puts its
    // value, or the rest of it, on the next line.
    let mut continued = false;
    for line in text.split(['\n', '\r']) {
        let trimmed = line.trim_start();
        if std::mem::take(&mut continued) {
            add(trimmed);
            continued = trimmed.ends_with('\\');
        }
        let end = trimmed
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(trimmed.len());
        let key = trimmed[..end].trim_matches('"');
        let key = key.strip_suffix('\\').unwrap_or(key);
        if !key.is_empty() && is_secret_key(key) {
            let rest = trimmed[end..].trim_start();
            add(rest.strip_prefix(['=', ':']).unwrap_or(rest));
            continued |= trimmed.ends_with('\\');
        }
        // Anywhere on the line: `...password = value`, up to a `,` or `}`.
        let lower = line.to_ascii_lowercase();
        for word in ["password", "secret"] {
            for (at, _) in lower.match_indices(word) {
                let rest = line[at + word.len()..].trim_start_matches(['"', '\'']);
                let rest = rest.trim_start();
                let Some(rest) = rest.strip_prefix(['=', ':']) else {
                    continue;
                };
                let value = rest.split([',', '}']).next().unwrap_or(rest);
                add(value);
            }
        }
    }
    out
}

/// `errors` with every secret replaced by `***` and at most [`MAX_PROBLEMS`] kept (the
/// rest counted in a last line).
pub fn scrub(mut errors: SpecErrors, secrets: &BTreeSet<String>) -> SpecErrors {
    let total = errors.0.len();
    if total > MAX_PROBLEMS {
        errors.0.truncate(MAX_PROBLEMS);
        let file = errors.0[0].file.clone();
        errors.0.push(SpecError::at_key(
            &file,
            "",
            format!(
                "and {} more problems (fix these first)",
                total - MAX_PROBLEMS
            ),
        ));
    }
    // Longest first, so a secret containing another is replaced whole.
    let mut secrets: Vec<&String> = secrets.iter().collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for e in &mut errors.0 {
        for s in &secrets {
            if e.message.contains(s.as_str()) {
                e.message = e.message.replace(s.as_str(), "***");
            }
            if e.key.contains(s.as_str()) {
                e.key = e.key.replace(s.as_str(), "***");
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_stop_at_a_separator() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        let long = "x".repeat(10_000);
        let e = excerpt(&long);
        assert!(e.len() < 60 && e.ends_with("(10000 characters)"), "{e}");
        let joined = "OpenStack OpenStack.Password = S3cr3t";
        assert!(!excerpt(joined).contains("S3cr3t"), "{}", excerpt(joined));
    }

    #[test]
    fn secrets_are_found_whatever_the_line_endings_and_separators() {
        let text = "Provider = x\r OpenStack.Password S3cr3t\rOpenStack.ApplicationCredentialSecret:k3y\\\n[OpenStack]\nPassword = \"quoted\"\nOpenStack = { Password = \"inline\", A = 1 }\n";
        let s = secrets_in(text);
        for want in ["S3cr3t", "k3y", "quoted", "inline"] {
            assert!(s.contains(want), "{want} not in {s:?}");
        }
    }
}
