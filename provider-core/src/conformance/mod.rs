//! # The conformance kit (feature `conformance`)
//!
//! Shared async checks that prove a [`Provider`] keeps the contract written on the trait,
//! in the style of the shared integration functions of arrow-rs `object_store`: every
//! provider crate runs the whole kit in its tests, and so does a third-party provider.
//!
//! Each check is a public async function (see [`checks`] for the list) that takes
//! `&dyn Provider` and a [`ConformanceConfig`] and returns a [`CheckResult`]:
//! `Ok(())` when it passed, [`CheckFailure::Failed`] with the reason, or
//! [`CheckFailure::Skipped`] with the reason (e.g. the provider has no load balancers).
//!
//! ## Running the kit
//!
//! A provider crate runs every check in a test and asserts none failed; the report prints
//! as a table with one line per check. Against a real cloud, run it on the real clock
//! (a plain `#[tokio::test]`, never `start_paused = true`: paused time needs tokio's
//! `test-util` feature and makes every wait and [`ConformanceConfig::check_timeout`]
//! expire at once while the cloud is still working), and give the config your cloud's
//! own catalog names:
//!
//! ```no_run
//! use std::time::Duration;
//! use provider_core::conformance::{self, ConformanceConfig};
//! use provider_core::Provider;
//!
//! /// Called from a `#[tokio::test]` (real time) with the provider your builder made.
//! async fn conformance_against_my_cloud(provider: &dyn Provider) {
//!     // Names from *your* cloud's catalog: an image that boots fast, the smallest
//!     // flavor that boots it, a network and subnet for instances, the floating IP pool.
//!     let config = ConformanceConfig::new("ubuntu-24.04-minimal", "m1.tiny")
//!         .with_network("conformance-net")
//!         .with_subnet("conformance-subnet")
//!         .with_floating_ip_pool("external")
//!         .with_concurrency(4)
//!         .with_check_timeout(Duration::from_secs(20 * 60));
//!     let report = conformance::run_all(provider, &config).await;
//!     println!("{report}");
//!     assert!(report.is_success(), "{report}");
//! }
//! ```
//!
//! The same against the in-memory reference provider, runnable as is. `"linux"`,
//! `"small"` and `"public"` are the memory provider's catalog
//! ([`MemoryConfig`](crate::memory::MemoryConfig)'s image, flavor and pool), not names a
//! real cloud knows:
//!
//! ```
//! use provider_core::conformance::{self, ConformanceConfig};
//! use provider_core::memory::MemoryProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let provider = MemoryProvider::default();
//! let config = ConformanceConfig::new("linux", "small").with_floating_ip_pool("public");
//! let report = conformance::run_all(&provider, &config).await;
//! assert!(report.is_success(), "{report}");
//! # }
//! ```
//!
//! A provider that lacks families, or a config that selects one zone, gets skips. Assert
//! the exact list, so that a check that starts skipping (or stops) shows up:
//!
//! ```
//! use provider_core::conformance::{self, ConformanceConfig};
//! use provider_core::memory::MemoryProvider;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let provider = MemoryProvider::default();
//! let config = ConformanceConfig::new("linux", "small")
//!     .with_floating_ip_pool("public")
//!     .with_zones(["az-1"]);
//! let zone_checks: Vec<_> = conformance::checks()
//!     .into_iter()
//!     .filter(|c| c.name.contains("zone"))
//!     .collect();
//! let report = conformance::run_checks(&provider, &config, &zone_checks).await;
//! let skips: Vec<(&str, &str)> = report
//!     .skips()
//!     .map(|c| (c.name, c.outcome.reason().unwrap_or_default()))
//!     .collect();
//! assert_eq!(
//!     skips,
//!     [("volume_cross_zone_attach", r#"needs two zones; the config selects ["az-1"]"#)]
//! );
//! assert_eq!(report.passed(), zone_checks.len() - 1, "{report}");
//! # }
//! ```
//!
//! Checks can also be run one by one (each is a plain `async fn`), or filtered:
//!
//! ```
//! use provider_core::conformance::{self, ConformanceConfig};
//! use provider_core::memory::MemoryProvider;
//! use provider_core::Family;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let provider = MemoryProvider::default();
//! let config = ConformanceConfig::new("linux", "small").with_floating_ip_pool("public");
//!
//! // One check.
//! conformance::volume_attach_detach(&provider, &config).await.unwrap();
//!
//! // One family.
//! let volume_checks: Vec<_> = conformance::checks()
//!     .into_iter()
//!     .filter(|c| c.family == Family::Volumes)
//!     .collect();
//! let report = conformance::run_checks(&provider, &config, &volume_checks).await;
//! assert!(report.is_success(), "{report}");
//! # }
//! ```
//!
//! ## What every check does with the cloud
//!
//! - Everything it creates carries the tags [`RUN_TAG`]` = <a fresh uuid>` (one per run
//!   of a check) and [`CHECK_TAG`]` = <the check's name>`, and is named
//!   `pc-<first 8 hex digits of the uuid>-<label>`, a valid name on every cloud.
//! - After the check's body, whatever its outcome, the check sweeps everything carrying
//!   its run tag (and everything it created, in case the provider lost the tags) in
//!   dependency order: load balancers, floating IPs, volumes (detached first),
//!   instances, security groups (group-sourced rules removed first). It then lists again
//!   and fails if anything is left behind. The sweep deletes only resources whose
//!   returned tags carry the run tag, so a provider that ignores tag filters cannot make
//!   the kit delete what is not its own.
//! - A check that does not finish within [`ConformanceConfig::check_timeout`] fails, and
//!   is still swept.
//! - A check in which the provider panics fails with `panicked: <the message>` and is
//!   still swept (a panic in the sweep fails it as a cleanup failure); the other checks
//!   run, and the report goes on. The panic is caught with `catch_unwind`, so the
//!   default hook still prints it to stderr, and a build with `panic = "abort"` aborts.
//!
//! ## What the checks cover
//!
//! | family | behaviours |
//! |---|---|
//! | zones | `capabilities()` coherent with the families (a family's calls answer `Unsupported` without it), zones listed, unknown zone is `InvalidInput` |
//! | tags | `update_tags` sets, overwrites and removes on every kind, lists see the change, `NotFound` on a missing id |
//! | every resource kind | create/get/list/delete, idempotent create (same name and spec returns the same id), also after `update_tags` (and, for groups, `add_security_group_rule`) while a spec with fewer tags or rules than the creation spec is `Conflict`, `Conflict` for the same name with another spec, `NotFound` on get (and attach, associate, rule or member changes) of a deleted id, `NotFound` on get of an id that never existed or is malformed (whose delete succeeds), delete of what is gone succeeds, `InvalidInput` naming the field for bad specs, tag filters return only and all matching resources, pagination past one page |
//! | security groups | rules add/remove (idempotent), `Conflict` on deleting a group in use by an instance, a load balancer or another group's rule |
//! | floating IPs | associate, disassociate, move between instances, survive their instance, `Conflict` on releasing an associated address (the association kept) |
//! | volumes | attach/detach states (idempotent), `Conflict` on deleting an attached volume, attach across zones refused, placement in the requested zone |
//! | instances | batch create and get forms, placement in the requested zone |
//! | load balancers | listeners, pools and members as asked, member add/remove (idempotent) per listener, a deleted instance leaves every pool |
//!
//! Checks of a family the provider lacks (its accessor, e.g.
//! [`Provider::load_balancers`], returns `None`) report [`CheckFailure::Skipped`] with a
//! reason naming the family and its accessor (`the provider has no load balancers
//! (load_balancers() is None)`), and so do checks that need such a family to set up
//! (attaching a volume needs instances); zone and tag checks use the kinds the provider
//! has. The ones that need two zones are skipped when the config selects one.

