//! How fast a request body must arrive: the gap and minimum-rate rules, checked lazily.
//!
//! Why two rules: a client that sends headers and then nothing (or one byte a second) holds a
//! connection, a task and a slot of the connection limit for as long as the server lets it; a
//! few thousand such sockets starve everyone else. The minimum rate (as Kestrel's
//! `MinRequestBodyDataRate`) cuts trickles and silence after a grace period; the gap cuts a
//! body that arrived quickly and then stopped, which the rate alone would allow for minutes.
//!
//! Why lazily: most bodies arrive with their headers, so the first read finds the bytes
//! already there. The clock is read and a timer allocated only when a read has to wait, and
//! the state kept inline is a few words, so the common request pays next to nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

/// The pace a request body must keep; see [`ServerConfig`](crate::ServerConfig). Kept in
/// milliseconds so that every request body carries it in a few bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyPace {
    /// The longest wait for the next byte.
    gap_ms: u32,
    /// The least average rate, in bytes per second of waiting; 0 turns the rule off.
    min_rate: u32,
    /// How long the rate rule waits before it applies.
    grace_ms: u32,
}

impl BodyPace {
    /// A pace; durations saturate at about 49 days, which is "never" for a body.
    pub(crate) fn new(gap: Duration, min_rate: u32, grace: Duration) -> Self {
        let ms = |duration: Duration| u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        Self {
            gap_ms: ms(gap),
            min_rate,
            grace_ms: ms(grace),
        }
    }

    pub(crate) fn with_gap(self, gap: Duration) -> Self {
        Self::new(gap, self.min_rate, self.grace())
    }

    pub(crate) fn with_rate(self, min_rate: u32, grace: Duration) -> Self {
        Self::new(self.gap(), min_rate, grace)
    }

    fn gap(self) -> Duration {
        Duration::from_millis(self.gap_ms.into())
    }

    fn grace(self) -> Duration {
        Duration::from_millis(self.grace_ms.into())
    }
}

/// A request body was cut because it arrived too slowly; it answers 408.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout {
    rule: Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// No byte for this many milliseconds.
    Gap(u32),
    /// Fewer bytes per second of waiting than this.
    Rate(u32),
}

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Rule::Gap(ms) => write!(f, "no byte of the request body arrived for {ms} ms"),
            Rule::Rate(rate) => write!(
                f,
                "the request body arrived slower than {rate} bytes per second"
            ),
        }
    }
}

impl std::error::Error for BodyTimeout {}

/// The pace of one body: a byte count inline, the clock only once a read had to wait.
pub(crate) struct Pacer {
    pace: BodyPace,
    cut: Option<BodyTimeout>,
    received: u64,
    clock: Option<Box<Clock>>,
}

