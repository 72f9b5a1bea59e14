//! Bearer JWT verification on the `jsonwebtoken` crate: which keys, which claims, what leeway.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::identity::Identity;
use super::jwks::JwksCache;
use crate::BoxError;

/// The longest token accepted (8 KiB). Real tokens are well under 2 KiB; a limit keeps a
/// client from making the server parse and hash megabytes per request.
pub(crate) const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The default clock skew tolerated on `exp` and `nbf` (30 s): enough for machines synced by
/// NTP, short enough that an expired token stops working promptly.
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// A family of signature algorithms. A key belongs to exactly one, and only tokens whose
/// `alg` is of that family are checked with it: this is what defeats algorithm confusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Family {
    fn of(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Self::Hmac,
            Algorithm::ES256 | Algorithm::ES384 => Self::Ec,
            Algorithm::EdDSA => Self::Ed,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Self::Rsa,
        }
    }
}

/// One key that can verify signatures.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    key: DecodingKey,
    family: Family,
    /// The one algorithm the key is for, when its JWK says so (`alg`).
    algorithm: Option<Algorithm>,
}

impl VerifyingKey {
    fn accepts(&self, algorithm: Algorithm) -> bool {
        Family::of(algorithm) == self.family && self.algorithm.is_none_or(|only| only == algorithm)
    }

    /// The key of a JWK, or `None` for a key that cannot verify signatures.
    pub(crate) fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature)
        {
            return None;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Family::Rsa,
            AlgorithmParameters::EllipticCurve(_) => Family::Ec,
            AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
            AlgorithmParameters::OctetKey(_) => Family::Hmac,
        };
        let algorithm = match jwk.common.key_algorithm {
            Some(declared) => Some(declared.to_string().parse::<Algorithm>().ok()?),
            None => None,
        };
        if algorithm.is_some_and(|algorithm| Family::of(algorithm) != family) {
            return None;
        }
        Some(Self {
            kid: jwk.common.key_id.clone(),
            key: DecodingKey::from_jwk(jwk).ok()?,
            family,
            algorithm,
        })
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// Where the keys that verify tokens come from: fixed keys, or a JWKS document (a file or a
/// URL) that is cached and fetched again when a token names a key it does not hold.
#[derive(Debug, Clone)]
pub struct JwtKeys {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Fixed(Vec<VerifyingKey>),
    Jwks(Arc<JwksCache>),
}

impl JwtKeys {
    fn fixed(key: DecodingKey, family: Family) -> Self {
        Self {
            source: Source::Fixed(vec![VerifyingKey {
                kid: None,
                key,
                family,
                algorithm: None,
            }]),
        }
    }

    /// A shared secret for HS256, HS384 and HS512. Use at least 32 random bytes.
    pub fn hmac(secret: impl AsRef<[u8]>) -> Self {
        Self::fixed(DecodingKey::from_secret(secret.as_ref()), Family::Hmac)
    }

    /// An RSA public key in PEM (`-----BEGIN PUBLIC KEY-----`), for RS* and PS*.
    pub fn rsa_pem(pem: impl AsRef<[u8]>) -> Result<Self, BoxError> {
        Ok(Self::fixed(
            DecodingKey::from_rsa_pem(pem.as_ref())?,
            Family::Rsa,
        ))
    }

    /// An EC public key in PEM, for ES256 (P-256) and ES384 (P-384).
    pub fn ec_pem(pem: impl AsRef<[u8]>) -> Result<Self, BoxError> {
        Ok(Self::fixed(
            DecodingKey::from_ec_pem(pem.as_ref())?,
            Family::Ec,
        ))
    }

    /// An Ed25519 public key in PEM, for EdDSA.
    pub fn ed_pem(pem: impl AsRef<[u8]>) -> Result<Self, BoxError> {
        Ok(Self::fixed(
            DecodingKey::from_ed_pem(pem.as_ref())?,
            Family::Ed,
        ))
    }

