//! Serving a document: `GET /openapi.json`, and `GET /docs` where the `docs` feature is on.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::HeaderValue;
use serde_json::Value;

use crate::response::IntoResponse;
use crate::router::get;
use crate::{Response, Router};

/// The path every service serves its document at.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// A router serving `document` at `GET /openapi.json` and, with the `docs` feature, the
/// viewer at `GET /docs`; these routes stay out of the document themselves.
pub fn document_router(document: &Value) -> Router {
    let title = document
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("API")
        .to_owned();
    let body = Bytes::from(serde_json::to_vec(document).expect("a JSON value serializes"));
    let router = Router::new().route(
        OPENAPI_PATH,
        get(move || {
            let body = body.clone();
            async move { json_document(body) }
        })
        .undocumented(),
    );
    with_viewer(router, &title)
}

/// Adds the viewer's routes to `router` (with the `docs` feature; nothing without).
pub fn with_viewer(router: Router, title: &str) -> Router {
    #[cfg(feature = "docs")]
    let router = router.merge(super::viewer::router(title));
    #[cfg(not(feature = "docs"))]
    let _ = title;
    router
}

/// A response holding a serialized document.
pub fn json_document(body: Bytes) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
