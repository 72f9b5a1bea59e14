//! Reading an answer's head (RFC 9112 §4) with `httparse`, and what it says of the body that
//! follows (§6.3) and of the connection (§9.3).
//!
//! Allocations are kept to the header map: the head is split off the read buffer and frozen,
//! and every header value is a slice of it rather than a copy (as hyper does).

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Buf, BytesMut};
use http::header::{
    HeaderName, InvalidHeaderName, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, DATE,
    ETAG, LOCATION, SERVER, TRANSFER_ENCODING, VARY,
};
use http::{response, HeaderMap, HeaderValue, StatusCode, Version};
use hyper::ext::ReasonPhrase;

use super::error::Error;
use super::fields::{self, ContentLength};
use crate::middleware::X_REQUEST_ID;

/// The longest head read, interim answers apart: a server sending more is broken or hostile.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// The most header fields in a head (hyper's limit).
const MAX_FIELDS: usize = 100;

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyFraming {
    /// Exactly this many bytes (zero for `HEAD`, `204` and `304`).
    Length(u64),
    /// Chunks, ended by a zero-sized one and optional trailers.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// An answer's head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) parts: response::Parts,
    pub(super) framing: BodyFraming,
    /// Whether the connection may carry another exchange after this answer, as far as the
    /// answer goes.
    pub(super) keep_alive: bool,
}

/// Where a header field lies in the head, kept between parsing and building the map (the
/// parser's fields borrow the buffer the head is then split from).
#[derive(Debug, Clone)]
pub(super) struct FieldSpan {
    name: Range<usize>,
    value: Range<usize>,
}

/// How many fields the layers above typically add to an answer, besides those it came with.
const ADDED_LATER: usize = 2;

/// Takes a final answer's head off the front of `buf`, skipping interim (`1xx`) answers;
/// `Ok(None)` while more bytes are needed. `head_request`: the request was a `HEAD`, so the
/// answer has no body whatever its fields say. `spans` is scratch space, kept by the
/// connection so that parsing allocates nothing of its own.
pub(super) fn parse(
    buf: &mut BytesMut,
    spans: &mut Vec<FieldSpan>,
    head_request: bool,
) -> Result<Option<Head>, Error> {
    loop {
        let Some(line) = parse_spans(buf, spans)? else {
            return Ok(None);
        };
        match line.status.as_u16() {
            101 => return Err(Error::Upgrade),
            // `100 Continue` and the like: the final answer follows.
            100..=199 => buf.advance(line.len),
            _ => return build(buf, spans, line, head_request).map(Some),
        }
    }
}

/// What the first line of a head said, and the head's length.
struct StatusLine {
    len: usize,
    status: StatusCode,
    version: Version,
    /// Kept only when it is not the status's usual phrase, as hyper does, so that a proxy
    /// passes it on.
    reason: Option<ReasonPhrase>,
}

fn parse_spans(buf: &BytesMut, spans: &mut Vec<FieldSpan>) -> Result<Option<StatusLine>, Error> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut fields = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_FIELDS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut fields,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(_) => return Err(Error::HeadTooLarge),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::MalformedHead("more than 100 header fields"))
        }
        Err(err) => return Err(Error::MalformedHead(describe(err))),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(Error::MalformedHead("invalid response status"))?;
    let version = match response.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let reason = response
        .reason
        .filter(|reason| Some(*reason) != status.canonical_reason())
        .and_then(|reason| ReasonPhrase::try_from(reason.as_bytes()).ok());
    let start = buf.as_ptr() as usize;
    let offset = |part: &[u8]| part.as_ptr() as usize - start;
    spans.clear();
    spans.extend(response.headers.iter().map(|field| {
        let (name, value) = (offset(field.name.as_bytes()), offset(field.value));
        FieldSpan {
            name: name..name + field.name.len(),
            value: value..value + field.value.len(),
        }
    }));
    Ok(Some(StatusLine {
        len,
        status,
        version,
        reason,
    }))
}

fn describe(err: httparse::Error) -> &'static str {
    match err {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid response status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "more than 100 header fields",
        httparse::Error::Version => "invalid HTTP version",
    }
}

