//! What an installer embedding Plinth writes, on provider-local: a properties file ->
//! open its cloud -> apply with hooks -> status -> destroy.

use std::sync::{Arc, Mutex};

use cluster::{Cluster, ClusterSpec, HookError, Hooks};
use provider_core::Instance;

/// The installer's part: here it only records which nodes it would join.
#[derive(Default)]
struct Installer(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl Hooks for Installer {
    async fn on_ready(&self, node: &Instance) -> Result<(), HookError> {
        self.0
            .lock()
            .map_err(|e| HookError(e.to_string()))?
            .push(node.name.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installer_embeds_plinth() -> Result<(), Box<dyn std::error::Error>> {
    tests::local_helper()?; // `cargo test -p tests` alone builds it first
    let state = tempfile::tempdir()?;
    let text = std::fs::read_to_string(tests::examples_dir().join("local.properties"))?
        + &format!("Local.StateDir = {}\n", state.path().display());
    let spec = ClusterSpec::parse("installer.properties", &text)?;

    let installer = Arc::new(Installer::default());
    let cluster = Cluster::open(spec).await?.with_hooks(installer.clone());
    cluster.apply().await?;
    let status = cluster.status().await?;
    cluster.destroy().await?;

    assert_eq!(status.nodes.len(), 6, "{status:?}");
    assert!(status.missing.is_empty(), "{status:?}");
    let mut joined = installer.0.lock().map_err(|e| e.to_string())?.clone();
    joined.sort();
    assert_eq!(joined.len(), 6, "on_ready once per new node: {joined:?}");
    assert!(
        cluster.observe().await?.is_empty(),
        "destroy left resources"
    );
    Ok(())
}
