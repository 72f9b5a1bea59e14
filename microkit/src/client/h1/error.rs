//! Why an HTTP/1.1 exchange with an upstream failed.

use std::fmt;

use crate::BoxError;

/// A failed exchange. The connection it happened on is never used again.
#[derive(Debug)]
pub(crate) enum Error {
    /// The upstream closed (or wrote unasked on) the connection before the request was
    /// written: nothing of it was sent.
    ClosedBeforeRequest,
    /// The upstream closed the connection before the first byte of an answer.
    ClosedBeforeAnswer,
    /// The upstream closed the connection in the middle of an answer's head.
    ClosedInHead,
    /// The upstream closed the connection before the end of an answer's body.
    ClosedInBody,
    /// The answer's head could not be parsed, or says something impossible.
    MalformedHead(&'static str),
    /// The answer's head is longer than [`MAX_HEAD`](super::head::MAX_HEAD) bytes.
    HeadTooLarge,
    /// The answer's body framing (a chunk size, a chunk's end, its trailers) is broken.
    MalformedBody(&'static str),
    /// The upstream switched protocols (`101`), which the client never asks for.
    Upgrade,
    /// The request's own framing headers cannot be honoured.
    InvalidRequest(&'static str),
    /// The request body failed, or did not match its `Content-Length`.
    RequestBody(BoxError),
    /// Reading or writing the socket failed.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClosedBeforeRequest => {
                f.write_str("the upstream closed the connection before the request was written")
            }
            Self::ClosedBeforeAnswer => {
                f.write_str("the upstream closed the connection before answering")
            }
            Self::ClosedInHead => {
                f.write_str("the upstream closed the connection in the middle of the answer's head")
            }
            Self::ClosedInBody => f.write_str(
                "the upstream closed the connection before the end of the answer's body",
            ),
            Self::MalformedHead(why) => write!(f, "malformed response head: {why}"),
            Self::HeadTooLarge => write!(
                f,
                "malformed response head: longer than {} bytes",
                super::head::MAX_HEAD
            ),
            Self::MalformedBody(why) => write!(f, "malformed response body: {why}"),
            Self::Upgrade => f.write_str(
                "the upstream switched protocols (101), which the client does not support",
            ),
            Self::InvalidRequest(why) => write!(f, "the request cannot be sent: {why}"),
            Self::RequestBody(err) => write!(f, "the request body failed: {err}"),
            Self::Io(err) => write!(f, "the connection to the upstream failed: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::RequestBody(err) => Some(err.as_ref()),
            Self::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err)
    }
}
