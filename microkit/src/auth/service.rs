//! Internal routes that only other services may call, known by who they are rather than by
//! where they call from: a mutual-TLS peer certificate naming the service, or a short-lived
//! service token signed with a secret the services share.
//!
//! ```
//! use microkit::auth::{RequireService, ServiceTokens};
//! use microkit::router::{get, Router};
//!
//! let tokens = ServiceTokens::new(b"a secret shared by the services, 32+ bytes");
//! // The emails service: `GET /emails/` only for the cart and payments services.
//! let emails: Router = Router::new()
//!     .route("/emails/", get(|| async { "[]" }))
//!     .layer(RequireService::new(["cart", "payments"]).tokens(tokens.clone()));
//! // The cart service, calling it: its client signs every call (see
//! // `ClientConfig::service_tokens`), or one header by hand.
//! let (name, value) = tokens.header("cart").unwrap();
//! ```
//!
//! With AllowNetworks as well, a caller must be both inside the network and a known service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tower_layer::Layer;
use tower_service::Service;

use super::jwt::{JwtKeys, JwtVerifier};
use super::Identity;
use crate::gateway::GATEWAY_MARK;
use crate::response::IntoResponse;
use crate::{BoxError, Problem, Request, Response};

/// The header that carries a service token.
pub const X_MICROKIT_SERVICE: HeaderName = HeaderName::from_static("x-microkit-service");

const ISSUER: &str = "microkit-service";
const AUDIENCE: &str = "microkit-internal";
/// How long a service token is good for. A client configured with service tokens re-signs
/// each callee's token every 30 s and stamps every attempt as it goes out, so a token it sends
/// has at least 30 s left.
const TTL: Duration = Duration::from_secs(60);

/// Signs and verifies service tokens (HS256 with a shared secret of at least 32 random
/// bytes; the token's subject is the calling service's name, valid 60 s).
#[derive(Clone)]
pub struct ServiceTokens {
    signing: Arc<EncodingKey>,
    verifier: JwtVerifier,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokens").finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// Tokens signed and verified with `secret`.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        Self {
            signing: Arc::new(EncodingKey::from_secret(secret)),
            verifier: JwtVerifier::new(JwtKeys::hmac(secret))
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .leeway(Duration::from_secs(5)),
        }
    }

    /// The header a call from `service` carries: [`X_MICROKIT_SERVICE`] and a fresh token.
    pub fn header(&self, service: &str) -> Result<(HeaderName, HeaderValue), BoxError> {
        self.sign(service, json!(AUDIENCE))
    }

    /// The header a call from `caller` to `callee` carries: a fresh token addressed to
    /// `callee` too, which a [`RequireService::addressed_to`] route of another service
    /// refuses: a token one service received cannot be replayed to a third on routes that
    /// check the address (a plain [`RequireService`] route still admits it).
    /// [`ClientConfig::service_tokens`](crate::client::ClientConfig::service_tokens) signs
    /// every call this way.
    pub fn header_for(
        &self,
        caller: &str,
        callee: &str,
    ) -> Result<(HeaderName, HeaderValue), BoxError> {
        self.sign(caller, json!([AUDIENCE, callee]))
    }

    fn sign(
        &self,
        caller: &str,
        audience: serde_json::Value,
    ) -> Result<(HeaderName, HeaderValue), BoxError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = json!({ "sub": caller, "iss": ISSUER, "aud": audience,
                             "iat": now, "exp": now + TTL.as_secs() });
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing)?;
        let mut value = HeaderValue::try_from(token)?;
        // A credential: `Debug` of the request or its headers shows it as `Sensitive`.
        value.set_sensitive(true);
        Ok((X_MICROKIT_SERVICE, value))
    }

    /// What a valid token says: its subject is the calling service.
    pub(super) async fn verify_token(&self, token: &str) -> Result<Identity, String> {
        self.verifier.verify(token).await
    }
}

