//! # cluster: a multi-AZ, highly available machine topology on any Plinth provider
//!
//! The library never names a concrete provider: it drives an `Arc<dyn Provider>`.
//! Ownership lives in tags on the cloud (cluster, role, ordinal, spec hash); there is no
//! local state file, so every command starts by listing what the cluster tag owns.
//!
//! - [`spec`]: the topology spec, from the seed's properties format
//!   ([`spec::properties`]) or TOML ([`spec::toml`]), validated by [`spec::validate`]
//!   into a [`ClusterSpec`], reporting every problem at once.
//! - [`plan`]: spec -> [`plan::desired`] resources (deterministic names, even AZ spread,
//!   least-privilege groups); observed state -> [`plan::diff`](mod@plan::diff) -> a [`plan::dag`] of
//!   actions.
//! - [`execute`]: runs a plan's DAG with bounded concurrency and retries.
//! - [`reconcile`]: [`Cluster`], tying them together: `plan`, `apply`, `status`.
//! - [`destroy`]: removes everything the cluster tag owns, in reverse dependency order.
//! - [`status`]: nodes by role and AZ, load balancers and member health.
//! - [`replace`](mod@replace): rolling replacement of nodes, crash-safe through tags on the cloud;
//!   [`scale`](mod@scale): scaling a role up and down with an even AZ spread; [`hooks`]: the
//!   installer's part in both; [`slot`]: which instance fills which slot.
//! - [`lease`]: the operator lease every mutating command holds, so two operators
//!   acting on one cluster at once are refused.
//! - [`error`]: the crate's [`Error`].
//!
//! The `plinth` CLI (`src/bin/plinth.rs`) maps a spec to a concrete provider through
//! cargo features and drives this library.

pub mod destroy;
pub mod error;
pub mod execute;
pub mod hooks;
pub mod lease;
pub mod plan;
pub mod reconcile;
pub mod replace;
pub mod scale;
pub mod slot;
pub mod spec;
pub mod status;

pub use error::{Error, Result};
pub use execute::{ExecuteOptions, Observer, Report};
pub use hooks::{Health, HookError, Hooks, NoHooks};
pub use lease::LeaseOptions;
pub use plan::{Desired, Observed, Plan};
pub use reconcile::{ApplyOutcome, Cluster};
pub use replace::{replace, Probe, ReplaceOptions, ReplaceReport, Selector};
pub use scale::{scale, ScaleReport};
pub use spec::{ClusterSpec, ProviderKind, ProviderSettings, Role};
pub use status::ClusterStatus;
