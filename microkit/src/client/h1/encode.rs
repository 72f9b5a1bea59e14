//! Writing a request: its head, straight from [`http::request::Parts`], and the framing of
//! its body (RFC 9112 §6).

use http::header::{
    HeaderName, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, HOST, MAX_FORWARDS, SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING,
};
use http::request::Parts;
use http::HeaderMap;

use super::error::Error;
use super::fields::{self, ContentLength};

/// How the body of a request is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// Chunks, ended by a zero-sized one.
    Chunked,
}

/// What is known of a body before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyHint {
    /// Already at its end: nothing to send.
    Empty,
    /// Exactly this many bytes.
    Exact(u64),
    /// A stream of unknown length.
    Unknown,
}

/// What the head said that matters after it was written.
#[derive(Debug)]
pub(super) struct EncodedHead {
    pub(super) framing: Framing,
    /// The request asked to close the connection after this exchange.
    pub(super) close: bool,
    /// The trailer fields the request declared (`Trailer`), the only ones sent after a
    /// chunked body, as hyper does; usually none.
    pub(super) trailers: Vec<HeaderName>,
}

/// Appends the head of `request` to `buf`: the request line in origin form, the header fields
/// as given, then `lines` (fields the caller wrote as `name: value\r\n` lines, see
/// [`HeaderLines`](crate::client::HeaderLines); never framing fields), and the framing the
/// body needs. On an error nothing is appended.
///
/// A caller's own `Transfer-Encoding` is kept (with `chunked` added last when missing) and
/// its `Content-Length` then dropped; a caller's `Content-Length` is kept and the body held
/// to it; otherwise the body's exact size becomes the `Content-Length`, an unknown one is
/// chunked, and an empty one gets no framing field at all. The version is always HTTP/1.1:
/// a proxy speaks its own version to the next hop (RFC 9110 §6.2).
pub(super) fn write_head(
    buf: &mut Vec<u8>,
    request: &Parts,
    lines: &[u8],
    body: BodyHint,
) -> Result<EncodedHead, Error> {
    // A `2xx` to `CONNECT` turns the connection into a tunnel, which this client does not
    // open: refused before a byte is written, rather than misreading what follows.
    if request.method == http::Method::CONNECT {
        return Err(Error::InvalidRequest("CONNECT (a tunnel) is not supported"));
    }
    let start = buf.len();
    buf.extend_from_slice(request.method.as_str().as_bytes());
    buf.push(b' ');
    match request.uri.path_and_query() {
        Some(path) => buf.extend_from_slice(path.as_str().as_bytes()),
        None => buf.push(b'/'),
    }
    buf.extend_from_slice(b" HTTP/1.1\r\n");

    // One walk over the fields, as this runs for every request: they are written as they
    // come, and what frames the body is noted on the way, its `Content-Length` written
    // after the others once the framing is decided.
    let mut length = ContentLength::default();
    let (mut coded, mut ends_chunked) = (false, false);
    let (mut close, mut declares_trailers) = (false, false);
    for (name, value) in &request.headers {
        if name == CONTENT_LENGTH {
            length.add(value);
            continue;
        }
        if name == TRANSFER_ENCODING {
            coded = true;
            ends_chunked = fields::ends_chunked(value);
        } else if name == CONNECTION {
            close |= fields::has_token(value, b"close");
        } else if name == TRAILER {
            declares_trailers = true;
        }
        write_field(buf, name.as_str().as_bytes(), value.as_bytes());
    }

    buf.extend_from_slice(lines);

    let framing = if coded {
        if !ends_chunked {
            write_field(buf, b"transfer-encoding", b"chunked");
        }
        Framing::Chunked
    } else {
        let Ok(declared) = length.get() else {
            buf.truncate(start);
            return Err(Error::InvalidRequest(
                "its Content-Length is not one number",
            ));
        };
        match (declared, body) {
            (Some(length), _) | (None, BodyHint::Exact(length)) => {
                if body == BodyHint::Empty && length > 0 {
                    buf.truncate(start);
                    return Err(Error::InvalidRequest(
                        "its Content-Length announces a body it does not have",
                    ));
                }
                write_field(
                    buf,
                    b"content-length",
                    itoa::Buffer::new().format(length).as_bytes(),
                );
                Framing::Length(length)
            }
            (None, BodyHint::Empty) => Framing::Length(0),
            (None, BodyHint::Unknown) => {
                write_field(buf, b"transfer-encoding", b"chunked");
                Framing::Chunked
            }
        }
    };
    buf.extend_from_slice(b"\r\n");

    let trailers = if framing == Framing::Chunked && declares_trailers {
        declared_trailers(&request.headers)
    } else {
        Vec::new()
    };
    Ok(EncodedHead {
        framing,
        close,
        trailers,
    })
}

