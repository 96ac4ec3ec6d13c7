//! The seed topology brought up by the cluster library on moto, through the
//! `Instrumented` layer: trait calls and AWS requests per node, then destroy.

mod common;

use std::sync::Arc;

use cluster::{Cluster, ClusterSpec};
use provider_core::layer::{Instrumented, Layered};
use provider_core::{Provider, ProviderExt, TagFilter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_bring_up_calls_per_node() {
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
    let nodes = 6u64; // 1 master + 3 nodes + 2 storage nodes

    let aws = common::provider(&endpoint, &f).await;
    let requests = aws.api_calls().clone();
    requests.reset();
    let metrics = Instrumented::new();
    let provider: Arc<dyn Provider> = Arc::new(Layered::new(Arc::new(aws), metrics.clone()));
    let cluster = Cluster::new(spec, provider.clone());
    cluster.apply().await.unwrap();

    let calls = metrics.snapshot();
    let aws_calls = requests.snapshot();
    let total = calls.total_calls();
    let aws_total: u64 = aws_calls.values().sum();
    println!("seed bring-up: {total} provider calls, {aws_total} AWS requests for {nodes} nodes");
    println!(
        "per node: {:.1} provider calls, {:.1} AWS requests",
        total as f64 / nodes as f64,
        aws_total as f64 / nodes as f64
    );
    println!("provider calls: {calls:?}");
    println!("AWS requests: {aws_calls:?}");

    let status = cluster.status().await.unwrap();
    println!("{status:?}");
    let tf = TagFilter::new("plinth.cluster", name.clone());
    assert_eq!(provider.list_instances(&tf).await.unwrap().len(), 6);
    assert_eq!(provider.list_volumes(&tf).await.unwrap().len(), 2);
    assert!(!provider.list_load_balancers(&tf).await.unwrap().is_empty());

    // Rerunning apply converges with nothing new.
    requests.reset();
    cluster.apply().await.unwrap();
    let again = requests.snapshot();
    println!("second apply: {again:?}");
    assert_eq!(again.get("ec2.RunInstances"), None);

    cluster.destroy().await.unwrap();
    assert!(provider.list_instances(&tf).await.unwrap().is_empty());
    assert!(provider.list_volumes(&tf).await.unwrap().is_empty());
    assert!(provider.list_floating_ips(&tf).await.unwrap().is_empty());
    assert!(provider.list_load_balancers(&tf).await.unwrap().is_empty());
    assert!(provider.list_security_groups(&tf).await.unwrap().is_empty());
}
