//! Health, `repair` and `watch` on the memory provider: hold times and the start-up
//! grace (with explicit instants, no waiting), replacing a failed node in its AZ,
//! recreating a gone one, the circuit breaker, dry runs, and a `watch` loop that
//! survives an outage and stops on cancel.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cluster::health::{Checks, HealthOptions, HealthState, HealthTracker, Signal};
use cluster::repair::{MaxUnhealthy, RepairOptions};
use cluster::watch::{Cancel, WatchOptions};
use cluster::{Cluster, Health};
use common::rolling::{cluster, memory, quick, spec};
use provider_core::layer::{Layer, Layered};
use provider_core::{Operation, Provider, ProviderExt};

/// Hold times of zero: a bad signal counts at once (for the passes that act).
fn instant_health() -> HealthOptions {
    HealthOptions {
        cloud_hold: Duration::ZERO,
        lb_hold: Duration::ZERO,
        check_hold: Duration::ZERO,
        grace: Duration::from_secs(600),
        recheck: Duration::from_millis(5),
        ..HealthOptions::default()
    }
}

fn repair_opts() -> RepairOptions {
    RepairOptions {
        replace: quick(),
        ..RepairOptions::default()
    }
}

async fn up(name: &str, nodes: usize) -> (Arc<provider_core::memory::MemoryProvider>, Cluster) {
    let m = memory();
    let p: Arc<dyn Provider> = m.clone();
    let c = cluster(spec(name, 1, nodes, 2), p).with_health(instant_health());
    c.apply().await.expect("apply");
    (m, c)
}

async fn id_of(c: &Cluster, name: &str) -> String {
    c.observe()
        .await
        .unwrap()
        .instances
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no instance {name}"))
        .id
}

fn spread(st: &cluster::ClusterStatus) -> BTreeMap<String, BTreeMap<String, usize>> {
    st.spread.clone()
}

#[tokio::test]
async fn a_bad_signal_is_suspect_until_it_held_and_a_cleared_one_starts_over() {
    let (m, c) = up("hold", 3).await;
    let desired = c.desired().await.unwrap();
    let opts = HealthOptions::default();
    let t0 = Instant::now();
    let mut t = HealthTracker::new();
    let healthy = t.assess(
        t0,
        &desired,
        &c.observe().await.unwrap(),
        &Checks::default(),
        &opts,
    );
    assert!(
        healthy
            .slots
            .iter()
            .all(|s| s.health.state == HealthState::Healthy),
        "{healthy:?}"
    );

    m.fail_instance(&id_of(&c, "hold-node-1").await).unwrap();
    let observed = c.observe().await.unwrap();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let r = t.assess(at(10), &desired, &observed, &Checks::default(), &opts);
    let h = r.of("hold-node-1").unwrap();
    assert_eq!(h.state, HealthState::Suspect, "{h:?}");
    assert!(h
        .findings
        .iter()
        .any(|f| f.signal == Signal::Cloud && f.reason.contains("failed")));
    // The memory LB reports a failed node's member unhealthy too.
    assert!(
        h.findings.iter().any(|f| f.signal == Signal::LoadBalancer),
        "{h:?}"
    );
    // 30 s after it was first seen bad (the default cloud hold), it is unhealthy.
    let r = t.assess(at(40), &desired, &observed, &Checks::default(), &opts);
    assert_eq!(r.of("hold-node-1").unwrap().state, HealthState::Unhealthy);
    assert_eq!(r.in_state(HealthState::Unhealthy).count(), 1);

    // A hook that says unhealthy, then healthy, then unhealthy again: its time restarts.
    let node2 = id_of(&c, "hold-node-2").await;
    let sick = |why: &str| {
        let mut ch = Checks::default();
        ch.hook.insert(node2.clone(), Health::Unhealthy(why.into()));
        ch
    };
    let r = t.assess(at(50), &desired, &observed, &sick("disk full"), &opts);
    let h = r.of("hold-node-2").unwrap();
    assert_eq!(h.state, HealthState::Suspect);
    assert!(h.why().contains("health hook: disk full"), "{}", h.why());
    t.assess(at(100), &desired, &observed, &Checks::default(), &opts);
    let r = t.assess(at(130), &desired, &observed, &sick("disk full"), &opts);
    assert_eq!(r.of("hold-node-2").unwrap().state, HealthState::Suspect);
    let r = t.assess(at(191), &desired, &observed, &sick("disk full"), &opts);
    assert_eq!(r.of("hold-node-2").unwrap().state, HealthState::Unhealthy);
}

