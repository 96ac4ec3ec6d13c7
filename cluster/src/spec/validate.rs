//! The key table and the validator: turns entries into a [`ClusterSpec`], collecting
//! every problem (with file, line or key, and the fix) instead of stopping at the first.

use std::collections::HashMap;
use std::fmt;

use ipnet::IpNet;
// provider-core's own limits are checked here too, so the spec is rejected before
// planning with the spec key named.
use provider_core::{LbProtocol, MAX_USER_DATA_BYTES};

use super::keys::KeyTable;
use super::limits::{
    excerpt, MAX_LIST_ITEMS, MAX_MASTERS, MAX_NODES, MAX_PROBLEMS, MAX_STORAGE_NODES,
    MAX_VALUE_BYTES,
};
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

/// Looks keys up and collects problems.
pub(super) struct Fields<'a> {
    file: &'a str,
    entries: HashMap<&'a str, &'a Entry>,
    /// Keys whose value was refused for its size (reported once, not also as missing).
    refused: std::collections::HashSet<&'a str>,
    errors: Vec<SpecError>,
}

impl<'a> Fields<'a> {
    pub(super) fn error(&mut self, key: &str, message: impl Into<String>) {
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

    pub(super) fn get(&self, key: &str) -> Option<&'a str> {
        self.entries
            .get(key)
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_string)
    }

    pub(super) fn required(&mut self, key: &str, fix: &str) -> String {
        match self.get(key) {
            Some(v) => v.to_string(),
            None if self.refused.contains(key) => String::new(),
            None => {
                self.error(key, format!("missing: {fix}"));
                String::new()
            }
        }
    }

    pub(super) fn list(&mut self, key: &str) -> Vec<String> {
        let items: Vec<String> = self
            .get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if items.len() > MAX_LIST_ITEMS {
            self.error(
                key,
                format!(
                    "{} items is too many: list at most {MAX_LIST_ITEMS}",
                    items.len()
                ),
            );
            return Vec::new();
        }
        items
    }

    pub(super) fn number<T: std::str::FromStr + Copy + fmt::Display>(
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
                    let v = excerpt(v);
                    self.error(key, format!("{v} is not {what}: write e.g. {default}"));
                    default
                }
            },
        }
    }

    pub(super) fn boolean(&mut self, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" => Some(true),
            "false" | "no" => Some(false),
            _ => {
                let v = excerpt(v);
                self.error(
                    key,
                    format!("{v} is not true or false: write true or false"),
                );
                None
            }
        }
    }

    pub(super) fn cidr(&mut self, key: &str, default: Option<IpNet>) -> IpNet {
        // A placeholder that admits nothing, used only when an error is already recorded.
        let none =
            IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::BROADCAST, 32).unwrap_or_default());
        match (self.get(key), default) {
            (Some(v), _) => match v.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => {
                    self.error(
                        key,
                        format!("{} is not a CIDR: write an address and prefix length, e.g. 10.1.1.4/32 or 10.1.1.0/24", excerpt(v)),
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

/// Flavor and image keys of one provider, per role (from [`super::keys::reference_keys`]).
pub(crate) struct RoleKeys {
    pub(crate) image: &'static str,
    pub(crate) flavors: [&'static str; 3],
}

pub(crate) fn role_keys(kind: ProviderKind) -> RoleKeys {
    let k = super::keys::reference_keys(kind);
    RoleKeys {
        image: k.image,
        flavors: k.flavors,
    }
}

const COUNT_KEYS: [&str; 3] = ["MasterCount", "NodeCount", "GlusterNodeCount"];
const USER_DATA_KEYS: [&str; 3] = ["MasterUserData", "NodeUserData", "GlusterUserData"];

/// Validates entries into a spec, or reports every problem found.
pub fn build(file: &str, entries: &[Entry]) -> Result<ClusterSpec, SpecErrors> {
    let mut f = Fields {
        file,
        entries: HashMap::new(),
        refused: Default::default(),
        errors: Vec::new(),
    };
    let table = KeyTable::new();
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
        // Past the reported problems, a "did you mean" would only cost time.
        let suggest = f.errors.len() < MAX_PROBLEMS;
        if let Some(problem) = table.check(provider, &e.key, suggest) {
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
        let limit = if USER_DATA_KEYS.contains(&e.key.as_str()) {
            MAX_USER_DATA_BYTES
        } else {
            MAX_VALUE_BYTES
        };
        if e.value.len() > limit {
            f.entries.insert(e.key.as_str(), e);
            f.error(
                &e.key,
                format!(
                    "{} bytes is too long: keep the value under {limit} bytes",
                    e.value.len()
                ),
            );
            f.entries.remove(e.key.as_str());
            f.refused.insert(e.key.as_str());
            continue;
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
            format!(
                "unknown provider {}: use one of OpenStack, AWS, VSphere, local",
                excerpt(v)
            ),
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

    let name_is_default = f.get("ClusterName").is_none();
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
            format!("{} cannot name resources: use 1 to 40 letters, digits or '-', starting with a letter or digit", excerpt(&name)),
        );
    }

    let counts: Vec<usize> = COUNT_KEYS
        .iter()
        .zip([1usize, 3, 0])
        .zip([MAX_MASTERS, MAX_NODES, MAX_STORAGE_NODES])
        .map(|((k, d), max)| {
            let n = f.number(k, d, "a whole number");
            if n > max {
                f.error(
                    k,
                    format!("{n} is more than the limit of {max}: use at most {max} (see cluster::spec::limits)"),
                );
                return d;
            }
            n
        })
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
    let az_key = super::keys::reference_keys(kind).zones.to_string();
    let mut zones = f.list(&az_key);
    if zones.is_empty() {
        if local {
            zones = ["local-a", "local-b", "local-c"].map(String::from).to_vec();
        } else if f.errors.iter().any(|e| e.key == az_key) || f.refused.contains(az_key.as_str()) {
            // Refused already (too long, too many items): not also "missing".
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
            f.error(
                &az_key,
                format!("{} is listed twice: list each AZ once", excerpt(z)),
            );
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
    let pool_key = match kind {
        // Elastic IPs: Amazon's own pool, always there.
        ProviderKind::Aws => Some("AWS"),
        _ => super::keys::reference_keys(kind).floating_ip_pool,
    };
    let pool_set = match kind {
        ProviderKind::OpenStack => {
            f.get("OpenStack.FloatingIPPoolName").is_some()
                || f.get("OpenStack.FloatingIPPoolID").is_some()
        }
        ProviderKind::Local => f.get("Local.FloatingIPPool").is_some(),
        ProviderKind::Aws => true,
        ProviderKind::VSphere => false,
    };
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
                format!(
                    "{} is not cpus:memoryMiB: write e.g. 2:4096",
                    excerpt(&flavor)
                ),
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
        let (volumes, floating_ip) =
            super::resources::role_resources(&mut f, role, pool_key, pool_set);
        roles.push(RoleSpec {
            count: counts[i],
            flavor,
            image: image.clone(),
            user_data,
            volumes,
            floating_ip,
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
            // The pool by name, or by id when only the id is given.
            floating_ip_pool: f
                .string("OpenStack.FloatingIPPoolName")
                .or_else(|| f.string("OpenStack.FloatingIPPoolID")),
            floating_ip_pool_id: f.string("OpenStack.FloatingIPPoolID"),
            keypair: f.string("OpenStack.Keypair"),
            keypair_file: f.string("OpenStack.KeypairFile"),
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
                floating_ip_pool_id: None,
                keypair: f.string("AWS.KeyName"),
                keypair_file: None,
                jumpbox_cidr,
                load_balancer_cidr,
            }
        }
        ProviderKind::VSphere => NetworkSpec {
            network: Some(f.required("VSphere.Network", "name the port group the nodes attach to")),
            subnets: Vec::new(),
            floating_ip_pool: None,
            floating_ip_pool_id: None,
            keypair: None,
            keypair_file: None,
            jumpbox_cidr,
            load_balancer_cidr,
        },
        ProviderKind::Local => NetworkSpec {
            network: None,
            subnets: Vec::new(),
            floating_ip_pool: f.string("Local.FloatingIPPool"),
            floating_ip_pool_id: None,
            keypair: None,
            keypair_file: None,
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
                format!("{} is not a load balancer mode: use provider (the default) or external (you bring your own)", excerpt(v)),
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
                format!("{} is not a security group mode: use provider (the default) or external (the network is secured elsewhere)", excerpt(v)),
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
    let listed = super::resources::listed_load_balancers(&mut f, entries, load_balancer_cidr);
    let mut ignored_keys = Vec::new();
    let load_balancers = match listed {
        Some(lbs) => {
            for k in [
                "APIPort",
                "APITargetPort",
                "IngressPort",
                "IngressTargetPort",
            ] {
                if f.get(k).is_some() {
                    ignored_keys.push(format!(
                        "{k} is ignored: it sets the default API and ingress load balancers, which the LoadBalancers.* list replaces; list them there or remove {k}"
                    ));
                }
            }
            lbs
        }
        None => {
            let default = |name: &str, role, protocol, port, target_port| LoadBalancerDef {
                name: String::from(name),
                role,
                protocol,
                port,
                target_port,
                health_check: super::resources::default_health_check(),
                sources: vec![load_balancer_cidr],
                group: "lb".into(),
            };
            let mut lbs = vec![default(
                "api",
                Role::Master,
                LbProtocol::Tcp,
                api_port,
                api_target,
            )];
            if nodes > 0 {
                if ingress_port == api_port {
                    f.error(
                        "IngressPort",
                        format!("{ingress_port} is also APIPort: give the ingress LB its own port"),
                    );
                }
                lbs.push(default(
                    "ingress",
                    Role::Node,
                    LbProtocol::Http,
                    ingress_port,
                    ingress_target,
                ));
            }
            lbs
        }
    };

    if !f.errors.is_empty() {
        return Err(SpecErrors(f.errors));
    }
    if network.keypair_file.is_some() && network.keypair.is_none() {
        ignored_keys.push(
            "OpenStack.KeypairFile is ignored: it is checked against OpenStack.Keypair, which is not set; set the keypair or remove the file".to_string(),
        );
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
        name_is_default,
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
        ignored_keys,
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
    use crate::spec::keys::{edit_distance, nearest_key};

    #[test]
    fn reference_keys_are_keys_of_the_table() {
        for kind in ProviderKind::ALL {
            let known = crate::spec::keys::known_keys(kind);
            for k in crate::spec::keys::reference_keys(kind).all() {
                assert!(known.iter().any(|x| x == k), "{kind}: {k}");
            }
        }
        let known = crate::spec::keys::known_keys(ProviderKind::Local);
        for k in crate::spec::resources::role_resource_keys() {
            assert!(known.contains(&k), "{k}");
        }
    }

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
