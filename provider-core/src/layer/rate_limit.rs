use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota};

use super::Layer;
use crate::{Operation, Result};

/// A client-side rate limiter shared by every call through it (GCRA, from `governor`).
///
/// Clone it to share one budget between several layered providers of one account.
#[derive(Clone)]
pub struct RateLimit {
    limiter: Arc<DefaultDirectRateLimiter>,
    per_second: u32,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("per_second", &self.per_second)
            .finish()
    }
}

impl RateLimit {
    /// At most `n` calls per second (at least 1), with bursts of up to `n`.
    pub fn per_second(n: u32) -> Self {
        let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(governor::RateLimiter::direct(Quota::per_second(n))),
            per_second: n.get(),
        }
    }
}

#[async_trait]
impl Layer for RateLimit {
    async fn call<T, F, Fut>(&self, _op: Operation, mut f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        self.limiter.until_ready().await;
        f().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn bursts_then_limits() {
        // governor uses its own clock, so this runs in real time: 25 calls at 20/s is a
        // burst of 20 and 5 more spaced 50 ms apart.
        let rl = RateLimit::per_second(20);
        let start = Instant::now();
        for _ in 0..25 {
            rl.call(Operation::GetInstance, || async { Ok(()) })
                .await
                .unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
    }
}
