//! What each role gets besides its nodes (floating IPs, data volumes) and the load
//! balancers in front of the roles, read from the spec's keys.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `MasterFloatingIP`, `NodeFloatingIP`, `GlusterFloatingIP` | `true`: each node of the role gets a floating IP from the provider's pool | masters `true`, others `false` |
//! | `MasterVolumeCount`, `NodeVolumeCount`, `GlusterVolumeCount` | data volumes per node | storage 1; masters and nodes 1 when their size or type is set, else 0 |
//! | `MasterVolumeSize`, `NodeVolumeSize`, `GlusterVolumeSize` | size of each, GiB | 100 |
//! | `MasterVolumeType`, `NodeVolumeType`, `GlusterVolumeType` | the cloud's volume type (a Cinder type, `gp3`) | the cloud's default |
//! | `LoadBalancers.<name>.Port` | the listener's port (required for a listed LB) | |
//! | `LoadBalancers.<name>.Role` | `master`, `node` or `storage`: whose nodes are the members | `node` |
//! | `LoadBalancers.<name>.TargetPort` | port on the members | `Port` |
//! | `LoadBalancers.<name>.Protocol` | `tcp` or `http` | `tcp` |
//! | `LoadBalancers.<name>.HealthCheck` | `tcp` (a connect) or `http` (a GET answering 2xx/3xx) | `tcp` |
//! | `LoadBalancers.<name>.HealthCheckPath` | the path of an `http` check | `/` |
//! | `LoadBalancers.<name>.SourceCIDRs` | sources allowed to reach the listener, comma-separated | the provider's `LoadBalancerCIDR` |
//!
//! A spec without `LoadBalancers.*` keys gets the two of the seed's topology: `api`
//! (`APIPort` -> masters' `APITargetPort`, TCP) and `ingress` (`IngressPort` -> nodes'
//! `IngressTargetPort`, HTTP; only with worker nodes), sharing the `<cluster>-lb`
//! listener group. Listed LBs replace both, each with its own listener group
//! `<cluster>-lb-<name>` that opens its port to its sources only; each role's group opens
//! exactly the target ports of the LBs in front of it, to each LB's group. In TOML a
//! listed LB is a table:
//!
//! ```toml
//! [LoadBalancers.hcp]
//! Port = 443
//! Role = "node"
//! TargetPort = 8443
//! ```
//!
//! The seed's layout (floating IPs on masters and nodes, a volume on each master, three
//! API endpoints on 443 in front of the nodes) is `examples/openstack-seed.properties`.

use std::time::Duration;

use ipnet::IpNet;
use provider_core::{HealthCheck, LbProtocol, MAX_VOLUME_GIB};

use super::limits::{excerpt, MAX_LB_NAME_CHARS, MAX_LOAD_BALANCERS, MAX_VOLUMES_PER_NODE};
use super::validate::Fields;
use super::{Entry, LoadBalancerDef, Role, VolumeDef};

/// The prefix of the keys of listed load balancers.
pub const LB_PREFIX: &str = "LoadBalancers.";

/// The settings of one listed load balancer (`LoadBalancers.<name>.<setting>`).
pub const LB_SETTINGS: [&str; 7] = [
    "Port",
    "TargetPort",
    "Role",
    "Protocol",
    "HealthCheck",
    "HealthCheckPath",
    "SourceCIDRs",
];

/// The seed's spelling of each role in key names (`MasterUserData`, `GlusterVolumeSize`).
pub fn key_word(role: Role) -> &'static str {
    match role {
        Role::Master => "Master",
        Role::Node => "Node",
        Role::Storage => "Gluster",
    }
}

/// The per-role resource keys (floating IP and volumes), for the key table.
pub fn role_resource_keys() -> impl Iterator<Item = String> {
    Role::ALL.into_iter().flat_map(|role| {
        let w = key_word(role);
        ["FloatingIP", "VolumeCount", "VolumeSize", "VolumeType"].map(move |s| format!("{w}{s}"))
    })
}

