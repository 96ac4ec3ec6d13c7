//! The operator lease on the memory provider: concurrent runs, stale and crashed leases,
//! release after success and failure, `--force-unlock`, and the stop flag of replace and
//! scale (the first Ctrl-C).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cluster::execute::ExecuteOptions;
use cluster::lease::{self, LeaseRecord, TAG_LEASE};
use cluster::plan::TAG_CLUSTER;
use cluster::replace::ReplaceOptions;
use cluster::{Cluster, ClusterSpec, Error, LeaseOptions, Role, Selector};
use provider_core::layer::{Layer, Layered, Retry};
use provider_core::memory::{MemoryConfig, MemoryProvider};
use provider_core::wait::{Poller, Timeouts};
use provider_core::ProviderExt;
use provider_core::{Operation, Provider, ResourceKind, SecurityGroup, TagFilter, Tags};

fn spec(name: &str) -> ClusterSpec {
    let text = format!(
        "Provider = local\nClusterName = {name}\nMasterCount = 1\nNodeCount = 3\n\
         GlusterNodeCount = 1\nGlusterVolumeSize = 2\n\
         Local.AvailabilityZones = az-1,az-2,az-3\nLocal.Image = linux\nLocal.FloatingIPPool = public\n\
         Local.JumpboxCIDR = 10.1.1.4/32\nLocal.LoadBalancerCIDR = 10.1.1.0/24\n"
    );
    ClusterSpec::parse("test.properties", &text).unwrap()
}

fn memory() -> Arc<MemoryProvider> {
    Arc::new(MemoryProvider::new(MemoryConfig {
        transition: Duration::from_millis(1),
        poller: Poller::new(Duration::from_millis(1), Duration::from_millis(5)),
        timeouts: Timeouts::all(Duration::from_secs(30)),
        ..MemoryConfig::default()
    }))
}

fn lease_of(holder: &str, settle: Duration) -> LeaseOptions {
    LeaseOptions {
        holder: holder.into(),
        settle,
        ..LeaseOptions::default()
    }
}

fn operator(name: &str, holder: &str, p: Arc<dyn Provider>) -> Cluster {
    Cluster::new(spec(name), p).with_options(ExecuteOptions {
        concurrency: 4,
        retry: Retry::fast(4),
        lease: lease_of(holder, Duration::ZERO),
        ..ExecuteOptions::default()
    })
}

