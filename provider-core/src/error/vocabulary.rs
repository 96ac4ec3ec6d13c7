//! The error vocabulary: the situations every provider classifies the same way.
//!
//! A cloud says "busy", "in use" or "slow down" in its own words (an HTTP status, an
//! error code, a fault type, a sentence in a body). Callers above the providers (retry,
//! waiting, the cluster) decide on the [`ErrorKind`] alone, so each situation below has
//! exactly one kind, one retry verdict and one rule for `retry_after`, whatever the cloud:
//!
//! | situation | kind | retried | `retry_after` |
//! |---|---|---|---|
//! | [`NotFound`](Situation::NotFound): the id is unknown, deleted or malformed | `NotFound` | no | none |
//! | [`Busy`](Situation::Busy): a transitional state that clears by itself (Octavia `PENDING_*`, EC2 `IncorrectState`, vSphere `TaskInProgress`) | `Transient` | yes | none |
//! | [`InUse`](Situation::InUse): another resource holds it (attached volume, referenced group) | `Conflict` | no | none |
//! | [`AlreadyExists`](Situation::AlreadyExists): the cloud refuses a duplicate | `AlreadyExists` | no | none |
//! | [`QuotaExceeded`](Situation::QuotaExceeded): a quota or capacity limit | `QuotaExceeded` | no | none |
//! | [`RateLimited`](Situation::RateLimited): slow down, with or without `Retry-After` | `Throttled` | yes | the cloud's, kept |
//! | [`Unauthenticated`](Situation::Unauthenticated): credentials missing, wrong or expired | `Unauthorized` | no | none |
//! | [`PermissionDenied`](Situation::PermissionDenied): authenticated, not allowed | `Forbidden` | no | none |
//! | [`Invalid`](Situation::Invalid): the request is wrong; `field` as the cloud names it, else [`UNNAMED_FIELD`] | `InvalidInput` | no | none |
//! | [`ServerError`](Situation::ServerError): a 5xx or the cloud's internal error | `Transient` | yes | none |
//! | [`Timeout`](Situation::Timeout): no answer in time (the client's request timeout, a gateway's 504) | `Transient` | yes | none |
//! | [`Unreachable`](Situation::Unreachable): no connection (refused, reset, DNS) | `Transient` | yes | none |
//!
//! `Error::Timeout` is not a classification: it is the verdict of a wait (a resource that
//! did not reach a state in time), raised by the waiting code, never by a cloud's answer.
//!
//! Each provider proves its classification with a table of its cloud's real answers
//! (status, code and body as the cloud sends them), checked with [`check_table`], which
//! also fails when a situation is neither checked nor listed as one the cloud cannot
//! produce.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::{Error, ErrorKind};

/// The `field` of an [`Error::InvalidInput`] classified from a cloud answer that does not
/// say which input is wrong.
pub const UNNAMED_FIELD: &str = "request";

/// One situation of the vocabulary (see the [module docs](self) for the table).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Situation {
    /// The resource does not exist: deleted, never existed, or a malformed id.
    NotFound,
    /// The resource is in a transitional state that clears by itself.
    Busy,
    /// Another resource holds it; the caller must act first.
    InUse,
    /// The cloud refuses to create a duplicate.
    AlreadyExists,
    /// A quota or capacity limit was reached.
    QuotaExceeded,
    /// The cloud asked to slow down; `retry_after` is what it said (`Retry-After`), kept.
    RateLimited {
        /// The wait the cloud asked for, if it said.
        retry_after: Option<Duration>,
    },
    /// Credentials are missing, wrong or expired.
    Unauthenticated,
    /// Authenticated, but not allowed.
    PermissionDenied,
    /// The request is wrong; `field` is the input the cloud named, or `None` when it
    /// named none (the error's field is then [`UNNAMED_FIELD`]).
    Invalid {
        /// The field the cloud named.
        field: Option<String>,
    },
    /// The cloud failed (5xx, an internal error).
    ServerError,
    /// No answer in time.
    Timeout,
    /// No connection to the cloud.
    Unreachable,
}

/// The situations' labels in table order, one for each variant and each variant's
/// distinct shape (rate limited with and without `Retry-After`, invalid with and
/// without a named field): what every provider's table must cover.
pub const LABELS: [&str; 14] = [
    "not found",
    "busy",
    "in use",
    "already exists",
    "quota exceeded",
    "rate limited (Retry-After)",
    "rate limited (no Retry-After)",
    "unauthenticated",
    "permission denied",
    "invalid (field named)",
    "invalid (no field named)",
    "server error",
    "timeout",
    "unreachable",
];

