//! Passing a verified caller from the gateway to the services behind it.
//!
//! The gateway verifies the caller once; the services must learn who it is without verifying
//! the caller's credentials again (they may not even hold the provider's keys) and without
//! trusting anything a client could write. The gateway therefore signs a short-lived internal
//! token (HS256, a secret shared by the gateway and the services, 60 s by default) carrying the
//! verified identity, in [`X_MICROKIT_IDENTITY`]; services verify it with the same secret. A
//! client sending the header itself, through the gateway or straight to a service, cannot sign
//! it: through the gateway its copies are removed first, and at a service an unsigned or
//! tampered one is 401.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::identity::{Identity, Scheme};
use super::jwt::{JwtKeys, JwtVerifier};

/// The header that carries the relayed identity from the gateway to a service.
pub const X_MICROKIT_IDENTITY: HeaderName = HeaderName::from_static("x-microkit-identity");

const ISSUER: &str = "microkit-gateway";
const AUDIENCE: &str = "microkit-services";
/// The claim that keeps the scheme the caller used at the edge.
const SCHEME_CLAIM: &str = "mk_scheme";
/// How long a relayed identity is good for: one request's trip through the services.
const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// Signs verified identities at the gateway and verifies them at the services. Both sides are
/// built from the same secret (at least 32 random bytes).
///
/// ```
/// use microkit::auth::{Authenticate, IdentityRelay};
/// use microkit::client::ServiceClient;
/// use microkit::discovery::MemoryRegistry;
/// use microkit::gateway::Gateway;
///
/// let relay = IdentityRelay::new(b"a secret shared by the gateway and services");
/// // At the gateway: relay whoever the edge layer verified.
/// let edge = Gateway::new(ServiceClient::new(MemoryRegistry::new()))
///     .route("/cart/{id}", "cart")
///     .on_forward(relay.forward_hook());
/// // At a service: trust what the gateway relayed.
/// let layer = Authenticate::new().trust_relay(relay);
/// ```
#[derive(Clone)]
pub struct IdentityRelay {
    signing: Arc<EncodingKey>,
    verifier: JwtVerifier,
    ttl: Duration,
}

impl std::fmt::Debug for IdentityRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityRelay")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl IdentityRelay {
    /// A relay signing and verifying with `secret`.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        Self {
            signing: Arc::new(EncodingKey::from_secret(secret)),
            verifier: JwtVerifier::new(JwtKeys::hmac(secret))
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .leeway(Duration::from_secs(5)),
            ttl: DEFAULT_TTL,
        }
    }

    /// How long a relayed identity stays valid (default 60 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Removes every copy of [`X_MICROKIT_IDENTITY`] from `headers`, then adds a freshly
    /// signed one for `identity`, if any.
    pub fn relay(&self, headers: &mut HeaderMap, identity: Option<&Identity>) {
        headers.remove(X_MICROKIT_IDENTITY);
        let Some(identity) = identity else { return };
        let mut claims = identity.claims().clone();
        let now = jsonwebtoken::get_current_timestamp();
        let scheme = match identity.scheme() {
            Scheme::Bearer => "bearer",
            Scheme::ApiKey => "api_key",
        };
        for (name, value) in [
            ("sub", json!(identity.subject())),
            ("scope", json!(identity.scopes().join(" "))),
            ("iss", json!(ISSUER)),
            ("aud", json!(AUDIENCE)),
            ("iat", json!(now)),
            ("exp", json!(now + self.ttl.as_secs())),
            (SCHEME_CLAIM, json!(scheme)),
        ] {
            claims.insert(name.to_owned(), value);
        }
        claims.remove("nbf");
        claims.remove("scp");
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing);
        match token.map(HeaderValue::try_from) {
            Ok(Ok(value)) => {
                headers.insert(X_MICROKIT_IDENTITY, value);
            }
            _ => tracing::warn!("the verified identity could not be relayed"),
        }
    }

    /// A hook for [`Gateway::on_forward`](crate::gateway::Gateway::on_forward): relays the
    /// identity the gateway's [`Authenticate`](super::Authenticate) layer verified.
    pub fn forward_hook(&self) -> impl Fn(&mut Parts) + Clone + Send + Sync + 'static {
        let relay = self.clone();
        move |parts: &mut Parts| {
            let identity = parts.extensions.get::<Identity>().cloned();
            relay.relay(&mut parts.headers, identity.as_ref());
        }
    }

    /// The identity a relayed token stands for.
    pub(crate) async fn verify(&self, token: &str) -> Result<Identity, String> {
        let relayed = self.verifier.verify(token).await?;
        let scheme = match relayed.claim(SCHEME_CLAIM).and_then(Value::as_str) {
            Some("api_key") => Scheme::ApiKey,
            _ => Scheme::Bearer,
        };
        let mut claims = relayed.claims().clone();
        for internal in ["iss", "aud", "iat", "exp", SCHEME_CLAIM] {
            claims.remove(internal);
        }
        Ok(Identity::new(
            scheme,
            relayed.subject(),
            relayed.scopes().iter().cloned(),
            claims,
        ))
    }
}
