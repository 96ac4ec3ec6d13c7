//! What the trait speaks: a `*Spec` says what to create, a record says what exists.
//!
//! Specs validate themselves ([`SecurityGroupSpec::validate`] and friends) so every
//! provider rejects the same bad input with the same `InvalidInput`, naming the field.

mod floating_ip;
mod instance;
mod load_balancer;
mod preflight;
mod security_group;
mod tags;
mod volume;
mod zone;

pub use floating_ip::{FloatingIp, FloatingIpSpec};
pub use instance::{user_data_digest, Instance, InstanceSpec, InstanceState, MAX_USER_DATA_BYTES};
pub use load_balancer::{
    HealthCheck, HealthCheckProtocol, LbProtocol, Listener, ListenerSpec, LoadBalancer,
    LoadBalancerSpec, LoadBalancerState, Member, MemberHealth, MemberSpec, Pool,
};
pub use preflight::{Demand, Problem, Reference, References, MAX_CANDIDATES};
pub use security_group::{
    IngressRule, PortRange, Protocol, RuleSource, SecurityGroup, SecurityGroupSpec,
};
pub(crate) use tags::validate_tags;
pub use tags::{ResourceKind, TagFilter, Tags, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN};
pub use volume::{Volume, VolumeAttachment, VolumeSpec, VolumeState, MAX_VOLUME_GIB};
pub use zone::AvailabilityZone;

use crate::{Error, Operation, Result};

/// Checks a resource name: 1 to 63 characters of `[A-Za-z0-9._-]`, starting with an
/// alphanumeric; the intersection of what every supported cloud accepts.
pub(crate) fn validate_name(op: Operation, field: &str, name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 63 || !ok_chars || !starts_ok {
        return Err(Error::invalid(
            op,
            field,
            format!(
                "{name:?} is not a valid name: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn validate_non_empty(op: Operation, field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(op, field, "must not be empty"));
    }
    Ok(())
}
