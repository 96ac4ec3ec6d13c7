//! The seed's own layout (examples/openstack-seed.properties) on OpenStack's own
//! services: `apply` through the cluster library, then the result read back with each
//! service's own API over plain HTTP (Nova servers, Neutron floating IPs, ports and
//! security groups, Cinder volumes, Octavia load balancers, listeners, pools and
//! members): floating IPs on the master and every worker node, a volume on the master
//! and on each storage node, three LBs on 443 in front of the nodes, the nodes' group
//! opening each target port to its LB's group; then `destroy`, and nothing of the
//! cluster left in any service's listing.
//!
//! Needs the services (see tests/emulator.rs for the variables). Unset, the test prints
//! why it is skipped and passes, except under `CI`, where it fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cluster::{Cluster, ClusterSpec};
use common::{admin, curl};
use serde_json::Value;

fn configured() -> Option<(String, String)> {
    let auth = std::env::var("PLINTH_OS_TEST_AUTH_URL").ok();
    let password = std::env::var("PLINTH_OS_TEST_PASSWORD").ok();
    match (auth, password) {
        (Some(a), Some(p)) if !a.is_empty() => Some((a, p)),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("OpenStack services not running in CI: set PLINTH_OS_TEST_AUTH_URL and PLINTH_OS_TEST_PASSWORD (see emulators/openstack/README.md)");
            }
            eprintln!("skipped: OpenStack services not running (set PLINTH_OS_TEST_AUTH_URL and PLINTH_OS_TEST_PASSWORD)");
            None
        }
    }
}

/// What the services list of the cluster, each by its own API, resources named
/// `<cluster>-...`.
struct Listing {
    /// Server name by id.
    servers: BTreeMap<String, String>,
    /// Floating IPs: the server each is on (by name), if any.
    fips: Vec<Option<String>>,
    /// Volumes: name and the servers (by name) they are attached to.
    volumes: BTreeMap<String, Vec<String>>,
    /// Load balancers by name: their listeners' ports and their members' ports.
    lbs: BTreeMap<String, (Vec<i64>, Vec<i64>)>,
    /// Security groups: name and the raw group.
    groups: BTreeMap<String, Value>,
}

struct Api {
    token: String,
    ep: BTreeMap<String, String>,
}

impl Api {
    fn get(&self, service: &str, path: &str) -> Value {
        let base = self
            .ep
            .get(service)
            .unwrap_or_else(|| panic!("no {service} endpoint in {:?}", self.ep));
        curl("GET", &format!("{base}{path}"), Some(&self.token), None).1
    }

    /// An LB's listener ports and the ports of the members of its pools.
    fn lb_ports(&self, id: &str) -> (Vec<i64>, Vec<i64>) {
        let port = |v: &Value| v["protocol_port"].as_i64();
        let listeners = self.get(
            "load-balancer",
            &format!("/v2/lbaas/listeners?loadbalancer_id={id}"),
        );
        let listeners = listeners["listeners"].as_array().expect("listeners");
        let pools = self.get(
            "load-balancer",
            &format!("/v2/lbaas/pools?loadbalancer_id={id}"),
        );
        let mut members = Vec::new();
        for pool in pools["pools"].as_array().expect("pools") {
            let pool = pool["id"].as_str().expect("a pool id");
            let m = self.get("load-balancer", &format!("/v2/lbaas/pools/{pool}/members"));
            members.extend(
                m["members"]
                    .as_array()
                    .expect("members")
                    .iter()
                    .filter_map(port),
            );
        }
        (listeners.iter().filter_map(port).collect(), members)
    }

