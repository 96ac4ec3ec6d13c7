//! Configuration: [`AwsBuilder`] reads the environment and the `AWS.*` spec keys, and
//! builds an [`AwsProvider`](crate::AwsProvider).
//!
//! Credentials never pass through here: they come from aws-config's default chain
//! (environment, shared config and credentials files and profiles, web identity, ECS
//! and EC2 instance metadata), as every AWS tool finds them.

use std::time::Duration;

use provider_core::config::{unknown_key, ConfigKey, ProviderBuilder};
use provider_core::wait::{Poller, Timeouts};
use provider_core::{Error, Result};

/// The `AWS.*` spec keys this provider reads. Credentials are never spec keys: they
/// come from the AWS config chain. The cluster's own keys (AMI, instance types, key
/// name, CIDRs) are not here: they reach the provider in the specs it creates.
pub const KEYS: &[ConfigKey] = &[
    ConfigKey::new("Region", "the AWS region, e.g. eu-west-1 (AWS_REGION, or the profile's region)").required(),
    ConfigKey::new("VpcID", "VPC of security groups and target groups (id or Name tag); default: the subnets' VPC, else the region's default VPC"),
    ConfigKey::new("SubnetIDs", "one subnet per AZ, comma-separated, in the order of AWS.AvailabilityZones (ids or Name tags)"),
    ConfigKey::new("AvailabilityZones", "the AZs resources are placed in, comma-separated; default: every available AZ of the region"),
];

/// Everything an [`AwsProvider`](crate::AwsProvider) was built with.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// Region; `None` lets aws-config's chain decide (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint override for every service (an emulator); `None` lets aws-config read
    /// `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// VPC of security groups and target groups; `None`: the VPC of the subnets, else
    /// the region's default VPC.
    pub vpc_id: Option<String>,
    /// One subnet per AZ, in the order of [`Self::availability_zones`].
    pub subnet_ids: Vec<String>,
    /// The AZs Plinth places resources in; empty: every available AZ of the region.
    pub availability_zones: Vec<String>,
    /// Volume type when a spec names none.
    pub default_volume_type: String,
    /// Deregistration delay of target groups: how long a removed member drains.
    pub drain_period: Duration,
    /// Whether load balancers are internal (private addresses) instead of
    /// internet-facing.
    pub internal_load_balancers: bool,
    /// `MaxResults` / `PageSize` of list calls (5 to 400).
    pub page_size: usize,
    /// Attempts the SDK makes per call (1 = no SDK retry; retry is the `Retry` layer's
    /// job).
    pub sdk_max_attempts: u32,
    /// How long a `NotFound` right after a create is taken for eventual consistency.
    pub consistency_window: Duration,
    /// How creates and deletes poll.
    pub poller: Poller,
    /// How long they wait.
    pub timeouts: Timeouts,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            vpc_id: None,
            subnet_ids: Vec::new(),
            availability_zones: Vec::new(),
            default_volume_type: "gp3".into(),
            drain_period: Duration::from_secs(30),
            internal_load_balancers: false,
            page_size: 200,
            sdk_max_attempts: 1,
            consistency_window: Duration::from_secs(30),
            poller: Poller::new(Duration::from_secs(1), Duration::from_secs(15)),
            timeouts: Timeouts::default(),
        }
    }
}

