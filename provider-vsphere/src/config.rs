//! Configuration: [`VSphereBuilder`] from code, from the environment and from the
//! `VSphere.*` keys of a cluster spec.

use std::path::PathBuf;
use std::time::Duration;

use provider_core::config::{unknown_key, ConfigKey, ProviderBuilder};
use provider_core::wait::{Poller, Timeouts};
use provider_core::{Error, Operation, Result};
use secrecy::SecretString;

/// A flavor: `cpus:memoryMiB`, e.g. `2:4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// Virtual CPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
}

impl Flavor {
    /// Parses `cpus:memoryMiB`; `field` names the input in the error.
    pub fn parse(op: Operation, field: &str, s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                op,
                field,
                format!("{s:?} is not a vSphere flavor: write cpus:memoryMiB, e.g. 2:4096"),
            )
        };
        let (c, m) = s.trim().split_once(':').ok_or_else(bad)?;
        let cpus: u32 = c.trim().parse().map_err(|_| bad())?;
        let memory_mib: u64 = m.trim().parse().map_err(|_| bad())?;
        if !(1..=768).contains(&cpus) || !(4..=24 * 1024 * 1024).contains(&memory_mib) {
            return Err(bad());
        }
        Ok(Self { cpus, memory_mib })
    }
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.cpus, self.memory_mib)
    }
}

/// Everything the provider needs, as built by [`VSphereBuilder::build`].
#[derive(Debug, Clone)]
pub struct VSphereConfig {
    /// The vCenter SDK endpoint, e.g. `https://vcenter.example/sdk`.
    pub url: String,
    /// User name.
    pub username: String,
    /// Password (never printed).
    pub password: SecretString,
    /// Datacenter name.
    pub datacenter: String,
    /// Compute clusters used as availability zones; empty means every cluster of the
    /// datacenter.
    pub clusters: Vec<String>,
    /// Datastore for VMs and volumes; `None` means the datacenter's first.
    pub datastore: Option<String>,
    /// Network (port group) instances' first adapter is moved onto; `None` keeps the
    /// template's.
    pub network: Option<String>,
    /// PEM file of CA certificates to trust, besides the built-in roots.
    pub ca_cert_file: Option<PathBuf>,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// How creates and deletes wait (task and state polling).
    pub poller: Poller,
    /// How long they wait.
    pub timeouts: Timeouts,
    /// Largest page of a property retrieval (`maxObjects`).
    pub page_size: usize,
}

/// Builds a [`crate::VSphereProvider`], like object_store's `AmazonS3Builder`.
///
/// ```
/// use provider_vsphere::VSphereBuilder;
///
/// let builder = VSphereBuilder::new()
///     .with_url("https://127.0.0.1:8989/sdk")
///     .with_username("admin")
///     .with_password("secret")
///     .with_datacenter("DC0")
///     .with_clusters(["DC0_C0", "DC0_C1", "DC0_C2"])
///     .with_datastore("LocalDS_0");
/// let config = builder.config().unwrap();
/// assert_eq!(config.clusters.len(), 3);
/// assert!(!format!("{builder:?}").contains("secret"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct VSphereBuilder {
    url: Option<String>,
    username: Option<String>,
    password: Option<SecretString>,
    datacenter: Option<String>,
    clusters: Vec<String>,
    datastore: Option<String>,
    network: Option<String>,
    ca_cert_file: Option<PathBuf>,
    request_timeout: Option<Duration>,
    poller: Option<Poller>,
    timeouts: Option<Timeouts>,
    page_size: Option<usize>,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

