//! Error mapping: HTTP status, `Retry-After` and the services' fault bodies to
//! [`provider_core::Error`].
//!
//! Fault bodies differ per service; [`fault`] reads all of them:
//! - Nova, Cinder: `{"itemNotFound": {"code": 404, "message": "..."}}` (the key is the code);
//! - Neutron: `{"NeutronError": {"type": "SecurityGroupInUse", "message": "...", "detail": ""}}`;
//! - Octavia (WSME): `{"faultcode": "Client", "faultstring": "...", "debuginfo": null}`;
//! - Keystone: `{"error": {"code": 401, "title": "Unauthorized", "message": "..."}}`.
//!
//! Classified by status, then by the fault's code and message, to the situations of
//! [`provider_core::error::vocabulary`]:
//!
//! | status | kind |
//! |---|---|
//! | 400 | `InvalidInput`, naming the field when the message does ("Invalid input for field/attribute X", Neutron's "Invalid input for X"), else `request` |
//! | 401 | `Unauthorized` (after the session's own re-authentication failed) |
//! | 403 | `QuotaExceeded` when the message says quota (Nova), else `Forbidden` |
//! | 404 | `NotFound` |
//! | 408, 504 | `Transient` (no answer in time) |
//! | 409 | `QuotaExceeded` for Neutron's `OverQuota`; `AlreadyExists` for a Neutron `*Exists` type (`SecurityGroupRuleExists`); `Transient` when busy (Octavia's `PENDING_*` / immutable, Nova's `task_state`); else `Conflict` (in use) |
//! | 413 | `QuotaExceeded` when the message says quota (Cinder's `overLimit`); else `Throttled` with `Retry-After` |
//! | 429 | `Throttled` with `Retry-After` |
//! | 500, 502, 503 | `Transient` (the generic retry repeats it) |
//! | other | `Api { status, code, message }` |
//!
//! The sdk's own errors (authentication, discovery) carry no headers, so `Retry-After`
//! is lost there; every call of this crate goes through [`from_response`], which keeps it.
//!
//! Messages carry the service's text and the request path, never headers or bodies of
//! requests (which hold tokens and passwords). An error built from an sdk or transport
//! error keeps it as its [`source`](std::error::Error::source).

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use openstack_sdk::api::ApiError;
use openstack_sdk::{OpenStackError, RestError};
use provider_core::error::vocabulary::parse_retry_after;
use provider_core::error::{Source, UNNAMED_FIELD};
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
        .and_then(parse_retry_after)
}

/// Classifies an HTTP error answer of `op`.
pub(crate) fn from_response(op: Operation, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let (code, message) = fault(body);
    classify(op, status, code, message, retry_after(headers))
}

/// The field an OpenStack validation message names: Nova, Cinder and Octavia say
/// "Invalid input for field/attribute X.", Neutron "Invalid input for X. Reason: ...".
fn named_field(message: &str) -> Option<String> {
    let rest = message.split("Invalid input for ").nth(1)?;
    let rest = rest.strip_prefix("field/attribute ").unwrap_or(rest);
    let field: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'))
        .collect();
    let field = field.trim_end_matches('.');
    // Neutron's "Invalid input for operation: ..." names no field.
    (!field.is_empty() && field != "operation").then(|| field.to_string())
}

/// Whether a 409 says the resource is busy with a change that clears by itself: Octavia's
/// `PENDING_*` ("Invalid state PENDING_UPDATE of loadbalancer resource X", "... is
/// immutable and cannot be updated") and Nova's "Cannot 'x' instance Y while it is in
/// task_state Z". Other 409s are in use or a state that does not clear.
fn is_busy(lower: &str) -> bool {
    lower.contains("pending_") || lower.contains("immutable") || lower.contains("task_state")
}

fn classify(
    op: Operation,
    status: u16,
    code: String,
    message: String,
    retry_after: Option<Duration>,
) -> Error {
    let lower = message.to_lowercase();
    let says_quota = code == "OverQuota" || lower.contains("quota");
    match status {
        400 => Error::InvalidInput {
            operation: op,
            field: named_field(&message).unwrap_or_else(|| UNNAMED_FIELD.to_string()),
            message,
        },
        401 => Error::unauthorized(op, message),
        403 | 409 | 413 if says_quota => Error::QuotaExceeded {
            operation: op,
            message,
        },
        403 => Error::forbidden(op, message),
        404 => Error::NotFound {
            operation: op,
            resource: message,
        },
        // Neutron: SecurityGroupRuleExists, and the other `*Exists` types of a duplicate.
        409 if code.ends_with("Exists") => Error::AlreadyExists {
            operation: op,
            resource: message,
        },
        409 if is_busy(&lower) => Error::transient(op, format!("busy: {message}")),
        409 => Error::Conflict {
            operation: op,
            resource: code,
            message,
        },
        413 | 429 => Error::Throttled {
            operation: op,
            retry_after,
        },
        408 | 500 | 502 | 503 | 504 => {
            Error::transient(op, format!("HTTP {status} {code}: {message}"))
        }
        _ => Error::api(op, Some(status), code, message),
    }
}

