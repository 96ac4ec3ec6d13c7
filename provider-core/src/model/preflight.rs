//! What [`Provider::preflight`](crate::Provider::preflight) checks: the cloud references a
//! caller is about to use ([`References`]: zones, images, flavors, network, subnets,
//! floating IP pool, keypair and its file, volume types), each with the setting it came from, and
//! what the caller is about to create ([`Demand`]); and what it finds ([`Problem`]).
//!
//! The caller names each reference's setting (a spec key such as
//! `OpenStack.LinuxImageID`), so a provider reports problems in the caller's words
//! without knowing where its references came from; a provider adds its own keys for the
//! references its configuration makes (a vSphere datastore, an AWS VPC).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::AvailabilityZone;

/// One reference to something that must already exist in the cloud: an id or a name,
/// and the setting it was written in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    /// The setting that holds it, e.g. `OpenStack.LinuxImageID`.
    pub key: String,
    /// The id or name as written.
    pub value: String,
}

impl Reference {
    /// `value`, written in `key`.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// New resources a caller is about to create, for the quota check: only what is not
/// there yet counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Demand {
    /// New instances, by flavor (id or name) and how many of it.
    pub instances: Vec<(Reference, usize)>,
    /// New volumes.
    pub volumes: usize,
    /// Their total size in GiB.
    pub volume_gib: u64,
    /// New floating IPs.
    pub floating_ips: usize,
    /// New security groups.
    pub security_groups: usize,
    /// New ingress rules, in new groups and added to existing ones (a cloud that adds
    /// rules of its own to a new group, like Neutron's default egress rules, counts
    /// those itself).
    pub security_group_rules: usize,
    /// New load balancers.
    pub load_balancers: usize,
    /// Their listeners in all (each with its pool and health check).
    pub listeners: usize,
}

impl Demand {
    /// Nothing new.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `count` new instances of `flavor`.
    pub fn with_instances(mut self, flavor: Reference, count: usize) -> Self {
        match self.instances.iter_mut().find(|(f, _)| *f == flavor) {
            Some((_, n)) => *n += count,
            None => self.instances.push((flavor, count)),
        }
        self
    }

    /// Adds `count` new volumes of `gib` GiB in total.
    pub fn with_volumes(mut self, count: usize, gib: u64) -> Self {
        self.volumes += count;
        self.volume_gib += gib;
        self
    }

    /// Adds `count` new floating IPs.
    pub fn with_floating_ips(mut self, count: usize) -> Self {
        self.floating_ips += count;
        self
    }

    /// Adds `count` new security groups.
    pub fn with_security_groups(mut self, count: usize) -> Self {
        self.security_groups += count;
        self
    }

    /// Adds `count` new ingress rules.
    pub fn with_security_group_rules(mut self, count: usize) -> Self {
        self.security_group_rules += count;
        self
    }

    /// Adds `count` new load balancers.
    pub fn with_load_balancers(mut self, count: usize) -> Self {
        self.load_balancers += count;
        self
    }

    /// Adds `count` new listeners (with their pools and health checks).
    pub fn with_listeners(mut self, count: usize) -> Self {
        self.listeners += count;
        self
    }

    /// How many new instances in all.
    pub fn instance_count(&self) -> usize {
        self.instances.iter().map(|(_, n)| n).sum()
    }
}

/// Everything a caller is about to rely on in the cloud: each reference with the setting
/// it came from, and the new resources. A provider checks the kinds it has and ignores
/// the others (a cloud without keypairs ignores [`References::keypair`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct References {
    /// Availability zones (compute AZ names).
    pub zones: Vec<Reference>,
    /// Images (ids or names).
    pub images: Vec<Reference>,
    /// Flavors or instance types (ids or names).
    pub flavors: Vec<Reference>,
    /// The network (or VPC) the instances attach to.
    pub network: Option<Reference>,
    /// Subnets.
    pub subnets: Vec<Reference>,
    /// The pool floating IPs come from.
    pub floating_ip_pool: Option<Reference>,
    /// Other spellings of the same pool (e.g. the pool's id next to its name): each
    /// must be the pool [`References::floating_ip_pool`] names.
    pub floating_ip_pool_aliases: Vec<Reference>,
    /// The keypair installed on the instances.
    pub keypair: Option<Reference>,
    /// A file holding the keypair's key (an OpenSSH private key or a public key; a
    /// `.pub` file next to it is read too): its public key must be the keypair's.
    pub keypair_file: Option<Reference>,
    /// Volume types the new volumes ask for (ids or names).
    pub volume_types: Vec<Reference>,
    /// What is about to be created, for the quota check.
    pub demand: Demand,
}

impl References {
    /// No references and no demand.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an availability zone.
    pub fn with_zone(mut self, zone: Reference) -> Self {
        self.zones.push(zone);
        self
    }

    /// Adds an image, once per key and value.
    pub fn with_image(mut self, image: Reference) -> Self {
        push_once(&mut self.images, image);
        self
    }

    /// Adds a flavor, once per key and value.
    pub fn with_flavor(mut self, flavor: Reference) -> Self {
        push_once(&mut self.flavors, flavor);
        self
    }

    /// Sets the network.
    pub fn with_network(mut self, network: Reference) -> Self {
        self.network = Some(network);
        self
    }

