use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};

use super::Layer;
use crate::{Operation, Result};

/// Retries retryable errors ([`crate::Error::is_retryable`]) with exponential backoff and
/// jitter, waiting at least as long as a `Throttled` error's Retry-After.
///
/// Creates are idempotent by name, so repeating one after a lost reply is safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, including the first (1 = no retry).
    pub max_attempts: usize,
    /// Delay before the first retry.
    pub min_delay: Duration,
    /// Longest delay between attempts (Retry-After may exceed it).
    pub max_delay: Duration,
    /// Add random jitter to each delay.
    pub jitter: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            jitter: true,
        }
    }
}

impl Retry {
    /// A policy with `max_attempts` and short delays, for tests and local providers.
    pub fn fast(max_attempts: usize) -> Self {
        Self {
            max_attempts,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            jitter: true,
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1));
        if self.jitter {
            b.with_jitter()
        } else {
            b
        }
    }
}

#[async_trait]
impl Layer for Retry {
    async fn call<T, F, Fut>(&self, op: Operation, f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        f.retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &crate::Error| e.is_retryable())
            .adjust(
                |e: &crate::Error, planned| match (e.retry_after(), planned) {
                    // Give up when the backoff says so; otherwise honour Retry-After.
                    (_, None) => None,
                    (Some(ra), Some(d)) => Some(ra.max(d)),
                    (None, d) => d,
                },
            )
            .notify(|e, d| tracing::debug!(operation = %op, error = %e, delay = ?d, "retrying"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::Error;

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_until_success() {
        let calls = AtomicUsize::new(0);
        let r = Retry::fast(5)
            .call(Operation::GetVolume, || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(Error::transient(Operation::GetVolume, "blip"))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_conflict_and_stops_at_max_attempts() {
        let calls = AtomicUsize::new(0);
        let r: Result<()> = Retry::fast(5)
            .call(Operation::DeleteVolume, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::conflict(
                    Operation::DeleteVolume,
                    "volume v",
                    "attached",
                ))
            })
            .await;
        assert!(matches!(r, Err(Error::Conflict { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicUsize::new(0);
        let r: Result<()> = Retry::fast(3)
            .call(Operation::GetVolume, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::transient(Operation::GetVolume, "down"))
            })
            .await;
        assert!(matches!(r, Err(Error::Transient { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after() {
        let calls = AtomicUsize::new(0);
        let start = tokio::time::Instant::now();
        let r = Retry::fast(2)
            .call(Operation::ListInstances, || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Error::Throttled {
                        operation: Operation::ListInstances,
                        retry_after: Some(Duration::from_secs(7)),
                    })
                } else {
                    Ok(())
                }
            })
            .await;
        assert_eq!(r, Ok(()));
        assert!(
            start.elapsed() >= Duration::from_secs(7),
            "{:?}",
            start.elapsed()
        );
    }
}
