//! Helpers for the example shop's end-to-end tests: a JSON client for its HTTP API, checks of
//! its problem+json errors, the shop binary as a child process, and fresh PostgreSQL databases.
//!
//! Every wait is bounded: by [`PATIENCE`] per request, by [`STARTUP`] for a process to print
//! its listeners.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use microkit::http::{header, Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::etcd::services_required;
use crate::{request, send, try_send, Reply, PATIENCE};

/// How long a shop process may take to print all its listeners.
pub const STARTUP: Duration = Duration::from_secs(20);

/// A JSON client for one listener of the shop (the gateway, or a service directly).
#[derive(Debug, Clone, Copy)]
pub struct Api {
    /// Where the listener is.
    pub addr: SocketAddr,
}

impl Api {
    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.raw(Method::GET, path, None, Bytes::new()).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Reply {
        self.raw(Method::DELETE, path, None, Bytes::new()).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.json(Method::POST, path, body).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.json(Method::PUT, path, body).await
    }

    /// `method path` with a JSON body.
    pub async fn json(&self, method: Method, path: &str, body: Value) -> Reply {
        self.raw(
            method,
            path,
            Some("application/json"),
            Bytes::from(body.to_string()),
        )
        .await
    }

    /// `method path` with `body` as it is and the given `Content-Type` (none with `None`).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Reply {
        send(self.addr, with_type(method, path, content_type, body)).await
    }

    /// Like [`raw`](Self::raw), but an error instead of a panic when the exchange fails.
    pub async fn try_raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Result<Reply, String> {
        try_send(self.addr, with_type(method, path, content_type, body)).await
    }

    /// `POST path` and the created item, checking for 201.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let reply = self.post(path, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "POST {path} {body}: {}",
            reply.text()
        );
        reply.json()
    }

    /// `GET path`'s JSON, checking for 200.
    pub async fn fetch(&self, path: &str) -> Value {
        let reply = self.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.text());
        reply.json()
    }
}

fn with_type(
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> microkit::http::Request<http_body_util::Full<Bytes>> {
    let mut request = request(method, path, body);
    if let Some(content_type) = content_type {
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            content_type.parse().expect("a valid Content-Type"),
        );
    }
    request
}

/// Checks that `reply` is an `application/problem+json` error with `status`, whose body
/// repeats the status and has a title; returns the body.
#[track_caller]
pub fn assert_problem(reply: &Reply, status: u16, what: &str) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{what}: expected {status}, got {}: {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        reply
            .header("content-type")
            .starts_with("application/problem+json"),
        "{what}: a {status} should be problem+json, not {:?}",
        reply.header("content-type")
    );
    let body: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|err| panic!("{what}: the problem is not JSON ({err})"));
    assert_eq!(
        body["status"], status,
        "{what}: the problem's status: {body}"
    );
    assert!(
        body["title"]
            .as_str()
            .is_some_and(|title| !title.is_empty()),
        "{what}: the problem has no title: {body}"
    );
    body
}

/// The fields a problem's `errors` name.
pub fn failing_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| error["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A problem's status and the fields it names, for comparing whole outcomes at once.
#[track_caller]
pub fn assert_invalid(reply: &Reply, status: u16, fields: &[&str], what: &str) {
    let problem = assert_problem(reply, status, what);
    let named = failing_fields(&problem);
    for field in fields {
        assert!(
            named.iter().any(|n| n == field),
            "{what}: the problem should name `{field}`: {problem}"
        );
    }
}

/// The numeric `id` of a created item.
#[track_caller]
pub fn id_of(item: &Value) -> u64 {
    item["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric id in {item}"))
}

/// Polls `check` (every 50 ms, for at most [`PATIENCE`]) until it returns `Some`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A temporary directory for a shop's data, unique to this test process.
pub fn temp_data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("microkit-shop-")
        .tempdir()
        .expect("a temporary directory")
}

// The shop binary

/// The example's binary, `target/<profile>/examples/shop`, next to the test's own binary
/// (`target/<profile>/deps/...`); built with `cargo build --example shop` when missing or
/// older than the sources it is built from. `MICROKIT_SHOP_BINARY` names another one (when
/// several worktrees share a target directory, that path is the last one built).
pub fn shop_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(binary) = std::env::var_os("MICROKIT_SHOP_BINARY") {
                return PathBuf::from(binary);
            }
            let exe = std::env::current_exe().expect("the test binary's path");
            let profile_dir = exe
                .ancestors()
                .find(|dir| dir.file_name().is_some_and(|name| name == "deps"))
                .and_then(Path::parent)
                .expect("the test binary lives under target/<profile>/deps")
                .to_path_buf();
            let binary = profile_dir
                .join("examples")
                .join(format!("shop{}", std::env::consts::EXE_SUFFIX));
            if !is_fresh(&binary) {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
                let status = std::process::Command::new(cargo)
                    .args(["build", "--example", "shop"])
                    .current_dir(workspace_root())
                    .status()
                    .expect("running cargo build --example shop");
                assert!(status.success(), "cargo build --example shop failed");
            }
            assert!(binary.exists(), "no shop binary at {}", binary.display());
            binary
        })
        .clone()
}

