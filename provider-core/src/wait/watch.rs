//! [`Watch`]: waits on many resources of one kind that share one probe per interval.
//!
//! Each create, attach or delete waits for its own resource, and runs concurrently with
//! others of its kind. Waited for one loop each, `n` resources cost `n` requests per
//! interval; registered with one `Watch`, they cost one list (or batched describe) per
//! interval, whoever asked: the waiter whose turn it is probes for every id waiting.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::{Poll, Poller};
use crate::{Error, Operation, Result};

/// Waits on resources of one kind with one probe per poll interval for all of them.
///
/// The probe takes the ids being waited for and answers the records it saw (an id it
/// leaves out is absent: not created yet, or gone); each waiter judges its own record.
/// Only probes sent after a waiter registered answer it, so a record read before the
/// change it waits for is never taken for its outcome. Cheap to clone: clones share
/// their waiters.
pub struct Watch<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Watch<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Watch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("Watch")
            .field("poller", &self.inner.poller)
            .field("waiting", &st.waiters.len())
            .field("rounds", &st.started)
            .finish()
    }
}

struct Inner<T> {
    poller: Poller,
    state: Mutex<State<T>>,
    /// Held by the waiter that probes, so a round's waiters share its answer.
    probing: tokio::sync::Mutex<()>,
}

struct State<T> {
    /// Ids being waited for, with how many waiters each.
    waiters: BTreeMap<String, usize>,
    /// Rounds started so far (a round's number is the count when it started).
    started: u64,
    /// When the last round started.
    last: Option<Instant>,
    /// Pause between rounds: doubles each round, back to the initial one when a new id
    /// registers (fresh resources settle soonest).
    interval: Duration,
    /// The last finished round.
    done: Option<Round<T>>,
}

struct Round<T> {
    number: u64,
    asked: BTreeSet<String>,
    seen: Result<BTreeMap<String, T>>,
}

/// One waiter's registration, dropped when its wait ends (or is abandoned).
struct Registration<'a, T> {
    watch: &'a Inner<T>,
    id: String,
}

