//! The W3C Trace Context headers, read and written by hand: a `traceparent` is 55 bytes of
//! fixed layout, and every request reads one, so no parser library earns its place here.
//!
//! `traceparent: 00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`, lowercase only.
//! Version `ff` is invalid; a later version is read for its first four fields, as the
//! specification asks, provided what follows them starts with `-`.

use http::header::GetAll;
use http::{HeaderName, HeaderValue};

use super::{SpanId, TraceId};

/// The W3C header naming the trace and the caller's span.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The W3C header carrying vendors' trace state alongside `traceparent`.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A `traceparent` as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) sampled: bool,
}

const LEN: usize = 55;

/// Reads a `traceparent` value; `None` when it is malformed in any way.
pub(crate) fn parse(value: &[u8]) -> Option<Parent> {
    if value.len() < LEN {
        return None;
    }
    let version = parse_hex_u8(&value[0..2])?;
    match version {
        0xff => return None,
        0x00 if value.len() != LEN => return None,
        // A later version may append fields, each after a `-`.
        _ if value.len() > LEN && value[LEN] != b'-' => return None,
        _ => {}
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_u128(parse_hex_u128(&value[3..35])?)?;
    let span_id = SpanId::from_u64(parse_hex_u64(&value[36..52])?)?;
    let flags = parse_hex_u8(&value[53..55])?;
    Some(Parent {
        trace_id,
        span_id,
        sampled: flags & 0x01 == 1,
    })
}

/// Writes the `traceparent` of version `00` for this span. Flags other than `sampled` are
/// not passed on: version `00` defines no other.
pub(crate) fn format(trace_id: TraceId, span_id: SpanId, sampled: bool) -> HeaderValue {
    HeaderValue::from_bytes(&text(trace_id, span_id, sampled))
        .expect("hex digits and dashes are a valid header value")
}

/// The bytes of [`format`]'s value, for writing straight onto the wire.
pub(crate) fn text(trace_id: TraceId, span_id: SpanId, sampled: bool) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[0..3].copy_from_slice(b"00-");
    trace_id.write_hex(&mut out[3..35]);
    out[35] = b'-';
    span_id.write_hex(&mut out[36..52]);
    out[52] = b'-';
    out[53..55].copy_from_slice(if sampled { b"01" } else { b"00" });
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (twice as long).
pub(crate) fn write_hex(bytes: &[u8], out: &mut [u8]) {
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[(byte >> 4) as usize];
        pair[1] = HEX[(byte & 0x0f) as usize];
    }
}

/// The value of each lowercase hex digit, [`NOT_HEX`] for every other byte (uppercase is
/// invalid in trace context): one load per digit and no branch.
const DIGITS: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 10 {
        table[b'0' as usize + digit] = digit as u8;
        digit += 1;
    }
    let mut letter = 0;
    while letter < 6 {
        table[b'a' as usize + letter] = 10 + letter as u8;
        letter += 1;
    }
    table
};
const NOT_HEX: u8 = 0x80;

fn parse_hex_u8(text: &[u8]) -> Option<u8> {
    hex_digits::<2>(text.try_into().ok()?).map(|value| value as u8)
}

/// 16 hex digits.
pub(crate) fn parse_hex_u64(text: &[u8]) -> Option<u64> {
    hex_digits::<16>(text.try_into().ok()?)
}

/// 32 hex digits.
pub(crate) fn parse_hex_u128(text: &[u8]) -> Option<u128> {
    let (high, low) = text.split_at_checked(16)?;
    Some(u128::from(parse_hex_u64(high)?) << 64 | u128::from(parse_hex_u64(low)?))
}

/// `N` (at most 16) hex digits; a fixed length, so the loop unrolls.
fn hex_digits<const N: usize>(text: &[u8; N]) -> Option<u64> {
    let mut value = 0u64;
    let mut invalid = 0u8;
    for &byte in text {
        let digit = DIGITS[byte as usize];
        invalid |= digit;
        value = value << 4 | u64::from(digit);
    }
    (invalid & NOT_HEX == 0).then_some(value)
}

