//! The field checks behind `#[resource(validate(...))]`.
//!
//! `#[derive(Resource)]` turns each rule into one call of a function here, in the generated
//! [`Resource::validate`](super::Resource::validate); they can be called by hand too. Every
//! function takes the field's JSON name, a reference to its value, the rule's arguments and the
//! list of errors, and pushes one [`FieldError`] per broken rule, so that a request learns about
//! every failing field at once. An absent optional value (`Option::None`) passes every rule but
//! [`custom`], which sees the field as it is declared.
//!
//! ```
//! use microkit::resource::validate::{email, length, range, Bound};
//! use microkit::FieldError;
//!
//! let mut errors = Vec::new();
//! length("name", "", Some(1), Some(100), &mut errors);
//! range("stock", &-1, Some(Bound::Int(0)), None, &mut errors);
//! email("contact", &Some("not-an-email".to_owned()), &mut errors);
//! assert_eq!(
//!     errors,
//!     [
//!         FieldError::new("name", "must be at least 1 character long"),
//!         FieldError::new("stock", "must be at least 0"),
//!         FieldError::new("contact", "must be an email address"),
//!     ]
//! );
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, OnceLock, RwLock};

use regex::Regex;

use crate::FieldError;

/// What [`length`] measures: characters for text, items for collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Unicode scalar values (`char`s) of a string.
    Chars,
    /// Items of a collection.
    Items,
}

/// A value whose length [`length`] can check.
#[diagnostic::on_unimplemented(
    message = "`validate(length)` cannot measure a `{Self}`",
    label = "`{Self}` has no length",
    note = "`length` checks strings (`String`, `&str`), collections (`Vec`, sets, maps) and `Option`s of them"
)]
pub trait Length {
    /// The length and its unit, or `None` for an absent optional value.
    fn length(&self) -> Option<(usize, Unit)>;
}

impl Length for str {
    fn length(&self) -> Option<(usize, Unit)> {
        Some((self.chars().count(), Unit::Chars))
    }
}

impl Length for String {
    fn length(&self) -> Option<(usize, Unit)> {
        self.as_str().length()
    }
}

impl Length for Cow<'_, str> {
    fn length(&self) -> Option<(usize, Unit)> {
        (**self).length()
    }
}

impl<T> Length for [T] {
    fn length(&self) -> Option<(usize, Unit)> {
        Some((self.len(), Unit::Items))
    }
}

impl<T, const N: usize> Length for [T; N] {
    fn length(&self) -> Option<(usize, Unit)> {
        Some((N, Unit::Items))
    }
}

macro_rules! collection_length {
    ($($ty:ident<$($param:ident),+>),+ $(,)?) => {$(
        impl<$($param),+> Length for $ty<$($param),+> {
            fn length(&self) -> Option<(usize, Unit)> {
                Some((self.len(), Unit::Items))
            }
        }
    )+};
}

collection_length!(Vec<T>, VecDeque<T>, HashSet<T, S>, BTreeSet<T>, HashMap<K, V, S>, BTreeMap<K, V>);

impl<T: Length> Length for Option<T> {
    fn length(&self) -> Option<(usize, Unit)> {
        self.as_ref().and_then(Length::length)
    }
}

macro_rules! forward_length {
    ($($ty:ident),+) => {$(
        impl<T: Length + ?Sized> Length for $ty<T> {
            fn length(&self) -> Option<(usize, Unit)> {
                (**self).length()
            }
        }
    )+};
}

forward_length!(Box, Rc, Arc);

impl<T: Length + ?Sized> Length for &T {
    fn length(&self) -> Option<(usize, Unit)> {
        (**self).length()
    }
}

/// Checks that `value` has at least `min` and at most `max` characters (text) or items
/// (collections).
pub fn length<T: Length + ?Sized>(
    field: &str,
    value: &T,
    min: Option<usize>,
    max: Option<usize>,
    errors: &mut Vec<FieldError>,
) {
    let Some((len, unit)) = value.length() else {
        return;
    };
    let describe = |n: usize| match (unit, n) {
        (Unit::Chars, 1) => "1 character long".to_owned(),
        (Unit::Chars, n) => format!("{n} characters long"),
        (Unit::Items, 1) => "1 item".to_owned(),
        (Unit::Items, n) => format!("{n} items"),
    };
    let verb = match unit {
        Unit::Chars => "be",
        Unit::Items => "have",
    };
    if let Some(min) = min.filter(|&min| len < min) {
        errors.push(FieldError::new(
            field,
            format!("must {verb} at least {}", describe(min)),
        ));
    } else if let Some(max) = max.filter(|&max| len > max) {
        errors.push(FieldError::new(
            field,
            format!("must {verb} at most {}", describe(max)),
        ));
    }
}

/// A bound of a [`range`] rule, as written in the attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// An integer bound (`min = 0`).
    Int(i128),
    /// A decimal bound (`max = 9.5`).
    Float(f64),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Int(n) => fmt::Display::fmt(n, f),
            Bound::Float(x) => fmt::Display::fmt(x, f),
        }
    }
}

