//! The one error model every provider speaks.
//!
//! Backends classify what their cloud answered into these kinds; everything above them
//! (retry, waiting, the cluster layer) decides on the kind alone. Each variant names the
//! [`Operation`] it came from and, where there is one, the resource it concerns.
//!
//! [`vocabulary`] lists the situations every provider classifies the same way (not found,
//! busy, in use, quota, rate limited, ...) with the kind, retry verdict and
//! `retry_after` each must produce, and checks a provider's table of its cloud's answers
//! against it.

use std::sync::Arc;
use std::time::Duration;

use crate::operation::Operation;

#[cfg(feature = "conformance")]
pub mod replay;
pub mod vocabulary;

pub use vocabulary::{Situation, UNNAMED_FIELD};

/// Result alias used throughout Plinth.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The underlying cause an [`Error`] may carry (see [`Error::with_source`]); shared so
/// that `Error` stays `Clone`.
pub type Source = Arc<dyn std::error::Error + Send + Sync>;

/// Everything a provider call can fail with.
///
/// Messages never carry credentials: backends must not copy request headers or
/// bodies that hold secrets into `message`, nor attach a source whose Display or Debug
/// shows them (strip passwords from URLs first). It is serde so that it can cross a
/// process boundary as itself (provider-local's daemon answers with it); the underlying
/// error of the variants that wrap one ([`Error::source`](std::error::Error::source),
/// set with [`Error::with_source`]) stays in the process, and equality ignores it.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// The resource does not exist (or no longer exists).
    #[error("{operation}: {resource} not found")]
    NotFound {
        /// The failed operation.
        operation: Operation,
        /// What was looked for, e.g. `instance i-123`.
        resource: String,
    },
    /// A resource with this identity already exists and cannot be returned instead.
    #[error("{operation}: {resource} already exists")]
    AlreadyExists {
        /// The failed operation.
        operation: Operation,
        /// The resource that exists.
        resource: String,
    },
    /// The resource is in use or its state forbids the call (an attached volume, a
    /// group still referenced, the same name with a different spec). Not retried.
    #[error("{operation}: {resource} conflict: {message}")]
    Conflict {
        /// The failed operation.
        operation: Operation,
        /// The resource in conflict.
        resource: String,
        /// Why, and what to do about it.
        message: String,
    },
    /// A quota or capacity limit was reached.
    #[error("{operation}: quota exceeded: {message}")]
    QuotaExceeded {
        /// The failed operation.
        operation: Operation,
        /// Which limit.
        message: String,
    },
    /// The cloud asked us to slow down.
    #[error("{operation}: throttled{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Throttled {
        /// The failed operation.
        operation: Operation,
        /// How long the cloud asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// Credentials are missing, wrong or expired.
    #[error("{operation}: unauthorized: {message}")]
    Unauthorized {
        /// The failed operation.
        operation: Operation,
        /// What was wrong (never the credential itself).
        message: String,
        /// The underlying error, when one caused this (kept in-process only: it is not
        /// serialized and equality ignores it).
        #[source]
        #[serde(skip)]
        source: Option<Source>,
    },
    /// Authenticated, but not allowed to do this.
    #[error("{operation}: forbidden: {message}")]
    Forbidden {
        /// The failed operation.
        operation: Operation,
        /// What was refused.
        message: String,
        /// The underlying error, when one caused this (kept in-process only: it is not
        /// serialized and equality ignores it).
        #[source]
        #[serde(skip)]
        source: Option<Source>,
    },
    /// The request itself is wrong; `field` names the input and `message` the fix.
    #[error("{operation}: invalid {field}: {message}")]
    InvalidInput {
        /// The failed operation.
        operation: Operation,
        /// The offending input, e.g. `spec.size_gib`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The provider cannot do this at all (see [`crate::Capabilities`]).
    #[error("{operation}: unsupported: {message}")]
    Unsupported {
        /// The failed operation.
        operation: Operation,
        /// What is missing.
        message: String,
    },
    /// The resource did not reach the wanted state in time.
    #[error("{operation}: {resource} not {wanted} after {waited:?} (last state: {last_state})")]
    Timeout {
        /// The operation that waited.
        operation: Operation,
        /// The resource waited for.
        resource: String,
        /// The state waited for.
        wanted: String,
        /// The last state seen.
        last_state: String,
        /// How long we waited.
        waited: Duration,
    },
    /// A failure that clears by itself (network error, 5xx, a busy resource).
    #[error("{operation}: transient failure: {message}")]
    Transient {
        /// The failed operation.
        operation: Operation,
        /// What happened.
        message: String,
        /// The underlying error, when one caused this (kept in-process only: it is not
        /// serialized and equality ignores it).
        #[source]
        #[serde(skip)]
        source: Option<Source>,
    },
    /// The provider's configuration is missing or wrong (found while building it);
    /// `key` names the setting, e.g. `OpenStack.AuthURL`, and `message` the fix.
    #[error("configuration {key}: {message}")]
    Config {
        /// The setting concerned, as a spec key or environment variable.
        key: String,
        /// What is wrong and how to fix it. Never holds a secret value.
        message: String,
        /// The underlying error, when one caused this (kept in-process only: it is not
        /// serialized and equality ignores it).
        #[source]
        #[serde(skip)]
        source: Option<Source>,
    },
    /// Any other answer of the cloud's API.
    #[error("{operation}: API error {}{code}: {message}", status.map(|s| format!("{s} ")).unwrap_or_default())]
    Api {
        /// The failed operation.
        operation: Operation,
        /// HTTP status, when there was one.
        status: Option<u16>,
        /// The cloud's error code.
        code: String,
        /// The cloud's message.
        message: String,
        /// The underlying error, when one caused this (kept in-process only: it is not
        /// serialized and equality ignores it).
        #[source]
        #[serde(skip)]
        source: Option<Source>,
    },
}

