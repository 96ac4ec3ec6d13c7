//! Counts of the AWS API requests the provider sends, per `Service.Operation` (an SDK
//! interceptor on both clients). The `Instrumented` layer counts trait calls; this
//! counts what they cost in AWS requests (retries included, one per attempt).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// Requests sent, per `service.Operation` (`ec2.RunInstances`, `elbv2.CreateListener`).
#[derive(Debug, Clone, Default)]
pub struct ApiCalls {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl ApiCalls {
    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// All requests so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Starts counting from zero.
    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn add(&self, key: String) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert(0) += 1;
    }
}

impl Intercept for ApiCalls {
    fn name(&self) -> &'static str {
        "PlinthApiCalls"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let key = match cfg.load::<Metadata>() {
            Some(m) => {
                let service = match m.service() {
                    s if s.contains("Load Balancing") => "elbv2".to_string(),
                    s => s.to_ascii_lowercase(),
                };
                format!("{service}.{}", m.name())
            }
            None => "unknown".to_string(),
        };
        self.add(key);
        Ok(())
    }
}
