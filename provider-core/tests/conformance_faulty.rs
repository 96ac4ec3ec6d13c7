//! The kit catches faulty providers: each wrapper below breaks one family of behaviour
//! of the memory provider, and the checks of that family must fail (not pass, not be
//! skipped). The unbroken wrapper passes every check, so the failures come from the
//! fault alone.

mod faulty;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use faulty::{Fault, Faulty};
use provider_core::conformance::{self, Check, ConformanceConfig, Outcome, Report};
use provider_core::layer::{Layer, Layered};
use provider_core::memory::MemoryProvider;
use provider_core::{
    Error, Operation, Provider, Result, SecurityGroupSpec, SecurityGroups, TagFilter,
};
use provider_core::{FloatingIps, LoadBalancers};

/// A layer that keeps `InvalidInput` but stops naming the field: a provider whose
/// errors a caller cannot act on.
#[derive(Debug)]
struct VagueErrors;

#[async_trait]
impl Layer for VagueErrors {
    async fn call<T, F, Fut>(&self, _op: Operation, mut f: F) -> Result<T>
    where
        T: Send,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
    {
        f().await.map_err(|e| match e {
            Error::InvalidInput {
                operation, message, ..
            } => Error::invalid(operation, "input", message),
            e => e,
        })
    }
}

fn config() -> ConformanceConfig {
    ConformanceConfig::new("linux", "small").with_floating_ip_pool("public")
}

/// The checks whose names end with one of `suffixes`.
fn family(suffixes: &[&str]) -> Vec<Check> {
    let checks: Vec<Check> = conformance::checks()
        .into_iter()
        .filter(|c| suffixes.iter().any(|s| c.name.ends_with(s)))
        .collect();
    assert!(!checks.is_empty(), "no check ends with {suffixes:?}");
    checks
}

/// Runs `checks` against `provider` and asserts every one failed.
async fn assert_caught(provider: &dyn Provider, checks: &[Check], expected: usize) -> Report {
    let report = conformance::run_checks(provider, &config(), checks).await;
    println!("{report}");
    assert_eq!(report.checks.len(), expected, "{report}");
    for c in &report.checks {
        assert!(
            matches!(c.outcome, Outcome::Failed(_)),
            "{} did not catch the fault: {:?}\n{report}",
            c.name,
            c.outcome
        );
    }
    report
}

fn reason<'a>(report: &'a Report, check: &str) -> &'a str {
    report
        .outcome(check)
        .and_then(Outcome::reason)
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn the_unbroken_wrapper_passes_every_check() {
    let p = Faulty::new(Fault::None);
    let report = conformance::run_all(&p, &config()).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.skipped(), 0, "{report}");
}

#[tokio::test(start_paused = true)]
async fn not_found_lies_are_caught() {
    let p = Faulty::new(Fault::LiesAboutNotFound);
    let checks = family(&["_missing_not_found"]);
    let report = assert_caught(&p, &checks, 6).await;
    assert!(
        reason(&report, "volume_missing_not_found").contains("expected NotFound, got Ok"),
        "{report}"
    );
    // And so do ids that never existed.
    let report = assert_caught(&p, &family(&["_unknown_id_not_found"]), 5).await;
    assert!(
        reason(&report, "instance_unknown_id_not_found").contains("never-existing"),
        "{report}"
    );
    // Lifecycle checks see the deleted resource "still there" too.
    let report = conformance::run_checks(&p, &config(), &family(&["_lifecycle"])).await;
    assert_eq!(report.failed(), 5, "{report}");
}

