//! Plan + diff time for 10,000 nodes: against nothing (the first apply) and against a
//! cluster that already matches (a rerun). `cargo bench -p cluster --bench plan`.

use std::hint::black_box;

use cluster::plan::{diff, Desired, DiffOptions, Observed, RuleRef};
use cluster::ClusterSpec;
use criterion::{criterion_group, criterion_main, Criterion};
use provider_core::{
    Capabilities, Family, FloatingIp, Instance, InstanceState, LbProtocol, Listener, LoadBalancer,
    LoadBalancerState, Member, MemberHealth, Pool, RuleSource, SecurityGroup, Volume,
    VolumeAttachment, VolumeState,
};

const SPEC: &str = "Provider = local\nClusterName = big\nMasterCount = 3\nNodeCount = 9996\n\
GlusterNodeCount = 1\nLocal.AvailabilityZones = az-1,az-2,az-3\n";

fn caps() -> Capabilities {
    Capabilities::new(1000)
        .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
        .with_group_sources(true)
}

fn zones() -> Vec<String> {
    vec!["az-1".into(), "az-2".into(), "az-3".into()]
}

/// What the cloud would list once `d` is applied.
fn observed_from(d: &Desired) -> Observed {
    let gid = |name: &str| format!("sg-{name}");
    let iid = |name: &str| format!("i-{name}");
    let groups = d
        .groups
        .iter()
        .map(|g| SecurityGroup {
            id: gid(&g.name),
            name: g.name.clone(),
            description: g.description.clone(),
            rules: g
                .rules
                .iter()
                .filter_map(|r| r.resolve(|n| Some(gid(n))))
                .collect(),
            tags: g.tags.clone(),
        })
        .collect();
    let instances = d
        .instances
        .iter()
        .map(|i| Instance {
            id: iid(&i.name),
            name: i.name.clone(),
            availability_zone: i.availability_zone.clone(),
            flavor: i.flavor.clone(),
            image: i.image.clone(),
            state: InstanceState::Running,
            private_ip: None,
            public_ip: None,
            security_groups: i.groups.iter().map(|g| gid(g)).collect(),
            tags: i.tags.clone(),
        })
        .collect();
    let volumes = d
        .volumes
        .iter()
        .map(|v| Volume {
            id: format!("vol-{}", v.name),
            name: v.name.clone(),
            availability_zone: v.availability_zone.clone(),
            size_gib: v.size_gib,
            volume_type: None,
            state: VolumeState::InUse,
            attachment: Some(VolumeAttachment {
                instance_id: iid(&v.instance),
                device: "/dev/vdb".into(),
            }),
            tags: v.tags.clone(),
        })
        .collect();
    let floating_ips = d
        .floating_ips
        .iter()
        .map(|f| FloatingIp {
            id: format!("fip-{}", f.name),
            name: f.name.clone(),
            address: std::net::Ipv4Addr::LOCALHOST.into(),
            pool: f.pool.clone(),
            instance_id: Some(iid(&f.instance)),
            tags: f.tags.clone(),
        })
        .collect();
    let load_balancers = d
        .load_balancers
        .iter()
        .map(|lb| LoadBalancer {
            id: format!("lb-{}", lb.name),
            name: lb.name.clone(),
            state: LoadBalancerState::Active,
            address: None,
            security_groups: lb.groups.iter().map(|g| gid(g)).collect(),
            listeners: lb
                .listeners
                .iter()
                .map(|l| Listener {
                    protocol: l.protocol,
                    port: l.port,
                    pool: Pool {
                        health_check: l.health_check.clone(),
                        members: lb
                            .members
                            .iter()
                            .map(|m| Member {
                                instance_id: iid(m),
                                port: l.target_port,
                                health: MemberHealth::Healthy,
                            })
                            .collect(),
                    },
                })
                .collect(),
            tags: lb.tags.clone(),
        })
        .collect();
    Observed {
        groups,
        instances,
        volumes,
        floating_ips,
        load_balancers,
    }
}

fn bench(c: &mut Criterion) {
    let spec = ClusterSpec::parse("big.properties", SPEC).expect("valid spec");
    let opts = DiffOptions::default();
    let desired = Desired::from_spec(&spec, &zones(), &caps(), Family::ALL);
    assert_eq!(desired.instances.len(), 10_000);
    let full = observed_from(&desired);
    // The synthetic cloud matches the spec: its plan is empty.
    assert!(diff(&desired, &full, &opts).is_empty());
    assert!(desired
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .all(|r| !matches!(r, RuleRef::Rule(x) if matches!(x.source, RuleSource::Group(_)))));

    let mut g = c.benchmark_group("plan_10000_nodes");
    g.sample_size(10);
    g.bench_function("desired+diff, nothing exists", |b| {
        b.iter(|| {
            let d = Desired::from_spec(black_box(&spec), &zones(), &caps(), Family::ALL);
            let p = diff(&d, &Observed::default(), &opts);
            assert_eq!(
                p.actions
                    .iter()
                    .filter(|a| a.action.kind() == "create_instances")
                    .count(),
                402
            );
            p
        })
    });
    g.bench_function("desired+diff, all exists", |b| {
        b.iter(|| {
            let d = Desired::from_spec(black_box(&spec), &zones(), &caps(), Family::ALL);
            diff(&d, black_box(&full), &opts)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
