//! The error vocabulary table (provider_core::error::vocabulary) for the memory
//! provider: every situation it simulates, produced through its public API, and the
//! ones it cannot produce with the reason.

use std::sync::Arc;
use std::time::Duration;

use provider_core::error::vocabulary::{check_table, Row, Situation, TableMismatch};
use provider_core::layer::{FaultInjecting, FaultPlan, Layered};
use provider_core::memory::{MemoryConfig, MemoryProvider};
use provider_core::{IngressRule, ProviderExt, SecurityGroupSpec, TagFilter, VolumeSpec};

#[tokio::test]
async fn every_situation_memory_simulates_is_classified_as_the_vocabulary_says(
) -> Result<(), TableMismatch> {
    let mut rows = Vec::new();
    let cloud = Arc::new(MemoryProvider::new(MemoryConfig {
        // Long enough to find a volume still being created.
        transition: Duration::from_millis(500),
        ..MemoryConfig::default()
    }));

    let err = |r: provider_core::Result<()>| r.expect_err("the call fails");

    rows.push(Row::new(
        "get_volume of an id that never existed",
        Situation::NotFound,
        err(cloud.get_volume("vol-never").await.map(|_| ())),
    ));

    // Busy: delete a volume while it is still being created.
    let creating = {
        let cloud = Arc::clone(&cloud);
        tokio::spawn(async move {
            cloud
                .create_volume(&VolumeSpec::new("busy-0", "az-1", 1))
                .await
        })
    };
    let id = loop {
        let seen = cloud.list_volumes(&TagFilter::all()).await.expect("list");
        if let Some(v) = seen.into_iter().find(|v| v.name == "busy-0") {
            break v.id;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    rows.push(Row::new(
        "delete_volume while it is creating",
        Situation::Busy,
        err(cloud.delete_volume(&id).await),
    ));
    creating
        .await
        .expect("join")
        .expect("the volume is created");

    // In use: a group another group's rule refers to.
    let a = cloud
        .create_security_group(&SecurityGroupSpec::new("a"))
        .await
        .expect("group a");
    cloud
        .create_security_group(
            &SecurityGroupSpec::new("b").with_rules([IngressRule::tcp_from_group(22, &a.id)]),
        )
        .await
        .expect("group b");
    rows.push(Row::new(
        "delete_security_group referenced by a rule",
        Situation::InUse,
        err(cloud.delete_security_group(&a.id).await),
    ));

    rows.push(Row::new(
        "create_volume of 0 GiB",
        Situation::invalid("spec.size_gib"),
        err(cloud
            .create_volume(&VolumeSpec::new("zero", "az-1", 0))
            .await
            .map(|_| ())),
    ));

    // Memory simulates throttling with the FaultInjecting layer, which keeps its
    // retry_after as a cloud's Retry-After.
    let throttling = Layered::new(
        cloud.clone(),
        FaultInjecting::new(FaultPlan {
            throttle_rate: 1.0,
            retry_after: Duration::from_millis(10),
            ..FaultPlan::seeded(7)
        }),
    );
    rows.push(Row::new(
        "FaultInjecting throttle over memory",
        Situation::rate_limited_after(Duration::from_millis(10)),
        err(throttling.get_volume(&id).await.map(|_| ())),
    ));

    check_table(
        &rows,
        &[
            ("already exists", "a name taken with another spec is Conflict by the contract; memory refuses no duplicate"),
            ("quota exceeded", "only when a pool's 65 535 addresses are used; not exercised"),
            ("rate limited (no Retry-After)", "FaultInjecting always sets retry_after"),
            ("unauthenticated", "no credentials"),
            ("permission denied", "no credentials"),
            ("invalid (no field named)", "its validation always names the field"),
            ("server error", "in process: nothing fails on its own"),
            ("timeout", "in process: every call answers"),
            ("unreachable", "in process: nothing to reach"),
        ],
    )
}
