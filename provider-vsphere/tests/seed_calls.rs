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

/// The floor of each phase: the requests the plan cannot do without on vSphere as the
/// provider stores things. Every vim25 change is a task whose end is read by one property
/// read per wait round (tasks running at once share it). A record kind (groups, volumes)
/// is listed by one `SearchDatastore_Task` (a task too) and read one file GET per record:
/// the datastore has no batch read. Tags and the spec ride in the clone spec
/// (`extraConfig`), so they cost no call of their own.
mod floor {
    /// Once per process: service content, login, a view of the datacenters and its read,
    /// a view of the datacenter and one read of its clusters, datastores and network.
    const INVENTORY: u64 = 6;
    /// Observed state: one VM read, two record searches ending in one shared wait round,
    /// one GET per record (3 groups, 2 volumes).
    const OBSERVE: u64 = 1 + 2 + 1 + 5;
    /// Observed state before bring-up: no record to read.
    const OBSERVE_EMPTY: u64 = 1 + 2 + 1;
    /// The lease on the existing base group: the groups listed (search, wait round, 3
    /// GETs), the lease written (PUT, from the listing's read) and read back (GET);
    /// released: read (GET) and written (PUT).
    const LEASE: u64 = 5 + 2 + 2;
    /// The lease at bring-up: the listing finds nothing (search, wait round), the base
    /// group and its lease written (2 PUTs) and read back (GET); released (GET, PUT).
    const LEASE_NEW: u64 = 2 + 2 + 1 + 2;
    /// Instances: a VM read (names, templates), 6 clones carrying flavor, network, tags,
    /// spec and power-on, one wait round, one read of the running VMs.
    const INSTANCES: u64 = 1 + 6 + 1 + 1;
    /// What vcsim adds: its `CloneVM_Task` ignores the spec's `numCPUs`, `memoryMB` and
    /// `powerOn` (govmomi 0.24 simulator), so each clone is reconfigured (6 calls, one
    /// wait round) and powered on (one `PowerOnMultiVM_Task`, one wait round). A real
    /// vCenter applies the clone spec and needs none of these.
    const SIMULATOR: u64 = 6 + 1 + 1 + 1;
    /// Bring-up: inventory, observed state, the preflight's template read, the lease, 3
    /// group writes (2 groups, the base group's rule), 2 volumes (a directory, 2 disks,
    /// one wait round, 2 records), the instances, 2 attaches (a VM read, 2 tasks, one
    /// wait round).
    pub const BRING_UP: u64 =
        INVENTORY + OBSERVE_EMPTY + 1 + LEASE_NEW + 3 + 6 + INSTANCES + SIMULATOR + 4;
    /// Status: the observed state.
    pub const STATUS: u64 = OBSERVE;
    /// A no-op apply: the observed state and the lease.
    pub const NOOP_APPLY: u64 = OBSERVE + LEASE;
    /// Destroy: the observed state; the lease taken (listing, write, read-back) and its
    /// release finding the group gone (GET); 2 detaches (a VM read, 2 tasks, a round);
    /// the base group's rule removed (PUT); 2 volumes (a VM read, 2 disk deletes, a
    /// round, 2 record deletes, a round); 6 instances (a read, 6 power-offs, a round, 6
    /// destroys, a round); 3 groups (a listing and a VM read for the in-use checks, 3
    /// record deletes, a round).
    pub const DESTROY: u64 = OBSERVE + 7 + 1 + 4 + 1 + 7 + 15 + 7;
}

/// The requests each phase reached (pinned: lower them when a change saves requests).
/// Bring-up and destroy poll vcsim's tasks (concurrent tasks share one poll per
/// interval), whose timing varies by a request or two: those two are pinned at the
/// most measured over repeated runs. Records of other clusters on the same datastore
/// (a test running alongside) add one GET each to the listings.
mod pinned {
    pub const BRING_UP: u64 = 61;
    pub const STATUS: u64 = 9;
    pub const NOOP_APPLY: u64 = 18;
    pub const DESTROY: u64 = 53;
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
    eprintln!("PHASE-END bring-up");
    phase("bring-up", floor::BRING_UP);
    let status = cluster.status().await.unwrap();
    eprintln!("PHASE-END status");
    phase("status", floor::STATUS);
    assert_eq!(status.nodes.len(), 6, "{status:?}");
    cluster.apply().await.unwrap();
    eprintln!("PHASE-END no-op apply");
    phase("no-op apply", floor::NOOP_APPLY);
    cluster.destroy().await.unwrap();
    eprintln!("PHASE-END destroy");
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
