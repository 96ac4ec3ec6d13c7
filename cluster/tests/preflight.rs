//! The preflight: what the spec names is checked against the cloud before anything is
//! created; every problem at once, each naming its key; `apply` creates nothing.

mod common;

use std::sync::Arc;

use cluster::{ClusterSpec, Error};
use common::{cluster, memory_spec_text};
use provider_core::memory::{MemoryConfig, MemoryProvider};
use provider_core::prelude::*;
use provider_core::TagFilter;

/// Everything the memory cloud holds, tagged or not.
async fn everything(p: &dyn Provider) -> usize {
    let all = TagFilter::all();
    p.list_security_groups(&all).await.unwrap().len()
        + p.list_instances(&all).await.unwrap().len()
        + p.list_volumes(&all).await.unwrap().len()
        + p.list_floating_ips(&all).await.unwrap().len()
        + p.list_load_balancers(&all).await.unwrap().len()
}

fn problems(e: Error) -> Vec<provider_core::Problem> {
    match e {
        Error::Preflight(p) => p.0,
        other => panic!("expected a preflight refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn every_wrong_reference_is_reported_at_once_and_apply_creates_nothing() {
    let text = memory_spec_text("pf", 3, 3, 3)
        .replace("Local.Image = linux", "Local.Image = nosuch-image")
        .replace(
            "Local.AvailabilityZones = az-1,az-2,az-3",
            "Local.AvailabilityZones = az-1,az-9,az-3",
        )
        .replace(
            "Local.FloatingIPPool = public",
            "Local.FloatingIPPool = nopool",
        )
        + "Local.NodeFlavor = huge\n";
    let spec = ClusterSpec::parse("pf.properties", &text).unwrap();
    let memory: Arc<dyn Provider> = Arc::new(MemoryProvider::default());
    let c = cluster(spec, memory.clone());

    let found = problems(c.plan().await.unwrap_err());
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Local.AvailabilityZones",
            "Local.Image",
            "Local.NodeFlavor",
            "Local.FloatingIPPool"
        ],
        "{found:?}"
    );
    let all: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        all[0].contains(
            "no availability zone with id or name `az-9`; availability zones: az-1, az-2, az-3"
        ),
        "{all:?}"
    );
    assert!(
        all[1].contains("no image with id or name `nosuch-image`; images: linux"),
        "{all:?}"
    );
    assert!(
        all[2].contains("`huge`; flavors: large, medium, small"),
        "{all:?}"
    );
    assert!(all[3].contains("floating IP pools: public"), "{all:?}");
    // The error lists them all, one a line.
    let shown = Error::Preflight(cluster::preflight::Problems(found.clone())).to_string();
    assert!(
        shown.starts_with("4 problems with what the spec names on the cloud"),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 5, "{shown}");

    let e = c.apply().await.unwrap_err();
    assert_eq!(problems(e), found);
    assert_eq!(
        everything(memory.as_ref()).await,
        0,
        "apply created something"
    );
}

#[tokio::test]
async fn a_plan_beyond_the_instance_quota_says_by_how_much() {
    let memory = Arc::new(MemoryProvider::new(MemoryConfig {
        max_instances: Some(4),
        ..MemoryConfig::default()
    }));
    let p: Arc<dyn Provider> = memory.clone();
    // 1 master fits; then 1 + 3 + 3 = 7 would not.
    let small = ClusterSpec::parse("q.properties", &memory_spec_text("q", 1, 0, 0)).unwrap();
    cluster(small, p.clone()).apply().await.unwrap();
    let before = everything(p.as_ref()).await;

    let big = ClusterSpec::parse("q.properties", &memory_spec_text("q", 1, 3, 3)).unwrap();
    let c = cluster(big, p.clone());
    let found = problems(c.plan().await.unwrap_err());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "quota");
    assert!(
        found[0]
            .message
            .starts_with("instances: the plan needs 6 more, the project has 3 left of 4 (3 short)"),
        "{}",
        found[0]
    );
    problems(c.apply().await.unwrap_err());
    assert_eq!(
        everything(p.as_ref()).await,
        before,
        "apply created something"
    );
}

