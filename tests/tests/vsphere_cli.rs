//! `plinth` on vSphere end to end, against the simulator of `emulators/vsphere`:
//! examples/vsphere.properties (1 master, 3 nodes, 2 storage nodes with data volumes,
//! over the 3 compute clusters DC0_C0..C2, `LoadBalancer = external`) is loaded from a
//! file and opened on provider-vsphere exactly as `plinth` maps its `VSphere.*`
//! settings; then plan, apply, apply again (no-op), status and destroy, and the
//! provider is asked for anything left with the cluster's tag. Two more check that
//! without `LoadBalancer = external`, or without `SecurityGroups = external` (vSphere only
//! records security groups), apply refuses before creating anything; and one that a
//! cluster, datastore and network the vCenter lacks are reported at once.
//!
//! The connection comes from the environment (`eval "$(emulators/vsphere/env.sh)"`):
//! `VSPHERE_URL`, `VSPHERE_USERNAME`, `VSPHERE_PASSWORD`, `VSPHERE_CA_CERT_FILE`.
//! Without `VSPHERE_URL` the tests print why they are skipped; under `CI` they fail.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cluster::spec::{LoadBalancerMode, SecurityGroupsMode};
use cluster::{Cluster, ClusterSpec, Error, Observed};
use provider_core::layer::{Instrumented, Layered};
use provider_core::ProviderExt;
use provider_core::{InstanceState, Operation, Provider, TagFilter};
use provider_vsphere::VSphereBuilder;
use tests::examples_dir;

/// `None` (after saying why) when the simulator is not configured; panics under `CI`.
fn simulator() -> Option<()> {
    if std::env::var("VSPHERE_URL").is_ok() {
        return Some(());
    }
    if std::env::var_os("CI").is_some() {
        panic!("vSphere simulator not running (set VSPHERE_URL): CI must start emulators/vsphere");
    }
    eprintln!("skipped: vSphere simulator not running (set VSPHERE_URL)");
    None
}

