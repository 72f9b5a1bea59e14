//! The tower layer that verifies callers before any handler runs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, Method};
use tower_layer::Layer;
use tower_service::Service;

use super::api_key::ApiKeys;
use super::challenge::AuthError;
use super::identity::Identity;
use super::jwt::JwtVerifier;
use super::relay::{IdentityRelay, X_MICROKIT_IDENTITY};
use crate::{Request, Response};

/// The realm named in challenges unless [`Authenticate::realm`] sets another.
pub(crate) const DEFAULT_REALM: &str = "microkit";

/// The header that carries an API key, as many APIs name it.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Verifies the caller of every request it wraps: a bearer JWT (`Authorization: Bearer`), an
/// API key (`X-Api-Key` or `Authorization: ApiKey`), or both schemes. The verified
/// [`Identity`] goes into the request's extensions for handlers to extract.
///
/// Put it on a whole router with `Router::layer`, or only on the routes added so far with
/// `Router::route_layer` (then unrouted paths still answer 404, not 401).
#[derive(Debug, Clone)]
pub struct Authenticate {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    jwt: Option<JwtVerifier>,
    api_keys: Option<ApiKeys>,
    optional: bool,
    optional_for_reads: bool,
    relay: Option<IdentityRelay>,
    scopes: Vec<String>,
    realm: String,
}

impl Default for Authenticate {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticate {
    /// A layer that accepts no credentials yet: add [`jwt`](Self::jwt) and/or
    /// [`api_keys`](Self::api_keys).
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                jwt: None,
                api_keys: None,
                optional: false,
                optional_for_reads: false,
                relay: None,
                scopes: Vec::new(),
                realm: DEFAULT_REALM.to_owned(),
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Accepts bearer JWTs that `verifier` verifies.
    pub fn jwt(mut self, verifier: JwtVerifier) -> Self {
        self.config().jwt = Some(verifier);
        self
    }

    /// Accepts the API keys of `keys`.
    pub fn api_keys(mut self, keys: ApiKeys) -> Self {
        self.config().api_keys = Some(keys);
        self
    }

    /// Lets requests without credentials through, without an [`Identity`]; credentials that
    /// are present must still verify. For routes that serve everyone but more to some.
    pub fn optional(mut self) -> Self {
        self.config().optional = true;
        self
    }

    /// Lets `GET`, `HEAD` and `OPTIONS` requests without credentials through, while writes
    /// need them: a public catalog whose changes are not public.
    pub fn optional_for_reads(mut self) -> Self {
        self.config().optional_for_reads = true;
        self
    }

    /// Accepts the identities a gateway relays with `relay` (in [`X_MICROKIT_IDENTITY`]),
    /// besides the layer's own schemes for callers that come directly.
    pub fn trust_relay(mut self, relay: IdentityRelay) -> Self {
        self.config().relay = Some(relay);
        self
    }

    /// Requires `scope` (may be called more than once: every scope is then required); a
    /// verified caller without it gets 403.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.config().scopes.push(scope.into());
        self
    }

    /// The realm named in `WWW-Authenticate` challenges (default `microkit`); quotes and
    /// backslashes are dropped, so the challenge stays well-formed.
    pub fn realm(mut self, realm: &str) -> Self {
        self.config().realm = realm.chars().filter(|c| !matches!(c, '"' | '\\')).collect();
        self
    }
}

impl<S> Layer<S> for Authenticate {
    type Service = AuthenticateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthenticateService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`Authenticate`].
#[derive(Debug, Clone)]
pub struct AuthenticateService<S> {
    inner: S,
    config: Arc<Config>,
}

/// The credentials a request presents.
enum Presented<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
    Unusable(&'static str),
}

fn presented(headers: &HeaderMap) -> Presented<'_> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    let mut api_key = headers.get_all(X_API_KEY).iter();
    let (first, second) = (authorization.next(), authorization.next());
    let (key, another_key) = (api_key.next(), api_key.next());
    if second.is_some() || another_key.is_some() || (first.is_some() && key.is_some()) {
        return Presented::Unusable("the request carries more than one credential");
    }
    if let Some(key) = key {
        return match key.to_str() {
            Ok(key) if !key.is_empty() => Presented::ApiKey(key),
            _ => Presented::Unusable("the API key is empty or not visible ASCII"),
        };
    }
    let Some(value) = first else {
        return Presented::None;
    };
    let Ok(value) = value.to_str() else {
        return Presented::Unusable("the Authorization header is not visible ASCII");
    };
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    if credentials.is_empty() {
        return Presented::Unusable("the Authorization header has no credentials");
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Presented::Bearer(credentials)
    } else if scheme.eq_ignore_ascii_case("apikey") {
        Presented::ApiKey(credentials)
    } else {
        Presented::Unusable("the Authorization scheme is not Bearer or ApiKey")
    }
}

impl Config {
    /// Who the request's credentials name, `None` for an anonymous request allowed through.
    async fn identify(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Option<Identity>, AuthError> {
        let anonymous_allowed = self.optional
            || (self.optional_for_reads
                && matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS));
        let identity = match self.relayed(headers).await? {
            Some(identity) => identity,
            None => match self.own_scheme(headers).await? {
                Some(identity) => identity,
                None if anonymous_allowed => return Ok(None),
                None => return Err(AuthError::Missing),
            },
        };
        if let Some(missing) = self.scopes.iter().find(|scope| !identity.has_scope(scope)) {
            return Err(AuthError::InsufficientScope(missing.clone()));
        }
        Ok(Some(identity))
    }

    /// The identity a gateway relayed, when the layer trusts one and the request carries it.
    async fn relayed(&self, headers: &HeaderMap) -> Result<Option<Identity>, AuthError> {
        let Some(value) = headers.get(X_MICROKIT_IDENTITY) else {
            return Ok(None);
        };
        let Some(relay) = &self.relay else {
            return Err(AuthError::Invalid(
                "relayed identities are not accepted here".into(),
            ));
        };
        let token = value
            .to_str()
            .map_err(|_| AuthError::Invalid("the relayed identity is not visible ASCII".into()))?;
        relay
            .verify(token)
            .await
            .map(Some)
            .map_err(|reason| AuthError::Invalid(format!("relayed identity: {reason}")))
    }

    /// The identity the request's own credentials name; `None` when it carries none.
    async fn own_scheme(&self, headers: &HeaderMap) -> Result<Option<Identity>, AuthError> {
        let identity = match presented(headers) {
            Presented::None => return Ok(None),
            Presented::Unusable(reason) => return Err(AuthError::Invalid(reason.to_owned())),
            Presented::Bearer(token) => match &self.jwt {
                Some(verifier) => verifier.verify(token).await.map_err(AuthError::Invalid)?,
                None => {
                    return Err(AuthError::Invalid(
                        "bearer tokens are not accepted here".into(),
                    ))
                }
            },
            Presented::ApiKey(key) => match &self.api_keys {
                Some(keys) => keys
                    .verify(key)
                    .ok_or_else(|| AuthError::Invalid("the API key is not known".into()))?,
                None => return Err(AuthError::Invalid("API keys are not accepted here".into())),
            },
        };
        Ok(Some(identity))
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request> for AuthenticateService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was made ready serves this request; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            match config.identify(request.method(), request.headers()).await {
                Ok(identity) => {
                    if let Some(identity) = identity {
                        request.extensions_mut().insert(identity);
                    }
                    inner.call(request).await
                }
                Err(refusal) => Ok(refusal.response(&config.realm)),
            }
        })
    }
}