fn quick() -> ReplaceOptions {
    ReplaceOptions {
        ready_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(5),
        drain: Duration::ZERO,
        ..ReplaceOptions::default()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn base(p: &dyn Provider, name: &str) -> SecurityGroup {
    p.list_security_groups(&TagFilter::new(TAG_CLUSTER, name))
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name == lease::base_group_name(name))
        .expect("the base group exists")
}

async fn lease_tag(p: &dyn Provider, name: &str) -> Option<String> {
    base(p, name).await.tags.get(TAG_LEASE).cloned()
}

/// Puts a lease on the base group as another operator's run would.
async fn plant(p: &dyn Provider, name: &str, holder: &str, expires: u64) {
    let g = base(p, name).await;
    let value = LeaseRecord {
        holder: holder.into(),
        pid: 4242,
        expires,
    }
    .encode();
    let tags: Tags = [(TAG_LEASE.to_string(), value)].into();
    p.update_tags(ResourceKind::SecurityGroup, &g.id, &tags, &[])
        .await
        .unwrap();
}

fn assert_locked_by(err: &Error, holder: &str) {
    match err {
        Error::Locked {
            holder: h, expires, ..
        } => {
            assert!(h.contains(holder), "{err}");
            assert!(expires.ends_with('Z'), "{err}");
            let text = err.to_string();
            assert!(text.contains("--force-unlock"), "{text}");
            assert!(text.contains("locked by"), "{text}");
        }
        other => panic!("expected a lease refusal, got: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_applies_exactly_one_proceeds() {
    // Both on a cluster that does not exist yet (the base group is created by both, the
    // same group), and again on one that exists.
    for round in 0..2 {
        let m = memory();
        if round == 1 {
            operator("duel", "setup", m.clone()).apply().await.unwrap();
        }
        let settle = Duration::from_millis(300);
        let mk = |holder: &str| {
            Cluster::new(spec("duel"), m.clone()).with_options(ExecuteOptions {
                concurrency: 4,
                retry: Retry::fast(4),
                lease: lease_of(holder, settle),
                ..ExecuteOptions::default()
            })
        };
        let (a, b) = (mk("alice@one"), mk("bob@two"));
        let (ra, rb) = tokio::join!(a.apply(), b.apply());
        let (ok, refused, loser) = match (ra, rb) {
            (Ok(o), Err(e)) => (o, e, "bob@two"),
            (Err(e), Ok(o)) => (o, e, "alice@one"),
            (Ok(_), Ok(_)) => panic!("round {round}: both applies proceeded"),
            (Err(a), Err(b)) => panic!("round {round}: both refused: {a} / {b}"),
        };
        assert!(ok.report.is_complete());
        let winner = if loser == "alice@one" {
            "bob@two"
        } else {
            "alice@one"
        };
        assert_locked_by(&refused, winner);
        // Released after success; the cluster is whole.
        assert_eq!(lease_tag(m.as_ref(), "duel").await, None);
        let plan = mk("carol@three").plan().await.unwrap();
        assert!(plan.is_empty(), "{plan}");
    }
}

#[tokio::test]
async fn a_live_lease_refuses_every_mutating_command_and_force_unlock_takes_it() {
    let m = memory();
    let alice = operator("held", "alice@one", m.clone());
    alice.apply().await.unwrap();
    plant(m.as_ref(), "held", "bob@two", now() + 600).await;

    assert_locked_by(&alice.apply().await.unwrap_err(), "bob@two");
    let e = alice.replace(&Selector::All, &quick()).await.unwrap_err();
    assert_locked_by(&e, "bob@two");
    let e = alice.scale(Role::Node, 6, &quick()).await.unwrap_err();
    assert_locked_by(&e, "bob@two");
    let e = alice.destroy().await.unwrap_err();
    assert_locked_by(&e, "bob@two");
    // Nothing changed, and bob's lease is still there.
    assert_eq!(
        m.list_instances(&TagFilter::new(TAG_CLUSTER, "held"))
            .await
            .unwrap()
            .len(),
        5
    );
    let still = LeaseRecord::parse(&lease_tag(m.as_ref(), "held").await.unwrap()).unwrap();
    assert_eq!(still.holder, "bob@two");

    // --force-unlock: taken over, the command runs, the lease is released.
    let mut opts = alice.options().clone();
    opts.lease.force = true;
    let forced = Cluster::new(spec("held"), m.clone()).with_options(opts);
    forced.scale(Role::Node, 6, &quick()).await.unwrap();
    assert_eq!(lease_tag(m.as_ref(), "held").await, None);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let m = memory();
    let alice = operator("stale", "alice@one", m.clone());
    alice.apply().await.unwrap();
    plant(m.as_ref(), "stale", "bob@two", now().saturating_sub(5)).await;
    alice
        .replace(&Selector::Role(Role::Node), &quick())
        .await
        .unwrap();
    assert_eq!(lease_tag(m.as_ref(), "stale").await, None);
}

#[tokio::test]
async fn the_lease_is_released_after_a_failure() {
    let m = memory();
    let c = Cluster::new(spec("fails"), m.clone()).with_options(ExecuteOptions {
        concurrency: 1,
        retry: Retry::fast(2),
        lease: lease_of("alice@one", Duration::ZERO),
        ..ExecuteOptions::default()
    });
    // An image the cloud refuses at run time (the preflight refuses an unknown one
    // before the lease is taken).
    let mut plan = c.plan().await.unwrap();
    for a in &mut plan.actions {
        if let cluster::plan::Action::CreateInstances { instances } = &mut a.action {
            for i in instances.iter_mut().filter(|i| i.role == Role::Node) {
                i.image = "no-such-image".into();
            }
        }
    }
    let err = c.run(plan).await.unwrap_err();
    assert!(matches!(err, Error::Incomplete(_)), "{err}");
    assert_eq!(lease_tag(m.as_ref(), "fails").await, None);
    // And after a stopped destroy.
    c.options().stop.store(true, Ordering::SeqCst);
    let err = c.destroy().await.unwrap_err();
    assert!(matches!(err, Error::Incomplete(_)), "{err}");
    assert_eq!(lease_tag(m.as_ref(), "fails").await, None);
}

#[tokio::test]
async fn a_crashed_runs_lease_blocks_others_until_it_expires_or_is_forced() {
    let m = memory();
    let alice = operator("crashed", "alice@one", m.clone());
    alice.apply().await.unwrap();
    // A run that dies holding the lease: taken, never released.
    let held = lease::acquire(
        m.clone(),
        "crashed",
        &lease_of("alice@one", Duration::ZERO),
        None,
        Arc::new(AtomicBool::new(false)),
    )
    .await
    .unwrap()
    .expect("the base group exists");
    let left = held.record();
    drop(held);
    assert_eq!(
        lease_tag(m.as_ref(), "crashed").await,
        Some(left.encode()),
        "a crash leaves the lease"
    );
    assert!(left.expires > now(), "it expires after the ttl, not now");

    // Another operator is refused, naming the holder and the expiry.
    let bob = operator("crashed", "bob@two", m.clone());
    let err = bob.apply().await.unwrap_err();
    assert_locked_by(&err, "alice@one");
    assert!(err.to_string().contains(&left.expires_utc()), "{err}");

    // The crashed run's own rerun (same holder, same process) takes it back.
    alice.apply().await.unwrap();
    assert_eq!(lease_tag(m.as_ref(), "crashed").await, None);

    // Once it has expired (as `ttl` after the crash), anyone takes it over.
    plant(m.as_ref(), "crashed", "alice@one", now().saturating_sub(1)).await;
    bob.apply().await.unwrap();
    assert_eq!(lease_tag(m.as_ref(), "crashed").await, None);

    // Or, before it expires, with --force-unlock.
    plant(m.as_ref(), "crashed", "alice@one", now() + 600).await;
    let mut opts = bob.options().clone();
    opts.lease.force = true;
    Cluster::new(spec("crashed"), m.clone())
        .with_options(opts)
        .apply()
        .await
        .unwrap();
    assert_eq!(lease_tag(m.as_ref(), "crashed").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_over_during_a_run_stops_it() {
    let m = memory();
    operator("taken", "alice@one", m.clone())
        .apply()
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = LeaseOptions {
        ttl: Duration::from_secs(3),
        ..lease_of("alice@one", Duration::ZERO)
    };
    let held = lease::acquire(m.clone(), "taken", &opts, None, stop.clone())
        .await
        .unwrap()
        .expect("the base group exists");
    plant(m.as_ref(), "taken", "bob@two", now() + 600).await;
    // The renewal (every ttl/3) notices and stops the run, as a Ctrl-C would.
    for _ in 0..200 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stop.load(Ordering::SeqCst), "the loss was not noticed");
    let err = held.release().await.unwrap_err();
    assert!(err.to_string().contains("bob@two"), "{err}");
    // bob's lease is left alone.
    let r = LeaseRecord::parse(&lease_tag(m.as_ref(), "taken").await.unwrap()).unwrap();
    assert_eq!(r.holder, "bob@two");
}

#[tokio::test]
async fn a_stopped_replace_or_scale_finishes_on_rerun() {
    let m = memory();
    let c = operator("halt", "alice@one", m.clone());
    c.apply().await.unwrap();

    // First Ctrl-C before any node was replaced: nothing new starts.
    c.options().stop.store(true, Ordering::SeqCst);
    let err = c.replace(&Selector::All, &quick()).await.unwrap_err();
    assert!(matches!(err, Error::Stopped(_)), "{err}");
    assert!(
        err.to_string().contains("run the same command again"),
        "{err}"
    );
    assert_eq!(lease_tag(m.as_ref(), "halt").await, None);
    let rerun = operator("halt", "alice@one", m.clone());
    let report = rerun.replace(&Selector::All, &quick()).await.unwrap();
    assert!(report.resumed, "{report}");
    assert_eq!(report.replaced.len(), 5, "{report}");

    let err = c.scale(Role::Node, 1, &quick()).await.unwrap_err();
    assert!(matches!(err, Error::Stopped(_)), "{err}");
    let r = rerun.scale(Role::Node, 1, &quick()).await.unwrap();
    assert_eq!(r.removed.len(), 2, "{r}");
    assert_eq!(lease_tag(m.as_ref(), "halt").await, None);
}

/// Another operator's write lands right after ours (between our write and our read-back).
#[derive(Debug)]
struct Interloper {
    memory: Arc<MemoryProvider>,
    cluster: String,
    done: AtomicBool,
}

#[async_trait::async_trait]
impl Layer for Interloper {
    async fn call<T, F, Fut>(&self, op: Operation, mut f: F) -> provider_core::Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = provider_core::Result<T>> + Send,
    {
        let out = f().await;
        if op == Operation::UpdateTags && !self.done.swap(true, Ordering::SeqCst) {
            plant(self.memory.as_ref(), &self.cluster, "bob@two", now() + 600).await;
        }
        out
    }
}

#[tokio::test]
async fn losing_the_race_at_read_back_backs_off_without_touching_the_winner() {
    let m = memory();
    operator("race", "setup", m.clone()).apply().await.unwrap();
    let racy: Arc<dyn Provider> = Arc::new(Layered::new(
        m.clone(),
        Interloper {
            memory: m.clone(),
            cluster: "race".into(),
            done: AtomicBool::new(false),
        },
    ));
    let before = m.list_instances(&TagFilter::all()).await.unwrap().len();
    let err = operator("race", "alice@one", racy)
        .replace(&Selector::All, &quick())
        .await
        .unwrap_err();
    assert_locked_by(&err, "bob@two");
    assert!(err.to_string().contains("same moment"), "{err}");
    assert_eq!(
        m.list_instances(&TagFilter::all()).await.unwrap().len(),
        before
    );
    let r = LeaseRecord::parse(&lease_tag(m.as_ref(), "race").await.unwrap()).unwrap();
    assert_eq!(r.holder, "bob@two");
}
