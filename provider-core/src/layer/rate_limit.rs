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
    burst: u32,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish()
    }
}

impl RateLimit {
    /// At most `n` calls per second (at least 1), with bursts of up to `n`.
    pub fn per_second(n: u32) -> Self {
        Self::with_burst(n, n)
    }

    /// At most `n` calls per second (at least 1), with bursts of up to `burst` (at least
    /// 1). A burst of 1 spaces every call `1/n` s apart, so `calls` calls take at least
    /// `(calls - 1) / n` s: what a benchmark needs for an exact "calls / rate" bound.
    pub fn with_burst(n: u32, burst: u32) -> Self {
        let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(governor::RateLimiter::direct(
                Quota::per_second(n).allow_burst(burst),
            )),
            per_second: n.get(),
            burst: burst.get(),
        }
    }

    /// Calls admitted per second.
    pub fn rate(&self) -> u32 {
        self.per_second
    }

    /// Calls admitted at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.burst
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

    #[tokio::test]
    async fn a_burst_of_one_spaces_every_call() {
        // 6 calls at 50/s without a burst: the 5 after the first wait 20 ms each.
        let rl = RateLimit::with_burst(50, 1);
        assert_eq!((rl.rate(), rl.burst()), (50, 1));
        let start = Instant::now();
        for _ in 0..6 {
            rl.call(Operation::GetInstance, || async { Ok(()) })
                .await
                .unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "{:?}",
            start.elapsed()
        );
    }
}
