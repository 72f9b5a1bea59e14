//! What a route asks of its caller beyond being verified: a scheme, a scope.

use super::challenge::AuthError;
use super::identity::{Identity, Scheme};

/// A caller a route accepts: verified, and optionally through one scheme and with one scope.
/// Checked against the [`Identity`] an [`Authenticate`](super::Authenticate) layer put in
/// the request (see [`Gateway::require`](crate::gateway::Gateway::require)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    scheme: Option<Scheme>,
    scope: Option<String>,
}

impl Requirement {
    /// Any verified caller.
    pub fn authenticated() -> Self {
        Self::default()
    }

    /// A verified caller granted `scope`.
    pub fn scope(scope: impl Into<String>) -> Self {
        Self::default().and_scope(scope)
    }

    /// A caller verified through `scheme` (a bearer token, an API key).
    pub fn scheme(scheme: Scheme) -> Self {
        Self::default().and_scheme(scheme)
    }

    /// Also requires `scope`.
    pub fn and_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Also requires `scheme`.
    pub fn and_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// Whether `identity` meets the requirement: 401 without one or through another scheme,
    /// 403 without the scope.
    pub fn check(&self, identity: Option<&Identity>) -> Result<(), AuthError> {
        let identity = identity.ok_or(AuthError::Missing)?;
        if let Some(scheme) = self.scheme {
            if identity.scheme() != scheme {
                return Err(AuthError::Invalid(format!(
                    "this route accepts only {}",
                    match scheme {
                        Scheme::Bearer => "bearer tokens",
                        Scheme::ApiKey => "API keys",
                    }
                )));
            }
        }
        match &self.scope {
            Some(scope) if !identity.has_scope(scope) => {
                Err(AuthError::InsufficientScope(scope.clone()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(scheme: Scheme, scopes: &[&str]) -> Identity {
        Identity::new(scheme, "ada", scopes.iter().copied(), Default::default())
    }

    #[test]
    fn requirements_check_presence_scheme_and_scope() {
        let bearer = caller(Scheme::Bearer, &["billing"]);
        let key = caller(Scheme::ApiKey, &[]);
        assert_eq!(
            Requirement::authenticated().check(None),
            Err(AuthError::Missing)
        );
        assert!(Requirement::authenticated().check(Some(&key)).is_ok());
        assert!(Requirement::scope("billing").check(Some(&bearer)).is_ok());
        assert_eq!(
            Requirement::scope("billing").check(Some(&key)),
            Err(AuthError::InsufficientScope("billing".into()))
        );
        assert!(matches!(
            Requirement::scheme(Scheme::Bearer).check(Some(&key)),
            Err(AuthError::Invalid(_))
        ));
        assert!(Requirement::scheme(Scheme::ApiKey)
            .and_scope("billing")
            .check(Some(&key))
            .is_err());
    }
}
