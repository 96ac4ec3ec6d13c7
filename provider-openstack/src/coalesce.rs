//! [`Coalesce`]: look-ups by name that start together share one request.
//!
//! A create first looks for what an earlier attempt made (by name), and the cluster
//! starts the creates of one kind together: each alone costs one list per resource.
//! Through one `Coalesce`, the look-ups that start within [`WINDOW`] of the first are
//! answered by one list filtered on all their names. Every one of them asked before
//! that list was sent, so none gets an answer older than its question.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use provider_core::Result;
use tokio::sync::watch;

/// How long the first look-up waits for others to join it.
pub(crate) const WINDOW: Duration = Duration::from_millis(10);

/// Most keys one request asks for (its URL stays short: the services' front ends
/// refuse long request lines); later look-ups start the next one.
pub(crate) const MAX_KEYS: usize = 40;

/// Concurrent look-ups of one kind, answered by one request for all their keys.
#[derive(Debug)]
pub(crate) struct Coalesce<V> {
    open: Mutex<Option<Arc<Gather<V>>>>,
}

/// The look-ups gathered for the next request.
#[derive(Debug)]
struct Gather<V> {
    keys: Mutex<Vec<String>>,
    /// The answer, once the request is back; closed if the look-up sending it was
    /// dropped (the others then ask for themselves).
    answer: watch::Receiver<Option<Result<V>>>,
}

impl<V> Default for Coalesce<V> {
    fn default() -> Self {
        Self {
            open: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<V: Clone + Send + Sync> Coalesce<V> {
    /// The answer of `fetch` for the keys gathered with `key` (the caller picks its own
    /// from it). `fetch` must answer for every key it is given.
    pub(crate) async fn get<F, Fut>(&self, key: &str, fetch: F) -> Result<V>
    where
        F: Fn(Vec<String>) -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        let joined = {
            let open = lock(&self.open);
            match open.as_ref() {
                // `has_changed` fails once the sender is gone.
                Some(g) if g.answer.has_changed().is_ok() => {
                    let mut keys = lock(&g.keys);
                    if keys.len() < MAX_KEYS {
                        keys.push(key.to_string());
                        Some(g.answer.clone())
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        if let Some(mut answer) = joined {
            if let Ok(a) = answer.wait_for(Option::is_some).await {
                if let Some(r) = a.as_ref() {
                    return r.clone();
                }
            }
            return fetch(vec![key.to_string()]).await;
        }
        let (send, answer) = watch::channel(None);
        let gather = Arc::new(Gather {
            keys: Mutex::new(vec![key.to_string()]),
            answer,
        });
        *lock(&self.open) = Some(gather.clone());
        tokio::time::sleep(WINDOW).await;
        // Closed before the keys are read: a look-up arriving now opens the next one.
        {
            let mut open = lock(&self.open);
            if open.as_ref().is_some_and(|g| Arc::ptr_eq(g, &gather)) {
                *open = None;
            }
        }
        let keys = lock(&gather.keys).clone();
        let r = fetch(keys).await;
        send.send_replace(Some(r.clone()));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn lookups_started_together_share_one_request() {
        let c: Coalesce<Vec<String>> = Coalesce::default();
        let requests = AtomicU32::new(0);
        let fetch = |keys: Vec<String>| {
            requests.fetch_add(1, Ordering::SeqCst);
            async move { Ok(keys) }
        };
        let (a, b, d) = tokio::join!(c.get("a", fetch), c.get("b", fetch), c.get("d", fetch));
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        for answer in [a, b, d] {
            assert_eq!(answer.unwrap(), vec!["a", "b", "d"]);
        }
        // A later look-up asks again: nothing is kept.
        assert_eq!(c.get("e", fetch).await.unwrap(), vec!["e"]);
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_asks_for_at_most_max_keys() {
        let c: Coalesce<Vec<String>> = Coalesce::default();
        let fetch = |keys: Vec<String>| async move { Ok(keys) };
        let keys: Vec<String> = (0..MAX_KEYS + 1).map(|i| i.to_string()).collect();
        let answers = futures::future::try_join_all(keys.iter().map(|k| c.get(k, fetch)))
            .await
            .unwrap();
        assert_eq!(answers[0].len(), MAX_KEYS);
        // The one over the limit was asked for in a request of its own.
        assert_eq!(answers[MAX_KEYS], vec![MAX_KEYS.to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_first_lookup_leaves_the_others_asking_for_themselves() {
        let c: Coalesce<Vec<String>> = Coalesce::default();
        let fetch = |keys: Vec<String>| async move { Ok(keys) };
        let first = c.get("a", fetch);
        let second = async {
            tokio::task::yield_now().await;
            c.get("b", fetch).await
        };
        // The first is dropped while it gathers (its window is not over).
        let (dropped, b) = tokio::join!(tokio::time::timeout(WINDOW / 2, first), second);
        assert!(dropped.is_err());
        assert_eq!(b.unwrap(), vec!["b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_reaches_every_lookup_of_the_request() {
        let c: Coalesce<Vec<String>> = Coalesce::default();
        let fetch = |_keys: Vec<String>| async move {
            Err::<Vec<String>, _>(provider_core::Error::transient(
                provider_core::Operation::ListInstances,
                "down",
            ))
        };
        let (a, b) = tokio::join!(c.get("a", fetch), c.get("b", fetch));
        assert!(a.is_err() && b.is_err());
    }
}
