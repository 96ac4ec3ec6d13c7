//! The seed's Java-properties format: one `key = value` a line (`:` also separates),
//! `#` or `!` comments on their own lines, a trailing `\` continues a value on the next
//! line. A `#` after a value is part of the value, as in Java.

use super::validate::{SpecError, SpecErrors};
use super::{Entry, Location};

/// Splits properties text into entries; every malformed line is reported, not just the
/// first.
pub fn parse(source: &str, text: &str) -> Result<Vec<Entry>, SpecErrors> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let line_no = index + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        // Join continuation lines before splitting key and value.
        let mut logical = line.to_string();
        while logical.ends_with('\\') && !logical.ends_with("\\\\") {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let Some(sep) = logical.find(['=', ':']) else {
            errors.push(SpecError::at_line(
                source,
                line_no,
                logical.trim(),
                "this line has no value: write `key = value`, or start it with `#` to make it a comment",
            ));
            continue;
        };
        let key = logical[..sep].trim();
        let value = logical[sep + 1..].trim();
        if key.is_empty() {
            errors.push(SpecError::at_line(
                source,
                line_no,
                "",
                "a value without a key: write `key = value`",
            ));
            continue;
        }
        entries.push(Entry {
            key: key.to_string(),
            value: value.to_string(),
            location: Location::Line(line_no),
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(SpecErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_keys_values_comments_and_continuations() {
        let text = "# comment\n! other comment\n\nProvider = OpenStack\nOpenStack.AuthURL: https://h:5000/v3\nA = x \\\n  y\n";
        let e = parse("f.properties", text).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].key, "Provider");
        assert_eq!(e[0].value, "OpenStack");
        assert_eq!(e[0].location, Location::Line(4));
        assert_eq!(e[1].key, "OpenStack.AuthURL");
        assert_eq!(e[1].value, "https://h:5000/v3");
        assert_eq!(e[2].value, "x y");
    }

    #[test]
    fn reports_every_malformed_line() {
        let err = parse("f.properties", "Provider\n= x\nA = b\n").unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert!(err.to_string().contains("f.properties:1"), "{err}");
        assert!(err.to_string().contains("f.properties:2"), "{err}");
    }
}