#[tokio::test]
async fn a_node_that_appears_later_gets_the_start_up_grace() {
    let (_m, c) = up("grace", 3).await;
    let desired = c.desired().await.unwrap();
    let full = c.observe().await.unwrap();
    let mut before = full.clone();
    before.instances.retain(|i| i.name != "grace-node-2");
    let node2 = id_of(&c, "grace-node-2").await;
    let mut sick = Checks::default();
    sick.probe
        .insert(node2, "http 127.0.0.1:8080: refused".into());
    let opts = HealthOptions::default();
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let mut t = HealthTracker::new();
    // First pass: the slot has no instance (gone), nothing else is wrong.
    let r = t.assess(t0, &desired, &before, &Checks::default(), &opts);
    let gone = r.slots.iter().find(|s| s.slot == "grace-node-2").unwrap();
    assert_eq!(gone.name, None);
    assert_eq!(gone.health.state, HealthState::Suspect);
    // It appears and fails its probe: still starting well past the probe's hold time.
    let r = t.assess(at(10), &desired, &full, &sick, &opts);
    assert_eq!(r.of("grace-node-2").unwrap().state, HealthState::Starting);
    let r = t.assess(at(200), &desired, &full, &sick, &opts);
    assert_eq!(r.of("grace-node-2").unwrap().state, HealthState::Starting);
    // After the grace (300 s from first seen), the probe's failure counts.
    let r = t.assess(at(311), &desired, &full, &sick, &opts);
    let h = r.of("grace-node-2").unwrap();
    assert_eq!(h.state, HealthState::Unhealthy, "{h:?}");
    assert!(h.why().contains("probe"), "{}", h.why());
    // Nodes present at the first pass were never in grace.
    assert_eq!(r.of("grace-node-1").unwrap().state, HealthState::Healthy);

    // A node the cloud keeps reporting pending is starting, until the grace is over.
    let mut stuck = full.clone();
    for i in &mut stuck.instances {
        if i.name == "grace-node-0" {
            i.state = provider_core::InstanceState::Pending;
        }
    }
    let r = t.assess(at(320), &desired, &stuck, &Checks::default(), &opts);
    assert_eq!(r.of("grace-node-0").unwrap().state, HealthState::Starting);
    let r = t.assess(at(619), &desired, &stuck, &Checks::default(), &opts);
    assert_eq!(r.of("grace-node-0").unwrap().state, HealthState::Starting);
    let r = t.assess(at(621), &desired, &stuck, &Checks::default(), &opts);
    let h = r.of("grace-node-0").unwrap();
    assert_eq!(h.state, HealthState::Unhealthy, "{h:?}");
    assert!(
        h.why().contains("pending (seen 301s of 300s)"),
        "{}",
        h.why()
    );
}

#[tokio::test]
async fn status_shows_each_nodes_health_and_why() {
    let (m, c) = up("st", 3).await;
    m.fail_instance(&id_of(&c, "st-node-0").await).unwrap();
    let c = c.with_health(HealthOptions::default());
    let st = c.status().await.unwrap();
    let n0 = st.nodes.iter().find(|n| n.name == "st-node-0").unwrap();
    // One look cannot tell how long: suspect, with the hold it needs.
    assert_eq!(n0.health.state, HealthState::Suspect);
    assert!(
        n0.health.why().contains("the cloud reports it failed"),
        "{}",
        n0.health.why()
    );
    assert!(n0.health.why().contains("of 30s"), "{}", n0.health.why());
    let others = st.nodes.iter().filter(|n| n.name != "st-node-0");
    for n in others {
        assert_eq!(n.health.state, HealthState::Healthy, "{n:?}");
    }
    let json = serde_json::to_value(&st).unwrap();
    assert_eq!(json["nodes"][1]["health"]["state"], "suspect", "{json}");
}

