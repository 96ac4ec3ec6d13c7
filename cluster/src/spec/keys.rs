//! The spec's keys: the general ones, the cluster's topology keys under each provider's
//! prefix, and each provider's own (from its table); which are secret; and the "did you
//! mean" for an unknown one.
//!
//! | general key | meaning | default |
//! |---|---|---|
//! | `Provider` | `OpenStack`, `AWS`, `VSphere` or `local` | required |
//! | `ClusterName` | owner tag and name prefix of everything created | `plinth` |
//! | `MasterCount`, `NodeCount`, `GlusterNodeCount` | masters (odd), worker nodes (a multiple of the AZs), storage nodes | 1, 3, 0 |
//! | `MasterUserData`, `NodeUserData`, `GlusterUserData` | user data of each role's nodes | none |
//! | `MasterFloatingIP`, `NodeFloatingIP`, `GlusterFloatingIP` | a floating IP on each node of the role | masters only |
//! | `MasterVolumeCount`/`Size`/`Type`, `NodeVolume...`, `GlusterVolume...` | data volumes per node, GiB each, volume type | one 100 GiB volume per storage node |
//! | `APIPort`, `APITargetPort` | the default API LB's port and the masters' port | 6443, 6443 (local: 8080) |
//! | `IngressPort`, `IngressTargetPort` | the default ingress LB's port and the nodes' port | 80 (local: 8080), `IngressPort` |
//! | `LoadBalancers.<name>.<setting>` | a listed load balancer (replaces the default two) | |
//! | `LoadBalancer` | `provider` or `external` (bring your own LBs) | `provider` |
//! | `SecurityGroups` | `provider` or `external` (secured elsewhere) | `provider` |
//!
//! The per-role resources and the settings of a listed load balancer are detailed in
//! [`super::resources`].

use std::collections::HashSet;

use super::limits::MAX_KEY_BYTES;
use super::ProviderKind;

/// Keys every spec may use, whatever the provider.
pub const GENERAL_KEYS: &[&str] = &[
    "Provider",
    "ClusterName",
    "NodeCount",
    "MasterCount",
    "GlusterNodeCount",
    "GlusterVolumeSize",
    "MasterUserData",
    "NodeUserData",
    "GlusterUserData",
    "MasterFloatingIP",
    "NodeFloatingIP",
    "GlusterFloatingIP",
    "MasterVolumeCount",
    "MasterVolumeSize",
    "MasterVolumeType",
    "NodeVolumeCount",
    "NodeVolumeSize",
    "NodeVolumeType",
    "GlusterVolumeCount",
    "GlusterVolumeType",
    "APIPort",
    "APITargetPort",
    "IngressPort",
    "IngressTargetPort",
    "LoadBalancer",
    "SecurityGroups",
];

/// The cluster's own keys under a provider's prefix (without the prefix): where the
/// seed's spec format names the topology (image, flavors, network, CIDRs, AZs) per
/// cloud. The provider's own keys come from its table ([`crate::cloud::keys`]); a key
/// in both (the AZ list, AWS subnets and VPC, the vSphere network) is read by both.
pub fn topology_keys(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::OpenStack => &[
            "LinuxImageID",
            "MasterFlavorID",
            "NodeFlavorID",
            "GlusterFSFlavorID",
            "Keypair",
            "KeypairFile",
            "JumpboxCIDR",
            "LoadBalancerCIDR",
            "NetworkID",
            "SubnetID",
            "FloatingIPPoolName",
            "FloatingIPPoolID",
            "AvailabilityZones",
        ],
        ProviderKind::Aws => &[
            "AMI",
            "MasterInstanceType",
            "NodeInstanceType",
            "GlusterFSInstanceType",
            "KeyName",
            "JumpboxCIDR",
            "LoadBalancerCIDR",
            "VpcID",
            "SubnetIDs",
            "AvailabilityZones",
        ],
        ProviderKind::VSphere => &[
            "Template",
            "MasterFlavor",
            "NodeFlavor",
            "GlusterFSFlavor",
            "JumpboxCIDR",
            "LoadBalancerCIDR",
            "Network",
            "Clusters",
        ],
        ProviderKind::Local => &[
            "Image",
            "MasterFlavor",
            "NodeFlavor",
            "GlusterFSFlavor",
            "JumpboxCIDR",
            "LoadBalancerCIDR",
            "FloatingIPPool",
            "AvailabilityZones",
        ],
    }
}

