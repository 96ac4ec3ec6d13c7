//! The seed's layout (examples/local-seed.toml) on provider-local: floating IPs on the
//! master and every worker node, a volume on the master and on each storage node, three
//! load balancers on 443 in front of the nodes, checked with the local cloud's own
//! listing (everything it holds, whatever the tags); each LB serves; destroy leaves
//! nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cluster::{Cluster, ClusterSpec};
use provider_core::{Provider, ProviderExt, TagFilter};
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
async fn the_seed_layout_comes_up_on_provider_local_and_goes() {
    let spec = ClusterSpec::load(&examples_dir().join("local-seed.toml")).expect("example");
    let state = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::with_state_dir(state.path().join("cloud"));
    config.availability_zones = spec.availability_zones.clone();
    config.helper = Some(local_helper().expect("plinth-local helper"));
    let local = Arc::new(LocalProvider::open(config).await.expect("provider-local"));
    let p: Arc<dyn Provider> = local.clone();
    let c = Cluster::new(spec.clone(), p);
    let _cleanup = Cleanup(c.clone());
    c.apply().await.expect("apply");

    // The cloud's own listing: everything it holds, not only what carries our tag.
    let all = TagFilter::all();
    let instances = local.list_instances(&all).await.unwrap();
    let name_of = |id: &str| {
        instances
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.name.clone())
            .unwrap_or_default()
    };
    let names: BTreeSet<String> = instances.iter().map(|i| i.name.clone()).collect();
    let nodes: BTreeSet<String> = (0..3).map(|i| format!("plinth-seed-node-{i}")).collect();
    assert_eq!(names.len(), 6, "{names:?}");

    let fips = local.list_floating_ips(&all).await.unwrap();
    let with_fip: BTreeSet<String> = fips
        .iter()
        .map(|f| name_of(f.instance_id.as_deref().expect("associated")))
        .collect();
    let mut want = nodes.clone();
    want.insert("plinth-seed-master-0".into());
    assert_eq!(
        with_fip, want,
        "floating IPs on the master and the worker nodes"
    );

    let volumes = local.list_volumes(&all).await.unwrap();
    let on: BTreeSet<String> = volumes
        .iter()
        .map(|v| name_of(&v.attachment.as_ref().expect("attached").instance_id))
        .collect();
    let want: BTreeSet<String> = ["master-0", "storage-0", "storage-1"]
        .iter()
        .map(|n| format!("plinth-seed-{n}"))
        .collect();
    assert_eq!(on, want, "a volume on the master and on each storage node");
    assert_eq!(volumes.len(), 3);

    let lbs = local.list_load_balancers(&all).await.unwrap();
    let lb_names: BTreeSet<&str> = lbs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        lb_names,
        ["plinth-seed-hcp", "plinth-seed-hsm", "plinth-seed-uaa"].into()
    );
    for lb in &lbs {
        assert_eq!(lb.listeners.len(), 1);
        assert_eq!(lb.listeners[0].port, 443, "{}", lb.name);
        let members: BTreeSet<String> = lb.listeners[0]
            .pool
            .members
            .iter()
            .map(|m| name_of(&m.instance_id))
            .collect();
        assert_eq!(members, nodes, "{} fronts the worker nodes", lb.name);
        // Each LB serves: an answer from a worker node through its 443.
        let addr = format!("{}:443", lb.address.clone().expect("LB address"));
        let mut answer = None;
        for _ in 0..100 {
            if let Ok(body) = http_get(&addr).await {
                answer = instance_name(&body).map(str::to_string);
                if answer.is_some() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let answer = answer.unwrap_or_else(|| panic!("{} never answered", lb.name));
        assert!(nodes.contains(&answer), "{}: {answer}", lb.name);
    }
    // Status shows every LB.
    let st = c.status().await.unwrap();
    assert_eq!(st.load_balancers.len(), 3, "{:?}", st.load_balancers);

    c.destroy().await.expect("destroy");
    assert!(local.list_instances(&all).await.unwrap().is_empty());
    assert!(local.list_volumes(&all).await.unwrap().is_empty());
    assert!(local.list_floating_ips(&all).await.unwrap().is_empty());
    assert!(local.list_load_balancers(&all).await.unwrap().is_empty());
    assert!(local.list_security_groups(&all).await.unwrap().is_empty());
}
