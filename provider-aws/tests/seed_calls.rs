//! The seed topology (1 master, 3 nodes, 2 storage nodes with a volume each, 3 AZs, a
//! floating IP, 2 load balancers) run by the cluster library on moto: the AWS requests
//! of bring-up, `status`, a no-op `apply` and `destroy`, printed next to each phase's
//! floor, and pinned, so a change that adds a request per resource fails.
//!
//! Run it with `--nocapture` to see the table (the README's "Performance" section).

mod common;

use std::sync::Arc;

use cluster::{Cluster, ClusterSpec};
use provider_core::requests::{over_pins, phase_table};
use provider_core::{Provider, ProviderExt, TagFilter};

/// The floor of each phase on EC2/ELBv2: the mutating requests the plan needs plus one
/// list per resource kind per wait round (moto settles every state at once: one round),
/// plus the reads EC2/ELBv2 cannot spare: finding the lease, ELBv2's lists, the preflight.
mod floor {
    /// Lease: find the base group and the lease it holds (DescribeSecurityGroups),
    /// write (CreateTags), read back, and at the end read it (still ours?) and remove
    /// it (DeleteTags).
    const LEASE: u64 = 5;
    /// Observed state: one list per kind (groups, instances, volumes, addresses, LBs);
    /// ELBv2's list has no tag filter, listeners or members: DescribeTags,
    /// DescribeTargetGroups and DescribeTargetHealth per target group (2). The zones are
    /// resolved once per provider (by the preflight), not per observation.
    const OBSERVE: u64 = 5 + 1 + 1 + 2;
    /// The observed state of a cluster that does not exist yet (no LB: nothing more).
    const OBSERVE_EMPTY: u64 = 5;
    /// The preflight: one look-up per kind of reference (zones, AMI, instance types,
    /// VPC, subnets, key pair) and for the Elastic IP quota and its use (2).
    const PREFLIGHT: u64 = 8;
    /// Bring-up: 4 CreateSecurityGroup + 4 AuthorizeSecurityGroupIngress (tags at
    /// create), 6 RunInstances (one per role and AZ), 2 CreateVolume + 2 AttachVolume,
    /// AllocateAddress + AssociateAddress, per LB CreateLoadBalancer, CreateTargetGroup,
    /// ModifyTargetGroupAttributes (the drain period), RegisterTargets and
    /// CreateListener (10), and one wait round each for instances, volumes available,
    /// volumes attached and LBs active (4).
    pub const BRING_UP: u64 = PREFLIGHT + LEASE + OBSERVE_EMPTY + 8 + 6 + 4 + 2 + 10 + 4;
    /// Status: the observed state (which holds each target group's health).
    pub const STATUS: u64 = OBSERVE;
    /// A no-op apply: the lease and the observed state.
    pub const NOOP_APPLY: u64 = LEASE + OBSERVE;
    /// Destroy: the lease without its release (3: the group goes with the rest), the
    /// observed state, DisassociateAddress + ReleaseAddress, per LB DeleteLoadBalancer +
    /// DeleteTargetGroup (4), one TerminateInstances, 2 DetachVolume + 2 DeleteVolume,
    /// 3 RevokeSecurityGroupIngress (the rules naming another group of the cluster go
    /// before the groups), 4 DeleteSecurityGroup, and one wait round each for instances
    /// gone, volumes detached and LBs gone (3).
    pub const DESTROY: u64 = 3 + OBSERVE + 2 + 4 + 1 + 4 + 3 + 4 + 3;
}

/// The requests each phase reached (pinned: lower them when a change saves requests).
mod pinned {
    /// 8 of them are the preflight's look-ups (zones, AMI, instance types, VPC,
    /// subnets, key pair, the Elastic IP quota and its use).
    pub const BRING_UP: u64 = 79;
    pub const STATUS: u64 = 9;
    pub const NOOP_APPLY: u64 = 15;
    pub const DESTROY: u64 = 56;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_requests_per_phase() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 105).await;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffffff
    );
    let name = format!("aws-seed-{run}");
    let spec = ClusterSpec::parse("seed.properties", &common::seed_spec(&f, &name)).unwrap();

    // The default page size (the fixture's pages of 5 test pagination; here they would
    // count a second page of instances).
    let aws = common::builder(&endpoint, &f)
        .with_page_size(provider_aws::AwsConfig::default().page_size)
        .build()
        .await
        .unwrap();
    let requests = aws.request_counts().clone();
    let provider: Arc<dyn Provider> = Arc::new(aws);
    let cluster = Cluster::new(spec, provider.clone());
    let mut phases = Vec::new();
    let mut phase = |name: &str, floor: u64| phases.push(requests.take_phase(name, floor));

    requests.reset();
    cluster.apply().await.unwrap();
    phase("bring-up", floor::BRING_UP);
    let status = cluster.status().await.unwrap();
    phase("status", floor::STATUS);
    assert_eq!(status.nodes.len(), 6, "{status:?}");
    cluster.apply().await.unwrap();
    phase("no-op apply", floor::NOOP_APPLY);
    cluster.destroy().await.unwrap();
    phase("destroy", floor::DESTROY);
    print!("{}", phase_table("AWS (moto)", &phases));

    let again = &phases[2].counts;
    assert_eq!(again.get("ec2.RunInstances"), None, "{again:?}");
    let tf = TagFilter::new("plinth.cluster", name.clone());
    assert!(provider.list_instances(&tf).await.unwrap().is_empty());
    assert!(provider.list_volumes(&tf).await.unwrap().is_empty());
    assert!(provider.list_floating_ips(&tf).await.unwrap().is_empty());
    assert!(provider.list_load_balancers(&tf).await.unwrap().is_empty());
    assert!(provider.list_security_groups(&tf).await.unwrap().is_empty());

    let pins = [
        pinned::BRING_UP,
        pinned::STATUS,
        pinned::NOOP_APPLY,
        pinned::DESTROY,
    ];
    let over = over_pins(&phases, &pins);
    assert!(over.is_empty(), "{}", over.join("\n"));
}
