use std::fmt;

use http::StatusCode;

use crate::response::IntoResponse;
use crate::{Problem, Response};

/// Why a built-in extractor refused a request; it responds as a [`Problem`].
#[derive(Debug, Clone)]
pub struct Rejection {
    kind: RejectionKind,
    problem: Problem,
}

/// What kind of input a [`Rejection`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// A path parameter did not decode or parse (400).
    InvalidPath,
    /// The query string did not parse (400).
    InvalidQuery,
    /// The body's `Content-Type` is not the one the extractor reads (415).
    UnsupportedMediaType,
    /// The body is not syntactically valid (400).
    MalformedBody,
    /// The body is valid JSON of the wrong shape (422).
    InvalidBody,
    /// The body is larger than the limit (413).
    PayloadTooLarge,
    /// The body could not be read from the connection (400).
    BodyRead,
    /// The body stalled or arrived too slowly for the server's body timeouts (408).
    BodyTimeout,
    /// Something the extractor needs was not set up by the server or router (500).
    MissingContext,
}

impl Rejection {
    pub(crate) fn new(kind: RejectionKind, detail: impl Into<String>) -> Self {
        let status = match kind {
            RejectionKind::InvalidPath
            | RejectionKind::InvalidQuery
            | RejectionKind::MalformedBody
            | RejectionKind::BodyRead => StatusCode::BAD_REQUEST,
            RejectionKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RejectionKind::InvalidBody => StatusCode::UNPROCESSABLE_ENTITY,
            RejectionKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RejectionKind::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            RejectionKind::MissingContext => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            kind,
            problem: Problem::new(status).with_detail(detail),
        }
    }

    pub(crate) fn with_problem(mut self, edit: impl FnOnce(Problem) -> Problem) -> Self {
        self.problem = edit(self.problem);
        self
    }

    /// What kind of input was refused.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The HTTP status the rejection responds with.
    pub fn status(&self) -> StatusCode {
        self.problem.status()
    }

    /// The problem the rejection responds with.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// Takes the problem out, e.g. to add detail before responding.
    pub fn into_problem(self) -> Problem {
        self.problem
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.problem.fmt(f)
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.problem.into_response()
    }
}

impl From<Rejection> for Problem {
    fn from(rejection: Rejection) -> Self {
        rejection.problem
    }
}
