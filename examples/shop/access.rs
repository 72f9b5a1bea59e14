//! Who may do what, when the shop runs with `--auth-jwks FILE` or `--auth-secret SECRET`
//! (off by default: then nothing here runs and the shop answers as it always has).
//!
//! - The gateway verifies bearer tokens: reads may be anonymous, writes need a token (401).
//! - A token's `sub` is a user id. Everything under `/user/{uid}/` (the cart, its checkout)
//!   and writes to `/user/{uid}` belong to that user: another user gets 404, as if it did not
//!   exist, and an anonymous caller 401. The gateway checks this before forwarding.
//! - The gateway relays the verified caller to the services, signed (`IdentityRelay`); the
//!   payments service shows a caller only their own invoices (lists filtered, others' 404,
//!   paying another's 404). Calls between services (a checkout making its invoice) do not pass
//!   the gateway and are not scoped: the services trust their network, as for internal routes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use microkit::auth::{Authenticate, Identity, IdentityRelay, JwtKeys, JwtVerifier};
use microkit::gateway::GATEWAY_MARK;
use microkit::response::IntoResponse;
use microkit::{BoxError, Problem, Request, Response};
use tower::{Layer, Service};

use super::options::Options;

/// The shop's verifier and relay, when authentication is on.
#[derive(Clone)]
pub(crate) struct Access {
    verifier: JwtVerifier,
    relay: IdentityRelay,
}

impl Access {
    /// `None` unless `--auth-jwks` or `--auth-secret` was given.
    pub(crate) fn from_options(options: &Options) -> Result<Option<Self>, BoxError> {
        let keys = match (&options.auth_jwks, &options.auth_secret) {
            (Some(path), _) => JwtKeys::jwks_file(path)?,
            (None, Some(secret)) => JwtKeys::hmac(secret.as_bytes()),
            (None, None) => return Ok(None),
        };
        let relay_secret = match &options.relay_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            // One process: a secret of its own, never written anywhere.
            None => (0..3)
                .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
                .collect(),
        };
        Ok(Some(Self {
            verifier: JwtVerifier::new(keys),
            relay: IdentityRelay::new(relay_secret),
        }))
    }

    /// The gateway's layer: reads may be anonymous, writes need a verified token.
    pub(crate) fn edge(&self) -> Authenticate {
        Authenticate::new()
            .jwt(self.verifier.clone())
            .optional_for_reads()
            .realm("shop")
    }

    /// The relay the gateway signs callers into.
    pub(crate) fn relay(&self) -> &IdentityRelay {
        &self.relay
    }

    /// A service's layer: the caller the gateway relayed, if any.
    pub(crate) fn service(&self) -> Authenticate {
        Authenticate::new()
            .trust_relay(self.relay.clone())
            .optional()
            .realm("shop")
    }
}

/// Whether a request must be limited to one user's data, and whose: `Ok(None)` when not
/// (authentication off, or a call from another service), the user id when it came through
/// the gateway with a token, 401 when it came through the gateway without one.
pub(crate) fn scoped_user(
    enforced: bool,
    headers: &HeaderMap,
    identity: Option<&Identity>,
) -> Result<Option<u64>, Problem> {
    if !enforced || !headers.contains_key(GATEWAY_MARK) {
        return Ok(None);
    }
    match identity {
        None => Err(unauthenticated()),
        Some(identity) => user_of(identity).map(Some),
    }
}

/// The user a token speaks for: its subject, a user id.
fn user_of(identity: &Identity) -> Result<u64, Problem> {
    identity.subject().parse().map_err(|_| {
        Problem::new(StatusCode::FORBIDDEN).with_detail("the token's subject is not a shop user id")
    })
}

fn unauthenticated() -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED)
        .with_detail("sign in: this belongs to a user")
        .with_header(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"shop\""),
        )
}

/// The user whose data a path is, if the gateway must check it: everything under
/// `/user/{uid}/`, and `/user/{uid}` itself for writes.
fn owner_in_path<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix("/user/")?;
    match rest.split_once('/') {
        Some((uid, _)) => Some(uid),
        None if rest.is_empty() => None,
        None if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) => None,
        None => Some(rest),
    }
}

/// Refuses, at the gateway, a request for a user's data from anyone but that user. Inside
/// the edge's [`Authenticate`], which put the caller in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnUserPaths;

impl<S> Layer<S> for OwnUserPaths {
    type Service = OwnUserPathsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OwnUserPathsService { inner }
    }
}

/// See [`OwnUserPaths`].
#[derive(Debug, Clone)]
pub(crate) struct OwnUserPathsService<S> {
    inner: S,
}

impl<S> OwnUserPathsService<S> {
    fn check(request: &Request) -> Result<(), Problem> {
        let Some(owner) = owner_in_path(request.method(), request.uri().path()) else {
            return Ok(());
        };
        let Some(identity) = request.extensions().get::<Identity>() else {
            return Err(unauthenticated());
        };
        // A raw segment compared with the subject: an encoded id (`%37`) is refused, never let
        // through, since it cannot equal a plain subject.
        if owner == identity.subject() {
            Ok(())
        } else {
            Err(Problem::not_found(format!("there is no user {owner}")))
        }
    }
}

impl<S> Service<Request> for OwnUserPathsService<S>
where
    S: Service<Request, Response = Response> + Send,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match Self::check(&request) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(problem) => Box::pin(std::future::ready(Ok(problem.into_response()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_nested_paths_and_writes_to_the_user_are_theirs() {
        assert_eq!(owner_in_path(&Method::GET, "/user/7/cart/"), Some("7"));
        assert_eq!(
            owner_in_path(&Method::POST, "/user/7/cart/checkout"),
            Some("7")
        );
        assert_eq!(owner_in_path(&Method::DELETE, "/user/7"), Some("7"));
        assert_eq!(owner_in_path(&Method::GET, "/user/7"), None);
        assert_eq!(owner_in_path(&Method::POST, "/user/"), None);
        assert_eq!(owner_in_path(&Method::GET, "/invoices/"), None);
    }
}