impl VSphereBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from the environment: `VSPHERE_URL`, `VSPHERE_USERNAME`,
    /// `VSPHERE_PASSWORD`, `VSPHERE_DATACENTER`, `VSPHERE_CLUSTERS` (comma-separated),
    /// `VSPHERE_DATASTORE`, `VSPHERE_NETWORK`, `VSPHERE_TEMPLATE`, `VSPHERE_CA_CERT_FILE`;
    /// govc's `GOVC_URL`, `GOVC_USERNAME`, `GOVC_PASSWORD`, `GOVC_DATACENTER` and
    /// `GOVC_TLS_CA_CERTS` are read where the `VSPHERE_*` one is unset.
    pub fn from_env() -> Self {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        };
        let mut b = Self::new();
        b.url = var(&["VSPHERE_URL", "GOVC_URL"]);
        b.username = var(&["VSPHERE_USERNAME", "GOVC_USERNAME"]);
        b.password = var(&["VSPHERE_PASSWORD", "GOVC_PASSWORD"]).map(SecretString::from);
        b.datacenter = var(&["VSPHERE_DATACENTER", "GOVC_DATACENTER"]);
        b.clusters = var(&["VSPHERE_CLUSTERS"])
            .map(|s| list(&s))
            .unwrap_or_default();
        b.datastore = var(&["VSPHERE_DATASTORE", "GOVC_DATASTORE"]);
        b.network = var(&["VSPHERE_NETWORK", "GOVC_NETWORK"]);
        b.ca_cert_file = var(&["VSPHERE_CA_CERT_FILE", "GOVC_TLS_CA_CERTS"]).map(PathBuf::from);
        b
    }

    /// Sets one `VSphere.*` spec key of [`KEYS`] (with or without the `VSphere.`
    /// prefix); any other key is [`Error::Config`] naming the known ones.
    pub fn with_property(self, key: &str, value: &str) -> Result<Self> {
        let k = key.strip_prefix("VSphere.").unwrap_or(key);
        let v = value.trim();
        Ok(match k {
            "URL" => self.with_url(v),
            "Username" => self.with_username(v),
            "Password" => self.with_password(value),
            "Datacenter" => self.with_datacenter(v),
            "Clusters" => self.with_clusters(list(v)),
            "Datastore" => self.with_datastore(v),
            "Network" => self.with_network(v),
            "CACertFile" => self.with_ca_cert_file(v),
            _ => return Err(unknown_key("VSphere", KEYS, key)),
        })
    }

    /// Sets the SDK endpoint (`VSphere.URL`); a URL without a path gets `/sdk`.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the user name (`VSphere.Username`).
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the password (`VSphere.Password`).
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(SecretString::from(password.into()));
        self
    }

    /// Sets the password from a secret.
    pub fn with_password_secret(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// Sets the datacenter (`VSphere.Datacenter`).
    pub fn with_datacenter(mut self, datacenter: impl Into<String>) -> Self {
        self.datacenter = Some(datacenter.into());
        self
    }

    /// Sets the compute clusters that are the availability zones (`VSphere.Clusters`).
    pub fn with_clusters<I, S>(mut self, clusters: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.clusters = clusters.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the datastore (`VSphere.Datastore`).
    pub fn with_datastore(mut self, datastore: impl Into<String>) -> Self {
        self.datastore = Some(datastore.into());
        self
    }

    /// Sets the network (`VSphere.Network`).
    pub fn with_network(mut self, network: impl Into<String>) -> Self {
        self.network = Some(network.into());
        self
    }

    /// Trusts the CA certificates in this PEM file (`VSphere.CACertFile`).
    pub fn with_ca_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert_file = Some(path.into());
        self
    }

    /// Sets the timeout of one HTTP request (default 60 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Sets how creates and deletes poll (default 200 ms doubling to 5 s).
    pub fn with_poller(mut self, poller: Poller) -> Self {
        self.poller = Some(poller);
        self
    }

    /// Sets the per-kind timeouts (default: DESIGN.md's).
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// Sets the page size of property retrievals (default 100).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = Some(page_size.max(1));
        self
    }

    /// Checks the settings and returns the configuration.
    pub fn config(&self) -> Result<VSphereConfig> {
        let need = |v: &Option<String>, key: &str, fix: &str| {
            v.clone()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| Error::config(key, format!("missing: {fix}")))
        };
        let mut url = need(
            &self.url,
            "VSphere.URL",
            "set the vCenter SDK URL (VSPHERE_URL), e.g. https://vcenter/sdk",
        )?;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| {
                Error::config(
                    "VSphere.URL",
                    format!("{url:?} must start with https:// or http://"),
                )
            })?;
        if !rest.contains('/') {
            url.push_str("/sdk");
        }
        let username = need(
            &self.username,
            "VSphere.Username",
            "set the vCenter user (VSPHERE_USERNAME)",
        )?;
        let password = self.password.clone().ok_or_else(|| {
            Error::config(
                "VSphere.Password",
                "missing: set the vCenter password (VSPHERE_PASSWORD)",
            )
        })?;
        let datacenter = need(
            &self.datacenter,
            "VSphere.Datacenter",
            "name the datacenter (VSPHERE_DATACENTER)",
        )?;
        Ok(VSphereConfig {
            url,
            username,
            password,
            datacenter,
            clusters: self.clusters.clone(),
            datastore: self.datastore.clone().filter(|s| !s.is_empty()),
            network: self.network.clone().filter(|s| !s.is_empty()),
            ca_cert_file: self.ca_cert_file.clone(),
            request_timeout: self.request_timeout.unwrap_or(Duration::from_secs(60)),
            poller: self
                .poller
                .clone()
                .unwrap_or_else(|| Poller::new(Duration::from_millis(200), Duration::from_secs(5))),
            timeouts: self.timeouts.clone().unwrap_or_default(),
            page_size: self.page_size.unwrap_or(100),
        })
    }

    /// Builds the provider. It connects lazily: the first call logs in and resolves
    /// the datacenter, clusters, datastore and folder.
    pub async fn build(self) -> Result<crate::VSphereProvider> {
        crate::VSphereProvider::new(self.config()?)
    }
}

