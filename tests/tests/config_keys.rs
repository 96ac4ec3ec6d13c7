//! Each provider owns its spec keys: every key its table declares is documented in its
//! crate docs and accepted by the cluster's spec validator (and handed to the provider),
//! and every `<Prefix>.<Key>` its docs mention is a key the validator accepts.

use cluster::spec::keys::known_keys;
use cluster::{ClusterSpec, ProviderKind};

/// The crate docs (`lib.rs`) and an example spec of each provider.
fn provider(kind: ProviderKind) -> (&'static str, &'static str) {
    match kind {
        ProviderKind::Local => (
            include_str!("../../provider-local/src/lib.rs"),
            include_str!("../../examples/local.properties"),
        ),
        ProviderKind::OpenStack => (
            include_str!("../../provider-openstack/src/lib.rs"),
            include_str!("../../examples/openstack.properties"),
        ),
        ProviderKind::Aws => (
            include_str!("../../provider-aws/src/lib.rs"),
            include_str!("../../examples/aws.properties"),
        ),
        ProviderKind::VSphere => (
            include_str!("../../provider-vsphere/src/lib.rs"),
            include_str!("../../examples/vsphere.properties"),
        ),
    }
}

/// Every `` `Prefix.Key` `` written in the docs.
fn mentioned(docs: &str, prefix: &str) -> Vec<String> {
    let open = format!("`{prefix}.");
    docs.match_indices(&open)
        .filter_map(|(at, _)| {
            let rest = &docs[at + 1..];
            let end = rest.find('`')?;
            let key = &rest[..end];
            key.chars()
                .skip(prefix.len() + 1)
                .all(|c| c.is_ascii_alphanumeric())
                .then(|| key.to_string())
        })
        .collect()
}

#[test]
fn every_provider_key_is_documented_and_accepted() {
    for kind in ProviderKind::ALL {
        let prefix = kind.key_prefix();
        let keys = cluster::cloud::keys(kind).expect("every provider is compiled in here");
        let (docs, example) = provider(kind);
        let accepted = known_keys(kind);

        // Documented.
        for k in keys {
            let key = format!("{prefix}.{}", k.name);
            assert!(
                docs.contains(&format!("`{key}`")),
                "{key} is not in the {kind} crate docs"
            );
            assert!(!k.meaning.is_empty(), "{key} has no meaning");
        }
        // What the docs mention is a key.
        let docs_keys = mentioned(docs, prefix);
        assert!(!docs_keys.is_empty(), "the {kind} docs list no keys");
        for key in docs_keys {
            assert!(
                accepted.contains(&key),
                "{key}, in the {kind} docs, is refused by the validator"
            );
        }

        // Accepted and handed to the provider: the example plus every key it lacks.
        let mut text = example.to_string();
        for k in keys {
            let key = format!("{prefix}.{}", k.name);
            let set = example
                .lines()
                .any(|l| l.split('=').next().map(str::trim) == Some(key.as_str()));
            if !set {
                text.push_str(&format!("{key} = {}\n", k.default.unwrap_or("x")));
            }
        }
        let spec = ClusterSpec::parse(&format!("{prefix}.properties"), &text)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let given: Vec<&str> = spec.provider_config.keys().collect();
        for k in keys {
            let key = format!("{prefix}.{}", k.name);
            assert!(given.contains(&key.as_str()), "{key} not passed on");
        }
    }
}

#[test]
fn secret_keys_never_reach_debug() {
    for kind in ProviderKind::ALL {
        let prefix = kind.key_prefix();
        let keys = cluster::cloud::keys(kind).expect("compiled in");
        let (_, example) = provider(kind);
        let mut text = example
            .lines()
            .filter(|l| {
                !keys.iter().any(|k| {
                    k.secret && l.trim_start().starts_with(&format!("{prefix}.{}", k.name))
                })
            })
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
        for k in keys.iter().filter(|k| k.secret) {
            text.push_str(&format!("{prefix}.{} = s3cr3t-{}\n", k.name, k.name));
        }
        let spec = ClusterSpec::parse("s.properties", &text).unwrap();
        assert!(!format!("{spec:?}").contains("s3cr3t"), "{kind}");
    }
}
