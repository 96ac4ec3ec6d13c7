//! The whole conformance kit against the in-memory reference provider.

use provider_core::conformance::{self, ConformanceConfig, Outcome};
use provider_core::memory::{MemoryConfig, MemoryProvider};

fn config() -> ConformanceConfig {
    ConformanceConfig::new("linux", "small").with_floating_ip_pool("public")
}

#[tokio::test(start_paused = true)]
async fn memory_provider_passes_every_check() {
    let provider = MemoryProvider::default();
    let report = conformance::run_all(&provider, &config()).await;
    println!("{report}");
    assert!(report.is_success(), "{report}");
    assert_eq!(
        report.skipped(),
        0,
        "no check may be skipped on memory:\n{report}"
    );
    assert_eq!(report.passed(), conformance::checks().len(), "{report}");
    // The kit leaves nothing behind.
    let left = provider_core::SecurityGroups::list_security_groups(&provider, &Default::default())
        .await
        .unwrap();
    assert!(left.is_empty(), "security groups left behind: {left:?}");
}

/// On the real clock, to show the kit does not depend on a paused one.
#[tokio::test]
async fn memory_with_small_pages_and_distinct_volume_zones_passes() {
    // Pages of 3 make every list span pages; distinct volume AZ names exercise the
    // compute/volume AZ mapping behind the placement and cross-zone checks.
    let provider = MemoryProvider::new(MemoryConfig {
        page_size: 3,
        volume_zones: [
            ("az-1".to_string(), "cinder-a".to_string()),
            ("az-2".to_string(), "cinder-b".to_string()),
            ("az-3".to_string(), "cinder-c".to_string()),
        ]
        .into(),
        ..Default::default()
    });
    let report = conformance::run_all(&provider, &config()).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.skipped(), 0, "{report}");
}

#[tokio::test(start_paused = true)]
async fn pagination_is_skipped_with_a_reason_above_the_bound() {
    let provider = MemoryProvider::default(); // page size 20: needs 21 resources
    let config = config().with_max_pagination_resources(10);
    let err = conformance::security_group_pagination(&provider, &config)
        .await
        .unwrap_err();
    assert!(err.is_skipped(), "{err}");
    assert!(err.reason().contains("max_pagination_resources"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn one_zone_skips_the_cross_zone_check_with_a_reason() {
    let provider = MemoryProvider::default();
    let config = config().with_zones(["az-2"]);
    let checks: Vec<_> = conformance::checks()
        .into_iter()
        .filter(|c| c.name.contains("zone"))
        .collect();
    let report = conformance::run_checks(&provider, &config, &checks).await;
    assert!(report.is_success(), "{report}");
    match report.outcome("volume_cross_zone_attach") {
        Some(Outcome::Skipped(reason)) => assert!(reason.contains("two zones"), "{reason}"),
        other => panic!("expected a skip, got {other:?}\n{report}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_config_missing_the_pool_fails_with_the_fix() {
    let provider = MemoryProvider::default();
    let config = ConformanceConfig::new("linux", "small");
    let err = conformance::floating_ip_lifecycle(&provider, &config)
        .await
        .unwrap_err();
    assert!(!err.is_skipped(), "{err}");
    assert!(err.reason().contains("floating_ip_pool"), "{err}");
}
