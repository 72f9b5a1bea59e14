//! microkit's [`Gateway`] in front of one fixed upstream, for `benches/http/run.sh` to compare
//! with nginx: every path goes to the service `backend` at `--upstream`. One worker thread by
//! default (a current-thread runtime), as nginx runs with one worker in the comparison.
//!
//! `cargo run --release --example bench_gateway -- --listen 127.0.0.1:8090 --upstream 127.0.0.1:8081`

#[path = "bench_common/args.rs"]
mod args;

use microkit::client::ServiceClient;
use microkit::discovery::{FixedRegistry, Instance};
use microkit::gateway::Gateway;

/// The shop's gateway runs on mimalloc, and so does this one. A proxy makes a dozen small,
/// short-lived allocations per forwarded request (the request's extensions, two header maps,
/// the boxed handler future); glibc's malloc and free spent about 4k of the gateway's 32k
/// instructions per request on them, mimalloc about half of that (callgrind, `GET /plaintext`).
/// nginx, its peer in `benches/http/run.sh`, allocates from per-request pools of its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::io::Result<()> {
    let args = args::parse("bench_gateway", 8090, true);
    let upstream = args
        .upstream
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8081)));
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let registry = FixedRegistry::new([Instance::new("backend", upstream)]);
    runtime.block_on(async {
        let edge = Gateway::new(ServiceClient::new(registry))
            .route("/", "backend")
            .route("/{*path}", "backend")
            .into_router();
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        println!(
            "bench_gateway http://{} -> {}",
            listener.local_addr()?,
            upstream
        );
        microkit::serve(listener, edge)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
