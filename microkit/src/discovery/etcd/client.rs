//! The HTTP side: POSTs JSON to etcd's v3 gateway with hyper-util's client, failing over
//! between endpoints, carrying the auth token when the registry has credentials, and reads
//! streamed answers line by line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::{AuthenticateResponse, Credentials};
use super::connector::Connector;
use super::wire::GatewayError;
use crate::discovery::DiscoveryError;
use crate::BoxError;

/// A watch message larger than this is refused rather than buffered without end.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// Why a call to etcd failed.
#[derive(Debug)]
pub(super) enum EtcdError {
    /// No endpoint could be reached, or a connection broke.
    Transport(BoxError),
    /// No answer within the request timeout.
    Timeout,
    /// etcd answered with an error (a gRPC status code and its message).
    Status { code: i32, message: String },
    /// The answer is not the JSON expected.
    Decode(String),
}

impl std::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(err) => write!(f, "etcd is unreachable: {err}"),
            Self::Timeout => f.write_str("etcd did not answer in time"),
            Self::Status { code, message } => write!(f, "etcd answered code {code}: {message}"),
            Self::Decode(message) => write!(f, "unexpected answer from etcd: {message}"),
        }
    }
}

impl std::error::Error for EtcdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(err) => Some(err.as_ref()),
            _ => None,
        }
    }
}

impl From<EtcdError> for DiscoveryError {
    fn from(err: EtcdError) -> Self {
        DiscoveryError::Unavailable(Box::new(err))
    }
}

/// A cheap-to-clone handle on the endpoints of one etcd cluster.
#[derive(Clone)]
pub(super) struct Client {
    inner: Arc<Inner>,
}

/// How the client reaches etcd beyond the endpoints: TLS for `https://` ones, credentials.
#[derive(Clone, Default)]
pub(super) struct Options {
    #[cfg(feature = "tls")]
    pub(super) tls: Option<crate::client::ClientTls>,
    pub(super) credentials: Option<(String, String)>,
}

struct Inner {
    http: HttpClient<Connector, Full<Bytes>>,
    /// `http://host:port` or `https://host:port`, without a trailing slash.
    endpoints: Vec<String>,
    /// The endpoint that answered last: tried first next time, so a healthy member keeps
    /// being used and a dead one costs one failed connect per failover, not per call.
    current: AtomicUsize,
    timeout: Duration,
    options: Options,
    credentials: Option<Credentials>,
}

impl Client {
    /// A client of `endpoints` (normalized, at least one); connections are made on first use.
    pub(super) fn new(endpoints: Vec<String>, timeout: Duration, options: Options) -> Self {
        let connector = Connector::new(
            timeout,
            #[cfg(feature = "tls")]
            options.tls.clone(),
        );
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let credentials = options
            .credentials
            .clone()
            .map(|(user, password)| Credentials::new(user, password));
        Self {
            inner: Arc::new(Inner {
                http,
                endpoints,
                current: AtomicUsize::new(0),
                timeout,
                options,
                credentials,
            }),
        }
    }

    /// A new client of the same endpoints with `change` made to the options (before use: it
    /// shares no connection with this one).
    pub(super) fn reconfigured(&self, change: impl FnOnce(&mut Options)) -> Self {
        let mut options = self.inner.options.clone();
        change(&mut options);
        Self::new(self.inner.endpoints.clone(), self.inner.timeout, options)
    }

    /// The user the client authenticates as, if any.
    pub(super) fn user(&self) -> Option<&str> {
        self.inner.credentials.as_ref().map(Credentials::user)
    }

    pub(super) fn endpoints(&self) -> &[String] {
        &self.inner.endpoints
    }

