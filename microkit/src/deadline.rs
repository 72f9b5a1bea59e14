//! Deadlines that travel with a call chain.
//!
//! A caller's deadline reaches the next service as [`DEADLINE_HEADER`], the milliseconds left.
//! A microkit server that receives it answers 504 at once if no time is left, cuts the handler
//! off with a 504 when the time runs out, and makes the deadline [`current`] for the handler,
//! so that its own calls through a [`ServiceClient`](crate::client::ServiceClient) inherit
//! what is left (the client sends the smaller of that and its own
//! [`ClientConfig::deadline`](crate::client::ClientConfig::deadline)).
//!
//! The server reads the header and the client writes it; both do so here, so the header's
//! form lives in one place.

use std::cell::Cell;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::time::Instant;

/// The header that carries the milliseconds left before the caller gives up.
pub const DEADLINE_HEADER: HeaderName = HeaderName::from_static(DEADLINE_NAME);

const DEADLINE_NAME: &str = "x-microkit-deadline-ms";

thread_local! {
    /// The deadline of the request whose future this thread is polling: set around each poll,
    /// as a task-local would be, with one swap in and one out (see [`in_scope`]).
    static CURRENT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The deadline of the request being handled, if its caller sent one.
pub fn current() -> Option<Instant> {
    CURRENT.with(Cell::get)
}

/// Runs `f` (a poll of the request's future) with `deadline` as the [`current`] deadline,
/// then makes current again what was before, also when `f` panics.
pub(crate) fn in_scope<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Instant>);

    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }

    let _restore = Restore(CURRENT.with(|current| current.replace(Some(deadline))));
    f()
}

/// Whether a field named `name` (its lowercase text, as [`HeaderName::as_str`] gives it) is
/// [`DEADLINE_HEADER`]: the server finds the field in the one walk over a request's fields it
/// makes anyway, rather than hashing this long custom name in a lookup.
pub(crate) fn is_deadline_field(name: &str) -> bool {
    name == DEADLINE_NAME
}

/// The deadline a [`DEADLINE_HEADER`] value points to, from now. `None` when it is not a
/// number of milliseconds.
pub(crate) fn from_value(value: &HeaderValue) -> Option<Instant> {
    let millis: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Instant::now() + Duration::from_millis(millis))
}

/// Writes [`DEADLINE_HEADER`] with `remaining` as a header line (at least 1 ms: 0 would read
/// as "already passed" to a server that had time to spare).
pub(crate) fn write_line(lines: &mut crate::client::HeaderLines, remaining: Duration) {
    let mut digits = itoa::Buffer::new();
    lines.push(
        &DEADLINE_HEADER,
        digits.format(header_millis(remaining)).as_bytes(),
    );
}

fn header_millis(remaining: Duration) -> u64 {
    u64::try_from(remaining.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    /// The headers a server reads from the line written for `remaining`.
    fn written(remaining: Duration) -> HeaderMap {
        let mut lines = crate::client::HeaderLines::new();
        write_line(&mut lines, remaining);
        let line = std::str::from_utf8(lines.as_bytes()).unwrap();
        let (name, value) = line.trim_end().split_once(": ").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn a_header_written_reads_back_as_about_the_same_deadline() {
        let headers = written(Duration::from_millis(250));
        assert_eq!(headers[&DEADLINE_HEADER], "250");
        let deadline = from_value(&headers[&DEADLINE_HEADER]).expect("a deadline");
        let left = deadline - Instant::now();
        assert!(left <= Duration::from_millis(250) && left > Duration::from_millis(200));
    }

    #[tokio::test]
    async fn no_time_left_is_still_sent_as_one_millisecond() {
        let headers = written(Duration::ZERO);
        assert_eq!(headers[&DEADLINE_HEADER], "1");
    }

    #[test]
    fn a_malformed_header_is_no_deadline() {
        for text in ["", "soon", "-5", "1.5", "99999999999999999999999"] {
            assert!(
                from_value(&HeaderValue::from_static(text)).is_none(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_deadline_is_current_inside_its_scope_only() {
        let outer = Instant::now() + Duration::from_secs(1);
        let inner = outer + Duration::from_secs(1);
        let seen = in_scope(outer, || (current(), in_scope(inner, current), current()));
        assert_eq!(seen, (Some(outer), Some(inner), Some(outer)));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panic_inside_the_scope_leaves_no_deadline_behind() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let panicked = std::panic::catch_unwind(|| in_scope(deadline, || panic!("on purpose")));
        assert!(panicked.is_err());
        assert_eq!(current(), None);
    }
}
