//! Configuration: [`OpenStackBuilder`], filled from setters, the `OpenStack.*` spec keys,
//! clouds.yaml (`OS_CLOUD`) and the `OS_*` environment variables.
//!
//! Precedence, highest first: setters called after loading, then the `OS_*` variables,
//! then the clouds.yaml entry named by `OS_CLOUD`. Parsing of clouds.yaml and of the
//! `OS_*` variables is `openstack_sdk`'s own (the same files and names openstacksdk
//! reads: `OS_CLIENT_CONFIG_FILE`, `OS_CLIENT_CONFIG_PATH`, `./clouds.yaml`, `~/.config/openstack/clouds.yaml`,
//! `/etc/openstack/clouds.yaml`, plus `secure.yaml`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use openstack_sdk::config::{Auth, CloudConfig, ConfigFile};
use provider_core::config::{unknown_key, ConfigKey, ProviderBuilder};
use provider_core::wait::{Poller, Timeouts};
use provider_core::{Error, Result};
use secrecy::SecretString;

use crate::OpenStackProvider;

/// Default number of items asked per page of a list call.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Builds an [`OpenStackProvider`].
///
/// ```no_run
/// # async fn f() -> provider_core::Result<()> {
/// use provider_openstack::OpenStackBuilder;
/// let cloud = OpenStackBuilder::from_env()
///     .with_region_name("RegionOne")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct OpenStackBuilder {
    auth_url: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
    password: Option<SecretString>,
    user_domain_name: Option<String>,
    user_domain_id: Option<String>,
    application_credential_id: Option<String>,
    application_credential_name: Option<String>,
    application_credential_secret: Option<SecretString>,
    project_id: Option<String>,
    project_name: Option<String>,
    project_domain_name: Option<String>,
    project_domain_id: Option<String>,
    domain_name: Option<String>,
    region_name: Option<String>,
    interface: Option<String>,
    ca_cert_file: Option<PathBuf>,
    insecure: bool,
    volume_zones: BTreeMap<String, String>,
    timeouts: Timeouts,
    poller: Poller,
    page_size: Option<usize>,
    renew_margin: Option<Duration>,
    /// What [`OpenStackBuilder::from_env`] could not read, reported by `build`.
    env_error: Option<Error>,
}

impl fmt::Debug for OpenStackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("OpenStackBuilder")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("user_id", &self.user_id)
            .field("password", &redacted(&self.password))
            .field("user_domain_name", &self.user_domain_name)
            .field("application_credential_id", &self.application_credential_id)
            .field(
                "application_credential_name",
                &self.application_credential_name,
            )
            .field(
                "application_credential_secret",
                &redacted(&self.application_credential_secret),
            )
            .field("project_id", &self.project_id)
            .field("project_name", &self.project_name)
            .field("project_domain_name", &self.project_domain_name)
            .field("domain_name", &self.domain_name)
            .field("region_name", &self.region_name)
            .field("ca_cert_file", &self.ca_cert_file)
            .field("insecure", &self.insecure)
            .field("volume_zones", &self.volume_zones)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// The `OpenStack.*` spec keys this provider reads; each also has its `OS_*` variable
