//! Turning handler return values into responses.
//!
//! A handler may return anything that implements [`IntoResponse`]: a status code, a string,
//! bytes, [`Json`](crate::Json), a [`Problem`], `()`, a `Result` of two such
//! types, or a tuple of a status code and/or header parts followed by a body:
//!
//! ```
//! use microkit::response::IntoResponse;
//! use http::{header, StatusCode};
//!
//! let response = (
//!     StatusCode::CREATED,
//!     [(header::LOCATION, "/product/7")],
//!     "created",
//! )
//!     .into_response();
//! assert_eq!(response.status(), StatusCode::CREATED);
//! assert_eq!(response.headers()[header::LOCATION], "/product/7");
//! ```

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};

use crate::{Body, Problem, Response};

/// Something a handler can return.
pub trait IntoResponse {
    /// Builds the response.
    fn into_response(self) -> Response;
}

/// Something that adds headers to a response, placed before the body in a response tuple.
pub trait IntoResponseParts {
    /// Adds the headers; an invalid name or value becomes an error response.
    fn into_response_parts(self, headers: &mut HeaderMap) -> Result<(), Problem>;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for http::response::Parts {
    fn into_response(self) -> Response {
        Response::from_parts(self, Body::empty())
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self;
        response
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Body::empty())
    }
}

impl IntoResponse for std::convert::Infallible {
    fn into_response(self) -> Response {
        match self {}
    }
}

fn with_content_type(body: Body, content_type: HeaderValue) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

// Constants, so that the values are checked once at compile time rather than per response.
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), TEXT)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), TEXT)
    }
}

impl IntoResponse for Cow<'static, str> {
    fn into_response(self) -> Response {
        match self {
            Cow::Borrowed(text) => text.into_response(),
            Cow::Owned(text) => text.into_response(),
        }
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), OCTETS)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), OCTETS)
    }
}

impl IntoResponse for &'static [u8] {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), OCTETS)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(err) => err.into_response(),
        }
    }
}

impl IntoResponseParts for HeaderMap {
    fn into_response_parts(self, headers: &mut HeaderMap) -> Result<(), Problem> {
        headers.extend(self);
        Ok(())
    }
}

impl<K, V, const N: usize> IntoResponseParts for [(K, V); N]
where
    K: TryInto<HeaderName>,
    K::Error: std::fmt::Display,
    V: TryInto<HeaderValue>,
    V::Error: std::fmt::Display,
{
    fn into_response_parts(self, headers: &mut HeaderMap) -> Result<(), Problem> {
        for (name, value) in self {
            let name = name
                .try_into()
                .map_err(|err| Problem::internal(format!("invalid response header name: {err}")))?;
            let value = value.try_into().map_err(|err| {
                Problem::internal(format!("invalid response header value: {err}"))
            })?;
            headers.insert(name, value);
        }
        Ok(())
    }
}

impl<R: IntoResponse> IntoResponse for (StatusCode, R) {
    fn into_response(self) -> Response {
        let (status, body) = self;
        let mut response = body.into_response();
        *response.status_mut() = status;
        response
    }
}

macro_rules! impl_into_response_with_parts {
    ($($part:ident),+) => {
        #[allow(non_snake_case)]
        impl<$($part: IntoResponseParts,)+ R: IntoResponse> IntoResponse for ($($part,)+ R) {
            fn into_response(self) -> Response {
                let ($($part,)+ body) = self;
                let mut response = body.into_response();
                $(
                    if let Err(problem) = $part.into_response_parts(response.headers_mut()) {
                        return problem.into_response();
                    }
                )+
                response
            }
        }

        #[allow(non_snake_case)]
        impl<$($part: IntoResponseParts,)+ R: IntoResponse> IntoResponse
            for (StatusCode, $($part,)+ R)
        {
            fn into_response(self) -> Response {
                let (status, $($part,)+ body) = self;
                let mut response = body.into_response();
                $(
                    if let Err(problem) = $part.into_response_parts(response.headers_mut()) {
                        return problem.into_response();
                    }
                )+
                *response.status_mut() = status;
                response
            }
        }
    };
}

impl_into_response_with_parts!(P1);
impl_into_response_with_parts!(P1, P2);
impl_into_response_with_parts!(P1, P2, P3);

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::LOCATION;

    #[test]
    fn strings_are_text_and_bytes_are_octets() {
        assert_eq!(
            "hi".into_response().headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            Bytes::from_static(b"x").into_response().headers()[CONTENT_TYPE],
            OCTETS
        );
    }

    #[test]
    fn invalid_header_parts_become_a_500_problem() {
        let response = (StatusCode::CREATED, [("bad header", "x")], "body").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn status_headers_and_body_compose() {
        let response = (StatusCode::ACCEPTED, [(LOCATION, "/a")], "queued").into_response();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()[LOCATION], "/a");
    }

    #[test]
    fn results_pick_their_side() {
        let ok: Result<&str, Problem> = Ok("yes");
        assert_eq!(ok.into_response().status(), StatusCode::OK);
        let err: Result<&str, Problem> = Err(Problem::conflict("no"));
        assert_eq!(err.into_response().status(), StatusCode::CONFLICT);
    }
}