/// The keys of the cloud references a spec for `kind` makes, prefixed, as
/// [`topology_keys`] lists them: what the validator reads and the preflight names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceKeys {
    /// The image every node boots from.
    pub image: &'static str,
    /// The flavors of the masters, nodes and storage nodes.
    pub flavors: [&'static str; 3],
    /// The AZ list.
    pub zones: &'static str,
    /// The network (or VPC, or port group).
    pub network: Option<&'static str>,
    /// The subnets.
    pub subnets: Option<&'static str>,
    /// The floating IP pool by name.
    pub floating_ip_pool: Option<&'static str>,
    /// The floating IP pool by id.
    pub floating_ip_pool_id: Option<&'static str>,
    /// The keypair.
    pub keypair: Option<&'static str>,
    /// The keypair's key file.
    pub keypair_file: Option<&'static str>,
}

/// The reference keys of a `kind` spec.
pub fn reference_keys(kind: ProviderKind) -> ReferenceKeys {
    match kind {
        ProviderKind::OpenStack => ReferenceKeys {
            image: "OpenStack.LinuxImageID",
            flavors: [
                "OpenStack.MasterFlavorID",
                "OpenStack.NodeFlavorID",
                "OpenStack.GlusterFSFlavorID",
            ],
            zones: "OpenStack.AvailabilityZones",
            network: Some("OpenStack.NetworkID"),
            subnets: Some("OpenStack.SubnetID"),
            floating_ip_pool: Some("OpenStack.FloatingIPPoolName"),
            floating_ip_pool_id: Some("OpenStack.FloatingIPPoolID"),
            keypair: Some("OpenStack.Keypair"),
            keypair_file: Some("OpenStack.KeypairFile"),
        },
        ProviderKind::Aws => ReferenceKeys {
            image: "AWS.AMI",
            flavors: [
                "AWS.MasterInstanceType",
                "AWS.NodeInstanceType",
                "AWS.GlusterFSInstanceType",
            ],
            zones: "AWS.AvailabilityZones",
            network: Some("AWS.VpcID"),
            subnets: Some("AWS.SubnetIDs"),
            floating_ip_pool: None,
            floating_ip_pool_id: None,
            keypair: Some("AWS.KeyName"),
            keypair_file: None,
        },
        ProviderKind::VSphere => ReferenceKeys {
            image: "VSphere.Template",
            flavors: [
                "VSphere.MasterFlavor",
                "VSphere.NodeFlavor",
                "VSphere.GlusterFSFlavor",
            ],
            zones: "VSphere.Clusters",
            network: Some("VSphere.Network"),
            subnets: None,
            floating_ip_pool: None,
            floating_ip_pool_id: None,
            keypair: None,
            keypair_file: None,
        },
        ProviderKind::Local => ReferenceKeys {
            image: "Local.Image",
            flavors: [
                "Local.MasterFlavor",
                "Local.NodeFlavor",
                "Local.GlusterFSFlavor",
            ],
            zones: "Local.AvailabilityZones",
            network: None,
            subnets: None,
            floating_ip_pool: Some("Local.FloatingIPPool"),
            floating_ip_pool_id: None,
            keypair: None,
            keypair_file: None,
        },
    }
}

impl ReferenceKeys {
    /// The flavor key of `role`.
    pub fn flavor(&self, role: super::Role) -> &'static str {
        match role {
            super::Role::Master => self.flavors[0],
            super::Role::Node => self.flavors[1],
            super::Role::Storage => self.flavors[2],
        }
    }

    /// Every key, for checking them against the key table.
    pub fn all(&self) -> Vec<&'static str> {
        let mut keys = vec![self.image, self.zones];
        keys.extend(self.flavors);
        keys.extend(
            [
                self.network,
                self.subnets,
                self.floating_ip_pool,
                self.floating_ip_pool_id,
                self.keypair,
                self.keypair_file,
            ]
            .into_iter()
            .flatten(),
        );
        keys
    }
}

