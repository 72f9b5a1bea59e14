//! [`Reply`]: an answer that can be kept under a key, and kept answers turned back into
//! responses.

use bytes::Bytes;
use http::header::{HeaderName, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;

use super::REPLAYED_HEADER;
use crate::resource::store::{KeyRecord, StoreError};
use crate::{Body, Response};

/// The headers of an answer kept under a key: what describes the body and the resource a
/// write made. Others (`Date`, connection and tracing headers) belong to one transmission.
pub(crate) const KEPT_HEADERS: [HeaderName; 6] = [
    CONTENT_TYPE,
    http::header::LOCATION,
    http::header::ETAG,
    http::header::LINK,
    http::header::CONTENT_LOCATION,
    http::header::LAST_MODIFIED,
];

/// An answer made of bytes, that a [`Claim`](super::Claim) can keep under a key and replay.
///
/// ```
/// use http::StatusCode;
/// use microkit::idempotency::Reply;
///
/// let reply = Reply::json(StatusCode::CREATED, &serde_json::json!({"id": 7}))
///     .unwrap()
///     .with_header(http::header::LOCATION, http::HeaderValue::from_static("/invoices/7"));
/// assert_eq!(reply.status(), StatusCode::CREATED);
/// ```
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    /// An answer with `status` and `body`, without headers.
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// A JSON answer (`Content-Type: application/json`).
    pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Result<Self, StoreError> {
        let body = serde_json::to_vec(value).map_err(StoreError::backend)?;
        Ok(Self::new(status, body)
            .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json")))
    }

    /// Adds a header (replacing one of the same name).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer as a response.
    pub fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }

    /// The record to keep under a key.
    pub(crate) fn to_record(&self, fingerprint: String, expires_at: i64) -> KeyRecord {
        KeyRecord {
            fingerprint,
            status: self.status.as_u16(),
            headers: self
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect(),
            body: self.body.clone(),
            expires_at,
        }
    }
}

/// A kept answer as a response; marked as a replay when it is one.
pub(crate) fn from_record(record: &KeyRecord, replayed: bool) -> Response {
    let mut response = Response::new(Body::from(record.body.clone()));
    *response.status_mut() = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in &record.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    if replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}