impl Bound {
    /// The bound as a JSON number (for `minimum` and `maximum` in a schema).
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Bound::Int(n) => i64::try_from(n)
                .map(serde_json::Value::from)
                .or_else(|_| u64::try_from(n).map(serde_json::Value::from))
                .unwrap_or_else(|_| serde_json::Value::from(n as f64)),
            Bound::Float(x) => serde_json::Value::from(x),
        }
    }

    /// How `value` compares with this bound: exactly for integers, as `f64` when either is
    /// decimal. `None` for NaN.
    fn compare(self, value: Bound) -> Option<Ordering> {
        match (value, self) {
            (Bound::Int(a), Bound::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Bound::Int(n) => n as f64,
            Bound::Float(x) => x,
        }
    }
}

/// A number [`range`] can check.
#[diagnostic::on_unimplemented(
    message = "`validate(range)` cannot compare a `{Self}`",
    label = "`{Self}` is not a number",
    note = "`range` checks integers, `f32`, `f64` and `Option`s of them"
)]
pub trait Number {
    /// The value, or `None` for an absent optional value.
    fn number(&self) -> Option<Bound>;
}

macro_rules! int_number {
    ($($ty:ty),+) => {$(
        impl Number for $ty {
            fn number(&self) -> Option<Bound> {
                Some(Bound::Int(i128::from(*self)))
            }
        }
    )+};
}

int_number!(i8, i16, i32, i64, i128, u8, u16, u32, u64);

macro_rules! wide_number {
    ($($ty:ty),+) => {$(
        impl Number for $ty {
            fn number(&self) -> Option<Bound> {
                Some(i128::try_from(*self).map_or(Bound::Float(*self as f64), Bound::Int))
            }
        }
    )+};
}

wide_number!(u128, isize, usize);

impl Number for f32 {
    fn number(&self) -> Option<Bound> {
        Some(Bound::Float(f64::from(*self)))
    }
}

impl Number for f64 {
    fn number(&self) -> Option<Bound> {
        Some(Bound::Float(*self))
    }
}

impl<T: Number> Number for Option<T> {
    fn number(&self) -> Option<Bound> {
        self.as_ref().and_then(Number::number)
    }
}

impl<T: Number + ?Sized> Number for &T {
    fn number(&self) -> Option<Bound> {
        (**self).number()
    }
}

impl<T: Number + ?Sized> Number for Box<T> {
    fn number(&self) -> Option<Bound> {
        (**self).number()
    }
}

/// Checks that `value` is at least `min` and at most `max` (both inclusive).
pub fn range<T: Number + ?Sized>(
    field: &str,
    value: &T,
    min: Option<Bound>,
    max: Option<Bound>,
    errors: &mut Vec<FieldError>,
) {
    let Some(value) = value.number() else {
        return;
    };
    let below = |min: &Bound| min.compare(value).is_none_or(|o| o == Ordering::Less);
    let above = |max: &Bound| max.compare(value).is_none_or(|o| o == Ordering::Greater);
    if let Some(min) = min.filter(below) {
        errors.push(FieldError::new(field, format!("must be at least {min}")));
    } else if let Some(max) = max.filter(above) {
        errors.push(FieldError::new(field, format!("must be at most {max}")));
    }
}

/// Text that [`email`] and [`pattern`] can check.
#[diagnostic::on_unimplemented(
    message = "`validate(email)` and `validate(pattern)` cannot check a `{Self}`",
    label = "`{Self}` is not text",
    note = "`email` and `pattern` check strings (`String`, `&str`) and `Option`s of them"
)]
pub trait Text {
    /// The text, or `None` for an absent optional value.
    fn text(&self) -> Option<&str>;
}

impl Text for str {
    fn text(&self) -> Option<&str> {
        Some(self)
    }
}

impl Text for String {
    fn text(&self) -> Option<&str> {
        Some(self)
    }
}

impl Text for Cow<'_, str> {
    fn text(&self) -> Option<&str> {
        Some(self)
    }
}

impl<T: Text> Text for Option<T> {
    fn text(&self) -> Option<&str> {
        self.as_ref().and_then(Text::text)
    }
}

macro_rules! forward_text {
    ($($ty:ident),+) => {$(
        impl<T: Text + ?Sized> Text for $ty<T> {
            fn text(&self) -> Option<&str> {
                (**self).text()
            }
        }
    )+};
}

forward_text!(Box, Rc, Arc);

impl<T: Text + ?Sized> Text for &T {
    fn text(&self) -> Option<&str> {
        (**self).text()
    }
}

/// Checks that `value` looks like an email address.
///
/// The check is pragmatic, not RFC 5322: no whitespace, exactly one `@`, a non-empty local part
/// and a domain of non-empty dot-separated labels with at least one dot. Whether the address
/// exists is for a confirmation mail to find out.
pub fn email<T: Text + ?Sized>(field: &str, value: &T, errors: &mut Vec<FieldError>) {
    if let Some(text) = value.text() {
        if !is_email(text) {
            errors.push(FieldError::new(field, "must be an email address"));
        }
    }
}

