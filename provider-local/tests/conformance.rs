//! The whole conformance kit against provider-local.

mod common;

use common::Fixture;
use provider_core::conformance::{self, ConformanceConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_kit_passes() {
    // A small page so the pagination checks cross pages cheaply.
    let f = Fixture::with(|c| c.page_size = 7).await;
    let config = ConformanceConfig::new("http", "small")
        .with_floating_ip_pool(provider_local::config::DEFAULT_POOL)
        .with_member_port(8080)
        .with_concurrency(4);
    let report = conformance::run_all(f.p(), &config).await;
    println!("{report}");
    assert!(report.is_success(), "{report}");
    // provider-local has every family, three zones and small pages: nothing is skipped.
    let skipped: Vec<(&str, &str)> = report
        .skips()
        .map(|c| (c.name, c.outcome.reason().unwrap_or_default()))
        .collect();
    assert!(skipped.is_empty(), "skipped: {skipped:?}\n{report}");
    assert_eq!(report.passed(), conformance::checks().len(), "{report}");
}
