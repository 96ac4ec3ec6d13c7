//! A provider that panics does not abort the kit: the check that hit the panic fails
//! with the panic's message, what it created is still swept, and the other checks run
//! and pass.

use provider_core::conformance::{self, Check, ConformanceConfig, Outcome};
use provider_core::memory::MemoryProvider;
use provider_core::{
    async_trait, AvailabilityZone, Capabilities, Family, FloatingIps, Instance, InstanceSpec,
    Instances, LoadBalancers, Provider, ResourceKind, Result, SecurityGroups, TagFilter, Tags,
    Volumes,
};

/// What the panicking operation says.
const MESSAGE: &str = "get_instances: index out of bounds in the vendor SDK";

/// The memory provider, except that the batch `get_instances` panics.
#[derive(Debug, Default)]
struct PanicsInGetInstances {
    inner: MemoryProvider,
}

#[async_trait]
impl Provider for PanicsInGetInstances {
    fn name(&self) -> &str {
        "panics-in-get-instances"
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZone>> {
        self.inner.list_availability_zones().await
    }

    async fn update_tags(
        &self,
        kind: ResourceKind,
        id: &str,
        set: &Tags,
        remove: &[String],
    ) -> Result<()> {
        self.inner.update_tags(kind, id, set, remove).await
    }

    fn security_groups(&self) -> Option<&dyn SecurityGroups> {
        self.inner.security_groups()
    }

    fn instances(&self) -> Option<&dyn Instances> {
        Some(self)
    }

    fn volumes(&self) -> Option<&dyn Volumes> {
        self.inner.volumes()
    }

    fn floating_ips(&self) -> Option<&dyn FloatingIps> {
        self.inner.floating_ips()
    }

    fn load_balancers(&self) -> Option<&dyn LoadBalancers> {
        self.inner.load_balancers()
    }
}

#[async_trait]
impl Instances for PanicsInGetInstances {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Instance> {
        Instances::create_instance(&self.inner, spec).await
    }

    async fn get_instance(&self, id: &str) -> Result<Instance> {
        Instances::get_instance(&self.inner, id).await
    }

    async fn get_instances(&self, _ids: &[String]) -> Result<Vec<Instance>> {
        panic!("{MESSAGE}");
    }

    async fn list_instances(&self, filter: &TagFilter) -> Result<Vec<Instance>> {
        Instances::list_instances(&self.inner, filter).await
    }

    async fn delete_instance(&self, id: &str) -> Result<()> {
        Instances::delete_instance(&self.inner, id).await
    }
}

fn config() -> ConformanceConfig {
    ConformanceConfig::new("linux", "small").with_floating_ip_pool("public")
}

/// The checks that call `get_instances`.
const AFFECTED: [&str; 2] = ["instance_batch_forms", "instance_missing_not_found"];

#[tokio::test(start_paused = true)]
async fn a_panic_fails_exactly_the_checks_that_hit_it_and_the_report_goes_on() {
    let provider = PanicsInGetInstances::default();
    let report = conformance::run_all(&provider, &config()).await;
    println!("{report}");

    let all = conformance::checks();
    assert_eq!(report.checks.len(), all.len(), "every check ran:\n{report}");
    let failed: Vec<&str> = report.failures().map(|c| c.name).collect();
    assert_eq!(failed, AFFECTED, "{report}");
    for name in AFFECTED {
        match report.outcome(name) {
            Some(Outcome::Failed(reason)) => {
                assert!(reason.starts_with("panicked: "), "{name}: {reason}");
                assert!(reason.contains(MESSAGE), "{name}: {reason}");
            }
            other => panic!("{name}: expected a failure, got {other:?}"),
        }
    }
    assert_eq!(report.passed(), all.len() - AFFECTED.len(), "{report}");
    assert_eq!(report.skipped(), 0, "{report}");

    // The sweep ran after each panic: nothing the kit created is left.
    let everything = TagFilter::all();
    let left = Instances::list_instances(&provider.inner, &everything)
        .await
        .unwrap();
    assert!(left.is_empty(), "instances left behind: {left:?}");
}

/// A check of the caller's own (not built by the kit's macro) that panics is caught by
/// `run_checks` itself.
#[tokio::test(start_paused = true)]
async fn a_panicking_check_of_ones_own_is_reported_as_failed() {
    let provider = MemoryProvider::default();
    let own = Check {
        name: "my_check",
        family: Family::Volumes,
        func: |_, _| Box::pin(async { panic!("my check is broken") }),
    };
    let after = conformance::checks()
        .into_iter()
        .find(|c| c.name == "volume_lifecycle")
        .unwrap();
    let report = conformance::run_checks(&provider, &config(), &[own, after]).await;
    assert_eq!(
        report.outcome("my_check"),
        Some(&Outcome::Failed("panicked: my check is broken".into())),
        "{report}"
    );
    assert_eq!(report.outcome("volume_lifecycle"), Some(&Outcome::Passed));
}
