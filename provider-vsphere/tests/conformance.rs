//! The conformance kit and vSphere-specific checks against a simulated vCenter
//! (emulators/vsphere: `install.sh`, then `start.sh` prints the variables to export).
//!
//! Needs `VSPHERE_URL`, `VSPHERE_USERNAME`, `VSPHERE_PASSWORD`, `VSPHERE_DATACENTER`
//! and `VSPHERE_CA_CERT_FILE` (for https); `VSPHERE_TEMPLATE` defaults to `tmpl-base`.
//! Without `VSPHERE_URL` the tests say they are skipped, except under `CI`, where they
//! fail.

use provider_core::conformance::{self, ConformanceConfig};
use provider_core::{ErrorKind, Family, Provider};
use provider_vsphere::VSphereBuilder;

fn builder() -> Option<VSphereBuilder> {
    if std::env::var("VSPHERE_URL").is_err() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "vSphere simulator not running (set VSPHERE_URL): CI must start emulators/vsphere"
            );
        }
        eprintln!("skipped: vSphere simulator not running (set VSPHERE_URL)");
        return None;
    }
    Some(VSphereBuilder::from_env())
}

fn template() -> String {
    std::env::var("VSPHERE_TEMPLATE").unwrap_or_else(|_| "tmpl-base".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_kit_passes() {
    let Some(b) = builder() else { return };
    // A small page, so the pagination checks cross pages with few VMs.
    let provider = b.with_page_size(5).build().await.expect("provider");
    let config = ConformanceConfig::new(template(), "1:256")
        .with_user_data("#cloud-config\n")
        .with_concurrency(4);
    let report = conformance::run_all(&provider, &config).await;
    println!("{report}");
    assert!(report.is_success(), "{report}");

    // vSphere has no floating IPs and no load balancers: their checks are skipped, and
    // so is the one that needs a load balancer to use a group. Nothing else.
    let no_fip = "the provider has no floating IPs (floating_ips() is None)";
    let no_lb = "the provider has no load balancers (load_balancers() is None)";
    let expected: Vec<(&str, &str)> = conformance::checks()
        .iter()
        .filter_map(|c| match c.family {
            Family::FloatingIps => Some((c.name, no_fip)),
            Family::LoadBalancers => Some((c.name, no_lb)),
            _ if c.name == "security_group_lb_in_use_conflict" => Some((c.name, no_lb)),
            _ => None,
        })
        .collect();
    let skipped: Vec<(&str, &str)> = report
        .skips()
        .map(|c| (c.name, c.outcome.reason().unwrap_or_default()))
        .collect();
    assert_eq!(skipped, expected, "{report}");
    assert_eq!(skipped.len(), 14 + 12 + 1, "{report}");
}

#[tokio::test]
async fn wrong_password_is_unauthorized() {
    let Some(b) = builder() else { return };
    let provider = b
        .with_password("definitely-wrong")
        .build()
        .await
        .expect("provider");
    let err = provider.list_availability_zones().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(!err.to_string().contains("definitely-wrong"), "{err}");
}

#[tokio::test]
async fn unknown_cluster_names_the_key() {
    let Some(b) = builder() else { return };
    let provider = b
        .with_clusters(["no-such-cluster"])
        .build()
        .await
        .expect("provider");
    let err = provider.list_availability_zones().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("VSphere.Clusters"), "{err}");
}

#[tokio::test]
async fn zones_are_the_clusters_and_no_fip_or_lb() {
    let Some(b) = builder() else { return };
    let provider = b.build().await.expect("provider");
    let zones = provider.list_availability_zones().await.expect("zones");
    assert!(!zones.is_empty());
    assert!(provider.floating_ips().is_none() && provider.load_balancers().is_none());
}
