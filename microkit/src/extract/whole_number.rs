//! Whole numbers written as floats (`5.0`, `5e0`, `50e-1`), read as the integers they are.
//!
//! JSON has one kind of number, and JSON Schema's `integer` is any number without a fraction,
//! so a client generating from a document may well send `128.0` for an integer. The server
//! reads such a number as an integer when, and only when, its exact decimal value is a whole
//! number from `i64::MIN` to `u64::MAX` (the integers the stores and serde hold). The decision
//! is made on the digits, never through an `f64`: `-9223372036854775809.0` rounds to
//! `i64::MIN` as a float, but it is one past it, and `5.0000000000000001` rounds to `5.0` but
//! has a fraction. One rule for a body's numbers and a query filter's text.

use serde_json::Number;

/// The integer a JSON number token written as a float stands for, exactly; `None` for a
/// token with a fraction, outside `i64::MIN..=u64::MAX`, written as an integer already (serde
/// reads those) or not a JSON number at all.
///
/// Any exponent is decided without building its digits: `1e400` and `1e-400` cost as little
/// as `1e4`.
pub(crate) fn whole_number(token: &str) -> Option<Number> {
    let (negative, unsigned) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(exponent(&unsigned[at + 1..])?)),
        None => (unsigned, None),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (mantissa, None),
    };
    // JSON's grammar: digits with no leading zero, a fraction of one digit or more.
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let integer_ok = digits(integer) && (integer == "0" || !integer.starts_with('0'));
    if !integer_ok || !fraction.is_none_or(digits) || (fraction.is_none() && exponent.is_none()) {
        return None;
    }
    let fraction = fraction.unwrap_or_default();
    // The value is `significand × 10^scale`, with the significand's digits as written.
    let significand = format!("{integer}{fraction}");
    let significand = significand.trim_start_matches('0');
    let zeros = significand.len() - significand.trim_end_matches('0').len();
    let significand = significand.trim_end_matches('0');
    if significand.is_empty() {
        return Some(Number::from(0u64)); // `0.0`, `-0.0`, `0e999`.
    }
    // Lengths are bounded by the body limit, far below `i64::MAX`.
    let scale = exponent
        .unwrap_or(0)
        .saturating_sub(fraction.len() as i64)
        .saturating_add(zeros as i64);
    // With no trailing zero, a negative scale leaves a fraction; u64::MAX has 20 digits.
    if scale < 0 || scale.saturating_add(significand.len() as i64) > 20 {
        return None;
    }
    let magnitude: u128 = format!("{significand}{}", "0".repeat(scale as usize))
        .parse()
        .ok()?;
    if negative {
        // Below 10^21: an `i128` holds it.
        i64::try_from(-(magnitude as i128)).ok().map(Number::from)
    } else if let Ok(signed) = i64::try_from(magnitude) {
        Some(Number::from(signed))
    } else {
        u64::try_from(magnitude).ok().map(Number::from)
    }
}

/// An exponent's digits with their sign, saturating: past ±`i64::MAX` the answer is the same.
fn exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0i64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(i64::from(digit - b'0'))
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// `text` (well-formed JSON) with every number written as a float that is a whole number (see
/// [`whole_number`]) written as that integer; `None` when there is none.
pub(crate) fn whole_numbers_as_integers(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut rewritten = String::new();
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => at = string_end(bytes, at),
            b'-' | b'0'..=b'9' => {
                let end = at
                    + bytes[at..]
                        .iter()
                        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                        .unwrap_or(bytes.len() - at);
                if let Some(integer) = whole_number(&text[at..end]) {
                    rewritten.push_str(&text[copied..at]);
                    rewritten.push_str(&integer.to_string());
                    copied = end;
                }
                at = end;
            }
            _ => at += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    rewritten.push_str(&text[copied..]);
    Some(rewritten)
}

/// Just past the string that opens at `start`, escapes and all.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(token: &str) -> Option<String> {
        whole_number(token).map(|number| number.to_string())
    }

    #[test]
    fn whole_numbers_in_float_forms_are_their_integers() {
        for (token, integer) in [
            ("5.0", "5"),
            ("5e0", "5"),
            ("5E+0", "5"),
            ("50e-1", "5"),
            ("-3.00", "-3"),
            ("0.5e1", "5"),
            ("1.5e3", "1500"),
            ("0.0", "0"),
            ("-0.0", "0"),
            ("0e999999999999999999999999", "0"),
            ("0.000000000000000000000000005e27", "5"),
            ("-9223372036854775808.0", "-9223372036854775808"),
            ("-9.223372036854775808e18", "-9223372036854775808"),
            ("9223372036854775807.0", "9223372036854775807"),
            ("9223372036854775808.0", "9223372036854775808"),
            ("18446744073709551615.0", "18446744073709551615"),
            ("1.8446744073709551615e19", "18446744073709551615"),
            ("1e19", "10000000000000000000"),
        ] {
            assert_eq!(read(token).as_deref(), Some(integer), "{token}");
        }
    }

    #[test]
    fn fractions_out_of_range_integers_and_non_numbers_are_none() {
        for token in [
            "5.5",
            "5.0000000000000001",
            "1e-1",
            "-9223372036854775809.0",
            "-9.223372036854775809e18",
            "18446744073709551616.0",
            "1e20",
            "-1e19",
            "1e400",
            "1e-400",
            "1e99999999999999999999999999",
            "1e-99999999999999999999999999",
            "5",
            "-7",
            "",
            "-",
            "5.",
            ".5",
            "05.0",
            "+5.0",
            "5e",
            "5e+",
            "5.0x",
            "--5.0",
            "1e5e5",
            "NaN",
            "inf",
        ] {
            assert_eq!(read(token), None, "{token}");
        }
    }

    #[test]
    fn a_huge_exponent_with_many_zeros_is_decided_at_once() {
        let token = format!("1{}e-1000000", "0".repeat(1_000_000));
        assert_eq!(read(&token).as_deref(), Some("1"));
        let token = format!("1.{}e1", "0".repeat(1_000_000));
        assert_eq!(read(&token).as_deref(), Some("10"));
    }

    #[test]
    fn a_document_is_rewritten_outside_its_strings_only() {
        let text = r#"{"a": 5.0, "b\"5.0": "5.0", "c": [-3e0, 1.5, 7, 1e400], "d": -9223372036854775809.0}"#;
        assert_eq!(
            whole_numbers_as_integers(text).as_deref(),
            Some(
                r#"{"a": 5, "b\"5.0": "5.0", "c": [-3, 1.5, 7, 1e400], "d": -9223372036854775809.0}"#
            )
        );
        assert_eq!(whole_numbers_as_integers(r#"{"a": 5, "b": 1.5}"#), None);
    }
}
