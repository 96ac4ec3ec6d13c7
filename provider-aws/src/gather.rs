//! [`Gather`]: concurrent calls that need the same kind of read share one. A caller
//! that arrives before the shared read is sent adds its key to it; the read is sent
//! after one turn of the scheduler (so calls started together, as a plan's ready
//! actions are, join it) and answers every caller that joined. A caller never gets a
//! read sent before it arrived: it is as fresh as its own would be.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use provider_core::{Error, Operation, Result};
use tokio::sync::watch;

/// One shared read: the keys that joined it and its answer once sent.
#[derive(Debug)]
struct Round<V> {
    keys: Mutex<BTreeSet<String>>,
    answer: watch::Sender<Option<Result<V>>>,
}

/// Shares one read among the concurrent callers of one kind (see the module docs).
#[derive(Debug)]
pub(crate) struct Gather<V> {
    open: Mutex<Option<Arc<Round<V>>>>,
}

impl<V> Default for Gather<V> {
    fn default() -> Self {
        Self {
            open: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers the round's joiners with a transient error if the caller sending it is
/// dropped before it answers (they then retry on their own).
struct Abandoned<'a, V>(&'a Round<V>, Operation);

impl<V> Drop for Abandoned<'_, V> {
    fn drop(&mut self) {
        self.0.answer.send_if_modified(|a| {
            if a.is_some() {
                return false;
            }
            *a = Some(Err(Error::transient(self.1, "a shared read was abandoned")));
            true
        });
    }
}

impl<V: Clone> Gather<V> {
    /// The answer of the read `send` makes for the keys of every caller that joined,
    /// `key` among them.
    pub(crate) async fn read<F, Fut>(&self, op: Operation, key: &str, send: F) -> Result<V>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        let (round, leads) = {
            let mut open = lock(&self.open);
            match open.as_ref() {
                Some(r) => {
                    lock(&r.keys).insert(key.to_string());
                    (r.clone(), false)
                }
                None => {
                    let r = Arc::new(Round {
                        keys: Mutex::new(BTreeSet::from([key.to_string()])),
                        answer: watch::channel(None).0,
                    });
                    *open = Some(r.clone());
                    (r, true)
                }
            }
        };
        if !leads {
            let mut rx = round.answer.subscribe();
            let answer = rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| Error::transient(op, "a shared read was abandoned"))?;
            return answer
                .clone()
                .unwrap_or_else(|| Err(Error::transient(op, "a shared read was abandoned")));
        }
        let guard = Abandoned(&round, op);
        tokio::task::yield_now().await;
        let keys: Vec<String> = {
            let mut open = lock(&self.open);
            if open.as_ref().is_some_and(|r| Arc::ptr_eq(r, &round)) {
                *open = None;
            }
            let keys = lock(&round.keys).iter().cloned().collect();
            keys
        };
        let answer = send(keys).await;
        round.answer.send_replace(Some(answer.clone()));
        drop(guard);
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn callers_started_together_share_one_read_and_later_ones_do_not() {
        let gather: Gather<Vec<String>> = Gather::default();
        let sent = AtomicU32::new(0);
        let read = |key: &'static str| {
            let (gather, sent) = (&gather, &sent);
            async move {
                gather
                    .read(Operation::DeleteSecurityGroup, key, |keys| async move {
                        sent.fetch_add(1, Ordering::SeqCst);
                        Ok(keys)
                    })
                    .await
            }
        };
        let (a, b, c) = tokio::join!(read("a"), read("b"), read("c"));
        let all = vec!["a".to_string(), "b".into(), "c".into()];
        assert_eq!(
            (a.unwrap(), b.unwrap(), c.unwrap()),
            (all.clone(), all.clone(), all)
        );
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        // A caller after the read was sent gets a read of its own.
        assert_eq!(read("d").await.unwrap(), vec!["d".to_string()]);
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }
}
