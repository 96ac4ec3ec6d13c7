//! The SDK interceptor that counts the AWS API requests the provider sends, per
//! `service.Operation`, in a [`RequestCounts`] (on both clients). The `Instrumented`
//! layer counts trait calls; this counts what they cost in AWS requests (retries
//! included, one per attempt).

use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use provider_core::requests::RequestCounts;

/// Counts each request in its [`RequestCounts`] as `ec2.RunInstances`,
/// `elbv2.CreateListener`, ...
#[derive(Debug, Clone, Default)]
pub(crate) struct CountRequests(pub(crate) RequestCounts);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "PlinthRequestCounts"
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
        self.0.add(key);
        Ok(())
    }
}
