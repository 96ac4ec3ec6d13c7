//! The key table and the validator: turns entries into a [`ClusterSpec`], collecting
//! every problem (with file, line or key, and the fix) instead of stopping at the first.

use std::collections::HashMap;
use std::fmt;

use ipnet::IpNet;
// provider-core's own limits are checked here too, so the spec is rejected before
// planning with the spec key named.
use provider_core::{LbProtocol, MAX_USER_DATA_BYTES, MAX_VOLUME_GIB};

use super::*;

/// One problem with a spec, pointing at where it is and saying how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The spec file.
    pub file: String,
    /// The line, for properties files when the key is present.
    pub line: Option<usize>,
    /// The key concerned (empty for a syntax problem).
    pub key: String,
    /// What is wrong and the fix. Never holds a secret value.
    pub message: String,
}

impl SpecError {
    /// A problem on a line of the file.
    pub fn at_line(file: &str, line: usize, key: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line: Some(line),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// A problem with a key (missing, or from a format without lines).
    pub fn at_key(file: &str, key: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line: None,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a spec, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the spec has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

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
    let lower = key.to_ascii_lowercase();
    known_keys(kind)
        .into_iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), k))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
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

/// Looks keys up and collects problems.
struct Fields<'a> {
    file: &'a str,
    entries: HashMap<&'a str, &'a Entry>,
    errors: Vec<SpecError>,
}

impl<'a> Fields<'a> {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        let line = match self.entries.get(key).map(|e| &e.location) {
            Some(Location::Line(l)) => Some(*l),
            _ => None,
        };
        self.errors.push(SpecError {
            file: self.file.to_string(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.entries
            .get(key)
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_string)
    }

    fn required(&mut self, key: &str, fix: &str) -> String {
        match self.get(key) {
            Some(v) => v.to_string(),
            None => {
                self.error(key, format!("missing: {fix}"));
                String::new()
            }
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn number<T: std::str::FromStr + Copy + fmt::Display>(
        &mut self,
        key: &str,
        default: T,
        what: &str,
    ) -> T {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse() {
                Ok(n) => n,
                Err(_) => {
                    self.error(key, format!("{v:?} is not {what}: write e.g. {default}"));
                    default
                }
            },
        }
    }

    fn cidr(&mut self, key: &str, default: Option<IpNet>) -> IpNet {
        // A placeholder that admits nothing, used only when an error is already recorded.
        let none =
            IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::BROADCAST, 32).unwrap_or_default());
        match (self.get(key), default) {
            (Some(v), _) => match v.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => {
                    self.error(
                        key,
                        format!("{v:?} is not a CIDR: write an address and prefix length, e.g. 10.1.1.4/32 or 10.1.1.0/24"),
                    );
                    none
                }
            },
            (None, Some(d)) => d,
            (None, None) => {
                self.error(
                    key,
                    "missing: set the source network in CIDR form, e.g. 10.1.1.4/32 (nothing is opened to the world by default)",
                );
                none
            }
        }
    }
}