/// Classifies an error of the sdk (transport, catalog, auth) for `op`, keeping it as
/// the source.
pub(crate) fn from_api_error(op: Operation, what: &str, e: ApiError<RestError>) -> Error {
    classify_api(op, what, &e).with_shared_source(safe_source(e))
}

fn classify_api(op: Operation, what: &str, e: &ApiError<RestError>) -> Error {
    match e {
        ApiError::OpenStack { status, msg, .. } => {
            classify(op, status.as_u16(), String::new(), msg.clone(), None)
        }
        ApiError::OpenStackUnrecognized { status, obj, .. } => {
            let (code, message) = fault_value(obj);
            classify(op, status.as_u16(), code, message, None)
        }
        ApiError::OpenStackService { status, data, .. } => {
            classify(op, status.as_u16(), String::new(), data.clone(), None)
        }
        ApiError::Catalog { source } => Error::unsupported(
            op,
            format!(
                "{what}: the service catalog has no such endpoint: {}",
                shown(source)
            ),
        ),
        ApiError::MicroversionIncompatible { .. } => {
            Error::unsupported(op, format!("{what}: {}", shown(e)))
        }
        ApiError::Client {
            source: RestError::AuthError { source },
        } => Error::unauthorized(op, format!("{what}: {}", shown(source))),
        ApiError::Client { source } => Error::transient(op, format!("{what}: {}", shown(source))),
        other => Error::transient(op, format!("{what}: {}", shown(other))),
    }
}

/// Classifies a failure to open the session (authentication, catalog, endpoint),
/// keeping it as the source.
pub(crate) fn from_connect_error(e: OpenStackError) -> Error {
    let op = Operation::ListAvailabilityZones;
    let classified = match &e {
        OpenStackError::Api { source } => match classify_api(op, "authenticate", source) {
            Error::NotFound {
                operation,
                resource,
            } => Error::unauthorized(operation, format!("authentication failed: {resource}")),
            other => other,
        },
        OpenStackError::AuthError { source } => {
            Error::unauthorized(op, format!("authentication failed: {}", shown(source)))
        }
        OpenStackError::Communication { source } => {
            Error::transient(op, format!("cannot reach Keystone: {}", shown(source)))
        }
        other => {
            let text = shown(other);
            if text.contains("401") || text.to_lowercase().contains("unauthorized") {
                Error::unauthorized(op, format!("authentication failed: {text}"))
            } else {
                // Opening the session starts at the auth URL (discovery, catalog): a
                // failure here is the configuration's, reported as such with its cause.
                Error::config(
                    "OpenStack.AuthURL",
                    format!("cannot open the OpenStack session: {text}"),
                )
            }
        }
    };
    classified.with_shared_source(safe_source(e))
}

/// [`from_connect_error`], except that a failed version discovery of Keystone is told
/// apart by trying to connect to `auth_url`: the sdk reports an unreachable Keystone and
/// a wrong URL alike ("Service is not working."), but the first clears by itself
/// (`Transient`) and the second is the configuration's (`Config`).
pub(crate) async fn from_connect_failure(e: OpenStackError, auth_url: Option<&str>) -> Error {
    if let (OpenStackError::Discovery { .. }, Some(url)) = (&e, auth_url) {
        if let Some(addr) = authority(url) {
            let connect = tokio::net::TcpStream::connect(addr.as_str());
            let why = match tokio::time::timeout(CONNECT_PROBE_TIMEOUT, connect).await {
                Ok(Ok(_)) => None,
                Ok(Err(io)) => Some(io.to_string()),
                Err(_) => Some(format!("no connection within {CONNECT_PROBE_TIMEOUT:?}")),
            };
            if let Some(why) = why {
                return Error::transient(
                    Operation::ListAvailabilityZones,
                    format!("cannot reach Keystone at {addr}: {why}"),
                )
                .with_shared_source(safe_source(e));
            }
        }
    }
    from_connect_error(e)
}

/// How long [`from_connect_failure`] waits for a connection to Keystone.
const CONNECT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `host:port` of a URL (the scheme's default port when it names none), without any
/// user info.
fn authority(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let auth = rest.split(['/', '?', '#']).next()?;
    let host_port = auth.rsplit('@').next()?;
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.rfind(']') {
        Some(i) => host_port[i..].contains(':'),
        None => host_port.contains(':'),
    };
    if has_port {
        return Some(host_port.to_string());
    }
    let port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    Some(format!("{host_port}:{port}"))
}

/// The text of an sdk error, with any URL password masked: the sdk prints the URLs it
/// used, and `OS_AUTH_URL` may carry `user:password@`.
fn shown(e: &dyn std::fmt::Display) -> String {
    redact_url_passwords(&e.to_string())
}

/// `e` as an error source. When its Display or Debug, or a cause's, shows a URL
/// password, the source is a copy of those texts with the password masked instead (it
/// no longer downcasts to the sdk's type, but nothing secret reaches a report).
fn safe_source(e: impl std::error::Error + Send + Sync + 'static) -> Source {
    let mut texts = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        texts.push((c.to_string(), format!("{c:?}")));
        cause = c.source();
    }
    let leaks = texts
        .iter()
        .any(|(d, g)| redact_url_passwords(d) != *d || redact_url_passwords(g) != *g);
    if !leaks {
        return Arc::new(e);
    }
    let mut chain: Option<Redacted> = None;
    for (display, debug) in texts.into_iter().rev() {
        chain = Some(Redacted {
            display: redact_url_passwords(&display),
            debug: redact_url_passwords(&debug),
            source: chain.map(Box::new),
        });
    }
    match chain {
        Some(r) => Arc::new(r),
        None => Arc::new(e),
    }
}