impl Situation {
    /// `Invalid` naming `field`.
    pub fn invalid(field: impl Into<String>) -> Self {
        Situation::Invalid {
            field: Some(field.into()),
        }
    }

    /// `Invalid` naming no field.
    pub fn invalid_unnamed() -> Self {
        Situation::Invalid { field: None }
    }

    /// `RateLimited` with the `Retry-After` the cloud sent.
    pub fn rate_limited_after(retry_after: Duration) -> Self {
        Situation::RateLimited {
            retry_after: Some(retry_after),
        }
    }

    /// `RateLimited` without `Retry-After`.
    pub fn rate_limited() -> Self {
        Situation::RateLimited { retry_after: None }
    }

    /// Its label in [`LABELS`].
    pub fn label(&self) -> &'static str {
        match self {
            Situation::NotFound => LABELS[0],
            Situation::Busy => LABELS[1],
            Situation::InUse => LABELS[2],
            Situation::AlreadyExists => LABELS[3],
            Situation::QuotaExceeded => LABELS[4],
            Situation::RateLimited {
                retry_after: Some(_),
            } => LABELS[5],
            Situation::RateLimited { retry_after: None } => LABELS[6],
            Situation::Unauthenticated => LABELS[7],
            Situation::PermissionDenied => LABELS[8],
            Situation::Invalid { field: Some(_) } => LABELS[9],
            Situation::Invalid { field: None } => LABELS[10],
            Situation::ServerError => LABELS[11],
            Situation::Timeout => LABELS[12],
            Situation::Unreachable => LABELS[13],
        }
    }

    /// The kind every provider classifies it as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Situation::NotFound => ErrorKind::NotFound,
            Situation::Busy
            | Situation::ServerError
            | Situation::Timeout
            | Situation::Unreachable => ErrorKind::Transient,
            Situation::InUse => ErrorKind::Conflict,
            Situation::AlreadyExists => ErrorKind::AlreadyExists,
            Situation::QuotaExceeded => ErrorKind::QuotaExceeded,
            Situation::RateLimited { .. } => ErrorKind::Throttled,
            Situation::Unauthenticated => ErrorKind::Unauthorized,
            Situation::PermissionDenied => ErrorKind::Forbidden,
            Situation::Invalid { .. } => ErrorKind::InvalidInput,
        }
    }

    /// Whether the generic retry policy repeats the call ([`Error::is_retryable`]).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Situation::Busy
                | Situation::RateLimited { .. }
                | Situation::ServerError
                | Situation::Timeout
                | Situation::Unreachable
        )
    }

    /// The `retry_after` the error must carry: the cloud's, for `RateLimited`; none
    /// otherwise.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Situation::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// Checks that `err` is how every provider classifies this situation: its kind,
    /// retry flag and `retry_after`, and for `Invalid` the field. The error says what
    /// differs.
    pub fn check(&self, err: &Error) -> Result<(), String> {
        let mut wrong = Vec::new();
        if err.kind() != self.kind() {
            wrong.push(format!("kind {:?}, wanted {:?}", err.kind(), self.kind()));
        }
        if err.is_retryable() != self.retryable() {
            wrong.push(format!(
                "retryable {}, wanted {}",
                err.is_retryable(),
                self.retryable()
            ));
        }
        if err.retry_after() != self.retry_after() {
            wrong.push(format!(
                "retry_after {:?}, wanted {:?}",
                err.retry_after(),
                self.retry_after()
            ));
        }
        if let (Situation::Invalid { field }, Error::InvalidInput { field: got, .. }) = (self, err)
        {
            let want = field.as_deref().unwrap_or(UNNAMED_FIELD);
            if got != want {
                wrong.push(format!("field {got:?}, wanted {want:?}"));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("{}; got {err:?}", wrong.join(", ")))
        }
    }
}

impl fmt::Display for Situation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One row of a provider's table: the cloud's answer (described), the situation it
/// is, and what the provider's classification made of it.
#[derive(Debug)]
pub struct Row {
    /// The answer, e.g. `404 InvalidInstanceID.NotFound (moto)`.
    pub answer: String,
    /// The situation the answer is.
    pub situation: Situation,
    /// What the provider classified it as.
    pub got: Error,
}

impl Row {
    /// A row.
    pub fn new(answer: impl Into<String>, situation: Situation, got: Error) -> Self {
        Self {
            answer: answer.into(),
            situation,
            got,
        }
    }
}

/// What [`check_table`] found wrong: one line per failing row and per situation the
/// table leaves out.
#[derive(Clone, PartialEq, Eq)]
pub struct TableMismatch(pub Vec<String>);

