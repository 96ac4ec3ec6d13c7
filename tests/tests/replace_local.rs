//! Zero-downtime rolling replacement on provider-local: while a client sends HTTP requests
//! through the cluster's ingress load balancer the whole time, every node of the seed's
//! topology is replaced; no request fails and the AZ spread is unchanged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::replace::{Probe, ReplaceOptions, Step};
use cluster::{Cluster, ClusterSpec, Selector};
use provider_core::Provider;
use provider_local::{LocalConfig, LocalProvider};
use tests::{examples_dir, http_get, instance_name, local_helper};

/// Removes everything this test's cloud holds (processes, ports, files), also when an
/// assertion fails halfway.
struct DestroyAll(Arc<LocalProvider>);

impl Drop for DestroyAll {
    fn drop(&mut self) {
        let local = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let _ = local.destroy_all().await;
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

/// Prints each node's progress, so a slow run on a loaded machine shows where it is.
struct Print;

impl cluster::Observer for Print {
    fn replacing(&self, old: &str, new: &str, step: &Step) {
        println!("{old} -> {new}: {step}");
    }
}

/// Nodes per role and AZ.
fn spread(st: &cluster::ClusterStatus) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut m: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for n in &st.nodes {
        *m.entry(n.role.clone())
            .or_default()
            .entry(n.availability_zone.clone())
            .or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_every_node_under_load_without_a_failed_request() {
    let spec = ClusterSpec::load(&examples_dir().join("local.properties")).expect("example");
    let state = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::with_state_dir(state.path().join("cloud"));
    config.availability_zones = spec.availability_zones.clone();
    config.helper = Some(local_helper().expect("plinth-local helper"));
    let local = Arc::new(LocalProvider::open(config).await.expect("provider-local"));
    let _cleanup = DestroyAll(local.clone());
    let p: Arc<dyn Provider> = local.clone();
    let c = Cluster::new(spec.clone(), p);
    c.apply().await.expect("apply");

    let before = c.status().await.unwrap();
    let ingress = before
        .load_balancers
        .iter()
        .find(|l| l.name.ends_with("-ingress"))
        .expect("ingress LB");
    let addr = format!("{}:8080", ingress.address.clone().expect("LB address"));
    // The LB checks its members every 2 s: wait until it serves before measuring.
    let mut up = false;
    for _ in 0..300 {
        if http_get(&addr)
            .await
            .is_ok_and(|b| instance_name(&b).is_some())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the ingress LB never answered");

    // The client: bounded in count and time, loopback only.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, Vec::new());
            let t0 = Instant::now();
            while !stop.load(Ordering::SeqCst)
                && ok + (failed.len() as u64) < 200_000
                && t0.elapsed() < Duration::from_secs(1200)
            {
                match http_get(&addr).await {
                    Ok(body) if instance_name(&body).is_some() => ok += 1,
                    Ok(body) => failed.push(format!("no node answered: {body:?}")),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed)
        })
    };

    let opts = ReplaceOptions {
        probe: Some(Probe::Http {
            port: 8080,
            path: "/".into(),
        }),
        poll_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_secs(5),
        ready_timeout: Duration::from_secs(300),
        drain: Duration::from_secs(1),
        ..ReplaceOptions::default()
    };
    let t0 = Instant::now();
    let report = c
        .clone()
        .with_observer(Arc::new(Print))
        .replace(&Selector::All, &opts)
        .await;
    let took = t0.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = client.await.unwrap();
    let report = report.expect("replace");
    println!("{report}");
    println!(
        "zero-downtime replacement: {} nodes in {:.1}s, {} requests through the ingress LB, {} failed",
        report.replaced.len(),
        took.as_secs_f64(),
        ok + failed.len() as u64,
        failed.len()
    );
    assert_eq!(report.replaced.len(), 6, "{report}");
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(ok > 0);

    let after = c.status().await.unwrap();
    assert_eq!(spread(&after), spread(&before));
    assert!(
        after.nodes.iter().all(|n| n.name.ends_with("-r1")),
        "{after:?}"
    );
    // Every worker still answers through the LB and nothing is left to apply.
    let plan = c.plan().await.unwrap();
    assert!(plan.is_empty(), "{plan}");
}