#[tokio::test]
async fn a_scale_up_beyond_the_quota_is_refused_before_anything_is_created() {
    let memory = Arc::new(MemoryProvider::new(MemoryConfig {
        max_instances: Some(5),
        ..MemoryConfig::default()
    }));
    let p: Arc<dyn Provider> = memory.clone();
    let spec = ClusterSpec::parse("q.properties", &memory_spec_text("q", 1, 3, 0)).unwrap();
    let c = cluster(spec, p.clone());
    c.apply().await.unwrap();
    let before = everything(p.as_ref()).await;
    // 4 instances run; 3 more nodes do not fit in the 1 left.
    let found = problems(
        c.scale(cluster::Role::Node, 6, &Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "quota");
    assert!(
        found[0]
            .message
            .starts_with("instances: the plan needs 3 more, the project has 1 left of 5 (2 short)"),
        "{}",
        found[0]
    );
    assert_eq!(
        everything(p.as_ref()).await,
        before,
        "the refused scale created something"
    );
    // What fits goes ahead.
    let report = c
        .scale(cluster::Role::Node, 4, &Default::default())
        .await
        .unwrap();
    assert_eq!((report.from, report.to, report.added.len()), (3, 4, 1));
}

#[tokio::test]
async fn a_spec_that_fits_plans_as_before() {
    let spec = ClusterSpec::parse("ok.properties", &memory_spec_text("ok", 3, 3, 3)).unwrap();
    let c = cluster(spec, Arc::new(MemoryProvider::default()));
    let plan = c.plan().await.unwrap();
    assert!(!plan.is_empty());
}

#[cfg(feature = "openstack")]
#[test]
fn a_keypair_file_without_a_keypair_is_reported_as_ignored() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/openstack.properties"),
    )
    .unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("OpenStack.Keypair"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + "OpenStack.KeypairFile = /home/me/key\n";
    let spec = ClusterSpec::parse("os.properties", &text).unwrap();
    assert_eq!(spec.ignored_keys.len(), 1, "{:?}", spec.ignored_keys);
    assert!(spec.ignored_keys[0].starts_with("OpenStack.KeypairFile is ignored"));
    let desired = cluster::Desired::from_spec(
        &spec,
        &spec.availability_zones,
        &provider_core::Capabilities::new(10),
        provider_core::Family::ALL,
    );
    assert!(desired
        .warnings
        .iter()
        .any(|w| w.starts_with("OpenStack.KeypairFile is ignored")));
}

/// A replacement is checked before any node is marked: its successors' quota (the most
/// that exist next to their old nodes at once) and the spec's references (a delete-first
/// run must not take a node down to find the image gone).
#[tokio::test]
async fn a_replacement_is_checked_before_any_node_is_marked() {
    use cluster::replace::ReplaceOptions;
    use cluster::{Role, Selector};
    use common::rolling::{quick, snapshot, spec};

    let memory = Arc::new(MemoryProvider::new(MemoryConfig {
        max_instances: Some(5),
        transition: std::time::Duration::from_millis(1),
        ..MemoryConfig::default()
    }));
    let p: Arc<dyn Provider> = memory.clone();
    let c = common::rolling::cluster(spec("rq", 1, 3, 0), p.clone());
    c.apply().await.unwrap();
    let before = snapshot(p.as_ref()).await;

    // 4 run, 1 left: two node successors at once do not fit.
    let surge2 = ReplaceOptions {
        max_surge: 2,
        ..quick()
    };
    let found = problems(
        c.replace(&Selector::Role(Role::Node), &surge2)
            .await
            .unwrap_err(),
    );
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["quota", "max_surge"], "{found:?}");
    assert!(
        found[0]
            .message
            .starts_with("instances: the plan needs 2 more, the project has 1 left of 5 (1 short)"),
        "{}",
        found[0]
    );
    assert!(found[1].message.contains("--max-surge 0"), "{}", found[1]);
    assert_eq!(
        snapshot(p.as_ref()).await,
        before,
        "the refused replace marked or made something"
    );

    // The image gone from the spec: even delete-first is refused before a node goes.
    let text =
        memory_spec_text("rq", 1, 3, 0).replace("Local.Image = linux", "Local.Image = gone-image");
    let changed = ClusterSpec::parse("rq.properties", &text).unwrap();
    let delete_first = ReplaceOptions {
        max_surge: 0,
        max_unavailable: 1,
        ..quick()
    };
    let found = problems(
        common::rolling::cluster(changed, p.clone())
            .replace(&Selector::Role(Role::Node), &delete_first)
            .await
            .unwrap_err(),
    );
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["Local.Image"], "{found:?}");
    assert_eq!(
        snapshot(p.as_ref()).await,
        before,
        "a node went although the image is gone"
    );

    // One at a time fits; and delete-first needs no room at all (the quota is full).
    let report = c
        .replace(&Selector::Role(Role::Node), &quick())
        .await
        .unwrap();
    assert_eq!(report.replaced.len(), 3, "{report}");
    c.apply().await.unwrap();
    let full = ClusterSpec::parse("q.properties", &memory_spec_text("q", 1, 0, 0)).unwrap();
    common::cluster(full, p.clone()).apply().await.unwrap();
    let again = ReplaceOptions {
        again: true,
        ..delete_first
    };
    let report = c
        .replace(&Selector::Role(Role::Node), &again)
        .await
        .unwrap();
    assert_eq!(report.replaced.len(), 3, "{report}");
}

/// The demand of a first plan counts every new rule (in new groups and added to them)
/// and every listener, for the clouds that meter them (Neutron, Octavia).
#[tokio::test]
async fn the_demand_counts_rules_and_listeners() {
    let spec = ClusterSpec::parse("d.properties", &memory_spec_text("d", 1, 3, 0)).unwrap();
    let c = cluster(spec.clone(), Arc::new(MemoryProvider::default()));
    let plan = c.plan().await.unwrap();
    let d = cluster::preflight::demand(&spec, &plan);
    assert_eq!((d.load_balancers, d.listeners), (2, 2), "{d:?}");
    // base (SSH from the jumpbox), lb (its two ports), master, node; then the base group
    // opens to itself and each role to the LB group.
    assert_eq!(
        (d.security_groups, d.security_group_rules),
        (4, 3 + 3),
        "{d:?}"
    );
}
