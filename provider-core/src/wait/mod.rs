//! Waiting for resources: one shared poller with backoff and per-kind timeouts.
//!
//! Every backend waits through [`Poller`], so "usable or `Timeout`" means the same
//! thing everywhere, and a set of resources is waited for with one probe per interval
//! ([`Poller::until_all`]) instead of one loop each. Waits that start apart (each
//! create or delete waiting for its own resource) share probes through a [`Watch`].

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{Error, Operation, Result};

mod watch;

pub use watch::Watch;

/// How long to wait for each kind of resource (DESIGN.md defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Instance running.
    pub instance: Duration,
    /// Volume available / attached / detached.
    pub volume: Duration,
    /// Floating IP allocated / associated.
    pub floating_ip: Duration,
    /// Load balancer active.
    pub load_balancer: Duration,
    /// Any resource gone after a delete.
    pub delete: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            instance: Duration::from_secs(600),
            volume: Duration::from_secs(300),
            floating_ip: Duration::from_secs(120),
            load_balancer: Duration::from_secs(600),
            delete: Duration::from_secs(600),
        }
    }
}

impl Timeouts {
    /// Every timeout set to `d` (handy in tests).
    pub fn all(d: Duration) -> Self {
        Self {
            instance: d,
            volume: d,
            floating_ip: d,
            load_balancer: d,
            delete: d,
        }
    }
}

/// What one probe of a resource found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll<T> {
    /// In the wanted state.
    Ready(T),
    /// Not yet; the state seen, for the timeout message.
    Pending(String),
}

/// Polls with exponential backoff (interval doubling from `initial` up to `max`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poller {
    /// First interval.
    pub initial: Duration,
    /// Longest interval.
    pub max: Duration,
}

impl Default for Poller {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
        }
    }
}

impl Poller {
    /// A poller with fixed bounds.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// Probes until it answers `Ready`, a non-retryable error, or `timeout` passes.
    /// Retryable probe errors count as "not yet".
    pub async fn until<T, F, Fut>(
        &self,
        operation: Operation,
        resource: &str,
        wanted: &str,
        timeout: Duration,
        mut probe: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>>>,
    {
        let start = Instant::now();
        let mut interval = self.initial;
        loop {
            let last_state = match probe().await {
                Ok(Poll::Ready(t)) => return Ok(t),
                Ok(Poll::Pending(state)) => state,
                Err(e) if e.is_retryable() => format!("probe failed: {e}"),
                Err(e) => return Err(e),
            };
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
            tokio::time::sleep(interval.min(timeout - waited)).await;
            interval = (interval * 2).min(self.max);
        }
    }

    /// Waits for a set of resources with one probe per interval. The probe gets the ids
    /// still pending and answers for those it saw; an id it leaves out stays pending.
    /// Returns the ready values in the order of `ids`.
    pub async fn until_all<T, F, Fut>(
        &self,
        operation: Operation,
        wanted: &str,
        timeout: Duration,
        ids: &[String],
        mut probe: F,
    ) -> Result<Vec<T>>
    where
        F: FnMut(Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<(String, Poll<T>)>>>,
    {
        let start = Instant::now();
        let mut interval = self.initial;
        let mut ready: BTreeMap<String, T> = BTreeMap::new();
        let mut states: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let pending: Vec<String> = ids
                .iter()
                .filter(|id| !ready.contains_key(*id))
                .cloned()
                .collect();
            if pending.is_empty() {
                return Ok(ids.iter().filter_map(|id| ready.remove(id)).collect());
            }
            match probe(pending.clone()).await {
                Ok(answers) => {
                    for (id, p) in answers {
                        match p {
                            Poll::Ready(t) => {
                                ready.insert(id, t);
                            }
                            Poll::Pending(s) => {
                                states.insert(id, s);
                            }
                        }
                    }
                }
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
            if ready.len() == ids.len() {
                continue;
            }
            let waited = start.elapsed();
            if waited >= timeout {
                let still: Vec<String> = ids
                    .iter()
                    .filter(|id| !ready.contains_key(*id))
                    .map(|id| {
                        format!(
                            "{id}: {}",
                            states.get(id).map(String::as_str).unwrap_or("not seen")
                        )
                    })
                    .collect();
                return Err(Error::Timeout {
                    operation,
                    resource: format!("{} of {} resources", still.len(), ids.len()),
                    wanted: wanted.to_string(),
                    last_state: still.join(", "),
                    waited,
                });
            }
            tokio::time::sleep(interval.min(timeout - waited)).await;
            interval = (interval * 2).min(self.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn until_returns_when_ready() {
        let n = AtomicU32::new(0);
        let poller = Poller::new(Duration::from_millis(10), Duration::from_millis(40));
        let v = poller
            .until(
                Operation::GetInstance,
                "i",
                "running",
                Duration::from_secs(5),
                || async {
                    let k = n.fetch_add(1, Ordering::SeqCst);
                    Ok(if k < 3 {
                        Poll::Pending(format!("pending {k}"))
                    } else {
                        Poll::Ready(k)
                    })
                },
            )
            .await
            .unwrap();
        assert_eq!(v, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn until_times_out_with_last_state() {
        let poller = Poller::new(Duration::from_millis(10), Duration::from_millis(40));
        let err = poller
            .until::<(), _, _>(
                Operation::CreateVolume,
                "volume v1",
                "available",
                Duration::from_secs(1),
                || async { Ok(Poll::Pending("creating".into())) },
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
    }

    #[tokio::test(start_paused = true)]
    async fn until_all_uses_one_probe_per_interval() {
        let probes = AtomicU32::new(0);
        let ids: Vec<String> = (0..5).map(|i| format!("id{i}")).collect();
        let poller = Poller::new(Duration::from_millis(10), Duration::from_millis(10));
        let out = poller
            .until_all(
                Operation::GetInstances,
                "running",
                Duration::from_secs(5),
                &ids,
                |pending| {
                    let round = probes.fetch_add(1, Ordering::SeqCst) as usize;
                    async move {
                        // One more id becomes ready each round.
                        Ok(pending
                            .into_iter()
                            .map(|id| {
                                let i: usize = id[2..].parse().unwrap();
                                let p = if i <= round {
                                    Poll::Ready(i)
                                } else {
                                    Poll::Pending("pending".into())
                                };
                                (id, p)
                            })
                            .collect())
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        assert_eq!(probes.load(Ordering::SeqCst), 5);
    }
}
