//! [`Memo`]: look-ups a provider makes once and keeps (an image, a flavor, a network by
//! name; the zones), so creating many resources does not repeat them per resource.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::Result;

/// Answers of look-ups by key, kept for the memo's lifetime (a provider's). Concurrent
/// first look-ups of one key share a single request; a failed look-up is not kept, so
/// the next caller asks again.
///
/// What is kept is what a create refers to and a cloud rarely changes (catalog
/// entries, networks, zones): a resource deleted meanwhile is still refused by the call
/// that uses it. Resources the provider creates or deletes itself are never memoized.
pub struct Memo<V> {
    cells: Mutex<HashMap<String, Arc<OnceCell<V>>>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> std::fmt::Debug for Memo<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.cells.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("Memo").field("keys", &n).finish()
    }
}

impl<V: Clone> Memo<V> {
    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// The kept answer for `key`, or the one `look_up` gives (kept when it is `Ok`).
    pub async fn get_or_try<F, Fut>(&self, key: &str, look_up: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        let cell = self
            .cells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(look_up).await.cloned()
    }

    /// Forgets every answer (the next look-up of each key asks again).
    pub fn clear(&self) {
        self.cells.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::{Error, Operation};

    #[tokio::test]
    async fn concurrent_look_ups_share_one_and_failures_are_not_kept() {
        let memo: Memo<u32> = Memo::new();
        let calls = AtomicU32::new(0);
        let look = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(7)
        };
        let got = futures::future::join_all((0..10).map(|_| memo.get_or_try("image", look))).await;
        assert!(got.iter().all(|g| matches!(g, Ok(7))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let failed = memo
            .get_or_try("flavor", || async {
                Err(Error::transient(Operation::CreateInstance, "busy"))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(
            memo.get_or_try("flavor", || async { Ok(2) }).await.ok(),
            Some(2)
        );
        memo.clear();
        assert_eq!(
            memo.get_or_try("image", || async { Ok(8) }).await.ok(),
            Some(8)
        );
    }
}