impl<T> Drop for Registration<'_, T> {
    fn drop(&mut self) {
        let mut st = self.watch.lock();
        if let Some(n) = st.waiters.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                st.waiters.remove(&self.id);
            }
        }
    }
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: Clone + Send> Watch<T> {
    /// A watch polling with `poller`'s intervals.
    pub fn new(poller: Poller) -> Self {
        let interval = poller.initial;
        Self {
            inner: Arc::new(Inner {
                poller,
                state: Mutex::new(State {
                    waiters: BTreeMap::new(),
                    started: 0,
                    last: None,
                    interval,
                    done: None,
                }),
                probing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The intervals it polls with.
    pub fn poller(&self) -> &Poller {
        &self.inner.poller
    }

    /// Rounds probed so far (each one probe for every id waiting).
    pub fn rounds(&self) -> u64 {
        self.inner.lock().started
    }

    /// Waits until `check` answers `Ready` for resource `id`, a non-retryable error
    /// (from the probe or `check`), or `timeout` passes (`Timeout` naming `resource`,
    /// `wanted` and the last state seen). `check` gets the record the probe saw, `None`
    /// when the probe left the id out. Retryable errors (of the probe or `check`) count
    /// as "not yet".
    ///
    /// Every concurrent waiter of this watch passes the same `probe` (a list or batched
    /// describe by ids); one of them runs it per interval for all ids waiting.
    #[allow(clippy::too_many_arguments)]
    pub async fn until<R, P, Fut, C>(
        &self,
        operation: Operation,
        resource: &str,
        wanted: &str,
        timeout: Duration,
        id: &str,
        probe: P,
        mut check: C,
    ) -> Result<R>
    where
        P: Fn(Vec<String>) -> Fut,
        Fut: Future<Output = Result<BTreeMap<String, T>>>,
        C: FnMut(Option<&T>) -> Result<Poll<R>>,
    {
        let start = Instant::now();
        let deadline = start + timeout;
        let (_registration, mut after) = self.register(id);
        let mut last_state;
        loop {
            let answer = match self.answer(id, after) {
                Some(a) => a,
                None => {
                    if let Some(due) = self.due() {
                        tokio::time::sleep_until(due.min(deadline)).await;
                    }
                    let _probing = self.inner.probing.lock().await;
                    match self.answer(id, after) {
                        Some(a) => a,
                        None => {
                            let now = Instant::now();
                            if self.due().is_some_and(|due| now < due) && now < deadline {
                                continue;
                            }
                            self.probe_round(&probe).await;
                            match self.answer(id, after) {
                                Some(a) => a,
                                // Unreachable: the round asked for every id registered.
                                None => continue,
                            }
                        }
                    }
                }
            };
            let (round, seen) = answer;
            after = round;
            match seen.and_then(|record| check(record.as_ref())) {
                Ok(Poll::Ready(r)) => return Ok(r),
                Ok(Poll::Pending(s)) => last_state = s,
                Err(e) if e.is_retryable() => last_state = format!("probe failed: {e}"),
                Err(e) => return Err(e),
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Timeout {
                    operation,
                    resource: resource.to_string(),
                    wanted: wanted.to_string(),
                    last_state,
                    waited,
                });
            }
        }
    }

    /// Registers a waiter for `id`; answers the number of the last round started, which
    /// cannot answer it.
    fn register(&self, id: &str) -> (Registration<'_, T>, u64) {
        let mut st = self.inner.lock();
        let n = st.waiters.entry(id.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            st.interval = self.inner.poller.initial;
        }
        let after = st.started;
        drop(st);
        (
            Registration {
                watch: &self.inner,
                id: id.to_string(),
            },
            after,
        )
    }

    /// When the next round is due; `None` before the first (due at once).
    fn due(&self) -> Option<Instant> {
        let st = self.inner.lock();
        st.last.map(|last| last + st.interval)
    }

    /// The record of `id` from the last round, if that round started after round
    /// `after` and asked for `id`: the round's number and what it saw.
    fn answer(&self, id: &str, after: u64) -> Option<(u64, Result<Option<T>>)> {
        let st = self.inner.lock();
        let round = st.done.as_ref()?;
        if round.number <= after || !round.asked.contains(id) {
            return None;
        }
        let seen = match &round.seen {
            Ok(records) => Ok(records.get(id).cloned()),
            Err(e) => Err(e.clone()),
        };
        Some((round.number, seen))
    }

    /// Probes once for every id waiting and records the round.
    async fn probe_round<P, Fut>(&self, probe: &P)
    where
        P: Fn(Vec<String>) -> Fut,
        Fut: Future<Output = Result<BTreeMap<String, T>>>,
    {
        let (number, asked) = {
            let mut st = self.inner.lock();
            st.started += 1;
            st.last = Some(Instant::now());
            let asked: BTreeSet<String> = st.waiters.keys().cloned().collect();
            (st.started, asked)
        };
        let seen = probe(asked.iter().cloned().collect()).await;
        let mut st = self.inner.lock();
        st.interval = (st.interval * 2).min(self.inner.poller.max);
        st.done = Some(Round {
            number,
            asked,
            seen,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Resources that become ready at round `ready_at[id]`, probed through one watch.
    async fn wait_all(watch: &Watch<u32>, ids: &[(String, u32)], probes: &AtomicU32) -> Vec<u32> {
        let probe = |asked: Vec<String>| {
            let round = probes.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok(asked.into_iter().map(|id| (id, round)).collect()) }
        };
        let waits = ids.iter().map(|(id, ready_at)| {
            watch.until(
                Operation::GetVolume,
                id,
                "available",
                Duration::from_secs(60),
                id,
                probe,
                move |seen: Option<&u32>| {
                    Ok(match seen {
                        Some(r) if r >= ready_at => Poll::Ready(*r),
                        _ => Poll::Pending("creating".into()),
                    })
                },
            )
        });
        futures::future::try_join_all(waits).await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn many_waiters_share_one_probe_per_round() {
        let watch = Watch::new(Poller::new(
            Duration::from_millis(10),
            Duration::from_millis(10),
        ));
        let probes = AtomicU32::new(0);
        let ids: Vec<(String, u32)> = (0..20).map(|i| (format!("v{i}"), 1 + i % 4)).collect();
        let rounds = wait_all(&watch, &ids, &probes).await;
        // Ready at rounds 1..=4: four probes for twenty resources, not eighty.
        assert_eq!(probes.load(Ordering::SeqCst), 4);
        assert_eq!(rounds[3], 4);
        assert_eq!(watch.rounds(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_do_not_grow_with_the_number_of_waiters() {
        let poller = Poller::new(Duration::from_millis(10), Duration::from_millis(10));
        let mut counts = Vec::new();
        for n in [1, 10, 100] {
            let watch = Watch::new(poller.clone());
            let probes = AtomicU32::new(0);
            let ids: Vec<(String, u32)> = (0..n).map(|i| (format!("i{i}"), 3)).collect();
            wait_all(&watch, &ids, &probes).await;
            counts.push(probes.load(Ordering::SeqCst));
        }
        assert_eq!(counts, vec![3, 3, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_started_before_registration_does_not_answer() {
        let watch = Watch::new(Poller::new(
            Duration::from_millis(10),
            Duration::from_millis(10),
        ));
        let probes = AtomicU32::new(0);
        // A first wait leaves a finished round that saw "a" ready.
        wait_all(&watch, &[("a".into(), 1)], &probes).await;
        // A new wait on "a" must not take that old answer: it needs a round of its own.
        let v = wait_all(&watch, &[("a".into(), 2)], &probes).await;
        assert_eq!(v, vec![2]);
        assert_eq!(probes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_naming_the_last_state_and_stops_on_hard_errors() {
        let watch: Watch<u32> = Watch::new(Poller::new(
            Duration::from_millis(10),
            Duration::from_millis(40),
        ));
        let err = watch
            .until::<(), _, _, _>(
                Operation::CreateVolume,
                "volume v1",
                "available",
                Duration::from_secs(1),
                "v1",
                |_ids| async { Ok(BTreeMap::new()) },
                |seen| {
                    assert!(seen.is_none());
                    Ok(Poll::Pending("creating".into()))
                },
            )
            .await
            .unwrap_err();
        match err {
            Error::Timeout {
                last_state, waited, ..
            } => {
                assert_eq!(last_state, "creating");
                assert!(waited >= Duration::from_secs(1));
            }
            e => panic!("unexpected {e:?}"),
        }
        let err = watch
            .until::<(), _, _, _>(
                Operation::CreateVolume,
                "volume v2",
                "available",
                Duration::from_secs(1),
                "v2",
                |_ids| async { Err(Error::unauthorized(Operation::GetVolume, "token expired")) },
                |_| Ok(Poll::Pending("creating".into())),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    }
}