/// Builds an [`AwsProvider`](crate::AwsProvider) from the environment, spec keys and
/// setters, in the style of object_store's `AmazonS3Builder`.
///
/// ```no_run
/// # async fn f() -> provider_core::Result<()> {
/// use provider_aws::AwsBuilder;
/// let provider = AwsBuilder::from_env()
///     .with_property("AWS.Region", "eu-west-1")?
///     .with_property("AWS.SubnetIDs", "subnet-a,subnet-b,subnet-c")?
///     .with_property("AWS.AvailabilityZones", "eu-west-1a,eu-west-1b,eu-west-1c")?
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct AwsBuilder {
    config: AwsConfig,
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

impl AwsBuilder {
    /// A builder with defaults and nothing read from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that reads `AWS_ENDPOINT_URL` and `AWS_REGION` (aws-config reads them
    /// too; reading them here makes them visible in [`Self::config`]) and the Plinth
    /// settings `PLINTH_AWS_VPC_ID`, `PLINTH_AWS_SUBNET_IDS` and
    /// `PLINTH_AWS_AVAILABILITY_ZONES` (comma-separated).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().and_then(|v| non_empty(&v));
        let mut b = Self::new();
        b.config.endpoint_url = var("AWS_ENDPOINT_URL");
        b.config.region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
        b.config.vpc_id = var("PLINTH_AWS_VPC_ID");
        if let Some(v) = var("PLINTH_AWS_SUBNET_IDS") {
            b.config.subnet_ids = split_list(&v);
        }
        if let Some(v) = var("PLINTH_AWS_AVAILABILITY_ZONES") {
            b.config.availability_zones = split_list(&v);
        }
        b
    }

    /// Sets one `AWS.*` spec key of [`KEYS`] (the prefix is optional); any other key
    /// is [`Error::Config`] naming the known ones.
    pub fn with_property(self, key: &str, value: &str) -> Result<Self> {
        let k = key.strip_prefix("AWS.").unwrap_or(key);
        Ok(match k {
            "Region" => self.with_region(value.trim()),
            "VpcID" => self.with_vpc_id(value.trim()),
            "SubnetIDs" => self.with_subnet_ids(split_list(value)),
            "AvailabilityZones" => self.with_availability_zones(split_list(value)),
            _ => return Err(unknown_key("AWS", KEYS, key)),
        })
    }

    /// Sets the region (`AWS.Region`).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.config.region = non_empty(&region.into());
        self
    }

    /// Sets the endpoint of every service (an emulator such as moto).
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.config.endpoint_url = non_empty(&url.into());
        self
    }

    /// Sets the VPC (`AWS.VpcID`, id or `Name` tag).
    pub fn with_vpc_id(mut self, vpc: impl Into<String>) -> Self {
        self.config.vpc_id = non_empty(&vpc.into());
        self
    }

    /// Sets the subnets, one per AZ in AZ order (`AWS.SubnetIDs`, ids or `Name` tags).
    pub fn with_subnet_ids<I, S>(mut self, subnets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.subnet_ids = subnets.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the AZs (`AWS.AvailabilityZones`).
    pub fn with_availability_zones<I, S>(mut self, zones: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.availability_zones = zones.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the volume type used when a spec names none (default `gp3`).
    pub fn with_default_volume_type(mut self, t: impl Into<String>) -> Self {
        self.config.default_volume_type = t.into();
        self
    }

    /// Sets the drain period: the target groups' deregistration delay (default 30 s,
    /// at most 3600 s).
    pub fn with_drain_period(mut self, d: Duration) -> Self {
        self.config.drain_period = d.min(Duration::from_secs(3600));
        self
    }

    /// Makes load balancers internal (default: internet-facing).
    pub fn with_internal_load_balancers(mut self, internal: bool) -> Self {
        self.config.internal_load_balancers = internal;
        self
    }

    /// Sets the page size of list calls (clamped to 5..=400; default 200).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.config.page_size = n.clamp(5, 400);
        self
    }

    /// Sets the SDK's attempts per call (default 1: retries belong to the `Retry`
    /// layer; against moto, 1 makes its HTTP 500s on unsupported calls fail fast).
    pub fn with_sdk_max_attempts(mut self, n: u32) -> Self {
        self.config.sdk_max_attempts = n.max(1);
        self
    }

    /// Sets how long a `NotFound` right after a create counts as eventual consistency
    /// (default 30 s).
    pub fn with_consistency_window(mut self, d: Duration) -> Self {
        self.config.consistency_window = d;
        self
    }

    /// Sets how creates and deletes poll.
    pub fn with_poller(mut self, poller: Poller) -> Self {
        self.config.poller = poller;
        self
    }

    /// Sets how long creates and deletes wait.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.config.timeouts = timeouts;
        self
    }

    /// What has been set so far.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// Checks the settings that need no network.
    fn check(&self) -> Result<()> {
        let c = &self.config;
        if !c.subnet_ids.is_empty()
            && !c.availability_zones.is_empty()
            && c.subnet_ids.len() != c.availability_zones.len()
        {
            return Err(Error::config(
                "AWS.SubnetIDs",
                format!(
                    "{} subnets for {} availability zones: list one subnet per AZ, in the order of AWS.AvailabilityZones",
                    c.subnet_ids.len(),
                    c.availability_zones.len()
                ),
            ));
        }
        Ok(())
    }

    /// Loads aws-config's chain, connects and checks the subnets against their AZs
    /// (one `DescribeSubnets` call when subnets are set).
    pub async fn build(self) -> Result<crate::AwsProvider> {
        self.check()?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(self.config.sdk_max_attempts),
        );
        if let Some(r) = &self.config.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(u) = &self.config.endpoint_url {
            loader = loader.endpoint_url(u.clone());
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(Error::config(
                "AWS.Region",
                "missing: set AWS.Region, AWS_REGION or a profile's region",
            ));
        }
        check_credentials(&sdk).await?;
        crate::AwsProvider::connect(&sdk, self.config).await
    }
}

