//! The example shop: users, emails, catalog, cart, payments and stats, each a microkit service
//! on its own port, behind a gateway, talking over real HTTP through the inter-service client.
//!
//! ```text
//! cargo run --release --example shop -- [--listen ADDR] [--data-dir DIR] [--database-url URL]
//!     [--replicas N] [--only NAME] [--registry memory|etcd://HOST:PORT] [--email-rate N]
//! ```
//!
//! `--registry etcds://USER:PASSWORD@HOST:PORT?cacert=ca.pem&cert=c.pem&key=c.key` reaches an
//! etcd with TLS and auth (see `--help` and `EtcdRegistry::from_url`); `etcds://USER@...`
//! alone takes the password from `?password_file=F` or `$MICROKIT_REGISTRY_PASSWORD`.
//!
//! On start it prints one line per listener (`gateway http://ADDR`, then `<service>
//! http://ADDR` per instance). SIGINT or SIGTERM deregisters every instance, drains in-flight
//! requests, and exits 0.

mod access;
mod cart;
mod catalog;
mod checkout;
mod context;
mod docs;
mod emails;
mod fault;
mod gateway;
mod options;
mod payments;
mod stats;
pub(crate) mod telemetry;
mod users;

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use microkit::client::{ClientConfig, ServiceClient};
use microkit::discovery::{EtcdRegistry, MemoryRegistry, Registry};
use microkit::metrics::Metrics;
use microkit::server::TlsConfig;
use microkit::service::{shutdown_signal, Microservice};
use microkit::{BoxError, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::context::{Context, Stores};
pub(crate) use self::options::Options;

/// mimalloc rather than the system allocator: every request crossing the shop makes a dozen
/// small, short-lived allocations in the gateway and again in a service, which glibc's malloc
/// serves at about twice mimalloc's cost (see `examples/bench_gateway.rs` for the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The services, in the order they start.
const SERVICES: [&str; 6] = ["users", "emails", "catalog", "cart", "payments", "stats"];

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("shop: {message}\n\n{}", Options::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("shop: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shop: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), BoxError> {
    let mut telemetry = telemetry::init()?;
    let mut shop = Shop::start(options).await?;
    telemetry.export_metrics(&shop.metrics)?;
    let mut stdout = std::io::stdout().lock();
    for (name, addr) in &shop.listeners {
        let scheme = match (name.as_str(), &shop.edge_scheme) {
            ("gateway", Some(scheme)) => scheme,
            _ => "http",
        };
        writeln!(stdout, "{name} {scheme}://{addr}")?;
    }
    stdout.flush()?;
    drop(stdout);
    tokio::select! {
        () = shutdown_signal() => {}
        failed = shop.failure() => return Err(failed),
    }
    let stopped = shop.stop().await;
    telemetry.flush().await;
    stopped
}

/// A running shop: its listeners, in the order they print, and the way to stop them.
pub(crate) struct Shop {
    /// `gateway` first, then each service instance.
    pub(crate) listeners: Vec<(String, SocketAddr)>,
    /// The metrics of each listener, by name and address.
    pub(crate) metrics: Vec<(String, SocketAddr, Arc<Metrics>)>,
    /// `https` when the gateway serves TLS.
    edge_scheme: Option<&'static str>,
    /// Stops the gateway, which stops first: what it has in flight still reaches the services.
    edge_shutdown: watch::Sender<bool>,
    edge: JoinSet<std::io::Result<()>>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<std::io::Result<()>>,
}

impl Shop {
    /// Opens the databases, binds every listener, registers every instance.
    pub(crate) async fn start(options: Options) -> Result<Shop, BoxError> {
        let registry: Arc<dyn Registry> = match options.registry.as_str() {
            "memory" => Arc::new(MemoryRegistry::new()),
            url => Arc::new(EtcdRegistry::from_url(url)?),
        };
        let services: Vec<&str> = match options.only.as_deref() {
            None => SERVICES.to_vec(),
            Some("gateway") => Vec::new(),
            Some(name) => SERVICES.iter().copied().filter(|s| *s == name).collect(),
        };
        let stores = Stores::open(&options, &services).await?;
        let access = access::Access::from_options(&options)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (edge_shutdown, mut edge_rx) = watch::channel(false);
        let stopped = move || {
            let mut receiver = shutdown_rx.clone();
            async move {
                let _ = receiver.wait_for(|stop| *stop).await;
            }
        };
        let mut shop = Shop {
            listeners: Vec::new(),
            metrics: Vec::new(),
            edge_scheme: options.tls.as_ref().map(|_| "https"),
            edge_shutdown,
            edge: JoinSet::new(),
            shutdown,
            tasks: JoinSet::new(),
        };
        if matches!(options.only.as_deref(), None | Some("gateway")) {
            let metrics = Arc::new(Metrics::new());
            let client = ServiceClient::with_observer(
                registry.clone(),
                ClientConfig::default(),
                metrics.clone(),
            );
            let listener = TcpListener::bind(options.listen).await?;
            let addr = listener.local_addr()?;
            shop.listeners.push(("gateway".to_owned(), addr));
            shop.metrics
                .push(("gateway".to_owned(), addr, metrics.clone()));
            let router = gateway::router(client, metrics.clone(), access.as_ref());
            let server = microkit::serve(listener, router).metrics(metrics);
            let server = match &options.tls {
                Some((cert, key)) => server.tls(TlsConfig::from_pem_files(cert, key)?),
                None => server,
            };
            let server = server.with_graceful_shutdown(async move {
                let _ = edge_rx.wait_for(|stop| *stop).await;
            });
            shop.edge.spawn(server.into_future());
        }
        for service in services {
            for replica in 0..options.replicas {
                let listen = if options.only.is_some() && replica == 0 {
                    options.listen
                } else {
                    SocketAddr::from(([127, 0, 0, 1], 0))
                };
                let metrics = Arc::new(Metrics::new());
                let metered = metrics.clone();
                let context = Context {
                    store: stores.get(service, &metrics),
                    client: ServiceClient::with_observer(
                        registry.clone(),
                        ClientConfig::default(),
                        metrics.clone(),
                    ),
                    email_rate: options.email_rate,
                    scoped: access.is_some(),
                };
                let router = match &access {
                    Some(access) => router_of(service, context).layer(access.service()),
                    None => router_of(service, context),
                };
                let bound = Microservice::new(service, router)
                    .registry(registry.clone())
                    .listen(listen)
                    .metrics(metrics)
                    .openapi_document(move |document| docs::document(service, document))
                    .bind()
                    .await?
                    .register()
                    .await?;
                shop.listeners
                    .push((service.to_owned(), bound.local_addr()));
                shop.metrics
                    .push((service.to_owned(), bound.local_addr(), metered));
                shop.tasks.spawn(bound.run(stopped()));
            }
        }
        Ok(shop)
    }

    /// Completes if a listener fails on its own.
    async fn failure(&mut self) -> BoxError {
        let joined = if self.edge.is_empty() {
            self.tasks.join_next().await
        } else if self.tasks.is_empty() {
            self.edge.join_next().await
        } else {
            tokio::select! {
                joined = self.edge.join_next() => joined,
                joined = self.tasks.join_next() => joined,
            }
        };
        match joined {
            Some(Ok(Err(err))) => err.into(),
            Some(Err(err)) => err.into(),
            Some(Ok(Ok(()))) => "a listener stopped unexpectedly".into(),
            None => "nothing to serve".into(),
        }
    }

    /// Deregisters every instance, drains in-flight requests, and waits until all stopped:
    /// the gateway first, so that the requests it is still forwarding find their services.
    pub(crate) async fn stop(mut self) -> Result<(), BoxError> {
        let _ = self.edge_shutdown.send(true);
        while let Some(ended) = self.edge.join_next().await {
            ended??;
        }
        let _ = self.shutdown.send(true);
        while let Some(ended) = self.tasks.join_next().await {
            ended??;
        }
        Ok(())
    }
}

fn router_of(service: &str, context: Context) -> Router {
    match service {
        "users" => users::router(context),
        "emails" => emails::router(context),
        "catalog" => catalog::router(context),
        "cart" => cart::router(context),
        "payments" => payments::router(context),
        "stats" => stats::router(context),
        other => unreachable!("unknown service {other}"),
    }
}
