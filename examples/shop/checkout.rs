//! The checkout: a cart turned into one invoice, exactly once.
//!
//! Each cart has one [`CartCheckout`] record in the cart's store, the checkout's intent, and
//! every step of a checkout is a compare-and-swap on it:
//!
//! 1. **take** the cart (`idle` to `open`): of concurrent checkouts one wins, the others are 409;
//! 2. read and price the lines, and **record** them with the payment key (`open` to `billing`);
//! 3. **bill**: ask payments for the invoice with that key, so that asking again (after a lost
//!    answer, a crash, or by another instance) finds the invoice already made;
//! 4. remove exactly the lines billed, each at the version billed, and **close** the intent
//!    (`billing` to `idle`), keeping the invoice for a retry with the same `Idempotency-Key`.
//!
//! A checkout left `open` is undone (nothing was billed), one left `billing` is completed:
//! at start-up, when a request finds it stale, and in the background after a failed call.
//! Lines added while a checkout runs are not taken; a line changed while it runs fails its
//! version check and stays in the cart. Either way nothing is lost.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, StatusCode};
use microkit::client::ClientError;
use microkit::extract::{Path, State};
use microkit::idempotency::{IdempotencyConfig, REPLAYED_HEADER};
use microkit::resource::store::{Id, ListQuery, Record, StoreError};
use microkit::resource::{Repo, Resource as _, Stored};
use microkit::response::IntoResponse;
use microkit::{Json, Problem, Resource, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::cart::CartItem;
use super::catalog::Product;
use super::context::{record_action, Context};
use super::fault::{Fault, Point};
use super::payments::{total, InvoiceLine};

/// The page size used to read a whole cart.
const PAGE: u64 = 100;
/// How long a request carrying the key of a running checkout waits for its end.
const JOIN_WAIT: Duration = Duration::from_secs(10);
/// How often it looks.
const POLL: Duration = Duration::from_millis(50);
/// An intent older than this has lost its runner (every call it makes is bounded far below):
/// the next request to find it finishes it.
const STALE: Duration = Duration::from_secs(120);
/// How many times a checkout whose billing failed midway is retried in the background.
const RESUME_ATTEMPTS: u32 = 12;

/// Where a cart's checkout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    /// No checkout runs; the last one (if any) is done.
    Idle,
    /// A checkout took the cart and is reading and pricing it: nothing billed yet.
    Open,
    /// The lines and the payment key are recorded: the invoice may exist.
    Billing,
}

/// A line the checkout took from the cart, at the version it billed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TakenLine {
    pub(crate) id: u64,
    pub(crate) version: u64,
}

/// The checkout intent of one cart: its id is the user's id.
#[derive(Debug, Clone, Serialize, Deserialize, Resource)]
#[resource(path = "/checkouts", collection = "checkouts", actions(read))]
pub(crate) struct CartCheckout {
    #[resource(id)]
    pub(crate) id: String,
    #[resource(filter)]
    pub(crate) phase: Phase,
    /// The `Idempotency-Key` of the running checkout, if its client sent one.
    #[serde(default)]
    pub(crate) running_key: Option<String>,
    /// When the running checkout started (milliseconds since the epoch).
    #[serde(default)]
    pub(crate) started_ms: u64,
    /// The key the running checkout bills with.
    #[serde(default)]
    pub(crate) payment_key: Option<String>,
    /// What the running checkout bills.
    #[serde(default)]
    pub(crate) lines: Vec<InvoiceLine>,
    #[serde(default)]
    pub(crate) taken: Vec<TakenLine>,
    #[serde(default)]
    pub(crate) amount_cents: i64,
    /// The `Idempotency-Key` of the last checkout done, if its client sent one.
    #[serde(default)]
    pub(crate) done_key: Option<String>,
    /// When it was done (milliseconds since the epoch).
    #[serde(default)]
    pub(crate) done_ms: u64,
    /// Its invoice, as payments answered it.
    #[serde(default)]
    pub(crate) invoice: Option<Value>,
}

