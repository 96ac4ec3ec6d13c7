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
//! Tables become key prefixes (`[Local] Image` is `Local.Image`), arrays become
//! comma-separated lists, so validation is shared with the properties format.

use super::validate::{SpecError, SpecErrors};
use super::{Entry, Location};

/// Flattens TOML text into entries.
pub fn parse(source: &str, text: &str) -> Result<Vec<Entry>, SpecErrors> {
    let table: ::toml::Table = ::toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let message = format!("not valid TOML: {}", e.message());
        SpecErrors(vec![match line {
            Some(l) => SpecError::at_line(source, l, "", message),
            None => SpecError::at_key(source, "", message),
        }])
    })?;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    flatten(source, "", &table, &mut entries, &mut errors);
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
            ::toml::Value::Table(t) if prefix.is_empty() => {
                flatten(source, &key, t, entries, errors);
                continue;
            }
            ::toml::Value::String(s) => s.clone(),
            ::toml::Value::Integer(i) => i.to_string(),
            ::toml::Value::Boolean(b) => b.to_string(),
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
    }
}
