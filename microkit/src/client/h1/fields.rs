//! The header fields that frame an HTTP/1.1 message or govern its connection
//! (`Content-Length`, `Transfer-Encoding`, `Connection`), read the same way for requests and
//! answers.

use http::HeaderValue;

/// A message's `Content-Length`, gathered field by field as the head is walked (once, for
/// every purpose). Every value must be a number and all must agree (RFC 9112 §6.3: a
/// message with differing lengths cannot be framed, and guessing is how requests get
/// smuggled).
#[derive(Debug, Default)]
pub(super) struct ContentLength {
    length: Option<u64>,
    invalid: bool,
}

impl ContentLength {
    /// Takes one `Content-Length` field; a list (`5, 5`) counts when every member agrees.
    pub(super) fn add(&mut self, value: &HeaderValue) {
        for member in value.as_bytes().split(|&byte| byte == b',') {
            match parse_decimal(member.trim_ascii()) {
                Some(length) if self.length.is_none_or(|seen| seen == length) => {
                    self.length = Some(length)
                }
                _ => self.invalid = true,
            }
        }
    }

    /// The length: `Ok(None)` when no field was seen, `Err` when one was not a number or
    /// they disagree.
    pub(super) fn get(&self) -> Result<Option<u64>, ()> {
        if self.invalid {
            Err(())
        } else {
            Ok(self.length)
        }
    }
}

/// A non-empty run of ASCII digits that fits in a `u64`.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |total, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        total.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// Whether a `Transfer-Encoding` value ends with `chunked` (of a message's fields, the last
/// one decides: chunked must be the final coding, the only framing a reader can find the end
/// of before the connection ends).
pub(super) fn ends_chunked(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .rsplit(|&byte| byte == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Whether a `Connection` value lists `token` (case-insensitive).
pub(super) fn has_token(value: &HeaderValue, token: &[u8]) -> bool {
    value
        .as_bytes()
        .split(|&byte| byte == b',')
        .any(|member| member.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length(values: &[&'static str]) -> Result<Option<u64>, ()> {
        let mut length = ContentLength::default();
        for value in values {
            length.add(&HeaderValue::from_static(value));
        }
        length.get()
    }

    #[test]
    fn content_lengths_must_be_numbers_that_agree() {
        assert_eq!(length(&[]), Ok(None));
        assert_eq!(length(&["42"]), Ok(Some(42)));
        assert_eq!(length(&["7, 7", "7"]), Ok(Some(7)));
        for bad in [
            &["4", "5"][..],
            &["-1"],
            &["+1"],
            &[""],
            &["1 2"],
            &["0x10"],
            &["99999999999999999999"],
        ] {
            assert_eq!(length(bad), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn chunked_must_be_the_last_coding() {
        assert!(ends_chunked(&HeaderValue::from_static("chunked")));
        assert!(ends_chunked(&HeaderValue::from_static("gzip, Chunked ")));
        assert!(!ends_chunked(&HeaderValue::from_static("chunked, gzip")));
        assert!(!ends_chunked(&HeaderValue::from_static("")));
    }

    #[test]
    fn connection_tokens_are_a_list() {
        let value = HeaderValue::from_static("Keep-Alive, Close");
        assert!(has_token(&value, b"close"));
        assert!(has_token(&value, b"keep-alive"));
        assert!(!has_token(&value, b"upgrade"));
    }
}