    /// POSTs `request` to `path` and decodes the first JSON value of the answer (streaming
    /// endpoints called once, such as a keepalive, answer one `{"result": ...}` line).
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        request: &impl Serialize,
    ) -> Result<T, EtcdError> {
        let response = self.send(path, request).await?;
        let status = response.status();
        let body = self.read_all(response).await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        serde_json::Deserializer::from_slice(&body)
            .into_iter::<T>()
            .next()
            .unwrap_or_else(|| Err(serde::de::Error::custom("empty answer")))
            .map_err(|err| EtcdError::Decode(err.to_string()))
    }

    /// POSTs `request` to a streaming endpoint and returns its answer as lines.
    pub(super) async fn stream(
        &self,
        path: &str,
        request: &impl Serialize,
    ) -> Result<Lines, EtcdError> {
        let response = self.send(path, request).await?;
        let status = response.status();
        if !status.is_success() {
            let body = self.read_all(response).await?;
            return Err(status_error(status, &body));
        }
        Ok(Lines {
            body: response.into_body(),
            buffer: Vec::new(),
        })
    }

    /// Sends `request`, with a token when the client has credentials: a token etcd rejects
    /// (401: expired, or revoked) is traded for a new one, and the call sent once more.
    async fn send(
        &self,
        path: &str,
        request: &impl Serialize,
    ) -> Result<Response<Incoming>, EtcdError> {
        let body = Bytes::from(
            serde_json::to_vec(request).map_err(|err| EtcdError::Decode(err.to_string()))?,
        );
        let Some(credentials) = &self.inner.credentials else {
            return self.send_body(path, &body, None).await;
        };
        let token = self.token(credentials).await?;
        let response = self.send_body(path, &body, Some(&token)).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        credentials.forget(&token);
        let token = self.token(credentials).await?;
        self.send_body(path, &body, Some(&token)).await
    }

    /// The token in use, or a new one from `/v3/auth/authenticate`.
    async fn token(&self, credentials: &Credentials) -> Result<Arc<str>, EtcdError> {
        if let Some(token) = credentials.token() {
            return Ok(token);
        }
        let body = Bytes::from(
            serde_json::to_vec(&credentials.request())
                .map_err(|err| EtcdError::Decode(err.to_string()))?,
        );
        let response = self.send_body("/v3/auth/authenticate", &body, None).await?;
        let status = response.status();
        let body = self.read_all(response).await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        let answer: AuthenticateResponse = serde_json::from_slice(&body)
            .map_err(|err| EtcdError::Decode(format!("authenticate: {err}")))?;
        let token: Arc<str> = Arc::from(answer.token);
        credentials.keep(token.clone());
        Ok(token)
    }

    /// Sends to the last endpoint that answered, then to the others in turn.
    async fn send_body(
        &self,
        path: &str,
        body: &Bytes,
        token: Option<&str>,
    ) -> Result<Response<Incoming>, EtcdError> {
        let inner = &self.inner;
        let start = inner.current.load(Ordering::Relaxed);
        let mut last_error = EtcdError::Timeout;
        for attempt in 0..inner.endpoints.len() {
            let index = (start + attempt) % inner.endpoints.len();
            let mut request = Request::post(format!("{}{path}", inner.endpoints[index]))
                .header(CONTENT_TYPE, "application/json");
            if let Some(token) = token {
                request = request.header(AUTHORIZATION, token);
            }
            let request = request
                .body(Full::new(body.clone()))
                .map_err(|err| EtcdError::Transport(Box::new(err)))?;
            match tokio::time::timeout(inner.timeout, inner.http.request(request)).await {
                Ok(Ok(response)) => {
                    inner.current.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Ok(Err(err)) => last_error = EtcdError::Transport(Box::new(err)),
                Err(_) => last_error = EtcdError::Timeout,
            }
        }
        Err(last_error)
    }

    async fn read_all(&self, response: Response<Incoming>) -> Result<Bytes, EtcdError> {
        let collected = tokio::time::timeout(self.inner.timeout, response.into_body().collect())
            .await
            .map_err(|_| EtcdError::Timeout)?
            .map_err(|err| EtcdError::Transport(Box::new(err)))?;
        Ok(collected.to_bytes())
    }
}

fn status_error(status: StatusCode, body: &[u8]) -> EtcdError {
    let error: GatewayError = serde_json::from_slice(body).unwrap_or_default();
    let message = if !error.message.is_empty() {
        error.message
    } else if !error.error.is_empty() {
        error.error
    } else {
        // Not the gateway's JSON: etcd's HTTP layer answering in plain text (such as its
        // refusal of a client certificate with a common name once auth is on) says why.
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(300).collect();
        if text.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {text}")
        }
    };
    EtcdError::Status {
        code: error.code,
        message,
    }
}

/// The newline-delimited JSON of a streaming answer.
pub(super) struct Lines {
    body: Incoming,
    buffer: Vec<u8>,
}

impl Lines {
    /// The next non-empty line; `None` when etcd ended the stream.
    pub(super) async fn next(&mut self) -> Result<Option<Vec<u8>>, EtcdError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().any(|b| !b.is_ascii_whitespace()) {
                    return Ok(Some(line));
                }
                continue;
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(err)) => return Err(EtcdError::Transport(Box::new(err))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                    if self.buffer.len() > MAX_LINE {
                        return Err(EtcdError::Decode("a watch message is too large".into()));
                    }
                }
            }
        }
    }
}
