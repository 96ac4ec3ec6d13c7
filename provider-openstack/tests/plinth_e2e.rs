//! The seed's spec on OpenStack's own services, through the `plinth` CLI:
//! `apply` (1 master, 3 nodes, 2 storage nodes with Cinder volumes over 3 AZs, a floating
//! IP on the master, an Octavia LB in front of the API port), `status`, `destroy`, and
//! nothing tagged with the cluster left.
//!
//! Needs the services (see tests/emulator.rs for the variables) and the `plinth` binary:
//! `PLINTH_BIN`, else `<target>/debug/plinth` (built by `cargo test --workspace`), else it
//! is built here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use provider_core::{ProviderExt, TagFilter};
use provider_openstack::OpenStackBuilder;

fn cloud_name() -> Option<String> {
    match std::env::var("PLINTH_OS_TEST_CLOUD") {
        Ok(c) if !c.is_empty() => Some(c),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("OpenStack services not running in CI: set PLINTH_OS_TEST_CLOUD (see emulators/openstack/README.md)");
            }
            eprintln!("skipped: OpenStack services not running (set PLINTH_OS_TEST_CLOUD and OS_CLIENT_CONFIG_FILE)");
            None
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn plinth_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PLINTH_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let bin = target.join("debug").join("plinth");
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "cluster", "--bin", "plinth"])
            .current_dir(workspace())
            .status()
            .expect("run cargo to build plinth");
        assert!(status.success(), "building plinth failed: {status}");
    }
    bin
}

fn plinth(bin: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin).args(args).output().expect("run plinth");
    eprintln!(
        "$ plinth {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

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
