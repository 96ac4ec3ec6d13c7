//! Resources outlive the process that created them: a child process creates them, this
//! process sees, uses and deletes them, across a daemon restart in between.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use provider_core::ProviderExt;
use provider_core::{
    FloatingIpSpec, LbProtocol, ListenerSpec, LoadBalancerSpec, MemberHealth, MemberSpec, Provider,
    TagFilter, VolumeSpec,
};
use provider_local::LocalProvider;

const CHILD_ENV: &str = "PLINTH_LOCAL_TEST_CHILD_STATE_DIR";
const GROUPS_ENV: &str = "PLINTH_LOCAL_TEST_CHILD_GROUPS";

/// The child's part: runs only when the parent test starts this binary with
/// `CHILD_ENV` set (otherwise there is nothing to do). Creates a small cloud, writes
/// the ids to `ids.json` and exits, leaving everything running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_role() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let p = LocalProvider::open(config(Path::new(&dir))).await.unwrap();
    // The racing role: create a few groups under a prefix, concurrently with another.
    if let Some(prefix) = std::env::var_os(GROUPS_ENV) {
        let prefix = prefix.to_string_lossy().into_owned();
        for n in 0..5 {
            let name = format!("{prefix}-{n}");
            p.create_security_group(&group(&name, "127.0.0.0/8", &[80]))
                .await
                .unwrap();
        }
        return;
    }
    let g = p
        .create_security_group(&group("web", "127.0.0.0/8", &[8080]))
        .await
        .unwrap();
    let a = p
        .create_instance(&http_instance("a", "local-a", &[&g.id]))
        .await
        .unwrap();
    let b = p
        .create_instance(&http_instance("b", "local-b", &[&g.id]))
        .await
        .unwrap();
    let v = p
        .create_volume(&VolumeSpec::new("data", "local-a", 2))
        .await
        .unwrap();
    p.attach_volume(&v.id, &a.id).await.unwrap();
    let fip = p
        .allocate_floating_ip(&FloatingIpSpec::new(
            "entry",
            provider_local::config::DEFAULT_POOL,
        ))
        .await
        .unwrap();
    p.associate_floating_ip(&fip.id, &a.id).await.unwrap();
    let lb = p
        .create_load_balancer(&LoadBalancerSpec::new(
            "front",
            [ListenerSpec::new(LbProtocol::Tcp, 80)
                .with_health_check(fast_check())
                .with_members([&a.id, &b.id].iter().map(|id| MemberSpec::new(*id, 8080)))],
        ))
        .await
        .unwrap();
    let ids: BTreeMap<&str, String> = [
        ("group", g.id),
        ("a", a.id),
        ("b", b.id),
        ("volume", v.id),
        ("fip", fip.id),
        ("lb", lb.id),
    ]
    .into();
    std::fs::write(
        Path::new(&dir).join("ids.json"),
        serde_json::to_vec(&ids).unwrap(),
    )
    .unwrap();
}

/// Whether `pid` runs (a zombie, left when init does not reap orphans, is dead).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

async fn lb_serves_both(p: &LocalProvider, lb_id: &str, a: &str, b: &str) {
    let lb = p.get_load_balancer(lb_id).await.unwrap();
    let ip: IpAddr = lb.address.unwrap().parse().unwrap();
    eventually("both members healthy", || async {
        let lb = p.get_load_balancer(lb_id).await.ok()?;
        lb.listener(80)?
            .pool
            .members
            .iter()
            .all(|m| m.health == MemberHealth::Healthy)
            .then_some(())
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let body = get(ip, 80, None).await.unwrap();
        seen.insert(if body.contains(a) {
            "a"
        } else if body.contains(b) {
            "b"
        } else {
            "?"
        });
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_by_one_process_used_and_deleted_by_another() {
    let f = Fixture::new().await;
    let dir = f.dir.path().to_path_buf();
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(dir.join("ids.json")).unwrap()).unwrap();
    let id = |k: &str| ids[k].clone();

    // Seen: everything the child made is listed here.
    let p = &f.provider;
    let instances = p.list_instances(&TagFilter::all()).await.unwrap();
    assert_eq!(instances.len(), 2);
    assert_eq!(p.list_volumes(&TagFilter::all()).await.unwrap().len(), 1);
    assert_eq!(
        p.list_load_balancers(&TagFilter::all())
            .await
            .unwrap()
            .len(),
        1
    );

    // Used: the LB and the floating IP serve.
    lb_serves_both(p, &id("lb"), &id("a"), &id("b")).await;
    let fip = p.get_floating_ip(&id("fip")).await.unwrap();
    assert!(get(fip.address, 8080, None)
        .await
        .unwrap()
        .contains(&id("a")));

    // Restart the daemon: instance processes keep running and are re-adopted; the LB
    // and the forwarder come back on the same addresses.
    let daemon = p.daemon_pid().await.unwrap();
    let pid_a = p.instance_pid(&id("a")).unwrap();
    p.shutdown_daemon().await.unwrap();
    eventually("old daemon gone", || async {
        (!running(daemon)).then_some(())
    })
    .await;
    assert!(running(pid_a), "instance died with the daemon");
    let p2 = LocalProvider::open(config(&dir)).await.unwrap();
    assert_ne!(p2.daemon_pid().await.unwrap(), daemon);
    assert_eq!(
        p2.get_instance(&id("a")).await.unwrap().state,
        provider_core::InstanceState::Running
    );
    lb_serves_both(&p2, &id("lb"), &id("a"), &id("b")).await;
    assert!(get(fip.address, 8080, None)
        .await
        .unwrap()
        .contains(&id("a")));

    // Deleted, one by one, by this process.
    let p2: &dyn Provider = &p2;
    p2.delete_load_balancer(&id("lb")).await.unwrap();
    p2.disassociate_floating_ip(&id("fip")).await.unwrap();
    p2.release_floating_ip(&id("fip")).await.unwrap();
    p2.detach_volume(&id("volume")).await.unwrap();
    p2.delete_volume(&id("volume")).await.unwrap();
    p2.delete_instance(&id("a")).await.unwrap();
    p2.delete_instance(&id("b")).await.unwrap();
    p2.delete_security_group(&id("group")).await.unwrap();
    assert!(!running(pid_a));

    // With nothing left the daemon exits and removes its files (the child's ids stay).
    let daemon = f.provider.daemon_pid().await.unwrap();
    eventually("daemon exits when empty", || async {
        (!running(daemon)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["ids.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_starting_on_one_state_dir_share_one_daemon() {
    let f = Fixture::new().await;
    let dir = f.dir.path().to_path_buf();
    // Stop the fixture's daemon, so both children race to start one.
    f.provider.shutdown_daemon().await.unwrap();
    let spawn = |prefix: &str| {
        tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process_role", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .env(GROUPS_ENV, prefix)
            .output()
    };
    let (x, y) = tokio::join!(spawn("x"), spawn("y"));
    for out in [x.unwrap(), y.unwrap()] {
        assert!(
            out.status.success(),
            "child failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let groups = f
        .provider
        .list_security_groups(&TagFilter::all())
        .await
        .unwrap();
    let mut names: Vec<String> = groups.into_iter().map(|g| g.name).collect();
    names.sort();
    let want: Vec<String> = ["x", "y"]
        .iter()
        .flat_map(|p| (0..5).map(move |n| format!("{p}-{n}")))
        .collect();
    assert_eq!(names, want);
}
