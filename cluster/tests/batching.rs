//! Requests that batch: a destroy deletes its instances with one `delete_instances`
//! call, not one `delete_instance` each, and still leaves nothing behind.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cluster::Observed;
use provider_core::layer::{Layer, Layered};
use provider_core::{async_trait, Operation, Provider, ProviderExt, Result, TagFilter};

/// Makes load balancer deletes slow, so the instance deletes behind them become ready
/// well after the others (those behind the floating IP and the detaches).
#[derive(Debug)]
struct SlowLbDeletes;

#[async_trait]
impl Layer for SlowLbDeletes {
    async fn call<T, F, Fut>(&self, op: Operation, mut f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        if op == Operation::DeleteLoadBalancer {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        f().await
    }
}

#[tokio::test]
async fn destroy_deletes_the_instances_in_one_batch() {
    let (mem, metrics, counted) = common::counted();
    let p: Arc<dyn Provider> = Arc::new(Layered::new(counted, SlowLbDeletes));
    let c = common::cluster(common::memory_spec("batched", 3, 3, 2), p.clone());
    c.apply().await.unwrap();
    metrics.reset();

    let out = c.destroy().await.unwrap();
    assert!(out.report.is_complete(), "{}", out.report);
    // Eight instances whose deletes wait on different removals (LBs, the floating IP,
    // the detaches) still go as one call.
    let calls = metrics.snapshot();
    assert_eq!(calls.calls(Operation::DeleteInstances), 1);
    assert_eq!(calls.calls(Operation::DeleteInstance), 0);
    let deletes = out
        .report
        .done
        .iter()
        .filter(|a| a.description.starts_with("delete instance"))
        .count();
    assert_eq!(deletes, 8, "{}", out.report);
    assert!(Observed::fetch(p.as_ref(), "batched")
        .await
        .unwrap()
        .is_empty());
    assert!(mem
        .list_instances(&TagFilter::all())
        .await
        .unwrap()
        .is_empty());
}