/// and clouds.yaml field. The cluster's own keys (image, flavors, network, CIDRs, AZs)
/// are not here: they reach the provider in the specs it creates.
pub const KEYS: &[ConfigKey] = &[
    ConfigKey::new("AuthURL", "Keystone v3 endpoint, e.g. https://keystone.example:5000/v3 (OS_AUTH_URL)").required(),
    ConfigKey::new("Username", "user name for password authentication (OS_USERNAME)"),
    ConfigKey::new("Password", "the user's password (OS_PASSWORD)").secret(),
    ConfigKey::new("DomainName", "domain of the user and of the project when they have none of their own (OS_DOMAIN_NAME)"),
    ConfigKey::new("ProjectID", "project to scope to, by id (OS_PROJECT_ID)"),
    ConfigKey::new("ProjectName", "project to scope to, by name (OS_PROJECT_NAME)"),
    ConfigKey::new("RegionName", "region whose endpoints are used (OS_REGION_NAME)"),
    ConfigKey::new("CACertFile", "PEM bundle of CAs to trust besides the system's (OS_CACERT)"),
    ConfigKey::new("ApplicationCredentialID", "application credential id, instead of a password (OS_APPLICATION_CREDENTIAL_ID)"),
    ConfigKey::new("ApplicationCredentialName", "application credential name, with Username (OS_APPLICATION_CREDENTIAL_NAME)"),
    ConfigKey::new("ApplicationCredentialSecret", "application credential secret (OS_APPLICATION_CREDENTIAL_SECRET)").secret(),
    ConfigKey::new("VolumeAvailabilityZones", "compute:volume AZ pairs, comma-separated, where Cinder names its zones differently from Nova (e.g. nova-1:cinder-1)"),
];

