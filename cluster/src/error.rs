//! The crate's one error type; provider errors are wrapped, never flattened to text.

use std::path::PathBuf;

use provider_core::ResourceKind;

use crate::execute::Report;
use crate::spec::SpecErrors;

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
    /// An action named a resource that neither existed nor was created before it.
    #[error("no {kind} named {name} exists: run plan again")]
    Unresolved {
        /// Its kind.
        kind: ResourceKind,
        /// Its name.
        name: String,
    },
}
