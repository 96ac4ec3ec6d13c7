//! Classification of AWS answers into [`provider_core::Error`] kinds, by error code.
//!
//! Classified to the situations of [`provider_core::error::vocabulary`], first by what
//! the answer is, then by its code:
//!
//! | answer | kind |
//! |---|---|
//! | no answer (connection failure, request timeout) | `Transient` |
//! | HTTP 429; `RequestLimitExceeded`, `Throttling`, `ThrottlingException`, `TooManyRequestsException`, `RequestThrottled`, `SlowDown`, ... | `Throttled`, with `Retry-After` when sent |
//! | `*.NotFound`, `*.Malformed`, `LoadBalancerNotFound`, `TargetGroupNotFound`, `ListenerNotFound` | `NotFound` |
//! | `VolumeInUse`, `DependencyViolation`, `ResourceInUse`, `*.InUse` | `Conflict` |
//! | `IncorrectState`, `IncorrectInstanceState`, `InvalidState` (busy, clears by itself) | `Transient` |
//! | `InsufficientInstanceCapacity`, `*LimitExceeded`, `TooMany*` | `QuotaExceeded` |
//! | `AuthFailure`, `InvalidClientTokenId`, `SignatureDoesNotMatch`, `ExpiredToken`, `UnrecognizedClientException` | `Unauthorized` |
//! | `UnauthorizedOperation`, `AccessDenied`, `AccessDeniedException`, `OptInRequired` | `Forbidden` |
//! | `InvalidParameterValue`, `InvalidParameter`, `InvalidParameterCombination`, `MissingParameter`, `ValidationError`, `InvalidConfigurationRequest`, `InvalidTarget` | `InvalidInput`, naming the parameter the message names, else `request` |
//! | `Duplicate*`, `*.Duplicate` | `AlreadyExists` |
//! | `InternalError`, `InternalFailure`, `ServiceUnavailable`, `Unavailable`, `RequestTimeout`, any other 5xx | `Transient` |
//! | anything else | `Api { status, code, message }` |
//!
//! Operations refine this table where the meaning depends on the call: an unknown AMI,
//! subnet or key pair in `RunInstances` is the caller's input (`InvalidInput` naming the
//! field), not a missing resource; see [`AwsError::with_input`].

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use provider_core::error::vocabulary::parse_retry_after;
use provider_core::error::{Source, UNNAMED_FIELD};
use provider_core::{Error, Operation};

/// An AWS failure, reduced to what classification needs: the error code, message and
/// HTTP status, plus the SDK's error itself, which becomes the classified error's
/// [`source`](std::error::Error::source). It never holds request headers or
/// credentials (the SDK's errors hold the answer, not the signed request).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// The AWS error code (e.g. `InvalidInstanceID.NotFound`), or a name for failures
    /// without one (`DispatchFailure`, `Timeout`, `Unhandled`).
    pub code: String,
    /// The AWS message.
    pub message: String,
    /// HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Whether the request never got an answer (network failure or timeout).
    pub no_answer: bool,
    /// The answer's `Retry-After`, when it had one.
    pub retry_after: Option<Duration>,
    /// The SDK's error, when this was reduced from one; equality ignores it.
    #[source]
    pub source: Option<Source>,
}

/// Equal when code, message, status, `no_answer` and `retry_after` are: the SDK error is not comparable.
impl PartialEq for AwsError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.message == other.message
            && self.status == other.status
            && self.no_answer == other.no_answer
            && self.retry_after == other.retry_after
    }
}

impl Eq for AwsError {}

