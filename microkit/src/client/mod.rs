//! Calling other services by name: resolve, balance, retry within a budget, eject failing
//! instances, respect deadlines.
//!
//! ```no_run
//! use microkit::client::ServiceClient;
//! use microkit::discovery::MemoryRegistry;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Product { id: u64, price_cents: i64 }
//!
//! # async fn run() -> Result<(), microkit::client::ClientError> {
//! let client = ServiceClient::new(MemoryRegistry::new());
//! let product: Product = client.get_json("catalog", "/product/7").await?;
//! # Ok(()) }
//! ```
//!
//! A call flows: the service's instance list (a registry watch, cached: calls never wait on
//! the registry) → the balancer (power of two choices on peak-EWMA latency by default) →
//! an attempt with its own timeout, carrying the time left in [`DEADLINE_HEADER`] → on a
//! failure, a retry on another instance when it is safe (the request never reached a server,
//! or an idempotent method, or a `POST`/`PATCH` carrying an `Idempotency-Key` (see
//! [`IdempotencyKeyExt`]), met a 502/503/504, a timeout or a broken connection), the budget
//! allows it, and time remains. A 500 or a 4xx is never retried. Failures feed outlier
//! ejection (see [`ClientConfig`]).
//!
//! [`DEADLINE_HEADER`]: crate::deadline::DEADLINE_HEADER

mod balancer;
mod budget;
mod config;
mod deadline_body;
mod error;
mod h1;
mod idempotency;
mod lines;
#[cfg(any(feature = "auth", feature = "otel"))]
pub(crate) mod one_shot;
mod pool;
mod pooled_body;
pub(crate) mod probed_io;
#[cfg(feature = "tls")]
mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, StatusCode, Uri};
use http_body::Body as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

pub(crate) use self::balancer::{ClientStats, ClientView, InstanceStats, Retired, ServiceStats};
use self::balancer::{Endpoint, ServiceBalancer};
use self::budget::RetryBudget;
pub use self::config::{Balance, ClientConfig};
use self::deadline_body::BodyDeadlinePassed;
pub(crate) use self::deadline_body::DeadlineBody;
pub use self::error::ClientError;
pub use self::idempotency::{new_idempotency_key, IdempotencyKeyExt, IDEMPOTENCY_KEY};
pub(crate) use self::lines::{remove_fields, HeaderLines};
use self::pool::{Pool, SendError};
#[cfg(feature = "tls")]
pub use self::tls::ClientTls;
use crate::deadline;
use crate::discovery::Registry;
use crate::trace::{in_span, CallTrace};
use crate::{Body, Problem, Request, Response};

/// How a call ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// A 1xx, 2xx or 3xx answer.
    Success,
    /// A 4xx answer.
    ClientError,
    /// A 5xx answer.
    ServerError,
    /// No instance to call.
    NoInstances,
    /// Time ran out.
    Timeout,
    /// No connection, or a broken one.
    Transport,
}

impl CallOutcome {
    /// A label for the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ClientError => "client_error",
            Self::ServerError => "server_error",
            Self::NoInstances => "no_instances",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
        }
    }

    fn of(result: &Result<Response, ClientError>) -> Self {
        match result {
            Ok(response) if response.status().is_server_error() => Self::ServerError,
            Ok(response) if response.status().is_client_error() => Self::ClientError,
            Ok(_) => Self::Success,
            Err(ClientError::NoInstances { .. } | ClientError::Discovery(_)) => Self::NoInstances,
            Err(err) if err.is_timeout() => Self::Timeout,
            Err(_) => Self::Transport,
        }
    }
}

/// Something told of every call: where metrics are recorded.
pub trait CallObserver: Send + Sync + 'static {
    /// A call to `service` ended with `outcome` after `elapsed`, retries included.
    fn observe(&self, service: &str, outcome: CallOutcome, elapsed: Duration);

    /// A client reporting to this observer was built: an observer that also reports what the
    /// client knows (its instances, retries, ejections) reads it from `client` (without
    /// keeping it alive). Does nothing unless overridden.
    fn attach(&self, client: &ServiceClient) {
        let _ = client;
    }
}

