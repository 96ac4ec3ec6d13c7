//! Per-role resources (floating IPs, data volumes) and load balancers as a list: both
//! spec formats, the seed's layout in the examples, the least-privilege groups that
//! follow from the list, defaults that keep today's plan and spec hashes, and the
//! hand-over of every role's volumes and addresses on replacement.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use cluster::plan::{diff, Action, Desired, DiffOptions, Observed, RuleRef};
use cluster::spec::Role;
use cluster::{ClusterSpec, Selector};
use common::rolling::{cluster, memory, quick};
use provider_core::{
    Capabilities, Family, HealthCheckProtocol, IngressRule, LbProtocol, PortRange, Protocol,
    ProviderExt, TagFilter,
};

fn caps() -> Capabilities {
    Capabilities::new(100)
        .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
        .with_group_sources(true)
}

fn zones() -> Vec<String> {
    ["az1", "az2", "az3"].map(String::from).to_vec()
}

fn example(name: &str) -> ClusterSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    ClusterSpec::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn desired(spec: &ClusterSpec) -> Desired {
    Desired::from_spec(spec, &zones(), &caps(), Family::ALL)
}

fn from_lb(port: u16, lb_group: &str) -> RuleRef {
    RuleRef::Group {
        protocol: Protocol::Tcp,
        ports: Some(PortRange::single(port)),
        group: lb_group.to_string(),
    }
}

fn cidr_rule(port: u16, cidr: &str) -> RuleRef {
    RuleRef::Rule(IngressRule::tcp(port, cidr.parse().unwrap()))
}

/// The seed's layout, whichever example and format describes it.
fn assert_seed_layout(d: &Desired, c: &str, targets: [u16; 3]) {
    let fips: BTreeSet<&str> = d.floating_ips.iter().map(|f| f.instance.as_str()).collect();
    let want: BTreeSet<String> = ["master-0", "node-0", "node-1", "node-2"]
        .iter()
        .map(|n| format!("{c}-{n}"))
        .collect();
    assert_eq!(
        fips,
        want.iter().map(String::as_str).collect(),
        "floating IPs on the master and every worker node, none on storage"
    );
    let vols: BTreeSet<&str> = d.volumes.iter().map(|v| v.name.as_str()).collect();
    let want_vols: Vec<String> = ["master-0", "storage-0", "storage-1"]
        .iter()
        .map(|n| format!("{c}-{n}-data"))
        .collect();
    assert_eq!(vols, want_vols.iter().map(String::as_str).collect());

    let lbs: Vec<&str> = d.load_balancers.iter().map(|l| l.name.as_str()).collect();
    let names = ["hcp", "hsm", "uaa"];
    assert_eq!(lbs.len(), 3, "{lbs:?}");
    let nodes: Vec<String> = (0..3).map(|i| format!("{c}-node-{i}")).collect();
    for (name, target) in names.iter().zip(targets) {
        let lb = d
            .load_balancers
            .iter()
            .find(|l| l.name == format!("{c}-{name}"))
            .unwrap_or_else(|| panic!("no {name} LB in {lbs:?}"));
        assert_eq!(lb.listeners.len(), 1);
        assert_eq!(
            (lb.listeners[0].port, lb.listeners[0].target_port),
            (443, target)
        );
        assert_eq!(lb.members, nodes, "{name} fronts the worker nodes");
        assert_eq!(lb.groups, [format!("{c}-lb-{name}")]);
    }
    // The nodes open exactly the three target ports, each to its own LB's group.
    let group = |n: &str| {
        d.groups
            .iter()
            .find(|g| g.name == n)
            .unwrap_or_else(|| panic!("no group {n}"))
    };
    let node_rules: BTreeSet<&RuleRef> = group(&format!("{c}-node")).rules.iter().collect();
    let want_rules: Vec<RuleRef> = names
        .iter()
        .zip(targets)
        .map(|(n, t)| from_lb(t, &format!("{c}-lb-{n}")))
        .collect();
    assert_eq!(node_rules, want_rules.iter().collect());
    // No LB fronts the masters or storage nodes: they have the base group only.
    assert!(d.groups.iter().all(|g| g.name != format!("{c}-master")));
    for i in d.instances.iter().filter(|i| i.role != cluster::Role::Node) {
        assert_eq!(i.groups, [format!("{c}-base")], "{}", i.name);
    }
    // No shared listener group: each LB's group opens 443 to its own sources.
    assert!(d.groups.iter().all(|g| g.name != format!("{c}-lb")));
}