/// examples/vsphere.properties with the connection from the environment and its own
/// cluster name (so parallel runs and leftovers of other tests never collide), and
/// without the keys in `without`.
fn spec_text(cluster: &str, without: &[&str]) -> String {
    let text = std::fs::read_to_string(examples_dir().join("vsphere.properties")).unwrap();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    text.lines()
        .filter_map(|line| {
            let key = line.split('=').next().unwrap_or("").trim();
            let value = match key {
                "ClusterName" => Some(cluster.to_string()),
                k if without.contains(&k) => return None,
                "VSphere.URL" => env("VSPHERE_URL"),
                "VSphere.Username" => env("VSPHERE_USERNAME"),
                "VSphere.Password" => env("VSPHERE_PASSWORD"),
                "VSphere.CACertFile" => env("VSPHERE_CA_CERT_FILE"),
                _ => None,
            };
            Some(match value {
                Some(v) => format!("{key} = {v}"),
                None => line.to_string(),
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the spec to a file and loads it, as `plinth -i FILE` does.
fn load(dir: &Path, cluster: &str, without: &[&str]) -> ClusterSpec {
    let path = dir.join(format!("{cluster}.properties"));
    std::fs::write(&path, spec_text(cluster, without)).unwrap();
    ClusterSpec::load(&path).expect("the example spec is valid")
}

/// provider-vsphere from the spec, as `cluster::cloud::open` builds it (kept concrete
/// here to count its vim25 requests).
async fn open(spec: &ClusterSpec) -> provider_vsphere::VSphereProvider {
    spec.provider_config
        .configure(VSphereBuilder::from_env())
        .expect("the spec's VSphere keys")
        .build()
        .await
        .expect("provider-vsphere from the spec")
}

/// How many resources the provider still holds with the cluster's tag.
async fn tagged(p: &dyn Provider, cluster: &str) -> (usize, usize, usize) {
    let owned = TagFilter::new(cluster::plan::TAG_CLUSTER, cluster.to_string());
    (
        p.list_instances(&owned).await.unwrap().len(),
        p.list_volumes(&owned).await.unwrap().len(),
        p.list_security_groups(&owned).await.unwrap().len(),
    )
}

/// Destroys the cluster even when an assertion fails halfway.
struct Cleanup(Cluster);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let c = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let _ = c.destroy().await;
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsphere_example_apply_status_destroy() {
    if simulator().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("vs-e2e-{}", std::process::id());
    let spec = load(dir.path(), &name, &[]);
    assert_eq!(spec.load_balancer_mode, LoadBalancerMode::External);
    assert_eq!(spec.availability_zones, ["DC0_C0", "DC0_C1", "DC0_C2"]);
    let vs = Arc::new(open(&spec).await);
    let metrics = Instrumented::new();
    let p: Arc<dyn Provider> = Arc::new(Layered::new(
        vs.clone() as Arc<dyn Provider>,
        metrics.clone(),
    ));
    let c = Cluster::new(spec.clone(), p.clone());
    let _cleanup = Cleanup(c.clone());

    // Plan: runnable, says the LB is external, creates no LB.
    let plan = c.plan().await.expect("plan");
    assert!(plan.blockers.is_empty(), "{plan}");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("LoadBalancer = external") && w.contains("has none")),
        "{plan}"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("SecurityGroups = external") && w.contains("only records")),
        "{plan}"
    );
    assert!(
        !plan.to_string().contains("load balancer "),
        "no LB is planned: {plan}"
    );

    // Apply.
    let t = Instant::now();
    let before = vs.api_requests();
    let out = c.apply().await.expect("apply");
    let apply_time = t.elapsed();
    let apply_calls = vs.api_requests() - before;
    assert!(out.report.is_complete());
    let snap = metrics.snapshot();
    assert_eq!(snap.calls(Operation::CreateLoadBalancer), 0);

    // Status: 6 nodes running, spread over the 3 clusters, storage nodes with a volume.
    let t = Instant::now();
    let st = c.status().await.expect("status");
    let status_time = t.elapsed();
    assert_eq!(st.nodes.len(), 6, "{st:?}");
    assert!(st.missing.is_empty(), "{st:?}");
    assert!(
        st.nodes.iter().all(|n| n.state == InstanceState::Running),
        "{st:?}"
    );
    assert_eq!(
        st.spread["node"].values().copied().collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert_eq!(st.spread["master"].len(), 1);
    assert_eq!(
        st.spread["storage"].keys().cloned().collect::<Vec<_>>(),
        ["DC0_C0", "DC0_C1"]
    );
    assert!(st
        .nodes
        .iter()
        .filter(|n| n.role == "storage")
        .all(|n| n.volumes.len() == 1));
    assert!(st.load_balancers.is_empty());
    let created = tagged(p.as_ref(), &name).await;
    assert_eq!(
        (created.0, created.1),
        (6, 2),
        "6 VMs and 2 data volumes tagged with the cluster"
    );
    assert!(
        created.2 >= 1,
        "the security groups are records: {created:?}"
    );

    // Apply again: nothing planned, nothing created.
    metrics.reset();
    let again = c.apply().await.expect("second apply");
    assert!(again.plan.is_empty(), "{}", again.plan);
    let snap = metrics.snapshot();
    for op in [
        Operation::CreateSecurityGroup,
        Operation::CreateInstance,
        Operation::CreateInstances,
        Operation::CreateVolume,
        Operation::AttachVolume,
    ] {
        assert_eq!(snap.calls(op), 0, "{op}");
    }

    // Destroy leaves nothing tagged with the cluster.
    let t = Instant::now();
    c.destroy().await.expect("destroy");
    let destroy_time = t.elapsed();
    assert_eq!(tagged(p.as_ref(), &name).await, (0, 0, 0));
    let left = Observed::fetch(p.as_ref(), &name).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    eprintln!(
        "vsphere e2e: {} instances, {} volumes, {} security groups; apply {:?} ({} vim25/HTTP requests), status {:?}, destroy {:?}",
        created.0, created.1, created.2, apply_time, apply_calls, status_time, destroy_time
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsphere_without_external_lb_is_refused_before_anything_is_created() {
    if simulator().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("vs-nolb-{}", std::process::id());
    let spec = load(dir.path(), &name, &["LoadBalancer"]);
    assert_eq!(spec.load_balancer_mode, LoadBalancerMode::Provider);
    let p: Arc<dyn Provider> = Arc::new(open(&spec).await);
    let c = Cluster::new(spec, p.clone());
    let _cleanup = Cleanup(c.clone());

    let plan = c.plan().await.expect("plan");
    assert!(
        plan.blockers
            .iter()
            .any(|b| b.contains("set LoadBalancer = external")),
        "{plan}"
    );
    match c.apply().await {
        Err(Error::Blocked(reasons)) => assert!(
            reasons.iter().any(|r| r.contains("no load balancers")),
            "{reasons:?}"
        ),
        other => panic!("apply must refuse: {other:?}"),
    }
    assert_eq!(tagged(p.as_ref(), &name).await, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsphere_without_secured_network_is_refused_before_anything_is_created() {
    if simulator().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("vs-nosg-{}", std::process::id());
    let spec = load(dir.path(), &name, &["SecurityGroups"]);
    assert_eq!(spec.security_groups_mode, SecurityGroupsMode::Provider);
    let p: Arc<dyn Provider> = Arc::new(open(&spec).await);
    assert!(!p.capabilities().security_groups_enforced);
    let c = Cluster::new(spec, p.clone());
    let _cleanup = Cleanup(c.clone());

    let plan = c.plan().await.expect("plan");
    let why = plan
        .blockers
        .iter()
        .find(|b| b.contains("only records security groups"))
        .unwrap_or_else(|| panic!("no blocker about security groups: {plan}"));
    assert!(why.contains("set SecurityGroups = external in"), "{why}");
    assert!(why.contains("SSH only from 10.1.1.4/32"), "{why}");
    match c.apply().await {
        Err(Error::Blocked(reasons)) => assert!(
            reasons
                .iter()
                .any(|r| r.contains("SecurityGroups = external")),
            "{reasons:?}"
        ),
        other => panic!("apply must refuse: {other:?}"),
    }
    assert_eq!(tagged(p.as_ref(), &name).await, (0, 0, 0));
}

/// A spec naming a cluster, datastore and network the vCenter lacks: `plan` reports
/// all three at once, each with its key (the CLI exits 2 on it), and `apply` refuses
/// the same way with nothing created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsphere_names_the_vcenter_lacks_are_reported_at_once() {
    if simulator().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("vs-pf-{}", std::process::id());
    let text: String = spec_text(&name, &[])
        .lines()
        .map(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            let value = match key {
                "VSphere.Clusters" => "DC0_C0,DC0_C1,DC0_C9",
                "VSphere.Datastore" => "NoSuchDatastore",
                "VSphere.Network" => "No Such Network",
                _ => return format!("{l}\n"),
            };
            format!("{key} = {value}\n")
        })
        .collect();
    let path = dir.path().join("pf.properties");
    std::fs::write(&path, text).unwrap();
    let spec = ClusterSpec::load(&path).expect("the spec parses");
    let p: Arc<dyn Provider> = Arc::new(open(&spec).await);
    let c = Cluster::new(spec, p.clone());
    for verb in ["plan", "apply"] {
        let e = match verb {
            "plan" => c.plan().await.map(|_| ()),
            _ => c.apply().await.map(|_| ()),
        };
        let Err(Error::Preflight(problems)) = e else {
            panic!("{verb} must refuse with the preflight: {e:?}");
        };
        let shown: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{verb}: {shown:#?}");
        for (i, want) in [
            "VSphere.Clusters: no cluster \"DC0_C9\" in datacenter DC0: use some of DC0_C0, DC0_C1, DC0_C2",
            "VSphere.Datastore: no datastore \"NoSuchDatastore\": use one of LocalDS_0",
            "VSphere.Network: no network \"No Such Network\": use one of ",
        ]
        .into_iter()
        .enumerate()
        {
            assert!(shown[i].starts_with(want), "{verb}: {want}\n{shown:#?}");
        }
    }
    // Listed through a provider on the example's (existing) names.
    let good = open(&load(dir.path(), &name, &[])).await;
    assert_eq!(tagged(&good, &name).await, (0, 0, 0));
}