fn build(
    buf: &mut BytesMut,
    spans: &[FieldSpan],
    line: StatusLine,
    head_request: bool,
) -> Result<Head, Error> {
    let head = buf.split_to(line.len).freeze();
    // Room for the fields the layers above add to an answer (the request id, a proxy's own):
    // a map filled to its capacity grows, and rehashes, on the first insert after it.
    let mut headers = HeaderMap::with_capacity(spans.len() + ADDED_LATER);
    // One walk over the fields, noting on the way what frames the body and what governs
    // the connection.
    let mut length = ContentLength::default();
    let (mut coded, mut ends_chunked) = (false, false);
    let (mut close, mut keep_alive_asked) = (false, false);
    for span in spans {
        let name = field_name(&head[span.name.clone()])
            .map_err(|_| Error::MalformedHead("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(span.value.clone()))
            .map_err(|_| Error::MalformedHead("invalid header value"))?;
        if name == CONTENT_LENGTH {
            length.add(&value);
        } else if name == TRANSFER_ENCODING {
            coded = true;
            ends_chunked = fields::ends_chunked(&value);
        } else if name == CONNECTION {
            // Once any `Connection` field says close, a later keep-alive does not undo it.
            close |= fields::has_token(&value, b"close");
            keep_alive_asked |= fields::has_token(&value, b"keep-alive");
        }
        headers.append(name, value);
    }
    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when asked.
    let mut keep_alive = !close && (line.version == Version::HTTP_11 || keep_alive_asked);

    let framing = if head_request || matches!(line.status.as_u16(), 204 | 304) {
        BodyFraming::Length(0)
    } else if coded {
        if line.version == Version::HTTP_10 {
            return Err(Error::MalformedHead(
                "Transfer-Encoding in an HTTP/1.0 answer",
            ));
        }
        if headers.contains_key(CONTENT_LENGTH) {
            // Both: the transfer coding wins, and the connection is not trusted again
            // (RFC 9112 §6.3); the length goes, so that nobody downstream reads it.
            headers.remove(CONTENT_LENGTH);
            keep_alive = false;
        }
        if ends_chunked {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        }
    } else {
        match length.get() {
            Ok(Some(length)) => BodyFraming::Length(length),
            Ok(None) => BodyFraming::UntilClose,
            Err(()) => return Err(Error::MalformedHead("invalid Content-Length")),
        }
    };
    if framing == BodyFraming::UntilClose {
        keep_alive = false;
    }

    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = line.status;
    parts.version = line.version;
    parts.headers = headers;
    if let Some(reason) = line.reason {
        parts.extensions.insert(reason);
    }
    Ok(Head {
        parts,
        framing,
        keep_alive,
    })
}

/// A field's name. The names most answers carry, as servers write them (lowercase), are
/// matched whole; any other goes through `HeaderName::from_bytes`, which checks and folds the
/// case of every byte (about 110 instructions a name, and for a name it does not know an
/// allocation: the request id a microkit service answers with is one).
fn field_name(bytes: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
    Ok(match bytes {
        b"content-type" => CONTENT_TYPE,
        b"content-length" => CONTENT_LENGTH,
        b"date" => DATE,
        b"server" => SERVER,
        b"x-request-id" => X_REQUEST_ID,
        b"connection" => CONNECTION,
        b"transfer-encoding" => TRANSFER_ENCODING,
        b"cache-control" => CACHE_CONTROL,
        b"etag" => ETAG,
        b"location" => LOCATION,
        b"vary" => VARY,
        _ => return HeaderName::from_bytes(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_matched_whole_is_the_name_from_bytes() {
        for name in [
            "content-type",
            "content-length",
            "date",
            "server",
            "x-request-id",
            "connection",
            "transfer-encoding",
            "cache-control",
            "etag",
            "location",
            "vary",
            "x-custom",
            "Content-Type",
            "X-Request-Id",
            "dat",
            "dates",
        ] {
            let expected = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(field_name(name.as_bytes()).unwrap(), expected, "{name}");
        }
        for bad in ["", "con tent", "date:", "\u{e9}tag"] {
            assert!(field_name(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    fn parse_all(bytes: &[u8], head_request: bool) -> (Result<Option<Head>, Error>, BytesMut) {
        let mut buf = BytesMut::from(bytes);
        let parsed = parse(&mut buf, &mut Vec::new(), head_request);
        (parsed, buf)
    }

    fn head(bytes: &[u8]) -> Head {
        parse_all(bytes, false)
            .0
            .expect("a valid head")
            .expect("a complete head")
    }

    #[test]
    fn a_head_becomes_status_version_and_fields_and_the_body_stays_in_the_buffer() {
        let (parsed, rest) = parse_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\nX-Many: a\r\nx-many: b\r\n\r\nhello",
            false,
        );
        let head = parsed.unwrap().unwrap();
        assert_eq!(head.parts.status, StatusCode::OK);
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.parts.headers["content-type"], "text/plain");
        let many: Vec<_> = head.parts.headers.get_all("x-many").iter().collect();
        assert_eq!(many, ["a", "b"]);
        assert_eq!(head.framing, BodyFraming::Length(5));
        assert!(head.keep_alive);
        assert!(head.parts.extensions.get::<ReasonPhrase>().is_none());
        assert_eq!(&rest[..], b"hello");
    }

    #[test]
    fn a_head_split_across_reads_waits_for_its_end() {
        let whole = b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n";
        let mut buf = BytesMut::new();
        let mut spans = Vec::new();
        for (at, byte) in whole.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let parsed = parse(&mut buf, &mut spans, false).unwrap();
            assert_eq!(
                parsed.is_some(),
                at == whole.len() - 1,
                "after {} bytes",
                at + 1
            );
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn interim_answers_are_skipped_and_101_refused() {
        let head = head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(head.parts.status, StatusCode::CREATED);
        let (parsed, _) = parse_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2", false);
        assert!(parsed.unwrap().is_none());
        let (parsed, _) = parse_all(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n",
            false,
        );
        assert!(matches!(parsed, Err(Error::Upgrade)));
    }

    #[test]
    fn the_framing_follows_rfc_9112() {
        assert_eq!(
            head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").framing,
            BodyFraming::Chunked
        );
        let untagged = head(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(untagged.framing, BodyFraming::UntilClose);
        assert!(!untagged.keep_alive);
        let gzip = head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n");
        assert_eq!(gzip.framing, BodyFraming::UntilClose);
        let both =
            head(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(both.framing, BodyFraming::Chunked);
        assert!(!both.keep_alive);
        assert!(!both.parts.headers.contains_key(CONTENT_LENGTH));
        for no_body in [
            &b"HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n"[..],
            b"HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(head(no_body).framing, BodyFraming::Length(0));
        }
        let (parsed, _) = parse_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", true);
        assert_eq!(parsed.unwrap().unwrap().framing, BodyFraming::Length(0));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        assert!(
            !head(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").keep_alive
        );
        assert!(!head(b"HTTP/1.1 200 OK\r\nconnection: close\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n").keep_alive);
        assert!(!head(b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").keep_alive);
        let kept = head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n");
        assert!(kept.keep_alive);
        assert_eq!(kept.parts.version, Version::HTTP_10);
    }

    #[test]
    fn an_unusual_reason_phrase_is_kept() {
        let head = head(b"HTTP/1.1 200 Fine Thanks\r\ncontent-length: 0\r\n\r\n");
        let reason = head.parts.extensions.get::<ReasonPhrase>().unwrap();
        assert_eq!(reason.as_bytes(), b"Fine Thanks");
    }

    #[test]
    fn malformed_heads_are_refused() {
        let cases: [&[u8]; 9] = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1a\r\n\r\n",
            b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
            b"<html>hello</html>\r\n\r\n",
        ];
        for case in cases {
            let (parsed, _) = parse_all(case, false);
            assert!(
                matches!(parsed, Err(Error::MalformedHead(_))),
                "{}: {parsed:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn heads_are_bounded_in_size_and_fields() {
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        while endless.len() <= MAX_HEAD {
            endless.extend_from_slice(b"x-filler: ");
            endless.extend_from_slice(&[b'a'; 4000]);
            endless.extend_from_slice(b"\r\n");
        }
        assert!(matches!(
            parse_all(&endless, false).0,
            Err(Error::HeadTooLarge)
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for n in 0..=MAX_FIELDS {
            many.extend_from_slice(format!("x-{n}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse_all(&many, false).0,
            Err(Error::MalformedHead(_))
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let seed_head: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        for seed in 0..5_000 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut input = seed_head.to_vec();
            for _ in 0..rng.usize(1..6) {
                let at = rng.usize(0..input.len());
                match rng.u8(0..3) {
                    0 => input[at] = rng.u8(..),
                    1 => input.insert(at, rng.u8(..)),
                    _ => {
                        input.remove(at);
                    }
                }
            }
            let _ = parse_all(&input, rng.bool());
        }
    }
}