impl CartCheckout {
    fn new(uid: u64) -> Self {
        Self {
            id: uid.to_string(),
            phase: Phase::Idle,
            running_key: None,
            started_ms: 0,
            payment_key: None,
            lines: Vec::new(),
            taken: Vec::new(),
            amount_cents: 0,
            done_key: None,
            done_ms: 0,
            invoice: None,
        }
    }

    /// The same cart with no checkout running (the last one done kept).
    fn idle(self) -> Self {
        Self {
            phase: Phase::Idle,
            running_key: None,
            started_ms: 0,
            payment_key: None,
            lines: Vec::new(),
            taken: Vec::new(),
            amount_cents: 0,
            ..self
        }
    }

    fn uid(&self) -> Option<u64> {
        self.id.parse().ok()
    }

    fn is_stale(&self) -> bool {
        now_ms().saturating_sub(self.started_ms) > STALE.as_millis() as u64
    }
}

/// What a checkout needs: the cart's store, the other services, and the test-only fault.
pub(crate) struct Checkouts {
    context: Context,
    carts: Repo<CartItem>,
    intents: Repo<CartCheckout>,
    fault: Fault,
}

impl Checkouts {
    pub(crate) fn new(context: Context) -> Arc<Self> {
        Arc::new(Self {
            carts: Repo::new(context.store.clone()),
            intents: Repo::new(context.store.clone()),
            context,
            fault: Fault::from_env(),
        })
    }

