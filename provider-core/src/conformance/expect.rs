//! The steps of a check and the expectations on their results: `failed` and `skipped`
//! outcomes, `.step(...)` to turn a provider error into a failure that says what was
//! being done, and the `expect_*` / `ensure_*` assertions.

use std::fmt::{Debug, Display};

use super::ctx::Ctx;
use super::fixtures::ROLE_TAG;
use super::{CheckFailure, RUN_TAG};
use crate::model::*;
use crate::{Error, ErrorKind};

/// The result of one step of a check.
pub(crate) type Step<T> = Result<T, CheckFailure>;
/// A failed step.
pub(crate) fn failed(reason: impl Into<String>) -> CheckFailure {
    CheckFailure::Failed(reason.into())
}

/// A skipped check.
pub(crate) fn skipped(reason: impl Into<String>) -> CheckFailure {
    CheckFailure::Skipped(reason.into())
}

/// Turns a provider error into a failed step that says what was being done.
pub(crate) trait StepExt<T> {
    /// `what` names the call, e.g. `create_volume pc-1234-vol`.
    fn step(self, what: impl Display) -> Step<T>;
}

impl<T> StepExt<T> for crate::Result<T> {
    fn step(self, what: impl Display) -> Step<T> {
        self.map_err(|e| failed(format!("{what}: unexpected {:?} error: {e}", e.kind())))
    }
}

/// A short rendering of a value for failure messages.
pub(crate) fn brief<T: Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// Expects an error of one of `kinds`; returns it.
pub(crate) fn expect_kind<T: Debug>(
    res: crate::Result<T>,
    kinds: &[ErrorKind],
    what: impl Display,
) -> Step<Error> {
    let wanted = kinds
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(" or ");
    match res {
        Ok(v) => Err(failed(format!(
            "{what}: expected {wanted}, got Ok({})",
            brief(&v)
        ))),
        Err(e) if kinds.contains(&e.kind()) => Ok(e),
        Err(e) => Err(failed(format!(
            "{what}: expected {wanted}, got {:?}: {e}",
            e.kind()
        ))),
    }
}

/// Expects `NotFound`.
pub(crate) fn expect_not_found<T: Debug>(res: crate::Result<T>, what: impl Display) -> Step<()> {
    expect_kind(res, &[ErrorKind::NotFound], what).map(|_| ())
}

/// Expects `Conflict`.
pub(crate) fn expect_conflict<T: Debug>(res: crate::Result<T>, what: impl Display) -> Step<()> {
    expect_kind(res, &[ErrorKind::Conflict], what).map(|_| ())
}

/// Expects `InvalidInput` whose field names `field` (e.g. `size_gib` matches
/// `spec.size_gib`).
pub(crate) fn expect_invalid<T: Debug>(
    res: crate::Result<T>,
    field: &str,
    what: impl Display,
) -> Step<()> {
    let e = expect_kind(res, &[ErrorKind::InvalidInput], &what)?;
    match &e {
        Error::InvalidInput { field: f, .. } if f.contains(field) => Ok(()),
        Error::InvalidInput { field: f, .. } => Err(failed(format!(
            "{what}: InvalidInput names the field {f:?}, expected one naming {field:?} ({e})"
        ))),
        _ => Err(failed(format!("{what}: expected InvalidInput, got {e}"))),
    }
}

/// Checks every pair of `want` is in `got`.
pub(crate) fn ensure_tags(want: &Tags, got: &Tags, what: impl Display) -> Step<()> {
    for (k, v) in want {
        if got.get(k) != Some(v) {
            return Err(failed(format!(
                "{what}: tag {k:?} is {:?}, expected {v:?} (tags: {got:?})",
                got.get(k)
            )));
        }
    }
    Ok(())
}

impl Ctx<'_> {
    /// Checks tag filters on `kind`, given resource `a` tagged with role `a` and `b` with
    /// role `b`: each role's filter returns its resource, not the other, and only
    /// resources whose tags match; the run filter returns both.
    pub(crate) async fn check_tag_filter(&self, kind: ResourceKind, a: &str, b: &str) -> Step<()> {
        for (role, want, other) in [("a", a, b), ("b", b, a)] {
            let filter = self.filter().and(ROLE_TAG, role);
            let listed = self
                .list_tagged(kind, &filter)
                .await
                .step(format!("listing {kind}s with filter {:?}", filter.tags))?;
            ensure!(
                listed.iter().any(|(id, _)| id == want),
                "list of {kind}s with filter {:?} did not return {want}, which carries those tags",
                filter.tags
            );
            ensure!(
                !listed.iter().any(|(id, _)| id == other),
                "list of {kind}s with filter {:?} returned {other}, whose {ROLE_TAG} is not {role:?}",
                filter.tags
            );
            if let Some((id, tags)) = listed.iter().find(|(_, t)| !filter.matches(t)) {
                return Err(failed(format!(
                    "list of {kind}s with filter {:?} returned {id} whose tags {tags:?} do not match it ({} returned in all)",
                    filter.tags,
                    listed.len()
                )));
            }
        }
        let listed = self
            .list_tagged(kind, &self.filter())
            .await
            .step(format!("listing {kind}s with the run's filter"))?;
        for id in [a, b] {
            ensure!(
                listed.iter().any(|(x, _)| x == id),
                "list of {kind}s with filter on {RUN_TAG} alone did not return {id}"
            );
        }
        Ok(())
    }
}
