//! Reading an answer's body out of the connection's read buffer, as its head framed it:
//! a length, chunks (RFC 9112 §7.1), or everything until the server closes.

use bytes::{Buf, Bytes, BytesMut};
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};

use super::error::Error;
use super::head::BodyFraming;

/// The longest chunk-size line (size and extensions) and the most trailer bytes read: past
/// them the server is broken or hostile.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;
/// The most bytes of chunk extensions in one body (hyper's limit): each line is bounded, and
/// this bounds their sum, so that a server cannot make the client parse extensions forever at
/// the cost of a byte of data each.
const MAX_EXTENSIONS: usize = 16 * 1024;
const MAX_TRAILER_FIELDS: usize = 64;

/// What the buffer held.
#[derive(Debug, PartialEq)]
pub(super) enum Decoded {
    /// Body bytes, split off the read buffer (no copy).
    Data(Bytes),
    /// The fields after a chunked body.
    Trailers(HeaderMap),
    /// The body is complete.
    End,
    /// More bytes are needed.
    More,
}

/// Where in the body the reader is.
#[derive(Debug)]
pub(super) enum BodyDecoder {
    /// This many bytes left.
    Length(u64),
    /// Inside a chunked body, with the bytes of chunk extensions read so far.
    Chunked(Chunked, usize),
    /// Everything until the connection ends.
    UntilClose,
    /// Past the end.
    Done,
}

/// Where in a chunked body the reader is.
#[derive(Debug)]
pub(super) enum Chunked {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data, at its CRLF.
    DataEnd,
    /// After the last chunk, at the trailers (or the final CRLF).
    Trailers,
}

impl BodyDecoder {
    pub(super) fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Length(0) => Self::Done,
            BodyFraming::Length(length) => Self::Length(length),
            BodyFraming::Chunked => Self::Chunked(Chunked::Size, 0),
            BodyFraming::UntilClose => Self::UntilClose,
        }
    }

    /// Whether the body is complete.
    pub(super) fn is_done(&self) -> bool {
        matches!(self, Self::Done)
    }

    /// The bytes left, when known.
    pub(super) fn remaining(&self) -> Option<u64> {
        match self {
            Self::Length(left) => Some(*left),
            Self::Done => Some(0),
            _ => None,
        }
    }

    /// Takes what it can of the body off the front of `buf`. `eof`: the server has closed
    /// its side, so no more bytes will come.
    pub(super) fn decode(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Decoded, Error> {
        match self {
            Self::Done => Ok(Decoded::End),
            Self::Length(left) => {
                if buf.is_empty() {
                    return if eof {
                        Err(Error::ClosedInBody)
                    } else {
                        Ok(Decoded::More)
                    };
                }
                let take = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= take as u64;
                if *left == 0 {
                    *self = Self::Done;
                }
                Ok(Decoded::Data(buf.split_to(take).freeze()))
            }
            Self::UntilClose => {
                if !buf.is_empty() {
                    Ok(Decoded::Data(buf.split().freeze()))
                } else if eof {
                    *self = Self::Done;
                    Ok(Decoded::End)
                } else {
                    Ok(Decoded::More)
                }
            }
            Self::Chunked(state, extensions) => {
                let decoded = decode_chunked(state, extensions, buf)?;
                match decoded {
                    Decoded::End => *self = Self::Done,
                    Decoded::Trailers(_) => *self = Self::Done,
                    Decoded::More if eof => return Err(Error::ClosedInBody),
                    _ => {}
                }
                Ok(decoded)
            }
        }
    }
}

fn decode_chunked(
    state: &mut Chunked,
    extensions: &mut usize,
    buf: &mut BytesMut,
) -> Result<Decoded, Error> {
    loop {
        match state {
            Chunked::Size => {
                let (line, size) = match httparse::parse_chunk_size(buf) {
                    // httparse takes an empty size as zero: the size must have a digit.
                    Ok(httparse::Status::Complete(_)) if !buf[0].is_ascii_hexdigit() => {
                        return Err(Error::MalformedBody("invalid chunk size"))
                    }
                    Ok(httparse::Status::Complete(parsed)) => parsed,
                    Ok(httparse::Status::Partial) if buf.len() < MAX_CHUNK_LINE => {
                        return Ok(Decoded::More)
                    }
                    Ok(httparse::Status::Partial) => {
                        return Err(Error::MalformedBody("chunk-size line too long"))
                    }
                    Err(_) => return Err(Error::MalformedBody("invalid chunk size")),
                };
                if line > MAX_CHUNK_LINE {
                    return Err(Error::MalformedBody("chunk-size line too long"));
                }
                // httparse reads a chunk extension up to a CR: a bare LF inside one is a
                // line end a server and a proxy could disagree on (hyper refuses it too).
                if buf[..line - 1].contains(&b'\n') {
                    return Err(Error::MalformedBody(
                        "a chunk extension contains a line feed",
                    ));
                }
                if let Some(start) = buf[..line].iter().position(|&byte| byte == b';') {
                    *extensions += line - start;
                    if *extensions > MAX_EXTENSIONS {
                        return Err(Error::MalformedBody("too many bytes of chunk extensions"));
                    }
                }
                buf.advance(line);
                *state = if size == 0 {
                    Chunked::Trailers
                } else {
                    Chunked::Data(size)
                };
            }
            Chunked::Data(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::More);
                }
                let take = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= take as u64;
                if *left == 0 {
                    *state = Chunked::DataEnd;
                }
                return Ok(Decoded::Data(buf.split_to(take).freeze()));
            }
            Chunked::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Decoded::More);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(Error::MalformedBody("a chunk does not end with CRLF"));
                }
                buf.advance(2);
                *state = Chunked::Size;
            }
            Chunked::Trailers => return decode_trailers(buf),
        }
    }
}