    /// 409 unless no checkout of the cart runs: a line cannot change or go while it is billed.
    pub(crate) async fn check_idle(&self, uid: u64) -> Result<(), Problem> {
        match self.intents.get(None, &intent_id(uid)).await {
            Ok(found) if found.item.phase != Phase::Idle && !found.item.is_stale() => {
                Err(running(uid))
            }
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Checks the cart of `uid` out; the invoice, or why not.
    async fn checkout(
        self: Arc<Self>,
        uid: u64,
        key: Option<String>,
        arrived_ms: u64,
    ) -> Result<Checked, Problem> {
        let id = intent_id(uid);
        let mut lost_race = false;
        let mut waited = Duration::ZERO;
        loop {
            let current = match self.intents.get(None, &id).await {
                Ok(found) => Some(found),
                Err(StoreError::NotFound) => None,
                Err(err) => return Err(err.into()),
            };
            if let Some(found) = &current {
                let intent = &found.item;
                if key.is_some() && key == intent.done_key {
                    // A retry of a checkout done: its invoice again.
                    return match &intent.invoice {
                        Some(invoice) => Ok(Checked {
                            invoice: invoice.clone(),
                            replayed: true,
                        }),
                        None => Err(Problem::internal("a done checkout without its invoice")),
                    };
                }
                if intent.phase != Phase::Idle {
                    if intent.is_stale() {
                        // Its runner is gone: finish or undo it, then look again.
                        self.clone().recover(found.clone()).await;
                        continue;
                    }
                    if key.is_some() && key == intent.running_key && waited < JOIN_WAIT {
                        // The same checkout retried while it runs: wait for its invoice.
                        tokio::time::sleep(POLL).await;
                        waited += POLL;
                        continue;
                    }
                    return Err(running(uid));
                }
                if lost_race || intent.done_ms > arrived_ms {
                    return Err(Problem::conflict(format!(
                        "the cart of user {uid} was checked out by another request meanwhile"
                    ))
                    .with_extension("invoice", &intent.invoice));
                }
            }
            match self.take(uid, current, key.clone()).await {
                Ok(open) => {
                    let invoice = self.run(uid, open).await?;
                    return Ok(Checked {
                        invoice,
                        replayed: false,
                    });
                }
                Err(StoreError::Duplicate { .. } | StoreError::VersionMismatch { .. }) => {
                    lost_race = true;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Step 1: the cart is this checkout's, or the store says who was first.
    async fn take(
        &self,
        uid: u64,
        current: Option<Stored<CartCheckout>>,
        key: Option<String>,
    ) -> Result<Stored<CartCheckout>, StoreError> {
        let (last, version) = match current {
            Some(found) => (found.item, Some(found.record.version)),
            None => (CartCheckout::new(uid), None),
        };
        let open = CartCheckout {
            phase: Phase::Open,
            running_key: key,
            started_ms: now_ms(),
            ..last.idle()
        };
        match version {
            Some(version) => {
                self.intents
                    .replace(None, &intent_id(uid), open, Some(version))
                    .await
            }
            None => self.intents.create(None, open).await,
        }
    }

    /// Steps 2 to 4 for a cart this checkout took.
    async fn run(self: Arc<Self>, uid: u64, open: Stored<CartCheckout>) -> Result<Value, Problem> {
        self.fault.reached(Point::AfterTake, None).await;
        let priced = self
            .price_cart(uid)
            .await
            .and_then(|(lines, taken)| match total(&lines) {
                Some(amount) if amount > 0 => Ok((lines, taken, amount)),
                Some(_) => Err(Problem::unprocessable(
                    "the cart costs nothing: there is nothing to bill",
                )),
                None => Err(Problem::unprocessable("the cart's total is too large")),
            });
        let (lines, taken, amount) = match priced {
            Ok(priced) => priced,
            Err(problem) => {
                self.undo(open).await;
                return Err(problem);
            }
        };
        let version = open.record.version;
        let billing = CartCheckout {
            phase: Phase::Billing,
            // Unique to this checkout (the intent's version only grows), and the same for
            // every retry of it.
            payment_key: Some(format!("checkout-{uid}-{version}")),
            lines,
            taken,
            amount_cents: amount,
            ..open.item.clone()
        };
        let billing = match self
            .intents
            .replace(None, &intent_id(uid), billing, Some(version))
            .await
        {
            Ok(billing) => billing,
            Err(StoreError::VersionMismatch { .. } | StoreError::NotFound) => {
                return Err(Problem::conflict(
                    "the checkout was undone while it ran: nothing was billed; try again",
                ));
            }
            Err(err) => {
                self.undo(open).await;
                return Err(err.into());
            }
        };
        match self.settle(&billing).await {
            Ok(invoice) => Ok(invoice),
            Err(Settle::Refused(problem)) => Err(problem),
            Err(Settle::Pending(problem)) => {
                self.resume_later(billing);
                Err(problem)
            }
        }
    }

    /// Step 2: the cart's lines priced at the catalog's current prices, and the versions taken.
    async fn price_cart(&self, uid: u64) -> Result<(Vec<InvoiceLine>, Vec<TakenLine>), Problem> {
        let items = self.read_cart(uid).await?;
        if items.is_empty() {
            return Err(Problem::unprocessable("the cart is empty"));
        }
        let catalog = Product::client(&self.context.client, "catalog");
        let mut lines = Vec::with_capacity(items.len());
        let mut taken = Vec::with_capacity(items.len());
        for (item, version) in items {
            let product = match catalog.get(item.product_id).await {
                Ok(product) => product,
                Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => {
                    return Err(Problem::unprocessable(format!(
                        "product {} is no longer for sale: remove it from the cart first",
                        item.product_id
                    )));
                }
                Err(err) => return Err(err.to_problem()),
            };
            lines.push(InvoiceLine {
                product_id: item.product_id,
                name: product.name,
                unit_price_cents: product.price_cents,
                quantity: item.quantity,
            });
            taken.push(TakenLine {
                id: item.id,
                version,
            });
        }
        Ok((lines, taken))
    }

    /// Every line of the cart, with its version.
    async fn read_cart(&self, uid: u64) -> Result<Vec<(CartItem, u64)>, Problem> {
        let parent = CartItem::SPEC.parent_key(&[uid.to_string()]);
        let mut lines = Vec::new();
        loop {
            let query = ListQuery {
                parent: parent.clone(),
                filters: Vec::new(),
                offset: lines.len() as u64,
                limit: PAGE,
            };
            let page = self.carts.records(&query).await?;
            let done =
                page.items.is_empty() || lines.len() + page.items.len() >= page.total as usize;
            for record in page.items {
                lines.push((parse::<CartItem>(&record)?, record.version));
            }
            if done {
                return Ok(lines);
            }
        }
    }

    /// Steps 3 and 4: bills what `billing` recorded, removes the lines billed, and closes it.
    /// Safe to run more than once, and at once by several instances.
    async fn settle(&self, billing: &Stored<CartCheckout>) -> Result<Value, Settle> {
        let Some(uid) = billing.item.uid() else {
            return Err(Settle::Refused(Problem::internal(
                "a checkout intent without a user id",
            )));
        };
        let invoice = match self.bill(uid, &billing.item).await {
            Ok(invoice) => invoice,
            Err(Settle::Refused(problem)) => {
                self.undo(billing.clone()).await;
                return Err(Settle::Refused(problem));
            }
            Err(pending) => return Err(pending),
        };
        self.fault
            .reached(Point::AfterInvoice, Some(&invoice))
            .await;
        let parent = CartItem::SPEC.parent_key(&[uid.to_string()]);
        for line in &billing.item.taken {
            let id = Id::Int(line.id as i64);
            match self
                .carts
                .delete(parent.as_deref(), &id, Some(line.version))
                .await
            {
                // Gone already (a retry), or changed while billed: it stays, never lost.
                Ok(()) | Err(StoreError::NotFound | StoreError::VersionMismatch { .. }) => {}
                Err(err) => return Err(Settle::Pending(err.into())),
            }
        }
        let done = CartCheckout {
            done_key: billing.item.running_key.clone(),
            done_ms: now_ms(),
            invoice: Some(invoice.clone()),
            ..billing.item.clone().idle()
        };
        match self
            .intents
            .replace(None, &intent_id(uid), done, Some(billing.record.version))
            .await
        {
            Ok(_) => {
                record_action(&self.context.client, uid, "checkout");
                Ok(invoice)
            }
            // Another instance closed it first, with the same invoice.
            Err(StoreError::VersionMismatch { .. }) => Ok(invoice),
            Err(err) => Err(Settle::Pending(err.into())),
        }
    }

    /// Step 3: the invoice for what `billing` recorded, made once whatever the retries.
    async fn bill(&self, uid: u64, billing: &CartCheckout) -> Result<Value, Settle> {
        let body = json!({
            "amount_cents": billing.amount_cents,
            "user_id": uid,
            "lines": billing.lines,
        });
        let key = billing.payment_key.as_deref().unwrap_or_default();
        let created: Result<Value, ClientError> = self
            .context
            .client
            .post_json_with_key("payments", "/invoices", &body, key)
            .await;
        created.map_err(|err| match err.status() {
            // Refused for good: the request itself was wrong, and nothing was made.
            Some(status)
                if status.is_client_error()
                    && status != StatusCode::CONFLICT
                    && status != StatusCode::REQUEST_TIMEOUT
                    && status != StatusCode::TOO_MANY_REQUESTS =>
            {
                Settle::Refused(err.to_problem())
            }
            _ => Settle::Pending(err.to_problem()),
        })
    }

    /// Gives the cart back untouched (`open` or `billing` to `idle`), when nothing was billed.
    async fn undo(&self, intent: Stored<CartCheckout>) {
        let Some(uid) = intent.item.uid() else {
            return;
        };
        let version = intent.record.version;
        if let Err(err) = self
            .intents
            .replace(None, &intent_id(uid), intent.item.idle(), Some(version))
            .await
        {
            // Someone else moved it on; or the store failed, and the intent goes stale.
            tracing::warn!(error = %err, uid, "a checkout could not be undone");
        }
    }

    /// Settles `billing` in the background, with growing pauses, after a call failed midway.
    fn resume_later(self: &Arc<Self>, billing: Stored<CartCheckout>) {
        let this = self.clone();
        tokio::spawn(async move {
            let id = Id::Text(billing.item.id.clone());
            let mut pause = Duration::from_millis(500);
            for _ in 0..RESUME_ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(60));
                match this.intents.get(None, &id).await {
                    // Settled, undone, or taken over by someone else meanwhile.
                    Ok(current) if current.record.version != billing.record.version => return,
                    Ok(current) => match this.settle(&current).await {
                        Ok(_) | Err(Settle::Refused(_)) => return,
                        Err(Settle::Pending(problem)) => {
                            tracing::info!(?problem, "a checkout is not settled yet");
                        }
                    },
                    Err(StoreError::NotFound) => return,
                    Err(_) => {}
                }
            }
        });
    }

    /// Undoes an intent left `open`; settles one left `billing`, now or in the background.
    async fn recover(self: Arc<Self>, intent: Stored<CartCheckout>) {
        match intent.item.phase {
            Phase::Idle => {}
            Phase::Open => self.undo(intent).await,
            Phase::Billing => {
                if let Err(Settle::Pending(_)) = self.settle(&intent).await {
                    self.resume_later(intent);
                }
            }
        }
    }

    /// At start-up: every checkout a stopped process left half done is undone or settled.
    pub(crate) async fn recover_all(self: Arc<Self>) {
        for phase in ["open", "billing"] {
            let mut offset = 0;
            loop {
                let query = ListQuery {
                    parent: None,
                    filters: vec![("phase".to_owned(), json!(phase))],
                    offset,
                    limit: PAGE,
                };
                let page = match self.intents.records(&query).await {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot list the checkouts to recover");
                        return;
                    }
                };
                let count = page.items.len() as u64;
                for record in page.items {
                    match parse::<CartCheckout>(&record) {
                        Ok(item) => self.clone().recover(Stored { item, record }).await,
                        Err(problem) => tracing::warn!(?problem, "a checkout cannot be read"),
                    }
                }
                // The ones settled left the filter; those pending in the background did not.
                if count < PAGE {
                    break;
                }
                offset += count;
            }
        }
    }
}

/// A checkout's answer: the invoice, made now or replayed for a retry.
struct Checked {
    invoice: Value,
    replayed: bool,
}

/// Why a checkout could not be settled now.
enum Settle {
    /// Nothing was billed, and the cart is given back.
    Refused(Problem),
    /// The invoice may exist: the checkout stays `billing` until settled.
    Pending(Problem),
}

/// `POST /user/{uid}/cart/checkout`.
pub(crate) async fn checkout_cart(
    State(checkouts): State<Arc<Checkouts>>,
    Path(uid): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let arrived_ms = now_ms();
    // Read and checked as every keyed route of the library reads its key.
    let key = match IdempotencyConfig::default().key_of(&headers) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    // The checkout runs to its end even if the client goes away: stopped halfway, it would
    // hold the cart until it went stale.
    let running = tokio::spawn(checkouts.checkout(uid, key, arrived_ms));
    match running.await {
        Ok(Ok(Checked { invoice, replayed })) => {
            let mut response = (StatusCode::CREATED, Json(invoice)).into_response();
            if replayed {
                let headers = response.headers_mut();
                headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            }
            response
        }
        Ok(Err(problem)) => problem.into_response(),
        Err(err) => Problem::internal("the checkout failed")
            .with_cause(err)
            .into_response(),
    }
}

/// 409: another checkout of the cart runs; worth retrying in a moment.
fn running(uid: u64) -> Problem {
    Problem::conflict(format!("a checkout of the cart of user {uid} is running"))
        .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
}

fn intent_id(uid: u64) -> Id {
    Id::Text(uid.to_string())
}

/// A record read as an `R`, its id set from the record's.
fn parse<R: microkit::resource::Resource>(record: &Record) -> Result<R, Problem> {
    let id = match &record.id {
        Id::Int(id) => json!(id),
        Id::Text(id) => json!(id),
    };
    let mut data = (*record.data).clone();
    data.insert(R::SPEC.id_field.to_owned(), id);
    serde_json::from_value(Value::Object(data))
        .map_err(|err| Problem::internal("a stored record no longer parses").with_cause(err))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
