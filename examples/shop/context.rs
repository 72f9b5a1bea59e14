//! What every service of the shop is given.

use std::collections::HashMap;
use std::sync::Arc;

use microkit::client::ServiceClient;
use microkit::metrics::Metrics;
use microkit::resource::store::postgres::PostgresStore;
use microkit::resource::store::sqlite::SqliteStore;
use microkit::resource::store::{MeteredStore, Store};
use microkit::BoxError;

use super::options::Options;

/// One service instance's view of the world.
#[derive(Clone)]
pub(crate) struct Context {
    /// The service's own database, shared by its replicas.
    pub(crate) store: Arc<dyn Store>,
    /// Calls to the other services, by name.
    pub(crate) client: ServiceClient,
    /// Emails per recipient per minute.
    pub(crate) email_rate: u32,
    /// Whether callers through the gateway see only their own data (`access.rs`).
    pub(crate) scoped: bool,
}

/// The databases of the services this process runs: a SQLite file each under the data
/// directory, or one PostgreSQL database for all.
pub(crate) struct Stores {
    by_service: HashMap<String, Arc<dyn Store>>,
}

impl Stores {
    pub(crate) async fn open(options: &Options, services: &[&str]) -> Result<Self, BoxError> {
        let mut by_service: HashMap<String, Arc<dyn Store>> = HashMap::new();
        if let Some(url) = &options.database_url {
            let shared: Arc<dyn Store> = Arc::new(PostgresStore::connect(url).await?);
            for service in services {
                by_service.insert((*service).to_owned(), shared.clone());
            }
        } else if !services.is_empty() {
            std::fs::create_dir_all(&options.data_dir)
                .map_err(|err| format!("cannot create {}: {err}", options.data_dir.display()))?;
            for service in services {
                let path = options.data_dir.join(format!("{service}.db"));
                by_service.insert((*service).to_owned(), Arc::new(SqliteStore::open(&path)?));
            }
        }
        Ok(Self { by_service })
    }

    /// `service`'s database, its operations (and PostgreSQL's pool) shown in `metrics`, the
    /// metrics of the instance that uses it.
    pub(crate) fn get(&self, service: &str, metrics: &Metrics) -> Arc<dyn Store> {
        let store = self
            .by_service
            .get(service)
            .cloned()
            .expect("a store is opened for every service this process runs");
        MeteredStore::wrap(store, metrics)
    }
}

/// Tells the stats service that `user_id` did `action`, in the background: statistics must
/// never slow down or fail the request that caused them.
pub(crate) fn record_action(client: &ServiceClient, user_id: u64, action: &'static str) {
    let client = client.clone();
    // In the request's trace: the stats call shows up as part of what the request caused.
    tokio::spawn(microkit::trace::in_current_trace(async move {
        let entry = serde_json::json!({ "user_id": user_id, "action": action });
        if let Err(err) = client
            .post_json::<_, serde_json::Value>("stats", "/log", &entry)
            .await
        {
            tracing::warn!(error = %err, action, "the stats service did not record an action");
        }
    }));
}
