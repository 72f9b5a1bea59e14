//! A JWKS document (RFC 7517) held in memory: read from a file or fetched from a URL, fetched
//! again when a token names a key id the copy lacks (at most once per refetch interval) and
//! when the copy is old. A fetch that fails keeps the keys already held, so a flaky identity
//! provider never locks everyone out; rotation needs only the new key published first.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use tokio::time::Instant;

use super::jwks_fetch::{JwksUrl, FETCH_TIMEOUT};
use super::jwt::VerifyingKey;
use crate::BoxError;
/// How old a copy may grow before the next token refreshes it (10 min).
const MAX_AGE: Duration = Duration::from_secs(600);
/// The default of [`JwtKeys::refetch_interval`](super::JwtKeys::refetch_interval).
const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Location {
    File(PathBuf),
    Url(JwksUrl),
}

#[derive(Debug)]
pub(crate) struct JwksCache {
    location: Location,
    held: Mutex<Held>,
    /// One fetch at a time; requests arriving meanwhile wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Held {
    keys: Arc<[VerifyingKey]>,
    fetched: Option<Instant>,
    refetch_interval: Duration,
}

impl JwksCache {
    fn new(location: Location) -> Self {
        Self {
            location,
            held: Mutex::new(Held {
                keys: Arc::from([]),
                fetched: None,
                refetch_interval: DEFAULT_REFETCH_INTERVAL,
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// A cache of the document in `path`, read now so that a wrong path fails at start-up.
    pub(crate) fn file(path: PathBuf) -> Result<Self, BoxError> {
        let document = std::fs::read(&path)
            .map_err(|err| format!("reading the JWKS file {}: {err}", path.display()))?;
        let keys = parse(&document)?;
        let cache = Self::new(Location::File(path));
        cache.store(keys);
        Ok(cache)
    }

    /// A cache of the document at `url` (`http`, or `https` checked against the operating
    /// system's certificate authorities), fetched when first needed.
    pub(crate) fn url(url: &str) -> Result<Self, BoxError> {
        Ok(Self::new(Location::Url(JwksUrl::new(url)?)))
    }

    /// A cache of the document at the `https` URL `url`, whose certificate must chain to
    /// `tls`'s certificate authorities.
    #[cfg(feature = "tls")]
    pub(crate) fn url_with_tls(url: &str, tls: crate::client::ClientTls) -> Result<Self, BoxError> {
        Ok(Self::new(Location::Url(JwksUrl::with_tls(url, tls)?)))
    }

    pub(crate) fn set_refetch_interval(&self, interval: Duration) {
        self.held
            .lock()
            .expect("jwks lock poisoned")
            .refetch_interval = interval;
    }

    fn store(&self, keys: Vec<VerifyingKey>) {
        let mut held = self.held.lock().expect("jwks lock poisoned");
        held.keys = keys.into();
        held.fetched = Some(Instant::now());
    }

    /// The keys held, fetched first if there are none yet or the copy is old.
    pub(crate) async fn keys(&self) -> Arc<[VerifyingKey]> {
        let (keys, stale) = {
            let held = self.held.lock().expect("jwks lock poisoned");
            let stale = held.fetched.is_none_or(|at| at.elapsed() >= MAX_AGE);
            (held.keys.clone(), stale)
        };
        if stale {
            return self
                .fetch(|held| held.fetched.is_none_or(|at| at.elapsed() >= MAX_AGE))
                .await;
        }
        keys
    }

    /// The keys after fetching again because a token named `kid`, unless a fetch happened
    /// within the refetch interval.
    pub(crate) async fn refetch_for(&self, kid: &str) -> Arc<[VerifyingKey]> {
        tracing::debug!(
            kid,
            "a token names an unknown key id; fetching the JWKS again"
        );
        self.fetch(|held| {
            held.fetched
                .is_none_or(|at| at.elapsed() >= held.refetch_interval)
        })
        .await
    }

    /// Fetches when `due` says so (checked again once this task holds the fetch lock, so
    /// that requests waiting on one fetch do not each fetch again).
    async fn fetch(&self, due: impl Fn(&Held) -> bool) -> Arc<[VerifyingKey]> {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let held = self.held.lock().expect("jwks lock poisoned");
            if !due(&held) {
                return held.keys.clone();
            }
        }
        match self.load().await {
            Ok(keys) => self.store(keys),
            Err(err) => {
                tracing::warn!(error = %err, "fetching the JWKS failed; keeping the keys held");
                // Count the failure as a fetch, so a dead provider is not asked per request.
                self.held.lock().expect("jwks lock poisoned").fetched = Some(Instant::now());
            }
        }
        self.held.lock().expect("jwks lock poisoned").keys.clone()
    }

    async fn load(&self) -> Result<Vec<VerifyingKey>, BoxError> {
        let document = match &self.location {
            Location::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || std::fs::read(path)).await??
            }
            Location::Url(url) => tokio::time::timeout(FETCH_TIMEOUT, url.get())
                .await
                .map_err(|_| "the JWKS fetch timed out")??,
        };
        parse(&document)
    }
}

/// The verifying keys of a document; keys this crate cannot use (an unknown `kty`, an
/// encryption key) are skipped rather than failing the whole set.
fn parse(document: &[u8]) -> Result<Vec<VerifyingKey>, BoxError> {
    let value: Value = serde_json::from_slice(document)?;
    let Some(Value::Array(entries)) = value.get("keys") else {
        return Err("a JWKS document needs a `keys` array".into());
    };
    Ok(entries
        .iter()
        .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
        .filter_map(|jwk| VerifyingKey::from_jwk(&jwk))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_keys_are_skipped() {
        let document = br#"{"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "XYZ", "kid": "unknown"},
            {"kty": "oct", "kid": "e", "use": "enc", "k": "c2VjcmV0"},
            {"kty": "oct", "kid": "mismatch", "alg": "RS256", "k": "c2VjcmV0"}
        ]}"#;
        let keys = parse(document).unwrap();
        let kids: Vec<_> = keys.iter().filter_map(|key| key.kid.as_deref()).collect();
        assert_eq!(kids, ["h"]);
        assert!(parse(b"{}").is_err());
    }
}
