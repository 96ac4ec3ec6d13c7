//! Reads shared by concurrent callers: callers that ask for the same read (by key) at
//! once get one request between them. The read starts after every caller sharing it
//! has asked (the first caller yields once before sending it, so that its siblings in
//! the same `join` can join), so no one gets an answer older than their call: sharing
//! saves requests, never freshness. A read already sent is not joined.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use provider_core::Result;
use tokio::sync::oneshot;

type Waiters<T> = Vec<oneshot::Sender<Result<T>>>;

/// Reads of `T` in progress, by key.
#[derive(Debug)]
pub(crate) struct SharedReads<T> {
    pending: Mutex<HashMap<String, Waiters<T>>>,
}

impl<T> Default for SharedReads<T> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> SharedReads<T> {
    /// The answer of `read` for `key`, shared with the callers asking for `key` at once.
    pub(crate) async fn read<F>(&self, key: &str, read: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let joined = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match pending.get_mut(key) {
                Some(waiters) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    pending.insert(key.to_string(), Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = joined {
            return match rx.await {
                Ok(answer) => answer,
                // The caller that was to read gave up (its future was dropped): read here.
                Err(_) => read.await,
            };
        }
        // Dropped before it sends, the leader still takes its key out, so that its
        // waiters (their senders dropped) read themselves and later callers lead anew.
        let mut guard = Leader {
            reads: self,
            key,
            taken: false,
        };
        tokio::task::yield_now().await;
        let waiters = guard.take();
        let answer = read.await;
        for w in waiters {
            let _ = w.send(answer.clone());
        }
        answer
    }
}

/// The caller that sends a shared read.
struct Leader<'a, T> {
    reads: &'a SharedReads<T>,
    key: &'a str,
    taken: bool,
}

impl<T> Leader<'_, T> {
    /// Closes the read to new callers; returns those sharing it.
    fn take(&mut self) -> Waiters<T> {
        self.taken = true;
        self.reads
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(self.key)
            .unwrap_or_default()
    }
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        if !self.taken {
            self.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn callers_asking_at_once_share_one_read_and_later_ones_read_again() {
        let reads = SharedReads::<u32>::default();
        let sent = AtomicU32::new(0);
        let read =
            || async { Ok::<u32, provider_core::Error>(sent.fetch_add(1, Ordering::SeqCst) + 1) };
        let (a, b, c) = tokio::join!(
            reads.read("vms", read()),
            reads.read("vms", read()),
            reads.read("vms", read())
        );
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (1, 1, 1));
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        // A caller after the shared read was sent gets a read of its own.
        assert_eq!(reads.read("vms", read()).await.unwrap(), 2);
        // Other keys are other reads.
        let (x, y) = tokio::join!(reads.read("a", read()), reads.read("b", read()));
        assert_ne!(x.unwrap(), y.unwrap());
    }

    #[tokio::test]
    async fn a_leader_dropped_before_reading_leaves_the_others_reading_themselves() {
        let reads = SharedReads::<u32>::default();
        let leader = Box::pin(reads.read("vms", async { Ok(1) }));
        // Polled once: it registered and yielded, then it is dropped.
        let mut leader = leader;
        assert!(futures::poll!(&mut leader).is_pending());
        drop(leader);
        assert_eq!(reads.read("vms", async { Ok(2) }).await.unwrap(), 2);
    }
}
