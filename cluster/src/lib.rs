//! # cluster: a multi-AZ, highly available machine topology on any Plinth provider
//!
//! An installer reads a spec, opens the cloud it names, and calls the verbs of
//! [`Cluster`]; the `plinth` CLI does exactly that:
//!
//! ```no_run
//! # async fn f() -> cluster::Result<()> {
//! use cluster::{Cluster, ClusterSpec};
//! let spec = ClusterSpec::load("examples/local.properties".as_ref())?;
//! let cluster = Cluster::open(spec).await?; // or Cluster::new(spec, any_provider)
//! cluster.apply().await?;
//! println!("{}", cluster.status().await?.nodes.len());
//! cluster.destroy().await?;
//! # Ok(()) }
//! ```
//!
//! Ownership lives in tags on the cloud (cluster, role, ordinal, spec hash); there is no
//! local state file, so every verb starts by listing what the cluster tag owns.
//!
//! - [`spec`]: the topology spec, from the seed's properties format
//!   ([`spec::properties`]) or TOML ([`spec::toml`]), validated by [`spec::validate`]
//!   into a [`ClusterSpec`], reporting every problem at once.
//! - [`cloud`]: opens the provider a spec names (cargo features `local`, `openstack`,
//!   `aws`, `vsphere`); the only module that names concrete providers.
//! - [`reconcile`]: [`Cluster`], every verb as a method: `plan`, `apply`, `run`,
//!   `plan_destroy`, `destroy`, `status`, `replace`, `scale`, `health`, `repair`,
//!   `watch`.
//! - [`plan`]: spec -> [`plan::desired`] resources (deterministic names, even AZ spread,
//!   least-privilege groups); observed state -> [`plan::diff`](mod@plan::diff) -> a
//!   [`plan::dag`] of actions.
//! - [`execute`]: the one engine: runs a plan's DAG (apply, destroy, and the moves of
//!   replacement and scaling) with bounded concurrency; [`Observer`] hears progress.
//! - [`status`]: nodes by role and AZ with each node's health, load balancers and
//!   member health.
//! - [`health`]: whether each node serves (cloud, load balancer, hook, probe, each held
//!   for a while); [`repair`](mod@repair): one pass replacing unhealthy nodes behind a
//!   circuit breaker; [`watch`](mod@watch): drift-fix and repair in a loop.
//! - [`replace`](mod@replace): rolling replacement of nodes, crash-safe through tags on
//!   the cloud; [`scale`](mod@scale): scaling a role up and down with an even AZ spread;
//!   [`hooks`]: the installer's part in both; [`slot`]: which instance fills which slot.
//! - [`lease`]: the operator lease every changing verb holds, so two operators acting on
//!   one cluster at once are refused.
//! - [`error`]: the crate's [`Error`].
//!
//! Retry is applied once, by [`Cluster`], around the provider it is given.

pub mod cloud;
pub mod error;
pub mod execute;
pub mod health;
pub mod hooks;
pub mod lease;
pub mod plan;
pub mod preflight;
pub mod reconcile;
pub mod repair;
pub mod replace;
pub mod scale;
pub mod slot;
pub mod spec;
pub mod status;
pub mod watch;

pub use error::{Error, Result};
pub use execute::{ExecuteOptions, Observer, Quiet, Report};
pub use health::{HealthOptions, HealthReport, HealthState, HealthTracker, NodeHealth};
pub use hooks::{Health, HookError, Hooks, NoHooks};
pub use lease::LeaseOptions;
pub use plan::{Desired, Observed, Plan};
pub use reconcile::{ApplyOutcome, Cluster};
pub use repair::{MaxUnhealthy, RepairOptions, RepairReport};
pub use replace::{Probe, ReplaceOptions, ReplaceReport, Selector, Step};
pub use scale::ScaleReport;
pub use spec::{ClusterSpec, ProviderConfig, ProviderKind, Role};
pub use status::ClusterStatus;
pub use watch::{Cancel, WatchOptions, WatchReport};