    /// A JWKS document in a file, read now and again whenever a token names a key id it does
    /// not hold (rotation: publish the new key in the file before signing with it).
    pub fn jwks_file(path: impl Into<std::path::PathBuf>) -> Result<Self, BoxError> {
        Ok(Self {
            source: Source::Jwks(Arc::new(JwksCache::file(path.into())?)),
        })
    }

    /// A JWKS document served at a URL (the identity provider's `jwks_uri`), fetched on first
    /// use and again when a token names an unknown key id or the copy is older than ten
    /// minutes. A failed fetch keeps the keys already held. An `https` URL (feature `tls`) is
    /// checked against the operating system's certificate authorities (see
    /// [`jwks_url_with_tls`](Self::jwks_url_with_tls) for others); a system without any is an
    /// error here. A fetch takes at most 5 s and 1 MiB, and does not follow redirects.
    pub fn jwks_url(url: &str) -> Result<Self, BoxError> {
        Ok(Self {
            source: Source::Jwks(Arc::new(JwksCache::url(url)?)),
        })
    }

    /// A JWKS document served at the `https` URL `url`, as [`jwks_url`](Self::jwks_url), whose
    /// server certificate must chain to `tls`'s certificate authorities (an identity provider
    /// inside the system, with its own CA); `tls`'s client certificate, if any, is presented.
    /// An `http` URL is refused: the keys would travel unprotected.
    ///
    /// ```no_run
    /// # fn run() -> Result<(), microkit::BoxError> {
    /// use microkit::auth::JwtKeys;
    /// use microkit::client::ClientTls;
    ///
    /// let keys = JwtKeys::jwks_url_with_tls(
    ///     "https://login.internal:8443/.well-known/jwks.json",
    ///     ClientTls::trusting("internal-ca.pem")?,
    /// )?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn jwks_url_with_tls(url: &str, tls: crate::client::ClientTls) -> Result<Self, BoxError> {
        Ok(Self {
            source: Source::Jwks(Arc::new(JwksCache::url_with_tls(url, tls)?)),
        })
    }

    /// Names the key (its `kid`), for fixed keys; a token that names a key id is then
    /// checked only against the key of that id.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        if let Source::Fixed(keys) = &mut self.source {
            if let Some(last) = keys.last_mut() {
                last.kid = Some(kid.into());
            }
        }
        self
    }

    /// Adds the fixed keys of `other`: several keys at once, as during a rotation.
    pub fn and(mut self, other: JwtKeys) -> Self {
        match (&mut self.source, other.source) {
            (Source::Fixed(keys), Source::Fixed(more)) => keys.extend(more),
            (_, source) => self.source = source,
        }
        self
    }

    /// Sets how soon an unknown key id may trigger another JWKS fetch (default 30 s): a
    /// client sending made-up key ids must not make the server fetch on every request.
    pub fn refetch_interval(self, interval: Duration) -> Self {
        if let Source::Jwks(cache) = &self.source {
            cache.set_refetch_interval(interval);
        }
        self
    }

    /// The keys that may verify a token signed with `algorithm` and naming `kid`.
    async fn candidates(&self, kid: Option<&str>, algorithm: Algorithm) -> Vec<VerifyingKey> {
        let pick = |keys: &[VerifyingKey]| -> Vec<VerifyingKey> {
            keys.iter()
                .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
                .filter(|key| key.accepts(algorithm))
                .cloned()
                .collect()
        };
        match &self.source {
            Source::Fixed(keys) => pick(keys),
            Source::Jwks(cache) => {
                let found = pick(&cache.keys().await);
                match kid {
                    Some(kid) if found.is_empty() => pick(&cache.refetch_for(kid).await),
                    _ => found,
                }
            }
        }
    }
}

/// Verifies bearer JWTs: signature, `exp` and `nbf` (with leeway), and `iss` and `aud` when
/// set. Build one and give it to [`Authenticate::jwt`](super::Authenticate::jwt).
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: JwtKeys,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    max_token_bytes: usize,
}