/// The workspace's root directory, where the shop's sources and `Cargo.toml` are.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the support crate lives in the workspace root")
}

/// The binary exists and is newer than every source of the shop and the library.
fn is_fresh(binary: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return false;
    };
    let root = workspace_root();
    ["examples/shop", "microkit/src", "microkit-macros/src"]
        .iter()
        .all(|dir| newest_change(&root.join(dir)) <= built)
}

fn newest_change(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return newest;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let changed = if path.is_dir() {
            newest_change(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(changed);
    }
    newest
}

/// The shop running as a child process; killed if still running when dropped.
pub struct ShopProcess {
    child: Child,
    /// What it printed: `gateway` and each service instance, with their addresses.
    pub listeners: Vec<(String, SocketAddr)>,
    /// Kept open so that nothing the process prints later meets a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ShopProcess {
    /// Starts `shop ARGS` and waits (at most [`STARTUP`]) for its `lines` listener lines.
    pub async fn start(args: &[&str], lines: usize) -> Self {
        Self::start_with_env(args, &[], lines).await
    }

    /// Like [`start`](Self::start), with these environment variables set for the process.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)], lines: usize) -> Self {
        let mut child = Command::new(shop_binary())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the shop starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let mut listeners = Vec::new();
        let reading = async {
            let mut line = String::new();
            while listeners.len() < lines {
                line.clear();
                let read = stdout.read_line(&mut line).await.expect("reading stdout");
                assert!(
                    read > 0,
                    "the shop {args:?} closed its stdout after {listeners:?}"
                );
                listeners.push(parse_listener(line.trim_end()));
            }
        };
        if tokio::time::timeout(STARTUP, reading).await.is_err() {
            let _ = child.start_kill();
            panic!("the shop {args:?} printed only {listeners:?} within {STARTUP:?}");
        }
        Self {
            child,
            listeners,
            _stdout: stdout,
        }
    }

    /// The address of the first listener named `name`.
    #[track_caller]
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(listener, _)| listener == name)
            .map(|(_, addr)| *addr)
            .unwrap_or_else(|| panic!("no {name} among {:?}", self.listeners))
    }

    /// A client for the first listener named `name`.
    pub fn api(&self, name: &str) -> Api {
        Api {
            addr: self.addr(name),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the shop is still running")
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits (at most `limit`) for the process to exit; its status.
    pub async fn exited_within(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("waiting for the shop"),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!("the shop did not exit within {limit:?}");
            }
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would, and reaps it.
    pub async fn crash(&mut self) {
        self.child.start_kill().expect("killing the shop");
        self.exited_within(PATIENCE).await;
    }
}

/// `NAME http://ADDR`.
#[track_caller]
fn parse_listener(line: &str) -> (String, SocketAddr) {
    let (name, url) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("not a listener line: {line:?}"));
    let addr = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("not a listener line: {line:?}"));
    (name.to_owned(), addr)
}

/// Waits (at most `limit`) until the gateway's `GET /health` answers 200.
pub async fn wait_healthy(gateway: Api, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let last = gateway
            .try_raw(Method::GET, "/health", None, Bytes::new())
            .await;
        if last
            .as_ref()
            .is_ok_and(|reply| reply.status == StatusCode::OK)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway is not healthy within {limit:?}: {:?}",
            last.map(|reply| reply.text())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// PostgreSQL

static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

/// A fresh, uniquely named PostgreSQL database, dropped (with its connections) on drop.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

/// The server from `MICROKIT_TEST_POSTGRES` (default `postgres://postgres:postgres@127.0.0.1:5432/postgres`).
pub fn postgres_admin_url() -> String {
    std::env::var("MICROKIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The longest identifier PostgreSQL keeps whole (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

impl PgDatabase {
    /// Creates a database for `test`, or `None` (with a message) when the server cannot be
    /// reached and is not required; see [`services_required`].
    pub async fn create(test: &str) -> Option<Self> {
        let admin_url = postgres_admin_url();
        let admin = match admin_connection(&admin_url).await {
            Ok(admin) => admin,
            Err(err) => {
                assert!(
                    !services_required(),
                    "PostgreSQL at {admin_url} is unreachable ({err}), and CI or \
                     MICROKIT_REQUIRE_SERVICES requires it"
                );
                eprintln!("skipping {test}: PostgreSQL at {admin_url} is unreachable: {err}");
                return None;
            }
        };
        // PostgreSQL cuts identifiers at 63 bytes: the unique part goes first, so that a long
        // test name loses its tail rather than what tells two runs' databases apart.
        let mut name = format!(
            "microkit_shop_{}_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed),
            test.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>(),
        );
        name.truncate(MAX_IDENTIFIER);
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|err| panic!("creating database {name}: {err}"));
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok(admin) = admin_connection(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(err) = admin.batch_execute(&sql).await {
                        eprintln!("could not drop database {name}: {err}");
                    }
                }
            });
        });
        let _ = dropping.join();
    }
}

async fn admin_connection(url: &str) -> Result<tokio_postgres::Client, String> {
    let connecting = tokio_postgres::connect(url, tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| "no answer within 5 s".to_owned())?
        .map_err(|err| err.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database name replaced by `name` (the query, if any, kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
