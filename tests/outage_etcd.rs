//! etcd going away, against a real etcd of each test's own: a service started before etcd
//! serves and registers once etcd is up, and a client resolving through etcd catches up; a
//! watch gone silent (a half-open connection, etcd frozen with SIGSTOP) is found within two
//! lease TTLs and the list catches up.
//!
//! Without `etcd` on `PATH` the tests are skipped, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1`, when they fail.

use microkit_test_support as support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use microkit::client::ServiceClient;
use microkit::discovery::{EtcdRegistry, Instance, Registry, Watch};
use microkit::router::get;
use microkit::service::Microservice;
use microkit::{Json, Router};
use support::etcd::Etcd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Short leases keep the suite fast; etcd's minimum (with its default timings) is 2 s.
const TTL: Duration = Duration::from_secs(2);
/// The bound of every wait for something to happen.
const PATIENCE: Duration = Duration::from_secs(15);

fn registry(endpoint: &str, test: &str) -> EtcdRegistry {
    EtcdRegistry::connect(&[endpoint])
        .unwrap()
        .with_ttl(TTL)
        .with_prefix(format!("/microkit-tests/{test}/"))
}

fn instance(port: u16) -> Instance {
    Instance::new("catalog", SocketAddr::from(([127, 0, 0, 1], port)))
        .with_id(format!("catalog-{port}"))
}

fn ports(watch: &mut Watch) -> Vec<u16> {
    let mut ports: Vec<u16> = watch
        .borrow_and_update()
        .iter()
        .map(|i| i.addr.port())
        .collect();
    ports.sort_unstable();
    ports
}

/// Waits until the watched list has exactly `expected` ports; returns how long it took.
async fn wait_for(watch: &mut Watch, expected: &[u16]) -> Duration {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = ports(watch);
        if now == expected {
            return started.elapsed();
        }
        match tokio::time::timeout_at(deadline, watch.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the watch ended (at {now:?}, waiting for {expected:?})"),
            Err(_) => panic!("the watch shows {now:?}, not {expected:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_before_etcd_serves_and_registers_once_etcd_is_up() {
    let Some(mut etcd) = Etcd::reserve("late") else {
        return;
    };
    let router = Router::new().route("/info", get(|| async { Json("catalog here") }));
    let service = Microservice::new("catalog", router)
        .registry(Arc::new(registry(&etcd.endpoint(), "late")))
        .bind()
        .await
        .unwrap();
    let addr = service.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run(async {
        let _ = stopped.await;
    }));
    // A gateway's view: a client resolving through the same etcd, created while it is down.
    let client = ServiceClient::new(registry(&etcd.endpoint(), "late"));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !running.is_finished(),
        "the service stopped: {:?}",
        running.await
    );
    let health = support::get(addr, "/health").await;
    assert_eq!(health.status, 200, "the service serves while etcd is down");
    assert!(client.get_json::<String>("catalog", "/info").await.is_err());

    etcd.spawn().await;
    let up = Instant::now();
    loop {
        match client.get_json::<String>("catalog", "/info").await {
            Ok(answer) => {
                assert_eq!(answer, "catalog here");
                break;
            }
            Err(err) => assert!(up.elapsed() < PATIENCE, "never found: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("found {:?} after etcd came up", up.elapsed());

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    // Deregistered on shutdown.
    let direct = registry(&etcd.endpoint(), "late");
    assert!(direct.resolve("catalog").await.unwrap().is_empty());
}

/// A TCP proxy whose existing connections can be made silent at once, as a NAT or firewall
/// that forgets them does: bytes stop flowing, and neither side hears of it.
struct SilencingProxy {
    addr: SocketAddr,
    generation: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SilencingProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let generation = Arc::new(AtomicU64::new(0));
        let current = generation.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let born = current.load(Ordering::SeqCst);
                let current = current.clone();
                tokio::spawn(async move {
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let alive = || current.load(Ordering::SeqCst) == born;
                    tokio::join!(
                        pipe(client_read, server_write, &alive),
                        pipe(server_read, client_write, &alive),
                    );
                });
            }
        });
        Self {
            addr,
            generation,
            task,
        }
    }

    /// From now on, the connections open so far carry nothing more; new ones work.
    fn silence_existing(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for SilencingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies until either side closes; once `alive` turns false, holds the connection open and
/// silent for good.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    alive: &impl Fn() -> bool,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !alive() {
            // Keep both halves: the peers must not see a close.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_watch_is_found_within_two_ttls_and_the_list_catches_up() {
    let Some(etcd) = Etcd::start("halfopen").await else {
        return;
    };
    let proxy = SilencingProxy::start(SocketAddr::from(([127, 0, 0, 1], etcd.client_port()))).await;
    let direct = registry(&etcd.endpoint(), "halfopen");
    let through_proxy = registry(&format!("127.0.0.1:{}", proxy.addr.port()), "halfopen");

    let _first = direct.register(instance(1)).await.unwrap();
    let mut watch = through_proxy.watch("catalog").await.unwrap();
    assert_eq!(ports(&mut watch), [1]);
    // An event proves the watch stream is established (the list alone comes from a range).
    let _second = direct.register(instance(2)).await.unwrap();
    wait_for(&mut watch, &[1, 2]).await;

    proxy.silence_existing();
    let _third = direct.register(instance(3)).await.unwrap();
    let took = wait_for(&mut watch, &[1, 2, 3]).await;
    assert!(took < TTL * 2, "the silent watch was found after {took:?}");
    eprintln!("a silent watch caught up after {took:?}");

    // The watch that replaced it follows etcd again.
    let _fourth = direct.register(instance(4)).await.unwrap();
    wait_for(&mut watch, &[1, 2, 3, 4]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_etcd_keeps_the_last_list_and_it_catches_up_after_sigcont() {
    let Some(etcd) = Etcd::start("frozen").await else {
        return;
    };
    let registry = registry(&etcd.endpoint(), "frozen");
    let _first = registry.register(instance(1)).await.unwrap();
    let mut watch = registry.watch("catalog").await.unwrap();
    assert_eq!(ports(&mut watch), [1]);

    etcd.pause();
    // Long enough for the checks to find etcd silent, and for the lease to run out.
    tokio::time::sleep(TTL * 2).await;
    assert_eq!(
        ports(&mut watch),
        [1],
        "an unreachable etcd emptied the list"
    );
    etcd.resume();

    let _second = registry.register(instance(2)).await.unwrap();
    wait_for(&mut watch, &[1, 2]).await;
}
