use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{tags::validate_tags, validate_name, validate_non_empty, Tags};
use crate::{Error, Operation, Result};

/// Largest user data accepted through the trait (EC2's limit, 16 KiB).
pub const MAX_USER_DATA_BYTES: usize = 16 * 1024;

/// What to create: one compute instance in an AZ.
///
/// Built with [`InstanceSpec::new`] and the `with_*` setters, so that fields added later
/// do not break callers:
///
/// ```
/// use provider_core::InstanceSpec;
///
/// let spec = InstanceSpec::new("web-1", "az-1", "small", "linux")
///     .with_security_groups(["sg-1"])
///     .with_user_data("#!/bin/sh\necho hello\n");
/// assert!(spec.validate().is_ok());
/// ```
///
/// `Debug` shows user data (where installers put bootstrap tokens) only as its digest;
/// [`InstanceSpec::redacted`] is the form a provider may store on the cloud.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InstanceSpec {
    /// Unique name; creating the same name and spec again returns the existing instance.
    pub name: String,
    /// Compute AZ name.
    pub availability_zone: String,
    /// Flavor / instance type (id or name).
    pub flavor: String,
    /// Image (id or name).
    pub image: String,
    /// Network (id or name), where the provider needs one.
    pub network: Option<String>,
    /// Subnet (id or name), where the provider needs one.
    pub subnet: Option<String>,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// Name of an existing keypair.
    pub keypair: Option<String>,
    /// User data (cloud-init or a script), at most [`MAX_USER_DATA_BYTES`].
    pub user_data: Option<String>,
    /// Tags.
    pub tags: Tags,
}

/// How user data may be shown or stored: its length and a SHA-256 prefix, enough to
/// tell two apart and nothing of what they say.
pub fn user_data_digest(user_data: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(user_data.as_bytes());
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{} bytes, sha256:{hex}", user_data.len())
}

impl std::fmt::Debug for InstanceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceSpec")
            .field("name", &self.name)
            .field("availability_zone", &self.availability_zone)
            .field("flavor", &self.flavor)
            .field("image", &self.image)
            .field("network", &self.network)
            .field("subnet", &self.subnet)
            .field("security_groups", &self.security_groups)
            .field("keypair", &self.keypair)
            .field(
                "user_data",
                &self.user_data.as_deref().map(user_data_digest),
            )
            .field("tags", &self.tags)
            .finish()
    }
}

impl InstanceSpec {
    /// The spec with its user data replaced by [`user_data_digest`]: what a provider
    /// records on the cloud to recognise the spec later (a change still shows).
    pub fn redacted(&self) -> InstanceSpec {
        let mut spec = self.clone();
        spec.user_data = spec.user_data.as_deref().map(user_data_digest);
        spec
    }

    /// A spec with the fields every instance needs; the others start empty.
    pub fn new(
        name: impl Into<String>,
        availability_zone: impl Into<String>,
        flavor: impl Into<String>,
        image: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            availability_zone: availability_zone.into(),
            flavor: flavor.into(),
            image: image.into(),
            network: None,
            subnet: None,
            security_groups: Vec::new(),
            keypair: None,
            user_data: None,
            tags: Tags::new(),
        }
    }

    /// Sets the network (id or name).
    pub fn with_network(mut self, network: impl Into<String>) -> Self {
        self.network = Some(network.into());
        self
    }

    /// Sets the subnet (id or name).
    pub fn with_subnet(mut self, subnet: impl Into<String>) -> Self {
        self.subnet = Some(subnet.into());
        self
    }

    /// Sets the security group ids, replacing any set before.
    pub fn with_security_groups<S: Into<String>>(
        mut self,
        groups: impl IntoIterator<Item = S>,
    ) -> Self {
        self.security_groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the keypair name.
    pub fn with_keypair(mut self, keypair: impl Into<String>) -> Self {
        self.keypair = Some(keypair.into());
        self
    }

    /// Sets the user data.
    pub fn with_user_data(mut self, user_data: impl Into<String>) -> Self {
        self.user_data = Some(user_data.into());
        self
    }

    /// Sets the tags, replacing any set before.
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.validate_for(Operation::CreateInstance, "spec")
    }

    /// Checks every field, naming them under `field` (e.g. `specs[3]`) for `op`.
    pub fn validate_for(&self, op: Operation, field: &str) -> Result<()> {
        validate_name(op, &format!("{field}.name"), &self.name)?;
        validate_non_empty(
            op,
            &format!("{field}.availability_zone"),
            &self.availability_zone,
        )?;
        validate_non_empty(op, &format!("{field}.flavor"), &self.flavor)?;
        validate_non_empty(op, &format!("{field}.image"), &self.image)?;
        for (i, g) in self.security_groups.iter().enumerate() {
            validate_non_empty(op, &format!("{field}.security_groups[{i}]"), g)?;
        }
        if let Some(u) = &self.user_data {
            if u.len() > MAX_USER_DATA_BYTES {
                return Err(Error::invalid(
                    op,
                    format!("{field}.user_data"),
                    format!(
                        "{} bytes is too large: keep user data under {MAX_USER_DATA_BYTES} bytes",
                        u.len()
                    ),
                ));
            }
        }
        validate_tags(op, &format!("{field}.tags"), &self.tags)
    }
}

/// Lifecycle state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Being created or booting.
    Pending,
    /// Up and usable.
    Running,
    /// Stopped (exists, not running).
    Stopped,
    /// Failed (e.g. its process died); delete and recreate it.
    Failed,
    /// Being deleted.
    Deleting,
}

/// An instance that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Provider id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Compute AZ name.
    pub availability_zone: String,
    /// Flavor as created.
    pub flavor: String,
    /// Image as created.
    pub image: String,
    /// State.
    pub state: InstanceState,
    /// Private address, once known.
    pub private_ip: Option<IpAddr>,
    /// Public (floating) address, when one is associated.
    pub public_ip: Option<IpAddr>,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// Tags.
    pub tags: Tags,
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn debug_shows_user_data_as_its_digest_only() {
        let spec = InstanceSpec::new("n", "az", "f", "i").with_user_data("token: Zq9-secret\n");
        let shown = format!("{spec:?}");
        assert!(!shown.contains("Zq9-secret"), "{shown}");
        assert!(shown.contains("18 bytes, sha256:"), "{shown}");
        assert_eq!(
            spec.redacted().user_data.as_deref(),
            Some(user_data_digest("token: Zq9-secret\n").as_str())
        );
        assert_ne!(user_data_digest("a"), user_data_digest("b"));
    }
}