#[macro_use]
mod macros;
pub(crate) mod ctx;
mod expect;
mod fixtures;
mod report;
mod sweep;

mod floating_ips;
mod in_use;
mod instances;
mod load_balancers;
mod pagination;
mod recreate;
mod security_groups;
mod tags;
mod unknown_ids;
mod volumes;
mod zones;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::time::Instant;

use crate::{Family, Provider};

pub use floating_ips::*;
pub use in_use::*;
pub use instances::*;
pub use load_balancers::*;
pub use pagination::*;
pub use recreate::*;
pub use report::{CheckReport, Outcome, Report};
pub use security_groups::*;
pub use tags::*;
pub use unknown_ids::*;
pub use volumes::*;
pub use zones::*;

/// Tag key carrying the run id (a uuid, fresh for every run of a check) on everything
/// a check creates; the sweep deletes by it.
pub const RUN_TAG: &str = "plinth-conformance-run";
/// Tag key carrying the name of the check that created a resource.
pub const CHECK_TAG: &str = "plinth-conformance-check";

/// Which availability zones the checks place resources in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSelection {
    /// The first `n` available zones of `list_availability_zones` (fewer if there are
    /// fewer).
    First(usize),
    /// These zones, by compute AZ name.
    Named(Vec<String>),
}

/// What a cloud needs for the checks: image, flavor, network, pool names and so on.
///
/// Start from [`ConformanceConfig::new`] and set what your cloud needs with the
/// `with_*` methods; the fields are public for reading and adjusting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConformanceConfig {
    /// Image (id or name) of every instance the checks create; it should boot quickly.
    pub image: String,
    /// Flavor / instance type (id or name); the smallest that boots the image.
    pub flavor: String,
    /// Network for instances, where the provider needs one.
    pub network: Option<String>,
    /// Subnet for instances (and load balancers, unless [`Self::lb_subnet`] is set).
    pub subnet: Option<String>,
    /// Subnet per zone, for clouds whose subnets live in one zone (AWS); wins over
    /// [`Self::subnet`] for instances in that zone.
    pub zone_subnets: BTreeMap<String, String>,
    /// Subnet for load balancer VIPs, when it differs from [`Self::subnet`].
    pub lb_subnet: Option<String>,
    /// Existing keypair for instances, if the cloud wants one.
    pub keypair: Option<String>,
    /// User data for instances, if the image needs some to serve [`Self::member_port`].
    pub user_data: Option<String>,
    /// Security groups (ids) added to every instance, besides those a check creates.
    pub extra_security_groups: Vec<String>,
    /// Floating IP pool; required when the provider has floating IPs.
    pub floating_ip_pool: Option<String>,
    /// Volume type; `None` for the provider's default.
    pub volume_type: Option<String>,
    /// Size of the volumes the checks create, in GiB.
    pub volume_size_gib: u64,
    /// A port the image serves; load balancer members point at it.
    pub member_port: u16,
    /// Port of the load balancer listeners the checks create (and the next one up).
    pub lb_port: u16,
    /// Zones to place resources in.
    pub availability_zones: ZoneSelection,
    /// Pagination checks create `page_size + 1` resources; above this bound they are
    /// skipped with the reason.
    pub max_pagination_resources: usize,
    /// How many creates the pagination checks run at once.
    pub concurrency: usize,
    /// A check's body that runs longer than this fails (the sweep still runs).
    pub check_timeout: Duration,
}

