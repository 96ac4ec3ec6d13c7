//! Plan + diff of 10,000 nodes: the planner's own cost, with no cloud in the loop.
//!
//! The spec's node counts are capped for users ([`cluster::spec::limits`]: 7 masters,
//! 500 nodes, 100 storage nodes), so the harness parses a valid spec and raises the
//! worker count through the library ([`ClusterSpec::role_mut`]); the limits stay as
//! they are. Two cases, each `desired` from the spec and then `diff`:
//!
//! - *nothing exists*: the plan of a first `apply` (10,000 creates in batches);
//! - *all exists*: a rerun against a cloud that already matches the spec (an empty
//!   plan), with the observed state built beforehand as the provider would list it.
//!
//! Time is the median of [`RUNS`] runs; memory is the peak of live heap bytes above
//! what was live before the run, from the counting allocator ([`crate::alloc`]).
//! Listing the observed state from a cloud is not included: it depends on the cloud.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use cluster::plan::{diff, Desired, DiffOptions, Observed, Plan};
use cluster::{ClusterSpec, Role};
use provider_core::{
    Capabilities, Family, FloatingIp, Instance, InstanceState, LbProtocol, Listener, LoadBalancer,
    LoadBalancerState, Member, MemberHealth, Pool, SecurityGroup, Volume, VolumeAttachment,
    VolumeState,
};

use crate::cloud::{spec_text, ZONES};
use crate::error::{Context, Error, Result};
use crate::report::{Row, Target, Value};

/// Nodes in all: 3 masters, 9,996 worker nodes, 1 storage node.
pub const NODES: usize = 10_000;
/// Runs per case; the median is reported.
pub const RUNS: usize = 5;
/// The budget of time.
pub const TIME_BUDGET: Duration = Duration::from_millis(100);
/// The budget of memory.
pub const MEMORY_BUDGET: u64 = 64 * 1024 * 1024;

/// The 10,000-node spec (see the [module docs](self)).
pub fn spec() -> Result<ClusterSpec> {
    let mut spec =
        ClusterSpec::parse("10000.properties", &spec_text("big", 3, 3, 1)).during("plan + diff")?;
    spec.role_mut(Role::Node).count = NODES - 4;
    Ok(spec)
}

fn caps() -> Capabilities {
    Capabilities::new(1000)
        .with_lb_protocols([LbProtocol::Tcp, LbProtocol::Http])
        .with_group_sources(true)
}

fn zones() -> Vec<String> {
    ZONES.iter().map(|z| z.to_string()).collect()
}

/// Plans `spec` against `observed`: the whole planner, spec to plan.
pub fn plan(spec: &ClusterSpec, observed: &Observed) -> Plan {
    let d = Desired::from_spec(spec, &zones(), &caps(), Family::ALL);
    diff(&d, observed, &DiffOptions::default())
}

/// What the cloud would list once `d` is applied.
pub fn observed_from(d: &Desired) -> Observed {
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
            address: Ipv4Addr::LOCALHOST.into(),
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

/// One case measured: median time, peak heap above the start, the plan's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Median of the runs.
    pub time: Duration,
    /// Peak live heap bytes above those live before one run.
    pub peak: u64,
    /// Actions of the plan.
    pub actions: usize,
}

fn measure(spec: &ClusterSpec, observed: &Observed) -> Measured {
    let mut times = Vec::with_capacity(RUNS);
    let mut actions = 0;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let p = plan(spec, observed);
        times.push(t0.elapsed());
        actions = p.actions.len();
        drop(p);
    }
    times.sort();
    let base = crate::alloc::reset_peak();
    let p = plan(spec, observed);
    let peak = crate::alloc::peak().saturating_sub(base) as u64;
    drop(p);
    Measured {
        time: times[times.len() / 2],
        peak,
        actions,
    }
}

/// The rows: time and peak memory of both cases.
pub fn rows() -> Result<Vec<Row>> {
    let scenario = "plan + diff";
    if !crate::alloc::installed() {
        return Err(Error::Unexpected {
            scenario: scenario.into(),
            message: "the counting allocator is not installed: peak memory cannot be measured"
                .into(),
        });
    }
    let spec = spec()?;
    let desired = Desired::from_spec(&spec, &zones(), &caps(), Family::ALL);
    if desired.instances.len() != NODES {
        return Err(Error::Unexpected {
            scenario: scenario.into(),
            message: format!("{} nodes planned, not {NODES}", desired.instances.len()),
        });
    }
    let before = crate::alloc::live();
    let full = observed_from(&desired);
    let observed_bytes = crate::alloc::live().saturating_sub(before);
    drop(desired);

    let empty = measure(&spec, &Observed::default());
    let rerun = measure(&spec, &full);
    if rerun.actions != 0 {
        return Err(Error::Unexpected {
            scenario: scenario.into(),
            message: format!(
                "a cloud that matches the spec still got {} actions",
                rerun.actions
            ),
        });
    }
    let mut rows = Vec::new();
    for (case, m, extra) in [
        ("nothing exists", empty, String::new()),
        (
            "all exists",
            rerun,
            format!(
                "; the observed state it reads holds {:.1} MiB more",
                observed_bytes as f64 / (1024.0 * 1024.0)
            ),
        ),
    ] {
        rows.push(Row {
            scenario: format!("plan + diff 10,000 nodes, {case}: time"),
            measured: Value::Time(m.time),
            limit: Value::Time(TIME_BUDGET),
            target: Target::Below(1.0),
            detail: format!(
                "limit = the issue's budget; median of {RUNS}; {} actions",
                m.actions
            ),
        });
        rows.push(Row {
            scenario: format!("plan + diff 10,000 nodes, {case}: peak heap"),
            measured: Value::Bytes(m.peak),
            limit: Value::Bytes(MEMORY_BUDGET),
            target: Target::Below(1.0),
            detail: format!(
                "limit = the issue's budget; live heap above the start of one run{extra}"
            ),
        });
    }
    Ok(rows)
}
