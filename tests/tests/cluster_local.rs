//! The main job end to end on provider-local: apply examples/local.properties, see the
//! ingress LB answer with each node in turn, status, apply again (no-op), destroy.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cluster::{Cluster, ClusterSpec, Observed};
use provider_core::layer::{Instrumented, Layered};
use provider_core::ProviderExt;
use provider_core::{InstanceState, Operation, Provider, TagFilter};
use provider_local::{LocalConfig, LocalProvider};
use tests::{examples_dir, http_get, instance_name, local_helper};

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
async fn local_example_end_to_end() {
    let spec = ClusterSpec::load(&examples_dir().join("local.properties")).expect("example");
    let state = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::with_state_dir(state.path().join("cloud"));
    config.availability_zones = spec.availability_zones.clone();
    config.helper = Some(local_helper().expect("plinth-local helper"));
    let local = Arc::new(
        LocalProvider::open(config)
            .await
            .expect("open provider-local"),
    );
    let metrics = Instrumented::new();
    let p: Arc<dyn Provider> = Arc::new(Layered::new(local.clone(), metrics.clone()));
    let c = Cluster::new(spec.clone(), p.clone());
    let _cleanup = Cleanup(c.clone());

    // Apply brings the seed's topology up for real.
    let out = c.apply().await.expect("apply");
    assert!(out.report.is_complete());
    let st = c.status().await.unwrap();
    assert_eq!(st.nodes.len(), 6);
    assert!(
        st.nodes.iter().all(|n| n.state == InstanceState::Running),
        "{st:?}"
    );
    assert_eq!(
        st.spread["node"].values().copied().collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert_eq!(st.spread["master"].len(), 1);
    assert_eq!(st.spread["storage"].len(), 2);
    assert!(st
        .nodes
        .iter()
        .filter(|n| n.role == "storage")
        .all(|n| n.volumes.len() == 1));
    let master = st.nodes.iter().find(|n| n.role == "master").unwrap();
    assert!(master.public_ip.is_some(), "the master's floating IP");

    // The ingress LB answers with the node ids in turn.
    let ingress = st
        .load_balancers
        .iter()
        .find(|l| l.name == "plinth-local-ingress")
        .expect("ingress LB");
    let addr = format!("{}:8080", ingress.address.clone().expect("LB address"));
    let nodes: BTreeSet<String> = st
        .nodes
        .iter()
        .filter(|n| n.role == "node")
        .map(|n| n.name.clone())
        .collect();
    let mut answers = Vec::new();
    for _ in 0..60 {
        if let Ok(body) = http_get(&addr).await {
            if let Some(n) = instance_name(&body) {
                answers.push(n.to_string());
            }
        }
        if answers.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: BTreeSet<String> = answers.iter().cloned().collect();
    assert_eq!(seen, nodes, "answers: {answers:?}");
    // Round robin: consecutive answers come from different nodes.
    assert!(answers.windows(2).all(|w| w[0] != w[1]), "{answers:?}");

    // The API LB reaches the master.
    let api = st
        .load_balancers
        .iter()
        .find(|l| l.name == "plinth-local-api")
        .unwrap();
    let body = http_get(&format!("{}:6443", api.address.clone().unwrap()))
        .await
        .unwrap();
    assert_eq!(instance_name(&body), Some("plinth-local-master-0"));

    // Apply twice: nothing planned and no create reaches the cloud.
    metrics.reset();
    let again = c.apply().await.unwrap();
    assert!(again.plan.is_empty(), "{}", again.plan);
    let snap = metrics.snapshot();
    for op in [
        Operation::CreateSecurityGroup,
        Operation::CreateInstance,
        Operation::CreateInstances,
        Operation::CreateVolume,
        Operation::AllocateFloatingIp,
        Operation::CreateLoadBalancer,
        Operation::AttachVolume,
    ] {
        assert_eq!(snap.calls(op), 0, "{op}");
    }

    // Destroy leaves nothing with the cluster tag, and nothing at all in this cloud.
    c.destroy().await.expect("destroy");
    let left = Observed::fetch(p.as_ref(), &spec.name).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(local
        .list_instances(&TagFilter::all())
        .await
        .unwrap()
        .is_empty());
    assert!(local
        .list_volumes(&TagFilter::all())
        .await
        .unwrap()
        .is_empty());
    assert!(local
        .list_load_balancers(&TagFilter::all())
        .await
        .unwrap()
        .is_empty());
}