impl ConformanceConfig {
    /// A config with this image and flavor, and defaults for the rest: no network or
    /// subnet, no floating IP pool, the default volume type, 1 GiB volumes, member and
    /// listener port 8080, the first 3 available zones, pagination up to 200 resources,
    /// 8 concurrent creates, 60 minutes per check.
    pub fn new(image: impl Into<String>, flavor: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            flavor: flavor.into(),
            network: None,
            subnet: None,
            zone_subnets: BTreeMap::new(),
            lb_subnet: None,
            keypair: None,
            user_data: None,
            extra_security_groups: Vec::new(),
            floating_ip_pool: None,
            volume_type: None,
            volume_size_gib: 1,
            member_port: 8080,
            lb_port: 8080,
            availability_zones: ZoneSelection::First(3),
            max_pagination_resources: 200,
            concurrency: 8,
            check_timeout: Duration::from_secs(60 * 60),
        }
    }

    /// Sets [`Self::network`].
    pub fn with_network(mut self, network: impl Into<String>) -> Self {
        self.network = Some(network.into());
        self
    }

    /// Sets [`Self::subnet`].
    pub fn with_subnet(mut self, subnet: impl Into<String>) -> Self {
        self.subnet = Some(subnet.into());
        self
    }

    /// Adds a subnet for one zone ([`Self::zone_subnets`]).
    pub fn with_zone_subnet(mut self, zone: impl Into<String>, subnet: impl Into<String>) -> Self {
        self.zone_subnets.insert(zone.into(), subnet.into());
        self
    }

    /// Sets [`Self::lb_subnet`].
    pub fn with_lb_subnet(mut self, subnet: impl Into<String>) -> Self {
        self.lb_subnet = Some(subnet.into());
        self
    }

    /// Sets [`Self::keypair`].
    pub fn with_keypair(mut self, keypair: impl Into<String>) -> Self {
        self.keypair = Some(keypair.into());
        self
    }

    /// Sets [`Self::user_data`].
    pub fn with_user_data(mut self, user_data: impl Into<String>) -> Self {
        self.user_data = Some(user_data.into());
        self
    }

    /// Adds a group to [`Self::extra_security_groups`].
    pub fn with_extra_security_group(mut self, group_id: impl Into<String>) -> Self {
        self.extra_security_groups.push(group_id.into());
        self
    }

    /// Sets [`Self::floating_ip_pool`].
    pub fn with_floating_ip_pool(mut self, pool: impl Into<String>) -> Self {
        self.floating_ip_pool = Some(pool.into());
        self
    }

    /// Sets [`Self::volume_type`].
    pub fn with_volume_type(mut self, volume_type: impl Into<String>) -> Self {
        self.volume_type = Some(volume_type.into());
        self
    }

    /// Sets [`Self::volume_size_gib`].
    pub fn with_volume_size_gib(mut self, size_gib: u64) -> Self {
        self.volume_size_gib = size_gib;
        self
    }

    /// Sets [`Self::member_port`].
    pub fn with_member_port(mut self, port: u16) -> Self {
        self.member_port = port;
        self
    }

    /// Sets [`Self::lb_port`].
    pub fn with_lb_port(mut self, port: u16) -> Self {
        self.lb_port = port;
        self
    }

    /// Uses these zones ([`ZoneSelection::Named`]).
    pub fn with_zones<I, S>(mut self, zones: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.availability_zones = ZoneSelection::Named(zones.into_iter().map(Into::into).collect());
        self
    }

    /// Uses the first `n` available zones ([`ZoneSelection::First`]).
    pub fn with_first_zones(mut self, n: usize) -> Self {
        self.availability_zones = ZoneSelection::First(n);
        self
    }

    /// Sets [`Self::max_pagination_resources`].
    pub fn with_max_pagination_resources(mut self, n: usize) -> Self {
        self.max_pagination_resources = n;
        self
    }

    /// Sets [`Self::concurrency`] (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets [`Self::check_timeout`].
    pub fn with_check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }
}

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckFailure {
    /// The provider broke the contract (or the cleanup failed); the reason says how.
    Failed(String),
    /// The check does not apply to this provider or config; the reason says why.
    Skipped(String),
}

