//! Exponential backoff with jitter, for retrying a registry without hammering it in step with
//! every other instance.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);

/// The next delay doubles from 100 ms up to a cap; jitter takes up to half of it off.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn new(cap: Duration) -> Self {
        Self {
            next: FIRST.min(cap),
            cap,
        }
    }

    /// Back to the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.next = FIRST.min(self.cap);
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.cap);
        delay.mul_f64(1.0 - fastrand::f64() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(350));
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(100));
        assert!(delays[1] >= Duration::from_millis(100) && delays[1] <= Duration::from_millis(200));
        assert!(delays[3] >= Duration::from_millis(175) && delays[3] <= Duration::from_millis(350));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
