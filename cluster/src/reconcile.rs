//! [`Cluster`]: one spec on one provider. `plan` lists what the cluster tag owns and
//! diffs it against the spec; `apply` runs that plan under the operator lease
//! ([`crate::lease`]); both are safe to repeat.

use std::sync::Arc;

use provider_core::layer::Layered;
use provider_core::ProviderExt;
use provider_core::{Provider, SecurityGroupSpec};

use crate::execute::{execute, ExecuteOptions, Observer, Report};
use crate::lease::{self, Lease};
use crate::plan::{diff, Desired, DiffOptions, Observed, Plan, RuleRef};
use crate::spec::{ClusterSpec, ProviderKind};
use crate::status::ClusterStatus;
use crate::{Error, Result};

/// A cluster spec bound to the provider that hosts it.
#[derive(Debug, Clone)]
pub struct Cluster {
    spec: ClusterSpec,
    provider: Arc<dyn Provider>,
    options: ExecuteOptions,
    diff_options: DiffOptions,
}

/// What `apply` did.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// The plan it ran.
    pub plan: Plan,
    /// What it did (every action, since `apply` fails unless all completed).
    pub report: Report,
}

impl Cluster {
    /// Binds `spec` to `provider` with default options.
    pub fn new(spec: ClusterSpec, provider: Arc<dyn Provider>) -> Self {
        Self {
            spec,
            provider,
            options: ExecuteOptions::default(),
            diff_options: DiffOptions::default(),
        }
    }

    /// Sets how plans run (concurrency, retry, stop flag).
    pub fn with_options(mut self, options: ExecuteOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets how plans are made (batch size).
    pub fn with_diff_options(mut self, options: DiffOptions) -> Self {
        self.diff_options = options;
        self
    }

    /// The spec.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The provider, without the retry layer.
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }

    /// The execution options.
    pub fn options(&self) -> &ExecuteOptions {
        &self.options
    }

    /// The provider with the retry layer, for reads outside the executor.
    fn retrying(&self) -> Layered<provider_core::layer::Retry> {
        Layered::new(self.provider.clone(), self.options.retry.clone())
    }

