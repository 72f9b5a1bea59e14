use std::fmt;

use http::StatusCode;

use crate::discovery::DiscoveryError;
use crate::{BoxError, Problem};

/// Why a call to another service failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// No instance of the service is registered (or every one was tried).
    NoInstances {
        /// The service called.
        service: String,
    },
    /// The last attempt did not answer within its timeout.
    Timeout {
        /// The service called.
        service: String,
    },
    /// The call's deadline passed.
    DeadlineExceeded {
        /// The service called.
        service: String,
    },
    /// No connection could be made to any instance tried.
    Connect {
        /// The service called.
        service: String,
        /// What went wrong.
        source: BoxError,
    },
    /// The connection failed while the request was in flight.
    Transport {
        /// The service called.
        service: String,
        /// What went wrong.
        source: BoxError,
    },
    /// The service answered with an error status; its problem body, if it sent one.
    Status {
        /// The service called.
        service: String,
        /// The problem the service answered with (built from the status if it sent none).
        problem: Problem,
    },
    /// The answer's body was not the JSON expected.
    Decode {
        /// The service called.
        service: String,
        /// What went wrong.
        source: BoxError,
    },
    /// The registry failed.
    Discovery(DiscoveryError),
}

impl ClientError {
    /// The HTTP status the service answered with, for [`ClientError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { problem, .. } => Some(problem.status()),
            _ => None,
        }
    }

    /// The problem the service answered with, for [`ClientError::Status`].
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Status { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// Whether the call ran out of time (an attempt timeout or the deadline).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::DeadlineExceeded { .. })
    }

    /// The problem a caller should answer with: the service's own for an error status, 503 when
    /// nothing is there to call, 504 when time ran out, 502 for anything else that went wrong
    /// downstream. What gateways send to clients.
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Status { problem, .. } => problem.clone(),
            Self::NoInstances { .. } | Self::Discovery(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE).with_detail(self.to_string())
            }
            Self::Timeout { .. } | Self::DeadlineExceeded { .. } => {
                Problem::new(StatusCode::GATEWAY_TIMEOUT).with_detail(self.to_string())
            }
            Self::Connect { service, .. }
            | Self::Transport { service, .. }
            | Self::Decode { service, .. } => {
                tracing::warn!(error = %self, "a call to {service} failed");
                Problem::new(StatusCode::BAD_GATEWAY)
                    .with_detail(format!("the {service} service failed to answer"))
            }
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoInstances { service } => {
                write!(f, "no instance of the {service} service is available")
            }
            Self::Timeout { service } => write!(f, "the {service} service did not answer in time"),
            Self::DeadlineExceeded { service } => {
                write!(
                    f,
                    "the deadline passed before the {service} service answered"
                )
            }
            Self::Connect { service, source } => {
                write!(f, "could not connect to the {service} service: {source}")
            }
            Self::Transport { service, source } => {
                write!(
                    f,
                    "the connection to the {service} service failed: {source}"
                )
            }
            Self::Status { service, problem } => {
                write!(f, "the {service} service answered {problem}")
            }
            Self::Decode { service, source } => {
                write!(
                    f,
                    "the {service} service answered with an unexpected body: {source}"
                )
            }
            Self::Discovery(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { source, .. }
            | Self::Transport { source, .. }
            | Self::Decode { source, .. } => Some(source.as_ref()),
            Self::Discovery(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ClientError> for Problem {
    fn from(err: ClientError) -> Self {
        err.to_problem()
    }
}

impl crate::response::IntoResponse for ClientError {
    fn into_response(self) -> crate::Response {
        self.to_problem().into_response()
    }
}