impl fmt::Display for TableMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the error vocabulary table fails:")?;
        for line in &self.0 {
            writeln!(f, "  - {line}")?;
        }
        Ok(())
    }
}

/// Shown as Display so that a test returning it prints the list, not a struct dump.
impl fmt::Debug for TableMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TableMismatch {}

/// Checks every row ([`Situation::check`]) and that every label of [`LABELS`] is either
/// checked by a row or listed in `not_produced` with the reason the cloud cannot produce
/// it (a label in both is an error too, as is an unknown label). Reports every failure
/// at once.
pub fn check_table(rows: &[Row], not_produced: &[(&str, &str)]) -> Result<(), TableMismatch> {
    let mut lines = Vec::new();
    for row in rows {
        if let Err(why) = row.situation.check(&row.got) {
            lines.push(format!("{} [{}]: {why}", row.answer, row.situation));
        }
    }
    for (label, reason) in not_produced {
        if !LABELS.contains(label) {
            lines.push(format!(
                "unknown situation {label:?} in the not-produced list"
            ));
        } else if rows.iter().any(|r| r.situation.label() == *label) {
            lines.push(format!(
                "{label:?} is checked by a row and also listed as not produced ({reason})"
            ));
        }
    }
    for label in LABELS {
        let checked = rows.iter().any(|r| r.situation.label() == label);
        let excused = not_produced.iter().any(|(l, _)| *l == label);
        if !checked && !excused {
            lines.push(format!(
                "no row for {label:?}: add the cloud's answer, or list it as not produced with the reason"
            ));
        }
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(TableMismatch(lines))
    }
}

/// Reads a `Retry-After` header value: delay-seconds or an HTTP date (RFC 9110 10.2.3);
/// a date in the past is zero. `None` when it is neither.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Operation;

    #[test]
    fn every_label_has_one_situation() {
        let all = [
            Situation::NotFound,
            Situation::Busy,
            Situation::InUse,
            Situation::AlreadyExists,
            Situation::QuotaExceeded,
            Situation::rate_limited_after(Duration::from_secs(1)),
            Situation::rate_limited(),
            Situation::Unauthenticated,
            Situation::PermissionDenied,
            Situation::invalid("size"),
            Situation::invalid_unnamed(),
            Situation::ServerError,
            Situation::Timeout,
            Situation::Unreachable,
        ];
        let labels: Vec<_> = all.iter().map(Situation::label).collect();
        assert_eq!(labels, LABELS);
    }

    #[test]
    fn check_names_each_difference() {
        let op = Operation::GetInstance;
        let conflict = Error::conflict(op, "instance i", "busy");
        let why = Situation::Busy.check(&conflict).unwrap_err();
        assert!(why.contains("kind Conflict, wanted Transient"), "{why}");
        assert!(why.contains("retryable false, wanted true"), "{why}");

        let throttled = Error::Throttled {
            operation: op,
            retry_after: None,
        };
        let why = Situation::rate_limited_after(Duration::from_secs(3))
            .check(&throttled)
            .unwrap_err();
        assert_eq!(
            why.split(';').next(),
            Some("retry_after None, wanted Some(3s)")
        );

        let invalid = Error::invalid(op, "instance i", "bad");
        let why = Situation::invalid_unnamed().check(&invalid).unwrap_err();
        assert!(
            why.starts_with("field \"instance i\", wanted \"request\""),
            "{why}"
        );
        assert_eq!(
            Situation::invalid("size").check(&Error::invalid(op, "size", "bad")),
            Ok(())
        );
    }

    #[test]
    fn a_table_must_cover_or_excuse_every_situation() {
        let op = Operation::GetInstance;
        let rows = [Row::new(
            "404",
            Situation::NotFound,
            Error::not_found(op, "instance i"),
        )];
        let mut excused: Vec<(&str, &str)> = LABELS[1..].iter().map(|l| (*l, "n/a")).collect();
        assert_eq!(check_table(&rows, &excused), Ok(()));

        excused.pop();
        let err = check_table(&rows, &excused).unwrap_err();
        assert_eq!(
            err.0,
            ["no row for \"unreachable\": add the cloud's answer, or list it as not produced with the reason"]
        );

        excused.push(("not found", "n/a"));
        excused.push(("bogus", "n/a"));
        let shown = check_table(&rows, &excused).unwrap_err().to_string();
        assert!(
            shown.contains("\"not found\" is checked by a row"),
            "{shown}"
        );
        assert!(shown.contains("unknown situation \"bogus\""), "{shown}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