    /// The AZs to spread over: the spec's list, each checked against the provider.
    pub async fn zones(&self) -> Result<Vec<String>> {
        let offered = self.retrying().list_availability_zones().await?;
        let key = match self.spec.provider {
            ProviderKind::VSphere => "VSphere.Clusters".to_string(),
            k => format!("{}.AvailabilityZones", k.key_prefix()),
        };
        let names: Vec<&str> = offered.iter().map(|z| z.name.as_str()).collect();
        if self.spec.availability_zones.is_empty() {
            let zones: Vec<String> = offered
                .iter()
                .filter(|z| z.available)
                .map(|z| z.name.clone())
                .collect();
            if zones.is_empty() {
                return Err(Error::Plan {
                    key,
                    message: "the provider offers no available zone".into(),
                });
            }
            return Ok(zones);
        }
        let mut problems = Vec::new();
        for z in &self.spec.availability_zones {
            match offered.iter().find(|o| &o.name == z) {
                None => problems.push(format!("{z:?} is not a zone of this provider")),
                Some(o) if !o.available => problems.push(format!("{z:?} is not available now")),
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            Ok(self.spec.availability_zones.clone())
        } else {
            Err(Error::Plan {
                key,
                message: format!(
                    "{}: list zones the provider offers ({})",
                    problems.join(", "),
                    names.join(", ")
                ),
            })
        }
    }

    /// What the spec asks for on this provider.
    pub async fn desired(&self) -> Result<Desired> {
        let zones = self.zones().await?;
        Ok(Desired::from_spec(
            &self.spec,
            &zones,
            &self.provider.capabilities(),
            &self.provider.families(),
        ))
    }

    /// What the cluster tag owns now.
    pub async fn observe(&self) -> Result<Observed> {
        Ok(Observed::fetch(&self.retrying(), &self.spec.name).await?)
    }

    /// The plan from what exists to what the spec asks for, and the state it was made
    /// from.
    pub async fn plan(&self) -> Result<(Plan, Observed)> {
        let (desired, observed) = futures::try_join!(self.desired(), self.observe())?;
        Ok((diff(&desired, &observed, &self.diff_options), observed))
    }

    /// Takes the operator lease on this cluster (see [`crate::lease`]), creating the
    /// base security group first if it does not exist yet (as the plan would). Refuses
    /// with [`Error::Blocked`] before creating anything when the spec cannot be applied
    /// on this provider.
    pub async fn lease(&self) -> Result<Option<Lease>> {
        let desired = self.desired().await?;
        if !desired.blockers.is_empty() {
            return Err(Error::Blocked(desired.blockers));
        }
        let base = lease::base_group_name(&self.spec.name);
        let create = desired
            .groups
            .iter()
            .find(|g| g.name == base)
            .map(|g| SecurityGroupSpec {
                name: g.name.clone(),
                description: g.description.clone(),
                // Group references are added by the plan once every group exists, as
                // for any group the plan creates.
                rules: g
                    .rules
                    .iter()
                    .filter_map(|r| match r {
                        RuleRef::Rule(r) => Some(r.clone()),
                        RuleRef::Group { .. } => None,
                    })
                    .collect(),
                tags: g.tags.clone(),
            });
        lease::acquire(
            Arc::new(self.retrying()),
            &self.spec.name,
            &self.options.lease,
            create,
            self.options.stop.clone(),
        )
        .await
    }

    /// Takes the operator lease if the cluster's base group exists (`Ok(None)` if not:
    /// nothing to hold), for commands that never create it.
    pub(crate) async fn lease_existing(&self) -> Result<Option<Lease>> {
        lease::acquire(
            Arc::new(self.retrying()),
            &self.spec.name,
            &self.options.lease,
            None,
            self.options.stop.clone(),
        )
        .await
    }

    /// Takes the lease, plans and runs the plan (see [`Cluster::run`]), and releases the
    /// lease, also on failure. The lease is taken also when there is nothing to do, so a
    /// rerun clears the lease a crashed run of ours left behind.
    pub async fn apply(&self, observer: &dyn Observer) -> Result<ApplyOutcome> {
        let lease = self.lease().await?;
        lease::holding(lease, self.apply_unleased(observer)).await
    }

    /// Plans and runs the plan, for a caller that holds the lease already.
    pub(crate) async fn apply_unleased(&self, observer: &dyn Observer) -> Result<ApplyOutcome> {
        let (plan, observed) = self.plan().await?;
        self.run_unleased(plan, &observed, observer).await
    }

    /// Runs a plan made by [`Cluster::plan`] from `observed`, holding the lease while it
    /// runs. Refuses before creating anything when the plan has blockers; fails with the
    /// report when an action fails or the run is stopped.
    pub async fn run(
        &self,
        plan: Plan,
        observed: &Observed,
        observer: &dyn Observer,
    ) -> Result<ApplyOutcome> {
        if !plan.blockers.is_empty() {
            return Err(Error::Blocked(plan.blockers));
        }
        let lease = self.lease().await?;
        lease::holding(lease, self.run_unleased(plan, observed, observer)).await
    }

    async fn run_unleased(
        &self,
        plan: Plan,
        observed: &Observed,
        observer: &dyn Observer,
    ) -> Result<ApplyOutcome> {
        if !plan.blockers.is_empty() {
            return Err(Error::Blocked(plan.blockers));
        }
        let report = execute(
            self.provider.clone(),
            &plan,
            observed,
            &self.options,
            observer,
        )
        .await;
        if !report.is_complete() {
            return Err(Error::Incomplete(Box::new(report)));
        }
        Ok(ApplyOutcome { plan, report })
    }

    /// Nodes by role and AZ, load balancers and their members' health.
    pub async fn status(&self) -> Result<ClusterStatus> {
        let (desired, observed) = futures::try_join!(self.desired(), self.observe())?;
        Ok(ClusterStatus::new(&desired, &observed))
    }
}