impl CheckFailure {
    /// The reason, whichever the variant.
    pub fn reason(&self) -> &str {
        match self {
            CheckFailure::Failed(r) | CheckFailure::Skipped(r) => r,
        }
    }

    /// Whether this is [`CheckFailure::Skipped`].
    pub fn is_skipped(&self) -> bool {
        matches!(self, CheckFailure::Skipped(_))
    }
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckFailure::Failed(r) => write!(f, "failed: {r}"),
            CheckFailure::Skipped(r) => write!(f, "skipped: {r}"),
        }
    }
}

impl std::error::Error for CheckFailure {}

/// What a check returns: `Ok(())` when it passed.
pub type CheckResult = Result<(), CheckFailure>;

/// The message a panic carried (`panic!("...")` carries a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// A check as a function pointer: what [`Check::func`] holds.
pub type CheckFn =
    for<'a> fn(&'a dyn Provider, &'a ConformanceConfig) -> BoxFuture<'a, CheckResult>;

/// One check of the kit: its name (the name of its function), family and function.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// The name, equal to the name of the public function.
    pub name: &'static str,
    /// The family it belongs to; zone and tag checks belong to [`Family::Core`].
    pub family: Family,
    /// The check itself.
    pub func: CheckFn,
}

impl Check {
    /// Runs the check.
    pub async fn run(&self, provider: &dyn Provider, config: &ConformanceConfig) -> CheckResult {
        (self.func)(provider, config).await
    }
}

