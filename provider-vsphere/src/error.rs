//! Classifying vim25 faults and transport failures into [`provider_core::Error`].
//!
//! Classified to the situations of [`provider_core::error::vocabulary`]:
//!
//! | vim25 fault | kind |
//! |---|---|
//! | `InvalidLogin`, `NotAuthenticated` (after one re-login) | `Unauthorized` |
//! | `NoPermission` | `Forbidden` |
//! | `ManagedObjectNotFound`, `NotFound`, `FileNotFound` | `NotFound` |
//! | `DuplicateName`, `FileAlreadyExists`, `AlreadyExists` | `AlreadyExists` |
//! | `InvalidArgument`, `InvalidRequest`, `InvalidName`, `InvalidDeviceSpec` | `InvalidInput`, naming the fault's `invalidProperty`, else `request` |
//! | `ResourceInUse`, `FileLocked` (in use) | `Conflict` |
//! | `InvalidPowerState`, `VmConfigFault` (a state that does not clear by itself) | `Conflict` |
//! | `TaskInProgress`, `InvalidState` (busy, clears by itself) | `Transient` |
//! | `SystemError`, `HostCommunication`, `RequestCanceled` | `Transient` |
//! | `InsufficientResourcesFault` and `Insufficient*` | `QuotaExceeded` |
//! | anything else | `Api { code: <fault type> }` |
//!
//! An HTTP answer without a SOAP fault is classified by its status: 404 `NotFound`,
//! 409 `Conflict`, 429 `Throttled` (with `Retry-After`), 401 `Unauthorized`, 403
//! `Forbidden`, 408 and 5xx `Transient`, others `Api`. Network errors and request
//! timeouts are `Transient`. Messages carry the fault's text, never a request body (the
//! Login body holds the password).

use std::time::Duration;

use provider_core::error::vocabulary::parse_retry_after;
use provider_core::error::UNNAMED_FIELD;
use provider_core::{Error, Operation};

use crate::soap::Fault;

/// The error for `fault`, raised by `op` on `resource` (e.g. `instance vm-42`).
pub(crate) fn fault_error(op: Operation, resource: &str, fault: &Fault) -> Error {
    let message = if fault.message.is_empty() {
        fault.kind.clone()
    } else {
        fault.message.clone()
    };
    match fault.kind.as_str() {
        "InvalidLogin" | "NotAuthenticated" => Error::unauthorized(
            op,
            format!("vCenter refused the credentials ({})", fault.kind),
        ),
        "NoPermission" => Error::forbidden(op, message),
        "ManagedObjectNotFound" | "NotFound" | "FileNotFound" => {
            Error::not_found(op, resource.to_string())
        }
        "DuplicateName" | "FileAlreadyExists" | "AlreadyExists" => Error::AlreadyExists {
            operation: op,
            resource: resource.to_string(),
        },
        "InvalidArgument" | "InvalidRequest" | "InvalidName" | "InvalidDeviceSpec" => {
            let field = fault
                .detail
                .as_ref()
                .and_then(|d| d.child_text("invalidProperty"))
                .unwrap_or(UNNAMED_FIELD)
                .to_string();
            Error::invalid(
                op,
                field,
                format!("vCenter answered {}: {message}", fault.kind),
            )
        }
        "ResourceInUse" | "FileLocked" | "InvalidPowerState" | "VmConfigFault" => {
            Error::conflict(op, resource.to_string(), message)
        }
        "TaskInProgress" | "InvalidState" | "HostCommunication" | "RequestCanceled"
        | "SystemError" => Error::transient(op, format!("{}: {message}", fault.kind)),
        k if k.starts_with("Insufficient") => Error::QuotaExceeded {
            operation: op,
            message,
        },
        _ => Error::api(op, None, fault.kind.clone(), message),
    }
}

/// The error for a failed HTTP exchange (no SOAP fault to read), keeping reqwest's
/// error as the source.
pub(crate) fn http_error(op: Operation, mut err: reqwest::Error) -> Error {
    // reqwest's Display never includes the request body; drop the URL's query anyway.
    let err_no_url = err.without_url_ref();
    // The source shows its URL in Display and Debug. reqwest moves a URL's userinfo
    // (`https://user:secret@vcenter/sdk`, as GOVC_URL allows) into a header today; clearing
    // the password here keeps it out of reports even if that changes.
    if let Some(u) = err.url_mut() {
        let _ = u.set_password(None);
    }
    Error::transient(op, format!("vCenter request failed: {err_no_url}")).with_source(err)
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s.replace(u.as_str(), "vCenter");
        }
        s
    }
}

/// The `Retry-After` of an answer, when it has one.
pub(crate) fn retry_after_of(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// The error for an HTTP status without a SOAP fault; `what` names the request.
pub(crate) fn status_error(
    op: Operation,
    status: u16,
    retry_after: Option<Duration>,
    what: &str,
) -> Error {
    match status {
        401 => Error::unauthorized(op, format!("{what}: HTTP 401")),
        403 => Error::forbidden(op, format!("{what}: HTTP 403")),
        404 => Error::not_found(op, what),
        409 => Error::conflict(op, what, "HTTP 409"),
        429 => Error::Throttled {
            operation: op,
            retry_after,
        },
        s if s == 408 || s >= 500 => Error::transient(op, format!("{what}: HTTP {s}")),
        s => Error::api(op, Some(s), format!("HTTP {s}"), what),
    }
}

#[cfg(test)]
mod vocabulary;

#[cfg(test)]
mod tests {
    use super::*;
    use provider_core::ErrorKind;

    fn f(kind: &str) -> Fault {
        Fault {
            kind: kind.into(),
            message: "m".into(),
            detail: None,
        }
    }

    #[test]
    fn faults_map_to_kinds() {
        let op = Operation::CreateInstance;
        let cases = [
            ("InvalidLogin", ErrorKind::Unauthorized),
            ("NoPermission", ErrorKind::Forbidden),
            ("ManagedObjectNotFound", ErrorKind::NotFound),
            ("FileNotFound", ErrorKind::NotFound),
            ("DuplicateName", ErrorKind::AlreadyExists),
            ("InvalidArgument", ErrorKind::InvalidInput),
            ("InvalidPowerState", ErrorKind::Conflict),
            ("ResourceInUse", ErrorKind::Conflict),
            ("InvalidState", ErrorKind::Transient),
            ("TaskInProgress", ErrorKind::Transient),
            ("InsufficientMemoryResourcesFault", ErrorKind::QuotaExceeded),
            ("SomethingElse", ErrorKind::Api),
        ];
        for (k, want) in cases {
            assert_eq!(fault_error(op, "instance x", &f(k)).kind(), want, "{k}");
        }
        assert!(fault_error(op, "x", &f("TaskInProgress")).is_retryable());
        assert_eq!(
            status_error(op, 503, None, "x").kind(),
            ErrorKind::Transient
        );
    }
}
