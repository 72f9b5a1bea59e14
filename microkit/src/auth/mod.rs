//! Who is calling: verified bearer JWTs and API keys, checked by one tower layer in front of
//! the handlers, and handed to them as an [`Identity`] extractor. Behind the `auth` feature.
//!
//! ```
//! use std::time::Duration;
//! use microkit::auth::{ApiKeys, Authenticate, Identity, JwtKeys, JwtVerifier};
//! use microkit::router::{get, post, Router};
//!
//! async fn me(identity: Identity) -> String {
//!     format!("hello, {}", identity.subject())
//! }
//!
//! let jwt = JwtVerifier::new(JwtKeys::hmac(b"a secret of at least 32 bytes, really"))
//!     .issuer("https://login.example")
//!     .audience("shop")
//!     .leeway(Duration::from_secs(30));
//! let keys = ApiKeys::new().key(&ApiKeys::hash("mk_live_0123456789"), "billing-job", ["invoices:write"]);
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/invoices", post(|| async { "billed" }))
//!     .layer(Authenticate::new().jwt(jwt).api_keys(keys));
//! ```
//!
//! The rules, as RFC 6750 and RFC 8725 (JWT best current practices) set them:
//! - A request without credentials is 401 with `WWW-Authenticate: Bearer realm="..."`, unless
//!   the layer is [`optional`](Authenticate::optional): then it passes with no [`Identity`].
//! - Credentials that fail verification are always 401 (`error="invalid_token"`), never
//!   "anonymous": a bad token is not the same as no token.
//! - A valid identity without a required scope is 403 (`error="insufficient_scope"`).
//! - The algorithm is taken from the key, never from the token: each key allows one family
//!   (HMAC, RSA, EC or EdDSA), so `alg: none` and HS256-signed-with-the-RSA-public-key
//!   (algorithm confusion) are refused before any signature is checked.
//! - Every answer is a problem+json body; nothing the handler would have done happens.
//!
//! Behind a gateway, verify at the edge and relay: the gateway signs the verified identity
//! for the services with an [`IdentityRelay`], and the services
//! [`trust_relay`](Authenticate::trust_relay) it (see the relay's docs).

mod api_key;
mod caller;
mod challenge;
mod identity;
mod jwks;
mod jwks_fetch;
mod jwt;
mod layer;
mod relay;
mod requirement;
mod service;

pub use self::api_key::ApiKeys;
pub(crate) use self::caller::CallerTokens;
pub use self::challenge::AuthError;
pub use self::identity::{Identity, Scheme};
pub use self::jwt::{JwtKeys, JwtVerifier};
pub use self::layer::{Authenticate, AuthenticateService, X_API_KEY};
pub use self::relay::{IdentityRelay, X_MICROKIT_IDENTITY};
pub use self::requirement::Requirement;
pub use self::service::{RequireService, RequireServiceService, ServiceTokens, X_MICROKIT_SERVICE};
