//! `destroy`: removes everything the cluster tag owns, and nothing else, in reverse
//! dependency order (LBs and members, floating IPs, volume detaches, instances,
//! volumes, group rules naming groups, groups). It is the diff against nothing, so it
//! is as safe to rerun as `apply`.

use std::sync::Arc;

use provider_core::layer::Layered;
use provider_core::Provider;

use crate::execute::{execute, ExecuteOptions, Observer, Report};
use crate::lease;
use crate::plan::{diff, Desired, DiffOptions, Observed, Plan, TAG_CLUSTER};
use crate::{Error, Result};

/// The plan that removes everything tagged with `cluster`, and the state it was made
/// from.
pub async fn plan(
    provider: Arc<dyn Provider>,
    cluster: &str,
    options: &ExecuteOptions,
) -> Result<(Plan, Observed)> {
    let p = Layered::new(provider, options.retry.clone());
    let observed = Observed::fetch(&p, cluster).await?;
    let opts = DiffOptions {
        delete_unwanted_volumes: true,
        ..DiffOptions::default()
    };
    Ok((diff(&Desired::empty(cluster), &observed, &opts), observed))
}

/// Removes everything tagged with `cluster`; fails with the report if any action
/// failed or the run was stopped.
pub async fn destroy(
    provider: Arc<dyn Provider>,
    cluster: &str,
    options: &ExecuteOptions,
    observer: &dyn Observer,
) -> Result<Report> {
    let (plan, observed) = plan(provider.clone(), cluster, options).await?;
    run(provider, &plan, &observed, options, observer).await
}

/// Runs a destroy plan made by [`plan`] (e.g. after the operator confirmed it) under
/// the operator lease ([`crate::lease`]), released afterwards also on failure. A cluster
/// without a base group has no lease to take and is destroyed without one.
pub async fn run(
    provider: Arc<dyn Provider>,
    plan: &Plan,
    observed: &Observed,
    options: &ExecuteOptions,
    observer: &dyn Observer,
) -> Result<Report> {
    let cluster = &plan_cluster(observed);
    let lease = match cluster {
        Some(name) if !plan.is_empty() => {
            let p: Arc<dyn Provider> =
                Arc::new(Layered::new(provider.clone(), options.retry.clone()));
            lease::acquire(p, name, &options.lease, None, options.stop.clone()).await?
        }
        _ => None,
    };
    lease::holding(lease, async {
        let report = execute(provider, plan, observed, options, observer).await;
        if report.is_complete() {
            Ok(report)
        } else {
            Err(Error::Incomplete(Box::new(report)))
        }
    })
    .await
}

/// The cluster `observed` belongs to (from its owner tags), if it holds anything.
fn plan_cluster(observed: &Observed) -> Option<String> {
    observed
        .groups
        .iter()
        .find_map(|g| g.tags.get(TAG_CLUSTER).cloned())
}
