//! Configuration: [`VSphereBuilder`] from code, from the environment and from the
//! `VSphere.*` keys of a cluster spec.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Default template (`VSphere.Template`), used when an instance spec's image is empty.
    pub template: Option<String>,
    /// Flavors per role from the spec keys (`master`, `node`, `glusterfs`).
    pub role_flavors: Vec<(String, String)>,
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
///     .with_datastore("LocalDS_0")
///     .with_template("tmpl-base");
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
    template: Option<String>,
    role_flavors: Vec<(String, String)>,
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
        b.template = var(&["VSPHERE_TEMPLATE"]);
        b.ca_cert_file = var(&["VSPHERE_CA_CERT_FILE", "GOVC_TLS_CA_CERTS"]).map(PathBuf::from);
        b
    }

    /// Sets one `VSphere.*` key of a cluster spec (with or without the `VSphere.`
    /// prefix): `URL`, `Username`, `Password`, `Datacenter`, `Clusters`, `Datastore`,
    /// `Network`, `Template`, `MasterFlavor`, `NodeFlavor`, `GlusterFSFlavor`,
    /// `CACertFile`. An unknown key is `InvalidInput` naming it.
    pub fn with_property(self, key: &str, value: &str) -> Result<Self> {
        let k = key.strip_prefix("VSphere.").unwrap_or(key);
        let v = value.trim();
        Ok(match k {
            "URL" => self.with_url(v),
            "Username" => self.with_username(v),
            "Password" => self.with_password(v),
            "Datacenter" => self.with_datacenter(v),
            "Clusters" => self.with_clusters(list(v)),
            "Datastore" => self.with_datastore(v),
            "Network" => self.with_network(v),
            "Template" => self.with_template(v),
            "MasterFlavor" => self.with_role_flavor("master", v),
            "NodeFlavor" => self.with_role_flavor("node", v),
            "GlusterFSFlavor" => self.with_role_flavor("glusterfs", v),
            "CACertFile" => self.with_ca_cert_file(v),
            _ => {
                return Err(Error::invalid(
                    Operation::ListAvailabilityZones,
                    format!("VSphere.{k}"),
                    "unknown key: use URL, Username, Password, Datacenter, Clusters, Datastore, Network, Template, MasterFlavor, NodeFlavor, GlusterFSFlavor or CACertFile",
                ))
            }
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

    /// Sets the default template (`VSphere.Template`).
    pub fn with_template(mut self, template: impl Into<String>) -> Self {
        self.template = Some(template.into());
        self
    }

    /// Records a role's flavor (`VSphere.MasterFlavor` and friends), checked as
    /// `cpus:memoryMiB` by [`Self::config`].
    pub fn with_role_flavor(mut self, role: impl Into<String>, flavor: impl Into<String>) -> Self {
        let role = role.into();
        self.role_flavors.retain(|(r, _)| *r != role);
        self.role_flavors.push((role, flavor.into()));
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
        let op = Operation::ListAvailabilityZones;
        let need = |v: &Option<String>, key: &str, fix: &str| {
            v.clone()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| Error::invalid(op, key, format!("missing: {fix}")))
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
                Error::invalid(
                    op,
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
            Error::invalid(
                op,
                "VSphere.Password",
                "missing: set the vCenter password (VSPHERE_PASSWORD)",
            )
        })?;
        let datacenter = need(
            &self.datacenter,
            "VSphere.Datacenter",
            "name the datacenter (VSPHERE_DATACENTER)",
        )?;
        for (role, flavor) in &self.role_flavors {
            Flavor::parse(op, &format!("VSphere flavor of role {role}"), flavor)?;
        }
        Ok(VSphereConfig {
            url,
            username,
            password,
            datacenter,
            clusters: self.clusters.clone(),
            datastore: self.datastore.clone().filter(|s| !s.is_empty()),
            network: self.network.clone().filter(|s| !s.is_empty()),
            template: self.template.clone().filter(|s| !s.is_empty()),
            role_flavors: self.role_flavors.clone(),
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
    pub fn build(&self) -> Result<crate::VSphereProvider> {
        crate::VSphereProvider::new(self.config()?)
    }
}

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
            .and_then(|b| b.with_property("VSphere.NodeFlavor", "2:2048"))
            .unwrap();
        let c = b.config().unwrap();
        assert_eq!(c.url, "https://127.0.0.1:8989/sdk");
        assert_eq!(c.clusters, vec!["A", "B", "C"]);
        assert!(!format!("{b:?} {c:?}").contains("hunter2"));
        let err = VSphereBuilder::new()
            .with_property("VSphere.Clustres", "x")
            .unwrap_err();
        assert!(err.to_string().contains("VSphere.Clustres"), "{err}");
        let err = b
            .clone()
            .with_role_flavor("master", "big")
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("cpus:memoryMiB"), "{err}");
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