/// A configuration error naming `key` (a spec key or an environment variable).
fn config_error(key: &str, message: impl Into<String>) -> Error {
    Error::config(key, message)
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

impl OpenStackBuilder {
    /// An empty builder: set at least the auth URL and credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from the environment, as openstacksdk users expect: the clouds.yaml
    /// entry named by `OS_CLOUD` (if set), overridden by the `OS_*` variables. A
    /// clouds.yaml or `OS_*` problem is reported by [`Self::build`].
    pub fn from_env() -> Self {
        let mut b = Self::new();
        match Self::env_config() {
            Ok(config) => b.absorb(&config),
            Err(e) => b.env_error = Some(e),
        }
        b
    }

    fn env_config() -> Result<CloudConfig> {
        let mut config = CloudConfig::from_env().map_err(|e| {
            config_error("OS_*", format!("cannot read the OS_* variables: {e}")).with_source(e)
        })?;
        if let Some(cloud) = non_empty(std::env::var("OS_CLOUD").ok()) {
            let file = Self::named_cloud(&cloud)?;
            config.update(&file);
        }
        Ok(config)
    }

    /// A builder from the clouds.yaml entry `cloud` (the files openstacksdk reads).
    pub fn from_cloud(cloud: &str) -> Result<Self> {
        let config = Self::named_cloud(cloud)?;
        let mut b = Self::new();
        b.absorb(&config);
        Ok(b)
    }

    fn named_cloud(cloud: &str) -> Result<CloudConfig> {
        // openstacksdk's OS_CLIENT_CONFIG_FILE, besides the sdk's own search path
        // (OS_CLIENT_CONFIG_PATH, ./clouds.yaml, ~/.config/openstack, /etc/openstack).
        let explicit = non_empty(std::env::var("OS_CLIENT_CONFIG_FILE").ok()).map(PathBuf::from);
        let files = ConfigFile::new_with_user_specified_configs(explicit, None::<PathBuf>)
            .map_err(|e| {
                config_error("OS_CLOUD", format!("cannot read clouds.yaml: {e}")).with_source(e)
            })?;
        files
            .get_cloud_config(cloud)
            .map_err(|e| {
                config_error("OS_CLOUD", format!("cannot read cloud {cloud:?}: {e}"))
                    .with_source(e)
            })?
            .ok_or_else(|| {
                config_error(
                    "OS_CLOUD",
                    format!(
                        "no cloud {cloud:?} in clouds.yaml (set OS_CLIENT_CONFIG_FILE or add it to ~/.config/openstack/clouds.yaml)"
                    ),
                )
            })
    }

    /// Takes every value `config` sets (values already set here are replaced).
    fn absorb(&mut self, config: &CloudConfig) {
        if let Some(a) = &config.auth {
            let set = |dst: &mut Option<String>, src: &Option<String>| {
                if let Some(v) = non_empty(src.clone()) {
                    *dst = Some(v);
                }
            };
            set(&mut self.auth_url, &a.auth_url);
            set(&mut self.username, &a.username);
            set(&mut self.user_id, &a.user_id);
            set(&mut self.user_domain_name, &a.user_domain_name);
            set(&mut self.user_domain_id, &a.user_domain_id);
            set(&mut self.project_id, &a.project_id);
            set(&mut self.project_name, &a.project_name);
            set(&mut self.project_domain_name, &a.project_domain_name);
            set(&mut self.project_domain_id, &a.project_domain_id);
            set(&mut self.domain_name, &a.domain_name);
            set(
                &mut self.application_credential_id,
                &a.application_credential_id,
            );
            set(
                &mut self.application_credential_name,
                &a.application_credential_name,
            );
            if a.password.is_some() {
                self.password.clone_from(&a.password);
            }
            if a.application_credential_secret.is_some() {
                self.application_credential_secret
                    .clone_from(&a.application_credential_secret);
            }
        }
        if let Some(r) = non_empty(config.region_name.clone()) {
            self.region_name = Some(r);
        }
        if let Some(i) = non_empty(config.interface.clone()) {
            self.interface = Some(i);
        }
        if let Some(c) = non_empty(config.cacert.clone()) {
            self.ca_cert_file = Some(PathBuf::from(c));
        }
        if config.verify == Some(false) {
            self.insecure = true;
        }
    }

    /// Sets one `OpenStack.*` spec key of [`KEYS`] (with or without the `OpenStack.`
    /// prefix); any other key is [`Error::Config`] naming the known ones.
    pub fn with_property(mut self, key: &str, value: &str) -> Result<Self> {
        let k = key.strip_prefix("OpenStack.").unwrap_or(key);
        let key = &format!("OpenStack.{k}");
        let v = value.trim().to_string();
        match k {
            "CACertFile" => self.ca_cert_file = Some(PathBuf::from(v)),
            "AuthURL" => self.auth_url = Some(v),
            "Username" => self.username = Some(v),
            "Password" => self.password = Some(SecretString::from(value.to_string())),
            "DomainName" => self.domain_name = Some(v),
            "ProjectID" => self.project_id = Some(v),
            "ProjectName" => self.project_name = Some(v),
            "RegionName" => self.region_name = Some(v),
            "ApplicationCredentialID" => self.application_credential_id = Some(v),
            "ApplicationCredentialName" => self.application_credential_name = Some(v),
            "ApplicationCredentialSecret" => {
                self.application_credential_secret = Some(SecretString::from(value.to_string()))
            }
            "VolumeAvailabilityZones" => {
                for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (c, vz) = pair.split_once(':').ok_or_else(|| {
                        config_error(
                            key,
                            format!("{pair:?} is not compute:volume (e.g. nova-1:cinder-1)"),
                        )
                    })?;
                    self.volume_zones
                        .insert(c.trim().to_string(), vz.trim().to_string());
                }
            }
            _ => return Err(unknown_key("OpenStack", KEYS, key)),
        }
        Ok(self)
    }

    /// Sets the Keystone v3 URL (`OpenStack.AuthURL`, `OS_AUTH_URL`).
    pub fn with_auth_url(mut self, url: impl Into<String>) -> Self {
        self.auth_url = Some(url.into());
        self
    }

    /// Sets the user name for password auth (`OpenStack.Username`, `OS_USERNAME`).
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the user id for password auth (`OS_USER_ID`).
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the password (`OpenStack.Password`, `OS_PASSWORD`).
    pub fn with_password(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// Sets the domain of both the user and the project when those are not set
    /// separately (`OpenStack.DomainName`, `OS_DOMAIN_NAME`).
    pub fn with_domain_name(mut self, domain: impl Into<String>) -> Self {
        self.domain_name = Some(domain.into());
        self
    }

    /// Sets the user's domain (`OS_USER_DOMAIN_NAME`).
    pub fn with_user_domain_name(mut self, domain: impl Into<String>) -> Self {
        self.user_domain_name = Some(domain.into());
        self
    }

    /// Sets the project's domain (`OS_PROJECT_DOMAIN_NAME`).
    pub fn with_project_domain_name(mut self, domain: impl Into<String>) -> Self {
        self.project_domain_name = Some(domain.into());
        self
    }

    /// Scopes to this project id (`OpenStack.ProjectID`, `OS_PROJECT_ID`).
    pub fn with_project_id(mut self, id: impl Into<String>) -> Self {
        self.project_id = Some(id.into());
        self
    }

    /// Scopes to this project name (`OpenStack.ProjectName`, `OS_PROJECT_NAME`).
    pub fn with_project_name(mut self, name: impl Into<String>) -> Self {
        self.project_name = Some(name.into());
        self
    }

    /// Sets the region used to pick catalog endpoints (`OpenStack.RegionName`).
    pub fn with_region_name(mut self, region: impl Into<String>) -> Self {
        self.region_name = Some(region.into());
        self
    }

    /// Sets the catalog interface (`public`, `internal`, `admin`; default `public`).
    pub fn with_interface(mut self, interface: impl Into<String>) -> Self {
        self.interface = Some(interface.into());
        self
    }

    /// Authenticates with an application credential (by id) instead of a password.
    pub fn with_application_credential(
        mut self,
        id: impl Into<String>,
        secret: SecretString,
    ) -> Self {
        self.application_credential_id = Some(id.into());
        self.application_credential_secret = Some(secret);
        self
    }

    /// Authenticates with an application credential by name; needs the user's name and
    /// domain (or id) too.
    pub fn with_application_credential_name(
        mut self,
        name: impl Into<String>,
        secret: SecretString,
    ) -> Self {
        self.application_credential_name = Some(name.into());
        self.application_credential_secret = Some(secret);
        self
    }

    /// Trusts the CA certificates (PEM bundle) in this file, besides the system roots
    /// (`OpenStack.CACertFile`, `OS_CACERT`). Verification stays on.
    pub fn with_ca_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert_file = Some(path.into());
        self
    }

    /// Turns TLS certificate verification off. Never do this outside a throw-away test
    /// cloud: prefer [`Self::with_ca_cert_file`].
    pub fn danger_accept_invalid_certs(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Maps a compute (Nova) AZ to the volume (Cinder) AZ of the same failure domain,
    /// for clouds whose names differ (`OpenStack.VolumeAvailabilityZones =
    /// nova-1:cinder-1,...`). Unmapped zones use the same name in both services.
    pub fn with_volume_zone(
        mut self,
        compute: impl Into<String>,
        volume: impl Into<String>,
    ) -> Self {
        self.volume_zones.insert(compute.into(), volume.into());
        self
    }

    /// Sets how long creates and deletes wait.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Sets how waits poll.
    pub fn with_poller(mut self, poller: Poller) -> Self {
        self.poller = poller;
        self
    }

    /// Sets the page size of list calls (`limit`; default [`DEFAULT_PAGE_SIZE`]).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = Some(page_size.max(1));
        self
    }

    /// Renews the token this long before it expires (default 5 minutes).
    pub fn with_token_renew_margin(mut self, margin: Duration) -> Self {
        self.renew_margin = Some(margin);
        self
    }

    /// The sdk's view of this configuration (credentials stay secret types).
    pub(crate) fn cloud_config(&self) -> Result<CloudConfig> {
        let auth_url = self.auth_url.clone().ok_or_else(|| {
            config_error(
                "OpenStack.AuthURL",
                "missing: set the Keystone v3 URL (OpenStack.AuthURL, OS_AUTH_URL or clouds.yaml)",
            )
        })?;
        let app_cred = self.application_credential_secret.is_some()
            && (self.application_credential_id.is_some()
                || self.application_credential_name.is_some());
        if !app_cred && self.password.is_none() {
            return Err(config_error(
                "OpenStack.Password",
                "missing: set a password (OpenStack.Password, OS_PASSWORD) or an application credential (OS_APPLICATION_CREDENTIAL_ID and _SECRET)",
            ));
        }
        if !app_cred && self.username.is_none() && self.user_id.is_none() {
            return Err(config_error(
                "OpenStack.Username",
                "missing: set the user name (OpenStack.Username, OS_USERNAME) or id (OS_USER_ID)",
            ));
        }
        let domain = self.domain_name.clone();
        let mut auth = Auth {
            auth_url: Some(auth_url),
            ..Default::default()
        };
        let user_domain = self.user_domain_name.clone().or_else(|| {
            self.user_domain_id
                .is_none()
                .then(|| domain.clone())
                .flatten()
        });
        if app_cred {
            auth.application_credential_id = self.application_credential_id.clone();
            auth.application_credential_name = self.application_credential_name.clone();
            auth.application_credential_secret = self.application_credential_secret.clone();
            if self.application_credential_id.is_none() {
                auth.username = self.username.clone();
                auth.user_id = self.user_id.clone();
                auth.user_domain_name = user_domain;
                auth.user_domain_id = self.user_domain_id.clone();
            }
        } else {
            auth.username = self.username.clone();
            auth.user_id = self.user_id.clone();
            auth.password = self.password.clone();
            auth.user_domain_name = user_domain;
            auth.user_domain_id = self.user_domain_id.clone();
            // An application credential is scoped already; a password needs a scope.
            auth.project_id = self.project_id.clone();
            if self.project_id.is_none() {
                auth.project_name = self.project_name.clone();
                auth.project_domain_id = self.project_domain_id.clone();
                auth.project_domain_name = self.project_domain_name.clone().or_else(|| {
                    self.project_domain_id
                        .is_none()
                        .then(|| domain.clone())
                        .flatten()
                });
            }
            if auth.project_id.is_none() && auth.project_name.is_none() {
                // Domain scope.
                auth.domain_name = domain;
            }
        }
        Ok(CloudConfig {
            auth: Some(auth),
            auth_type: Some(
                if app_cred {
                    "v3applicationcredential"
                } else {
                    "v3password"
                }
                .to_string(),
            ),
            region_name: self.region_name.clone(),
            interface: Some(self.interface.clone().unwrap_or_else(|| "public".into())),
            cacert: self
                .ca_cert_file
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            verify: Some(!self.insecure),
            auth_cache: Some(false),
            ..Default::default()
        })
    }

    /// Authenticates (Keystone v3), reads the catalog, and returns the provider.
    /// A wrong password is `Unauthorized`; a missing or unreadable setting is
    /// [`Error::Config`] naming its key.
    pub async fn build(mut self) -> Result<OpenStackProvider> {
        if let Some(e) = self.env_error.take() {
            return Err(e);
        }
        if let Some(path) = &self.ca_cert_file {
            let key = "OpenStack.CACertFile";
            match std::fs::read(path) {
                Err(e) => {
                    let message = format!("cannot read {}: {e}: name an existing PEM file (or remove the key to trust the system's CAs)", path.display());
                    return Err(config_error(key, message).with_source(e));
                }
                Ok(pem) if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => {
                    let message = format!(
                        "{} holds no PEM certificate (no `-----BEGIN CERTIFICATE-----` line): name the CA bundle in PEM form",
                        path.display()
                    );
                    return Err(config_error(key, message));
                }
                Ok(_) => {}
            }
        }
        OpenStackProvider::connect(self).await
    }

    pub(crate) fn settings(&self) -> Settings {
        Settings {
            volume_zones: self.volume_zones.clone(),
            timeouts: self.timeouts.clone(),
            poller: self.poller.clone(),
            page_size: self.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            renew_margin: self.renew_margin.unwrap_or(Duration::from_secs(300)),
        }
    }
}