/// Fails early, naming the settings, when aws-config's chain finds no credentials
/// (otherwise the first API call fails with the chain's long dispatch error).
async fn check_credentials(sdk: &aws_config::SdkConfig) -> Result<()> {
    use aws_sdk_ec2::config::ProvideCredentials;
    let missing = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile with credentials";
    let Some(chain) = sdk.credentials_provider() else {
        return Err(Error::config(
            "AWS credentials",
            format!("none configured: {missing}"),
        ));
    };
    match chain.provide_credentials().await {
        Ok(_) => Ok(()),
        // The chain's text lists the places it looked; it holds no secret.
        Err(e) => Err(Error::config(
            "AWS credentials",
            format!("none found ({e}): {missing}"),
        )),
    }
}

#[async_trait::async_trait]
impl ProviderBuilder for AwsBuilder {
    type Provider = crate::AwsProvider;
    const PREFIX: &'static str = "AWS";
    const KEYS: &'static [ConfigKey] = KEYS;

    fn from_env() -> Self {
        AwsBuilder::from_env()
    }

    fn with_property(self, key: &str, value: &str) -> Result<Self> {
        AwsBuilder::with_property(self, key, value)
    }

    async fn build(self) -> Result<crate::AwsProvider> {
        AwsBuilder::build(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_keys_map_to_setters() {
        let b = AwsBuilder::new()
            .with_property("AWS.Region", " us-east-1 ")
            .and_then(|b| b.with_property("AWS.SubnetIDs", "subnet-a, subnet-b,subnet-c"))
            .and_then(|b| b.with_property("AvailabilityZones", "a,b,c"))
            .unwrap();
        let c = b.config();
        assert_eq!(c.region.as_deref(), Some("us-east-1"));
        assert_eq!(c.subnet_ids, ["subnet-a", "subnet-b", "subnet-c"]);
        assert_eq!(c.availability_zones, ["a", "b", "c"]);
        assert!(b.check().is_ok());
    }

    #[test]
    fn bad_keys_and_counts_name_the_key() {
        let err = AwsBuilder::new()
            .with_property("AWS.Regoin", "x")
            .unwrap_err();
        assert_eq!(err.kind(), provider_core::ErrorKind::Config);
        assert!(err.to_string().contains("AWS.Region"), "{err}");
        // Topology keys are the cluster's, not the provider's.
        let err = AwsBuilder::new()
            .with_property("AWS.JumpboxCIDR", "10.0.0.0/8")
            .unwrap_err();
        assert!(err.to_string().contains("AWS.JumpboxCIDR"), "{err}");
        let b = AwsBuilder::new()
            .with_subnet_ids(["a", "b"])
            .with_availability_zones(["x"]);
        assert!(b.check().is_err());
    }
}
