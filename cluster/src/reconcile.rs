//! [`Cluster`]: one spec on one provider, and every verb as a method of it.
//!
//! Reads (`plan`, `plan_destroy`, `status`) list what the cluster tag owns and compare
//! it with the spec. Changes (`apply`, `run`, `destroy`, `replace`, `scale`) hold the
//! operator lease ([`crate::lease`]) while they work and release it afterwards, also on
//! failure. Every verb is safe to repeat, also after a crash.
//!
//! ```no_run
//! # async fn f() -> cluster::Result<()> {
//! use cluster::{Cluster, ClusterSpec};
//! let spec = ClusterSpec::load("examples/local.properties".as_ref())?;
//! let cluster = Cluster::open(spec).await?;
//! println!("{}", cluster.plan().await?);
//! cluster.apply().await?;
//! println!("{:?}", cluster.status().await?.missing);
//! cluster.destroy().await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;

use provider_core::layer::Layered;
use provider_core::ProviderExt;
use provider_core::{Provider, SecurityGroup, SecurityGroupSpec};

use crate::execute::{execute_made, Engine, ExecuteOptions, Observer, Quiet, Report};
use crate::health::HealthOptions;
use crate::hooks::{Hooks, NoHooks};
use crate::lease::{self, Lease};
use crate::plan::{diff, Action, Desired, DiffOptions, Observed, Plan, RuleRef};
use crate::replace::{ReplaceOptions, ReplaceReport, Selector};
use crate::scale::ScaleReport;
use crate::spec::{ClusterSpec, Role};
use crate::status::ClusterStatus;
use crate::{Error, Result};

/// A cluster spec bound to the provider that hosts it.
#[derive(Clone)]
pub struct Cluster {
    spec: ClusterSpec,
    /// The provider as given.
    provider: Arc<dyn Provider>,
    /// The provider with the retry layer: the one every verb calls.
    retrying: Arc<dyn Provider>,
    options: ExecuteOptions,
    diff_options: DiffOptions,
    /// The installer's hooks; `None` calls none (and costs no extra call).
    hooks: Option<Arc<dyn Hooks>>,
    observer: Arc<dyn Observer>,
    /// How `status`, `repair` and `watch` judge node health.
    health: HealthOptions,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.spec.name)
            .field("provider", &self.provider.name())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What `apply` (or `run`) did.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// The plan it ran.
    pub plan: Plan,
    /// What it did (every action, since a run fails unless all completed).
    pub report: Report,
}

impl Cluster {
    /// Opens the provider `spec` names ([`crate::cloud::open`]: its environment plus the
    /// spec's provider keys) and binds the spec to it.
    pub async fn open(spec: ClusterSpec) -> Result<Self> {
        let provider = crate::cloud::open(&spec).await?;
        Ok(Self::new(spec, provider))
    }

    /// Binds `spec` to any provider (the memory provider, a third party's, a layered
    /// one) with default options, no hooks and no observer.
    pub fn new(spec: ClusterSpec, provider: Arc<dyn Provider>) -> Self {
        let options = ExecuteOptions::default();
        Self {
            retrying: retrying(&provider, &options),
            spec,
            provider,
            options,
            diff_options: DiffOptions::default(),
            hooks: None,
            observer: Arc::new(Quiet),
            health: HealthOptions::default(),
        }
    }

    /// Sets how plans run (concurrency, retry, stop flag, lease).
    pub fn with_options(mut self, options: ExecuteOptions) -> Self {
        self.retrying = retrying(&self.provider, &options);
        self.options = options;
        self
    }

    /// Sets how plans are made (batch size).
    pub fn with_diff_options(mut self, options: DiffOptions) -> Self {
        self.diff_options = options;
        self
    }

