//! The layers are exact: counts match the calls made, and a fixed seed gives a fixed
//! sequence of faults.

use std::sync::Arc;
use std::time::Duration;

use provider_core::layer::{Fault, FaultInjecting, FaultPlan, Instrumented, Layered, Retry};
use provider_core::memory::MemoryProvider;
use provider_core::{
    ErrorKind, Operation, Provider, ProviderExt, SecurityGroupSpec, TagFilter, Tags,
};
use rand::{Rng, SeedableRng};

fn group(name: &str) -> SecurityGroupSpec {
    SecurityGroupSpec::new(name)
        .with_description("layers test")
        .with_tags(Tags::from([("test".to_string(), "layers".to_string())]))
}

#[tokio::test]
async fn instrumented_counts_calls_and_errors_exactly() {
    let metrics = Instrumented::new();
    let p = Layered::new(Arc::new(MemoryProvider::default()), metrics.clone());
    for i in 0..3 {
        p.create_security_group(&group(&format!("g{i}")))
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let e = p.get_security_group("sg-missing").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
    let bad = p.create_security_group(&group("-bad")).await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    p.list_security_groups(&TagFilter::all()).await.unwrap();

    let snap = metrics.snapshot();
    assert_eq!(snap.calls(Operation::CreateSecurityGroup), 4);
    assert_eq!(snap.calls(Operation::GetSecurityGroup), 2);
    assert_eq!(snap.calls(Operation::ListSecurityGroups), 1);
    assert_eq!(snap.total_calls(), 7);
    let gets = &snap.operations[&Operation::GetSecurityGroup];
    assert_eq!(gets.errors.get(&ErrorKind::NotFound), Some(&2));
    let creates = &snap.operations[&Operation::CreateSecurityGroup];
    assert_eq!(creates.errors.get(&ErrorKind::InvalidInput), Some(&1));
    assert_eq!(snap.total_errors(), 3);

    metrics.reset();
    assert_eq!(metrics.snapshot().total_calls(), 0);
}

/// What the layer must inject for `seed` and `rate` over `n` calls: one draw per call
/// from ChaCha8 seeded with `seed`, computed here independently of the layer.
fn expected_faults(seed: u64, rate: f64, n: usize) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).filter(|_| rng.random::<f64>() < rate).collect()
}

#[tokio::test]
async fn fault_injection_is_exact_for_a_fixed_seed() {
    let cloud = Arc::new(MemoryProvider::default());
    cloud.create_security_group(&group("target")).await.unwrap();
    let id = cloud.list_security_groups(&TagFilter::all()).await.unwrap()[0]
        .id
        .clone();

    let plan = FaultPlan {
        error_rate: 0.25,
        ..FaultPlan::seeded(42)
    };
    let faults = FaultInjecting::new(plan.clone());
    let p = Layered::new(cloud.clone(), faults.clone());
    let mut failed = Vec::new();
    for i in 0..200 {
        if let Err(e) = p.get_security_group(&id).await {
            assert_eq!(e.kind(), ErrorKind::Transient);
            failed.push(i);
        }
    }
    assert_eq!(failed, expected_faults(42, 0.25, 200));
    assert!(!failed.is_empty() && failed.len() < 200);
    assert_eq!(faults.injected().len(), failed.len());
    assert!(faults
        .injected()
        .iter()
        .all(|(op, f)| *op == Operation::GetSecurityGroup && *f == Fault::Error));

    // The same seed again gives the same sequence; another seed does not.
    let again = Layered::new(cloud.clone(), FaultInjecting::new(plan));
    let mut failed_again = Vec::new();
    for i in 0..200 {
        if again.get_security_group(&id).await.is_err() {
            failed_again.push(i);
        }
    }
    assert_eq!(failed, failed_again);
    assert_ne!(failed, expected_faults(43, 0.25, 200));
}

#[tokio::test]
async fn throttling_carries_retry_after_and_per_operation_rates_apply() {
    let cloud = Arc::new(MemoryProvider::default());
    let plan = FaultPlan {
        throttle_rate: 1.0,
        retry_after: Duration::from_millis(1234),
        ..FaultPlan::seeded(7)
    };
    let p = Layered::new(cloud.clone(), FaultInjecting::new(plan));
    let e = p.list_instances(&TagFilter::all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    assert_eq!(e.retry_after(), Some(Duration::from_millis(1234)));

    // Only list_volumes fails.
    let plan = FaultPlan {
        error_rates: [(Operation::ListVolumes, 1.0)].into(),
        ..FaultPlan::seeded(7)
    };
    let p = Layered::new(cloud, FaultInjecting::new(plan));
    assert!(p.list_volumes(&TagFilter::all()).await.is_err());
    assert!(p.list_instances(&TagFilter::all()).await.is_ok());
}

#[tokio::test]
async fn retry_over_faults_reaches_the_cloud_once_per_success() {
    let cloud = Arc::new(MemoryProvider::default());
    cloud.create_security_group(&group("target")).await.unwrap();
    let id = cloud.list_security_groups(&TagFilter::all()).await.unwrap()[0]
        .id
        .clone();

    let below = Instrumented::new();
    let above = Instrumented::new();
    let faults = FaultInjecting::new(FaultPlan {
        error_rate: 0.2,
        throttle_rate: 0.1,
        retry_after: Duration::from_millis(1),
        ..FaultPlan::seeded(9)
    });
    let p: Arc<dyn Provider> = Arc::new(Layered::new(cloud, below.clone()));
    let p: Arc<dyn Provider> = Arc::new(Layered::new(p, faults.clone()));
    let p: Arc<dyn Provider> = Arc::new(Layered::new(p, above.clone()));
    let p = Layered::new(p, Retry::fast(20));
    for _ in 0..100 {
        p.get_security_group(&id).await.unwrap();
    }
    // Injected errors and throttles never reach the cloud; every attempt is counted above.
    assert_eq!(below.snapshot().calls(Operation::GetSecurityGroup), 100);
    let attempts = above.snapshot().calls(Operation::GetSecurityGroup);
    assert_eq!(attempts, 100 + faults.injected().len() as u64);
    assert_eq!(
        above.snapshot().total_errors(),
        faults.injected().len() as u64
    );
}

#[tokio::test]
async fn lost_replies_with_retry_create_nothing_twice() {
    let cloud = Arc::new(MemoryProvider::default());
    let faults = FaultInjecting::new(FaultPlan {
        lost_reply_rate: 0.5,
        ..FaultPlan::seeded(5)
    });
    let p: Arc<dyn Provider> = Arc::new(Layered::new(cloud.clone(), faults.clone()));
    let p = Layered::new(p, Retry::fast(30));
    for i in 0..20 {
        p.create_security_group(&group(&format!("g{i}")))
            .await
            .unwrap();
    }
    assert!(faults
        .injected()
        .iter()
        .any(|(_, f)| *f == Fault::LostReply));
    // Creates are idempotent by name: each lost reply was retried into the same group.
    assert_eq!(
        cloud
            .list_security_groups(&TagFilter::all())
            .await
            .unwrap()
            .len(),
        20
    );
}