/// Flavor and image keys of one provider, per role.
struct RoleKeys {
    image: &'static str,
    flavors: [&'static str; 3],
}

fn role_keys(kind: ProviderKind) -> RoleKeys {
    match kind {
        ProviderKind::OpenStack => RoleKeys {
            image: "OpenStack.LinuxImageID",
            flavors: [
                "OpenStack.MasterFlavorID",
                "OpenStack.NodeFlavorID",
                "OpenStack.GlusterFSFlavorID",
            ],
        },
        ProviderKind::Aws => RoleKeys {
            image: "AWS.AMI",
            flavors: [
                "AWS.MasterInstanceType",
                "AWS.NodeInstanceType",
                "AWS.GlusterFSInstanceType",
            ],
        },
        ProviderKind::VSphere => RoleKeys {
            image: "VSphere.Template",
            flavors: [
                "VSphere.MasterFlavor",
                "VSphere.NodeFlavor",
                "VSphere.GlusterFSFlavor",
            ],
        },
        ProviderKind::Local => RoleKeys {
            image: "Local.Image",
            flavors: [
                "Local.MasterFlavor",
                "Local.NodeFlavor",
                "Local.GlusterFSFlavor",
            ],
        },
    }
}

const COUNT_KEYS: [&str; 3] = ["MasterCount", "NodeCount", "GlusterNodeCount"];
const USER_DATA_KEYS: [&str; 3] = ["MasterUserData", "NodeUserData", "GlusterUserData"];

/// Why `key` is not a key of a spec for `provider` (`None`: unknown provider), or
/// `None` when it is one.
fn check_key(provider: Option<ProviderKind>, key: &str) -> Option<String> {
    let known = |kind: ProviderKind| known_keys(kind).iter().any(|k| k == key);
    let Some(kind) = provider else {
        // Which keys exist depends on the provider; without one, any provider's do.
        if ProviderKind::ALL.into_iter().any(known) {
            return None;
        }
        let lower = key.to_ascii_lowercase();
        let near = ProviderKind::ALL
            .into_iter()
            .filter_map(|k| nearest_key(k, key))
            .min_by_key(|k| edit_distance(&lower, &k.to_ascii_lowercase()));
        return Some(match near {
            Some(k) => format!("unknown key: did you mean {k}?"),
            None => "unknown key: remove it".to_string(),
        });
    };
    let own_prefix = key
        .strip_prefix(kind.key_prefix())
        .is_some_and(|rest| rest.starts_with('.'));
    // Without the provider compiled in, its keys are unknowable: the Provider key's error
    // says how to get it, instead of a wrong "unknown key" here.
    if known(kind) || (own_prefix && crate::cloud::keys(kind).is_none()) {
        return None;
    }
    let other = ProviderKind::ALL.into_iter().find(|k| {
        *k != kind
            && key
                .strip_prefix(k.key_prefix())
                .is_some_and(|rest| rest.starts_with('.'))
    });
    Some(match (other, nearest_key(kind, key)) {
        (Some(other), _) => format!(
            "a key of provider {other}, but Provider = {kind}: remove it, or set Provider = {other}"
        ),
        (None, Some(k)) => format!("unknown key: did you mean {k}?"),
        (None, None) => "unknown key: remove it".to_string(),
    })
}

/// Validates entries into a spec, or reports every problem found.
pub fn build(file: &str, entries: &[Entry]) -> Result<ClusterSpec, SpecErrors> {
    let mut f = Fields {
        file,
        entries: HashMap::new(),
        errors: Vec::new(),
    };
    // The provider first: it decides which keys exist.
    let provider_value = entries
        .iter()
        .rev()
        .find(|e| e.key == "Provider")
        .map(|e| e.value.trim())
        .filter(|v| !v.is_empty());
    let provider = provider_value.and_then(|v| {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(v))
    });
    let provider_keys = provider.and_then(crate::cloud::keys).unwrap_or_default();
    let mut provider_config = ProviderConfig::default();
    for e in entries {
        if let Some(problem) = check_key(provider, &e.key) {
            f.errors.push(match e.location {
                Location::Line(l) => SpecError::at_line(file, l, &e.key, problem),
                Location::Key => SpecError::at_key(file, &e.key, problem),
            });
            continue;
        }
        if let Some(kind) = provider {
            let own = e
                .key
                .strip_prefix(kind.key_prefix())
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|name| provider_keys.iter().find(|k| k.name == name));
            if let Some(k) = own {
                provider_config.insert(e.key.clone(), e.value.clone(), k.secret);
            }
        }
        if let Some(first) = f.entries.insert(e.key.as_str(), e) {
            let at = match first.location {
                Location::Line(l) => format!(" (first at line {l})"),
                Location::Key => String::new(),
            };
            f.entries.insert(e.key.as_str(), e);
            f.error(&e.key, format!("set twice{at}: keep one"));
        }
    }

    match (provider_value, provider) {
        (None, _) => f.error(
            "Provider",
            "missing: set Provider = OpenStack, AWS, VSphere or local",
        ),
        (Some(v), None) => f.error(
            "Provider",
            format!("unknown provider {v:?}: use one of OpenStack, AWS, VSphere, local"),
        ),
        (Some(_), Some(kind)) if crate::cloud::keys(kind).is_none() => f.error(
            "Provider",
            format!(
                "provider {kind} is not compiled into this build: rebuild with `--features {}`",
                crate::cloud::feature(kind)
            ),
        ),
        _ => {}
    }

    let name = f.string("ClusterName").unwrap_or_else(|| "plinth".into());
    let name_ok = !name.is_empty()
        && name.len() <= 40
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !name_ok {
        f.error(
            "ClusterName",
            format!("{name:?} cannot name resources: use 1 to 40 letters, digits or '-', starting with a letter or digit"),
        );
    }

    let counts: Vec<usize> = COUNT_KEYS
        .iter()
        .zip([1usize, 3, 0])
        .map(|(k, d)| f.number(k, d, "a whole number"))
        .collect();
    let (masters, nodes) = (counts[0], counts[1]);
    if masters == 0 {
        f.error(
            "MasterCount",
            "0 masters leaves the cluster without a control plane: use 1, 3 or 5",
        );
    } else if masters % 2 == 0 {
        f.error(
            "MasterCount",
            format!(
                "{masters} is even: a quorum of masters needs an odd count; use {} or {}",
                masters - 1,
                masters + 1
            ),
        );
    }

    let (Some(kind), true) = (provider, f.errors.iter().all(|e| e.key != "Provider")) else {
        return Err(SpecErrors(f.errors));
    };
    let p = kind.key_prefix();
    let local = kind == ProviderKind::Local;

    // Availability zones: the provider's list key.
    let az_key = match kind {
        ProviderKind::VSphere => "VSphere.Clusters".to_string(),
        _ => format!("{p}.AvailabilityZones"),
    };
    let mut zones = f.list(&az_key);
    if zones.is_empty() {
        if local {
            zones = ["local-a", "local-b", "local-c"].map(String::from).to_vec();
        } else {
            f.error(
                &az_key,
                "missing: list the availability zones, comma-separated (3 for HA)",
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for z in &zones {
        if !seen.insert(z) {
            f.error(&az_key, format!("{z:?} is listed twice: list each AZ once"));
        }
    }
    if !zones.is_empty() && nodes % zones.len() != 0 {
        let n = zones.len();
        let lower = nodes / n * n;
        let upper = lower + n;
        let options = if lower == 0 {
            format!("{upper}")
        } else {
            format!("{lower} or {upper}")
        };
        f.error(
            "NodeCount",
            format!(
                "{nodes} is not a multiple of the {n} availability zones in {az_key}: use {options} so every AZ gets as many nodes"
            ),
        );
    }

    // Roles: image and flavors.
    let keys = role_keys(kind);
    let image = match (f.get(keys.image), local) {
        (Some(v), _) => v.to_string(),
        (None, true) => "http".to_string(),
        (None, false) => f.required(keys.image, "name the image every node boots from"),
    };
    let volume_gib: u64 = f.number("GlusterVolumeSize", 100, "a size in GiB");
    if volume_gib == 0 || volume_gib > MAX_VOLUME_GIB {
        f.error(
            "GlusterVolumeSize",
            format!(
                "{volume_gib} GiB is out of range: use 1 to {}",
                MAX_VOLUME_GIB
            ),
        );
    }
    let mut roles = Vec::new();
    for (i, role) in Role::ALL.into_iter().enumerate() {
        let flavor_key = keys.flavors[i];
        let flavor = match (f.get(flavor_key), local) {
            (Some(v), _) => v.to_string(),
            (None, true) => "small".to_string(),
            (None, false) if counts[i] == 0 => String::new(),
            (None, false) => {
                f.required(flavor_key, &format!("name the flavor of the {role} nodes"))
            }
        };
        if kind == ProviderKind::VSphere && !flavor.is_empty() && !is_cpus_memory(&flavor) {
            f.error(
                flavor_key,
                format!("{flavor:?} is not cpus:memoryMiB: write e.g. 2:4096"),
            );
        }
        let user_data = f.string(USER_DATA_KEYS[i]);
        if let Some(u) = &user_data {
            if u.len() > MAX_USER_DATA_BYTES {
                f.error(
                    USER_DATA_KEYS[i],
                    format!(
                        "{} bytes is too large: keep user data under {} bytes",
                        u.len(),
                        MAX_USER_DATA_BYTES
                    ),
                );
            }
        }
        roles.push(RoleSpec {
            count: counts[i],
            flavor,
            image: image.clone(),
            user_data,
            volume_gib: (role == Role::Storage).then_some(volume_gib),
        });
    }

    // Networking.
    let loopback: Option<IpNet> = local.then(|| "127.0.0.0/8".parse().ok()).flatten();
    let jumpbox_cidr = f.cidr(&format!("{p}.JumpboxCIDR"), loopback);
    let load_balancer_cidr = f.cidr(&format!("{p}.LoadBalancerCIDR"), loopback);
    let network = match kind {
        ProviderKind::OpenStack => NetworkSpec {
            network: Some(f.required(
                "OpenStack.NetworkID",
                "name the network the nodes attach to",
            )),
            subnets: f.list("OpenStack.SubnetID"),
            floating_ip_pool: f.string("OpenStack.FloatingIPPoolName"),
            keypair: f.string("OpenStack.Keypair"),
            jumpbox_cidr,
            load_balancer_cidr,
        },
        ProviderKind::Aws => {
            let subnets = f.list("AWS.SubnetIDs");
            if subnets.is_empty() {
                f.error(
                    "AWS.SubnetIDs",
                    "missing: list one subnet per AZ, comma-separated, in AZ order",
                );
            } else if subnets.len() != zones.len() {
                f.error(
                    "AWS.SubnetIDs",
                    format!(
                        "{} subnets for {} availability zones: list one subnet per AZ, in the order of AWS.AvailabilityZones",
                        subnets.len(),
                        zones.len()
                    ),
                );
            }
            NetworkSpec {
                network: f.string("AWS.VpcID"),
                subnets,
                // Elastic IPs come from Amazon's own pool.
                floating_ip_pool: Some("amazon".into()),
                keypair: f.string("AWS.KeyName"),
                jumpbox_cidr,
                load_balancer_cidr,
            }
        }
        ProviderKind::VSphere => NetworkSpec {
            network: Some(f.required("VSphere.Network", "name the port group the nodes attach to")),
            subnets: Vec::new(),
            floating_ip_pool: None,
            keypair: None,
            jumpbox_cidr,
            load_balancer_cidr,
        },
        ProviderKind::Local => NetworkSpec {
            network: None,
            subnets: Vec::new(),
            floating_ip_pool: f.string("Local.FloatingIPPool"),
            keypair: None,
            jumpbox_cidr,
            load_balancer_cidr,
        },
    };

    // Load balancers.
    let load_balancer_mode = match f.get("LoadBalancer") {
        None => LoadBalancerMode::Provider,
        Some(v) if v.eq_ignore_ascii_case("provider") => LoadBalancerMode::Provider,
        Some(v) if v.eq_ignore_ascii_case("external") => LoadBalancerMode::External,
        Some(v) => {
            f.error(
                "LoadBalancer",
                format!("{v:?} is not a load balancer mode: use provider (the default) or external (you bring your own)"),
            );
            LoadBalancerMode::Provider
        }
    };
    let security_groups_mode = match f.get("SecurityGroups") {
        None => SecurityGroupsMode::Provider,
        Some(v) if v.eq_ignore_ascii_case("provider") => SecurityGroupsMode::Provider,
        Some(v) if v.eq_ignore_ascii_case("external") => SecurityGroupsMode::External,
        Some(v) => {
            f.error(
                "SecurityGroups",
                format!("{v:?} is not a security group mode: use provider (the default) or external (the network is secured elsewhere)"),
            );
            SecurityGroupsMode::Provider
        }
    };
    let (api_default, api_target_default, ingress_default) = if local {
        // The local `http` image listens on 8080; it stands in for the API server too.
        (6443, 8080, 8080)
    } else {
        (6443, 6443, 80)
    };
    let api_port: u16 = f.number("APIPort", api_default, "a port number");
    let api_target: u16 = f.number("APITargetPort", api_target_default, "a port number");
    let ingress_port: u16 = f.number("IngressPort", ingress_default, "a port number");
    let ingress_target: u16 = f.number("IngressTargetPort", ingress_port, "a port number");
    for (k, v) in [
        ("APIPort", api_port),
        ("APITargetPort", api_target),
        ("IngressPort", ingress_port),
        ("IngressTargetPort", ingress_target),
    ] {
        if v == 0 {
            f.error(k, "use a port from 1 to 65535");
        }
    }
    let mut load_balancers = vec![LoadBalancerDef {
        name: "api".into(),
        role: Role::Master,
        protocol: LbProtocol::Tcp,
        port: api_port,
        target_port: api_target,
    }];
    if nodes > 0 {
        if ingress_port == api_port {
            f.error(
                "IngressPort",
                format!("{ingress_port} is also APIPort: give the ingress LB its own port"),
            );
        }
        load_balancers.push(LoadBalancerDef {
            name: "ingress".into(),
            role: Role::Node,
            protocol: LbProtocol::Http,
            port: ingress_port,
            target_port: ingress_target,
        });
    }

    if !f.errors.is_empty() {
        return Err(SpecErrors(f.errors));
    }
    let mut roles = roles.into_iter();
    let (Some(masters), Some(nodes), Some(storage)) = (roles.next(), roles.next(), roles.next())
    else {
        return Err(SpecErrors(vec![SpecError::at_key(
            file,
            "",
            "internal: role table incomplete",
        )]));
    };
    Ok(ClusterSpec {
        source: file.to_string(),
        name,
        provider: kind,
        availability_zones: zones,
        masters,
        nodes,
        storage,
        network,
        load_balancer_mode,
        security_groups_mode,
        load_balancers,
        provider_config,
    })
}

fn is_cpus_memory(s: &str) -> bool {
    let mut parts = s.split(':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(c), Some(m), None) if c.parse::<u32>().is_ok_and(|c| c > 0) && m.parse::<u64>().is_ok_and(|m| m > 0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        let os = ProviderKind::OpenStack;
        assert_eq!(
            nearest_key(os, "OpenStack.Pasword").as_deref(),
            Some("OpenStack.Password")
        );
        assert_eq!(nearest_key(os, "nodecount").as_deref(), Some("NodeCount"));
        // Suggestions come from the spec's own provider only.
        let near = nearest_key(ProviderKind::Local, "Local.Password");
        assert!(
            near.as_deref()
                .is_some_and(|k| k.starts_with("Local.") || !k.contains('.')),
            "{near:?}"
        );
    }
}