macro_rules! check_list {
    ($($family:ident: [$($module:ident::$name:ident),* $(,)?]),* $(,)?) => {
        vec![$($(Check {
            name: stringify!($name),
            family: Family::$family,
            func: |p, c| Box::pin($module::$name(p, c)),
        }),*),*]
    };
}

/// Every check of the kit, in the order [`run_all`] runs them.
pub fn checks() -> Vec<Check> {
    check_list! {
        Core: [
            zones::capabilities_are_consistent,
            zones::zones_are_listed,
            zones::unknown_zone_invalid_input,
            zones::preflight_reports_unknown_zone,
            tags::update_tags_sets_and_removes,
            tags::update_tags_every_kind,
            tags::update_tags_missing_not_found,
        ],
        SecurityGroups: [
            security_groups::security_group_lifecycle,
            security_groups::security_group_rules,
            security_groups::security_group_create_idempotent,
            security_groups::security_group_name_conflict,
            security_groups::security_group_missing_not_found,
            security_groups::security_group_delete_gone_ok,
            security_groups::security_group_in_use_conflict,
            security_groups::security_group_referenced_conflict,
            security_groups::security_group_invalid_input,
            security_groups::security_group_tag_filter,
            security_groups::security_group_pagination,
            recreate::security_group_recreate_after_rules,
            unknown_ids::security_group_unknown_id_not_found,
            in_use::security_group_lb_in_use_conflict,
        ],
        FloatingIps: [
            floating_ips::floating_ip_lifecycle,
            floating_ips::floating_ip_associate,
            floating_ips::floating_ip_move,
            floating_ips::floating_ip_outlives_instance,
            floating_ips::floating_ip_create_idempotent,
            floating_ips::floating_ip_name_conflict,
            floating_ips::floating_ip_missing_not_found,
            floating_ips::floating_ip_delete_gone_ok,
            floating_ips::floating_ip_invalid_input,
            floating_ips::floating_ip_tag_filter,
            recreate::floating_ip_recreate_after_tags,
            unknown_ids::floating_ip_unknown_id_not_found,
            in_use::floating_ip_release_associated,
            pagination::floating_ip_pagination,
        ],
        Volumes: [
            volumes::volume_lifecycle,
            volumes::volume_attach_detach,
            volumes::volume_delete_attached_conflict,
            volumes::volume_cross_zone_attach,
            volumes::volume_zone_placement,
            volumes::volume_create_idempotent,
            volumes::volume_name_conflict,
            volumes::volume_missing_not_found,
            volumes::volume_delete_gone_ok,
            volumes::volume_invalid_input,
            volumes::volume_tag_filter,
            volumes::volume_pagination,
            recreate::volume_recreate_after_tags,
            unknown_ids::volume_unknown_id_not_found,
        ],
        Instances: [
            instances::instance_lifecycle,
            instances::instance_batch_forms,
            instances::instance_zone_placement,
            instances::instance_create_idempotent,
            instances::instance_name_conflict,
            instances::instance_missing_not_found,
            instances::instance_delete_gone_ok,
            instances::instance_invalid_input,
            instances::instance_tag_filter,
            recreate::instance_recreate_after_tags,
            unknown_ids::instance_unknown_id_not_found,
            pagination::instance_pagination,
        ],
        LoadBalancers: [
            load_balancers::load_balancer_lifecycle,
            load_balancers::load_balancer_members,
            load_balancers::load_balancer_create_idempotent,
            load_balancers::load_balancer_name_conflict,
            load_balancers::load_balancer_missing_not_found,
            load_balancers::load_balancer_delete_gone_ok,
            load_balancers::load_balancer_invalid_input,
            load_balancers::load_balancer_tag_filter,
            recreate::load_balancer_recreate_after_tags,
            unknown_ids::load_balancer_unknown_id_not_found,
            in_use::load_balancer_member_deleted,
            pagination::load_balancer_pagination,
        ],
    }
}