#[tokio::test]
async fn repair_replaces_a_failed_node_in_its_az_and_recreates_a_gone_one() {
    let (m, c) = up("fix", 3).await;
    let before = c.status().await.unwrap();
    let az = before
        .nodes
        .iter()
        .find(|n| n.name == "fix-node-1")
        .unwrap()
        .availability_zone
        .clone();
    m.fail_instance(&id_of(&c, "fix-node-1").await).unwrap();
    m.delete_instance(&id_of(&c, "fix-node-0").await)
        .await
        .unwrap();

    let dry = c
        .repair(&RepairOptions {
            dry_run: true,
            ..repair_opts()
        })
        .await
        .unwrap();
    assert_eq!(dry.unhealthy, vec!["fix-node-1".to_string()]);
    assert_eq!(dry.gone, vec!["fix-node-0".to_string()]);
    assert!(dry.replaced.is_empty() && dry.recreated.is_empty());
    assert!(
        dry.to_string().contains("would replace fix-node-1"),
        "{dry}"
    );
    assert!(c
        .observe()
        .await
        .unwrap()
        .instances
        .iter()
        .all(|i| i.name != "fix-node-0"));

    let r = c.repair(&repair_opts()).await.unwrap();
    assert!(r.breaker.is_none(), "{r}");
    assert_eq!(r.recreated, vec!["fix-node-0".to_string()]);
    assert_eq!(r.replaced.len(), 1, "{r}");
    assert_eq!(r.replaced[0].old, "fix-node-1");
    assert_eq!(r.replaced[0].new, "fix-node-1-r1");
    assert_eq!(r.replaced[0].availability_zone, az);

    let after = c.status().await.unwrap();
    assert_eq!(spread(&after), spread(&before));
    assert!(after.missing.is_empty());
    assert!(
        after
            .nodes
            .iter()
            .all(|n| n.health.state == HealthState::Healthy),
        "{:?}",
        after.nodes
    );
    // Nothing left to do: a second pass is clean.
    assert!(c.repair(&repair_opts()).await.unwrap().is_clean());
}

#[tokio::test]
async fn the_circuit_breaker_holds_when_every_worker_is_unhealthy() {
    let (m, c) = up("brk", 3).await;
    for n in ["brk-node-0", "brk-node-1", "brk-node-2"] {
        m.fail_instance(&id_of(&c, n).await).unwrap();
    }
    let names = |o: &cluster::Observed| {
        let mut v: Vec<String> = o.instances.iter().map(|i| i.name.clone()).collect();
        v.sort();
        v
    };
    let before = names(&c.observe().await.unwrap());
    let r = c.repair(&repair_opts()).await.unwrap();
    let held = r.breaker.as_ref().expect("the breaker holds");
    // 3 of 6 slots; 40 % of 6 rounds down to 2.
    assert_eq!((held.unhealthy, held.total, held.allowed), (3, 6, 2));
    assert!(r.to_string().contains("circuit breaker held"), "{r}");
    assert!(r.replaced.is_empty());
    assert_eq!(names(&c.observe().await.unwrap()), before);

    // A limit that allows it repairs them all.
    let r = c
        .repair(&RepairOptions {
            max_unhealthy: MaxUnhealthy::Count(3),
            ..repair_opts()
        })
        .await
        .unwrap();
    assert!(r.breaker.is_none());
    assert_eq!(r.replaced.len(), 3, "{r}");
}

/// A cloud that can be made unreachable: every call fails while `down` is set.
#[derive(Debug, Clone)]
struct Outage(Arc<AtomicBool>);

#[async_trait]
impl Layer for Outage {
    async fn call<T, F, Fut>(&self, op: Operation, mut f: F) -> provider_core::Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = provider_core::Result<T>> + Send,
    {
        if self.0.load(Ordering::SeqCst) {
            return Err(provider_core::Error::transient(
                op,
                "connection refused (test outage)",
            ));
        }
        f().await
    }
}

