//! The header fields an attempt adds to a request, written as they go on the wire.
//!
//! Why not insert them into the request's `HeaderMap`: every attempt adds `Host`, the deadline
//! and the trace context, and each insert hashes the name, may grow the map and allocates the
//! value; the connection then copies them out again. Written once as lines, they cost a copy
//! into the write buffer, and the caller's map stays as it was, ready for a retry without a
//! clone.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// `name: value\r\n` lines, sent after the request's own fields.
#[derive(Debug, Default)]
pub(crate) struct HeaderLines(Vec<u8>);

impl HeaderLines {
    /// Room for the lines a forwarded request gains (the gateway's and an attempt's, about
    /// 350 bytes), so that they take one allocation.
    pub(crate) fn new() -> Self {
        Self(Vec::with_capacity(512))
    }

    /// Adds a field. `value` must be a valid field value: the bytes of a [`HeaderValue`], or
    /// digits and letters the caller wrote.
    pub(crate) fn push(&mut self, name: &HeaderName, value: &[u8]) {
        debug_assert!(HeaderValue::from_bytes(value).is_ok(), "not a field value");
        self.0.extend_from_slice(name.as_str().as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(value);
        self.0.extend_from_slice(b"\r\n");
    }

    /// Adds a field whose value `write` writes; it must write a valid field value.
    pub(crate) fn push_with(&mut self, name: &HeaderName, write: impl FnOnce(&mut Vec<u8>)) {
        self.0.extend_from_slice(name.as_str().as_bytes());
        self.0.extend_from_slice(b": ");
        let start = self.0.len();
        write(&mut self.0);
        debug_assert!(
            HeaderValue::from_bytes(&self.0[start..]).is_ok(),
            "not a field value"
        );
        self.0.extend_from_slice(b"\r\n");
    }

    /// Drops every line of the field `name` (rarely needed: a caller's override).
    pub(crate) fn remove(&mut self, name: &HeaderName) {
        let name = name.as_str().as_bytes();
        let mut kept = Vec::with_capacity(self.0.capacity());
        for line in self.0.split_inclusive(|&byte| byte == b'\n') {
            let named = line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name)
                && line[name.len()] == b':';
            if !named {
                kept.extend_from_slice(line);
            }
        }
        self.0 = kept;
    }

    /// How many bytes the lines take.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Drops the lines after the first `len` bytes (a caller's lines, before an attempt's).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// The lines, ready for the wire.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Removes every field named in `names` (lowercase) from `headers`, which lines will carry
/// instead.
///
/// Why a walk first: a request rarely carries any of them, and one walk over its few names
/// costs less than a hashed lookup per name. Why names as text: a name's text and length
/// come at once, and most lengths differ; comparing `HeaderName`s costs more (measured: a
/// walk comparing nine names as `HeaderName`s took five times the instructions of one
/// comparing them as text).
pub(crate) fn remove_fields(headers: &mut HeaderMap, names: &[&str]) {
    if !headers.keys().any(|name| names.contains(&name.as_str())) {
        return;
    }
    for name in names {
        headers.remove(*name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_written_as_lines() {
        let mut lines = HeaderLines::new();
        lines.push(&http::header::HOST, b"10.0.0.7:8080");
        lines.push(&HeaderName::from_static("x-microkit-deadline-ms"), b"250");
        assert_eq!(
            lines.as_bytes(),
            b"host: 10.0.0.7:8080\r\nx-microkit-deadline-ms: 250\r\n"
        );
        lines.truncate(lines.len() - b"x-microkit-deadline-ms: 250\r\n".len());
        assert_eq!(lines.as_bytes(), b"host: 10.0.0.7:8080\r\n");
    }

    #[test]
    fn a_line_is_removed_by_its_name_alone() {
        let mut lines = HeaderLines::new();
        lines.push(&HeaderName::from_static("x-forwarded-for"), b"10.0.0.1");
        lines.push(&HeaderName::from_static("x-forwarded"), b"1");
        lines.push(&HeaderName::from_static("x-forwarded-for"), b"10.0.0.2");
        lines.remove(&HeaderName::from_static("x-forwarded-for"));
        assert_eq!(lines.as_bytes(), b"x-forwarded: 1\r\n");
    }

    #[test]
    fn attempt_fields_are_the_names_written() {
        use crate::deadline::DEADLINE_HEADER;
        use crate::trace::{TRACEPARENT, TRACESTATE};
        assert_eq!(
            super::super::ATTEMPT_FIELDS,
            [
                http::header::HOST.as_str(),
                DEADLINE_HEADER.as_str(),
                TRACEPARENT.as_str(),
                TRACESTATE.as_str(),
            ]
        );
    }

    #[test]
    fn named_fields_are_removed_every_copy() {
        let mut headers = HeaderMap::new();
        headers.append(http::header::HOST, HeaderValue::from_static("a"));
        headers.append(http::header::HOST, HeaderValue::from_static("b"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        remove_fields(&mut headers, &["accept"]);
        assert_eq!(headers.len(), 3);
        remove_fields(&mut headers, &["accept", "host"]);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }
}