    /// Adds a subnet, once per key and value.
    pub fn with_subnet(mut self, subnet: Reference) -> Self {
        push_once(&mut self.subnets, subnet);
        self
    }

    /// Sets the floating IP pool.
    pub fn with_floating_ip_pool(mut self, pool: Reference) -> Self {
        self.floating_ip_pool = Some(pool);
        self
    }

    /// Adds another spelling of the floating IP pool.
    pub fn with_floating_ip_pool_alias(mut self, pool: Reference) -> Self {
        push_once(&mut self.floating_ip_pool_aliases, pool);
        self
    }

    /// Sets the keypair.
    pub fn with_keypair(mut self, keypair: Reference) -> Self {
        self.keypair = Some(keypair);
        self
    }

    /// Sets the file holding the keypair's key.
    pub fn with_keypair_file(mut self, file: Reference) -> Self {
        self.keypair_file = Some(file);
        self
    }

    /// Adds a volume type, once per key and value.
    pub fn with_volume_type(mut self, volume_type: Reference) -> Self {
        push_once(&mut self.volume_types, volume_type);
        self
    }

    /// Sets what is about to be created.
    pub fn with_demand(mut self, demand: Demand) -> Self {
        self.demand = demand;
        self
    }

    /// The problems with [`References::zones`] against the zones a cloud `offered`:
    /// unknown ones and unavailable ones. Every provider's preflight starts here.
    pub fn check_zones(&self, offered: &[AvailabilityZone]) -> Vec<Problem> {
        let names: Vec<&str> = offered.iter().map(|z| z.name.as_str()).collect();
        self.zones
            .iter()
            .filter_map(|r| match offered.iter().find(|o| o.name == r.value) {
                None => Some(Problem::not_found(r, "availability zone", &names)),
                Some(o) if !o.available => Some(Problem::new(
                    &r.key,
                    format!(
                        "availability zone `{}` is not available now: list zones that are",
                        r.value
                    ),
                )),
                Some(_) => None,
            })
            .collect()
    }
}

fn push_once(list: &mut Vec<Reference>, r: Reference) {
    if !list.contains(&r) {
        list.push(r);
    }
}

/// At most this many candidates are listed in a problem; more are summarised.
pub const MAX_CANDIDATES: usize = 12;

/// One thing that would make the work fail: the setting concerned and what is wrong,
/// with the fix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    /// The setting concerned, e.g. `OpenStack.LinuxImageID`; `quota` for a quota that is
    /// short.
    pub key: String,
    /// What is wrong, and the fix.
    pub message: String,
}

impl Problem {
    /// A problem with the setting `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// `r` names no `what` of the cloud; `candidates` are the names that exist (listed
    /// when few).
    pub fn not_found(r: &Reference, what: &str, candidates: &[&str]) -> Self {
        Self::new(
            &r.key,
            format!(
                "no {what} with id or name `{}`; {}",
                r.value,
                candidate_list(what, candidates)
            ),
        )
    }

    /// `r` names several `what`s: `candidates` are their ids.
    pub fn ambiguous(r: &Reference, what: &str, candidates: &[&str]) -> Self {
        Self::new(
            &r.key,
            format!(
                "`{}` names {} {what}s ({}): use one's id",
                r.value,
                candidates.len(),
                candidates.join(", ")
            ),
        )
    }

    /// A quota that is short: `resource` needs `needed` more, and `limit - used` are left.
    pub fn quota(resource: &str, needed: u64, used: u64, limit: u64) -> Self {
        let left = limit.saturating_sub(used);
        Self::new(
            "quota",
            format!(
                "{resource}: the plan needs {needed} more, the project has {left} left of {limit} ({} short): raise the quota or ask for fewer",
                needed.saturating_sub(left)
            ),
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// "images: a, b" (or "there are no images", or a count and the first few).
fn candidate_list(what: &str, candidates: &[&str]) -> String {
    let mut sorted: Vec<&str> = candidates.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    match sorted.len() {
        0 => format!("there are no {what}s: create one first"),
        n if n <= MAX_CANDIDATES => format!("{what}s: {}", sorted.join(", ")),
        n => format!("{n} {what}s, e.g. {}", sorted[..MAX_CANDIDATES].join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_key_and_the_candidates() {
        let r = Reference::new("OpenStack.LinuxImageID", "foo");
        let p = Problem::not_found(&r, "image", &["fake-image", "cirros"]);
        assert_eq!(
            p.to_string(),
            "OpenStack.LinuxImageID: no image with id or name `foo`; images: cirros, fake-image"
        );
        let q = Problem::quota("instances", 6, 8, 10);
        assert!(
            q.message
                .starts_with("instances: the plan needs 6 more, the project has 2 left of 10"),
            "{q}"
        );
    }

    #[test]
    fn zones_are_checked_against_the_offer() {
        let refs = References::new()
            .with_zone(Reference::new("K", "a"))
            .with_zone(Reference::new("K", "b"))
            .with_zone(Reference::new("K", "c"));
        let offered = [
            AvailabilityZone {
                name: "a".into(),
                available: true,
            },
            AvailabilityZone {
                name: "b".into(),
                available: false,
            },
        ];
        let problems = refs.check_zones(&offered);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].message.contains("not available"));
        assert!(problems[1].message.contains("availability zones: a, b"));
    }
}
