//! The preflight: before a plan is shown or run, every cloud reference the spec makes
//! (image, flavors, keypair and its file, network, subnets, floating IP pool, AZs, volume
//! types) and
//! what the plan would create are handed to the provider's
//! [`Provider::preflight`](provider_core::Provider::preflight), each reference with the
//! spec key it was written in. The provider answers every problem at once, naming the
//! key and the fix; [`crate::Cluster::plan`] (and so `apply`) refuses with
//! [`crate::Error::Preflight`] before anything is created.

use std::fmt;

use provider_core::{Demand, Problem, Reference, References};

use crate::plan::{Action, Plan};
use crate::spec::keys::reference_keys;
use crate::spec::{ClusterSpec, ProviderKind, Role};

/// Every problem the preflight found, in the order the provider reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} with what the spec names on the cloud (nothing was created):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// The spec key that lists the AZs of a `kind` spec.
pub fn zones_key(kind: ProviderKind) -> String {
    reference_keys(kind).zones.to_string()
}

/// The references `spec` makes, each with its key (from the key table,
/// [`reference_keys`]), and what `plan` creates.
pub fn references(spec: &ClusterSpec, plan: &Plan) -> References {
    spec_references(spec).with_demand(demand(spec, plan))
}

/// The references `spec` makes, each with its key, and no demand.
pub fn spec_references(spec: &ClusterSpec) -> References {
    let kind = spec.provider;
    let keys = reference_keys(kind);
    let net = &spec.network;
    let mut refs = References::new();
    for z in &spec.availability_zones {
        refs = refs.with_zone(Reference::new(keys.zones, z));
    }
    for role in Role::ALL {
        let rs = spec.role(role);
        if rs.count == 0 {
            continue;
        }
        if !rs.image.is_empty() {
            refs = refs.with_image(Reference::new(keys.image, &rs.image));
        }
        // vSphere's flavors are `cpus:memory` sizes, not catalog entries.
        if kind != ProviderKind::VSphere && !rs.flavor.is_empty() {
            refs = refs.with_flavor(Reference::new(keys.flavor(role), &rs.flavor));
        }
    }
    if let (Some(n), Some(key)) = (&net.network, keys.network) {
        refs = refs.with_network(Reference::new(key, n));
    }
    if let Some(key) = keys.subnets {
        for s in &net.subnets {
            refs = refs.with_subnet(Reference::new(key, s));
        }
    }
    // The pool matters when a role with nodes asks for floating IPs. When only the id
    // is written, the pool is checked under the id's key.
    let wants_fips = Role::ALL
        .into_iter()
        .any(|r| spec.role(r).floating_ip && spec.role(r).count > 0);
    let pool_key = match (keys.floating_ip_pool, keys.floating_ip_pool_id) {
        (Some(_), Some(id)) if net.floating_ip_pool_id == net.floating_ip_pool => Some(id),
        (name, _) => name,
    };
    if let (Some(pool), Some(key), true) = (&net.floating_ip_pool, pool_key, wants_fips) {
        refs = refs.with_floating_ip_pool(Reference::new(key, pool));
        if let (Some(id), Some(id_key)) = (
            net.floating_ip_pool_id.as_ref().filter(|id| *id != pool),
            keys.floating_ip_pool_id,
        ) {
            refs = refs.with_floating_ip_pool_alias(Reference::new(id_key, id));
        }
    }
    if let (Some(k), Some(key)) = (&net.keypair, keys.keypair) {
        refs = refs.with_keypair(Reference::new(key, k));
        if let (Some(file), Some(file_key)) = (&net.keypair_file, keys.keypair_file) {
            refs = refs.with_keypair_file(Reference::new(file_key, file));
        }
    }
    for role in Role::ALL {
        let rs = spec.role(role);
        let typed = rs.volumes.as_ref().and_then(|v| v.volume_type.as_ref());
        if let (Some(t), true) = (typed, rs.count > 0) {
            let key = format!("{}VolumeType", crate::spec::resources::key_word(role));
            refs = refs.with_volume_type(Reference::new(key, t));
        }
    }
    refs
}

/// What `plan` creates: its create actions, counted (deletes are not subtracted: they
/// may run after the creates).
pub fn demand(spec: &ClusterSpec, plan: &Plan) -> Demand {
    let keys = reference_keys(spec.provider);
    let mut d = Demand::new();
    for a in &plan.actions {
        d = match &a.action {
            Action::CreateInstances { instances } => instances.iter().fold(d, |d, i| {
                d.with_instances(Reference::new(keys.flavor(i.role), &i.flavor), 1)
            }),
            Action::CreateVolume { spec } => d.with_volumes(1, spec.size_gib),
            Action::AllocateFloatingIp { .. } => d.with_floating_ips(1),
            Action::CreateSecurityGroup { rules, .. } => d
                .with_security_groups(1)
                .with_security_group_rules(rules.len()),
            Action::AddSecurityGroupRules { rules, .. } => d.with_security_group_rules(rules.len()),
            Action::CreateLoadBalancer { lb } => {
                d.with_load_balancers(1).with_listeners(lb.listeners.len())
            }
            _ => d,
        };
    }
    d
}
