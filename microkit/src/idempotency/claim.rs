//! [`Idempotency`], [`Claim`]: the key of one request, from its arrival to its commit.

use std::sync::{Arc, Mutex, PoisonError};

use http::request::Parts;

use super::in_flight::{InFlight, Running};
use super::reply::{from_record, Reply};
use super::request::{fingerprint_of, key, reused, scope, still_running};
use super::IdempotencyConfig;
use crate::resource::store::{now_millis, KeyCommit, Store, StoreError, Write, Written};
use crate::{Problem, Response};

/// The keys of a service, kept in its store: where hand-written handlers (and the generated
/// endpoints) begin a keyed request and commit it. Cheap to clone; clones share the record of
/// the requests running now.
///
/// A hand-written handler reads the body, [`begin`](Self::begin)s, and either returns the
/// replayed answer or does its work and commits its writes through the [`Claim`], so that the
/// key record commits with them:
///
/// ```
/// use std::sync::Arc;
/// use http::StatusCode;
/// use microkit::idempotency::{Begin, Idempotency, Reply};
/// use microkit::resource::store::{MemoryStore, Store};
/// use microkit::resource::Repo;
/// use microkit::extract::State;
/// use microkit::{Problem, Request, Resource, Response};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize, Resource)]
/// #[resource(path = "/invoices")]
/// struct Invoice {
///     #[resource(id)]
///     id: u64,
///     amount_cents: i64,
/// }
///
/// #[derive(Clone)]
/// struct App {
///     invoices: Repo<Invoice>,
///     keys: Idempotency,
/// }
///
/// async fn bill(State(app): State<App>, request: Request) -> Result<Response, Problem> {
///     let (parts, body) = request.into_parts();
///     let body = body.collect_limited(64 * 1024).await.map_err(|_| Problem::bad_request("body"))?;
///     let claim = match app.keys.begin(&parts, &body).await? {
///         // The same key and request again: the first answer, `Idempotent-Replayed: true`.
///         Begin::Replay(response) => return Ok(response),
///         Begin::Run(claim) => claim,
///     };
///     let invoice = Invoice { id: 0, amount_cents: 1250 };
///     let writes = vec![app.invoices.create_write(None, &invoice)?];
///     // The invoice and the key record commit in one transaction, or neither does.
///     let outcome = claim
///         .commit(writes, |written| {
///             let record = written[0].as_ref().expect("a create stores a record");
///             Reply::json(StatusCode::CREATED, &serde_json::json!({ "id": record.id }))
///         })
///         .await?;
///     Ok(outcome.response)
/// }
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let app = App { invoices: Repo::new(store.clone()), keys: Idempotency::new(store) };
/// let router: microkit::Router = microkit::Router::new()
///     .route("/bill", microkit::router::post(bill))
///     .with_state(app);
/// ```
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn Store>,
    config: IdempotencyConfig,
    in_flight: InFlight,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How a keyed request goes on: its kept answer again, or its own run.
#[derive(Debug)]
pub enum Begin {
    /// The key's answer, kept from the first request like this one; nothing is to run.
    Replay(Response),
    /// The request runs: commit its writes through the claim.
    Run(Claim),
}

/// The right to run a request: holds its key (if it has one) as running until committed or
/// dropped. Dropping it without committing (an error, a cancelled request) frees the key.
pub struct Claim {
    store: Arc<dyn Store>,
    key: Option<Keyed>,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Keyed {
    scope: String,
    key: String,
    fingerprint: String,
    ttl_ms: i64,
    /// Whether the store was asked for the key's record before the request ran (see
    /// [`Idempotency::claim`]).
    looked_up: bool,
    _running: Running,
}

/// What a commit answered.
#[derive(Debug)]
pub struct Outcome {
    /// The answer to send.
    pub response: Response,
    /// What the writes stored, one entry per write; `None` when another request with the same
    /// key committed first (on another instance) and its answer is replayed: then nothing of
    /// this request was written.
    pub written: Option<Written>,
}

impl Idempotency {
    /// The keys kept in `store`, with the default [`IdempotencyConfig`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_config(store, IdempotencyConfig::default())
    }

