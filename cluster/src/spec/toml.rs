//! The TOML form of the spec: the same keys, with provider keys in tables.
//!
//! ```toml
//! Provider = "local"
//! ClusterName = "demo"
//! NodeCount = 3
//! [Local]
//! AvailabilityZones = ["local-a", "local-b", "local-c"]
//! ```
//!
//! Tables become key prefixes (`[Local] Image` is `Local.Image`, `[LoadBalancers.hcp]
//! Port` is `LoadBalancers.hcp.Port`), arrays become comma-separated lists, so
//! validation is shared with the properties format.

use std::collections::HashMap;

use super::limits::{excerpt, MAX_LIST_ITEMS};
use super::validate::{SpecError, SpecErrors};
use super::{Entry, Location};

/// Flattens TOML text into entries, each with the line of its key.
pub fn parse(source: &str, text: &str) -> Result<Vec<Entry>, SpecErrors> {
    let table: ::toml::Table = ::toml::from_str(text).map_err(|e| {
        let span = e
            .span()
            .map(|s| s.start.min(text.len())..s.end.min(text.len()));
        let line = span.as_ref().map(|s| {
            text.as_bytes()[..s.start]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1
        });
        // The message of a duplicate key does not name it; the span does.
        let key = span
            .and_then(|s| text.get(s))
            .map(|k| k.trim().trim_matches('"'))
            .filter(|k| !k.is_empty() && !k.contains(['\n', '=']))
            .map(|k| excerpt(k).trim_matches('"').to_string())
            .unwrap_or_default();
        let message = format!("not valid TOML: {}", e.message().trim());
        SpecErrors(vec![match line {
            Some(l) => SpecError::at_line(source, l, &key, message),
            None => SpecError::at_key(source, &key, message),
        }])
    })?;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    flatten(source, "", &table, &mut entries, &mut errors);
    let lines = key_lines(text);
    for e in &mut entries {
        if let Some(l) = lines.get(&e.key) {
            e.location = Location::Line(*l);
        }
    }
    for e in &mut errors {
        e.line = e.line.or_else(|| lines.get(&e.key).copied());
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(SpecErrors(errors))
    }
}

fn flatten(
    source: &str,
    prefix: &str,
    table: &::toml::Table,
    entries: &mut Vec<Entry>,
    errors: &mut Vec<SpecError>,
) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let value = match v {
            // Provider tables, and a listed load balancer's table (`[LoadBalancers.hcp]`).
            ::toml::Value::Table(t)
                if prefix.is_empty() || format!("{prefix}.") == super::resources::LB_PREFIX =>
            {
                flatten(source, &key, t, entries, errors);
                continue;
            }
            ::toml::Value::String(s) => s.clone(),
            ::toml::Value::Integer(i) => i.to_string(),
            ::toml::Value::Boolean(b) => b.to_string(),
            ::toml::Value::Array(items) if items.len() > MAX_LIST_ITEMS => {
                errors.push(SpecError::at_key(
                    source,
                    &key,
                    format!(
                        "{} items is too many: list at most {MAX_LIST_ITEMS}",
                        items.len()
                    ),
                ));
                continue;
            }
            ::toml::Value::Array(items) => {
                let mut parts = Vec::new();
                for item in items {
                    match item {
                        ::toml::Value::String(s) => parts.push(s.clone()),
                        ::toml::Value::Integer(i) => parts.push(i.to_string()),
                        _ => {
                            errors.push(SpecError::at_key(
                                source,
                                &key,
                                "lists may hold only strings or integers",
                            ));
                        }
                    }
                }
                parts.join(",")
            }
            _ => {
                errors.push(SpecError::at_key(
                    source,
                    &key,
                    "use a string, an integer, a boolean or a list of strings here",
                ));
                continue;
            }
        };
        entries.push(Entry {
            key,
            value,
            location: Location::Key,
        });
    }
}

/// The line of each key of a spec (`[Table]` headers prefix the keys below them), for
/// errors that point at it. Keys the scan cannot place keep no line.
fn key_lines(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut prefix = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            prefix = header.trim().trim_matches('"').to_string();
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches('"');
        if key.is_empty() || key.contains(char::is_whitespace) {
            continue;
        }
        let full = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        out.entry(full).or_insert(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_prefixes_and_arrays_lists() {
        let e = parse(
            "f.toml",
            "Provider = \"local\"\nNodeCount = 3\n[Local]\nAvailabilityZones = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let find = |k: &str| e.iter().find(|x| x.key == k).map(|x| x.value.clone());
        assert_eq!(find("Provider").as_deref(), Some("local"));
        assert_eq!(find("NodeCount").as_deref(), Some("3"));
        assert_eq!(find("Local.AvailabilityZones").as_deref(), Some("a,b"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse("f.toml", "Provider = \"local\"\nNodeCount = = 3\n").unwrap_err();
        assert!(err.to_string().contains("f.toml:2"), "{err}");
        // An error at the very start of a line is on that line, not the one before.
        let err = parse("f.toml", "Provider = \"local\"\n\n= 3\n").unwrap_err();
        assert!(err.to_string().contains("f.toml:3"), "{err}");
    }

    #[test]
    fn a_duplicate_key_is_named_with_its_line() {
        let err = parse(
            "f.toml",
            "Provider = \"local\"\nNodeCount = 3\nNodeCount = 6\n",
        )
        .unwrap_err();
        let e = &err.0[0];
        assert_eq!((e.line, e.key.as_str()), (Some(3), "NodeCount"), "{err}");
    }

    #[test]
    fn entries_carry_the_line_of_their_key() {
        let e = parse(
            "f.toml",
            "Provider = \"local\"\n\n[Local]\n# zones\nAvailabilityZones = [\"a\"]\n",
        )
        .unwrap();
        let az = e
            .iter()
            .find(|x| x.key == "Local.AvailabilityZones")
            .unwrap();
        assert_eq!(az.location, Location::Line(5));
    }
}
