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