fn write_field(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.extend_from_slice(name);
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Appends the line that opens a chunk of `len` bytes.
pub(super) fn chunk_start(buf: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut rest = len;
    loop {
        at -= 1;
        digits[at] = HEX[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
    buf.extend_from_slice(b"\r\n");
}

/// The end of a chunk's data.
pub(super) const CHUNK_END: &[u8] = b"\r\n";

/// Appends the zero-sized chunk that ends a chunked body, with the declared fields of
/// `trailers`.
pub(super) fn last_chunk(buf: &mut Vec<u8>, trailers: Option<&HeaderMap>, declared: &[HeaderName]) {
    buf.extend_from_slice(b"0\r\n");
    if let Some(trailers) = trailers {
        for name in declared {
            for value in trailers.get_all(name) {
                write_field(buf, name.as_str().as_bytes(), value.as_bytes());
            }
        }
    }
    buf.extend_from_slice(b"\r\n");
}

/// The fields named in `Trailer`, less those that must never be trailers (framing, routing,
/// authentication, controls: RFC 9110 §6.5.1), the list hyper applies.
fn declared_trailers(headers: &HeaderMap) -> Vec<HeaderName> {
    const FORBIDDEN: [HeaderName; 12] = [
        AUTHORIZATION,
        CACHE_CONTROL,
        CONTENT_ENCODING,
        CONTENT_LENGTH,
        CONTENT_RANGE,
        CONTENT_TYPE,
        HOST,
        MAX_FORWARDS,
        SET_COOKIE,
        TRAILER,
        TRANSFER_ENCODING,
        TE,
    ];
    headers
        .get_all(TRAILER)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .filter_map(|name| HeaderName::from_bytes(name.trim_ascii()).ok())
        .filter(|name| !FORBIDDEN.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Method, Request};

    fn parts(method: Method, uri: &str, headers: &[(&'static str, &'static str)]) -> Parts {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn encode(request: &Parts, body: BodyHint) -> (String, Result<EncodedHead, Error>) {
        let mut buf = Vec::new();
        let head = write_head(&mut buf, request, b"", body);
        (String::from_utf8(buf).unwrap(), head)
    }

    #[test]
    fn a_get_goes_out_in_origin_form_with_its_fields_and_no_framing() {
        let request = parts(
            Method::GET,
            "/user/7?full=1",
            &[("host", "svc"), ("x-a", "1")],
        );
        let (text, head) = encode(&request, BodyHint::Empty);
        assert_eq!(
            text,
            "GET /user/7?full=1 HTTP/1.1\r\nhost: svc\r\nx-a: 1\r\n\r\n"
        );
        let head = head.unwrap();
        assert_eq!(head.framing, Framing::Length(0));
        assert!(!head.close);
    }

    #[test]
    fn connect_is_refused_before_a_byte_is_written() {
        for uri in ["example.com:443", "/"] {
            let (text, head) = encode(&parts(Method::CONNECT, uri, &[]), BodyHint::Empty);
            assert!(text.is_empty(), "{text}");
            assert!(matches!(head, Err(Error::InvalidRequest(_))));
        }
    }

    #[test]
    fn a_known_length_becomes_content_length_and_an_unknown_one_chunked() {
        let request = parts(Method::POST, "/echo", &[("host", "svc")]);
        let (text, head) = encode(&request, BodyHint::Exact(12));
        assert!(
            text.ends_with("host: svc\r\ncontent-length: 12\r\n\r\n"),
            "{text}"
        );
        assert_eq!(head.unwrap().framing, Framing::Length(12));
        let (text, head) = encode(&request, BodyHint::Unknown);
        assert!(
            text.ends_with("transfer-encoding: chunked\r\n\r\n"),
            "{text}"
        );
        assert_eq!(head.unwrap().framing, Framing::Chunked);
    }

    #[test]
    fn the_callers_framing_fields_are_honoured() {
        let request = parts(Method::PUT, "/x", &[("content-length", "5"), ("x-a", "1")]);
        let (text, head) = encode(&request, BodyHint::Unknown);
        assert_eq!(
            text,
            "PUT /x HTTP/1.1\r\nx-a: 1\r\ncontent-length: 5\r\n\r\n"
        );
        assert_eq!(head.unwrap().framing, Framing::Length(5));

        let request = parts(
            Method::POST,
            "/x",
            &[
                ("transfer-encoding", "gzip"),
                ("content-length", "5"),
                ("trailer", "x-sum, host"),
            ],
        );
        let (text, head) = encode(&request, BodyHint::Exact(5));
        assert_eq!(
            text,
            "POST /x HTTP/1.1\r\ntransfer-encoding: gzip\r\ntrailer: x-sum, host\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
        let head = head.unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(head.trailers, vec![HeaderName::from_static("x-sum")]);
    }

    #[test]
    fn impossible_framing_is_refused_before_anything_is_written() {
        let mut buf = b"kept".to_vec();
        let request = parts(Method::POST, "/x", &[("content-length", "x")]);
        assert!(write_head(&mut buf, &request, b"", BodyHint::Unknown).is_err());
        assert_eq!(buf, b"kept");
        let request = parts(
            Method::POST,
            "/x",
            &[("content-length", "5"), ("content-length", "6")],
        );
        assert!(matches!(
            encode(&request, BodyHint::Exact(5)).1,
            Err(Error::InvalidRequest(_))
        ));
        let request = parts(Method::POST, "/x", &[("content-length", "5")]);
        assert!(matches!(
            encode(&request, BodyHint::Empty).1,
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn connection_close_is_noticed() {
        let request = parts(Method::GET, "/", &[("connection", "Close")]);
        assert!(encode(&request, BodyHint::Empty).1.unwrap().close);
    }

    #[test]
    fn chunks_are_framed_in_hex_and_trailers_limited_to_those_declared() {
        let mut buf = Vec::new();
        chunk_start(&mut buf, 0x1a2b);
        chunk_start(&mut buf, 1);
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", HeaderValue::from_static("9"));
        trailers.insert("x-other", HeaderValue::from_static("no"));
        last_chunk(
            &mut buf,
            Some(&trailers),
            &[HeaderName::from_static("x-sum")],
        );
        assert_eq!(buf, b"1a2b\r\n1\r\n0\r\nx-sum: 9\r\n\r\n");
    }
}
