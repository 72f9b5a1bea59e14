//! Errors reported by the [`Matcher`](super::Matcher).

use std::fmt;

/// Why a route could not be inserted.
///
/// Every variant names the route that was being inserted; a failed insertion
/// leaves the matcher unchanged.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InsertError {
    /// The route matches some path that an existing route already matches
    /// with the same priority, or differs from one only in parameter names.
    Conflict {
        /// The route being inserted.
        route: String,
        /// The existing route it conflicts with.
        with: String,
    },
    /// A parameter is malformed: empty name (`{}` or `{*}`), unclosed or
    /// unopened brace, or a `/` or `*` inside the name.
    InvalidParam {
        /// The route being inserted.
        route: String,
    },
    /// A segment holds more than one parameter, e.g. `/{a}-{b}`.
    InvalidParamSegment {
        /// The route being inserted.
        route: String,
    },
    /// A catch-all parameter is not at the very end of the route.
    InvalidCatchAll {
        /// The route being inserted.
        route: String,
    },
}

impl InsertError {
    /// The route whose insertion failed.
    pub fn route(&self) -> &str {
        match self {
            Self::Conflict { route, .. }
            | Self::InvalidParam { route }
            | Self::InvalidParamSegment { route }
            | Self::InvalidCatchAll { route } => route,
        }
    }
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot insert route `{}`: ", self.route())?;
        match self {
            Self::Conflict { with, .. } => {
                write!(f, "it conflicts with the existing route `{with}`")
            }
            Self::InvalidParam { .. } => f.write_str(
                "parameters need a non-empty name between matching braces \
                 (use `{{` and `}}` for literal braces)",
            ),
            Self::InvalidParamSegment { .. } => {
                f.write_str("only one parameter is allowed per path segment")
            }
            Self::InvalidCatchAll { .. } => {
                f.write_str("catch-all parameters are only allowed at the end of a route")
            }
        }
    }
}

impl std::error::Error for InsertError {}

/// The reason of a failed insertion, before the route is attached to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum InsertFailure {
    Conflict { with: String },
    InvalidParam,
    InvalidParamSegment,
    InvalidCatchAll,
}

impl InsertFailure {
    /// Names the route whose insertion failed.
    pub(super) fn for_route(self, route: String) -> InsertError {
        match self {
            Self::Conflict { with } => InsertError::Conflict { route, with },
            Self::InvalidParam => InsertError::InvalidParam { route },
            Self::InvalidParamSegment => InsertError::InvalidParamSegment { route },
            Self::InvalidCatchAll => InsertError::InvalidCatchAll { route },
        }
    }
}

/// No route matches the looked-up path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchError {
    /// No route matches the path.
    NotFound,
}

impl fmt::Display for MatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no route matches the path")
    }
}

impl std::error::Error for MatchError {}

/// Routes that could not be inserted by [`Matcher::merge`](super::Matcher::merge).
///
/// The other routes were inserted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeError(pub(super) Vec<InsertError>);

impl MergeError {
    /// The error of every route that could not be inserted.
    pub fn errors(&self) -> &[InsertError] {
        &self.0
    }

    /// Consumes the error, returning the error of every failed insertion.
    pub fn into_errors(self) -> Vec<InsertError> {
        self.0
    }
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} route(s) could not be merged", self.0.len())?;
        for error in &self.0 {
            write!(f, "\n- {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MergeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names_both_routes() {
        let error = InsertFailure::Conflict {
            with: "/a/{x}".into(),
        }
        .for_route("/a/{y}".into());
        assert_eq!(
            error.to_string(),
            "cannot insert route `/a/{y}`: it conflicts with the existing route `/a/{x}`"
        );
        assert_eq!(error.route(), "/a/{y}");
    }
}
