//! The verified caller, as handlers see it.

use std::sync::Arc;

use http::request::Parts;
use serde_json::{Map, Value};

use super::challenge::AuthError;
use crate::extract::FromRequestParts;

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// A bearer JWT (`Authorization: Bearer ...`).
    Bearer,
    /// An API key (`X-Api-Key: ...` or `Authorization: ApiKey ...`).
    ApiKey,
}

/// A caller whose credentials [`Authenticate`](super::Authenticate) verified.
///
/// As an extractor it is 401 when the request carries no identity (the layer was
/// [`optional`](super::Authenticate::optional) and the caller sent nothing);
/// `Option<Identity>` takes both cases.
#[derive(Debug, Clone)]
pub struct Identity {
    subject: Arc<str>,
    scopes: Arc<[String]>,
    claims: Arc<Map<String, Value>>,
    scheme: Scheme,
}

impl Identity {
    /// An identity; the layer builds these, tests may too.
    pub fn new(
        scheme: Scheme,
        subject: impl Into<Arc<str>>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
        claims: Map<String, Value>,
    ) -> Self {
        Self {
            subject: subject.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
            claims: Arc::new(claims),
            scheme,
        }
    }

    /// Builds the identity of a verified JWT from its claims: the subject is `sub`, the scopes
    /// come from `scope` (space-separated, RFC 8693) or `scp` (an array or a string).
    pub(crate) fn from_claims(claims: Map<String, Value>) -> Self {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let scopes: Vec<String> = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(text)) => text.split_ascii_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        Self::new(Scheme::Bearer, subject, scopes, claims)
    }

    /// Who the caller is: the token's `sub`, or the name an API key was registered under.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The scopes granted to the caller.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether the caller was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }

    /// Every verified claim of the token (empty for an API key).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// One claim, such as `email` or `tenant`.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// How the caller proved who it is.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or(AuthError::Missing)
    }
}

/// `None` for an anonymous request (one the auth layer let through without credentials).
impl<S: Send + Sync> crate::extract::OptionalFromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Identity>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let spaced = Identity::from_claims(claims(json!({"sub": "ada", "scope": "a b  c"})));
        assert_eq!(spaced.subject(), "ada");
        assert_eq!(spaced.scopes(), ["a", "b", "c"]);
        let listed = Identity::from_claims(claims(json!({"sub": "ada", "scp": ["x", 3, "y"]})));
        assert!(listed.has_scope("x") && listed.has_scope("y") && !listed.has_scope("3"));
        let none = Identity::from_claims(claims(json!({"sub": "ada"})));
        assert!(none.scopes().is_empty());
    }
}
