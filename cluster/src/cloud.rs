//! Opening the cloud a spec names: the one module of the library that names concrete
//! providers, each behind its cargo feature (`local`, `openstack`, `aws`, `vsphere`).
//!
//! Every provider is opened the same way, through its
//! [`provider_core::config::ProviderBuilder`]: its cloud's own
//! environment first (`from_env`: clouds.yaml and `OS_*`, the AWS config chain,
//! `GOVC_*`), then the spec's entries for the provider's keys
//! ([`ClusterSpec::provider_config`]). Topology choices (images, flavors, networks,
//! CIDRs) are not passed here: they reach the provider in the specs the plan creates.

use std::sync::Arc;

use provider_core::config::ConfigKey;
#[cfg(any(
    feature = "local",
    feature = "openstack",
    feature = "aws",
    feature = "vsphere"
))]
use provider_core::config::ProviderBuilder;
use provider_core::Provider;

use crate::spec::{ClusterSpec, ProviderKind};
use crate::{Error, Result};

/// The keys `kind`'s provider reads from a spec, or `None` when this build does not
/// include it.
pub fn keys(kind: ProviderKind) -> Option<&'static [ConfigKey]> {
    match kind {
        #[cfg(feature = "local")]
        ProviderKind::Local => Some(provider_local::LocalBuilder::KEYS),
        #[cfg(feature = "openstack")]
        ProviderKind::OpenStack => Some(provider_openstack::OpenStackBuilder::KEYS),
        #[cfg(feature = "aws")]
        ProviderKind::Aws => Some(provider_aws::AwsBuilder::KEYS),
        #[cfg(feature = "vsphere")]
        ProviderKind::VSphere => Some(provider_vsphere::VSphereBuilder::KEYS),
        #[allow(unreachable_patterns)] // reached only in builds that leave a cloud out
        _ => None,
    }
}

/// The cargo feature of `kind`'s provider.
pub fn feature(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Local => "local",
        ProviderKind::OpenStack => "openstack",
        ProviderKind::Aws => "aws",
        ProviderKind::VSphere => "vsphere",
    }
}

/// Opens the provider `spec` names, configured from its environment and the spec's
/// provider keys. A missing or wrong setting is [`Error::Open`] naming the key.
pub async fn open(spec: &ClusterSpec) -> Result<Arc<dyn Provider>> {
    let opened = match spec.provider {
        #[cfg(feature = "local")]
        ProviderKind::Local => build::<provider_local::LocalBuilder>(spec).await,
        #[cfg(feature = "openstack")]
        ProviderKind::OpenStack => build::<provider_openstack::OpenStackBuilder>(spec).await,
        #[cfg(feature = "aws")]
        ProviderKind::Aws => build::<provider_aws::AwsBuilder>(spec).await,
        #[cfg(feature = "vsphere")]
        ProviderKind::VSphere => build::<provider_vsphere::VSphereBuilder>(spec).await,
        #[allow(unreachable_patterns)] // reached only in builds that leave a cloud out
        kind => Err(provider_core::Error::config(
            "Provider",
            format!(
                "provider {kind} is not compiled into this build: rebuild with `--features {}`",
                feature(kind)
            ),
        )),
    };
    opened.map_err(|source| Error::Open {
        provider: spec.provider,
        spec: spec.source.clone(),
        source: Box::new(source),
    })
}

#[cfg(any(
    feature = "local",
    feature = "openstack",
    feature = "aws",
    feature = "vsphere"
))]
async fn build<B: ProviderBuilder>(spec: &ClusterSpec) -> provider_core::Result<Arc<dyn Provider>> {
    let builder = spec.provider_config.configure(B::from_env())?;
    Ok(Arc::new(builder.build().await?))
}

/// When provider-local started this program as its helper (its daemon or an
/// instance), runs that and exits; otherwise returns at once. A program that opens
/// local clouds calls it first thing in `main`, so it needs no separate helper binary.
pub fn host_helper_if_requested() {
    #[cfg(feature = "local")]
    provider_local::helper::run_if_requested();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_use_the_spec_prefixes() {
        #[cfg(feature = "local")]
        assert_eq!(
            provider_local::LocalBuilder::PREFIX,
            ProviderKind::Local.key_prefix()
        );
        #[cfg(feature = "openstack")]
        assert_eq!(
            provider_openstack::OpenStackBuilder::PREFIX,
            ProviderKind::OpenStack.key_prefix()
        );
        #[cfg(feature = "aws")]
        assert_eq!(
            provider_aws::AwsBuilder::PREFIX,
            ProviderKind::Aws.key_prefix()
        );
        #[cfg(feature = "vsphere")]
        assert_eq!(
            provider_vsphere::VSphereBuilder::PREFIX,
            ProviderKind::VSphere.key_prefix()
        );
    }
}
