//! Keyed requests: a `POST` or `PATCH` carrying an `Idempotency-Key` is retried as an
//! idempotent request is (after a 502/503/504, a timeout or a broken connection, within the
//! same budget and backoff), always with the same key, so that the server runs it once.
//!
//! ```no_run
//! use microkit::client::{new_idempotency_key, IdempotencyKeyExt, ServiceClient};
//! use microkit::discovery::MemoryRegistry;
//! use microkit::{Body, Request};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ServiceClient::new(MemoryRegistry::new());
//! let request = Request::builder()
//!     .method("POST")
//!     .uri("/invoices/")
//!     .header("content-type", "application/json")
//!     .idempotency_key(new_idempotency_key())
//!     .body(Body::from(r#"{"amount_cents": 1250}"#))?;
//! let response = client.send("payments", request).await?;
//! # Ok(()) }
//! ```

use http::{HeaderMap, HeaderValue, Method};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{ClientError, ServiceClient};
pub use crate::idempotency::IDEMPOTENCY_KEY;

/// A fresh key: a random (version 4) UUID, unique enough that two requests never share one
/// by chance.
pub fn new_idempotency_key() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// `.idempotency_key(..)` on request builders: sets the `Idempotency-Key` header.
pub trait IdempotencyKeyExt {
    /// Sets the request's `Idempotency-Key` (an invalid header value makes the builder fail,
    /// as `.header(..)` does).
    fn idempotency_key(self, key: impl AsRef<str>) -> Self;
}

impl IdempotencyKeyExt for http::request::Builder {
    fn idempotency_key(self, key: impl AsRef<str>) -> Self {
        self.header(IDEMPOTENCY_KEY, key.as_ref())
    }
}

/// Whether a request may be sent again after it reached a server: its method is idempotent,
/// or it is a `POST` or `PATCH` whose key makes the server run it once.
pub(super) fn is_retry_safe(method: &Method, headers: &HeaderMap) -> bool {
    super::is_idempotent(method)
        || ((*method == Method::POST || *method == Method::PATCH)
            && headers.contains_key(IDEMPOTENCY_KEY))
}

/// A key as a header value; one that cannot be (a control character) fails the call.
fn key_header(service: &str, key: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(key).map_err(|err| ClientError::Transport {
        service: service.to_owned(),
        source: err.into(),
    })
}

impl ServiceClient {
    /// `POST`s JSON with an `Idempotency-Key` and parses the JSON answer: retried like an
    /// idempotent request, with the same key on every attempt.
    pub async fn post_json_with_key<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        body: &B,
        key: &str,
    ) -> Result<T, ClientError> {
        let key = key_header(service, key)?;
        self.call_json_with(Method::POST, service, path, Some(body), Some(key))
            .await
    }

    /// `PATCH`es JSON with an `Idempotency-Key` and parses the JSON answer: retried like an
    /// idempotent request, with the same key on every attempt.
    pub async fn patch_json_with_key<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        body: &B,
        key: &str,
    ) -> Result<T, ClientError> {
        let key = key_header(service, key)?;
        self.call_json_with(Method::PATCH, service, path, Some(body), Some(key))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_post_or_patch_is_retry_safe() {
        let mut keyed = HeaderMap::new();
        keyed.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("k"));
        let none = HeaderMap::new();
        assert!(is_retry_safe(&Method::POST, &keyed));
        assert!(is_retry_safe(&Method::PATCH, &keyed));
        assert!(!is_retry_safe(&Method::POST, &none));
        assert!(!is_retry_safe(&Method::PATCH, &none));
        assert!(is_retry_safe(&Method::PUT, &none));
        assert_ne!(new_idempotency_key(), new_idempotency_key());
    }
}