/// Whether `identity`'s token is addressed to `service` (its `aud` names it).
pub(super) fn addressed_to(identity: &Identity, service: &str) -> bool {
    match identity.claim("aud") {
        Some(serde_json::Value::String(audience)) => audience == service,
        Some(serde_json::Value::Array(audiences)) => {
            audiences.iter().any(|audience| audience == service)
        }
        _ => false,
    }
}

/// A tower layer admitting only calls from the named services (any service when the list is
/// empty), proven by a mutual-TLS peer certificate naming one of them (feature `tls`, with
/// [`TlsConfig::client_ca`](crate::server::TlsConfig::client_ca)) or by a service token from
/// [`ServiceTokens`]. Requests forwarded by the gateway are refused whatever they carry, as
/// [`AllowNetworks`](crate::gateway::AllowNetworks) does. Others get 403 problem+json.
#[derive(Debug, Clone)]
pub struct RequireService {
    allowed: Arc<[String]>,
    tokens: Option<ServiceTokens>,
    addressed_to: Option<Arc<str>>,
}

impl RequireService {
    /// Admits the services named (any known service when empty). Peers proven by mutual TLS
    /// are admitted as they are; add [`tokens`](Self::tokens) to admit signed callers too.
    pub fn new(services: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            allowed: services.into_iter().map(Into::into).collect(),
            tokens: None,
            addressed_to: None,
        }
    }

    /// Also admits callers presenting a service token these tokens verify.
    pub fn tokens(mut self, tokens: ServiceTokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Admits only service tokens addressed to `service`, this service's name (as a client
    /// with [`ClientConfig::service_tokens`](crate::client::ClientConfig::service_tokens)
    /// signs them): a token another service received from a caller cannot be replayed here.
    pub fn addressed_to(mut self, service: impl Into<String>) -> Self {
        self.addressed_to = Some(service.into().into());
        self
    }

    fn allows(&self, service: &str) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|name| name == service)
    }

    /// The calling service, if the request proves one this layer admits.
    async fn caller(&self, proof: Proof) -> Option<String> {
        if proof.through_gateway {
            return None;
        }
        #[cfg(feature = "tls")]
        if let Some(peer) = &proof.peer {
            let named = self.allowed.iter().find(|name| peer.is(name));
            match (named, self.allowed.is_empty()) {
                (Some(name), _) => return Some(name.clone()),
                (None, true) => return Some(peer.subject().to_owned()),
                (None, false) => {}
            }
        }
        let tokens = self.tokens.as_ref()?;
        let identity = tokens.verify_token(proof.token.as_deref()?).await.ok()?;
        if let Some(own) = &self.addressed_to {
            if !addressed_to(&identity, own) {
                return None;
            }
        }
        let service = identity.subject();
        self.allows(service).then(|| service.to_owned())
    }
}

/// What a request shows of its caller, taken out of it before any waiting.
struct Proof {
    through_gateway: bool,
    #[cfg(feature = "tls")]
    peer: Option<crate::server::PeerIdentity>,
    token: Option<String>,
}

impl Proof {
    fn of(request: &Request) -> Self {
        Self {
            through_gateway: request.headers().contains_key(GATEWAY_MARK),
            #[cfg(feature = "tls")]
            peer: request
                .extensions()
                .get::<crate::server::PeerIdentity>()
                .cloned(),
            token: request
                .headers()
                .get(X_MICROKIT_SERVICE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        }
    }
}

impl<S> Layer<S> for RequireService {
    type Service = RequireServiceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireServiceService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`RequireService`] wraps.
#[derive(Debug, Clone)]
pub struct RequireServiceService<S> {
    inner: S,
    layer: RequireService,
}

impl<S> Service<Request> for RequireServiceService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone is the one that was made ready: take it, leave a fresh one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        let proof = Proof::of(&request);
        Box::pin(async move {
            match layer.caller(proof).await {
                Some(_) => inner.call(request).await,
                None => Ok(Problem::new(StatusCode::FORBIDDEN)
                    .with_detail("this route is internal: only known services may call it")
                    .into_response()),
            }
        })
    }
}
