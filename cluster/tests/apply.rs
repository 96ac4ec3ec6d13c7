//! apply / status / destroy on the memory provider.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cluster::execute::Observer;
use cluster::plan::{Action, PlannedAction};
use cluster::{Error, Observed};
use provider_core::layer::{FaultInjecting, FaultPlan, Layered};
use provider_core::ProviderExt;
use provider_core::{Operation, Provider, TagFilter};

const CREATES: [Operation; 8] = [
    Operation::CreateSecurityGroup,
    Operation::AddSecurityGroupRule,
    Operation::CreateVolume,
    Operation::AttachVolume,
    Operation::CreateInstance,
    Operation::CreateInstances,
    Operation::AllocateFloatingIp,
    Operation::CreateLoadBalancer,
];

fn by_role_az(o: &Observed) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for i in &o.instances {
        *m.entry((i.tags["plinth.role"].clone(), i.availability_zone.clone()))
            .or_default() += 1;
    }
    m
}

#[tokio::test]
async fn apply_builds_the_topology_then_is_a_no_op() {
    let (_mem, metrics, p) = common::counted();
    let c = common::cluster(common::memory_spec("seed", 1, 3, 2), p.clone());
    let out = c.apply().await.unwrap();
    assert!(out.report.is_complete());
    assert_eq!(
        metrics.snapshot().calls(Operation::Preflight),
        1,
        "one preflight for the plan that creates the cluster"
    );

    let o = c.observe().await.unwrap();
    assert_eq!(o.groups.len(), 4);
    assert_eq!(o.instances.len(), 6);
    assert_eq!(o.volumes.len(), 2);
    assert_eq!(o.floating_ips.len(), 1);
    assert_eq!(o.load_balancers.len(), 2);
    // Even spread: one node per AZ, storage nodes in two different AZs.
    let spread = by_role_az(&o);
    for az in ["az-1", "az-2", "az-3"] {
        assert_eq!(spread[&("node".to_string(), az.to_string())], 1);
    }
    assert_eq!(spread[&("master".to_string(), "az-1".to_string())], 1);
    assert_eq!(spread[&("storage".to_string(), "az-1".to_string())], 1);
    assert_eq!(spread[&("storage".to_string(), "az-2".to_string())], 1);
    // Volumes attached to their storage nodes, in their AZ.
    for v in &o.volumes {
        let att = v.attachment.as_ref().expect("attached");
        let inst = o
            .instances
            .iter()
            .find(|i| i.id == att.instance_id)
            .unwrap();
        assert_eq!(format!("{}-data", inst.name), v.name);
        assert_eq!(inst.availability_zone, v.availability_zone);
    }
    // The master's floating IP, and the LBs' members.
    let master = o
        .instances
        .iter()
        .find(|i| i.name == "seed-master-0")
        .unwrap();
    assert_eq!(
        o.floating_ips[0].instance_id.as_deref(),
        Some(master.id.as_str())
    );
    let ingress = o
        .load_balancers
        .iter()
        .find(|l| l.name == "seed-ingress")
        .unwrap();
    assert_eq!(ingress.listeners[0].port, 8080);
    assert_eq!(ingress.listeners[0].pool.members.len(), 3);
    let api = o
        .load_balancers
        .iter()
        .find(|l| l.name == "seed-api")
        .unwrap();
    assert_eq!(api.listeners[0].pool.members[0].instance_id, master.id);

    // Second run: nothing planned, and no create of any kind reaches the provider; the
    // only writes are the lease's (taken and released on the base group).
    let plan = c.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    metrics.reset();
    let out = c.apply().await.unwrap();
    assert!(out.plan.is_empty());
    let snap = metrics.snapshot();
    for op in CREATES {
        assert_eq!(snap.calls(op), 0, "{op} called on the second apply");
    }
    assert_eq!(
        snap.calls(Operation::UpdateTags),
        2,
        "lease write and release"
    );
    assert_eq!(
        snap.total_calls(),
        snap.calls(Operation::UpdateTags)
            + snap.calls(Operation::GetSecurityGroup)
            + snap.calls(Operation::ListAvailabilityZones)
            + snap.calls(Operation::ListSecurityGroups)
            + snap.calls(Operation::ListInstances)
            + snap.calls(Operation::ListVolumes)
            + snap.calls(Operation::ListFloatingIps)
            + snap.calls(Operation::ListLoadBalancers)
            + snap.calls(Operation::Preflight)
    );
    assert_eq!(
        snap.calls(Operation::Preflight),
        0,
        "a plan with nothing to create needs no preflight"
    );

    // Status reports the same picture.
    let st = c.status().await.unwrap();
    assert_eq!(st.nodes.len(), 6);
    assert!(st.nodes.iter().all(|n| n.wanted && !n.stale));
    assert_eq!(st.nodes[0].name, "seed-master-0");
    assert!(st.missing.is_empty());
    assert_eq!(st.load_balancers.len(), 2);
}