/// The waiting a body has done.
struct Clock {
    /// Time spent waiting for bytes before the current wait: only waiting counts against the
    /// client, not time the handler spent elsewhere between reads.
    waited: Duration,
    waiting_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl fmt::Debug for Pacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pacer")
            .field("pace", &self.pace)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Pacer {
    pub(crate) fn new(pace: BodyPace) -> Self {
        Self {
            pace,
            cut: None,
            received: 0,
            clock: None,
        }
    }

    /// Why the body was cut, once it was.
    pub(crate) fn timed_out(&self) -> Option<BodyTimeout> {
        self.cut
    }

    /// A read returned: `bytes` arrived (or the body ended, or failed, with 0).
    pub(crate) fn arrived(&mut self, bytes: usize) {
        if let Some(clock) = &mut self.clock {
            if let Some(since) = clock.waiting_since.take() {
                clock.waited += since.elapsed();
            }
        }
        self.received += bytes as u64;
    }

    /// A read has to wait: arms the timer for the earlier rule, or fails when one tripped.
    pub(crate) fn wait(&mut self, cx: &mut Context<'_>) -> Result<(), BodyTimeout> {
        let now = Instant::now();
        let clock = self.clock.get_or_insert_with(|| {
            Box::new(Clock {
                waited: Duration::ZERO,
                waiting_since: None,
                timer: Box::pin(sleep_until(now)),
            })
        });
        let since = *clock.waiting_since.get_or_insert(now);
        let (deadline, rule) = deadline(self.pace, self.received, clock.waited, since);
        let tripped = deadline <= now || {
            if clock.timer.deadline() != deadline {
                clock.timer.as_mut().reset(deadline);
            }
            clock.timer.as_mut().poll(cx).is_ready()
        };
        if tripped {
            let cut = BodyTimeout { rule };
            self.cut = Some(cut);
            return Err(cut);
        }
        Ok(())
    }
}

/// When the wait begun at `since` breaks a rule, and which, after `waited` spent waiting
/// before it for the `received` bytes.
fn deadline(pace: BodyPace, received: u64, waited: Duration, since: Instant) -> (Instant, Rule) {
    let gap = (later(since, pace.gap()), Rule::Gap(pace.gap_ms));
    if pace.min_rate == 0 {
        return gap;
    }
    // While waiting, the average falls below the minimum once the time spent waiting
    // exceeds `received / min_rate`; the rule applies only after the grace period.
    let earned = Duration::from_secs_f64(received as f64 / f64::from(pace.min_rate));
    let allowed = earned.max(pace.grace()).saturating_sub(waited);
    let rate = (later(since, allowed), Rule::Rate(pace.min_rate));
    if rate.0 < gap.0 {
        rate
    } else {
        gap
    }
}

/// `since + wait`, saturating far in the future: a rule turned off waits "forever".
fn later(since: Instant, wait: Duration) -> Instant {
    since
        .checked_add(wait)
        .unwrap_or_else(|| since + Duration::from_secs(100 * 365 * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace() -> BodyPace {
        BodyPace::new(Duration::from_secs(10), 100, Duration::from_secs(2))
    }

    fn waker_context() -> Context<'static> {
        Context::from_waker(std::task::Waker::noop())
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_cut_by_the_rate_rule_after_the_grace_period() {
        let mut pacer = Pacer::new(pace());
        assert!(pacer.wait(&mut waker_context()).is_ok());
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert!(pacer.wait(&mut waker_context()).is_ok());
        tokio::time::advance(Duration::from_millis(2)).await;
        let cut = pacer.wait(&mut waker_context()).unwrap_err();
        assert_eq!(cut.rule, Rule::Rate(100));
        assert_eq!(pacer.timed_out(), Some(cut));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_earn_time_until_the_gap_rule_cuts_a_stall() {
        let mut pacer = Pacer::new(pace());
        assert!(pacer.wait(&mut waker_context()).is_ok());
        tokio::time::advance(Duration::from_millis(10)).await;
        // 100 KB at 100 B/s earn 1 000 s of waiting: the 10 s gap cuts first.
        pacer.arrived(100_000);
        assert!(pacer.wait(&mut waker_context()).is_ok());
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(pacer.wait(&mut waker_context()).is_ok());
        tokio::time::advance(Duration::from_millis(2)).await;
        let cut = pacer.wait(&mut waker_context()).unwrap_err();
        assert_eq!(cut.rule, Rule::Gap(10_000));
    }

    #[tokio::test(start_paused = true)]
    async fn time_not_spent_waiting_does_not_count() {
        let mut pacer = Pacer::new(pace());
        pacer.arrived(10);
        // The handler is busy for a minute between reads: not the client's fault.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(pacer.wait(&mut waker_context()).is_ok());
        tokio::time::advance(Duration::from_millis(1_500)).await;
        assert!(pacer.wait(&mut waker_context()).is_ok());
    }

    #[test]
    fn a_body_stays_small() {
        // Every request and response carries a `Body`: the pace must not bloat it.
        assert!(std::mem::size_of::<Pacer>() <= 40);
        assert!(std::mem::size_of::<crate::Body>() <= 96);
    }
}