/// The kind of an [`Error`], without its details; handy for matching and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::AlreadyExists`].
    AlreadyExists,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::QuotaExceeded`].
    QuotaExceeded,
    /// See [`Error::Throttled`].
    Throttled,
    /// See [`Error::Unauthorized`].
    Unauthorized,
    /// See [`Error::Forbidden`].
    Forbidden,
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Unsupported`].
    Unsupported,
    /// See [`Error::Timeout`].
    Timeout,
    /// See [`Error::Transient`].
    Transient,
    /// See [`Error::Config`].
    Config,
    /// See [`Error::Api`].
    Api,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            Error::Throttled { .. } => ErrorKind::Throttled,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Transient { .. } => ErrorKind::Transient,
            Error::Config { .. } => ErrorKind::Config,
            Error::Api { .. } => ErrorKind::Api,
        }
    }

    /// The operation the error came from (`None` for [`Error::Config`], which comes
    /// from building a provider).
    pub fn operation(&self) -> Option<Operation> {
        Some(match self {
            Error::NotFound { operation, .. }
            | Error::AlreadyExists { operation, .. }
            | Error::Conflict { operation, .. }
            | Error::QuotaExceeded { operation, .. }
            | Error::Throttled { operation, .. }
            | Error::Unauthorized { operation, .. }
            | Error::Forbidden { operation, .. }
            | Error::InvalidInput { operation, .. }
            | Error::Unsupported { operation, .. }
            | Error::Timeout { operation, .. }
            | Error::Transient { operation, .. }
            | Error::Api { operation, .. } => *operation,
            Error::Config { .. } => return None,
        })
    }

    /// Whether the generic retry policy may repeat the call: throttling, transient
    /// failures and 5xx API answers. `Conflict` is not retryable (see DESIGN.md).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Throttled { .. } | Error::Transient { .. } => true,
            Error::Api {
                status: Some(s), ..
            } => *s >= 500,
            _ => false,
        }
    }

    /// How long the cloud asked us to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(operation: Operation, resource: impl Into<String>) -> Self {
        Error::NotFound {
            operation,
            resource: resource.into(),
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(
        operation: Operation,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::InvalidInput {
            operation,
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Conflict`].
    pub fn conflict(
        operation: Operation,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Conflict {
            operation,
            resource: resource.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Transient`].
    pub fn transient(operation: Operation, message: impl Into<String>) -> Self {
        Error::Transient {
            operation,
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Unauthorized`].
    pub fn unauthorized(operation: Operation, message: impl Into<String>) -> Self {
        Error::Unauthorized {
            operation,
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Forbidden`].
    pub fn forbidden(operation: Operation, message: impl Into<String>) -> Self {
        Error::Forbidden {
            operation,
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Api`].
    pub fn api(
        operation: Operation,
        status: Option<u16>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Api {
            operation,
            status,
            code: code.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error that caused this one, for
    /// [`source()`](std::error::Error::source) and error reports.
    ///
    /// Only the variants that wrap another error keep it (`Unauthorized`, `Forbidden`,
    /// `Transient`, `Config`, `Api`); the others are the cloud's own verdict and return
    /// unchanged. The cause must not show secrets in its Display or Debug. Backends keep
    /// the cause's text in `message` too, because the source does not cross the wire.
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        if let Some(slot) = self.source_slot() {
            *slot = Some(Arc::new(e));
        }
        self
    }

    /// [`Error::with_source`] for a cause that is already shared.
    pub fn with_shared_source(mut self, e: Source) -> Self {
        if let Some(slot) = self.source_slot() {
            *slot = Some(e);
        }
        self
    }

    /// The underlying error, as its own type for `downcast_ref`.
    ///
    /// [`source()`](std::error::Error::source) yields the shared [`Source`] (the `Arc`),
    /// which displays and chains as the cause but downcasts only to the `Arc`; this
    /// yields what it holds.
    pub fn underlying(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Error::Unauthorized { source, .. }
            | Error::Forbidden { source, .. }
            | Error::Transient { source, .. }
            | Error::Config { source, .. }
            | Error::Api { source, .. } => source.as_deref(),
            _ => None,
        }
    }

    fn source_slot(&mut self) -> Option<&mut Option<Source>> {
        match self {
            Error::Unauthorized { source, .. }
            | Error::Forbidden { source, .. }
            | Error::Transient { source, .. }
            | Error::Config { source, .. }
            | Error::Api { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(operation: Operation, message: impl Into<String>) -> Self {
        Error::Unsupported {
            operation,
            message: message.into(),
        }
    }
}

/// Equal when kind and details are equal; the underlying error is ignored, because it
/// is not comparable and does not cross the wire.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (self, other) {
            (
                NotFound {
                    operation: o1,
                    resource: r1,
                },
                NotFound {
                    operation: o2,
                    resource: r2,
                },
            )
            | (
                AlreadyExists {
                    operation: o1,
                    resource: r1,
                },
                AlreadyExists {
                    operation: o2,
                    resource: r2,
                },
            ) => o1 == o2 && r1 == r2,
            (
                Conflict {
                    operation: o1,
                    resource: r1,
                    message: m1,
                },
                Conflict {
                    operation: o2,
                    resource: r2,
                    message: m2,
                },
            ) => o1 == o2 && r1 == r2 && m1 == m2,
            (
                QuotaExceeded {
                    operation: o1,
                    message: m1,
                },
                QuotaExceeded {
                    operation: o2,
                    message: m2,
                },
            )
            | (
                Unauthorized {
                    operation: o1,
                    message: m1,
                    ..
                },
                Unauthorized {
                    operation: o2,
                    message: m2,
                    ..
                },
            )
            | (
                Forbidden {
                    operation: o1,
                    message: m1,
                    ..
                },
                Forbidden {
                    operation: o2,
                    message: m2,
                    ..
                },
            )
            | (
                Unsupported {
                    operation: o1,
                    message: m1,
                },
                Unsupported {
                    operation: o2,
                    message: m2,
                },
            )
            | (
                Transient {
                    operation: o1,
                    message: m1,
                    ..
                },
                Transient {
                    operation: o2,
                    message: m2,
                    ..
                },
            ) => o1 == o2 && m1 == m2,
            (
                Throttled {
                    operation: o1,
                    retry_after: r1,
                },
                Throttled {
                    operation: o2,
                    retry_after: r2,
                },
            ) => o1 == o2 && r1 == r2,
            (
                InvalidInput {
                    operation: o1,
                    field: f1,
                    message: m1,
                },
                InvalidInput {
                    operation: o2,
                    field: f2,
                    message: m2,
                },
            ) => o1 == o2 && f1 == f2 && m1 == m2,
            (
                Timeout {
                    operation: o1,
                    resource: r1,
                    wanted: w1,
                    last_state: l1,
                    waited: d1,
                },
                Timeout {
                    operation: o2,
                    resource: r2,
                    wanted: w2,
                    last_state: l2,
                    waited: d2,
                },
            ) => o1 == o2 && r1 == r2 && w1 == w2 && l1 == l2 && d1 == d2,
            (
                Config {
                    key: k1,
                    message: m1,
                    ..
                },
                Config {
                    key: k2,
                    message: m2,
                    ..
                },
            ) => k1 == k2 && m1 == m2,
            (
                Api {
                    operation: o1,
                    status: s1,
                    code: c1,
                    message: m1,
                    ..
                },
                Api {
                    operation: o2,
                    status: s2,
                    code: c2,
                    message: m2,
                    ..
                },
            ) => o1 == o2 && s1 == s2 && c1 == c2 && m1 == m2,
            _ => false,
        }
    }
}

impl Eq for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        let op = Operation::GetInstance;
        assert!(Error::transient(op, "x").is_retryable());
        assert!(Error::Throttled {
            operation: op,
            retry_after: None
        }
        .is_retryable());
        assert!(Error::api(op, Some(503), "x", "y").is_retryable());
        assert!(!Error::api(op, Some(400), "x", "y").is_retryable());
        assert!(!Error::conflict(op, "volume v", "attached").is_retryable());
        assert!(!Error::not_found(op, "instance i").is_retryable());
    }

    #[test]
    fn display_names_operation_and_field() {
        let e = Error::invalid(
            Operation::CreateVolume,
            "spec.size_gib",
            "must be at least 1",
        );
        assert_eq!(
            e.to_string(),
            "create_volume: invalid spec.size_gib: must be at least 1"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn errors_round_trip_through_json() {
        let errors = [
            Error::conflict(Operation::DeleteVolume, "volume v", "attached"),
            Error::Timeout {
                operation: Operation::CreateInstance,
                resource: "instance i".into(),
                wanted: "running".into(),
                last_state: "building".into(),
                waited: Duration::from_millis(1500),
            },
            Error::Throttled {
                operation: Operation::ListVolumes,
                retry_after: Some(Duration::from_secs(2)),
            },
        ];
        for e in errors {
            let json = serde_json::to_string(&e).unwrap();
            let back: Error = serde_json::from_str(&json).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn source_is_kept_in_process_and_left_out_of_the_wire_and_equality() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer reset");
        let e = Error::transient(Operation::ListVolumes, "connection lost").with_source(io);
        let cause = e.source().map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("peer reset"));
        let io = e
            .underlying()
            .and_then(|u| u.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(|io| io.kind()),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        assert_eq!(
            e.to_string(),
            "list_volumes: transient failure: connection lost",
            "Display is the message only; reports walk source() for the cause"
        );
        assert_eq!(
            e,
            Error::transient(Operation::ListVolumes, "connection lost")
        );

        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("peer reset"), "{json}");
        let back: Error = serde_json::from_str(&json).unwrap();
        assert!(back.source().is_none());
        assert_eq!(back, e);

        let clone = e.clone();
        assert!(clone.source().is_some());
    }

    #[test]
    fn verdicts_without_a_source_slot_ignore_with_source() {
        use std::error::Error as _;
        let io = std::io::Error::other("x");
        let e = Error::not_found(Operation::GetInstance, "instance i").with_source(io);
        assert!(e.source().is_none());
    }
}
