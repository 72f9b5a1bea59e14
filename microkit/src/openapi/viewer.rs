//! `GET /docs`: the document rendered in a browser by Redoc, whose script ships inside the
//! crate (see `assets/README.md` for its version and license). Nothing is fetched from the
//! internet: the page loads the script and `/openapi.json` from the server that serves it.

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::response::IntoResponse;
use crate::router::get;
use crate::{Problem, Response, Router};

/// Redoc 2.5.2's standalone bundle, gzip-compressed (287 KB; 940 KB plain).
static REDOC_GZ: &[u8] = include_bytes!("assets/redoc.standalone.js.gz");

/// Where the page finds the script, relative to `/docs`.
pub(super) const VIEWER_SCRIPT_PATH: &str = "/docs/redoc.standalone.js";

/// The routes of the viewer: `GET /docs` and its script, left out of the document.
pub(super) fn router(title: &str) -> Router {
    let page = Bytes::from(page(title));
    Router::new()
        .route(
            "/docs",
            get(move || {
                let page = page.clone();
                async move { html(page) }
            })
            .undocumented(),
        )
        .route(VIEWER_SCRIPT_PATH, get(script).undocumented())
}

fn html(page: Bytes) -> Response {
    let mut response = page.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

async fn script(headers: HeaderMap) -> Response {
    let accepts_gzip = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        });
    if !accepts_gzip {
        // Every browser accepts gzip; shipping the script only compressed keeps the crate
        // small and needs no decompressor at run time.
        return Problem::new(StatusCode::NOT_ACCEPTABLE)
            .with_detail("the viewer's script is served gzip-compressed only")
            .into_response();
    }
    let mut response = Bytes::from_static(REDOC_GZ).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

/// The page: Redoc reading `/openapi.json` from the same origin.
fn page(title: &str) -> String {
    let title = escape_html(title);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="/openapi.json" hide-download-button="false" native-scrollbars="true"></redoc>
<script src="{VIEWER_SCRIPT_PATH}"></script>
</body>
</html>
"#
    )
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_the_shipped_script_and_the_document() {
        let page = page("<shop>");
        assert!(page.contains("<title>&lt;shop&gt; API</title>"));
        assert!(page.contains(r#"spec-url="/openapi.json""#));
        assert!(page.contains(VIEWER_SCRIPT_PATH));
        assert!(
            !page.contains("https://"),
            "nothing comes from the internet"
        );
    }

    #[test]
    fn the_script_is_gzip() {
        assert_eq!(&REDOC_GZ[..2], &[0x1f, 0x8b]);
    }
}
