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
use cluster::hooks::{Hooks, READY_DONE, TAG_READY};
use cluster::replace::ReplaceOptions;
use cluster::{ClusterSpec, Role, Selector};
use common::rolling::{cluster, memory, quick, snapshot, spec, watched, Watch};
use provider_core::layer::{Layer, Layered};
use provider_core::memory::MemoryProvider;
use provider_core::{Instance, Operation, Provider, ProviderExt, TagFilter};

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
    crashing_over(base, crash)
}

fn crashing_over(base: Arc<dyn Provider>, crash: &Arc<Crash>) -> Arc<dyn Provider> {
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

fn delete_first() -> ReplaceOptions {
    ReplaceOptions {
        max_surge: 0,
        max_unavailable: 1,
        ..quick()
    }
}

/// The delete-first path in a project whose quota has no room for one more instance:
/// a crash at every mutating call (both sides), also between deleting an old node and
/// creating its successor; the rerun (in the same full project) converges to the clean
/// run's state, every data volume kept and on its slot's node. Once without hooks and
/// once with hooks, where every successor is also told `on_ready` once (twice only for
/// a node whose hook had returned when the crash hit, before its marker was written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_step_of_delete_first_replace_in_a_full_project_then_rerun_converges() {
    let seed = || spec("dfc", 3, 3, 2);
    let slots = [("master", 3), ("node", 3), ("storage", 2)];
    let full = |m: &Arc<MemoryProvider>| Arc::new(Watch::new(m.clone(), Some(8), &slots));
    for hooked in [false, true] {
        let with = |c: cluster::Cluster, told: &Arc<Told>| {
            if hooked {
                c.with_hooks(told.clone())
            } else {
                c
            }
        };
        let m = memory();
        cluster(seed(), m.clone()).apply().await.unwrap();
        let volumes_before = snapshot(m.as_ref()).await.volumes.len();
        let counter = Arc::new(Crash::new(usize::MAX, Side::Before));
        let watch = full(&m);
        let told = Arc::new(Told::default());
        let c = with(
            cluster(seed(), crashing_over(watched(&m, watch.clone()), &counter)),
            &told,
        );
        let r = c.replace(&Selector::All, &delete_first()).await.unwrap();
        assert_eq!(r.replaced.len(), 8, "{r}");
        assert_eq!(watch.samples().refused, 0);
        let calls = counter.count.load(Ordering::SeqCst);
        let clean = snapshot(m.as_ref()).await;
        let successors: Vec<String> = told.calls().into_keys().collect();
        assert_eq!(successors.len(), if hooked { 8 } else { 0 });
        assert!(calls > 50, "{calls}");

        let (mut points, mut twice) = (0, 0);
        for side in [Side::Before, Side::After] {
            for at in 0..calls {
                let m = memory();
                cluster(seed(), m.clone()).apply().await.unwrap();
                let crash = Arc::new(Crash::new(at, side));
                let watch = full(&m);
                let told = Arc::new(Told::default());
                let c = with(
                    cluster(seed(), crashing_over(watched(&m, watch.clone()), &crash)),
                    &told,
                );
                let r = c.replace(&Selector::All, &delete_first()).await;
                assert!(
                    r.is_err(),
                    "delete-first crash at {at} {side:?} did not stop it"
                );
                let unmarked = untold(m.as_ref()).await;
                let edge: Vec<String> = told
                    .calls()
                    .into_keys()
                    .filter(|n| unmarked.contains(n))
                    .collect();
                let c = with(cluster(seed(), watched(&m, watch.clone())), &told);
                c.replace(&Selector::All, &delete_first())
                    .await
                    .unwrap_or_else(|e| {
                        panic!("rerun after delete-first crash at {at} {side:?}: {e}")
                    });
                let seen = watch.samples();
                assert_eq!(seen.refused, 0, "crash at {at} {side:?}: {seen:?}");
                assert!(
                    seen.fewest_masters >= Some(2),
                    "crash at {at} {side:?}: {seen:?}"
                );
                let s = snapshot(m.as_ref()).await;
                assert_eq!(s.volumes.len(), volumes_before, "a volume was lost");
                assert_eq!(s, clean, "delete-first crash at {at} {side:?}");
                let calls_now = told.calls();
                assert_eq!(calls_now.len(), successors.len(), "{calls_now:?}");
                for n in &successors {
                    let want = if edge.contains(n) { 2 } else { 1 };
                    assert_eq!(
                        calls_now.get(n),
                        Some(&want),
                        "crash at {at} {side:?}: {calls_now:?} (edge {edge:?})"
                    );
                }
                points += 1;
                twice += edge.len();
            }
        }
        println!(
            "delete-first replace{}: {points} crash points ({calls} mutating calls, both sides), {twice} node(s) told twice",
            if hooked { " with hooks" } else { "" }
        );
    }
}

