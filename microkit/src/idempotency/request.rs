//! What a request says about its key: the key itself, its scope and the request's fingerprint.

use std::fmt::Write as _;

use http::header::{HeaderName, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method};
use sha2::{Digest, Sha256};

use super::IdempotencyConfig;
use crate::request_context::RequestContext;
use crate::Problem;

/// `Idempotency-Key`: the request header carrying the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// `Idempotent-Replayed: true`: on an answer that was kept and is replayed, not produced
/// anew (Stripe's name for it).
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Whether requests with this method may carry a key: `POST` and `PATCH`, the methods that are
/// not idempotent by themselves.
pub(crate) fn honours(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PATCH
}

/// The request's key, if it has one: 400 when there are several, or one that is empty, not
/// visible ASCII, or longer than the limit. A structured-field string (`"abc"`) is the same
/// key as its content (`abc`).
pub(crate) fn key(
    headers: &HeaderMap,
    config: &IdempotencyConfig,
) -> Result<Option<String>, Problem> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Problem::bad_request(
            "a request carries at most one Idempotency-Key header",
        ));
    }
    let limit = config.key_len_limit();
    let text = value.to_str().unwrap_or_default().trim();
    let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner,
        None => text,
    };
    let visible = text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if text.is_empty() || !visible || text.len() > limit {
        return Err(Problem::bad_request(format!(
            "Idempotency-Key must be 1 to {limit} characters of visible ASCII"
        )));
    }
    Ok(Some(text.to_owned()))
}

/// Where a key is valid: the method and route pattern, and the caller when known.
pub(crate) fn scope(parts: &Parts) -> String {
    let route = RequestContext::route(&parts.extensions)
        .map_or_else(|| parts.uri.path(), |matched| &matched.pattern);
    let method = parts.method.as_str();
    let mut scope = String::with_capacity(method.len() + route.len() + 1);
    scope.push_str(method);
    scope.push(' ');
    scope.push_str(route);
    if let Some(caller) = caller(parts) {
        let _ = write!(scope, " caller={caller}");
    }
    scope
}

#[cfg(feature = "auth")]
fn caller(parts: &Parts) -> Option<&str> {
    parts
        .extensions
        .get::<crate::auth::Identity>()
        .map(crate::auth::Identity::subject)
}

#[cfg(not(feature = "auth"))]
fn caller(_: &Parts) -> Option<&str> {
    None
}

/// The fingerprint of a request: the hex SHA-256 of its method, path and query, and body. The
/// same key with another fingerprint is another request (422).
pub fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(path_and_query.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    let digest = hasher.finalize();
    // Hex by table: formatting each byte through `core::fmt` cost more than the digest.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(2 * digest.len());
    for byte in digest.iter() {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// The fingerprint of a request from its parts and body.
pub(crate) fn fingerprint_of(parts: &Parts, body: &[u8]) -> String {
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    fingerprint(&parts.method, target, body)
}

/// 409: the key's first request is still running.
pub(crate) fn still_running() -> Problem {
    Problem::conflict("a request with this Idempotency-Key is still being processed")
        .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
}

/// 422: the key was used for another request.
pub(crate) fn reused() -> Problem {
    Problem::unprocessable(
        "this Idempotency-Key was used for a different request (method, path or body)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(values: &[&str]) -> Parts {
        let mut builder = http::Request::builder().method("POST").uri("/x");
        for value in values {
            builder = builder.header(IDEMPOTENCY_KEY, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn reads_and_checks_keys() {
        let config = IdempotencyConfig::default().max_key_len(8);
        assert_eq!(key(&parts(&[]).headers, &config).unwrap(), None);
        assert_eq!(
            key(&parts(&["abc"]).headers, &config).unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(
            key(&parts(&["\"abc\""]).headers, &config)
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            key(&parts(&["12345678"]).headers, &config)
                .unwrap()
                .as_deref(),
            Some("12345678")
        );
        for bad in [&["123456789"][..], &[""], &["\"\""], &["a", "b"]] {
            assert_eq!(
                key(&parts(bad).headers, &config).unwrap_err().status(),
                400,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let a = fingerprint(&Method::POST, "/a", b"{}");
        // SHA-256 of "POST\0/a\0{}" in lowercase hex: kept records compare with it.
        assert_eq!(
            a,
            "091baf23e820cfe16ce56889330dab8fb736acdf786bec942266a9bce642fb1c"
        );
        assert_eq!(a, fingerprint(&Method::POST, "/a", b"{}"));
        assert_ne!(a, fingerprint(&Method::PATCH, "/a", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/b", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/a", b"{ }"));
        assert_ne!(
            fingerprint(&Method::POST, "/a", b"b"),
            fingerprint(&Method::POST, "/ab", b"")
        );
    }
}