    fn list(&self, prefix: &str) -> Listing {
        let mine = |v: &Value| v["name"].as_str().is_some_and(|n| n.starts_with(prefix));
        let servers: BTreeMap<String, String> = self.get("compute", "/servers/detail")["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .filter(|s| mine(s))
            .map(|s| {
                (
                    s["id"].as_str().unwrap().into(),
                    s["name"].as_str().unwrap().into(),
                )
            })
            .collect();
        let ports = self.get("network", "/v2.0/ports");
        let device_of: BTreeMap<&str, &str> = ports["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .filter_map(|p| Some((p["id"].as_str()?, p["device_id"].as_str()?)))
            .collect();
        let fip_list = self.get("network", "/v2.0/floatingips");
        let fips = fip_list["floatingips"]
            .as_array()
            .expect("floating IPs")
            .iter()
            // A floating IP has no name: its description holds it; the server it is on
            // says whose it is too.
            .filter(|f| {
                let on_ours = f["port_id"]
                    .as_str()
                    .and_then(|p| device_of.get(p))
                    .is_some_and(|d| servers.contains_key(*d));
                let named = f["description"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(prefix));
                on_ours || named
            })
            .map(|f| {
                f["port_id"]
                    .as_str()
                    .and_then(|p| device_of.get(p))
                    .and_then(|d| servers.get(*d))
                    .cloned()
            })
            .collect();
        let vols = self.get("volumev3", "/volumes/detail");
        let volumes = vols["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .filter(|v| mine(v))
            .map(|v| {
                let on = v["attachments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| servers.get(a["server_id"].as_str()?).cloned())
                    .collect();
                (v["name"].as_str().unwrap().to_string(), on)
            })
            .collect();
        let lbs = self.get("load-balancer", "/v2/lbaas/loadbalancers")["loadbalancers"]
            .as_array()
            .expect("load balancers")
            .iter()
            .filter(|l| mine(l))
            .map(|l| {
                let id = l["id"].as_str().unwrap();
                (l["name"].as_str().unwrap().to_string(), self.lb_ports(id))
            })
            .collect();
        let groups = self.get("network", "/v2.0/security-groups")["security_groups"]
            .as_array()
            .expect("security groups")
            .iter()
            .filter(|g| mine(g))
            .map(|g| (g["name"].as_str().unwrap().to_string(), g.clone()))
            .collect();
        Listing {
            servers,
            fips,
            volumes,
            lbs,
            groups,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_layout_comes_up_on_the_openstack_services_and_goes() {
    let Some((auth_url, password)) = configured() else {
        return;
    };
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffff_ffff
    );
    let c = format!("os-seed-{run}");
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/openstack-seed.properties");
    let text = std::fs::read_to_string(&example)
        .expect("the example")
        .replace(
            "ClusterName = stackato4-seed",
            &format!("ClusterName = {c}"),
        )
        .replace("http://127.0.0.1:5000/v3", &auth_url)
        .replace(
            "OpenStack.Password              = admin",
            &format!("OpenStack.Password              = {password}"),
        );
    let spec = ClusterSpec::parse("openstack-seed.properties", &text).expect("the example parses");
    let cluster = Cluster::open(spec).await.expect("open the cloud");
    let applied = cluster.apply().await;

    let (token, ep) = admin(&auth_url, &password);
    let api = Api { token, ep };
    let prefix = format!("{c}-");
    let seen = api.list(&prefix);
    let destroyed = cluster.destroy().await;
    let left = api.list(&prefix);
    applied.expect("apply");
    destroyed.expect("destroy");

    // Nova: 1 master, 3 worker nodes, 2 storage nodes.
    let servers: BTreeSet<&str> = seen.servers.values().map(String::as_str).collect();
    let name = |n: &str| format!("{c}-{n}");
    let want: BTreeSet<String> = [
        "master-0",
        "node-0",
        "node-1",
        "node-2",
        "storage-0",
        "storage-1",
    ]
    .iter()
    .map(|n| name(n))
    .collect();
    assert_eq!(servers, want.iter().map(String::as_str).collect());

    // Neutron: floating IPs on the master and on every worker node, none on storage.
    let on: BTreeSet<String> = seen
        .fips
        .iter()
        .map(|f| f.clone().expect("associated"))
        .collect();
    let want: BTreeSet<String> = ["master-0", "node-0", "node-1", "node-2"]
        .iter()
        .map(|n| name(n))
        .collect();
    assert_eq!(on, want, "floating IPs");
    assert_eq!(seen.fips.len(), 4);

    // Cinder: the master's volume and each storage node's, attached.
    let want: BTreeMap<String, Vec<String>> = ["master-0", "storage-0", "storage-1"]
        .iter()
        .map(|n| (format!("{}-data", name(n)), vec![name(n)]))
        .collect();
    assert_eq!(seen.volumes, want, "volumes");

    // Octavia: three LBs, each one listener on 443 whose pool holds the three worker
    // nodes at the LB's target port.
    let lb_names: BTreeSet<&str> = seen.lbs.keys().map(String::as_str).collect();
    let want: BTreeSet<String> = ["hcp", "hsm", "uaa"].iter().map(|n| name(n)).collect();
    assert_eq!(lb_names, want.iter().map(String::as_str).collect());
    let targets = [("hcp", 30443), ("hsm", 30444), ("uaa", 30445)];
    for (lb, target) in targets {
        let (listeners, members) = &seen.lbs[&name(lb)];
        assert_eq!(listeners, &[443], "{lb}");
        assert_eq!(members, &[target; 3], "{lb}: the three worker nodes");
    }

    // Neutron: the nodes' group opens exactly the three target ports, each to its LB's
    // group; each LB's group opens 443 to its sources.
    let id_of: BTreeMap<&str, &str> = seen
        .groups
        .iter()
        .filter_map(|(n, g)| Some((g["id"].as_str()?, n.as_str())))
        .collect();
    let ingress = |g: &str| -> BTreeSet<(i64, String)> {
        seen.groups[g]["security_group_rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter(|r| r["direction"] == "ingress" && r["ethertype"] == "IPv4")
            .map(|r| {
                let source = match r["remote_group_id"].as_str() {
                    Some(id) => id_of.get(id).copied().unwrap_or(id).to_string(),
                    None => r["remote_ip_prefix"].as_str().unwrap_or("").to_string(),
                };
                (r["port_range_min"].as_i64().unwrap_or(0), source)
            })
            .collect()
    };
    let want: BTreeSet<(i64, String)> = targets
        .iter()
        .map(|(lb, t)| (*t, name(&format!("lb-{lb}"))))
        .collect();
    assert_eq!(ingress(&name("node")), want, "the nodes' group");
    assert_eq!(
        ingress(&name("lb-hcp")),
        [(443, "10.1.1.0/24".to_string())].into()
    );
    assert_eq!(
        ingress(&name("lb-uaa")),
        [
            (443, "10.1.1.0/24".to_string()),
            (443, "10.1.2.0/24".to_string())
        ]
        .into()
    );
    assert!(
        !seen.groups.contains_key(&name("master")),
        "no LB in front of the masters"
    );

    // Destroy: nothing of the cluster in any service's listing.
    assert!(left.servers.is_empty(), "servers left: {:?}", left.servers);
    assert!(left.fips.is_empty(), "floating IPs left: {:?}", left.fips);
    assert!(left.volumes.is_empty(), "volumes left: {:?}", left.volumes);
    assert!(left.lbs.is_empty(), "load balancers left: {:?}", left.lbs);
    assert!(
        left.groups.is_empty(),
        "security groups left: {:?}",
        left.groups.keys()
    );
}
