use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::Layer;
use crate::{Error, Operation, Result};

/// Which faults to inject, and how often. Rates are probabilities in `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Seed of the random sequence: the same seed and calls give the same faults.
    pub seed: u64,
    /// Rate of `Transient` errors returned *instead of* calling the provider.
    pub error_rate: f64,
    /// Per-operation overrides of `error_rate`.
    pub error_rates: BTreeMap<Operation, f64>,
    /// Rate of `Throttled` errors (with `retry_after`) instead of calling the provider.
    pub throttle_rate: f64,
    /// The Retry-After of injected throttling.
    pub retry_after: Duration,
    /// Rate of lost replies: the provider *is* called, then a `Transient` error is
    /// returned, as when a reply is lost after the cloud acted.
    pub lost_reply_rate: f64,
    /// Latency added before every call: a cloud's fixed round trip.
    pub latency: Duration,
    /// Time an instance takes to boot: added after every successful `create_instance`
    /// and `create_instances` call, once per call (the instances of a batch boot side
    /// by side), as a cloud whose create returns when the instance runs. Benchmarks use
    /// it with [`FaultPlan::latency`] to give a bring-up a known critical path.
    pub boot_time: Duration,
}

impl FaultPlan {
    /// No faults, with the given seed.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            error_rate: 0.0,
            error_rates: BTreeMap::new(),
            throttle_rate: 0.0,
            retry_after: Duration::from_millis(10),
            lost_reply_rate: 0.0,
            latency: Duration::ZERO,
            boot_time: Duration::ZERO,
        }
    }

    /// No faults; every call takes `latency`, and every instance create `boot_time`
    /// more (see [`FaultPlan::boot_time`]).
    pub fn timed(seed: u64, latency: Duration, boot_time: Duration) -> Self {
        Self {
            latency,
            boot_time,
            ..Self::seeded(seed)
        }
    }
}

/// What the layer did to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Fault {
    /// Returned `Transient` without calling.
    Error,
    /// Returned `Throttled` without calling.
    Throttle,
    /// Called, then returned `Transient`.
    LostReply,
}

/// Injects seeded faults, latency and boot time, to test (and time) what sits above a
/// provider.
///
/// Clones share one random sequence and one log of injected faults.
#[derive(Debug, Clone)]
pub struct FaultInjecting {
    plan: FaultPlan,
    state: Arc<Mutex<FaultState>>,
}

#[derive(Debug)]
struct FaultState {
    rng: ChaCha8Rng,
    injected: Vec<(Operation, Fault)>,
}

impl FaultInjecting {
    /// A layer following `plan`.
    pub fn new(plan: FaultPlan) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(plan.seed);
        Self {
            plan,
            state: Arc::new(Mutex::new(FaultState {
                rng,
                injected: Vec::new(),
            })),
        }
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<(Operation, Fault)> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .injected
            .clone()
    }

    /// Decides the fate of one call: one random draw per call, so the sequence depends
    /// only on the seed and the order of calls.
    fn draw(&self, op: Operation) -> Option<Fault> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let x: f64 = st.rng.random();
        let error_rate = *self
            .plan
            .error_rates
            .get(&op)
            .unwrap_or(&self.plan.error_rate);
        let fault = if x < error_rate {
            Some(Fault::Error)
        } else if x < error_rate + self.plan.throttle_rate {
            Some(Fault::Throttle)
        } else if x < error_rate + self.plan.throttle_rate + self.plan.lost_reply_rate {
            Some(Fault::LostReply)
        } else {
            None
        };
        if let Some(f) = fault {
            st.injected.push((op, f));
        }
        fault
    }
}

#[async_trait]
impl Layer for FaultInjecting {
    async fn call<T, F, Fut>(&self, op: Operation, mut f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        if !self.plan.latency.is_zero() {
            tokio::time::sleep(self.plan.latency).await;
        }
        match self.draw(op) {
            Some(Fault::Error) => Err(Error::transient(op, "injected fault")),
            Some(Fault::Throttle) => Err(Error::Throttled {
                operation: op,
                retry_after: Some(self.plan.retry_after),
            }),
            Some(Fault::LostReply) => {
                let _ = f().await;
                Err(Error::transient(
                    op,
                    "injected fault: reply lost after the call",
                ))
            }
            None => {
                let result = f().await;
                let boots = matches!(op, Operation::CreateInstance | Operation::CreateInstances);
                if boots && result.is_ok() && !self.plan.boot_time.is_zero() {
                    tokio::time::sleep(self.plan.boot_time).await;
                }
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    fn timed() -> FaultInjecting {
        FaultInjecting::new(FaultPlan::timed(
            1,
            Duration::from_millis(30),
            Duration::from_secs(2),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn every_call_takes_the_fixed_latency() {
        let layer = timed();
        let start = Instant::now();
        for _ in 0..3 {
            layer
                .call(Operation::ListInstances, || async { Ok(()) })
                .await
                .unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_millis(90));
        assert!(layer.injected().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn instance_creates_take_the_boot_time_once_per_call() {
        let layer = timed();
        for op in [Operation::CreateInstance, Operation::CreateInstances] {
            let start = Instant::now();
            layer.call(op, || async { Ok(()) }).await.unwrap();
            assert_eq!(start.elapsed(), Duration::from_millis(2030), "{op}");
        }
        // Other creates, and a create that failed, do not boot anything.
        let start = Instant::now();
        layer
            .call(Operation::CreateVolume, || async { Ok(()) })
            .await
            .unwrap();
        let failed: Result<()> = layer
            .call(Operation::CreateInstance, || async {
                Err(Error::transient(Operation::CreateInstance, "no capacity"))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(start.elapsed(), Duration::from_millis(60));
    }
}