/// The longest `tracestate` passed on; the specification lets a vendor drop a longer one.
const MAX_TRACESTATE: usize = 512;
/// The most list members a `tracestate` may hold.
const MAX_MEMBERS: usize = 32;

/// The `tracestate` to pass on: every field line joined with `,` (they are one list), or
/// `None` when it is malformed or oversized, since a half-understood state must not travel.
pub(crate) fn tracestate(values: GetAll<'_, HeaderValue>) -> Option<HeaderValue> {
    let mut joined: Vec<u8> = Vec::new();
    for value in values {
        if !joined.is_empty() {
            joined.push(b',');
        }
        joined.extend_from_slice(value.as_bytes());
    }
    if joined.len() > MAX_TRACESTATE {
        return None;
    }
    let mut members = 0;
    for member in joined.split(|&byte| byte == b',') {
        let member = member.trim_ascii();
        if member.is_empty() {
            continue;
        }
        members += 1;
        if members > MAX_MEMBERS || !valid_member(member) {
            return None;
        }
    }
    if members == 0 {
        return None;
    }
    HeaderValue::from_bytes(&joined).ok()
}

/// `key=value`: a key of lowercase letters, digits and `_-*/` (with one `@` for a tenant),
/// a value of printable ASCII other than `,` and `=`, not ending in a space.
fn valid_member(member: &[u8]) -> bool {
    let Some(equals) = member.iter().position(|&byte| byte == b'=') else {
        return false;
    };
    let (key, value) = (&member[..equals], &member[equals + 1..]);
    let key_ok = (1..=256).contains(&key.len())
        && key.iter().filter(|&&byte| byte == b'@').count() <= 1
        && key.iter().all(|&byte| {
            byte.is_ascii_lowercase()
                || byte.is_ascii_digit()
                || matches!(byte, b'_' | b'-' | b'*' | b'/' | b'@')
        });
    let value_ok = (1..=256).contains(&value.len())
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|&byte| (0x20..=0x7e).contains(&byte) && byte != b',' && byte != b'=');
    key_ok && value_ok
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_a_valid_traceparent_and_writes_it_back() {
        let parent = parse(VALID.as_bytes()).unwrap();
        assert!(parent.sampled);
        assert_eq!(format(parent.trace_id, parent.span_id, true), VALID);
        let unsampled = parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!unsampled.sampled);
    }

    #[test]
    fn refuses_every_malformed_traceparent() {
        let cases = [
            "",
            "00",
            // version ff is invalid
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // all-zero trace id and span id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // uppercase hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // bad lengths
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            // version 00 allows nothing after the flags
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // wrong separators, non-hex
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            // a later version must separate its extra fields with a dash
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ];
        for case in cases {
            assert_eq!(parse(case.as_bytes()), None, "{case:?}");
        }
    }

    #[test]
    fn reads_a_later_version_for_its_known_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-adds";
        let parent = parse(later.as_bytes()).unwrap();
        assert_eq!(format(parent.trace_id, parent.span_id, true), VALID);
    }

    fn state(values: &[&'static str]) -> Option<HeaderValue> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(TRACESTATE, HeaderValue::from_static(value));
        }
        tracestate(headers.get_all(TRACESTATE))
    }

    #[test]
    fn keeps_a_well_formed_tracestate_and_drops_the_rest() {
        assert_eq!(state(&["congo=t61rcWkgMzE"]).unwrap(), "congo=t61rcWkgMzE");
        assert_eq!(
            state(&["rojo=00f067aa0ba902b7", "tenant@vendor=x y"]).unwrap(),
            "rojo=00f067aa0ba902b7,tenant@vendor=x y"
        );
        assert_eq!(state(&["Upper=1"]), None);
        assert_eq!(state(&["novalue"]), None);
        assert_eq!(state(&["a=b=c"]), None);
        assert_eq!(state(&[" , "]), None);
        let long: &'static str = Box::leak(format!("k={}", "v".repeat(600)).into_boxed_str());
        assert_eq!(state(&[long]), None);
    }
}
