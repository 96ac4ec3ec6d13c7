//! The planner: even AZ spread, names and tags, least-privilege groups, DAG order.

mod common;

use std::collections::BTreeMap;

use cluster::plan::{diff, Action, Desired, DiffOptions, Observed, RuleRef, TAG_SPEC_HASH};
use cluster::spec::Role;
use provider_core::{Capabilities, Family, IngressRule, LbProtocol, Protocol, RuleSource};

fn caps() -> Capabilities {
    Capabilities::new(100)
        .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
        .with_group_sources(true)
}

fn zones(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("az-{i}")).collect()
}

fn spread(d: &Desired, role: Role) -> BTreeMap<String, usize> {
    let mut m: BTreeMap<String, usize> = d.zones.iter().map(|z| (z.clone(), 0)).collect();
    for i in d.instances.iter().filter(|i| i.role == role) {
        *m.entry(i.availability_zone.clone()).or_default() += 1;
    }
    m
}

#[test]
fn spread_is_even_for_many_counts() {
    for nz in [1, 2, 3, 5] {
        for (masters, nodes, storage) in [(1, 0, 0), (3, 3, 2), (5, 6, 4), (1, 9, 5), (7, 30, 1)] {
            let nodes = nodes / nz * nz; // NodeCount is a multiple of the AZ count
            let mut spec = common::memory_spec("s", 1, 0, 0);
            spec.availability_zones = zones(nz);
            spec.masters.count = masters;
            spec.nodes.count = nodes;
            spec.storage.count = storage;
            let d = Desired::from_spec(&spec, &zones(nz), &caps(), Family::ALL);
            for (role, count) in [
                (Role::Master, masters),
                (Role::Node, nodes),
                (Role::Storage, storage),
            ] {
                let s = spread(&d, role);
                let (min, max) = (
                    s.values().min().copied().unwrap_or(0),
                    s.values().max().copied().unwrap_or(0),
                );
                assert!(max - min <= 1, "{nz} AZs, {count} {role}: {s:?}");
                assert_eq!(s.values().sum::<usize>(), count);
            }
            // Workers are exactly even; masters land in distinct AZs while they can.
            let s = spread(&d, Role::Node);
            assert!(s.values().all(|c| *c == nodes / nz), "{s:?}");
            let s = spread(&d, Role::Master);
            assert!(s.values().all(|c| *c >= masters / nz), "{s:?}");
        }
    }
}

#[test]
fn names_tags_and_spec_hash() {
    let spec = common::memory_spec("demo", 3, 6, 2);
    let d = Desired::from_spec(&spec, &zones(3), &caps(), Family::ALL);
    let names: Vec<_> = d.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "demo-master-0",
            "demo-master-1",
            "demo-master-2",
            "demo-node-0"
        ]
    );
    assert_eq!(names.last(), Some(&"demo-storage-1"));
    let m1 = &d.instances[1];
    assert_eq!(m1.availability_zone, "az-2");
    assert_eq!(m1.tags["plinth.cluster"], "demo");
    assert_eq!(m1.tags["plinth.role"], "master");
    assert_eq!(m1.tags["plinth.ordinal"], "1");
    assert_eq!(d.volumes.len(), 2);
    assert_eq!(d.volumes[0].name, "demo-storage-0-data");
    assert_eq!(d.volumes[0].instance, "demo-storage-0");
    assert_eq!(d.floating_ips.len(), 3);
    assert_eq!(d.load_balancers.len(), 2);
    assert_eq!(d.load_balancers[0].name, "demo-api");
    assert_eq!(
        d.load_balancers[0].members,
        ["demo-master-0", "demo-master-1", "demo-master-2"]
    );
    assert_eq!(d.load_balancers[1].name, "demo-ingress");
    assert_eq!(d.load_balancers[1].members.len(), 6);

    // Counts never change a role's hash; the image does.
    let hash = |spec: &cluster::ClusterSpec, role| {
        Desired::from_spec(spec, &zones(3), &caps(), Family::ALL)
            .instances
            .iter()
            .find(|i| i.role == role)
            .map(|i| i.tags[TAG_SPEC_HASH].clone())
    };
    let mut scaled = spec.clone();
    scaled.nodes.count = 12;
    scaled.masters.count = 5;
    assert_eq!(hash(&spec, Role::Node), hash(&scaled, Role::Node));
    assert_eq!(hash(&spec, Role::Master), hash(&scaled, Role::Master));
    let mut reimaged = spec.clone();
    reimaged.nodes.image = "linux-2".into();
    assert_ne!(hash(&spec, Role::Node), hash(&reimaged, Role::Node));
    assert_eq!(hash(&spec, Role::Master), hash(&reimaged, Role::Master));
}

