//! Error mapping: HTTP status, `Retry-After` and the services' fault bodies to
//! [`provider_core::Error`].
//!
//! Fault bodies differ per service; [`fault`] reads all of them:
//! - Nova, Cinder: `{"itemNotFound": {"code": 404, "message": "..."}}` (the key is the code);
//! - Neutron: `{"NeutronError": {"type": "SecurityGroupInUse", "message": "...", "detail": ""}}`;
//! - Octavia (WSME): `{"faultcode": "Client", "faultstring": "...", "debuginfo": null}`;
//! - Keystone: `{"error": {"code": 401, "title": "Unauthorized", "message": "..."}}`.
//!
//! | status | kind |
//! |---|---|
//! | 400 | `InvalidInput` (field `request`, the service's message) |
//! | 401 | `Unauthorized` (after the session's own re-authentication failed) |
//! | 403 | `QuotaExceeded` when the message says quota, else `Forbidden` |
//! | 404 | `NotFound` |
//! | 409 | `Conflict`; callers turn busy answers (Octavia's immutable LB) into `Transient` |
//! | 413, 429 | `Throttled` with `Retry-After` when the body is a rate limit, else `QuotaExceeded` |
//! | 500, 502, 503, 504 | `Transient` (the generic retry repeats it) |
//! | other | `Api { status, code, message }` |
//!
//! Messages carry the service's text and the request path, never headers or bodies of
//! requests (which hold tokens and passwords).

use std::time::Duration;

use http::HeaderMap;
use openstack_sdk::api::ApiError;
use openstack_sdk::{OpenStackError, RestError};
use provider_core::{Error, Operation};
use serde_json::Value;

/// The code and message of a fault body, whatever the service.
pub(crate) fn fault(body: &[u8]) -> (String, String) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return (String::new(), text.chars().take(300).collect());
    };
    fault_value(&v)
}

fn fault_value(v: &Value) -> (String, String) {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(fs) = v.get("faultstring") {
        return (s(v.get("faultcode")), s(Some(fs)));
    }
    if let Some(ne) = v.get("NeutronError") {
        return (s(ne.get("type")), s(ne.get("message")));
    }
    if let Some(m) = v.get("message").and_then(Value::as_str) {
        return (String::new(), m.to_string());
    }
    if let Some(obj) = v.as_object() {
        if let Some((k, inner)) = obj.iter().find(|(_, i)| i.get("message").is_some()) {
            let code = inner
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| k.clone());
            return (code, s(inner.get("message")));
        }
    }
    (String::new(), v.to_string().chars().take(300).collect())
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Classifies an HTTP error answer of `op`.
pub(crate) fn from_response(op: Operation, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let (code, message) = fault(body);
    classify(op, status, code, message, retry_after(headers))
}

fn classify(
    op: Operation,
    status: u16,
    code: String,
    message: String,
    retry_after: Option<Duration>,
) -> Error {
    let lower = message.to_lowercase();
    match status {
        400 => Error::InvalidInput {
            operation: op,
            field: "request".into(),
            message,
        },
        401 => Error::Unauthorized {
            operation: op,
            message,
        },
        403 if lower.contains("quota") => Error::QuotaExceeded {
            operation: op,
            message,
        },
        403 => Error::Forbidden {
            operation: op,
            message,
        },
        404 => Error::NotFound {
            operation: op,
            resource: message,
        },
        409 => Error::Conflict {
            operation: op,
            resource: code,
            message,
        },
        413 | 429 if retry_after.is_some() || status == 429 || lower.contains("rate") => {
            Error::Throttled {
                operation: op,
                retry_after,
            }
        }
        413 => Error::QuotaExceeded {
            operation: op,
            message,
        },
        500 | 502 | 503 | 504 => Error::Transient {
            operation: op,
            message: format!("HTTP {status} {code}: {message}"),
        },
        _ => Error::Api {
            operation: op,
            status: Some(status),
            code,
            message,
        },
    }
}

