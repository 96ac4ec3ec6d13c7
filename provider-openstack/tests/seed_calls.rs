//! The seed topology (1 master, 3 nodes, 2 storage nodes with a Cinder volume each, 3
//! AZs, a floating IP on the master, 2 Octavia load balancers) run by the cluster
//! library on OpenStack's own services: the HTTP requests of bring-up, `status`, a no-op
//! `apply` and `destroy`, per service and operation, next to each phase's floor, and
//! pinned, so a change that adds a request per resource fails.
//!
//! Needs the services (see tests/emulator.rs); run with `--nocapture` for the table.

mod common;

use common::cloud_name;

use std::sync::Arc;

use cluster::{Cluster, ClusterSpec};
use provider_core::requests::{over_pins, phase_table, PhaseCount};
use provider_core::{Provider, ProviderExt, TagFilter};
use provider_openstack::OpenStackBuilder;

/// The floor of each phase: the mutating requests the plan needs plus one list per
/// resource kind per wait round (counted as one round each; the fake Nova takes several
/// poll intervals to make a server ACTIVE, which the measured count includes).
mod floor {
    /// Lease: write the tag, read it back, remove it.
    const LEASE: u64 = 3;
    /// Observed state: one list per kind (groups, servers, volumes, floating IPs, LBs)
    /// and the zones.
    const OBSERVE: u64 = 6;
    /// Bring-up: 4 groups (create + one bulk rule create + their tags each: these
    /// services list `tag-creation` but refuse `tags` in a POST), the 3 group-sourced
    /// rules the plan adds once every group exists, 6 servers (tags in the body), 2
    /// volumes + 2 attachments, a floating IP (allocate, tag, find the port,
    /// associate), 2 fully populated LB creates, one wait round each for servers,
    /// volumes available, volumes attached and LBs active.
    pub const BRING_UP: u64 = LEASE + OBSERVE + 12 + 3 + 6 + 4 + 4 + 2 + 4;
    /// Status: the observed state.
    pub const STATUS: u64 = OBSERVE;
    /// A no-op apply: the lease and the observed state.
    pub const NOOP_APPLY: u64 = LEASE + OBSERVE;
    /// Destroy: the lease without its release, the observed state, disassociate +
    /// release the floating IP, 2 cascade LB deletes, 6 server deletes, 2 detaches + 2
    /// volume deletes, the 3 group-sourced rules the plan removes, 4 group deletes, one
    /// wait round each for LBs, servers and volumes gone or detached.
    pub const DESTROY: u64 = 2 + OBSERVE + 2 + 2 + 6 + 4 + 3 + 4 + 3;
}

/// The requests each phase reached (pinned: lower them when a change saves requests).
/// Bring-up and destroy poll the fake Nova, Cinder and Octavia for seconds, and how many
/// polls that takes varies with the machine: their totals keep a margin of about 10 %,
/// and their mutating requests (every method but GET) are pinned exactly. Destroy also
/// reads the members of every pool of the project's load balancers (a deleted instance
/// leaves them): other load balancers in the project add a read per pool.
mod pinned {
    /// Measured 95-99 (with the preflight's read of Octavia's quota).
    pub const BRING_UP: u64 = 108;
    pub const STATUS: u64 = 13;
    pub const NOOP_APPLY: u64 = 20;
    pub const DESTROY: u64 = 66;
    pub const BRING_UP_MUTATING: u64 = 33;
    pub const DESTROY_MUTATING: u64 = 24;
}

/// Requests of a phase other than GETs.
fn mutating(p: &PhaseCount) -> u64 {
    p.counts
        .iter()
        .filter(|(k, _)| !k.contains(".GET "))
        .map(|(_, v)| v)
        .sum()
}

fn seed_spec(cluster: &str) -> ClusterSpec {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/openstack-emulator.properties");
    let mut text = std::fs::read_to_string(path).expect("the example spec");
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
    ClusterSpec::parse("seed.properties", &text).expect("the seed spec")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_requests_per_phase() {
    let Some(_cloud) = cloud_name() else { return };
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffffff
    );
    let name = format!("os-seed-{run}");
    let spec = seed_spec(&name);
    let os = spec
        .provider_config
        .configure(OpenStackBuilder::from_env())
        .expect("the spec's OpenStack keys")
        .build()
        .await
        .expect("connect to the OpenStack services");
    let requests = os.request_counts().clone();
    let provider: Arc<dyn Provider> = Arc::new(os);
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
    print!("{}", phase_table("OpenStack (its own services)", &phases));

    assert_eq!(
        phases[2].counts.get("nova.POST /servers"),
        None,
        "the no-op apply created servers"
    );
    let tf = TagFilter::new("plinth.cluster", name.clone());
    assert!(provider.list_instances(&tf).await.unwrap().is_empty());
    assert!(provider.list_volumes(&tf).await.unwrap().is_empty());
    assert!(provider.list_floating_ips(&tf).await.unwrap().is_empty());
    assert!(provider.list_load_balancers(&tf).await.unwrap().is_empty());
    assert!(provider.list_security_groups(&tf).await.unwrap().is_empty());

    let pins = [
        pinned::BRING_UP,
        pinned::STATUS,
        pinned::NOOP_APPLY,
        pinned::DESTROY,
    ];
    let over = over_pins(&phases, &pins);
    assert!(over.is_empty(), "{}", over.join("\n"));
    for (p, pin) in [
        (&phases[0], pinned::BRING_UP_MUTATING),
        (&phases[3], pinned::DESTROY_MUTATING),
    ] {
        assert!(
            mutating(p) <= pin,
            "{}: {} mutating requests, pinned at {pin}: a change added requests",
            p.phase,
            mutating(p)
        );
    }
}