impl JwtVerifier {
    /// A verifier for tokens signed by `keys`. Set the [`issuer`](Self::issuer) and
    /// [`audience`](Self::audience) too: without an audience, a token issued for another
    /// service (with an `aud` claim) is refused, and one without `aud` is accepted.
    pub fn new(keys: JwtKeys) -> Self {
        Self {
            keys,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Accepts tokens whose `iss` is `issuer` (may be called more than once); `iss` becomes
    /// required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` names `audience` (may be called more than once); `aud`
    /// becomes required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The clock skew tolerated on `exp` and `nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest token accepted, in bytes (default 8 KiB).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if !self.issuers.is_empty() {
            validation.set_issuer(&self.issuers);
            required.push("iss");
        }
        if !self.audiences.is_empty() {
            validation.set_audience(&self.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// Verifies `token` and returns who it names, or why it is not valid.
    pub async fn verify(&self, token: &str) -> Result<Identity, String> {
        if token.len() > self.max_token_bytes {
            return Err(format!(
                "the token is longer than {} bytes",
                self.max_token_bytes
            ));
        }
        // `decode_header` refuses `alg: none` and any algorithm it does not know.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| format!("the token's header is not valid: {err}"))?;
        let candidates = self
            .keys
            .candidates(header.kid.as_deref(), header.alg)
            .await;
        if candidates.is_empty() {
            return Err(match header.kid {
                Some(kid) => format!("no key `{kid}` for {:?}", header.alg),
                None => format!("no key for {:?}", header.alg),
            });
        }
        let validation = self.validation(header.alg);
        let mut last_error = String::new();
        for candidate in &candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &candidate.key, &validation) {
                Ok(data) => return Ok(Identity::from_claims(data.claims)),
                Err(err) => last_error = describe(&err),
            }
        }
        Err(last_error)
    }
}

/// A reason a client can act on, without echoing the token.
fn describe(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token is not for this audience".into(),
        ErrorKind::InvalidIssuer => "the token's issuer is not trusted".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not fit the key".into(),
        _ => format!("the token is malformed: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn token(claims: Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[tokio::test]
    async fn a_valid_token_gives_its_subject_and_scopes() {
        let verifier = JwtVerifier::new(JwtKeys::hmac(SECRET)).audience("shop");
        let good = token(
            json!({"sub": "ada", "aud": "shop", "exp": now() + 60, "scope": "cart:write"}),
            SECRET,
        );
        let identity = verifier.verify(&good).await.unwrap();
        assert_eq!(identity.subject(), "ada");
        assert!(identity.has_scope("cart:write"));
    }

    #[tokio::test]
    async fn leeway_tolerates_small_skew_only() {
        let verifier = JwtVerifier::new(JwtKeys::hmac(SECRET)).leeway(Duration::from_secs(30));
        let skewed = token(json!({"sub": "a", "exp": now() - 10}), SECRET);
        assert!(verifier.verify(&skewed).await.is_ok());
        let expired = token(json!({"sub": "a", "exp": now() - 100}), SECRET);
        assert_eq!(
            verifier.verify(&expired).await.unwrap_err(),
            "the token has expired"
        );
        let early = token(
            json!({"sub": "a", "exp": now() + 600, "nbf": now() + 100}),
            SECRET,
        );
        assert!(verifier.verify(&early).await.unwrap_err().contains("nbf"));
    }

    #[tokio::test]
    async fn a_token_over_the_size_limit_is_refused_unparsed() {
        let verifier = JwtVerifier::new(JwtKeys::hmac(SECRET)).max_token_bytes(64);
        let long = token(json!({"sub": "a".repeat(100), "exp": now() + 60}), SECRET);
        assert!(verifier.verify(&long).await.unwrap_err().contains("longer"));
    }

    #[test]
    fn keys_accept_only_their_family() {
        let JwtKeys {
            source: Source::Fixed(keys),
        } = JwtKeys::hmac(SECRET)
        else {
            unreachable!()
        };
        assert!(keys[0].accepts(Algorithm::HS256));
        assert!(!keys[0].accepts(Algorithm::RS256));
        assert!(!keys[0].accepts(Algorithm::EdDSA));
    }
}