/// A cause whose texts were copied with URL passwords masked (see [`safe_source`]).
struct Redacted {
    display: String,
    debug: String,
    source: Option<Box<Redacted>>,
}

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.debug)
    }
}

impl std::error::Error for Redacted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|r| r as &(dyn std::error::Error + 'static))
    }
}

/// Masks the password of every `scheme://user:password@host` in `text`.
fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the path, query, fragment or anything that cannot be in it.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '`' | '"' | '\'' | ')' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// An answer this crate could not use (a bug or an incompatible service): not retried.
pub(crate) fn unexpected(op: Operation, what: impl Into<String>) -> Error {
    Error::api(op, None, "unexpected-answer", what)
}

#[cfg(test)]
mod vocabulary;

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

    /// Every text a report may show: Display and Debug of the error and of each cause.
    fn everything_shown(e: &Error) -> String {
        use std::error::Error as _;
        let mut out = format!("{e}\n{e:?}\n");
        let mut cause = e.source();
        while let Some(c) = cause {
            out.push_str(&format!("{c}\n{c:?}\n"));
            cause = c.source();
        }
        out
    }

    #[tokio::test]
    async fn an_unreachable_keystone_keeps_the_sdk_error_without_the_password() {
        use std::error::Error as _;
        // Nothing listens on port 1; the password also sits in the auth URL.
        let e = crate::OpenStackBuilder::new()
            .with_auth_url("http://admin:s3cret-pw@127.0.0.1:1/v3")
            .with_username("admin")
            .with_password("s3cret-pw".to_string().into())
            .with_user_domain_name("Default")
            .with_project_name("demo")
            .with_project_domain_name("Default")
            .build()
            .await
            .expect_err("nothing listens on port 1");
        assert!(e.source().is_some(), "{e:?}");
        let shown = everything_shown(&e);
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }

    #[tokio::test]
    async fn an_unreadable_ca_file_is_a_config_error_with_its_io_cause() {
        let e = crate::OpenStackBuilder::new()
            .with_auth_url("http://127.0.0.1:1/v3")
            .with_username("admin")
            .with_password("s3cret-pw".to_string().into())
            .with_ca_cert_file("/nonexistent/plinth-ca.pem")
            .build()
            .await
            .expect_err("the CA file does not exist");
        assert_eq!(e.kind(), ErrorKind::Config, "{e:?}");
        assert!(e.to_string().contains("OpenStack.CACertFile"), "{e}");
        assert!(
            e.underlying()
                .and_then(|u| u.downcast_ref::<std::io::Error>())
                .is_some(),
            "{e:?}"
        );
        assert!(!everything_shown(&e).contains("s3cret-pw"));
    }

    #[tokio::test]
    async fn a_ca_file_without_a_certificate_is_a_config_error_naming_the_key() {
        let dir = std::env::temp_dir().join(format!("plinth-ca-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("not-a-bundle.pem");
        std::fs::write(&path, "this is not PEM\n").expect("temp file");
        let e = crate::OpenStackBuilder::new()
            .with_auth_url("http://127.0.0.1:1/v3")
            .with_username("admin")
            .with_password("s3cret-pw".to_string().into())
            .with_ca_cert_file(&path)
            .build()
            .await
            .expect_err("the CA file holds no certificate");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(e.kind(), ErrorKind::Config, "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.contains("OpenStack.CACertFile") && shown.contains("no PEM certificate"),
            "{shown}"
        );
    }

    #[test]
    fn authority_of_auth_urls() {
        assert_eq!(authority("http://k:5000/v3").as_deref(), Some("k:5000"));
        assert_eq!(authority("https://u:pw@k/v3").as_deref(), Some("k:443"));
        assert_eq!(authority("http://[::1]/v3").as_deref(), Some("[::1]:80"));
        assert_eq!(
            authority("http://[::1]:5000").as_deref(),
            Some("[::1]:5000")
        );
        assert_eq!(authority("k:5000"), None);
    }

    #[test]
    fn url_passwords_are_masked_wherever_they_appear() {
        assert_eq!(
            redact_url_passwords("Url: http://admin:pw@127.0.0.1:1/v3\n\turi: `https://u:p@h`"),
            "Url: http://admin:***@127.0.0.1:1/v3\n\turi: `https://u:***@h`"
        );
        let plain = "GET https://keystone:5000/v3?x=y@z failed";
        assert_eq!(redact_url_passwords(plain), plain);
    }
}