/// Every key a spec for `kind` may use, prefixed: the general keys, the cluster's
/// topology keys and the provider's own (when it is compiled in).
pub fn known_keys(kind: ProviderKind) -> Vec<String> {
    let p = kind.key_prefix();
    let mut keys: Vec<String> = GENERAL_KEYS.iter().map(|k| k.to_string()).collect();
    keys.extend(topology_keys(kind).iter().map(|k| format!("{p}.{k}")));
    for k in crate::cloud::keys(kind).unwrap_or_default() {
        let key = format!("{p}.{}", k.name);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Whether the key holds a secret, whose value must never be shown: its provider's
/// table says so, or (for a provider not compiled in) its name does.
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    if lower.ends_with("password") || lower.ends_with("secret") {
        return true;
    }
    ProviderKind::ALL.into_iter().any(|kind| {
        let prefixed = key
            .strip_prefix(kind.key_prefix())
            .is_some_and(|rest| rest.starts_with('.'));
        prefixed
            && crate::cloud::keys(kind).is_some_and(|keys| {
                provider_core::config::find_key(kind.key_prefix(), keys, key)
                    .is_some_and(|k| k.secret)
            })
    })
}

/// The key of a `kind` spec nearest to `key` by edit distance (case-insensitive).
pub fn nearest_key(kind: ProviderKind, key: &str) -> Option<String> {
    nearest(&known_keys(kind), key)
}

fn nearest(keys: &[String], key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    keys.iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), k))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// Levenshtein distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Every provider's keys, looked up once per spec (a spec may have thousands of entries).
pub(super) struct KeyTable {
    known: Vec<(ProviderKind, Vec<String>, HashSet<String>)>,
}

impl KeyTable {
    pub(super) fn new() -> Self {
        Self {
            known: ProviderKind::ALL
                .into_iter()
                .map(|kind| {
                    let keys = known_keys(kind);
                    let set = keys.iter().cloned().collect();
                    (kind, keys, set)
                })
                .collect(),
        }
    }

    fn is_known(&self, kind: ProviderKind, key: &str) -> bool {
        self.known
            .iter()
            .any(|(k, _, set)| *k == kind && set.contains(key))
    }

    fn nearest(&self, kinds: &[ProviderKind], key: &str) -> Option<String> {
        let lower = key.to_ascii_lowercase();
        self.known
            .iter()
            .filter(|(k, _, _)| kinds.contains(k))
            .filter_map(|(_, keys, _)| nearest(keys, key))
            .min_by_key(|k| edit_distance(&lower, &k.to_ascii_lowercase()))
    }

    /// Why `key` is not a key of a spec for `provider` (`None`: unknown provider), or
    /// `None` when it is one. `suggest` asks for a "did you mean" (a pass over the
    /// known keys; a key longer than any key gets none).
    pub(super) fn check(
        &self,
        provider: Option<ProviderKind>,
        key: &str,
        suggest: bool,
    ) -> Option<String> {
        let suggest = suggest && key.len() <= MAX_KEY_BYTES;
        // Listed load balancers: the name is the installer's, the settings are fixed.
        if key.starts_with(super::resources::LB_PREFIX) {
            return super::resources::lb_key_problem(key);
        }
        let unknown = |near: Option<String>| match near {
            Some(k) => format!("unknown key: did you mean {k}?"),
            None => "unknown key: remove it".to_string(),
        };
        let Some(kind) = provider else {
            // Which keys exist depends on the provider; without one, any provider's do.
            if ProviderKind::ALL.into_iter().any(|k| self.is_known(k, key)) {
                return None;
            }
            return Some(unknown(
                suggest
                    .then(|| self.nearest(&ProviderKind::ALL, key))
                    .flatten(),
            ));
        };
        let own_prefix = key
            .strip_prefix(kind.key_prefix())
            .is_some_and(|rest| rest.starts_with('.'));
        // Without the provider compiled in, its keys are unknowable: the Provider key's
        // error says how to get it, instead of a wrong "unknown key" here.
        if self.is_known(kind, key) || (own_prefix && crate::cloud::keys(kind).is_none()) {
            return None;
        }
        let other = ProviderKind::ALL.into_iter().find(|k| {
            *k != kind
                && key
                    .strip_prefix(k.key_prefix())
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        Some(match other {
            Some(other) => format!(
                "a key of provider {other}, but Provider = {kind}: remove it, or set Provider = {other}"
            ),
            None => unknown(suggest.then(|| self.nearest(&[kind], key)).flatten()),
        })
    }
}
