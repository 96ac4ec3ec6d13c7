//! The whole conformance kit against moto's server.

mod common;

use provider_core::conformance::{self, ConformanceConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_kit_passes_against_moto() {
    let Some(endpoint) = common::moto() else {
        return;
    };
    let f = common::fixture(&endpoint, 101).await;
    let provider = common::provider(&endpoint, &f).await;
    let mut config = ConformanceConfig::new(f.ami.clone(), "t3.micro")
        .with_floating_ip_pool(provider_aws::AMAZON_POOL)
        .with_zones(common::ZONES)
        .with_concurrency(4);
    for (z, s) in common::ZONES.iter().zip(&f.subnets) {
        config = config.with_zone_subnet(*z, s.clone());
    }
    let report = conformance::run_all(&provider, &config).await;
    println!("{report}");
    println!(
        "AWS requests of the whole kit: {}",
        provider.request_counts().total()
    );
    assert!(report.is_success(), "{report}");
    // AWS has every family and the config selects three zones with small pages:
    // nothing is skipped.
    let skipped: Vec<(&str, &str)> = report
        .skips()
        .map(|c| (c.name, c.outcome.reason().unwrap_or_default()))
        .collect();
    assert!(skipped.is_empty(), "skipped: {skipped:?}\n{report}");
    assert_eq!(report.passed(), conformance::checks().len(), "{report}");
}
