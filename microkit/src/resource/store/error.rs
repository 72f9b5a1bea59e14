//! [`StoreError`]: what a store operation can fail with, and its HTTP problem.

use std::fmt;

use http::StatusCode;

use crate::{BoxError, FieldError, Problem};

/// The seconds a client is told to wait after a 503: long enough not to hammer a database
/// that is restarting, short enough that a blip costs a client little.
const RETRY_AFTER_SECS: u64 = 2;

/// Why a store operation failed.
///
/// Every failed operation changed nothing, with one exception that no store can rule out: an
/// [`Unavailable`](StoreError::Unavailable) write whose connection broke after the database
/// received it may have been applied, unacknowledged. A failed operation never reports
/// success, so nothing is acknowledged that was not written.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// No live record with this id under this parent.
    NotFound,
    /// A live record already has this value of a unique field (`"id"` for the id itself).
    Duplicate {
        /// The unique field.
        field: String,
    },
    /// The caller's `if_version` is not the record's version.
    VersionMismatch {
        /// The record's version.
        current: u64,
    },
    /// The id is not of the collection's kind or not well formed (see
    /// [`Id::parse`](super::Id::parse)), or a create lacks a required id or gives one the
    /// store allocates.
    InvalidId(String),
    /// A list filter names a field that is not filterable or has a value that is not a JSON
    /// scalar.
    InvalidFilter(String),
    /// The backend failed (a bug, a broken schema, data it cannot read). Its details are for
    /// logs, not clients.
    Backend(BoxError),
    /// The backend cannot serve now but may soon, and the same request may then succeed: the
    /// database is down or unreachable, a pool wait, connect or statement timed out, the disk
    /// is full or read-only. Answered with 503. Its details are for logs.
    Unavailable(BoxError),
    /// A stored record no longer fits the resource's type (a required field added since it
    /// was written, a field's type changed), or an item does not serialize to a JSON object:
    /// the server's data or code is at fault, never the request. The text names the record
    /// and the type, for logs.
    Incompatible(String),
    /// A [`commit`](super::Store::commit)'s idempotency key already has an unexpired record
    /// in its scope (another request with the key committed first): nothing was written.
    KeyTaken,
}

impl StoreError {
    /// Wraps any backend error.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        StoreError::Backend(error.into())
    }

    /// Wraps a backend error that is temporary (see [`Unavailable`](StoreError::Unavailable)).
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        StoreError::Unavailable(error.into())
    }

    /// `true` for [`Unavailable`](StoreError::Unavailable): retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// The problem to answer a client with: 404, 409 naming the field, 412, 400, 503, or 500.
    ///
    /// A backend or incompatible-data error is answered with a generic 500 whose cause (see
    /// [`Problem::with_cause`]) is logged once, when the problem is answered, so that SQL,
    /// paths and hosts do not leak to clients; an unavailable backend is logged here at warn
    /// level (it is an outage, not a bug) and answered with a generic 503 whose `retry_after`
    /// member and `Retry-After` header (seconds) say when trying again is worthwhile.
    pub fn to_problem(&self) -> Problem {
        match self {
            StoreError::NotFound => Problem::not_found("the resource does not exist"),
            StoreError::Duplicate { field } => {
                Problem::conflict(format!("another resource already has this {field}"))
                    .with_field_errors([FieldError::new(field.as_str(), "is already taken")])
            }
            StoreError::VersionMismatch { current } => {
                Problem::new(StatusCode::PRECONDITION_FAILED)
                    .with_detail(format!(
                        "the resource has changed: its current version is {current}"
                    ))
                    .with_extension("current_version", current)
            }
            StoreError::InvalidId(reason) => Problem::bad_request(format!("invalid id: {reason}")),
            StoreError::InvalidFilter(reason) => {
                Problem::bad_request(format!("invalid filter: {reason}"))
            }
            StoreError::Backend(error) => {
                Problem::internal("the resource store failed").with_cause(error)
            }
            StoreError::Unavailable(error) => {
                tracing::warn!(error = %error, "resource store unavailable");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .with_detail("the resource store is unavailable; try again later")
                    .with_extension("retry_after", RETRY_AFTER_SECS)
                    .with_header(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from(RETRY_AFTER_SECS),
                    )
            }
            StoreError::Incompatible(reason) => Problem::internal(
                "a stored item no longer fits its type: the service's data needs an upgrade",
            )
            .with_cause(reason),
            StoreError::KeyTaken => {
                Problem::conflict("a request with this Idempotency-Key was already processed")
            }
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("record not found"),
            StoreError::Duplicate { field } => {
                write!(f, "duplicate value of unique field `{field}`")
            }
            StoreError::VersionMismatch { current } => {
                write!(f, "version mismatch: the record is at version {current}")
            }
            StoreError::InvalidId(reason) => write!(f, "invalid id: {reason}"),
            StoreError::InvalidFilter(reason) => write!(f, "invalid filter: {reason}"),
            StoreError::Backend(error) => write!(f, "store backend error: {error}"),
            StoreError::Unavailable(error) => write!(f, "store backend unavailable: {error}"),
            StoreError::Incompatible(reason) => write!(f, "incompatible record: {reason}"),
            StoreError::KeyTaken => f.write_str("the idempotency key is already recorded"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Backend(error) | StoreError::Unavailable(error) => Some(&**error),
            _ => None,
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        error.to_problem()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_problems() {
        assert_eq!(StoreError::NotFound.to_problem().status(), 404);
        let dup = StoreError::Duplicate {
            field: "sku".into(),
        }
        .to_problem();
        assert_eq!(dup.status(), 409);
        assert_eq!(dup.field_errors()[0].field, "sku");
        let stale = StoreError::VersionMismatch { current: 3 }.to_problem();
        assert_eq!(stale.status(), 412);
        assert_eq!(stale.extension("current_version"), Some(&3.into()));
        assert_eq!(StoreError::InvalidId("x".into()).to_problem().status(), 400);
        assert_eq!(
            StoreError::InvalidFilter("x".into()).to_problem().status(),
            400
        );
    }

    #[test]
    fn backend_details_do_not_leak() {
        let problem =
            StoreError::backend("password authentication failed for db.internal").to_problem();
        assert_eq!(problem.status(), 500);
        assert!(!problem.detail().unwrap().contains("db.internal"));
    }

    #[test]
    fn an_unavailable_backend_is_503_without_details() {
        let error = StoreError::unavailable("connection refused by db.internal:5432");
        assert!(error.is_unavailable());
        let problem = Problem::from(error);
        assert_eq!(problem.status(), 503);
        assert_eq!(problem.extension("retry_after"), Some(&2.into()));
        assert!(!problem.detail().unwrap().contains("db.internal"));
        let response = crate::response::IntoResponse::into_response(problem);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "2");
    }
}
