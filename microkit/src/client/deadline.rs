//! Deadlines that travel with a call chain.
//!
//! A caller's deadline reaches the next service as [`DEADLINE_HEADER`], the milliseconds left.
//! A microkit server that receives it answers 504 at once if no time is left, cuts the handler
//! off with a 504 when the time runs out, and makes the deadline current for the handler, so
//! that its own calls through a [`ServiceClient`](super::ServiceClient) inherit what is left.

use std::future::Future;

use http::HeaderName;
use tokio::time::Instant;

/// The header that carries the milliseconds left before the caller gives up.
pub const DEADLINE_HEADER: HeaderName = HeaderName::from_static("x-microkit-deadline-ms");

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The deadline of the request being handled, if its caller sent one.
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// Runs `future` with `deadline` as the current deadline.
pub async fn with_deadline<F: Future>(deadline: Instant, future: F) -> F::Output {
    DEADLINE.scope(deadline, future).await
}

/// Reads a deadline header: the instant it points to, from now.
pub fn parse_deadline(value: &http::HeaderValue) -> Option<Instant> {
    let millis: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Instant::now() + std::time::Duration::from_millis(millis))
}
