//! The crate's one error type; provider errors are wrapped, never flattened to text.

use std::path::PathBuf;

use provider_core::ResourceKind;

use crate::execute::Report;
use crate::spec::{ProviderKind, SpecErrors};

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the cluster layer can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spec file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The spec is invalid; every problem is listed.
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    /// The provider the spec names could not be opened: a setting is missing or wrong
    /// (the source names the key), or the cloud refused the credentials.
    #[error("cannot open provider {provider} for {spec}: {source}")]
    Open {
        /// The spec's provider.
        provider: ProviderKind,
        /// The spec file.
        spec: String,
        /// Why.
        #[source]
        source: Box<provider_core::Error>,
    },
    /// A provider call failed (after retries, for retryable errors).
    #[error(transparent)]
    Provider(#[from] provider_core::Error),
    /// The spec and the provider disagree (e.g. an AZ the provider does not have).
    #[error("{key}: {message}")]
    Plan {
        /// The spec key concerned.
        key: String,
        /// What is wrong and the fix.
        message: String,
    },
    /// The cloud does not have what the spec names, or the plan does not fit its quota:
    /// every problem, each naming the spec key and the fix ([`crate::preflight`]).
    /// `plan` and `apply` refuse with it before anything is created.
    #[error(transparent)]
    Preflight(#[from] crate::preflight::Problems),
    /// `apply` refused before creating anything.
    #[error("cannot apply: {}", .0.join("; "))]
    Blocked(Vec<String>),
    /// A run stopped before finishing the plan.
    #[error("{0}")]
    Incomplete(Box<Report>),
    /// A rolling replacement or scaling step stopped (the old node keeps serving unless
    /// the message says otherwise); rerunning the same command resumes it.
    #[error("{node}: {message}")]
    Rolling {
        /// The node concerned (the old one, for a replacement).
        node: String,
        /// What happened and why.
        message: String,
    },
    /// A node did not pass a step of replacement or scaling: it never ran, failed its
    /// probe or health hook, its load balancer never saw it healthy, or a hook refused.
    /// A replacement rolls back on it (the old node keeps serving).
    #[error("{node}: {message}")]
    NotReady {
        /// The node that was checked.
        node: String,
        /// Why it is not ready.
        message: String,
    },
    /// Another operator holds the cluster's lease (see [`crate::lease`]).
    #[error("cluster {cluster} is locked by {holder} until {expires}: {message}")]
    Locked {
        /// The cluster.
        cluster: String,
        /// Who holds the lease, and their process id.
        holder: String,
        /// When the lease expires (RFC 3339, UTC) unless renewed.
        expires: String,
        /// What happened and how to proceed.
        message: String,
    },
    /// The lease could not be taken, kept or released (see [`crate::lease`]).
    #[error("lease on cluster {cluster}: {message}")]
    Lease {
        /// The cluster.
        cluster: String,
        /// What happened and how to proceed.
        message: String,
    },
    /// A rolling replacement or scaling run was stopped (e.g. by Ctrl-C) after finishing
    /// the actions in flight; rerunning the same command finishes the job.
    #[error("stopped: {0}; run the same command again to finish the job")]
    Stopped(String),
    /// An action named a resource that neither existed nor was created before it.
    #[error("no {kind} named {name} exists: run plan again")]
    Unresolved {
        /// Its kind.
        kind: ResourceKind,
        /// Its name.
        name: String,
    },
}