/// Calls services by name. Cheap to clone; clones share connections, instance statistics and
/// the retry budget.
#[derive(Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<dyn Registry>,
    pool: Pool,
    config: ClientConfig,
    budget: RetryBudget,
    /// Looked up on every call: hashed with foldhash rather than SipHash, as the names come
    /// from the program, not from callers.
    balancers: Mutex<HashMap<String, Arc<ServiceBalancer>, foldhash::fast::RandomState>>,
    observer: Option<Arc<dyn CallObserver>>,
    /// Where the client's counters go when it is dropped, so that sums over clients never
    /// go down.
    retire_to: Mutex<Vec<Arc<Retired>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let sinks = std::mem::take(self.retire_to.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !sinks.is_empty() {
            let stats = self.stats();
            for sink in sinks {
                sink.add(&stats);
            }
        }
    }
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What to send on each attempt: buffered bodies can be sent again, streamed ones once
/// (or again when they come back unsent). A caller's body starts as `Once`; the call buffers
/// it if it may be sent again.
pub(crate) enum Payload {
    Replayable(Bytes),
    Once(Option<Body>),
}

impl From<Body> for Payload {
    fn from(body: Body) -> Self {
        Self::Once(Some(body))
    }
}

impl Payload {
    fn is_replayable(&self) -> bool {
        matches!(self, Self::Replayable(_))
    }

    fn body(&mut self) -> Body {
        match self {
            Self::Replayable(bytes) if bytes.is_empty() => Body::empty(),
            Self::Replayable(bytes) => Body::from(bytes.clone()),
            Self::Once(body) => body.take().unwrap_or_default(),
        }
    }
}

/// The fields each attempt writes itself, as lines: a caller's copies are removed. (Names as
/// text, see `remove_fields`; the test `attempt_fields_are_the_names_written` holds them to
/// the constants.)
const ATTEMPT_FIELDS: [&str; 4] = [
    "host",
    "x-microkit-deadline-ms",
    "traceparent",
    "tracestate",
];

impl ServiceClient {
    /// A client resolving through `registry`, with the default configuration.
    pub fn new(registry: impl Registry) -> Self {
        Self::with_config(registry, ClientConfig::default())
    }

    /// A client resolving through `registry`.
    pub fn with_config(registry: impl Registry, config: ClientConfig) -> Self {
        Self::build(Arc::new(registry), config, None)
    }

    /// A client that also reports every call to `observer`.
    pub fn with_observer(
        registry: Arc<dyn Registry>,
        config: ClientConfig,
        observer: Arc<dyn CallObserver>,
    ) -> Self {
        Self::build(registry, config, Some(observer))
    }

    fn build(
        registry: Arc<dyn Registry>,
        config: ClientConfig,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Self {
        let pool = Pool::new(&config);
        let client = Self {
            inner: Arc::new(Inner {
                registry,
                pool,
                budget: RetryBudget::new(config.retry_ratio, config.retry_min_per_second),
                config,
                balancers: Mutex::new(HashMap::default()),
                observer,
                retire_to: Mutex::new(Vec::new()),
            }),
        };
        if let Some(observer) = &client.inner.observer {
            observer.attach(&client);
        }
        client
    }

    /// The registry the client resolves through.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.inner.registry
    }