#[test]
fn the_openstack_seed_example_describes_the_seed_layout() {
    let s = example("openstack-seed.properties");
    assert!(s.masters.floating_ip && s.nodes.floating_ip && !s.storage.floating_ip);
    let d = desired(&s);
    assert_seed_layout(&d, "stackato4-seed", [30443, 30444, 30445]);
    let master_vol = d
        .volumes
        .iter()
        .find(|v| v.name == "stackato4-seed-master-0-data")
        .unwrap();
    assert_eq!(master_vol.size_gib, 10);
    let g = |n: &str| &d.groups.iter().find(|g| g.name == n).unwrap().rules;
    assert_eq!(
        g("stackato4-seed-lb-hcp"),
        &[cidr_rule(443, "10.1.1.0/24")],
        "the default sources: LoadBalancerCIDR"
    );
    assert_eq!(
        g("stackato4-seed-lb-uaa"),
        &[cidr_rule(443, "10.1.1.0/24"), cidr_rule(443, "10.1.2.0/24")],
        "uaa's own SourceCIDRs"
    );
    assert!(
        d.warnings.iter().all(|w| !w.contains("is ignored")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn the_local_seed_example_in_toml_describes_the_same_layout() {
    let s = example("local-seed.toml");
    let d = desired(&s);
    assert_seed_layout(&d, "plinth-seed", [8080; 3]);
    let hsm = d
        .load_balancers
        .iter()
        .find(|l| l.name == "plinth-seed-hsm")
        .unwrap();
    let hc = &hsm.listeners[0].health_check;
    assert_eq!(
        (hc.protocol, hc.path.as_deref()),
        (HealthCheckProtocol::Http, Some("/"))
    );
    // Three LBs front the same target port: the node group has one rule per LB group.
    let node = d
        .groups
        .iter()
        .find(|g| g.name == "plinth-seed-node")
        .unwrap();
    assert_eq!(node.rules.len(), 3, "{:?}", node.rules);
}

#[test]
fn properties_and_toml_say_the_same_per_role_resources_and_lbs() {
    let props = "Provider = local\nNodeCount = 3\nNodeFloatingIP = true\nMasterFloatingIP = false\n\
        NodeVolumeCount = 2\nNodeVolumeSize = 5\nNodeVolumeType = ssd\nGlusterNodeCount = 1\nGlusterVolumeCount = 0\n\
        LoadBalancers.web.Port = 80\nLoadBalancers.web.TargetPort = 8080\nLoadBalancers.web.Protocol = http\n\
        LoadBalancers.web.SourceCIDRs = 127.0.0.0/8, 10.0.0.0/8\nLoadBalancers.ctl.Port = 6443\nLoadBalancers.ctl.Role = master\n\
        Local.FloatingIPPool = local\n";
    let toml = "Provider = \"local\"\nNodeCount = 3\nNodeFloatingIP = true\nMasterFloatingIP = false\n\
        NodeVolumeCount = 2\nNodeVolumeSize = 5\nNodeVolumeType = \"ssd\"\nGlusterNodeCount = 1\nGlusterVolumeCount = 0\n\
        [LoadBalancers.web]\nPort = 80\nTargetPort = 8080\nProtocol = \"http\"\nSourceCIDRs = [\"127.0.0.0/8\", \"10.0.0.0/8\"]\n\
        [LoadBalancers.ctl]\nPort = 6443\nRole = \"master\"\n[Local]\nFloatingIPPool = \"local\"\n";
    let p = ClusterSpec::parse("a.properties", props).unwrap();
    let t = ClusterSpec::parse("a.toml", toml).unwrap();
    for role in Role::ALL {
        assert_eq!(p.role(role), t.role(role), "{role}");
    }
    let by_name = |s: &ClusterSpec| {
        let mut lbs = s.load_balancers.clone();
        lbs.sort_by(|a, b| a.name.cmp(&b.name));
        lbs
    };
    assert_eq!(by_name(&p), by_name(&t));
    let web = p.load_balancers.iter().find(|l| l.name == "web").unwrap();
    assert_eq!(
        (
            web.role,
            web.protocol,
            web.port,
            web.target_port,
            web.sources.len()
        ),
        (Role::Node, LbProtocol::Http, 80, 8080, 2)
    );
    let ctl = p.load_balancers.iter().find(|l| l.name == "ctl").unwrap();
    assert_eq!((ctl.role, ctl.target_port), (Role::Master, 6443));

    let d = desired(&p);
    assert!(d.floating_ips.iter().all(|f| f.instance.contains("-node-")));
    assert_eq!(d.floating_ips.len(), 3);
    assert!(
        d.volumes.iter().all(|v| v.instance.contains("-node-")),
        "no storage volume"
    );
    assert_eq!(d.volumes.len(), 6);
    assert!(d
        .volumes
        .iter()
        .any(|v| v.name == "plinth-node-2-data-1" && v.size_gib == 5));
    // The volume type reaches the create.
    let plan = diff(&d, &Observed::default(), &DiffOptions::default());
    let types: BTreeSet<Option<String>> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::CreateVolume { spec } => Some(spec.volume_type.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(types, [Some("ssd".to_string())].into());
}

#[test]
fn without_the_new_keys_the_layout_and_spec_hashes_are_today_s() {
    let s = example("local.properties");
    assert!(s.masters.floating_ip && !s.nodes.floating_ip && !s.storage.floating_ip);
    assert!(s.masters.volumes.is_none() && s.nodes.volumes.is_none());
    let d = desired(&s);
    assert_eq!(d.floating_ips.len(), 1);
    assert_eq!(d.floating_ips[0].instance, "plinth-local-master-0");
    let vols: Vec<&str> = d.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        vols,
        ["plinth-local-storage-0-data", "plinth-local-storage-1-data"]
    );
    assert!(d.volumes.iter().all(|v| v.volume_type.is_none()));
    let lbs: Vec<&str> = d.load_balancers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(lbs, ["plinth-local-api", "plinth-local-ingress"]);
    assert!(d
        .load_balancers
        .iter()
        .all(|l| l.groups == ["plinth-local-lb"]));
    let groups: Vec<&str> = d.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        groups,
        [
            "plinth-local-base",
            "plinth-local-lb",
            "plinth-local-master",
            "plinth-local-node"
        ]
    );
    // The hashes of existing nodes do not change: the canonical form before per-role
    // volumes had the storage volume's size alone.
    for i in &d.instances {
        let rs = s.role(i.role);
        let volume = if i.role == Role::Storage { "1" } else { "" };
        let mut groups = i.groups.clone();
        groups.sort();
        let canonical = format!(
            "role={}\nimage={}\nflavor={}\nuser_data=\nvolume={volume}\ngroups={}\nzones={}",
            i.role,
            rs.image,
            rs.flavor,
            groups.join(","),
            zones().join(",")
        );
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in canonical.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(
            i.tags.get(cluster::plan::TAG_SPEC_HASH),
            Some(&format!("{h:016x}")),
            "{}",
            i.name
        );
    }
}

#[test]
fn a_role_s_volumes_are_in_its_spec_hash_and_only_its() {
    let base = "Provider = local\nNodeCount = 3\nGlusterNodeCount = 1\n";
    let hash = |extra: &str| {
        let s = ClusterSpec::parse("h.properties", &format!("{base}{extra}")).unwrap();
        let d = desired(&s);
        Role::ALL.map(|r| {
            d.instances
                .iter()
                .find(|i| i.role == r)
                .and_then(|i| i.tags.get(cluster::plan::TAG_SPEC_HASH).cloned())
        })
    };
    let before = hash("");
    let with_master_volume = hash("MasterVolumeSize = 10\n");
    assert_ne!(before[0], with_master_volume[0]);
    assert_eq!(before[1..], with_master_volume[1..]);
    let typed = hash("GlusterVolumeType = ssd\n");
    assert_eq!(before[..2], typed[..2]);
    assert_ne!(before[2], typed[2]);
    // A floating IP is handed over, not built in: it does not make nodes stale.
    assert_eq!(
        before,
        hash("NodeFloatingIP = true\nLocal.FloatingIPPool = p\n")
    );
}

#[test]
fn bad_per_role_and_lb_settings_name_the_key_and_the_fix() {
    let err = |text: &str| {
        ClusterSpec::parse("e.properties", &format!("Provider = local\n{text}"))
            .unwrap_err()
            .to_string()
    };
    let e = err("NodeFloatingIP = true\n");
    assert!(
        e.contains("NodeFloatingIP: floating IPs need a pool: set Local.FloatingIPPool"),
        "{e}"
    );
    let e = err("MasterFloatingIP = maybe\n");
    assert!(
        e.contains("MasterFloatingIP: \"maybe\" is not true or false"),
        "{e}"
    );
    let e = err("NodeVolumeCount = 99\n");
    assert!(
        e.contains("NodeVolumeCount: 99 volumes per node is too many"),
        "{e}"
    );
    let e = err("MasterVolumeSize = 0\n");
    assert!(e.contains("MasterVolumeSize: 0 GiB is out of range"), "{e}");
    let e = err("LoadBalancers.hcp.TargetPort = 8443\n");
    assert!(e.contains("LoadBalancers.hcp.Port: missing"), "{e}");
    let e = err("LoadBalancers.hcp.Port = 443\nLoadBalancers.hcp.Role = worker\n");
    assert!(
        e.contains("LoadBalancers.hcp.Role: \"worker\" is not a role: use master, node or storage"),
        "{e}"
    );
    let e = err("LoadBalancers.hcp.Port = 443\nLoadBalancers.hcp.Protocl = tcp\n");
    assert!(
        e.contains("did you mean LoadBalancers.hcp.Protocol?"),
        "{e}"
    );
    let e = err("LoadBalancers.Bad_Name.Port = 443\n");
    assert!(e.contains("cannot name a load balancer"), "{e}");
    let e = err("LoadBalancers.hcp.Port = 443\nLoadBalancers.hcp.HealthCheckPath = /healthz\n");
    assert!(
        e.contains("a path is for http checks: set LoadBalancers.hcp.HealthCheck = http"),
        "{e}"
    );
    let e = err("LoadBalancers.hcp.Port = 443\nLoadBalancers.hcp.SourceCIDRs = everywhere\n");
    assert!(
        e.contains("LoadBalancers.hcp.SourceCIDRs: \"everywhere\" is not a CIDR"),
        "{e}"
    );
    // The default pair's keys beside a list have no effect: a warning, not silence.
    let s = ClusterSpec::parse(
        "w.properties",
        "Provider = local\nAPIPort = 7000\nLoadBalancers.hcp.Port = 443\n",
    )
    .unwrap();
    assert!(
        s.ignored_keys
            .iter()
            .any(|k| k.starts_with("APIPort is ignored")),
        "{:?}",
        s.ignored_keys
    );
}

const ROLL_SPEC: &str = "Provider = local\nClusterName = seedroll\nMasterCount = 3\nNodeCount = 3\n\
        GlusterNodeCount = 1\nGlusterVolumeSize = 2\nMasterVolumeSize = 1\nNodeFloatingIP = true\n\
        NodeVolumeCount = 2\nNodeVolumeSize = 1\n\
        LoadBalancers.hcp.Port = 443\nLoadBalancers.hcp.TargetPort = 8443\n\
        LoadBalancers.uaa.Port = 443\nLoadBalancers.uaa.TargetPort = 8444\n\
        Local.AvailabilityZones = az-1,az-2,az-3\nLocal.Image = linux\nLocal.FloatingIPPool = public\n\
        Local.JumpboxCIDR = 10.1.1.4/32\nLocal.LoadBalancerCIDR = 10.1.1.0/24\n";

#[tokio::test]
async fn every_role_s_volumes_and_addresses_follow_their_slot_through_replacement() {
    surge_or_delete_first(quick()).await;
}

#[tokio::test]
async fn delete_first_hands_every_role_s_volumes_and_addresses_over_too() {
    let opts = cluster::ReplaceOptions {
        max_surge: 0,
        max_unavailable: 1,
        ..quick()
    };
    surge_or_delete_first(opts).await;
}

async fn surge_or_delete_first(opts: cluster::ReplaceOptions) {
    let spec = ClusterSpec::parse("roll.properties", ROLL_SPEC).unwrap();
    let m = memory();
    let c = cluster(spec, m.clone());
    c.apply().await.unwrap();
    let all = TagFilter::all();
    assert_eq!(m.list_volumes(&all).await.unwrap().len(), 3 + 3 * 2 + 1);
    assert_eq!(m.list_floating_ips(&all).await.unwrap().len(), 6);
    assert_eq!(m.list_load_balancers(&all).await.unwrap().len(), 2);

    let report = c.replace(&Selector::All, &opts).await.unwrap();
    assert_eq!(report.replaced.len(), 7, "{report}");
    let after = m.list_instances(&all).await.unwrap();
    let slot_of = |id: &str| {
        after
            .iter()
            .find(|i| i.id == id)
            .map(|i| {
                assert!(i.name.ends_with("-r1"), "{} still holds it", i.name);
                cluster::slot::slot_of(i).to_string()
            })
            .unwrap()
    };
    for v in m.list_volumes(&all).await.unwrap() {
        let slot = slot_of(&v.attachment.expect("attached").instance_id);
        assert!(
            v.name.starts_with(&format!("{slot}-data")),
            "{} on {slot}",
            v.name
        );
    }
    for f in m.list_floating_ips(&all).await.unwrap() {
        let slot = slot_of(&f.instance_id.expect("associated"));
        assert_eq!(f.name, format!("{slot}-fip"));
    }
    for lb in m.list_load_balancers(&all).await.unwrap() {
        let members: BTreeSet<String> = lb.listeners[0]
            .pool
            .members
            .iter()
            .map(|x| slot_of(&x.instance_id))
            .collect();
        assert_eq!(members.len(), 3, "{}", lb.name);
    }
    assert!(c.plan().await.unwrap().actions.is_empty());
    c.destroy().await.unwrap();
    assert!(m.list_volumes(&all).await.unwrap().is_empty());
    assert!(m.list_floating_ips(&all).await.unwrap().is_empty());
    assert!(m.list_security_groups(&all).await.unwrap().is_empty());
}

#[test]
fn the_preflight_gets_each_role_s_volume_type_and_the_pool_when_any_role_wants_it() {
    let text = "Provider = local\nMasterFloatingIP = false\nNodeFloatingIP = true\n\
        NodeVolumeType = ssd\nGlusterNodeCount = 1\nGlusterVolumeType = hdd\n\
        MasterVolumeType = fast\nLocal.FloatingIPPool = public\n";
    let mut spec = ClusterSpec::parse("p.properties", text).unwrap();
    let plan = diff(
        &desired(&spec),
        &Observed::default(),
        &DiffOptions::default(),
    );
    let refs = cluster::preflight::references(&spec, &plan);
    let types: Vec<(&str, &str)> = refs
        .volume_types
        .iter()
        .map(|r| (r.key.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("MasterVolumeType", "fast"),
            ("NodeVolumeType", "ssd"),
            ("GlusterVolumeType", "hdd")
        ]
    );
    assert_eq!(
        refs.floating_ip_pool.as_ref().map(|r| r.key.as_str()),
        Some("Local.FloatingIPPool"),
        "the nodes want floating IPs, though the masters do not"
    );
    // A role without nodes references nothing; nobody wanting addresses, no pool.
    spec.storage.count = 0;
    spec.nodes.floating_ip = false;
    let refs = cluster::preflight::references(&spec, &plan);
    assert!(refs
        .volume_types
        .iter()
        .all(|r| r.key != "GlusterVolumeType"));
    assert!(refs.floating_ip_pool.is_none());
}

#[test]
fn with_external_lbs_each_role_admits_exactly_its_lbs_sources_and_the_plan_says_so() {
    let text = "Provider = local\nLoadBalancer = external\n\
        LoadBalancers.hcp.Port = 443\nLoadBalancers.hcp.TargetPort = 30443\n\
        LoadBalancers.uaa.Port = 443\nLoadBalancers.uaa.TargetPort = 30445\n\
        LoadBalancers.uaa.SourceCIDRs = 10.9.0.0/16\n\
        Local.LoadBalancerCIDR = 10.1.1.0/24\n";
    let spec = ClusterSpec::parse("x.properties", text).unwrap();
    let d = desired(&spec);
    assert!(d.load_balancers.is_empty());
    assert!(d.groups.iter().all(|g| !g.name.contains("-lb")));
    let node = d.groups.iter().find(|g| g.name == "plinth-node").unwrap();
    let rules: BTreeSet<&RuleRef> = node.rules.iter().collect();
    let want = [
        cidr_rule(30443, "10.1.1.0/24"),
        cidr_rule(30445, "10.9.0.0/16"),
    ];
    assert_eq!(rules, want.iter().collect());
    let w = d
        .warnings
        .iter()
        .find(|w| w.starts_with("LoadBalancer = external"))
        .unwrap();
    assert!(
        w.contains(
            "hcp :443 -> node:30443, uaa :443 -> node:30445 from 10.9.0.0/16) from 10.1.1.0/24"
        ),
        "{w}"
    );
}

#[tokio::test]
async fn scaling_a_role_brings_and_takes_its_addresses_and_keeps_its_volumes() {
    let text = "Provider = local\nClusterName = seedscale\nMasterCount = 1\nNodeCount = 3\n\
        NodeFloatingIP = true\nNodeVolumeSize = 1\n\
        Local.AvailabilityZones = az-1,az-2,az-3\nLocal.Image = linux\nLocal.FloatingIPPool = public\n\
        Local.JumpboxCIDR = 10.1.1.4/32\nLocal.LoadBalancerCIDR = 10.1.1.0/24\n";
    let spec = ClusterSpec::parse("scale.properties", text).unwrap();
    let m = memory();
    let c = cluster(spec, m.clone());
    c.apply().await.unwrap();
    let all = TagFilter::all();
    let node_fips = |f: &[provider_core::FloatingIp]| {
        f.iter()
            .filter(|f| f.name.contains("-node-") && f.instance_id.is_some())
            .count()
    };
    assert_eq!(node_fips(&m.list_floating_ips(&all).await.unwrap()), 3);

    c.scale(Role::Node, 6, &quick()).await.unwrap();
    assert_eq!(node_fips(&m.list_floating_ips(&all).await.unwrap()), 6);
    let attached =
        |v: &[provider_core::Volume]| v.iter().filter(|v| v.attachment.is_some()).count();
    assert_eq!(attached(&m.list_volumes(&all).await.unwrap()), 6);

    c.scale(Role::Node, 3, &quick()).await.unwrap();
    let fips = m.list_floating_ips(&all).await.unwrap();
    assert_eq!(node_fips(&fips), 3);
    assert_eq!(fips.len(), 4, "the removed nodes' addresses are released");
    let vols = m.list_volumes(&all).await.unwrap();
    assert_eq!(vols.len(), 6, "volumes are kept: only destroy deletes data");
    assert_eq!(attached(&vols), 3);
}