/// What the provider keeps of its builder besides the session.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) volume_zones: BTreeMap<String, String>,
    pub(crate) timeouts: Timeouts,
    pub(crate) poller: Poller,
    pub(crate) page_size: usize,
    pub(crate) renew_margin: Duration,
}

#[async_trait::async_trait]
impl ProviderBuilder for OpenStackBuilder {
    type Provider = OpenStackProvider;
    const PREFIX: &'static str = "OpenStack";
    const KEYS: &'static [ConfigKey] = KEYS;

    fn from_env() -> Self {
        OpenStackBuilder::from_env()
    }

    fn with_property(self, key: &str, value: &str) -> Result<Self> {
        OpenStackBuilder::with_property(self, key, value)
    }

    async fn build(self) -> Result<OpenStackProvider> {
        OpenStackBuilder::build(self).await
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn properties_fill_the_builder_and_debug_hides_the_password() {
        let b = OpenStackBuilder::new()
            .with_property("OpenStack.AuthURL", "https://k:5000/v3")
            .unwrap()
            .with_property("OpenStack.Username", "junichi")
            .unwrap()
            .with_property("OpenStack.Password", "s3cret-pw")
            .unwrap()
            .with_property("OpenStack.DomainName", "default")
            .unwrap()
            .with_property("OpenStack.ProjectName", "Stackato4")
            .unwrap()
            .with_property("VolumeAvailabilityZones", "nova:cinder-a, az2:cinder-b")
            .unwrap();
        assert!(!format!("{b:?}").contains("s3cret-pw"));
        let cc = b.cloud_config().unwrap();
        let auth = cc.auth.unwrap();
        assert_eq!(auth.username.as_deref(), Some("junichi"));
        assert_eq!(auth.user_domain_name.as_deref(), Some("default"));
        assert_eq!(auth.project_domain_name.as_deref(), Some("default"));
        assert_eq!(auth.project_name.as_deref(), Some("Stackato4"));
        assert_eq!(
            auth.password
                .as_ref()
                .map(|p| p.expose_secret().to_string()),
            Some("s3cret-pw".into())
        );
        assert_eq!(cc.verify, Some(true));
        assert_eq!(
            b.volume_zones.get("az2").map(String::as_str),
            Some("cinder-b")
        );
        let err = OpenStackBuilder::new()
            .with_property("OpenStack.Pasword", "x")
            .unwrap_err();
        assert_eq!(err.kind(), provider_core::ErrorKind::Config);
        assert!(err.to_string().contains("OpenStack.Pasword"), "{err}");
        let err = OpenStackBuilder::new()
            .with_property("OpenStack.LinuxImageID", "abc")
            .unwrap_err();
        assert!(err.to_string().contains("OpenStack.AuthURL"), "{err}");
    }

    #[test]
    fn missing_settings_name_their_key() {
        let err = OpenStackBuilder::new().cloud_config().unwrap_err();
        assert!(err.to_string().contains("OpenStack.AuthURL"), "{err}");
        let err = OpenStackBuilder::new()
            .with_auth_url("http://k/v3")
            .with_username("u")
            .cloud_config()
            .unwrap_err();
        assert!(err.to_string().contains("OpenStack.Password"), "{err}");
    }

    #[test]
    fn application_credential_needs_no_scope() {
        let cc = OpenStackBuilder::new()
            .with_auth_url("http://k/v3")
            .with_application_credential("ac-id", SecretString::from("sec".to_string()))
            .with_project_name("ignored")
            .cloud_config()
            .unwrap();
        assert_eq!(cc.auth_type.as_deref(), Some("v3applicationcredential"));
        let auth = cc.auth.unwrap();
        assert_eq!(auth.application_credential_id.as_deref(), Some("ac-id"));
        assert!(auth.project_name.is_none());
    }
}