#[tokio::test]
async fn watch_survives_an_outage_repairs_and_stops_on_cancel() {
    let m = memory();
    let down = Arc::new(AtomicBool::new(false));
    let p: Arc<dyn Provider> = Arc::new(Layered::new(m.clone(), Outage(down.clone())));
    let c = cluster(spec("w", 1, 3, 2), p).with_health(instant_health());
    c.apply().await.unwrap();
    let before = c.status().await.unwrap();

    let cancel = Cancel::new();
    let opts = WatchOptions {
        interval: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        repair: repair_opts(),
    };
    let watcher = {
        let (c, cancel, opts) = (c.clone(), cancel.clone(), opts.clone());
        tokio::spawn(async move { c.watch(&opts, &cancel).await })
    };
    // The cloud goes away for a while: passes fail, the loop goes on.
    down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    down.store(false, Ordering::SeqCst);
    // A worker dies; drift appears too (another worker is deleted).
    m.fail_instance(&id_of(&c, "w-node-2").await).unwrap();
    m.delete_instance(&id_of(&c, "w-node-0").await)
        .await
        .unwrap();
    let mut fixed = false;
    for _ in 0..500 {
        let st = c.status().await.unwrap();
        // Done when the replace command is recorded finished (the call returns next).
        let op = c
            .observe()
            .await
            .unwrap()
            .groups
            .into_iter()
            .find(|g| g.name == "w-base")
            .and_then(|g| g.tags.get(cluster::replace::TAG_REPLACE_OP).cloned());
        if st.missing.is_empty()
            && st.nodes.iter().any(|n| n.name == "w-node-2-r1")
            && st.nodes.iter().all(|n| n.name != "w-node-2")
            && op.is_some_and(|op| op.starts_with(cluster::replace::DONE))
        {
            fixed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    let report = watcher.await.unwrap().expect("watch ends with Ok");
    assert!(fixed, "watch did not repair the cluster");
    assert!(report.failed_passes >= 1, "{report:?}");
    assert!(report.drift_actions >= 1, "{report:?}");
    assert_eq!(report.replaced.len(), 1, "{report:?}");
    assert_eq!(report.replaced[0].old, "w-node-2");
    assert_eq!(spread(&c.status().await.unwrap()), spread(&before));
    // The loop holds no lease once stopped, and the cluster can run verbs again.
    assert!(c.apply().await.unwrap().plan.is_empty());
}

#[tokio::test]
async fn repair_resumes_a_replacement_that_was_cut_off() {
    let (m, c) = up("cut", 3).await;
    // The cloud as a replace run leaves it when it crashes right after recording its
    // command: the node marked, the command on the base group.
    let node = id_of(&c, "cut-node-2").await;
    let mark = [("plinth.replace".to_string(), "pending".to_string())].into();
    m.update_tags(provider_core::ResourceKind::Instance, &node, &mark, &[])
        .await
        .unwrap();
    let base = c
        .observe()
        .await
        .unwrap()
        .groups
        .into_iter()
        .find(|g| g.name == "cut-base")
        .unwrap();
    let op = [(
        cluster::replace::TAG_REPLACE_OP.to_string(),
        "nodes=cut-node-2".to_string(),
    )]
    .into();
    m.update_tags(
        provider_core::ResourceKind::SecurityGroup,
        &base.id,
        &op,
        &[],
    )
    .await
    .unwrap();
    let st = c.status().await.unwrap();
    let n = st.nodes.iter().find(|n| n.name == "cut-node-2").unwrap();
    assert_eq!(n.health.state, HealthState::Replacing);

    let dry = c
        .repair(&RepairOptions {
            dry_run: true,
            ..repair_opts()
        })
        .await
        .unwrap();
    assert_eq!(dry.unfinished.as_deref(), Some("nodes=cut-node-2"));
    assert!(dry.to_string().contains("would resume"), "{dry}");

    let r = c.repair(&repair_opts()).await.unwrap();
    assert_eq!(r.replaced.len(), 1, "{r}");
    assert_eq!(r.replaced[0].old, "cut-node-2");
    let after = c.repair(&repair_opts()).await.unwrap();
    assert!(
        after.unfinished.is_none() && after.replaced.is_empty(),
        "{after}"
    );
}

/// Cancels the watch from inside a replacement, at the old node's drain.
struct CancelAtDrain(Cancel);

#[async_trait]
impl cluster::Hooks for CancelAtDrain {
    async fn drain(&self, _node: &provider_core::Instance) -> Result<(), cluster::HookError> {
        self.0.cancel();
        Ok(())
    }
}

#[tokio::test]
async fn a_cancel_during_a_replacement_stops_after_the_step_and_repair_finishes_it() {
    let m = memory();
    let p: Arc<dyn Provider> = m.clone();
    let cancel = Cancel::new();
    let c = cluster(spec("stop", 1, 3, 2), p)
        .with_health(instant_health())
        .with_hooks(Arc::new(CancelAtDrain(cancel.clone())));
    c.apply().await.unwrap();
    m.fail_instance(&id_of(&c, "stop-node-0").await).unwrap();
    let opts = WatchOptions {
        interval: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        repair: repair_opts(),
    };
    let report = tokio::time::timeout(Duration::from_secs(60), c.watch(&opts, &cancel))
        .await
        .expect("watch stops")
        .expect("a cancel ends watch with Ok");
    // Stopped after the drain: the successor serves, the old node is not deleted yet.
    assert!(report.replaced.is_empty(), "{report:?}");
    let names: Vec<String> = c
        .observe()
        .await
        .unwrap()
        .instances
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(names.contains(&"stop-node-0".to_string()), "{names:?}");
    assert!(names.contains(&"stop-node-0-r1".to_string()), "{names:?}");
    // The next pass resumes the recorded replacement.
    let r = c.repair(&repair_opts()).await.unwrap();
    assert_eq!(r.unfinished.as_deref(), Some("nodes=stop-node-0"));
    assert_eq!(r.replaced.len(), 1, "{r}");
    let names: Vec<String> = c
        .observe()
        .await
        .unwrap()
        .instances
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert!(!names.contains(&"stop-node-0".to_string()), "{names:?}");
}

/// `spec`'s cluster on `p` for the operator `holder`.
fn as_operator(name: &str, holder: &str, p: Arc<dyn Provider>) -> Cluster {
    let c = cluster(spec(name, 1, 3, 2), p);
    let mut o = c.options().clone();
    o.lease.holder = holder.into();
    o.stop = Arc::default();
    c.with_options(o).with_health(instant_health())
}

#[tokio::test]
async fn watch_holds_the_lease_only_while_it_acts() {
    let m = memory();
    let p: Arc<dyn Provider> = m.clone();
    let watcher = as_operator("lz", "watcher@test", p.clone());
    let operator = as_operator("lz", "operator@test", p.clone());
    watcher.apply().await.unwrap();
    let cancel = Cancel::new();
    let opts = WatchOptions {
        interval: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        repair: repair_opts(),
    };
    let task = {
        let (w, cancel, opts) = (watcher.clone(), cancel.clone(), opts.clone());
        tokio::spawn(async move { w.watch(&opts, &cancel).await })
    };
    // While the watch idles, another operator's replacement runs (it is not locked out).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = operator
        .replace(
            &cluster::Selector::Nodes(vec!["lz-node-0".into()]),
            &quick(),
        )
        .await
        .expect("the watch holds no lease between its actions");
    assert_eq!(r.replaced.len(), 1);
    // While the operator holds the lease, the watch cannot act on a failed node ...
    let held = cluster::lease::acquire(
        p.clone(),
        "lz",
        &operator.options().lease,
        None,
        Arc::default(),
    )
    .await
    .unwrap()
    .expect("a base group to hold");
    m.fail_instance(&id_of(&operator, "lz-node-1").await)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let names =
        |o: cluster::Observed| -> Vec<String> { o.instances.into_iter().map(|i| i.name).collect() };
    assert!(names(operator.observe().await.unwrap()).contains(&"lz-node-1".to_string()));
    // ... and does once it is released.
    held.release().await.unwrap();
    let mut done = false;
    for _ in 0..500 {
        if !names(operator.observe().await.unwrap()).contains(&"lz-node-1".to_string()) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    let report = task.await.unwrap().expect("watch ends with Ok");
    assert!(done, "the watch never replaced the failed node: {report:?}");
    assert_eq!(
        report.failed_passes, 0,
        "a held lease is not a failure: {report:?}"
    );
}