#[tokio::test]
async fn destroy_removes_everything_tagged_and_nothing_else() {
    let (mem, _metrics, p) = common::counted();
    let keep = common::cluster(common::memory_spec("keep", 1, 3, 1), p.clone());
    keep.apply().await.unwrap();
    let doomed = common::cluster(common::memory_spec("doomed", 3, 3, 2), p.clone());
    doomed.apply().await.unwrap();
    let kept_before = keep.observe().await.unwrap();

    // The destroy plan runs in reverse dependency order.
    let plan = doomed.plan_destroy().await.unwrap();
    let observed = plan.observed();
    let pos = |f: &dyn Fn(&Action) -> bool| {
        plan.actions
            .iter()
            .filter(|a| f(&a.action))
            .map(|a| a.id)
            .collect::<Vec<_>>()
    };
    let closure = |a: &PlannedAction| {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = a.deps.clone();
        while let Some(d) = stack.pop() {
            if seen.insert(d) {
                stack.extend(plan.actions[d].deps.iter().copied());
            }
        }
        seen
    };
    for a in &plan.actions {
        let before = closure(a);
        match &a.action {
            Action::DeleteInstance { name, .. } if !name.contains("-storage-") => {
                // Its LB is gone first.
                assert!(pos(&|x| matches!(x, Action::DeleteLoadBalancer { .. }))
                    .iter()
                    .any(|l| before.contains(l)));
            }
            Action::DeleteVolume { .. } => {
                assert!(pos(&|x| matches!(x, Action::DetachVolume { .. }))
                    .iter()
                    .any(|d| before.contains(d)));
            }
            Action::DeleteSecurityGroup { id: gid, name } => {
                // After every instance and LB that uses it.
                for d in &plan.actions {
                    let uses = match &d.action {
                        Action::DeleteInstance { id, .. } => observed
                            .instances
                            .iter()
                            .any(|i| &i.id == id && i.security_groups.contains(gid)),
                        Action::DeleteLoadBalancer { id, .. } => observed
                            .load_balancers
                            .iter()
                            .any(|l| &l.id == id && l.security_groups.contains(gid)),
                        _ => false,
                    };
                    assert!(
                        !uses || before.contains(&d.id),
                        "{name} before {}",
                        d.action
                    );
                }
            }
            _ => {}
        }
    }
    doomed.destroy().await.unwrap();

    // Nothing carries the doomed tag...
    let gone = Observed::fetch(p.as_ref(), "doomed").await.unwrap();
    assert!(gone.is_empty(), "{gone:?}");
    // ...the other cluster is untouched, and nothing untagged was left behind.
    assert_eq!(keep.observe().await.unwrap(), kept_before);
    let all = TagFilter::all();
    assert_eq!(
        mem.list_instances(&all).await.unwrap().len(),
        kept_before.instances.len()
    );
    assert_eq!(
        mem.list_volumes(&all).await.unwrap().len(),
        kept_before.volumes.len()
    );
    assert_eq!(
        mem.list_security_groups(&all).await.unwrap().len(),
        kept_before.groups.len()
    );
    // Destroying again is a no-op.
    let again = doomed.destroy().await.unwrap();
    assert!(again.report.done.is_empty());
}

#[tokio::test]
async fn scaling_down_keeps_the_spread_and_the_data_volumes() {
    let (_mem, _m, p) = common::counted();
    common::cluster(common::memory_spec("sc", 1, 6, 3), p.clone())
        .apply()
        .await
        .unwrap();
    let smaller = common::cluster(common::memory_spec("sc", 1, 3, 2), p.clone());
    let plan = smaller.plan().await.unwrap();
    // Nodes leave the ingress LB before they are deleted.
    for a in &plan.actions {
        if let Action::DeleteInstance { id, name } = &a.action {
            if name.contains("-node-") {
                assert!(
                    a.deps.iter().any(|d| matches!(&plan.actions[*d].action,
                    Action::RemoveLoadBalancerMember { member, .. } if &member.instance_id == id)),
                    "{name}"
                );
            }
        }
    }
    smaller.apply().await.unwrap();
    let o = smaller.observe().await.unwrap();
    assert_eq!(o.instances.len(), 6);
    let spread = by_role_az(&o);
    for az in ["az-1", "az-2", "az-3"] {
        assert_eq!(spread[&("node".to_string(), az.to_string())], 1);
    }
    // apply never deletes a data volume: the third storage node's stays, detached.
    assert_eq!(o.volumes.len(), 3);
    let orphan = o
        .volumes
        .iter()
        .find(|v| v.name == "sc-storage-2-data")
        .unwrap();
    assert!(orphan.attachment.is_none());
    assert!(smaller.plan().await.unwrap().is_empty());
    // Scaling back up reattaches it to the new node of the same name.
    let bigger = common::cluster(common::memory_spec("sc", 1, 6, 3), p.clone());
    bigger.apply().await.unwrap();
    let o = bigger.observe().await.unwrap();
    assert_eq!(o.volumes.len(), 3);
    assert!(o.volumes.iter().all(|v| v.attachment.is_some()));
}

