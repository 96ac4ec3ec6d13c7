//! The seed topology (1 master, 3 nodes, 2 storage nodes with a data disk each, 3
//! compute clusters as AZs; vSphere has no floating IPs, and the example spec's load
//! balancer and security groups are `external`) run by the cluster library on vcsim: the
//! HTTP requests of bring-up, `status`, a no-op `apply` and `destroy`, per operation,
//! next to each phase's floor, and pinned, so a change that adds a request per resource
//! fails.
//!
//! Needs `VSPHERE_URL` (see tests/conformance.rs); run with `--nocapture` for the table.

use std::sync::Arc;

use cluster::{Cluster, ClusterSpec};
use provider_core::requests::{over_pins, phase_table};
use provider_core::{Provider, ProviderExt, TagFilter};
use provider_vsphere::VSphereBuilder;

/// The floor of each phase: the mutating requests the plan needs plus one list per
/// resource kind per wait round (one round each). Groups and their tags are records in
/// datastore files (one file each); a VM's tags are custom fields, one `SetField` per tag
/// (vim25 has no call that sets several, and a clone spec cannot carry them).
mod floor {
    /// Lease: write the group record, read it back, write it again without the lease.
    const LEASE: u64 = 3;
    /// Observed state: one property-collector read of the VMs, one datastore search
    /// for the disks and one for the group records.
    const OBSERVE: u64 = 3;
    /// Tags per VM (cluster, role, ordinal, spec hash, name) and the custom field
    /// definitions, once per vCenter.
    const TAGS: u64 = 6 * 5 + 5;
    /// Bring-up: 4 group records, 6 clones (powered on by the clone spec), the tags, 2
    /// disks created and attached, one wait round for the clone tasks and one for the
    /// disk tasks.
    pub const BRING_UP: u64 = LEASE + OBSERVE + 4 + 6 + TAGS + 4 + 2;
    /// Status: the observed state.
    pub const STATUS: u64 = OBSERVE;
    /// A no-op apply: the lease and the observed state.
    pub const NOOP_APPLY: u64 = LEASE + OBSERVE;
    /// Destroy: the lease without its release, the observed state, 6 power-offs and 6
    /// VM deletes, 2 detaches and 2 disk deletes, 4 group records removed, one wait
    /// round for the VM tasks and one for the disk tasks.
    pub const DESTROY: u64 = 2 + OBSERVE + 12 + 4 + 4 + 2;
}

/// The requests each phase reached (pinned: lower them when a change saves requests).
/// Bring-up and destroy poll vcsim's tasks (concurrent tasks share one poll per
/// interval), whose timing varies, and a fresh simulator adds the custom field
/// definitions (5 `AddCustomFieldDef`; 140 measured without them): those two have a
/// margin of about 5 %.
mod pinned {
    pub const BRING_UP: u64 = 148;
    pub const STATUS: u64 = 11;
    pub const NOOP_APPLY: u64 = 22;
    pub const DESTROY: u64 = 96;
}

fn simulator() -> Option<String> {
    match std::env::var("VSPHERE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("vSphere simulator not running (set VSPHERE_URL): CI must start emulators/vsphere");
            }
            eprintln!("skipped: vSphere simulator not running (set VSPHERE_URL)");
            None
        }
    }
}

fn seed_spec(cluster: &str, url: &str) -> ClusterSpec {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vsphere.properties");
    let text = std::fs::read_to_string(path).expect("the example spec");
    let mut out = Vec::new();
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or_default().trim();
        let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        let value = match key {
            "ClusterName" => Some(cluster.to_string()),
            "VSphere.URL" => Some(url.to_string()),
            "VSphere.Username" => env("VSPHERE_USERNAME"),
            "VSphere.Password" => env("VSPHERE_PASSWORD"),
            "VSphere.Datacenter" => env("VSPHERE_DATACENTER"),
            "VSphere.Template" => env("VSPHERE_TEMPLATE"),
            "VSphere.CACertFile" => env("VSPHERE_CA_CERT_FILE"),
            _ => None,
        };
        match value {
            Some(v) => out.push(format!("{key} = {v}")),
            None => out.push(line.to_string()),
        }
    }
    ClusterSpec::parse("seed.properties", &(out.join("\n") + "\n")).expect("the seed spec")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_requests_per_phase() {
    let Some(url) = simulator() else { return };
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffffff
    );
    let name = format!("vs-seed-{run}");
    let spec = seed_spec(&name, &url);
    let vs = spec
        .provider_config
        .configure(VSphereBuilder::from_env())
        .expect("the spec's vSphere keys")
        .build()
        .await
        .expect("connect to the simulator");
    let requests = vs.request_counts().clone();
    let provider: Arc<dyn Provider> = Arc::new(vs);
    let cluster = Cluster::new(spec, provider.clone());
    let mut phases = Vec::new();
    let mut phase = |name: &str, floor: u64| phases.push(requests.take_phase(name, floor));

    requests.reset();
    let up = cluster.apply().await.unwrap();
    assert!(up.report.is_complete(), "{}", up.report);
    phase("bring-up", floor::BRING_UP);
    let status = cluster.status().await.unwrap();
    phase("status", floor::STATUS);
    assert_eq!(status.nodes.len(), 6, "{status:?}");
    cluster.apply().await.unwrap();
    phase("no-op apply", floor::NOOP_APPLY);
    cluster.destroy().await.unwrap();
    phase("destroy", floor::DESTROY);
    print!("{}", phase_table("vSphere (vcsim)", &phases));

    assert_eq!(
        phases[2].counts.get("vim25.CloneVM_Task"),
        None,
        "the no-op apply cloned VMs"
    );
    let tf = TagFilter::new("plinth.cluster", name.clone());
    assert!(provider.list_instances(&tf).await.unwrap().is_empty());
    assert!(provider.list_volumes(&tf).await.unwrap().is_empty());
    assert!(provider.list_security_groups(&tf).await.unwrap().is_empty());

    let pins = [
        pinned::BRING_UP,
        pinned::STATUS,
        pinned::NOOP_APPLY,
        pinned::DESTROY,
    ];
    let over = over_pins(&phases, &pins);
    assert!(over.is_empty(), "{}", over.join("\n"));
}