/// Classifies an error of the sdk (transport, catalog, auth) for `op`.
pub(crate) fn from_api_error(op: Operation, what: &str, e: ApiError<RestError>) -> Error {
    match e {
        ApiError::OpenStack { status, msg, .. } => {
            classify(op, status.as_u16(), String::new(), msg, None)
        }
        ApiError::OpenStackUnrecognized { status, obj, .. } => {
            let (code, message) = fault_value(&obj);
            classify(op, status.as_u16(), code, message, None)
        }
        ApiError::OpenStackService { status, data, .. } => {
            classify(op, status.as_u16(), String::new(), data, None)
        }
        ApiError::Catalog { source } => Error::Unsupported {
            operation: op,
            message: format!("{what}: the service catalog has no such endpoint: {source}"),
        },
        ApiError::MicroversionIncompatible { .. } => Error::Unsupported {
            operation: op,
            message: format!("{what}: {e}"),
        },
        ApiError::Client { source } => match source {
            RestError::AuthError { source } => Error::Unauthorized {
                operation: op,
                message: format!("{what}: {source}"),
            },
            other => Error::Transient {
                operation: op,
                message: format!("{what}: {other}"),
            },
        },
        other => Error::Transient {
            operation: op,
            message: format!("{what}: {other}"),
        },
    }
}

/// Classifies a failure to open the session (authentication, catalog, endpoint).
pub(crate) fn from_connect_error(e: OpenStackError) -> Error {
    let op = Operation::ListAvailabilityZones;
    match e {
        OpenStackError::Api { source } => match from_api_error(op, "authenticate", source) {
            Error::NotFound {
                operation,
                resource,
            } => Error::Unauthorized {
                operation,
                message: format!("authentication failed: {resource}"),
            },
            other => other,
        },
        OpenStackError::AuthError { source } => Error::Unauthorized {
            operation: op,
            message: format!("authentication failed: {source}"),
        },
        OpenStackError::Communication { source } => Error::Transient {
            operation: op,
            message: format!("cannot reach Keystone: {source}"),
        },
        other => {
            let text = other.to_string();
            if text.contains("401") || text.to_lowercase().contains("unauthorized") {
                Error::Unauthorized {
                    operation: op,
                    message: format!("authentication failed: {text}"),
                }
            } else {
                Error::InvalidInput {
                    operation: op,
                    field: "config".into(),
                    message: format!("cannot open the OpenStack session: {text}"),
                }
            }
        }
    }
}

/// An answer this crate could not use (a bug or an incompatible service): not retried.
pub(crate) fn unexpected(op: Operation, what: impl Into<String>) -> Error {
    Error::Api {
        operation: op,
        status: None,
        code: "unexpected-answer".into(),
        message: what.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_core::ErrorKind;

    fn kind(status: u16, body: &str) -> Error {
        from_response(
            Operation::GetInstance,
            status,
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn fault_bodies_of_every_service() {
        assert_eq!(
            fault(
                br#"{"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}"#
            ),
            (
                "itemNotFound".into(),
                "Instance x could not be found.".into()
            )
        );
        assert_eq!(
            fault(br#"{"NeutronError": {"type": "SecurityGroupInUse", "message": "in use", "detail": ""}}"#),
            ("SecurityGroupInUse".into(), "in use".into())
        );
        assert_eq!(
            fault(br#"{"faultcode": "Client", "faultstring": "Load Balancer x is immutable", "debuginfo": null}"#),
            ("Client".into(), "Load Balancer x is immutable".into())
        );
        assert_eq!(
            fault(br#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#).0,
            "Unauthorized"
        );
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(kind(404, "{}").kind(), ErrorKind::NotFound);
        assert_eq!(
            kind(400, r#"{"badRequest": {"message": "Invalid flavorRef"}}"#).kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(
                403,
                r#"{"forbidden": {"message": "Quota exceeded for instances"}}"#
            )
            .kind(),
            ErrorKind::QuotaExceeded
        );
        assert_eq!(
            kind(
                403,
                r#"{"forbidden": {"message": "Policy does not allow"}}"#
            )
            .kind(),
            ErrorKind::Forbidden
        );
        assert_eq!(kind(409, "{}").kind(), ErrorKind::Conflict);
        assert_eq!(kind(503, "oops").kind(), ErrorKind::Transient);
        assert_eq!(kind(429, "{}").kind(), ErrorKind::Throttled);
        let mut h = HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("7"),
        );
        let e = from_response(Operation::GetInstance, 413, &h, b"{}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            kind(413, r#"{"overLimit": {"message": "Quota exceeded"}}"#).kind(),
            ErrorKind::QuotaExceeded
        );
    }
}