/// Stops the run after `n` actions finished, as a first Ctrl-C would.
struct StopAfter(usize, AtomicUsize, Arc<std::sync::atomic::AtomicBool>);

impl Observer for StopAfter {
    fn finished(&self, _a: &PlannedAction, _e: Option<&Error>) {
        if self.1.fetch_add(1, Ordering::SeqCst) + 1 >= self.0 {
            self.2.store(true, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn a_stopped_apply_resumes_to_the_same_state() {
    let (_mem, _m, p) = common::counted();
    let spec = common::memory_spec("resume", 3, 3, 2);
    let total = common::cluster(spec.clone(), p.clone())
        .plan()
        .await
        .unwrap()
        .actions
        .len();
    // The lease creates the base group before the plan runs, so a run's plan has one
    // action fewer than this one.
    for n in [1, total / 3, total / 2, total - 2] {
        let name = format!("resume-{n}");
        let mut spec = spec.clone();
        spec.name = name.clone();
        let mut opts = common::options();
        let stop = opts.stop.clone();
        opts.concurrency = 1;
        let err = cluster::Cluster::new(spec.clone(), p.clone())
            .with_options(opts)
            .with_observer(Arc::new(StopAfter(n, AtomicUsize::new(0), stop)))
            .apply()
            .await
            .unwrap_err();
        let Error::Incomplete(report) = err else {
            panic!("{err}")
        };
        assert!(report.stopped);
        assert_eq!(report.done.len(), n);
        assert!(!report.not_started.is_empty());
        assert!(report.to_string().contains("run the same command again"));
        let c = common::cluster(spec, p.clone());
        c.apply().await.unwrap();
        assert!(c.plan().await.unwrap().is_empty());
        let o = c.observe().await.unwrap();
        assert_eq!(
            (
                o.groups.len(),
                o.instances.len(),
                o.volumes.len(),
                o.floating_ips.len(),
                o.load_balancers.len()
            ),
            (4, 8, 2, 3, 2)
        );
    }
}

#[tokio::test]
async fn retryable_faults_are_retried_and_converge() {
    let mem: Arc<dyn Provider> = Arc::new(provider_core::memory::MemoryProvider::default());
    let mut plan = FaultPlan::seeded(7);
    plan.error_rate = 0.15;
    plan.lost_reply_rate = 0.1;
    let faulty: Arc<dyn Provider> = Arc::new(Layered::new(mem.clone(), FaultInjecting::new(plan)));
    let mut opts = common::options();
    opts.retry = provider_core::layer::Retry::fast(12);
    let c = cluster::Cluster::new(common::memory_spec("flaky", 1, 3, 2), faulty).with_options(opts);
    c.apply().await.unwrap();
    let clean = common::cluster(common::memory_spec("flaky", 1, 3, 2), mem);
    assert!(clean.plan().await.unwrap().is_empty());
    let o = clean.observe().await.unwrap();
    assert_eq!(o.instances.len(), 6);
}

#[tokio::test]
async fn a_hard_failure_stops_with_a_report() {
    let (_mem, _m, p) = common::counted();
    let spec = common::memory_spec("hard", 1, 3, 0);
    let mut opts = common::options();
    opts.concurrency = 1;
    let c = cluster::Cluster::new(spec, p).with_options(opts);
    // The preflight refuses an unknown image before anything is created; a plan that
    // passed it meets one the cloud refuses at run time (as when an image is removed
    // between plan and apply).
    let mut plan = c.plan().await.unwrap();
    for a in &mut plan.actions {
        if let cluster::plan::Action::CreateInstances { instances } = &mut a.action {
            for i in instances
                .iter_mut()
                .filter(|i| i.name.starts_with("hard-node"))
            {
                i.image = "no-such-image".into();
            }
        }
    }
    let err = c.run(plan).await.unwrap_err();
    let Error::Incomplete(report) = err else {
        panic!("{err}")
    };
    assert_eq!(report.failed.len(), 1, "{report}");
    assert!(
        report.failed[0]
            .description
            .starts_with("create instances hard-node-0"),
        "{report}"
    );
    // The ingress LB waited for the nodes and was never started.
    assert!(report.not_started.iter().any(|a| a
        .description
        .starts_with("create load balancer hard-ingress")));
    assert!(report
        .done
        .iter()
        .any(|a| a.description.starts_with("create security group")));
}

#[tokio::test]
async fn unknown_zone_is_a_plan_error_naming_the_key() {
    let (_mem, _m, p) = common::counted();
    let mut spec = common::memory_spec("z", 1, 3, 0);
    spec.availability_zones = vec!["az-1".into(), "az-9".into(), "az-3".into()];
    let err = common::cluster(spec, p).plan().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 problem with what the spec names on the cloud (nothing was created):\n  Local.AvailabilityZones: no availability zone with id or name `az-9`; availability zones: az-1, az-2, az-3"
    );
}
