//! The preflight of a replacement command: what its successors need from the cloud,
//! checked before any node is marked.

use provider_core::{Demand, Instance, Problem, Reference, References};

use super::{role_of, ReplaceOptions};
use crate::spec::Role;
use crate::{Cluster, Error, Result};

/// The preflight of a new command, before anything is marked: the spec's references
/// (the successors are made from today's spec: a deleted image must not be found out
/// after a delete-first run took the old node down), and the quota for the most
/// successors that exist next to their old nodes at once. Roles go one after another,
/// so each role's peak is checked on its own: masters and storage nodes one at a time,
/// nodes `max_surge + max_unavailable` at once; delete-first needs none. Volumes and
/// floating IPs are handed over, not created.
pub(super) async fn check(
    cluster: &Cluster,
    targets: &[Instance],
    opts: &ReplaceOptions,
) -> Result<()> {
    let spec = cluster.spec();
    let keys = crate::spec::keys::reference_keys(spec.provider);
    // Each role's peak: the flavor its successors are made of, and how many at once.
    let peaks: Vec<(Reference, usize)> = [Role::Master, Role::Storage, Role::Node]
        .into_iter()
        .filter(|_| opts.max_surge > 0)
        .filter_map(|role| {
            let selected = targets.iter().filter(|t| role_of(t) == Some(role)).count();
            let width = match role {
                Role::Node => opts.max_surge + opts.max_unavailable,
                Role::Master | Role::Storage => 1,
            };
            let flavor = Reference::new(keys.flavor(role), &spec.role(role).flavor);
            (selected > 0).then(|| (flavor, selected.min(width)))
        })
        .collect();
    // The first check carries every reference; the other roles' only their quota.
    let mut checked = Ok(());
    for (i, (flavor, peak)) in peaks.iter().enumerate() {
        let refs = match i {
            0 => crate::preflight::spec_references(spec),
            _ => References::new().with_flavor(flavor.clone()),
        };
        checked = cluster
            .check(&refs.with_demand(Demand::new().with_instances(flavor.clone(), *peak)))
            .await;
        if checked.is_err() {
            break;
        }
    }
    if peaks.is_empty() {
        checked = cluster
            .check(&crate::preflight::spec_references(spec))
            .await;
    }
    match checked {
        Err(Error::Preflight(mut problems)) if problems.0.iter().any(|p| p.key == "quota") => {
            problems.0.push(Problem::new(
                "max_surge",
                format!(
                    "with --max-surge {} the successors exist next to the nodes they replace; \
                     lower it, or replace delete-first with --max-surge 0 --max-unavailable 1",
                    opts.max_surge
                ),
            ));
            Err(Error::Preflight(problems))
        }
        other => other,
    }
}
