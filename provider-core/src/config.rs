//! How a provider is configured: the keys it reads from a cluster spec and the one
//! builder shape every provider offers.
//!
//! Each provider crate owns its settings. It declares them once as a table of
//! [`ConfigKey`]s under a spec prefix (`OpenStack`, `AWS`, `VSphere`, `Local`), and its
//! builder reads them as `<prefix>.<key>` properties on top of its cloud's own
//! environment (clouds.yaml and `OS_*`, the AWS config chain, `GOVC_*`). A spec
//! validator asks the table which keys exist and which are secret; nothing is copied.
//!
//! Topology choices (each role's image and flavor, CIDRs, networks) are not provider
//! settings: they reach the provider in the specs it is asked to create.

use async_trait::async_trait;

use crate::{Error, Provider, Result};

/// One setting a provider reads from a spec, written `<prefix>.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigKey {
    /// The key without its prefix, e.g. `AuthURL`.
    pub name: &'static str,
    /// What it sets, in a sentence.
    pub meaning: &'static str,
    /// Whether the provider cannot be built without it (from the spec or the
    /// environment).
    pub required: bool,
    /// Whether its value is a secret: never shown in errors, logs or `Debug`.
    pub secret: bool,
    /// The value used when it is not set, if there is one.
    pub default: Option<&'static str>,
}

impl ConfigKey {
    /// An optional, non-secret key without a default.
    pub const fn new(name: &'static str, meaning: &'static str) -> Self {
        Self {
            name,
            meaning,
            required: false,
            secret: false,
            default: None,
        }
    }

    /// Marks the key required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks the key secret.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Documents the value used when the key is not set.
    pub const fn default_value(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
}

/// Finds `key` (with or without `prefix.`) in `keys`.
pub fn find_key<'k>(prefix: &str, keys: &'k [ConfigKey], key: &str) -> Option<&'k ConfigKey> {
    let bare = key
        .strip_prefix(prefix)
        .and_then(|k| k.strip_prefix('.'))
        .unwrap_or(key);
    keys.iter().find(|k| k.name == bare)
}

/// The error for a key that is not in `keys`: names it and lists the known ones.
pub fn unknown_key(prefix: &str, keys: &[ConfigKey], key: &str) -> Error {
    let bare = key
        .strip_prefix(prefix)
        .and_then(|k| k.strip_prefix('.'))
        .unwrap_or(key);
    let known: Vec<String> = keys
        .iter()
        .map(|k| format!("{prefix}.{}", k.name))
        .collect();
    Error::config(
        format!("{prefix}.{bare}"),
        format!(
            "not a {prefix} provider setting: use one of {}",
            known.join(", ")
        ),
    )
}

/// The builder shape every provider has, after object_store's builders:
/// `from_env()`, then `with_property` for spec keys (and typed `with_*` setters of its
/// own), then `build().await`.
///
/// ```
/// use provider_core::config::{ConfigKey, ProviderBuilder};
/// use provider_core::memory::MemoryProvider;
/// use provider_core::{Error, Result};
///
/// /// A builder for the in-memory provider, to show the shape.
/// #[derive(Default)]
/// struct MemoryBuilder { zones: Vec<String> }
///
/// #[async_trait::async_trait]
/// impl ProviderBuilder for MemoryBuilder {
///     type Provider = MemoryProvider;
///     const PREFIX: &'static str = "Memory";
///     const KEYS: &'static [ConfigKey] =
///         &[ConfigKey::new("AvailabilityZones", "zones, comma-separated")];
///     fn from_env() -> Self { Self::default() }
///     fn with_property(mut self, key: &str, value: &str) -> Result<Self> {
///         match provider_core::config::find_key(Self::PREFIX, Self::KEYS, key) {
///             Some(k) if k.name == "AvailabilityZones" => {
///                 self.zones = value.split(',').map(|z| z.trim().to_string()).collect();
///                 Ok(self)
///             }
///             _ => Err(provider_core::config::unknown_key(Self::PREFIX, Self::KEYS, key)),
///         }
///     }
///     async fn build(self) -> Result<MemoryProvider> { Ok(MemoryProvider::default()) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = MemoryBuilder::from_env()
///     .with_property("Memory.AvailabilityZones", "a, b")?
///     .build()
///     .await?;
/// # let _ = p; Ok::<(), Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait ProviderBuilder: Sized + Send {
    /// The provider it builds.
    type Provider: Provider + 'static;
    /// The prefix of its keys in a spec, e.g. `OpenStack`.
    const PREFIX: &'static str;
    /// Every key it reads from a spec; documented in the provider crate's docs.
    const KEYS: &'static [ConfigKey];

    /// A builder filled from the cloud's usual environment.
    fn from_env() -> Self;

    /// Sets one spec key (`<prefix>.<name>` or `<name>`); an unknown key or a bad value
    /// is [`crate::Error::Config`] naming the key.
    fn with_property(self, key: &str, value: &str) -> Result<Self>;

    /// Connects (where the cloud needs it) and returns the provider; a missing or
    /// wrong setting is [`crate::Error::Config`] naming the key and the fix.
    async fn build(self) -> Result<Self::Provider>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[ConfigKey] = &[
        ConfigKey::new("URL", "the endpoint").required(),
        ConfigKey::new("Password", "the password").secret(),
        ConfigKey::new("Zones", "zones").default_value("a,b,c"),
    ];

    #[test]
    fn keys_are_found_with_or_without_prefix() {
        assert_eq!(find_key("X", KEYS, "X.URL").map(|k| k.name), Some("URL"));
        assert_eq!(find_key("X", KEYS, "URL").map(|k| k.name), Some("URL"));
        assert!(find_key("X", KEYS, "Y.URL").is_none());
        assert!(find_key("X", KEYS, "X.Nope").is_none());
        assert!(find_key("X", KEYS, "X.Password").is_some_and(|k| k.secret));
        assert_eq!(
            find_key("X", KEYS, "Zones").and_then(|k| k.default),
            Some("a,b,c")
        );
    }
}