    /// The keys kept in `store`, checked and kept as `config` says.
    pub fn with_config(store: Arc<dyn Store>, config: IdempotencyConfig) -> Self {
        Self {
            store,
            config,
            in_flight: InFlight::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    /// The store the keys (and the writes committed with them) go to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Begins a request with its parts and body: without an `Idempotency-Key`, it simply runs;
    /// with one, its kept answer is replayed, or it is refused (400 for a bad key, 409 while
    /// the key's first request runs, 422 for a key used with another request), or it runs,
    /// holding the key.
    pub async fn begin(&self, parts: &Parts, body: &[u8]) -> Result<Begin, Problem> {
        let mut claim = self.claim(parts, body)?;
        if let Some(keyed) = &mut claim.key {
            if let Some(kept) = self.store.key_record(&keyed.scope, &keyed.key).await? {
                return if kept.fingerprint == keyed.fingerprint {
                    Ok(Begin::Replay(from_record(&kept, true)))
                } else {
                    Err(reused())
                };
            }
            keyed.looked_up = true;
        }
        Ok(Begin::Run(claim))
    }

    /// Checks the request's key and marks it running, without asking the store for its
    /// record: a request that runs to its commit learns there whether the key was kept (the
    /// commit then changes nothing and the kept answer is replayed, or a 422), and one that
    /// fails before it asks through [`Claim::unless_kept`]. This saves a store round trip per
    /// keyed request where running the request again up to its commit is harmless: no side
    /// effects and no answer that depends on anything but the request and the store's
    /// transaction (the generated create without hooks).
    pub(crate) fn claim(&self, parts: &Parts, body: &[u8]) -> Result<Claim, Problem> {
        let Some(key) = key(&parts.headers, &self.config)? else {
            return Ok(Claim {
                store: self.store.clone(),
                key: None,
            });
        };
        let scope = scope(parts);
        let fingerprint = fingerprint_of(parts, body);
        let running = self
            .in_flight
            .enter(&scope, &key)
            .ok_or_else(still_running)?;
        let ttl_ms = i64::try_from(self.config.key_ttl().as_millis()).unwrap_or(i64::MAX);
        Ok(Claim {
            store: self.store.clone(),
            key: Some(Keyed {
                scope,
                key,
                fingerprint,
                ttl_ms,
                looked_up: false,
                _running: running,
            }),
        })
    }
}

impl Claim {
    /// The request's key, if it carried one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_ref().map(|keyed| keyed.key.as_str())
    }

    /// Commits `writes` and, for a keyed request, the answer `respond` makes of what they
    /// stored, in one transaction of the store ([`Store::commit`]): both are kept, or neither
    /// is. `respond` runs inside the transaction: it should only format.
    ///
    /// The answer is kept whatever its status, since the writes that go with it are done.
    /// Should another request with the key have committed first (on another instance sharing
    /// the store), nothing is written and its answer is replayed (or a 422 when it was
    /// another request). A failing write fails the commit with its problem, and frees the key.
    pub async fn commit<F>(self, writes: Vec<Write>, respond: F) -> Result<Outcome, Problem>
    where
        F: FnOnce(&Written) -> Result<Reply, StoreError> + Send + 'static,
    {
        let Some(keyed) = self.key else {
            let committed = self.store.commit(writes, None).await?;
            let reply = respond(&committed.written)?;
            return Ok(Outcome {
                response: reply.into_response(),
                written: Some(committed.written),
            });
        };
        let fingerprint = keyed.fingerprint.clone();
        let expires_at = now_millis().saturating_add(keyed.ttl_ms);
        // The answer made inside the transaction comes back through here, so that the first
        // answer is sent as made rather than rebuilt from the text of its kept record.
        let made = Arc::new(Mutex::new(None));
        let answer = made.clone();
        let key = KeyCommit {
            scope: keyed.scope.clone(),
            key: keyed.key.clone(),
            respond: Box::new(move |written| {
                let reply = respond(written)?;
                let record = reply.to_record(fingerprint, expires_at);
                *answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(reply);
                Ok(record)
            }),
        };
        match self.store.commit(writes, Some(key)).await {
            Ok(committed) => {
                let kept = committed
                    .key_record
                    .ok_or_else(|| StoreError::backend("a keyed commit returned no key record"))?;
                let made = made.lock().unwrap_or_else(PoisonError::into_inner).take();
                Ok(Outcome {
                    response: made.map_or_else(|| from_record(&kept, false), Reply::into_response),
                    written: Some(committed.written),
                })
            }
            Err(StoreError::KeyTaken) => {
                let kept = self.store.key_record(&keyed.scope, &keyed.key).await?;
                match kept {
                    Some(kept) if kept.fingerprint == keyed.fingerprint => Ok(Outcome {
                        response: from_record(&kept, true),
                        written: None,
                    }),
                    Some(_) => Err(reused()),
                    None => Err(still_running()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The answer to a request that failed before its commit with `problem`: when the claim
    /// was made without looking the key up ([`Idempotency::claim`]) and the store keeps an
    /// answer under it, that answer is replayed (or a 422 for another request), as
    /// [`Idempotency::begin`] would have answered before running it.
    pub(crate) async fn unless_kept(self, problem: Problem) -> Result<Response, Problem> {
        let Some(keyed) = self.key.filter(|keyed| !keyed.looked_up) else {
            return Err(problem);
        };
        match self.store.key_record(&keyed.scope, &keyed.key).await? {
            Some(kept) if kept.fingerprint == keyed.fingerprint => Ok(from_record(&kept, true)),
            Some(_) => Err(reused()),
            None => Err(problem),
        }
    }

    /// Keeps `reply` under the key with no write of its own (for answers whose writes were
    /// committed otherwise, as [`IdempotencyLayer`](super::IdempotencyLayer) does), and
    /// returns it as a response.
    pub async fn keep(self, reply: Reply) -> Result<Response, Problem> {
        Ok(self.commit(Vec::new(), move |_| Ok(reply)).await?.response)
    }
}