#[test]
fn groups_are_least_privilege() {
    let spec = common::memory_spec("lp", 1, 3, 1);
    let d = Desired::from_spec(&spec, &zones(3), &caps(), Family::ALL);
    let g = |n: &str| {
        d.groups
            .iter()
            .find(|g| g.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let jump = "10.1.1.4/32".parse().unwrap();
    let lbnet = "10.1.1.0/24".parse().unwrap();
    assert_eq!(
        g("lp-base").rules,
        [
            RuleRef::Rule(IngressRule::tcp(22, jump)),
            RuleRef::Group {
                protocol: Protocol::Any,
                ports: None,
                group: "lp-base".into()
            },
        ]
    );
    assert_eq!(
        g("lp-lb").rules,
        [
            RuleRef::Rule(IngressRule::tcp(6443, lbnet)),
            RuleRef::Rule(IngressRule::tcp(8080, lbnet))
        ]
    );
    assert!(
        matches!(&g("lp-master").rules[..], [RuleRef::Group { group, .. }] if group == "lp-lb")
    );
    assert!(matches!(&g("lp-node").rules[..], [RuleRef::Group { group, .. }] if group == "lp-lb"));
    // No rule anywhere opens to the world.
    for grp in &d.groups {
        for r in &grp.rules {
            if let RuleRef::Rule(IngressRule {
                source: RuleSource::Cidr(c),
                ..
            }) = r
            {
                assert!(c.prefix_len() >= 24, "{} opens {c}", grp.name);
            }
        }
    }
    let storage = d
        .instances
        .iter()
        .find(|i| i.role == Role::Storage)
        .unwrap();
    assert_eq!(storage.groups, ["lp-base"]);
}

#[test]
fn dag_orders_groups_instances_volumes_ips_then_lbs() {
    let spec = common::memory_spec("dag", 3, 6, 2);
    let d = Desired::from_spec(&spec, &zones(3), &caps(), Family::ALL);
    let plan = diff(
        &d,
        &Observed::default(),
        &DiffOptions {
            batch_size: 4,
            ..DiffOptions::default()
        },
    );
    let acts = &plan.actions;
    let id_of = |pred: &dyn Fn(&Action) -> bool| {
        acts.iter()
            .filter(|a| pred(&a.action))
            .map(|a| a.id)
            .collect::<Vec<_>>()
    };
    // Dependencies point backwards: the list order is a valid order, no cycles.
    for a in acts {
        assert!(a.deps.iter().all(|d| *d < a.id), "{a:?}");
    }
    // Transitive closure of dependencies.
    let mut before: Vec<std::collections::BTreeSet<usize>> = Vec::new();
    for a in acts {
        let mut s = std::collections::BTreeSet::new();
        for d in &a.deps {
            s.insert(*d);
            s.extend(before[*d].iter().copied());
        }
        before.push(s);
    }
    let groups = id_of(&|a| matches!(a, Action::CreateSecurityGroup { .. }));
    assert_eq!(groups.len(), 4);
    let batches = id_of(&|a| matches!(a, Action::CreateInstances { .. }));
    // Batches of at most 4 per role: masters 3 -> 1, nodes 6 -> 2, storage 2 -> 1.
    assert_eq!(batches.len(), 4);
    for b in &batches {
        let Action::CreateInstances { instances } = &acts[*b].action else {
            unreachable!()
        };
        for i in instances {
            for g in &i.groups {
                let gid = acts
                    .iter()
                    .find(|a| matches!(&a.action, Action::CreateSecurityGroup { name, .. } if name == g))
                    .map(|a| a.id)
                    .unwrap();
                assert!(before[*b].contains(&gid), "{} before its group {g}", i.name);
            }
        }
    }
    for a in acts {
        match &a.action {
            Action::AttachVolume { volume, instance } => {
                assert!(acts.iter().any(|v| before[a.id].contains(&v.id)
                    && matches!(&v.action, Action::CreateVolume { spec } if &spec.name == volume)));
                assert!(acts.iter().any(|v| before[a.id].contains(&v.id)
                    && matches!(&v.action, Action::CreateInstances { instances } if instances.iter().any(|i| &i.name == instance))));
            }
            Action::AssociateFloatingIp {
                floating_ip,
                instance,
            } => {
                assert!(acts.iter().any(|v| before[a.id].contains(&v.id)
                    && matches!(&v.action, Action::AllocateFloatingIp { spec } if &spec.name == floating_ip)));
                assert!(acts.iter().any(|v| before[a.id].contains(&v.id)
                    && matches!(&v.action, Action::CreateInstances { instances } if instances.iter().any(|i| &i.name == instance))));
            }
            Action::CreateLoadBalancer { lb } => {
                for m in &lb.members {
                    assert!(acts.iter().any(|v| before[a.id].contains(&v.id)
                        && matches!(&v.action, Action::CreateInstances { instances } if instances.iter().any(|i| &i.name == m))));
                }
                // Group-reference rules exist before the LB checks its members.
                for r in id_of(&|a| matches!(a, Action::AddSecurityGroupRules { .. })) {
                    assert!(before[a.id].contains(&r));
                }
            }
            _ => {}
        }
    }
    // Nothing waits for an LB: they come last.
    let lbs = id_of(&|a| matches!(a, Action::CreateLoadBalancer { .. }));
    assert_eq!(lbs.len(), 2);
    for a in acts {
        assert!(lbs.iter().all(|l| !a.deps.contains(l)));
    }
    // Volumes and floating IPs do not wait for unrelated batches: the storage volume
    // attach depends on the storage batch only, not on the node batches.
    let attach = acts
        .iter()
        .find(|a| matches!(a.action, Action::AttachVolume { .. }))
        .unwrap();
    let node_batches: Vec<_> = batches
        .iter()
        .filter(|b| matches!(&acts[**b].action, Action::CreateInstances { instances } if instances[0].role == Role::Node))
        .collect();
    assert!(node_batches.iter().all(|b| !before[attach.id].contains(b)));
}

#[test]
fn a_provider_without_lbs_blocks_apply_unless_the_lb_is_external() {
    let no_lb = caps();
    // Neither floating IPs nor load balancers, as on vSphere.
    let families = [
        Family::Core,
        Family::SecurityGroups,
        Family::Instances,
        Family::Volumes,
    ];
    let spec = common::memory_spec("vs", 1, 3, 0);
    let d = Desired::from_spec(&spec, &zones(3), &no_lb, &families);
    assert_eq!(
        d.blockers,
        ["this provider has no load balancers: set LoadBalancer = external in test.properties and bring your own"]
    );
    let plan = diff(&d, &Observed::default(), &DiffOptions::default());
    assert!(plan
        .to_string()
        .contains("cannot apply: this provider has no load balancers"));
    // No floating IPs either, and the plan says so.
    assert!(d.floating_ips.is_empty());
    assert!(d.warnings.iter().any(|w| w.contains("no floating IPs")));

    let text = common::memory_spec_text("vs", 1, 3, 0) + "LoadBalancer = external\n";
    let spec = cluster::ClusterSpec::parse("ext.properties", &text).unwrap();
    let d = Desired::from_spec(&spec, &zones(3), &no_lb, &families);
    assert!(d.blockers.is_empty());
    assert!(d.load_balancers.is_empty());
    // The nodes admit the external LB by its CIDR, and no LB group exists.
    assert!(d.groups.iter().all(|g| g.name != "vs-lb"));
    let node = d.groups.iter().find(|g| g.name == "vs-node").unwrap();
    let lbnet = "10.1.1.0/24".parse().unwrap();
    assert_eq!(node.rules, [RuleRef::Rule(IngressRule::tcp(8080, lbnet))]);
}

#[test]
fn groups_that_are_only_recorded_are_refused_unless_the_spec_says_the_network_is_secured() {
    let records_only = Capabilities::new(100)
        .with_group_sources(true)
        .with_security_groups_enforced(false);
    let families = [
        Family::Core,
        Family::SecurityGroups,
        Family::Instances,
        Family::Volumes,
    ];
    let text = common::memory_spec_text("rec", 1, 3, 0) + "LoadBalancer = external\n";
    let spec = cluster::ClusterSpec::parse("rec.properties", &text).unwrap();
    let d = Desired::from_spec(&spec, &zones(3), &records_only, &families);
    assert_eq!(d.blockers.len(), 1, "{:?}", d.blockers);
    let why = &d.blockers[0];
    assert!(why.contains("only records security groups"), "{why}");
    assert!(
        why.contains("set SecurityGroups = external in rec.properties"),
        "{why}"
    );
    let plan = diff(&d, &Observed::default(), &DiffOptions::default());
    assert!(plan
        .to_string()
        .contains("cannot apply: this provider only records"));

    let text = text + "SecurityGroups = external\n";
    let spec = cluster::ClusterSpec::parse("rec.properties", &text).unwrap();
    let d = Desired::from_spec(&spec, &zones(3), &records_only, &families);
    assert!(d.blockers.is_empty(), "{:?}", d.blockers);
    assert!(d
        .warnings
        .iter()
        .any(|w| w.starts_with("SecurityGroups = external")));
    // The least-privilege groups are still planned (recorded on the VMs).
    assert!(d.groups.iter().any(|g| g.name == "rec-node"));

    // A provider that enforces its groups needs no word.
    let spec = cluster::ClusterSpec::parse(
        "enf.properties",
        &(common::memory_spec_text("enf", 1, 3, 0) + "LoadBalancer = external\n"),
    )
    .unwrap();
    let enforced = Capabilities::new(100).with_group_sources(true);
    let d = Desired::from_spec(&spec, &zones(3), &enforced, &families);
    assert!(d.blockers.is_empty() && !d.warnings.iter().any(|w| w.contains("SecurityGroups")));
}

#[test]
fn a_bad_security_groups_mode_names_the_key_and_the_values() {
    let text = common::memory_spec_text("bad", 1, 3, 0) + "SecurityGroups = nsx\n";
    let err = cluster::ClusterSpec::parse("bad.properties", &text).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("SecurityGroups"), "{msg}");
    assert!(
        msg.contains("use provider (the default) or external"),
        "{msg}"
    );
}

#[test]
fn user_data_shows_in_plans_only_as_its_digest() {
    let text = common::memory_spec_text("ud", 1, 3, 0) + "MasterUserData = token: Zq9-bootstrap\n";
    let spec = cluster::ClusterSpec::parse("ud.properties", &text).unwrap();
    assert!(!format!("{spec:?}").contains("Zq9-bootstrap"));
    let d = Desired::from_spec(&spec, &zones(3), &caps(), Family::ALL);
    let master = d.instances.iter().find(|i| i.role == Role::Master).unwrap();
    // The plan still carries it to the provider...
    assert_eq!(master.user_data.as_deref(), Some("token: Zq9-bootstrap"));
    // ...and shows only its digest.
    let plan = diff(&d, &Observed::default(), &DiffOptions::default());
    for shown in [
        serde_json::to_string(&plan).unwrap(),
        format!("{plan:?}"),
        plan.to_string(),
        format!("{d:?}"),
    ] {
        assert!(!shown.contains("Zq9-bootstrap"), "{shown}");
    }
    assert!(serde_json::to_string(&plan)
        .unwrap()
        .contains("bytes, sha256:"));
}
