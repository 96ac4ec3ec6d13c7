//! [`LocalBuilder`]: the one builder shape of every Plinth provider, over
//! [`LocalConfig`], and the `Local.*` spec keys it reads.

use std::path::PathBuf;

use provider_core::config::{unknown_key, ConfigKey, ProviderBuilder};
use provider_core::{Error, Result};

use crate::client::LocalProvider;
use crate::config::LocalConfig;

/// The `Local.*` spec keys this provider reads.
pub const KEYS: &[ConfigKey] = &[
    ConfigKey::new(
        "StateDir",
        "directory of the local cloud's state (PLINTH_LOCAL_STATE_DIR)",
    )
    .default_value("~/.local/share/plinth/local"),
    ConfigKey::new(
        "AvailabilityZones",
        "the zones the local cloud offers, comma-separated",
    )
    .default_value("local-a,local-b,local-c"),
];

/// Builds a [`LocalProvider`](LocalProvider): the one builder shape of every
/// Plinth provider ([`ProviderBuilder`]).
///
/// ```no_run
/// # async fn f() -> provider_core::Result<()> {
/// use provider_local::LocalBuilder;
/// let cloud = LocalBuilder::from_env()
///     .with_property("Local.AvailabilityZones", "a, b, c")?
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct LocalBuilder {
    config: LocalConfig,
}

impl LocalBuilder {
    /// The default configuration, with the state directory from
    /// `PLINTH_LOCAL_STATE_DIR` when it is set.
    pub fn from_env() -> Self {
        Self {
            config: LocalConfig::from_env(),
        }
    }

    /// Starts from a whole configuration.
    pub fn from_config(config: LocalConfig) -> Self {
        Self { config }
    }

    /// Sets one `Local.*` spec key of [`KEYS`] (the prefix is optional); any other key
    /// is [`Error::Config`] naming the known ones.
    pub fn with_property(self, key: &str, value: &str) -> Result<Self> {
        let k = key.strip_prefix("Local.").unwrap_or(key);
        let v = value.trim();
        match k {
            "StateDir" if !v.is_empty() => Ok(self.with_state_dir(v)),
            "AvailabilityZones" => {
                let zones: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|z| !z.is_empty())
                    .map(str::to_string)
                    .collect();
                if zones.is_empty() {
                    return Err(Error::config(
                        "Local.AvailabilityZones",
                        "empty: list at least one zone name, e.g. local-a,local-b,local-c",
                    ));
                }
                Ok(self.with_availability_zones(zones))
            }
            "StateDir" => Err(Error::config(
                "Local.StateDir",
                "empty: name a directory, or remove the key for the default",
            )),
            _ => Err(unknown_key("Local", KEYS, key)),
        }
    }

    /// Sets the state directory (`Local.StateDir`).
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.state_dir = dir.into();
        self
    }

    /// Sets the zones the local cloud offers (`Local.AvailabilityZones`).
    pub fn with_availability_zones<I, S>(mut self, zones: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.availability_zones = zones.into_iter().map(Into::into).collect();
        self
    }

    /// The configuration so far.
    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    /// Opens the local cloud, starting its daemon if needed.
    pub async fn build(self) -> Result<LocalProvider> {
        LocalProvider::open(self.config).await
    }
}

#[async_trait::async_trait]
impl ProviderBuilder for LocalBuilder {
    type Provider = LocalProvider;
    const PREFIX: &'static str = "Local";
    const KEYS: &'static [ConfigKey] = KEYS;

    fn from_env() -> Self {
        LocalBuilder::from_env()
    }

    fn with_property(self, key: &str, value: &str) -> Result<Self> {
        LocalBuilder::with_property(self, key, value)
    }

    async fn build(self) -> Result<LocalProvider> {
        LocalBuilder::build(self).await
    }
}
