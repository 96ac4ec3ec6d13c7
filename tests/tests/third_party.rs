//! A third-party provider, written only against provider-core's public API as an outside
//! crate writes one, that runs the whole conformance kit.
//!
//! **How it works, and why.** It wraps a vendor's "cloud client" and hands out the
//! client's own families: the memory provider stands in for the vendor SDK, a client
//! that already speaks the family traits. This shows how little an author writes for
//! the contract itself: `name`, `capabilities`, zones, tags, and one accessor per family
//! the cloud has (instances and volumes); for security groups, floating IPs and load
//! balancers nothing at all. It does not show the translation a real SDK needs (its
//! calls to the family traits' operations, its errors to `Error` kinds, its records to
//! Plinth's); `provider_core::guide` walks through that, with a compiled example. A
//! small in-memory cloud of its own would be several hundred lines that repeat what the
//! memory provider proves already, and would test the kit's fixture more than the
//! contract's shape.

use provider_core::conformance::{self, ConformanceConfig, Outcome};
use provider_core::memory::MemoryProvider;
use provider_core::prelude::*;
use provider_core::{
    async_trait, AvailabilityZone, Capabilities, Error, ErrorKind, Family, Instances, Operation,
    ResourceKind, Result, Tags, Volumes,
};

/// The vendor SDK's client; the memory provider plays it here.
type CloudClient = MemoryProvider;

/// A cloud with availability zones, instances and volumes, and nothing else.
#[derive(Debug, Default)]
pub struct ThirdPartyProvider {
    client: CloudClient,
}

#[async_trait]
impl Provider for ThirdPartyProvider {
    fn name(&self) -> &str {
        "third-party"
    }

    fn capabilities(&self) -> Capabilities {
        // The client's page size; no load balancers, so no protocols, and no groups.
        let mut caps = self.client.capabilities();
        caps.lb_protocols.clear();
        caps.group_sources = false;
        caps
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        self.client.list_availability_zones().await
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        match kind {
            ResourceKind::Instance | ResourceKind::Volume => {
                self.client.update_tags(kind, id, set, remove).await
            }
            other => Err(Error::unsupported(
                Operation::UpdateTags,
                format!("the third-party cloud has no {other}s"),
            )),
        }
    }

    fn instances(&self) -> Option<&dyn Instances> {
        self.client.instances()
    }

    fn volumes(&self) -> Option<&dyn Volumes> {
        self.client.volumes()
    }
}

/// The memory client's catalog names; a real cloud passes its own image, flavor and
/// (with floating IPs) pool names.
fn config() -> ConformanceConfig {
    ConformanceConfig::new("linux", "small")
}

/// Families the provider lacks, with the reason the kit gives for skipping theirs.
const LACKING: [(Family, &str); 3] = [
    (
        Family::SecurityGroups,
        "the provider has no security groups (security_groups() is None)",
    ),
    (
        Family::FloatingIps,
        "the provider has no floating IPs (floating_ips() is None)",
    ),
    (
        Family::LoadBalancers,
        "the provider has no load balancers (load_balancers() is None)",
    ),
];

/// On the real clock, as against a real cloud.
#[tokio::test]
async fn a_third_party_provider_runs_the_whole_kit() {
    let provider = ThirdPartyProvider::default();
    let report = conformance::run_all(&provider, &config()).await;
    println!("{report}");
    assert!(report.is_success(), "{report}");

    // Exactly the checks of the lacking families are skipped, each naming its family.
    let expected: Vec<(&str, &str)> = conformance::checks()
        .iter()
        .filter_map(|c| {
            LACKING
                .iter()
                .find(|(f, _)| *f == c.family)
                .map(|(_, reason)| (c.name, *reason))
        })
        .collect();
    let skipped: Vec<(&str, &str)> = report
        .skips()
        .map(|c| (c.name, c.outcome.reason().unwrap_or_default()))
        .collect();
    assert_eq!(skipped, expected, "{report}");
    assert_eq!(skipped.len(), 14 + 14 + 12, "{report}");

    // Every zone, tag, instance and volume check passes.
    for c in &report.checks {
        if !LACKING.iter().any(|(f, _)| *f == c.family) {
            assert_eq!(c.outcome, Outcome::Passed, "{}: {report}", c.name);
        }
    }
    // Zones (4, with the preflight, which the default implementation passes), tags (3),
    // volumes and instances.
    assert_eq!(report.passed(), 4 + 3 + 14 + 12, "{report}");
    assert_eq!(report.passed() + report.skipped(), report.checks.len());
}

#[tokio::test]
async fn families_it_lacks_answer_unsupported_through_provider_ext() {
    let provider = ThirdPartyProvider::default();
    assert_eq!(
        provider.families(),
        [Family::Core, Family::Volumes, Family::Instances]
    );
    let err = provider
        .list_load_balancers(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("load balancers"), "{err}");
}