/// Why `key` (starting with [`LB_PREFIX`]) is not a key of a listed load balancer, with
/// the fix; `None` when it is one.
pub fn lb_key_problem(key: &str) -> Option<String> {
    let rest = key.strip_prefix(LB_PREFIX)?;
    let Some((name, setting)) = rest.split_once('.') else {
        return Some(format!(
            "a load balancer's settings are LoadBalancers.<name>.<setting>: write e.g. {LB_PREFIX}{rest}.Port"
        ));
    };
    if let Some(why) = lb_name_problem(name) {
        return Some(why);
    }
    if LB_SETTINGS.contains(&setting) {
        return None;
    }
    let near = LB_SETTINGS
        .iter()
        .min_by_key(|s| {
            super::keys::edit_distance(&setting.to_ascii_lowercase(), &s.to_ascii_lowercase())
        })
        .map(|s| format!("{LB_PREFIX}{name}.{s}"))
        .unwrap_or_default();
    Some(format!("unknown key: did you mean {near}?"))
}

fn lb_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LB_NAME_CHARS
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!ok).then(|| {
        format!(
            "{} cannot name a load balancer: use 1 to {MAX_LB_NAME_CHARS} lowercase letters, digits or '-', starting with a letter",
            excerpt(name)
        )
    })
}

/// A TCP check quick enough that new members serve within seconds.
pub fn default_health_check() -> HealthCheck {
    quick(HealthCheck::default())
}

fn quick(h: HealthCheck) -> HealthCheck {
    h.with_interval(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(1))
        .with_healthy_threshold(1)
        .with_unhealthy_threshold(2)
}

/// The floating IP and volumes of `role`'s nodes. `pool_key` is the key of the
/// provider's floating IP pool (`None`: the provider has none), `pool` whether it is set.
pub(super) fn role_resources(
    f: &mut Fields<'_>,
    role: Role,
    pool_key: Option<&str>,
    pool: bool,
) -> (Option<VolumeDef>, bool) {
    let w = key_word(role);
    let fip_key = format!("{w}FloatingIP");
    let floating_ip = match f.boolean(&fip_key) {
        None => role == Role::Master,
        Some(true) if !pool => {
            let fix = match pool_key {
                Some(k) => format!("set {k}, or remove {fip_key}"),
                None => format!("this provider has no floating IP pool: remove {fip_key}"),
            };
            f.error(&fip_key, format!("floating IPs need a pool: {fix}"));
            false
        }
        Some(v) => v,
    };
    let (count_key, size_key, type_key) = (
        format!("{w}VolumeCount"),
        format!("{w}VolumeSize"),
        format!("{w}VolumeType"),
    );
    let volume_type = f.string(&type_key);
    let asked = f.get(&size_key).is_some() || volume_type.is_some();
    let default_count = usize::from(role == Role::Storage || asked);
    let count: usize = f.number(&count_key, default_count, "a whole number");
    if count > MAX_VOLUMES_PER_NODE {
        f.error(
            &count_key,
            format!("{count} volumes per node is too many: use at most {MAX_VOLUMES_PER_NODE}"),
        );
    }
    let size_gib: u64 = f.number(&size_key, 100, "a size in GiB");
    if size_gib == 0 || size_gib > MAX_VOLUME_GIB {
        f.error(
            &size_key,
            format!("{size_gib} GiB is out of range: use 1 to {MAX_VOLUME_GIB}"),
        );
    }
    let volumes = (count > 0).then_some(VolumeDef {
        count,
        size_gib,
        volume_type,
    });
    (volumes, floating_ip)
}