    /// Sets the installer's hooks: `on_ready` for every node `apply`, `replace` or
    /// `scale` brings up, `drain` and `health` during replacement and scaling.
    pub fn with_hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// Sets how `status`, `repair` and `watch` judge node health (hold times, start-up
    /// grace, probe; see [`crate::health`]).
    pub fn with_health(mut self, options: HealthOptions) -> Self {
        self.health = options;
        self
    }

    /// How node health is judged.
    pub fn health_options(&self) -> &HealthOptions {
        &self.health
    }

    /// Sets who is told about progress (actions and replacement steps).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The spec.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The provider as given, without the retry layer.
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }

    /// The execution options.
    pub fn options(&self) -> &ExecuteOptions {
        &self.options
    }

    pub(crate) fn retrying(&self) -> &Arc<dyn Provider> {
        &self.retrying
    }

    /// Whether hooks are set: nodes are then owed and told `on_ready` through the
    /// marker [`crate::hooks::TAG_READY`].
    pub(crate) fn tells(&self) -> bool {
        self.hooks.is_some()
    }

    /// The installer's hooks, if set (health checks then call them).
    pub(crate) fn hooks_if_set(&self) -> Option<&dyn Hooks> {
        self.hooks.as_deref()
    }

    pub(crate) fn hooks(&self) -> &dyn Hooks {
        match &self.hooks {
            Some(h) => h.as_ref(),
            None => &NoHooks,
        }
    }

    pub(crate) fn observer(&self) -> &dyn Observer {
        self.observer.as_ref()
    }

    /// The AZs to spread over: the spec's list, each checked against the provider.
    pub async fn zones(&self) -> Result<Vec<String>> {
        let offered = self.retrying.list_availability_zones().await?;
        let key = crate::preflight::zones_key(self.spec.provider);
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
        Ok(Observed::fetch(self.retrying.as_ref(), &self.spec.name).await?)
    }

    /// The plan from what exists to what the spec asks for; [`Cluster::run`] runs it.
    /// With hooks set, each node it creates is handed to [`Hooks::on_ready`] as soon as
    /// it runs, and so is each node a crashed run created but did not tell (actions of
    /// the plan; see [`crate::hooks`] for the marker that makes it once per node).
    ///
    /// The preflight runs first ([`crate::preflight`]) unless the plan only removes:
    /// when the cloud lacks what the spec names, or the plan does not fit its quota, the
    /// plan is refused with [`Error::Preflight`] listing every problem.
    pub async fn plan(&self) -> Result<Plan> {
        // The spec's zones as written: the preflight checks them with everything else.
        let zones = async {
            if self.spec.availability_zones.is_empty() {
                self.zones().await
            } else {
                Ok(self.spec.availability_zones.clone())
            }
        };
        let (zones, observed) = match futures::try_join!(zones, self.observe()) {
            Ok(found) => found,
            // A name the provider's own settings hold (e.g. a vSphere datastore) that
            // the cloud lacks: the preflight lists it with every other problem.
            Err(Error::Provider(e)) if e.kind() == provider_core::ErrorKind::InvalidInput => {
                self.check(&crate::preflight::spec_references(&self.spec))
                    .await?;
                return Err(Error::Provider(e));
            }
            Err(e) => return Err(e),
        };
        let desired = Desired::from_spec(
            &self.spec,
            &zones,
            &self.provider.capabilities(),
            &self.provider.families(),
        );
        let mut plan = diff(&desired, &observed, &self.diff_options);
        self.preflight(&plan).await?;
        if self.hooks.is_some() {
            crate::replace::moves::owe_on_ready(&mut plan);
            let created: Vec<(Option<usize>, String)> = plan
                .created_instances()
                .into_iter()
                .map(|(id, i)| (Some(id), i.name.clone()))
                .chain(
                    observed
                        .instances
                        .iter()
                        .filter(|i| crate::replace::moves::owed_on_ready(i))
                        .map(|i| (None, i.name.clone())),
                )
                .collect();
            for (create, instance) in created {
                let told = plan.push(
                    Action::OnReady {
                        instance: instance.clone(),
                    },
                    create,
                );
                plan.push(crate::replace::moves::told_mark(&instance), [told]);
            }
        }
        plan.observed = observed;
        Ok(plan)
    }

    /// Checks what `plan` needs against the cloud (references and quota, see
    /// [`crate::preflight`]), unless it only removes: a plan that only removes, or does
    /// nothing, uses no reference, so a no-op apply costs no look-ups.
    pub(crate) async fn preflight(&self, plan: &Plan) -> Result<()> {
        if plan.actions.iter().all(|a| a.action.is_delete()) {
            return Ok(());
        }
        self.check(&crate::preflight::references(&self.spec, plan))
            .await
    }

    /// Hands `refs` to the provider's preflight: every problem it finds, at once, is
    /// [`Error::Preflight`].
    pub(crate) async fn check(&self, refs: &provider_core::References) -> Result<()> {
        let problems = self.retrying.preflight(refs).await?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(crate::preflight::Problems(problems).into())
        }
    }

    /// The plan that removes everything the cluster tag owns, and nothing else, in
    /// reverse dependency order; [`Cluster::run`] runs it.
    pub async fn plan_destroy(&self) -> Result<Plan> {
        let observed = self.observe().await?;
        let opts = DiffOptions {
            delete_unwanted_volumes: true,
            ..self.diff_options.clone()
        };
        let mut plan = diff(&Desired::empty(&self.spec.name), &observed, &opts);
        plan.observed = observed;
        plan.teardown = true;
        Ok(plan)
    }

    /// Plans and runs the plan (see [`Cluster::run`]).
    pub async fn apply(&self) -> Result<ApplyOutcome> {
        let plan = self.plan().await?;
        self.run(plan).await
    }

    /// Plans and runs the removal of everything the cluster tag owns.
    pub async fn destroy(&self) -> Result<ApplyOutcome> {
        let plan = self.plan_destroy().await?;
        self.run(plan).await
    }

    /// Runs a plan made by [`Cluster::plan`] or [`Cluster::plan_destroy`] (e.g. after an
    /// operator confirmed it) under the lease. Refuses before creating anything when the
    /// plan has blockers; fails with the report when an action fails or the run is
    /// stopped. `apply` takes the lease also when there is nothing to do, so a rerun
    /// clears a lease a crashed run of ours left behind.
    pub async fn run(&self, plan: Plan) -> Result<ApplyOutcome> {
        if !plan.blockers.is_empty() {
            return Err(Error::Blocked(plan.blockers));
        }
        if plan.teardown {
            // A cluster without a base group has no lease to take.
            if plan.is_empty() {
                return Ok(ApplyOutcome {
                    plan,
                    report: Report::default(),
                });
            }
            let lease = self.lease(false).await?;
            let deletes_group = lease.as_ref().is_some_and(|l| {
                plan.actions.iter().any(|a| {
                    matches!(&a.action, Action::DeleteSecurityGroup { id, .. } if id == l.group_id())
                })
            });
            return lease::holding_unless_deleted(lease, deletes_group, self.execute(plan)).await;
        }
        let lease = self.lease(true).await?;
        let made = lease.as_ref().and_then(|l| l.created()).cloned();
        lease::holding(lease, self.execute_with(plan, made)).await
    }

    /// Replaces the nodes `selector` picks (see [`crate::replace`]) under the lease. A
    /// new command runs the preflight before it marks any node: the spec's references
    /// (successors are made from today's spec) and the quota for the successors that
    /// exist next to their old nodes at once (none when delete-first).
    pub async fn replace(
        &self,
        selector: &Selector,
        opts: &ReplaceOptions,
    ) -> Result<ReplaceReport> {
        self.leased(false, crate::replace::run(self, selector, opts))
            .await
    }

    /// Scales `role` to `count` nodes keeping the AZ spread even (see [`crate::scale`])
    /// under the lease. Scaling up runs the preflight first, as [`Cluster::plan`] does:
    /// new nodes that the quota cannot hold are refused before anything is created.
    pub async fn scale(
        &self,
        role: Role,
        count: usize,
        opts: &ReplaceOptions,
    ) -> Result<ScaleReport> {
        self.leased(true, crate::scale::run(self, role, count, opts))
            .await
    }

    /// Nodes by role and AZ with each node's health and why (judged at once, see
    /// [`Cluster::health`]), load balancers and their members' health.
    pub async fn status(&self) -> Result<ClusterStatus> {
        let (desired, observed) = futures::try_join!(self.desired(), self.observe())?;
        let health = self.judge_now(&desired, &observed).await;
        Ok(ClusterStatus::new(&desired, &observed).with_health(&health))
    }

    /// Runs `work` holding the lease: the guard every changing verb goes through. With
    /// `create_base`, the base security group is created first if missing (as the plan
    /// would); without it, a cluster without one runs with no lease (nothing to hold).
    async fn leased<T>(
        &self,
        create_base: bool,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let lease = self.lease(create_base).await?;
        lease::holding(lease, work).await
    }

    /// Takes the operator lease (see [`crate::lease`]). Refuses with [`Error::Blocked`]
    /// before creating anything when the spec cannot be applied on this provider.
    async fn lease(&self, create_base: bool) -> Result<Option<Lease>> {
        let create = if create_base {
            let desired = self.desired().await?;
            if !desired.blockers.is_empty() {
                return Err(Error::Blocked(desired.blockers));
            }
            let base = lease::base_group_name(&self.spec.name);
            desired.groups.iter().find(|g| g.name == base).map(|g| {
                SecurityGroupSpec::new(g.name.clone())
                    .with_description(g.description.clone())
                    // Group references are added by the plan once every group
                    // exists, as for any group the plan creates.
                    .with_rules(g.rules.iter().filter_map(|r| match r {
                        RuleRef::Rule(r) => Some(r.clone()),
                        RuleRef::Group { .. } => None,
                    }))
                    .with_tags(g.tags.clone())
            })
        } else {
            None
        };
        lease::acquire(
            self.retrying.clone(),
            &self.spec.name,
            &self.options.lease,
            create,
            self.options.stop.clone(),
        )
        .await
    }

    /// Runs `plan` with the executor, for a caller that holds the lease.
    pub(crate) async fn execute(&self, plan: Plan) -> Result<ApplyOutcome> {
        self.execute_with(plan, None).await
    }

    /// As [`Cluster::execute`]; `made` is the base group the lease just created, which
    /// the plan's create of it then uses instead of asking the cloud again.
    async fn execute_with(&self, plan: Plan, made: Option<SecurityGroup>) -> Result<ApplyOutcome> {
        if !plan.blockers.is_empty() {
            return Err(Error::Blocked(plan.blockers));
        }
        let defaults = ReplaceOptions::default();
        let report = execute_made(&self.engine(&defaults, self.observer()), &plan, made).await;
        if !report.is_complete() {
            return Err(Error::Incomplete(Box::new(report)));
        }
        Ok(ApplyOutcome { plan, report })
    }
}

impl Cluster {
    /// The executor's view of this cluster: its retrying provider, options and hooks,
    /// with `rolling`'s knobs for the waits of replacement and scaling.
    pub(crate) fn engine<'a>(
        &'a self,
        rolling: &'a ReplaceOptions,
        observer: &'a dyn Observer,
    ) -> Engine<'a> {
        Engine {
            provider: self.retrying.clone(),
            options: &self.options,
            rolling,
            hooks: self.hooks(),
            observer,
        }
    }
}

/// `provider` with `options`' retry layer: applied once, here.
fn retrying(provider: &Arc<dyn Provider>, options: &ExecuteOptions) -> Arc<dyn Provider> {
    Arc::new(Layered::new(provider.clone(), options.retry.clone()))
}
