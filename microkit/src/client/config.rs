use std::time::Duration;

/// How the client spreads requests over a service's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Balance {
    /// Power of two choices: pick two instances at random and send to the one with the lower
    /// cost, its EWMA latency times its requests in flight (plus one), divided by its weight.
    /// Finagle's and Linkerd's default: it reacts to slow instances within a few requests and
    /// needs no coordination between clients.
    #[default]
    PeakEwma,
    /// Each instance in turn.
    RoundRobin,
}

/// The client's defaults follow what Finagle, Envoy, tower and Linkerd converged on.
///
/// | setting | default | why |
/// |---|---|---|
/// | connect timeout | 1 s | a healthy peer on a LAN accepts in microseconds; waiting longer only delays the retry |
/// | attempt timeout | 10 s | bounds one try so a retry can still happen within the deadline |
/// | deadline | 30 s | the whole call, retries included; a tighter caller deadline wins |
/// | attempts | 3 | one try and two retries, as Envoy and gRPC do |
/// | retry budget | 20% of requests + 10/s | Finagle's: retries cannot multiply load in an outage |
/// | backoff | 25 ms doubling to 250 ms, full jitter | spreads retries so they don't arrive in waves |
/// | ejection | 5 consecutive failures, 30 s × ejections, at most 300 s | Envoy's outlier detection |
/// | panic threshold | 50% ejected | Envoy's: past it, use every instance rather than overload the few left |
/// | replayable body | 64 KiB | bodies up to this size are buffered so that a retry can resend them |
/// | idle pooled connection | 50 s | below the server's keep-alive (microkit's: 60 s), see below |
///
/// Why the idle timeout must stay below the keep-alive timeout of the servers called: a server
/// closes a connection that has been idle for its keep-alive timeout. If the client may still
/// reuse it at that moment, the close and the next request cross on the wire; the request is
/// written to a connection the server has already given up, and fails after it was sent,
/// which only an idempotent request survives (by a retry). The client checks a pooled
/// connection for a close just before reusing it, and sends the request on another connection
/// if the server closed it, but a close still in flight cannot be seen; only letting the
/// client give up idle connections first avoids the race. Lower it for servers with a shorter
/// keep-alive (nginx's default is 75 s, Node's 5 s).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) attempt_timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) balance: Balance,
    pub(crate) retry_ratio: f64,
    pub(crate) retry_min_per_second: f64,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) ejection_failures: u32,
    pub(crate) ejection_base: Duration,
    pub(crate) ejection_max: Duration,
    pub(crate) max_replay_body: usize,
    pub(crate) pool_idle_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::ClientTls>,
    #[cfg(feature = "auth")]
    pub(crate) service_tokens: Option<crate::auth::CallerTokens>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            max_attempts: 3,
            balance: Balance::default(),
            retry_ratio: 0.2,
            retry_min_per_second: 10.0,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
            ejection_failures: 5,
            ejection_base: Duration::from_secs(30),
            ejection_max: Duration::from_secs(300),
            max_replay_body: 64 * 1024,
            pool_idle_timeout: Duration::from_secs(50),
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "auth")]
            service_tokens: None,
        }
    }
}

impl ClientConfig {
    /// How long to wait for a TCP connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may take.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How long a whole call may take, retries included, unless the caller's own deadline is
    /// sooner.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How many attempts a call may make (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The balancing strategy.
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// The retry budget: retries may add `ratio` of the requests, plus `min_per_second`.
    pub fn retry_budget(mut self, ratio: f64, min_per_second: f64) -> Self {
        self.retry_ratio = ratio.max(0.0);
        self.retry_min_per_second = min_per_second.max(0.0);
        self
    }

    /// The backoff between attempts: `base` doubling up to `max`, with full jitter.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// Outlier ejection: after `failures` consecutive failures an instance is left out for
    /// `base` times the number of its ejections, at most `max`.
    pub fn ejection(mut self, failures: u32, base: Duration, max: Duration) -> Self {
        self.ejection_failures = failures.max(1);
        self.ejection_base = base;
        self.ejection_max = max.max(base);
        self
    }

    /// How long an idle pooled connection is kept; keep it below the keep-alive timeout of
    /// the servers called (see above).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How to speak to `https` instances (feature `tls`): the CAs trusted and the client's
    /// own certificate for mutual TLS. Without it, calls to an `https` instance fail.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Signs every call as the service `caller` (feature `auth`): each request carries a
    /// service token from `tokens`, addressed to the service called and good for 60 s (one
    /// is signed per callee every 30 s), replacing any the request had. Internal routes
    /// behind [`RequireService`](crate::auth::RequireService) with the same tokens admit
    /// the calls, with nothing added by hand.
    ///
    /// ```
    /// use microkit::auth::ServiceTokens;
    /// use microkit::client::{ClientConfig, ServiceClient};
    /// use microkit::discovery::MemoryRegistry;
    ///
    /// let tokens = ServiceTokens::new(b"a secret shared by the services, 32+ bytes");
    /// let client = ServiceClient::with_config(
    ///     MemoryRegistry::new(),
    ///     ClientConfig::default().service_tokens("cart", tokens),
    /// );
    /// ```
    #[cfg(feature = "auth")]
    pub fn service_tokens(
        mut self,
        caller: impl Into<String>,
        tokens: crate::auth::ServiceTokens,
    ) -> Self {
        self.service_tokens = Some(crate::auth::CallerTokens::new(caller.into(), tokens));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_are_given_up_before_a_microkit_server_would_close_them() {
        let server = crate::server::ServerConfig::default();
        assert!(ClientConfig::default().pool_idle_timeout < server.keep_alive_timeout);
    }
}
