use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::time::Instant;

use super::Layer;
use crate::{ErrorKind, Operation, Result};

/// Counts calls, errors by kind and latency per operation.
///
/// Cheap to clone: clones share one set of counters, so keep a clone to read
/// [`Instrumented::snapshot`] after wrapping a provider in another.
#[derive(Debug, Clone, Default)]
pub struct Instrumented {
    stats: Arc<Mutex<BTreeMap<Operation, OperationStats>>>,
}

/// Counters of one operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OperationStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed, by error kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Sum of call latencies.
    pub total_latency: Duration,
    /// Slowest call.
    pub max_latency: Duration,
}

impl OperationStats {
    /// Failed calls of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Mean latency, zero when there were no calls.
    pub fn mean_latency(&self) -> Duration {
        if self.calls == 0 {
            Duration::ZERO
        } else {
            self.total_latency / self.calls as u32
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Counters of each operation called at least once.
    pub operations: BTreeMap<Operation, OperationStats>,
}

impl Snapshot {
    /// Calls of every operation.
    pub fn total_calls(&self) -> u64 {
        self.operations.values().map(|s| s.calls).sum()
    }

    /// Failed calls of every operation.
    pub fn total_errors(&self) -> u64 {
        self.operations.values().map(|s| s.error_count()).sum()
    }

    /// Calls of one operation.
    pub fn calls(&self, op: Operation) -> u64 {
        self.operations.get(&op).map_or(0, |s| s.calls)
    }
}

impl Instrumented {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        Snapshot {
            operations: stats.clone(),
        }
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[async_trait]
impl Layer for Instrumented {
    async fn call<T, F, Fut>(&self, op: Operation, mut f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        let start = Instant::now();
        let result = f().await;
        let latency = start.elapsed();
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let s = stats.entry(op).or_default();
        s.calls += 1;
        s.total_latency += latency;
        s.max_latency = s.max_latency.max(latency);
        if let Err(e) = &result {
            *s.errors.entry(e.kind()).or_default() += 1;
        }
        drop(stats);
        tracing::trace!(operation = %op, ?latency, ok = result.is_ok(), "provider call");
        result
    }
}