/// The trailer section: fields up to an empty line, which alone means no trailers.
fn decode_trailers(buf: &mut BytesMut) -> Result<Decoded, Error> {
    if buf.starts_with(b"\r\n") {
        buf.advance(2);
        return Ok(Decoded::End);
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    let (len, parsed) = match httparse::parse_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete((len, _))) if len > MAX_TRAILERS => {
            return Err(Error::MalformedBody("trailers too long"))
        }
        Ok(httparse::Status::Complete(parsed)) => parsed,
        Ok(httparse::Status::Partial) if buf.len() < MAX_TRAILERS => return Ok(Decoded::More),
        Ok(httparse::Status::Partial) => return Err(Error::MalformedBody("trailers too long")),
        Err(_) => return Err(Error::MalformedBody("invalid trailers")),
    };
    let mut trailers = HeaderMap::with_capacity(parsed.len());
    for field in parsed {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| Error::MalformedBody("invalid trailer name"))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| Error::MalformedBody("invalid trailer value"))?;
        trailers.append(name, value);
    }
    buf.advance(len);
    Ok(if trailers.is_empty() {
        Decoded::End
    } else {
        Decoded::Trailers(trailers)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `decoder` makes of `input`, delivered `step` bytes at a time, then the end
    /// of the connection when `close`.
    fn decode_all(
        framing: BodyFraming,
        input: &[u8],
        step: usize,
        close: bool,
    ) -> (Result<Vec<Decoded>, Error>, BytesMut) {
        let mut decoder = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut out: Vec<Decoded> = Vec::new();
        let mut fed = 0;
        loop {
            let eof = close && fed == input.len();
            match decoder.decode(&mut buf, eof) {
                Err(err) => return (Err(err), buf),
                Ok(Decoded::End) => {
                    out.push(Decoded::End);
                    return (Ok(out), buf);
                }
                Ok(Decoded::More) if fed == input.len() => {
                    out.push(Decoded::More);
                    return (Ok(out), buf);
                }
                Ok(Decoded::More) => {
                    let next = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..next]);
                    fed = next;
                }
                Ok(decoded @ Decoded::Trailers(_)) => {
                    out.push(decoded);
                    out.push(decoder.decode(&mut buf, eof).unwrap());
                    return (Ok(out), buf);
                }
                Ok(decoded) => out.push(decoded),
            }
        }
    }

    fn data(decoded: &[Decoded]) -> Vec<u8> {
        decoded
            .iter()
            .filter_map(|d| match d {
                Decoded::Data(bytes) => Some(bytes.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    const CHUNKED: &[u8] = b"5;name=value\r\nhello\r\n6 ; x\r\n world\r\nA\r\n0123456789\r\n0\r\nx-sum: 42\r\nx-more: a\r\n\r\n";

    #[test]
    fn chunks_with_extensions_and_trailers_at_any_split() {
        for step in [1, 2, 3, 7, CHUNKED.len()] {
            let (decoded, rest) = decode_all(BodyFraming::Chunked, CHUNKED, step, false);
            let decoded = decoded.unwrap();
            assert_eq!(data(&decoded), b"hello world0123456789", "step {step}");
            let trailers = decoded.iter().find_map(|d| match d {
                Decoded::Trailers(trailers) => Some(trailers),
                _ => None,
            });
            assert_eq!(trailers.unwrap()["x-sum"], "42");
            assert_eq!(decoded.last(), Some(&Decoded::End));
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn a_chunked_body_without_trailers_ends_at_the_empty_line_and_leaves_what_follows() {
        let (decoded, rest) = decode_all(
            BodyFraming::Chunked,
            b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n",
            64,
            false,
        );
        let decoded = decoded.unwrap();
        assert_eq!(data(&decoded), b"abc");
        assert_eq!(decoded.last(), Some(&Decoded::End));
        // The bytes after the answer are left alone, never read as part of it.
        assert_eq!(&rest[..], b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn a_length_takes_exactly_its_bytes() {
        for step in [1, 4, 100] {
            let (decoded, rest) =
                decode_all(BodyFraming::Length(10), b"0123456789HTTP/1.1", step, false);
            let decoded = decoded.unwrap();
            assert_eq!(data(&decoded), b"0123456789");
            assert_eq!(decoded.last(), Some(&Decoded::End));
            // What followed the body, once fed, is left alone.
            if step == 100 {
                assert_eq!(&rest[..], b"HTTP/1.1");
            }
        }
        let (decoded, _) = decode_all(BodyFraming::Length(0), b"", 1, false);
        assert_eq!(decoded.unwrap(), [Decoded::End]);
    }

    #[test]
    fn until_close_takes_everything_to_the_end_of_the_connection() {
        let (decoded, _) = decode_all(BodyFraming::UntilClose, b"all of it", 4, true);
        let decoded = decoded.unwrap();
        assert_eq!(data(&decoded), b"all of it");
        assert_eq!(decoded.last(), Some(&Decoded::End));
    }

    #[test]
    fn a_body_cut_short_is_an_error() {
        for (framing, input) in [
            (BodyFraming::Length(10), &b"01234"[..]),
            (BodyFraming::Chunked, b"5\r\nhel"),
            (BodyFraming::Chunked, b"5\r\nhello\r\n"),
            (BodyFraming::Chunked, b"0\r\nx-sum: 1\r\n"),
        ] {
            let (decoded, _) = decode_all(framing, input, 3, true);
            assert!(
                matches!(decoded, Err(Error::ClosedInBody)),
                "{input:?}: {decoded:?}"
            );
        }
    }

    #[test]
    fn malformed_chunks_are_refused() {
        let too_long_line = [b"1;".as_slice(), &[b'x'; MAX_CHUNK_LINE], b"\r\n"].concat();
        let too_many_trailers = [
            b"0\r\n".as_slice(),
            &b"x-t: 1\r\n".repeat(MAX_TRAILERS / 8 + 1),
        ]
        .concat();
        // Each line within bounds, their extensions together past them.
        let endless_extensions = [b"1;".as_slice(), &[b'x'; 1000], b"\r\na\r\n"]
            .concat()
            .repeat(MAX_EXTENSIONS / 1000 + 1);
        let cases: [&[u8]; 9] = [
            &endless_extensions,
            b"zz\r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b"fffffffffffffffff\r\n",
            b"-5\r\nhello\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\nhello\r\n",
            &too_long_line,
            &too_many_trailers,
        ];
        for case in cases {
            let (decoded, _) = decode_all(BodyFraming::Chunked, case, 5, false);
            assert!(
                matches!(decoded, Err(Error::MalformedBody(_))),
                "{}: {decoded:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn random_bytes_end_in_data_an_end_or_an_error_never_a_panic_or_a_loop() {
        let alphabet = b"0123456789abcdefABCDEF;= \t\r\nxz:";
        for seed in 0..2_000 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let input: Vec<u8> = (0..rng.usize(0..64))
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            for framing in [
                BodyFraming::Chunked,
                BodyFraming::Length(7),
                BodyFraming::UntilClose,
            ] {
                // decode_all stops at an error, the end, or when the input runs out.
                let _ = decode_all(framing, &input, rng.usize(1..8), rng.bool());
            }
        }
    }

    #[test]
    fn extensions_within_the_limit_are_read_past() {
        let body = [b"1;".as_slice(), &[b'x'; 1000], b"\r\na\r\n"]
            .concat()
            .repeat(MAX_EXTENSIONS / 1002);
        let body = [body.as_slice(), b"0\r\n\r\n"].concat();
        let (decoded, _) = decode_all(BodyFraming::Chunked, &body, 4096, false);
        let decoded = decoded.expect("within the limit");
        let data = decoded
            .iter()
            .filter(|frame| matches!(frame, Decoded::Data(_)))
            .count();
        assert_eq!(data, MAX_EXTENSIONS / 1002);
        assert_eq!(decoded.last(), Some(&Decoded::End));
    }

    #[test]
    fn a_bare_lf_in_a_chunk_extension_is_refused_as_hyper_does() {
        let (decoded, _) = decode_all(
            BodyFraming::Chunked,
            b"5;a\nxyz\r\nhello\r\n0\r\n\r\n",
            64,
            false,
        );
        assert!(
            matches!(decoded, Err(Error::MalformedBody(_))),
            "{decoded:?}"
        );
    }
}
