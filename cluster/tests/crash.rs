//! Crash-safe resume, on the memory provider: a run is killed at every mutating
//! provider call of the apply plan, the replace plan and scaling, on both sides of the
//! call (before it is sent; after the cloud acted but before the reply is used); the
//! same command is rerun and the final state compared with a clean run's: names, roles,
//! AZs, tags, attachments, LB members, and every resource of the memory provider listed
//! without a filter (no orphan).

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cluster::{ClusterSpec, Role, Selector};
use common::rolling::{cluster, memory, quick, snapshot, spec};
use provider_core::layer::{Layer, Layered};
use provider_core::memory::MemoryProvider;
use provider_core::{Operation, Provider};

/// Where a crash happens relative to call number `at` (mutating calls only: reads do not
/// change the cloud, so a crash around a read equals one around its neighbour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The call is never sent.
    Before,
    /// The cloud acts, the reply is lost.
    After,
}

/// A process that dies at mutating call `at`: from then on every call fails.
#[derive(Debug)]
struct Crash {
    at: usize,
    side: Side,
    count: AtomicUsize,
    dead: AtomicBool,
}

impl Crash {
    fn new(at: usize, side: Side) -> Self {
        Self {
            at,
            side,
            count: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
        }
    }
}

fn mutating(op: Operation) -> bool {
    let s = op.as_str();
    !(s.starts_with("get_") || s.starts_with("list_"))
}

fn killed(op: Operation) -> provider_core::Error {
    provider_core::Error::unsupported(op, "the process was killed here (crash test)")
}

/// The layer form of a shared [`Crash`].
#[derive(Debug)]
struct CrashLayer(Arc<Crash>);

#[async_trait]
impl Layer for CrashLayer {
    async fn call<T, F, Fut>(&self, op: Operation, mut f: F) -> provider_core::Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = provider_core::Result<T>> + Send,
    {
        let c = &self.0;
        if c.dead.load(Ordering::SeqCst) {
            return Err(killed(op));
        }
        if mutating(op) && c.count.fetch_add(1, Ordering::SeqCst) == c.at {
            if c.side == Side::After {
                let _ = f().await;
            }
            c.dead.store(true, Ordering::SeqCst);
            return Err(killed(op));
        }
        f().await
    }
}

fn crashing(base: Arc<MemoryProvider>, crash: &Arc<Crash>) -> Arc<dyn Provider> {
    Arc::new(Layered::new(base, CrashLayer(crash.clone())))
}

fn seed() -> ClusterSpec {
    spec("crash", 1, 3, 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_step_of_apply_and_replace_then_rerun_converges() {
    // Clean runs: the reference states and the number of mutating calls.
    let m = memory();
    let counter = Arc::new(Crash::new(usize::MAX, Side::Before));
    cluster(seed(), crashing(m.clone(), &counter))
        .apply()
        .await
        .unwrap();
    let apply_calls = counter.count.load(Ordering::SeqCst);
    let after_apply = snapshot(m.as_ref()).await;
    let counter = Arc::new(Crash::new(usize::MAX, Side::Before));
    let c = cluster(seed(), crashing(m.clone(), &counter));
    c.replace(&Selector::All, &quick()).await.unwrap();
    let replace_calls = counter.count.load(Ordering::SeqCst);
    let after_replace = snapshot(m.as_ref()).await;
    assert!(apply_calls > 10 && replace_calls > 10);
    let volumes_before = after_apply.volumes.len();

    let mut points = 0;
    for side in [Side::Before, Side::After] {
        for at in 0..apply_calls {
            let m = memory();
            let crash = Arc::new(Crash::new(at, side));
            let r = cluster(seed(), crashing(m.clone(), &crash)).apply().await;
            assert!(r.is_err(), "apply crash at {at} {side:?} did not stop it");
            cluster(seed(), m.clone())
                .apply()
                .await
                .unwrap_or_else(|e| panic!("rerun after apply crash at {at} {side:?}: {e}"));
            assert_eq!(
                snapshot(m.as_ref()).await,
                after_apply,
                "apply crash at {at} {side:?}"
            );
            points += 1;
        }
        for at in 0..replace_calls {
            let m = memory();
            cluster(seed(), m.clone()).apply().await.unwrap();
            let crash = Arc::new(Crash::new(at, side));
            let c = cluster(seed(), crashing(m.clone(), &crash));
            let r = c.replace(&Selector::All, &quick()).await;
            assert!(r.is_err(), "replace crash at {at} {side:?} did not stop it");
            let c = cluster(seed(), m.clone());
            c.replace(&Selector::All, &quick())
                .await
                .unwrap_or_else(|e| panic!("rerun after replace crash at {at} {side:?}: {e}"));
            let s = snapshot(m.as_ref()).await;
            assert_eq!(s.volumes.len(), volumes_before, "a volume was lost");
            assert_eq!(s, after_replace, "replace crash at {at} {side:?}");
            points += 1;
        }
    }
    println!(
        "crash points tested: {points} (apply: {apply_calls} calls, replace: {replace_calls} calls, both sides)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_step_of_scale_up_and_down_then_rerun_converges() {
    // Scaling masters down releases their floating IPs (disassociated first).
    for (role, masters, target) in [(Role::Node, 1, 5), (Role::Node, 1, 1), (Role::Master, 3, 1)] {
        let base = || spec("sca", masters, 3, 0);
        let m = memory();
        cluster(base(), m.clone()).apply().await.unwrap();
        let counter = Arc::new(Crash::new(usize::MAX, Side::Before));
        let c = cluster(base(), crashing(m.clone(), &counter));
        c.scale(role, target, &quick()).await.unwrap();
        let calls = counter.count.load(Ordering::SeqCst);
        let clean = snapshot(m.as_ref()).await;
        assert!(calls > 0);
        for side in [Side::Before, Side::After] {
            for at in 0..calls {
                let m = memory();
                cluster(base(), m.clone()).apply().await.unwrap();
                let crash = Arc::new(Crash::new(at, side));
                let c = cluster(base(), crashing(m.clone(), &crash));
                let r = c.scale(role, target, &quick()).await;
                assert!(r.is_err(), "scale crash at {at} {side:?} did not stop it");
                let c = cluster(base(), m.clone());
                c.scale(role, target, &quick())
                    .await
                    .unwrap_or_else(|e| panic!("rerun after scale crash at {at} {side:?}: {e}"));
                assert_eq!(
                    snapshot(m.as_ref()).await,
                    clean,
                    "scale {role:?} to {target}: crash at {at} {side:?}"
                );
            }
        }
        println!("scale {role:?} to {target}: {} crash points", calls * 2);
    }
}