/// The load balancers the spec lists (`LoadBalancers.<name>.*`), in the order their
/// names first appear; `None` when it lists none. `sources` is the default of
/// `SourceCIDRs` (the provider's `LoadBalancerCIDR`).
pub(super) fn listed_load_balancers(
    f: &mut Fields<'_>,
    entries: &[Entry],
    sources: IpNet,
) -> Option<Vec<LoadBalancerDef>> {
    let mut names: Vec<&str> = Vec::new();
    for e in entries {
        let Some(name) = e
            .key
            .strip_prefix(LB_PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .map(|(name, _)| name)
        else {
            continue;
        };
        if lb_key_problem(&e.key).is_none() && !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return None;
    }
    if names.len() > MAX_LOAD_BALANCERS {
        f.error(
            "LoadBalancers",
            format!(
                "{} load balancers is too many: list at most {MAX_LOAD_BALANCERS}",
                names.len()
            ),
        );
        names.truncate(MAX_LOAD_BALANCERS);
    }
    let lbs = names
        .into_iter()
        .map(|name| listed(f, name, sources))
        .collect();
    Some(lbs)
}

fn listed(f: &mut Fields<'_>, name: &str, sources: IpNet) -> LoadBalancerDef {
    let key = |s: &str| format!("{LB_PREFIX}{name}.{s}");
    let port_key = key("Port");
    let port: u16 = match f.get(&port_key) {
        Some(_) => f.number(&port_key, 443, "a port number"),
        None => {
            f.error(
                &port_key,
                "missing: set the port the load balancer listens on, e.g. 443",
            );
            443
        }
    };
    let target_port: u16 = f.number(&key("TargetPort"), port, "a port number");
    for (k, v) in [(port_key, port), (key("TargetPort"), target_port)] {
        if v == 0 {
            f.error(&k, "use a port from 1 to 65535");
        }
    }
    let role = match f.get(&key("Role")) {
        None => Role::Node,
        Some(v) => Role::parse(&v.to_ascii_lowercase()).unwrap_or_else(|| {
            f.error(
                &key("Role"),
                format!("{} is not a role: use master, node or storage", excerpt(v)),
            );
            Role::Node
        }),
    };
    let protocol = match f.get(&key("Protocol")).map(str::to_ascii_lowercase) {
        None => LbProtocol::Tcp,
        Some(v) if v == "tcp" => LbProtocol::Tcp,
        Some(v) if v == "http" => LbProtocol::Http,
        Some(v) => {
            f.error(
                &key("Protocol"),
                format!(
                    "{} is not a listener protocol: use tcp or http",
                    excerpt(&v)
                ),
            );
            LbProtocol::Tcp
        }
    };
    let path = f.string(&key("HealthCheckPath"));
    let health_check = match f.get(&key("HealthCheck")).map(str::to_ascii_lowercase) {
        None => None,
        Some(v) if v == "tcp" => None,
        Some(v) if v == "http" => Some(HealthCheck::http(path.clone().unwrap_or("/".into()))),
        Some(v) => {
            f.error(
                &key("HealthCheck"),
                format!("{} is not a health check: use tcp or http", excerpt(&v)),
            );
            None
        }
    };
    if let (Some(p), None) = (&path, &health_check) {
        if !p.is_empty() {
            f.error(
                &key("HealthCheckPath"),
                format!(
                    "a path is for http checks: set {} = http, or remove the path",
                    key("HealthCheck")
                ),
            );
        }
    }
    if path.as_deref().is_some_and(|p| !p.starts_with('/')) {
        f.error(
            &key("HealthCheckPath"),
            "write an absolute path, e.g. /healthz",
        );
    }
    let health_check = health_check.map_or_else(default_health_check, quick);
    let sources_key = key("SourceCIDRs");
    let mut cidrs = Vec::new();
    for s in f.list(&sources_key) {
        match s.parse::<IpNet>() {
            Ok(n) => cidrs.push(n),
            Err(_) => f.error(
                &sources_key,
                format!(
                    "{} is not a CIDR: write an address and prefix length, e.g. 10.1.1.0/24",
                    excerpt(&s)
                ),
            ),
        }
    }
    if cidrs.is_empty() {
        cidrs.push(sources);
    }
    LoadBalancerDef {
        name: name.to_string(),
        role,
        protocol,
        port,
        target_port,
        health_check,
        sources: cidrs,
        group: format!("lb-{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_keys_are_checked_and_near_misses_suggested() {
        assert_eq!(lb_key_problem("LoadBalancers.hcp.Port"), None);
        assert_eq!(lb_key_problem("LoadBalancers.uaa-2.SourceCIDRs"), None);
        let near = lb_key_problem("LoadBalancers.hcp.TargetPrt").unwrap();
        assert!(near.contains("LoadBalancers.hcp.TargetPort"), "{near}");
        let bad_name = lb_key_problem("LoadBalancers.HCP.Port").unwrap();
        assert!(
            bad_name.contains("cannot name a load balancer"),
            "{bad_name}"
        );
        let no_setting = lb_key_problem("LoadBalancers.hcp").unwrap();
        assert!(
            no_setting.contains("LoadBalancers.hcp.Port"),
            "{no_setting}"
        );
        assert_eq!(lb_key_problem("NodeCount"), None, "not an LB key");
    }
}
