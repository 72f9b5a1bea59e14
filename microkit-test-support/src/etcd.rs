//! A real etcd for tests: started from `PATH` on free loopback ports with a temporary data
//! directory, and killed (its data removed) when dropped.
//!
//! Without `etcd` on `PATH` [`Etcd::start`] returns `None` and the test skips itself, unless
//! `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`, when it fails.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long etcd may take to answer after it starts.
pub const ETCD_PATIENCE: Duration = Duration::from_secs(15);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `true` when the environment says that external services (etcd, PostgreSQL) must be
/// there: `CI=true` or `MICROKIT_REQUIRE_SERVICES=1`.
pub fn services_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("MICROKIT_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// One etcd process; killed, and its data removed, on drop.
pub struct Etcd {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
    /// `--cert-file`, `--key-file` and the like: the client port speaks TLS.
    tls_args: Vec<String>,
}

impl Etcd {
    /// A running etcd, or `None` when etcd is not installed and not required.
    pub async fn start(test: &str) -> Option<Self> {
        let mut etcd = Self::reserve(test)?;
        etcd.spawn().await;
        Some(etcd)
    }

    /// A running etcd whose client port speaks TLS only, with the certificate and key in
    /// `cert` and `key` (PEM files); with `client_ca`, clients must present a certificate
    /// that CA signed (`--client-cert-auth`). `None` when etcd is not installed and not
    /// required. [`endpoint`](Self::endpoint) is then `https://127.0.0.1:PORT`.
    pub async fn start_tls(
        test: &str,
        cert: &std::path::Path,
        key: &std::path::Path,
        client_ca: Option<&std::path::Path>,
    ) -> Option<Self> {
        let mut etcd = Self::reserve(test)?;
        let path = |p: &std::path::Path| p.to_str().expect("a UTF-8 path").to_owned();
        etcd.tls_args = vec![
            "--cert-file".into(),
            path(cert),
            "--key-file".into(),
            path(key),
        ];
        if let Some(ca) = client_ca {
            etcd.tls_args.extend([
                "--client-cert-auth".into(),
                "--trusted-ca-file".into(),
                path(ca),
            ]);
        }
        etcd.spawn().await;
        Some(etcd)
    }

    /// An etcd with its ports chosen but not started yet ([`spawn`](Self::spawn) starts it),
    /// for tests of what happens before etcd is up; `None` when etcd is not installed and not
    /// required.
    pub fn reserve(test: &str) -> Option<Self> {
        if Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                !services_required(),
                "etcd is not on PATH, and CI or MICROKIT_REQUIRE_SERVICES requires it"
            );
            eprintln!("skipping {test}: etcd is not on PATH");
            return None;
        }
        let name = format!(
            "microkit-{test}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // Both listeners at once, so the two ports differ; released just before etcd binds them.
        let (client, peer) = (free_port(), free_port());
        let etcd = Self {
            data_dir: std::env::temp_dir().join(&name),
            name,
            client_port: client.local_addr().unwrap().port(),
            peer_port: peer.local_addr().unwrap().port(),
            child: None,
            tls_args: Vec::new(),
        };
        drop((client, peer));
        Some(etcd)
    }

    /// The client URL, `http://127.0.0.1:PORT` (`https://` when started with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls_args.is_empty() {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The URL the shop's `--registry` takes, `etcd://127.0.0.1:PORT`.
    pub fn registry_url(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.client_port)
    }

    /// Starts the process (again) and waits until it answers.
    pub async fn spawn(&mut self) {
        let client_url = self.endpoint();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.data_dir.with_extension("log")).unwrap();
        let child = Command::new("etcd")
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .arg("--initial-cluster")
            .arg(format!("{}={peer_url}", self.name))
            .args(["--logger", "zap", "--log-level", "warn"])
            .args(&self.tls_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.child = Some(child);
        let deadline = Instant::now() + ETCD_PATIENCE;
        if !self.tls_args.is_empty() {
            // This module speaks no TLS: the port accepting connections is the sign of life
            // here, and the test's own first call waits for the rest.
            while tokio::net::TcpStream::connect(("127.0.0.1", self.client_port))
                .await
                .is_err()
            {
                assert!(Instant::now() < deadline, "etcd did not listen in time");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            return;
        }
        while post(
            &client_url,
            "/v3/kv/range",
            serde_json::json!({"key": "AA=="}),
        )
        .await
        .is_none()
        {
            assert!(Instant::now() < deadline, "etcd did not answer in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Freezes etcd (SIGSTOP): its connections stay open and answer nothing, as a hung host's.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws what [`pause`](Self::pause) froze (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("etcd is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The client port on 127.0.0.1.
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// Kills etcd at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A frozen process dies of SIGKILL too, but thawing first keeps it simple to reason about.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills etcd and starts it again on the same ports; `fresh` loses its data.
    pub async fn restart(&mut self, fresh: bool) {
        self.kill();
        if fresh {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
        self.spawn().await;
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
        let _ = std::fs::remove_file(self.data_dir.with_extension("log"));
    }
}

/// Standard base64 with padding, as etcd's gateway wants keys and values (the root package
/// has no base64 dependency, and this is all the tests need).
pub fn base64(bytes: impl AsRef<[u8]>) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.as_ref().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

fn free_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// POSTs JSON to etcd's gateway: the answer, or `None` if etcd did not answer 200.
pub async fn post(
    endpoint: &str,
    path: &str,
    body: serde_json::Value,
) -> Option<serde_json::Value> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("{endpoint}{path}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(2), client.request(request))
        .await
        .ok()?
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = response.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}