#[async_trait::async_trait]
impl ProviderBuilder for VSphereBuilder {
    type Provider = crate::VSphereProvider;
    const PREFIX: &'static str = "VSphere";
    const KEYS: &'static [ConfigKey] = KEYS;

    fn from_env() -> Self {
        VSphereBuilder::from_env()
    }

    fn with_property(self, key: &str, value: &str) -> Result<Self> {
        VSphereBuilder::with_property(self, key, value)
    }

    async fn build(self) -> Result<crate::VSphereProvider> {
        VSphereBuilder::build(self).await
    }
}

/// The `VSphere.*` spec keys this provider reads (with their `VSPHERE_*` / `GOVC_*`
/// variables). The cluster's own keys (template, flavors, CIDRs) are not here: they
/// reach the provider in the specs it creates.
pub const KEYS: &[ConfigKey] = &[
    ConfigKey::new("URL", "the vCenter SDK endpoint, e.g. https://vcenter.example/sdk (VSPHERE_URL, GOVC_URL)").required(),
    ConfigKey::new("Username", "the vCenter user (VSPHERE_USERNAME, GOVC_USERNAME)").required(),
    ConfigKey::new("Password", "the vCenter user's password (VSPHERE_PASSWORD, GOVC_PASSWORD)").required().secret(),
    ConfigKey::new("Datacenter", "the datacenter (VSPHERE_DATACENTER, GOVC_DATACENTER)").required(),
    ConfigKey::new("Clusters", "compute clusters used as availability zones, comma-separated; default every cluster of the datacenter (VSPHERE_CLUSTERS)"),
    ConfigKey::new("Datastore", "datastore of VMs and volumes; default the datacenter's first (VSPHERE_DATASTORE, GOVC_DATASTORE)"),
    ConfigKey::new("Network", "port group the instances' first adapter is moved onto; default the template's (VSPHERE_NETWORK, GOVC_NETWORK)"),
    ConfigKey::new("CACertFile", "PEM file of CAs to trust besides the built-in roots (VSPHERE_CA_CERT_FILE, GOVC_TLS_CA_CERTS)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_parses_and_rejects() {
        let op = Operation::CreateInstance;
        assert_eq!(
            Flavor::parse(op, "f", "2:4096").unwrap(),
            Flavor {
                cpus: 2,
                memory_mib: 4096
            }
        );
        for bad in ["", "2", "x:1", "0:512", "2:", "m1.small"] {
            assert!(Flavor::parse(op, "f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn properties_map_to_setters() {
        let b = VSphereBuilder::new()
            .with_property("VSphere.URL", "https://127.0.0.1:8989")
            .and_then(|b| b.with_property("VSphere.Username", "admin"))
            .and_then(|b| b.with_property("VSphere.Password", "hunter2"))
            .and_then(|b| b.with_property("VSphere.Datacenter", "DC0"))
            .and_then(|b| b.with_property("VSphere.Clusters", "A, B ,C"))
            .unwrap();
        let c = b.config().unwrap();
        assert_eq!(c.url, "https://127.0.0.1:8989/sdk");
        assert_eq!(c.clusters, vec!["A", "B", "C"]);
        assert!(!format!("{b:?} {c:?}").contains("hunter2"));
        let err = VSphereBuilder::new()
            .with_property("VSphere.Clustres", "x")
            .unwrap_err();
        assert!(err.to_string().contains("VSphere.Clustres"), "{err}");
        assert_eq!(err.kind(), provider_core::ErrorKind::Config);
        // Flavors and the template are the cluster's keys, not the provider's.
        let err = VSphereBuilder::new()
            .with_property("VSphere.NodeFlavor", "2:2048")
            .unwrap_err();
        assert!(err.to_string().contains("VSphere.NodeFlavor"), "{err}");
    }

    #[test]
    fn missing_settings_name_the_key() {
        let err = VSphereBuilder::new().config().unwrap_err();
        assert!(err.to_string().contains("VSphere.URL"), "{err}");
        let err = VSphereBuilder::new()
            .with_url("https://h/sdk")
            .with_username("u")
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("VSphere.Password"), "{err}");
    }
}
