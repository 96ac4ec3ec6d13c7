//! The seed's Java-properties format, as `java.util.Properties` reads it: lines end at
//! `\n`, `\r\n` or `\r`; `#` or `!` comments on their own lines; the key ends at the
//! first `=`, `:` or whitespace (`key value` is `key = value`); a trailing `\`
//! continues a value on the next line. A `#` after a value is part of the value.
//!
//! Errors quote at most the key: never the rest of a line, which may be a password.

use super::limits::{excerpt, MAX_KEY_BYTES, MAX_LINE_BYTES};
use super::validate::{SpecError, SpecErrors};
use super::{Entry, Location};

/// Splits properties text into entries; every malformed line is reported, not just the
/// first.
pub fn parse(source: &str, text: &str) -> Result<Vec<Entry>, SpecErrors> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut lines = physical_lines(text).enumerate();
    while let Some((index, raw)) = lines.next() {
        let line_no = index + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        // A key that runs into a continuation would take the next line (often a value,
        // sometimes a password) into the key: no spec key spans lines, so refuse it.
        let key_continues = continues(line)
            && !line[..line.len() - 1]
                .contains(|c: char| c == '=' || c == ':' || c.is_whitespace());
        // Join continuation lines before splitting key and value.
        let mut logical = line.to_string();
        let mut too_long = false;
        while continues(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => {
                    too_long |= logical.len() + next.len() > MAX_LINE_BYTES;
                    if !too_long {
                        logical.push_str(next.trim_start());
                    }
                }
                None => break,
            }
        }
        if key_continues {
            let first = line.trim_end_matches('\\');
            errors.push(SpecError::at_line(
                source,
                line_no,
                &quoted_key(first),
                "the key continues on the next line: write `key = value`, with the key on one line",
            ));
            continue;
        }
        let (key, value) = split(&logical);
        if too_long || logical.len() > MAX_LINE_BYTES {
            errors.push(SpecError::at_line(
                source,
                line_no,
                &quoted_key(key),
                format!("the line is longer than {MAX_LINE_BYTES} bytes: shorten it"),
            ));
            continue;
        }
        if key.is_empty() {
            errors.push(SpecError::at_line(
                source,
                line_no,
                "",
                "a value without a key: write `key = value`",
            ));
            continue;
        }
        if key.len() > MAX_KEY_BYTES {
            errors.push(SpecError::at_line(
                source,
                line_no,
                &quoted_key(key),
                format!("the key is longer than {MAX_KEY_BYTES} bytes: no spec key is; fix or remove the line"),
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

/// The lines of `text`, ended by `\n`, `\r\n` or `\r`.
fn physical_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[end..];
        if rest.starts_with("\r\n") {
            rest = &rest[2..];
        } else if !rest.is_empty() {
            rest = &rest[1..];
        }
        Some(line)
    })
}

/// Whether a line ends in an odd number of backslashes (an even number is escaped
/// backslashes).
fn continues(line: &str) -> bool {
    line.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

/// Key and value of a logical line: the key ends at the first `=`, `:` or whitespace;
/// whitespace, then at most one `=` or `:`, then whitespace separate it from the value.
fn split(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
        .unwrap_or(line.len());
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
    (&line[..end], rest.trim())
}

/// A key as an error names it (a short excerpt when it is long).
fn quoted_key(key: &str) -> String {
    if key.len() <= MAX_KEY_BYTES {
        key.to_string()
    } else {
        excerpt(key)
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
        let long = format!("{} = 1", "K".repeat(200));
        let text = format!("= x\nA = b\n{long}\n: y\n");
        let err = parse("f.properties", &text).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        for line in [1, 3, 4] {
            assert!(
                err.to_string().contains(&format!("f.properties:{line}")),
                "{err}"
            );
        }
    }

    #[test]
    fn reads_what_java_reads() {
        // Whitespace separates, lines end at CR too, a key alone has an empty value,
        // an escaped backslash does not continue.
        let text = "OpenStack.Password S3cr3t\rA\tb\r\nC:d\nE\nF = g\\\\\nH = i \\\n   j\n";
        let e = parse("f.properties", text).unwrap();
        let kv: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                ("OpenStack.Password", "S3cr3t"),
                ("A", "b"),
                ("C", "d"),
                ("E", ""),
                ("F", "g\\\\"),
                ("H", "i j"),
            ]
        );
        assert_eq!(e[2].location, Location::Line(3));
    }
}