/// Counts on_ready calls per node.
#[derive(Default)]
struct Told(std::sync::Mutex<std::collections::BTreeMap<String, usize>>);

#[async_trait]
impl Hooks for Told {
    async fn on_ready(&self, node: &Instance) -> Result<(), cluster::HookError> {
        *self.0.lock().unwrap().entry(node.name.clone()).or_default() += 1;
        Ok(())
    }
}

impl Told {
    fn calls(&self) -> std::collections::BTreeMap<String, usize> {
        self.0.lock().unwrap().clone()
    }
}

/// The nodes whose on_ready marker is not `done`.
async fn untold(m: &MemoryProvider) -> Vec<String> {
    m.list_instances(&TagFilter::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.tags.get(TAG_READY).map(String::as_str) != Some(READY_DONE))
        .map(|i| i.name)
        .collect()
}

/// With hooks, a crash at every mutating call of a scale-up (and of an apply), both
/// sides, then a rerun: every new node is told `on_ready` exactly once, except a node
/// whose hook had returned when the crash hit and whose marker was not written (the
/// at-least-once edge): that one is told twice, and only that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_scale_up_or_apply_with_hooks_tells_each_new_node_once() {
    let base = || spec("rdy", 1, 3, 0);
    // (what runs, the nodes it brings up), from a cloud with the base cluster or empty.
    for verb in ["scale", "apply"] {
        let run = |c: cluster::Cluster| async move {
            match verb {
                "scale" => c.scale(Role::Node, 6, &quick()).await.map(|_| ()),
                _ => c.apply().await.map(|_| ()),
            }
        };
        let prepare = |m: Arc<MemoryProvider>| async move {
            if verb == "scale" {
                cluster(base(), m).apply().await.unwrap();
            }
        };
        let m = memory();
        prepare(m.clone()).await;
        let counter = Arc::new(Crash::new(usize::MAX, Side::Before));
        let told = Arc::new(Told::default());
        run(cluster(base(), crashing(m.clone(), &counter)).with_hooks(told.clone()))
            .await
            .unwrap();
        let calls = counter.count.load(Ordering::SeqCst);
        let clean = snapshot(m.as_ref()).await;
        let new_nodes: Vec<String> = told.calls().into_keys().collect();
        assert!(told.calls().values().all(|n| *n == 1), "{:?}", told.calls());
        assert_eq!(new_nodes.len(), if verb == "scale" { 3 } else { 4 });

        let (mut points, mut twice) = (0, 0);
        for side in [Side::Before, Side::After] {
            for at in 0..calls {
                let m = memory();
                prepare(m.clone()).await;
                let crash = Arc::new(Crash::new(at, side));
                let told = Arc::new(Told::default());
                let r = run(cluster(base(), crashing(m.clone(), &crash)).with_hooks(told.clone()))
                    .await;
                assert!(r.is_err(), "{verb} crash at {at} {side:?} did not stop it");
                // Told in the crashed run but not marked: the edge.
                let unmarked = untold(m.as_ref()).await;
                let edge: Vec<String> = told
                    .calls()
                    .into_keys()
                    .filter(|n| unmarked.contains(n))
                    .collect();
                run(cluster(base(), m.clone()).with_hooks(told.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("rerun after {verb} crash at {at} {side:?}: {e}"));
                let calls_now = told.calls();
                for n in &new_nodes {
                    let want = if edge.contains(n) { 2 } else { 1 };
                    assert_eq!(
                        calls_now.get(n),
                        Some(&want),
                        "{verb} crash at {at} {side:?}: {calls_now:?} (edge {edge:?})"
                    );
                }
                assert_eq!(calls_now.len(), new_nodes.len(), "{calls_now:?}");
                assert!(untold(m.as_ref())
                    .await
                    .iter()
                    .all(|n| !new_nodes.contains(n)));
                assert_eq!(
                    snapshot(m.as_ref()).await,
                    clean,
                    "{verb} crash at {at} {side:?}"
                );
                points += 1;
                twice += edge.len();
            }
        }
        println!(
            "{verb} with hooks: {points} crash points, {twice} node(s) told twice (hook returned, marker not written)"
        );
    }
}