    /// The client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    async fn balancer(&self, service: &str) -> Result<Arc<ServiceBalancer>, ClientError> {
        if let Some(balancer) = self.lookup(service) {
            return Ok(balancer);
        }
        let watch = self
            .inner
            .registry
            .watch(service)
            .await
            .map_err(ClientError::Discovery)?;
        let mut balancers = self
            .inner
            .balancers
            .lock()
            .expect("balancers lock poisoned");
        Ok(balancers
            .entry(service.to_owned())
            .or_insert_with(|| Arc::new(ServiceBalancer::new(watch, self.inner.config.balance)))
            .clone())
    }

    fn lookup(&self, service: &str) -> Option<Arc<ServiceBalancer>> {
        self.inner
            .balancers
            .lock()
            .expect("balancers lock poisoned")
            .get(service)
            .cloned()
    }

    /// Sends `request` (its URI a path and query, such as `/product/7?full=1`) to an instance
    /// of `service`, and returns the answer whatever its status. Errors are what kept an
    /// answer from arriving.
    pub fn send<'a>(
        &'a self,
        service: &'a str,
        request: Request,
    ) -> impl Future<Output = Result<Response, ClientError>> + Send + 'a {
        let (mut head, body) = request.into_parts();
        let mut payload = Payload::from(body);
        let mut lines = HeaderLines::new();
        async move {
            self.send_with_lines(service, &mut head, &mut payload, &mut lines)
                .await
        }
    }

    /// [`send`](Self::send) of a request as its `head` and `payload`, with header fields of
    /// the caller's own written as `lines` after the head's (the gateway's forwarding
    /// fields): the head must not carry them too.
    ///
    /// All of it is borrowed, and the functions below return futures rather than being
    /// `async fn`s: a value moved into a future, or passed to an `async fn`, is stored again
    /// at each level for as long as the call runs, and the call's future is the largest of a
    /// forwarded request's (it is boxed, and so copied, once per request). The attempts leave
    /// the head in origin form, without the fields they write themselves.
    #[allow(clippy::manual_async_fn)] // not `async fn`: see above
    pub(crate) fn send_with_lines<'a>(
        &'a self,
        service: &'a str,
        head: &'a mut http::request::Parts,
        payload: &'a mut Payload,
        lines: &'a mut HeaderLines,
    ) -> impl Future<Output = Result<Response, ClientError>> + Send + 'a {
        async move {
            let started = Instant::now();
            let call = CallTrace::start(service, &head.method, head.uri.path());
            let result = {
                let attempts = pin!(self.attempts(service, head, payload, lines, started, &call));
                in_span(call.span(), attempts).await
            };
            call.finish(&result);
            if let Some(observer) = &self.inner.observer {
                observer.observe(service, CallOutcome::of(&result), started.elapsed());
            }
            result
        }
    }

    /// Puts this client's service token for `service` on an attempt, if it signs its calls
    /// ([`ClientConfig::service_tokens`]): per attempt, so that a retry late in a long call
    /// carries a token as fresh as the first attempt's.
    #[cfg(feature = "auth")]
    fn stamp_token(&self, service: &str, headers: &mut http::HeaderMap) {
        if let Some(tokens) = &self.inner.config.service_tokens {
            tokens.stamp(service, headers);
        }
    }

    /// The attempts of one call: an instance picked, the request sent, and on a failure that
    /// allows it another instance after a backoff, within the budget and the deadline. (A
    /// function returning a future for the reason `send_with_lines` gives.)
    #[allow(clippy::manual_async_fn)]
    fn attempts<'a>(
        &'a self,
        service: &'a str,
        head: &'a mut http::request::Parts,
        payload: &'a mut Payload,
        lines: &'a mut HeaderLines,
        started: Instant,
        call: &'a CallTrace,
    ) -> impl Future<Output = Result<Response, ClientError>> + Send + 'a {
        async move {
            let config = &self.inner.config;
            let balancer = self.balancer(service).await?;
            let deadline = match deadline::current() {
                Some(inherited) => inherited.min(started + config.deadline),
                None => started + config.deadline,
            };
            let idempotent = idempotency::is_retry_safe(&head.method, &head.headers);
            self.buffer_if_replayable(service, idempotent, payload)
                .await?;
            head.uri = origin_form(std::mem::take(&mut head.uri));
            // Each attempt writes these itself, as header lines (see `HeaderLines`): the
            // caller's copies go, and the head stays as it is for every attempt, without a
            // clone.
            remove_fields(&mut head.headers, &ATTEMPT_FIELDS);
            let callers_lines = lines.len();

            self.inner.budget.deposit();
            let mut tried: Vec<Arc<Endpoint>> = Vec::new();
            let mut attempt = 0;
            loop {
                attempt += 1;
                // One attempt, in a block of its own: what it made (its trace, its answer) is
                // gone before the backoff, and takes no room in the future while the timer
                // waits.
                let wake = {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(ClientError::DeadlineExceeded {
                            service: service.to_owned(),
                        });
                    }
                    let Some(endpoint) = balancer.pick(&tried, now) else {
                        return Err(ClientError::NoInstances {
                            service: service.to_owned(),
                        });
                    };
                    let replayable = payload.is_replayable();
                    lines.truncate(callers_lines);
                    lines.push(&HOST, endpoint.host.as_bytes());
                    deadline::write_line(lines, deadline - now);
                    let trace = call.attempt(attempt, head, &endpoint.instance, lines);
                    #[cfg(feature = "auth")]
                    self.stamp_token(service, &mut head.headers);
                    let attempt_deadline = (now + config.attempt_timeout).min(deadline);
                    let in_flight = endpoint.start();
                    let result = {
                        let exchange = pin!(self.inner.pool.send(
                            &endpoint.target,
                            head,
                            lines.as_bytes(),
                            payload.body(),
                            attempt_deadline,
                        ));
                        in_span(trace.span(), exchange).await
                    };
                    drop(in_flight);

                    // What this attempt ends the call with unless another follows, and whether
                    // one may: every outcome that gets here is the instance's failure.
                    let (answer, retry_safe) = match result {
                        Ok(response) => {
                            let status = response.status();
                            trace.answered(status);
                            let response = response
                                .map(|body| Body::from_answer(DeadlineBody::new(body, deadline)));
                            if !is_gateway_failure(status) {
                                let answered = Instant::now();
                                balancer.record_success(&endpoint, answered, answered - now);
                                return Ok(response);
                            }
                            (Ok(response), idempotent && replayable)
                        }
                        Err(SendError::NotSent { source, body }) => {
                            // Nothing was written: whatever the method, the request can go
                            // elsewhere, its body with it.
                            if let Payload::Once(slot) = payload {
                                *slot = Some(body);
                            }
                            let error = ClientError::Connect {
                                service: service.to_owned(),
                                source,
                            };
                            (Err(error), true)
                        }
                        Err(SendError::Invalid(source)) => {
                            // The caller's request, not the instance: no failure recorded, no
                            // retry.
                            let error = ClientError::Transport {
                                service: service.to_owned(),
                                source,
                            };
                            trace.failed(&error);
                            return Err(error);
                        }
                        Err(SendError::Failed(source)) => {
                            let error = ClientError::Transport {
                                service: service.to_owned(),
                                source,
                            };
                            (Err(error), replayable && idempotent)
                        }
                        Err(SendError::TimedOut) => {
                            let error = if attempt_deadline >= deadline {
                                ClientError::DeadlineExceeded {
                                    service: service.to_owned(),
                                }
                            } else {
                                ClientError::Timeout {
                                    service: service.to_owned(),
                                }
                            };
                            (Err(error), replayable && idempotent)
                        }
                    };
                    trace
                        .span()
                        .in_scope(|| balancer.record_failure(&endpoint, config));
                    if let Err(error) = &answer {
                        trace.failed(error);
                    }
                    let retry = match retry_safe {
                        true => self.retry_at(attempt, deadline, &mut tried, endpoint),
                        false => None,
                    };
                    let Some(wake) = retry else {
                        return answer;
                    };
                    wake
                };
                // Boxed: retries are rare, and a timer inline would enlarge every call's future.
                Box::pin(tokio::time::sleep_until(wake)).await;
            }
        }
    }

    /// When another attempt may follow, if one may: attempts left, a token in the budget, time
    /// left after the backoff.
    fn retry_at(
        &self,
        attempt: u32,
        deadline: Instant,
        tried: &mut Vec<Arc<Endpoint>>,
        endpoint: Arc<Endpoint>,
    ) -> Option<Instant> {
        let config = &self.inner.config;
        if attempt >= config.max_attempts || !self.inner.budget.withdraw() {
            return None;
        }
        tried.push(endpoint);
        let ceiling = config
            .backoff_base
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(config.backoff_max);
        let backoff = ceiling.mul_f64(fastrand::f64());
        let wake = Instant::now() + backoff;
        if wake >= deadline {
            return None;
        }
        tracing::info!(attempt, backoff_ms = backoff.as_millis() as u64, "retrying");
        Some(wake)
    }

    /// Makes `payload` replayable if the request may be sent again. Only an idempotent request
    /// can be sent again once it reached a server, so only its body is buffered (up to the
    /// replay limit); any other streams through, and comes back whole if no byte of it was
    /// sent.
    async fn buffer_if_replayable(
        &self,
        service: &str,
        idempotent: bool,
        payload: &mut Payload,
    ) -> Result<(), ClientError> {
        let Payload::Once(Some(body)) = payload else {
            return Ok(());
        };
        if body.is_end_stream() {
            *payload = Payload::Replayable(Bytes::new());
            return Ok(());
        }
        let limit = self.inner.config.max_replay_body;
        let small = body
            .size_hint()
            .upper()
            .is_some_and(|upper| upper <= limit as u64);
        if !(idempotent && small) {
            return Ok(());
        }
        let body = std::mem::take(body);
        // Boxed: most requests have no body to buffer, and the state of collecting one would
        // otherwise enlarge the future of every call.
        let bytes =
            Box::pin(body.collect_limited(limit))
                .await
                .map_err(|err| ClientError::Transport {
                    service: service.to_owned(),
                    source: err.into(),
                })?;
        *payload = Payload::Replayable(bytes);
        Ok(())
    }

    /// Calls `service` with an optional JSON body and parses a JSON answer; an error status
    /// becomes [`ClientError::Status`] carrying the service's problem.
    pub async fn call_json<B, T>(
        &self,
        method: Method,
        service: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.call_json_with(method, service, path, body, None).await
    }

    /// [`call_json`](Self::call_json), with an `Idempotency-Key` when given.
    async fn call_json_with<B, T>(
        &self,
        method: Method,
        service: &str,
        path: &str,
        body: Option<&B>,
        key: Option<HeaderValue>,
    ) -> Result<T, ClientError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let response = self.call_with(method, service, path, body, key).await?;
        let bytes = read_body(service, response).await?;
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|err| ClientError::Decode {
            service: service.to_owned(),
            source: err.into(),
        })
    }

    /// Calls `service` and checks for a success status, returning the response.
    pub async fn call<B>(
        &self,
        method: Method,
        service: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<Response, ClientError>
    where
        B: Serialize + ?Sized,
    {
        self.call_with(method, service, path, body, None).await
    }

    /// [`call`](Self::call), with an `Idempotency-Key` when given.
    async fn call_with<B>(
        &self,
        method: Method,
        service: &str,
        path: &str,
        body: Option<&B>,
        key: Option<HeaderValue>,
    ) -> Result<Response, ClientError>
    where
        B: Serialize + ?Sized,
    {
        let mut request =
            Request::new(match body {
                Some(body) => Body::from(crate::body::json_bytes(body).map_err(|err| {
                    ClientError::Decode {
                        service: service.to_owned(),
                        source: err.into(),
                    }
                })?),
                None => Body::empty(),
            });
        *request.method_mut() = method;
        *request.uri_mut() = path.parse::<Uri>().map_err(|err| ClientError::Transport {
            service: service.to_owned(),
            source: err.into(),
        })?;
        if body.is_some() {
            request
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(key) = key {
            request.headers_mut().insert(IDEMPOTENCY_KEY, key);
        }
        let response = self.send(service, request).await?;
        if response.status().is_client_error() || response.status().is_server_error() {
            return Err(status_error(service, response).await);
        }
        Ok(response)
    }

    /// `GET`s JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
    ) -> Result<T, ClientError> {
        self.call_json::<(), T>(Method::GET, service, path, None)
            .await
    }

    /// `POST`s JSON and parses the JSON answer.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call_json(Method::POST, service, path, Some(body))
            .await
    }

    /// `PUT`s JSON and parses the JSON answer.
    pub async fn put_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call_json(Method::PUT, service, path, Some(body)).await
    }

    /// `PATCH`es JSON and parses the JSON answer.
    pub async fn patch_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call_json(Method::PATCH, service, path, Some(body))
            .await
    }

    /// `DELETE`s, expecting a success status.
    pub async fn delete(&self, service: &str, path: &str) -> Result<(), ClientError> {
        self.call::<()>(Method::DELETE, service, path, None)
            .await
            .map(drop)
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

fn is_gateway_failure(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// The URI as sent on the connection: path and query only.
fn origin_form(uri: Uri) -> Uri {
    if uri.scheme().is_none() && uri.authority().is_none() && uri.path_and_query().is_some() {
        return uri;
    }
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::from(path)
}

/// The largest answer the JSON helpers read.
const MAX_JSON_ANSWER: usize = 16 * 1024 * 1024;

async fn read_body(service: &str, response: Response) -> Result<Bytes, ClientError> {
    response
        .into_body()
        .collect_limited(MAX_JSON_ANSWER)
        .await
        .map_err(|err| match err {
            crate::body::BodyError::Read(source) if source.is::<BodyDeadlinePassed>() => {
                ClientError::DeadlineExceeded {
                    service: service.to_owned(),
                }
            }
            err => ClientError::Transport {
                service: service.to_owned(),
                source: err.into(),
            },
        })
}

async fn status_error(service: &str, response: Response) -> ClientError {
    let status = response.status();
    let bytes = read_body(service, response).await.unwrap_or_default();
    let problem = serde_json::from_slice::<Problem>(&bytes)
        .ok()
        .filter(|problem| problem.status() == status)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&bytes);
            let problem = Problem::new(status);
            if text.trim().is_empty() {
                problem
            } else {
                problem.with_detail(text.chars().take(512).collect::<String>())
            }
        });
    ClientError::Status {
        service: service.to_owned(),
        problem,
    }
}
