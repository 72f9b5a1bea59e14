//! The keys this process is running a request for: the second request with one is a 409.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// Scoped keys being processed now.
#[derive(Debug, Default, Clone)]
pub(crate) struct InFlight {
    keys: Arc<Mutex<HashSet<(String, String)>>>,
}

impl InFlight {
    /// Marks the key as running, or `None` when it already is. The mark goes with the guard,
    /// also when the request is cancelled (its future dropped).
    pub(crate) fn enter(&self, scope: &str, key: &str) -> Option<Running> {
        let entry = (scope.to_owned(), key.to_owned());
        let fresh = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.clone());
        fresh.then(|| Running {
            keys: self.keys.clone(),
            entry,
        })
    }
}

/// A key marked as running until dropped.
#[derive(Debug)]
pub(crate) struct Running {
    keys: Arc<Mutex<HashSet<(String, String)>>>,
    entry: (String, String),
}

impl Drop for Running {
    fn drop(&mut self) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_runs_once_at_a_time() {
        let in_flight = InFlight::default();
        let first = in_flight.enter("POST /a", "k").expect("free");
        assert!(in_flight.enter("POST /a", "k").is_none());
        assert!(in_flight.enter("POST /b", "k").is_some());
        drop(first);
        assert!(in_flight.enter("POST /a", "k").is_some());
    }
}