impl AwsError {
    /// Reduces an SDK error of any EC2 or ELBv2 operation.
    pub fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut reduced = Self::reduce(&err);
        reduced.source = Some(Arc::new(err));
        reduced
    }

    fn reduce<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_string);
        let message = err.message().map(str::to_string);
        match err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsError {
                code: code.unwrap_or_else(|| {
                    if matches!(err, SdkError::TimeoutError(_)) {
                        "Timeout".into()
                    } else {
                        "DispatchFailure".into()
                    }
                }),
                message: message.unwrap_or_else(|| describe_chain(err)),
                status: None,
                no_answer: true,
                retry_after: None,
                source: None,
            },
            SdkError::ServiceError(se) => AwsError {
                code: code.unwrap_or_else(|| "Unhandled".into()),
                message: message.unwrap_or_else(|| describe_chain(se.err())),
                status: Some(se.raw().status().as_u16()),
                no_answer: false,
                retry_after: header_retry_after(se.raw()),
                source: None,
            },
            SdkError::ResponseError(re) => AwsError {
                code: code.unwrap_or_else(|| "ResponseError".into()),
                message: message.unwrap_or_else(|| describe_chain(err)),
                status: Some(re.raw().status().as_u16()),
                no_answer: false,
                retry_after: header_retry_after(re.raw()),
                source: None,
            },
            _ => AwsError {
                code: code.unwrap_or_else(|| "ConstructionFailure".into()),
                message: message.unwrap_or_else(|| describe_chain(err)),
                status: None,
                no_answer: false,
                retry_after: None,
                source: None,
            },
        }
    }

    /// Whether the code says a resource is missing.
    pub fn is_not_found(&self) -> bool {
        let c = self.code.as_str();
        c.ends_with(".NotFound")
            || c.ends_with(".Malformed")
            || matches!(
                c,
                "LoadBalancerNotFound" | "TargetGroupNotFound" | "ListenerNotFound"
            )
    }

    /// Classifies into a provider error for `operation` on `resource`, with the SDK's
    /// error as its source where the kind keeps one.
    pub fn classify(&self, operation: Operation, resource: &str) -> Error {
        let e = self.kind_of(operation, resource);
        match &self.source {
            Some(s) => e.with_shared_source(Arc::clone(s)),
            None => e,
        }
    }

    fn kind_of(&self, operation: Operation, resource: &str) -> Error {
        let c = self.code.as_str();
        let message = self.message.clone();
        if self.no_answer {
            return Error::transient(operation, format!("{}: {}", self.code, message));
        }
        // Throttling first: EC2 answers RequestLimitExceeded with a 503, and a 429 is a
        // rate limit whatever its code (an unknown one included).
        if self.status == Some(429) || is_throttling(c) {
            return Error::Throttled {
                operation,
                retry_after: self.retry_after,
            };
        }
        if self.is_not_found() {
            return Error::not_found(operation, resource);
        }
        match c {
            "VolumeInUse" | "DependencyViolation" | "ResourceInUse" => {
                return Error::conflict(operation, resource, message)
            }
            _ if c.ends_with(".InUse") => return Error::conflict(operation, resource, message),
            "IncorrectState" | "IncorrectInstanceState" | "InvalidState" => {
                return Error::transient(operation, format!("{c}: {message}"))
            }
            "AuthFailure"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "UnrecognizedClientException" => {
                return Error::unauthorized(operation, format!("{c}: {message}"))
            }
            "UnauthorizedOperation"
            | "AccessDenied"
            | "AccessDeniedException"
            | "OptInRequired" => return Error::forbidden(operation, format!("{c}: {message}")),
            "InvalidParameterValue"
            | "InvalidParameter"
            | "InvalidParameterCombination"
            | "MissingParameter"
            | "ValidationError"
            | "InvalidConfigurationRequest"
            | "InvalidTarget" => {
                let field = named_parameter(&message).unwrap_or_else(|| UNNAMED_FIELD.into());
                return Error::invalid(operation, field, format!("{c}: {message}"));
            }
            "InternalError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "Unavailable"
            | "RequestTimeout"
            | "RequestTimeoutException" => {
                return Error::transient(operation, format!("{c}: {message}"))
            }
            _ => {}
        }
        if c == "InsufficientInstanceCapacity"
            || c.ends_with("LimitExceeded")
            || c.starts_with("TooMany")
        {
            return Error::QuotaExceeded {
                operation,
                message: format!("{c}: {message}"),
            };
        }
        if c.starts_with("Duplicate") || c.ends_with(".Duplicate") {
            return Error::AlreadyExists {
                operation,
                resource: resource.to_string(),
            };
        }
        if let Some(status) = self.status.filter(|s| *s >= 500) {
            return Error::transient(operation, format!("HTTP {status} {c}: {message}"));
        }
        Error::api(operation, self.status, self.code.clone(), message)
    }

    /// Classifies, but maps error codes that start with one of `prefixes` to
    /// `InvalidInput` naming `field` (an unknown AMI in `RunInstances` is bad input,
    /// not a missing resource).
    pub fn with_input(
        &self,
        operation: Operation,
        resource: &str,
        inputs: &[(&str, &str)],
    ) -> Error {
        for (prefix, field) in inputs {
            if self.code.starts_with(prefix) {
                return Error::invalid(
                    operation,
                    *field,
                    format!("{}: {}", self.code, self.message),
                );
            }
        }
        self.classify(operation, resource)
    }
}

/// The throttling codes of the AWS SDKs' standard retry classifier.
fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
            | "BandwidthLimitExceeded"
    )
}

/// The parameter a validation message names: EC2's "Value (x) for parameter
/// instanceType is invalid", "The request must contain the parameter size", ELBv2's
/// "Value 'x' at 'name' failed to satisfy constraint".
fn named_parameter(message: &str) -> Option<String> {
    let token = |rest: &str| -> Option<String> {
        let t: String = rest
            .trim_start_matches(['\'', '"'])
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
            .collect();
        let t = t.trim_end_matches(['.', '-']).to_string();
        (!t.is_empty()).then_some(t)
    };
    ["for parameter ", "the parameter ", "The parameter "]
        .iter()
        .find_map(|m| message.split_once(m).and_then(|(_, rest)| token(rest)))
        .or_else(|| {
            message
                .split_once(" at '")
                .and_then(|(_, rest)| rest.split_once('\'').map(|(f, _)| f.to_string()))
                .filter(|f| !f.is_empty())
        })
}

