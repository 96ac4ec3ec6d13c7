//! Self-healing on provider-local, with a client sending requests through the ingress
//! load balancer the whole time: `watch` replaces a worker whose process was killed, and
//! then one whose process was stopped (SIGSTOP: it hangs without dying), each in its own
//! AZ, within the hold time plus one interval, with no failed request and the AZ spread
//! unchanged. With every worker killed at once, `repair` replaces nothing and says the
//! circuit breaker held.
//!
//! The client retries a request that timed out, once or twice, as HTTP clients behind a
//! load balancer do: a request the LB already handed to a hung node cannot be answered
//! by another one (the LB's TCP check still connects to a stopped process). A request
//! counts as failed when every attempt failed; the retries are printed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::health::HealthOptions;
use cluster::repair::RepairOptions;
use cluster::replace::{Probe, ReplaceOptions, Step};
use cluster::watch::{Cancel, WatchOptions};
use cluster::{Cluster, ClusterSpec};
use provider_core::Provider;
use provider_local::{LocalConfig, LocalProvider};
use tests::{examples_dir, http_get, instance_name, local_helper};

/// Resumes what the test stopped and removes everything this test's cloud holds
/// (processes, ports, files), also when an assertion fails halfway.
struct Cleanup {
    local: Arc<LocalProvider>,
    stopped: Arc<Mutex<Vec<u32>>>,
    /// The cloud's state dir, removed after the cloud is emptied.
    _state: tempfile::TempDir,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in self.stopped.lock().map(|v| v.clone()).unwrap_or_default() {
            signal(pid, "-CONT");
        }
        let local = self.local.clone();
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

/// Sends `sig` (e.g. `-KILL`) to `pid` with kill(1).
fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Records when each node's replacement started.
#[derive(Default)]
struct Started(Mutex<BTreeMap<String, (Instant, String)>>);

impl cluster::Observer for Started {
    fn replacing(&self, old: &str, new: &str, step: &Step) {
        println!("{old} -> {new}: {step}");
        if *step == Step::Creating {
            if let Ok(mut m) = self.0.lock() {
                m.entry(old.to_string())
                    .or_insert((Instant::now(), new.to_string()));
            }
        }
    }
}

async fn local_cluster(name: &str) -> (Cluster, Cleanup) {
    let mut spec = ClusterSpec::load(&examples_dir().join("local.properties")).expect("example");
    spec.name = name.to_string();
    let state = tempfile::tempdir().unwrap();
    let mut config = LocalConfig::with_state_dir(state.path().join("cloud"));
    config.availability_zones = spec.availability_zones.clone();
    config.helper = Some(local_helper().expect("plinth-local helper"));
    // Connections hung on a stopped node never finish: the LB cuts them after this
    // (60 s by default), and the client retries them.
    config.drain_timeout = Duration::from_secs(5);
    let local = Arc::new(LocalProvider::open(config).await.expect("provider-local"));
    let cleanup = Cleanup {
        local: local.clone(),
        stopped: Arc::default(),
        _state: state,
    };
    let p: Arc<dyn Provider> = local;
    let c = Cluster::new(spec, p);
    c.apply().await.expect("apply");
    (c, cleanup)
}

fn probe() -> Probe {
    Probe::Http {
        port: 8080,
        path: "/".into(),
    }
}

/// Small hold times, set through the options: the test waits seconds, not minutes.
fn health() -> HealthOptions {
    HealthOptions {
        grace: Duration::from_secs(5),
        cloud_hold: Duration::from_secs(1),
        lb_hold: Duration::from_secs(3),
        check_hold: Duration::from_secs(2),
        probe: Some(probe()),
        probe_timeout: Duration::from_secs(1),
        recheck: Duration::from_millis(500),
    }
}

fn repair_opts() -> RepairOptions {
    RepairOptions {
        replace: ReplaceOptions {
            probe: Some(probe()),
            poll_interval: Duration::from_millis(200),
            probe_timeout: Duration::from_secs(2),
            ready_timeout: Duration::from_secs(120),
            drain: Duration::from_secs(1),
            ..ReplaceOptions::default()
        },
        ..RepairOptions::default()
    }
}

async fn ingress(c: &Cluster) -> String {
    let st = c.status().await.unwrap();
    let lb = st
        .load_balancers
        .iter()
        .find(|l| l.name.ends_with("-ingress"))
        .expect("ingress LB");
    let addr = format!("{}:8080", lb.address.clone().expect("LB address"));
    for _ in 0..300 {
        if http_get(&addr)
            .await
            .is_ok_and(|b| instance_name(&b).is_some())
        {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the ingress LB never answered");
}

/// Requests answered, attempts retried, and requests whose every attempt failed.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    retried: u64,
    failed: Vec<String>,
}

/// A client sending requests through `addr` until `stop`, each tried up to 3 times
/// with a 2 s timeout.
fn client(addr: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Tally> {
    tokio::spawn(async move {
        let mut t = Tally::default();
        let t0 = Instant::now();
        while !stop.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(900) {
            let mut last = String::new();
            let mut answered = false;
            for attempt in 0..3 {
                if attempt > 0 {
                    t.retried += 1;
                }
                match tokio::time::timeout(Duration::from_secs(2), http_get(&addr)).await {
                    Ok(Ok(body)) if instance_name(&body).is_some() => {
                        answered = true;
                        break;
                    }
                    Ok(Ok(body)) => last = format!("no node answered: {body:?}"),
                    Ok(Err(e)) => last = e.to_string(),
                    Err(_) => last = "no answer in 2 s".into(),
                }
            }
            if answered {
                t.ok += 1;
            } else {
                t.failed.push(last);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        t
    })
}

/// The worker `name`'s id, AZ and process id.
async fn worker(c: &Cluster, local: &LocalProvider, name: &str) -> (String, String, u32) {
    let i = c
        .observe()
        .await
        .unwrap()
        .instances
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    let pid = local.instance_pid(&i.id).expect("instance pid");
    (i.id, i.availability_zone, pid)
}

/// Waits until the watch replaced `old`: it is gone, its successor serves, and the
/// replace command is recorded finished (so the watch's call returns next).
async fn replaced(c: &Cluster, old: &str, within: Duration) -> bool {
    let t0 = Instant::now();
    let base = format!("{}-base", c.spec().name);
    while t0.elapsed() < within {
        let st = c.status().await.unwrap();
        let new = format!("{old}-r1");
        let op = c
            .observe()
            .await
            .unwrap()
            .groups
            .into_iter()
            .find(|g| g.name == base)
            .and_then(|g| g.tags.get(cluster::replace::TAG_REPLACE_OP).cloned());
        if op.is_some_and(|op| op.starts_with(cluster::replace::DONE))
            && st.nodes.iter().all(|n| n.name != old)
            && st
                .load_balancers
                .iter()
                .flat_map(|l| &l.listeners)
                .flat_map(|l| &l.members)
                .any(|m| m.instance == new && m.health == provider_core::MemberHealth::Healthy)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_replaces_a_killed_and_a_hung_worker_without_a_failed_request() {
    let (c, cleanup) = local_cluster("heal").await;
    let started = Arc::new(Started::default());
    let c = c.with_health(health()).with_observer(started.clone());
    let addr = ingress(&c).await;
    let before = c.status().await.unwrap().spread;

    let stop = Arc::new(AtomicBool::new(false));
    let load = client(addr, stop.clone());
    let cancel = Cancel::new();
    let interval = Duration::from_secs(1);
    let opts = WatchOptions {
        interval,
        max_backoff: Duration::from_secs(5),
        repair: repair_opts(),
    };
    let watcher = {
        let (c, cancel, opts) = (c.clone(), cancel.clone(), opts.clone());
        tokio::spawn(async move { c.watch(&opts, &cancel).await })
    };
    // Let the watch see the cluster healthy first.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. A worker's process dies.
    let (_, az1, pid1) = worker(&c, &cleanup.local, "heal-node-1").await;
    let killed_at = Instant::now();
    signal(pid1, "-KILL");
    let ok1 = replaced(&c, "heal-node-1", Duration::from_secs(180)).await;
    let spread1 = c.status().await.unwrap().spread;

    // 2. Another worker's process hangs (stopped, not dead).
    let (_, az2, pid2) = worker(&c, &cleanup.local, "heal-node-2").await;
    cleanup.stopped.lock().unwrap().push(pid2);
    let stopped_at = Instant::now();
    signal(pid2, "-STOP");
    let ok2 = replaced(&c, "heal-node-2", Duration::from_secs(180)).await;

    cancel.cancel();
    let report = watcher.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let tally = load.await.unwrap();
    let report = report.expect("watch stops with Ok");
    let starts = started.0.lock().unwrap().clone();
    let detect = |old: &str, at: Instant| starts.get(old).map(|(t, _)| t.duration_since(at));
    let d1 = detect("heal-node-1", killed_at);
    let d2 = detect("heal-node-2", stopped_at);
    println!(
        "self-healing: killed worker replaced after {d1:?}, hung worker after {d2:?}; \
         {} requests through the ingress LB, {} attempts retried, {} failed; watch: {report:?}",
        tally.ok + tally.failed.len() as u64,
        tally.retried,
        tally.failed.len()
    );
    assert!(ok1, "the killed worker was not replaced");
    assert!(ok2, "the hung worker was not replaced");
    let replaced: Vec<(&str, &str, &str)> = report
        .replaced
        .iter()
        .map(|r| (r.old.as_str(), r.new.as_str(), r.availability_zone.as_str()))
        .collect();
    assert_eq!(
        replaced,
        vec![
            ("heal-node-1", "heal-node-1-r1", az1.as_str()),
            ("heal-node-2", "heal-node-2-r1", az2.as_str())
        ]
    );
    // Detected within the hold time plus one interval (plus the pass itself: a few
    // lists, and the probe's 1 s timeout on the hung node).
    let h = health();
    let slack = Duration::from_secs(4);
    let d1 = d1.expect("replacement of the killed worker started");
    let d2 = d2.expect("replacement of the hung worker started");
    assert!(d1 <= h.cloud_hold + interval + slack, "{d1:?}");
    assert!(d2 <= h.check_hold + interval + slack, "{d2:?}");
    assert!(
        tally.failed.is_empty(),
        "failed requests: {:?}",
        tally.failed
    );
    assert!(tally.ok > 0);
    assert_eq!(spread1, before);
    assert_eq!(c.status().await.unwrap().spread, before);
    assert!(c.plan().await.unwrap().is_empty());
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_holds_the_circuit_breaker_when_every_worker_is_down() {
    let (c, cleanup) = local_cluster("brk").await;
    let c = c.with_health(health());
    let mut names = Vec::new();
    for n in ["brk-node-0", "brk-node-1", "brk-node-2"] {
        let (_, _, pid) = worker(&c, &cleanup.local, n).await;
        signal(pid, "-KILL");
        names.push(n.to_string());
    }
    let instances = |o: cluster::Observed| {
        let mut v: Vec<String> = o.instances.into_iter().map(|i| i.name).collect();
        v.sort();
        v
    };
    let before = instances(c.observe().await.unwrap());
    let r = c.repair(&repair_opts()).await.expect("repair");
    println!("{r}");
    let held = r.breaker.as_ref().expect("the circuit breaker holds");
    assert_eq!((held.unhealthy, held.total, held.allowed), (3, 6, 2));
    let mut unhealthy = r.unhealthy.clone();
    unhealthy.sort();
    assert_eq!(unhealthy, names);
    assert!(r.replaced.is_empty());
    assert!(r.to_string().contains("circuit breaker held"));
    assert_eq!(instances(c.observe().await.unwrap()), before);
    drop(cleanup);
}
