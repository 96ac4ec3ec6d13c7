//! The seed's spec on OpenStack's own services, through the `plinth` CLI:
//! `apply` (1 master, 3 nodes, 2 storage nodes with Cinder volumes over 3 AZs, a floating
//! IP on the master, an Octavia LB in front of the API port), `status`, `destroy`, and
//! nothing tagged with the cluster left.
//!
//! Needs the services (see tests/emulator.rs for the variables) and the `plinth` binary:
//! `PLINTH_BIN`, else `<target>/debug/plinth` (built by `cargo test --workspace`), else it
//! is built here.

mod common;

use common::{cloud_name, plinth, plinth_bin, workspace};
use provider_core::{ProviderExt, TagFilter};
use provider_openstack::OpenStackBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_spec_applies_reports_and_destroys() {
    let Some(cloud) = cloud_name() else { return };
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            & 0xffffff
    );
    let cluster = format!("os-e2e-{run}");
    let mut text =
        std::fs::read_to_string(workspace().join("examples/openstack-emulator.properties"))
            .expect("the example spec");
    text = text.replace(
        "ClusterName = stackato4",
        &format!("ClusterName = {cluster}"),
    );
    if let Ok(url) = std::env::var("PLINTH_OS_TEST_AUTH_URL") {
        text = text.replace("http://127.0.0.1:5000/v3", &url);
    }
    if let Ok(pw) = std::env::var("PLINTH_OS_TEST_PASSWORD") {
        text = text.replace(
            "OpenStack.Password              = admin",
            &format!("OpenStack.Password              = {pw}"),
        );
    }
    let dir = std::env::temp_dir().join(format!("plinth-os-e2e-{run}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let spec = dir.join("bootstrap.properties");
    std::fs::write(&spec, text).expect("write spec");
    let spec = spec.to_string_lossy().to_string();
    let bin = plinth_bin();

    let apply = plinth(&bin, &["apply", "-i", &spec]);
    let status = plinth(&bin, &["status", "-i", &spec, "--output", "json"]);
    let destroy = plinth(&bin, &["destroy", "-i", &spec, "--yes"]);
    assert!(apply.status.success(), "apply failed");
    assert!(status.status.success(), "status failed");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let nodes = status["nodes"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(nodes, 6, "1 master + 3 nodes + 2 storage nodes: {status}");
    assert!(destroy.status.success(), "destroy failed");

    let p = OpenStackBuilder::from_cloud(&cloud)
        .unwrap()
        .build()
        .await
        .unwrap();
    let f = TagFilter::new("plinth.cluster", cluster.clone());
    assert!(
        p.list_instances(&f).await.unwrap().is_empty(),
        "instances left"
    );
    assert!(p.list_volumes(&f).await.unwrap().is_empty(), "volumes left");
    assert!(
        p.list_floating_ips(&f).await.unwrap().is_empty(),
        "floating IPs left"
    );
    assert!(
        p.list_load_balancers(&f).await.unwrap().is_empty(),
        "load balancers left"
    );
    assert!(
        p.list_security_groups(&f).await.unwrap().is_empty(),
        "security groups left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