#[tokio::test(start_paused = true)]
async fn ignored_tag_filters_are_caught() {
    let p = Faulty::new(Fault::IgnoresTagFilters);
    let report = assert_caught(&p, &family(&["_tag_filter"]), 5).await;
    assert!(
        reason(&report, "instance_tag_filter").contains("whose"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_sweep_deletes_only_its_own_resources_when_filters_are_ignored() {
    let p = Faulty::new(Fault::IgnoresTagFilters);
    let bystander = p
        .inner
        .create_security_group(
            &SecurityGroupSpec::new("not-the-kits")
                .with_tags([("owner".to_string(), "someone-else".to_string())].into()),
        )
        .await
        .unwrap();
    let report = conformance::run_checks(&p, &config(), &family(&["_tag_filter"])).await;
    assert_eq!(report.failed(), 5, "{report}");
    p.inner
        .get_security_group(&bystander.id)
        .await
        .expect("the sweep deleted a group the kit did not create");
}

#[tokio::test(start_paused = true)]
async fn wrong_zone_placement_is_caught() {
    let p = Faulty::new(Fault::WrongZone);
    let checks = family(&["_zone_placement", "instance_batch_forms"]);
    let report = assert_caught(&p, &checks, 3).await;
    assert!(
        reason(&report, "instance_zone_placement").contains("returned zone"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn lists_truncated_to_one_page_are_caught() {
    let p = Faulty::new(Fault::TruncatesLists);
    let report = assert_caught(&p, &family(&["_pagination"]), 5).await;
    assert!(
        reason(&report, "security_group_pagination").contains("does not follow pagination"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn accepted_invalid_input_is_caught() {
    let p = Faulty::new(Fault::AcceptsInvalidInput);
    let report = assert_caught(&p, &family(&["_invalid_input"]), 6).await;
    assert!(
        reason(&report, "volume_invalid_input").contains("expected InvalidInput, got Ok"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_input_that_does_not_name_the_field_is_caught() {
    let base: Arc<dyn Provider> = Arc::new(MemoryProvider::default());
    let p = Layered::new(base, VagueErrors);
    let report = assert_caught(&p, &family(&["_invalid_input"]), 6).await;
    assert!(
        reason(&report, "security_group_invalid_input").contains("names the field \"input\""),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn failing_delete_of_gone_resources_is_caught() {
    let p = Faulty::new(Fault::DeleteOfGoneFails);
    let report = assert_caught(&p, &family(&["_delete_gone_ok"]), 5).await;
    assert!(
        reason(&report, "instance_delete_gone_ok").contains("NotFound"),
        "{report}"
    );
    // A delete of an id that never existed is a delete of what is gone.
    let report = assert_caught(&p, &family(&["_unknown_id_not_found"]), 5).await;
    assert!(
        reason(&report, "volume_unknown_id_not_found").contains("counts as deleted"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_create_is_caught() {
    let p = Faulty::new(Fault::NotIdempotent);
    let checks = family(&["_create_idempotent", "instance_batch_forms"]);
    let report = assert_caught(&p, &checks, 6).await;
    assert!(
        reason(&report, "volume_create_idempotent").contains("AlreadyExists"),
        "{report}"
    );
    // The same name with another spec is not Conflict either.
    assert_caught(&p, &family(&["_name_conflict"]), 5).await;
}

#[tokio::test(start_paused = true)]
async fn a_create_that_ignores_the_spec_of_an_existing_name_is_caught() {
    let p = Faulty::new(Fault::IgnoresSpecOnConflict);
    let report = assert_caught(&p, &family(&["_name_conflict"]), 5).await;
    assert!(
        reason(&report, "load_balancer_name_conflict").contains("expected Conflict, got Ok"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn checks_needing_floating_ips_or_lbs_are_skipped_without_them() {
    let p = Faulty::new(Fault::WithoutFloatingIpsOrLbs);
    let report = conformance::run_all(&p, &config()).await;
    assert!(report.is_success(), "{report}");
    let needing: Vec<&str> = conformance::checks()
        .iter()
        .filter(|c| {
            c.name.starts_with("floating_ip_")
                || c.name.starts_with("load_balancer_")
                || c.name == "security_group_lb_in_use_conflict"
        })
        .map(|c| c.name)
        .collect();
    assert_eq!(needing.len(), 14 + 12 + 1);
    assert_eq!(report.skipped(), needing.len(), "{report}");
    for name in needing {
        match report.outcome(name) {
            Some(Outcome::Skipped(r)) => assert!(r.contains("() is None"), "{name}: {r}"),
            other => panic!("{name}: expected a skip, got {other:?}"),
        }
    }
    // The checks that use every kind it has still pass.
    assert!(report
        .outcome("update_tags_every_kind")
        .is_some_and(Outcome::is_passed));
    assert!(report
        .outcome("capabilities_are_consistent")
        .is_some_and(Outcome::is_passed));
}

#[tokio::test(start_paused = true)]
async fn capabilities_that_lie_are_caught_and_what_was_made_is_swept() {
    let p = Faulty::new(Fault::CapabilitiesLie);
    let check = family(&["capabilities_are_consistent"]);
    let report = assert_caught(&p, &check, 1).await;
    assert!(
        reason(&report, "capabilities_are_consistent").contains("lists no lb_protocols"),
        "{report}"
    );
    let all = TagFilter::all();
    assert!(p.inner.list_floating_ips(&all).await.unwrap().is_empty());
    assert!(p.inner.list_load_balancers(&all).await.unwrap().is_empty());
}

/// The re-create checks, one per kind.
const RECREATE: [&str; 2] = ["_recreate_after_tags", "_recreate_after_rules"];

#[tokio::test(start_paused = true)]
async fn a_create_compared_with_the_current_tags_is_caught() {
    let p = Faulty::new(Fault::ComparesCurrentTags);
    let report = assert_caught(&p, &family(&RECREATE), 5).await;
    assert!(
        reason(&report, "volume_recreate_after_tags").contains("unexpected Conflict"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_create_that_matches_fewer_tags_or_rules_is_caught() {
    let p = Faulty::new(Fault::MatchesSubset);
    let report = assert_caught(&p, &family(&RECREATE), 5).await;
    let why = reason(&report, "security_group_recreate_after_rules");
    assert!(
        why.contains("fewer rules") && why.contains("expected Conflict, got Ok"),
        "{report}"
    );
    assert!(
        reason(&report, "floating_ip_recreate_after_tags").contains("fewer tags"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_no_op_update_tags_is_caught() {
    let p = Faulty::new(Fault::NoOpUpdateTags);
    let tag_checks = [
        "update_tags_sets_and_removes",
        "update_tags_every_kind",
        "update_tags_missing_not_found",
    ];
    let report = assert_caught(&p, &family(&[&tag_checks[..], &RECREATE[..]].concat()), 8).await;
    assert!(
        reason(&report, "instance_recreate_after_tags").contains("after update_tags"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_ids_answered_with_invalid_input_are_caught() {
    let p = Faulty::new(Fault::RejectsMalformedIds);
    let report = assert_caught(&p, &family(&["_unknown_id_not_found"]), 5).await;
    let why = reason(&report, "load_balancer_unknown_id_not_found");
    assert!(
        why.contains("malformed") && why.contains("got InvalidInput"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn in_use_deletes_that_answer_ok_are_caught() {
    let p = Faulty::new(Fault::SwallowsInUseConflict);
    let checks = family(&[
        "security_group_in_use_conflict",
        "security_group_referenced_conflict",
        "security_group_lb_in_use_conflict",
        "volume_delete_attached_conflict",
        "floating_ip_release_associated",
    ]);
    let report = assert_caught(&p, &checks, 5).await;
    assert!(
        reason(&report, "security_group_lb_in_use_conflict").contains("expected Conflict, got Ok"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_associated_address_released_anyway_is_caught() {
    let p = Faulty::new(Fault::ReleasesAssociated);
    let report = assert_caught(&p, &family(&["floating_ip_release_associated"]), 1).await;
    assert!(
        reason(&report, "floating_ip_release_associated").contains("expected Conflict, got Ok"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_instance_left_in_its_pools_is_caught() {
    let p = Faulty::new(Fault::KeepsDeletedMembers);
    let report = assert_caught(&p, &family(&["load_balancer_member_deleted"]), 1).await;
    assert!(
        reason(&report, "load_balancer_member_deleted").contains("still a member"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_delete_of_a_member_instance_is_caught() {
    let p = Faulty::new(Fault::RefusesMemberDelete);
    let report = assert_caught(&p, &family(&["load_balancer_member_deleted"]), 1).await;
    assert!(
        reason(&report, "load_balancer_member_deleted").contains("unexpected Conflict"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn attachments_not_reported_are_caught() {
    let p = Faulty::new(Fault::HidesAttachments);
    let checks = family(&["volume_attach_detach", "volume_delete_attached_conflict"]);
    let report = assert_caught(&p, &checks, 2).await;
    assert!(
        reason(&report, "volume_delete_attached_conflict").contains("attachment is None"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn associations_not_reported_are_caught() {
    let p = Faulty::new(Fault::HidesAssociations);
    let checks = family(&[
        "floating_ip_associate",
        "floating_ip_move",
        "floating_ip_release_associated",
    ]);
    let report = assert_caught(&p, &checks, 3).await;
    assert!(
        reason(&report, "floating_ip_release_associated").contains("after associate"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn members_not_reported_are_caught() {
    let p = Faulty::new(Fault::HidesMembers);
    let checks = family(&[
        "load_balancer_lifecycle",
        "load_balancer_members",
        "load_balancer_member_deleted",
    ]);
    let report = assert_caught(&p, &checks, 3).await;
    assert!(
        reason(&report, "load_balancer_member_deleted").contains("created with member A"),
        "{report}"
    );
}
