//! Why a caller was refused, and the answer that says so: 401 with a `WWW-Authenticate`
//! challenge (RFC 6750 section 3) or 403 for a missing scope, as problem+json.

use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, StatusCode};

use crate::response::IntoResponse;
use crate::{Problem, Response};

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carries no credentials.
    Missing,
    /// The credentials were present but not valid; the reason is for the problem's detail.
    Invalid(String),
    /// The caller is known but lacks the scope the route requires.
    InsufficientScope(String),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("the request carries no credentials"),
            Self::Invalid(reason) => write!(f, "the credentials are not valid: {reason}"),
            Self::InsufficientScope(scope) => write!(f, "the scope `{scope}` is required"),
        }
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    /// The answer, challenging the client the way RFC 6750 asks.
    pub(crate) fn response(&self, realm: &str) -> Response {
        let (status, challenge) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                format!("Bearer realm=\"{realm}\""),
            ),
            Self::Invalid(_) => (
                StatusCode::UNAUTHORIZED,
                format!("Bearer realm=\"{realm}\", error=\"invalid_token\""),
            ),
            Self::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scope}\""
                ),
            ),
        };
        let mut response = Problem::new(status)
            .with_detail(self.to_string())
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.response(super::layer::DEFAULT_REALM)
    }
}