/// The `Retry-After` of an answer, when it has one.
fn header_retry_after(raw: &HttpResponse) -> Option<Duration> {
    raw.headers().get("retry-after").and_then(parse_retry_after)
}

/// The messages of an error and its sources, joined (for failures without a message).
fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut src = err.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Shorthand: reduce an SDK error and classify it.
pub(crate) fn sdk<E>(
    operation: Operation,
    resource: &str,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> Error + '_
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| AwsError::from_sdk(e).classify(operation, resource)
}

#[cfg(test)]
mod vocabulary;

#[cfg(test)]
mod tests {
    use super::*;
    use provider_core::ErrorKind;

    fn e(code: &str) -> AwsError {
        AwsError {
            code: code.into(),
            message: "m".into(),
            status: Some(400),
            no_answer: false,
            retry_after: None,
            source: None,
        }
    }

    #[test]
    fn issue_table() {
        let op = Operation::GetInstance;
        let cases = [
            ("InvalidInstanceID.NotFound", ErrorKind::NotFound),
            ("InvalidGroup.NotFound", ErrorKind::NotFound),
            ("InvalidVolume.NotFound", ErrorKind::NotFound),
            ("InvalidAllocationID.NotFound", ErrorKind::NotFound),
            ("LoadBalancerNotFound", ErrorKind::NotFound),
            ("VolumeInUse", ErrorKind::Conflict),
            ("DependencyViolation", ErrorKind::Conflict),
            ("ResourceInUse", ErrorKind::Conflict),
            ("IncorrectState", ErrorKind::Transient),
            ("RequestLimitExceeded", ErrorKind::Throttled),
            ("Throttling", ErrorKind::Throttled),
            ("InsufficientInstanceCapacity", ErrorKind::QuotaExceeded),
            ("InstanceLimitExceeded", ErrorKind::QuotaExceeded),
            ("AddressLimitExceeded", ErrorKind::QuotaExceeded),
            ("TooManyLoadBalancers", ErrorKind::QuotaExceeded),
            ("AuthFailure", ErrorKind::Unauthorized),
            ("UnauthorizedOperation", ErrorKind::Forbidden),
            ("InvalidParameterValue", ErrorKind::InvalidInput),
            ("ValidationError", ErrorKind::InvalidInput),
            ("DuplicateLoadBalancerName", ErrorKind::AlreadyExists),
            ("InvalidGroup.Duplicate", ErrorKind::AlreadyExists),
            ("InternalError", ErrorKind::Transient),
            ("SomethingElse", ErrorKind::Api),
        ];
        for (code, kind) in cases {
            assert_eq!(e(code).classify(op, "instance i-1").kind(), kind, "{code}");
        }
    }

    #[test]
    fn input_override_and_retryability() {
        let op = Operation::CreateInstance;
        let err = e("InvalidAMIID.NotFound").with_input(op, "x", &[("InvalidAMIID", "spec.image")]);
        assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "spec.image"));
        let unhandled = AwsError {
            code: "Unhandled".into(),
            message: "html".into(),
            status: Some(500),
            no_answer: false,
            retry_after: None,
            source: None,
        };
        assert!(unhandled.classify(op, "x").is_retryable());
        let net = AwsError {
            code: "DispatchFailure".into(),
            message: "connection refused".into(),
            status: None,
            no_answer: true,
            retry_after: None,
            source: None,
        };
        assert_eq!(net.classify(op, "x").kind(), ErrorKind::Transient);
        assert!(!e("VolumeInUse").classify(op, "x").is_retryable());
    }

    #[tokio::test]
    async fn an_sdk_failure_is_the_source_and_shows_no_secret_key() {
        use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
        use std::error::Error as _;
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIDPLINTHTEST",
                "s3cret-access-key",
                Some("s3cret-session-token".into()),
                None,
                "test",
            ))
            // Nothing listens on port 1.
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
            .build();
        let op = Operation::ListAvailabilityZones;
        let err = aws_sdk_ec2::Client::from_conf(conf)
            .describe_availability_zones()
            .send()
            .await
            .map_err(sdk(op, "availability zones"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err:?}");
        assert!(err.source().is_some(), "{err:?}");
        let mut shown = format!("{err}\n{err:?}\n");
        let mut cause = err.source();
        while let Some(c) = cause {
            shown.push_str(&format!("{c}\n{c:?}\n"));
            cause = c.source();
        }
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