fn is_email(text: &str) -> bool {
    if text.len() > 254 || text.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// Checks that `value` matches the regular expression `pattern` (`regex` syntax, unanchored
/// as JSON Schema's `pattern`: write `^...$` to match the whole value).
///
/// Each pattern is compiled once, on first use, and kept in a process-wide cache.
/// `#[derive(Resource)]` rejects a malformed pattern at compile time; called by hand with one,
/// every value fails (and the reason is logged).
pub fn pattern<T: Text + ?Sized>(
    field: &str,
    value: &T,
    pattern: &'static str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(text) = value.text() {
        if !compiled(pattern).is_some_and(|re| re.is_match(text)) {
            errors.push(FieldError::new(field, format!("must match {pattern}")));
        }
    }
}

type Cache = RwLock<HashMap<&'static str, Option<Regex>>>;

fn compiled(pattern: &'static str) -> Option<Regex> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(re) = cache.read().unwrap_or_else(|e| e.into_inner()).get(pattern) {
        return re.clone();
    }
    let re = Regex::new(pattern)
        .map_err(|e| tracing::error!(pattern, error = %e, "invalid validation pattern"))
        .ok();
    cache
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(pattern)
        .or_insert(re)
        .clone()
}

/// Runs a user check: `check` gets the field as declared (an `Option` stays one) and returns
/// `Err(message)` when the value is not acceptable.
pub fn custom<T: ?Sized>(
    field: &str,
    value: &T,
    check: impl FnOnce(&T) -> Result<(), String>,
    errors: &mut Vec<FieldError>,
) {
    if let Err(message) = check(value) {
        errors.push(FieldError::new(field, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(run: impl FnOnce(&mut Vec<FieldError>)) -> Vec<String> {
        let mut errors = Vec::new();
        run(&mut errors);
        errors.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn length_counts_characters_and_items() {
        assert_eq!(
            messages(|e| length("f", "", Some(1), None, e)),
            ["must be at least 1 character long"]
        );
        assert_eq!(
            messages(|e| length("f", &"héé".to_owned(), None, Some(2), e)),
            ["must be at most 2 characters long"]
        );
        assert!(messages(|e| length("f", "héé", Some(3), Some(3), e)).is_empty());
        assert_eq!(
            messages(|e| length("f", &vec![1, 2, 3], None, Some(2), e)),
            ["must have at most 2 items"]
        );
        assert!(messages(|e| length("f", &None::<String>, Some(1), None, e)).is_empty());
        assert_eq!(
            messages(|e| length("f", &Some(String::new()), Some(2), None, e)),
            ["must be at least 2 characters long"]
        );
    }

    #[test]
    fn range_compares_integers_exactly_and_floats_as_floats() {
        let (zero, ten) = (Some(Bound::Int(0)), Some(Bound::Int(10)));
        assert_eq!(
            messages(|e| range("f", &-1i64, zero, ten, e)),
            ["must be at least 0"]
        );
        assert_eq!(
            messages(|e| range("f", &11u8, zero, ten, e)),
            ["must be at most 10"]
        );
        assert!(messages(|e| range("f", &u64::MAX, zero, None, e)).is_empty());
        assert_eq!(
            messages(|e| range("f", &10.5f64, zero, ten, e)),
            ["must be at most 10"]
        );
        assert_eq!(
            messages(|e| range("f", &0.25f32, Some(Bound::Float(0.5)), None, e)),
            ["must be at least 0.5"]
        );
        assert_eq!(
            messages(|e| range("f", &f64::NAN, zero, None, e)),
            ["must be at least 0"]
        );
        assert!(messages(|e| range("f", &None::<i32>, zero, None, e)).is_empty());
    }

    #[test]
    fn email_is_pragmatic() {
        for good in ["a@b.example", "first.last+tag@mail.example.org"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "@b.example",
            "a@b",
            "a@@b.example",
            "a b@c.example",
            "a@.b",
            "a@b.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(messages(|e| email("f", &None::<String>, e)).is_empty());
    }

    #[test]
    fn patterns_are_compiled_once_and_bad_ones_fail() {
        assert!(messages(|e| pattern("f", "abc", "^[a-z]+$", e)).is_empty());
        assert_eq!(
            messages(|e| pattern("f", "Abc", "^[a-z]+$", e)),
            ["must match ^[a-z]+$"]
        );
        assert_eq!(messages(|e| pattern("f", "x", "(", e)), ["must match ("]);
        assert!(compiled("^[a-z]+$").is_some());
    }

    #[test]
    fn custom_reports_the_message() {
        let even = |n: &u32| {
            if n % 2 == 0 {
                Ok(())
            } else {
                Err("must be even".to_owned())
            }
        };
        assert_eq!(messages(|e| custom("f", &3, even, e)), ["must be even"]);
        assert!(messages(|e| custom("f", &4, even, e)).is_empty());
    }
}
