use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Finagle's retry budget: every request deposits `ratio` of a retry, and a reserve refills
/// at `min_per_second` so a quiet client can still retry. A retry spends one token; without
/// one, the call fails instead of retrying, so retries cannot multiply load in an outage.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    ratio: f64,
    min_per_second: f64,
    tokens: Mutex<Tokens>,
    /// Retries refused for want of a token.
    exhausted: AtomicU64,
}

#[derive(Debug)]
struct Tokens {
    deposited: f64,
    reserve: f64,
    refilled: Instant,
}

/// Deposits older than this stop counting, as in Finagle (the budget's window).
const WINDOW: Duration = Duration::from_secs(10);

impl RetryBudget {
    pub(crate) fn new(ratio: f64, min_per_second: f64) -> Self {
        Self {
            ratio,
            min_per_second,
            tokens: Mutex::new(Tokens {
                deposited: 0.0,
                reserve: min_per_second,
                refilled: Instant::now(),
            }),
            exhausted: AtomicU64::new(0),
        }
    }

    /// Records a request (not a retry).
    pub(crate) fn deposit(&self) {
        let mut tokens = self.tokens.lock().expect("budget lock poisoned");
        // Cap the balance at a window's worth of deposits at a steady 1000 requests/s.
        let cap = self.ratio * 1000.0 * WINDOW.as_secs_f64();
        tokens.deposited = (tokens.deposited + self.ratio).min(cap.max(self.ratio));
    }

    /// Takes a token for a retry, if one is left.
    pub(crate) fn withdraw(&self) -> bool {
        let mut tokens = self.tokens.lock().expect("budget lock poisoned");
        let now = Instant::now();
        let elapsed = now.duration_since(tokens.refilled).as_secs_f64();
        tokens.refilled = now;
        tokens.reserve = (tokens.reserve + elapsed * self.min_per_second).min(self.min_per_second);
        if tokens.reserve >= 1.0 {
            tokens.reserve -= 1.0;
            true
        } else if tokens.deposited >= 1.0 {
            tokens.deposited -= 1.0;
            true
        } else {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// How many retries were refused because the budget was spent.
    pub(crate) fn exhausted(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_by_ratio_plus_reserve() {
        let budget = RetryBudget::new(0.2, 10.0);
        let mut retries = 0;
        for _ in 0..100 {
            budget.deposit();
            if budget.withdraw() {
                retries += 1;
            }
        }
        // 10 from the reserve and about 20 from deposits; never one per request.
        assert!((25..=31).contains(&retries), "{retries}");
    }

    #[test]
    fn no_deposits_means_only_the_reserve() {
        let budget = RetryBudget::new(0.2, 0.0);
        assert!(!budget.withdraw());
        for _ in 0..5 {
            budget.deposit();
        }
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }
}