/// Runs every check, one after the other, and reports each outcome.
pub async fn run_all(provider: &dyn Provider, config: &ConformanceConfig) -> Report {
    run_checks(provider, config, &checks()).await
}

/// Runs the given checks, one after the other, and reports each outcome.
pub async fn run_checks(
    provider: &dyn Provider,
    config: &ConformanceConfig,
    checks: &[Check],
) -> Report {
    let mut results = Vec::with_capacity(checks.len());
    for check in checks {
        let start = Instant::now();
        // The kit's own checks catch a panic themselves (and still sweep); this catches
        // one in any other `Check` so the report goes on.
        let run = AssertUnwindSafe(check.run(provider, config)).catch_unwind();
        let outcome = match run.await {
            Ok(Ok(())) => Outcome::Passed,
            Ok(Err(CheckFailure::Failed(r))) => Outcome::Failed(r),
            Ok(Err(CheckFailure::Skipped(r))) => Outcome::Skipped(r),
            Err(payload) => {
                Outcome::Failed(format!("panicked: {}", panic_message(payload.as_ref())))
            }
        };
        let duration = start.elapsed();
        match &outcome {
            Outcome::Passed => tracing::info!(check = check.name, ?duration, "passed"),
            Outcome::Failed(r) => {
                tracing::warn!(check = check.name, ?duration, reason = %r, "failed")
            }
            Outcome::Skipped(r) => tracing::info!(check = check.name, reason = %r, "skipped"),
        }
        results.push(CheckReport {
            name: check.name,
            family: check.family,
            outcome,
            duration,
        });
    }
    Report {
        provider: provider.name().to_string(),
        checks: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_are_unique_and_short_enough_for_nova_tags() {
        let all = checks();
        assert!(all.len() >= 30, "only {} checks", all.len());
        let mut names: Vec<_> = all.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "duplicate check names");
        for name in names {
            // Nova string tags are `key=value`, at most 60 characters.
            assert!(
                CHECK_TAG.len() + 1 + name.len() <= 60,
                "{name} is too long for a Nova tag"
            );
        }
        // The run tag with a uuid fits too.
        assert!(RUN_TAG.len() + 1 + 36 <= 60);
    }

    #[test]
    fn report_counts_and_prints() {
        let report = Report {
            provider: "p".into(),
            checks: vec![
                CheckReport {
                    name: "a_check",
                    family: Family::Volumes,
                    outcome: Outcome::Passed,
                    duration: Duration::from_millis(5),
                },
                CheckReport {
                    name: "b_check",
                    family: Family::LoadBalancers,
                    outcome: Outcome::Skipped("no load balancers".into()),
                    duration: Duration::ZERO,
                },
                CheckReport {
                    name: "c_check",
                    family: Family::Core,
                    outcome: Outcome::Failed("broken".into()),
                    duration: Duration::from_secs(1),
                },
            ],
        };
        assert!(!report.is_success());
        assert_eq!(
            (report.passed(), report.failed(), report.skipped()),
            (1, 1, 1)
        );
        assert_eq!(
            report.outcome("c_check"),
            Some(&Outcome::Failed("broken".into()))
        );
        let text = report.to_string();
        assert!(text.contains("1 passed, 1 failed, 1 skipped"), "{text}");
        assert!(
            text.contains("c_check") && text.contains("FAILED") && text.contains("broken"),
            "{text}"
        );
        assert!(text.contains("no load balancers"), "{text}");
    }
}
