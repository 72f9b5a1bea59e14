//! The shop in containers on podman, through `deploy/shop-podman`: it builds the two images,
//! starts the deployment (etcd, a container per service instance, two catalog replicas, the
//! gateway), drives a checkout through the gateway, kills a catalog container and reads on,
//! rolls services onto new containers over the same volumes and finds the data there, scales
//! the catalog, and stops everything with SIGTERM, expecting every container to exit 0.
//!
//! Everything it makes (containers, volumes, images) carries a name unique to the run and is
//! removed when the test ends, failed or not. All traffic stays on 127.0.0.1: the containers
//! share the host's network.
//!
//! Without `podman` on `PATH` the test is skipped, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1`, when it fails. The release build of the shop it packages is
//! made when missing (`cargo build --release --example shop --example health_probe`).

use microkit_test_support as support;

use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use microkit::http::{Method, StatusCode};
use serde_json::{json, Value};

use support::etcd::services_required;
use support::shop::{id_of, Api};

/// The longest one step of the script may take (a build, or starting nine containers one
/// after another, each waiting to be healthy).
const SCRIPT_PATIENCE: Duration = Duration::from_secs(240);

/// An image is small when it holds the binary and its libraries, not a distribution.
const SMALL_IMAGE: u64 = 40 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_runs_as_a_podman_deployment_and_stops_cleanly() {
    if !podman_installed() {
        assert!(
            !services_required(),
            "podman is not on PATH, and CI or MICROKIT_REQUIRE_SERVICES requires it"
        );
        eprintln!("skipping the container test: podman is not on PATH");
        return;
    }
    let (shop_binary, probe_binary) = release_binaries();
    let deployment = Deployment::new(shop_binary, probe_binary);

    deployment.script(&["build"]);
    let image = deployment.image(&deployment.shop_image);
    check_image(&image, "the shop's image");
    check_image(&deployment.image(&deployment.etcd_image), "etcd's image");
    let size = image["Size"].as_u64().expect("the image's size");
    eprintln!("the shop's image: {} MB", size / 1_000_000);
    assert!(size < SMALL_IMAGE, "the shop's image has {size} bytes");
    let shell = deployment.podman(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--ulimit",
        "host",
        "--entrypoint",
        "/bin/sh",
        &deployment.shop_image,
        "-c",
        "true",
    ]);
    // podman's exit code 127: the command was not found (not some other failure to run).
    assert_eq!(
        shell.status.code(),
        Some(127),
        "the shop's image has a shell: {shell:?}"
    );

    deployment.script(&["up"]);
    assert_eq!(deployment.running("catalog").len(), 2);
    let api = Api {
        addr: deployment.gateway,
    };
    assert_eq!(api.get("/health").await.status, StatusCode::OK);

    // A checkout through the gateway, as in the README's session.
    let user = api
        .create(
            "/user/",
            json!({ "name": "Ada", "email": "ada@example.com" }),
        )
        .await;
    let uid = id_of(&user);
    let product = api
        .create("/product/", json!({ "name": "Lamp", "price_cents": 1999 }))
        .await;
    let product_path = format!("/product/{}", id_of(&product));
    api.create(
        &format!("/user/{uid}/cart/"),
        json!({ "product_id": id_of(&product), "quantity": 2 }),
    )
    .await;
    let checkout = api
        .raw(
            Method::POST,
            &format!("/user/{uid}/cart/checkout"),
            None,
            "",
        )
        .await;
    assert_eq!(checkout.status, StatusCode::CREATED, "{}", checkout.text());
    let invoice = checkout.json();
    assert_eq!(invoice["amount_cents"], 3998, "{invoice}");
    let invoice_path = format!("/invoices/{}", id_of(&invoice));
    let paid = api
        .raw(Method::POST, &format!("{invoice_path}/pay"), None, "")
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text());
    assert_eq!(paid.json()["status"], "paid");

    // One catalog container dies without a word; the other answers every read.
    let victim = deployment.running("catalog")[0].clone();
    deployment.podman_ok(&["kill", "--signal", "KILL", &victim]);
    for n in 0..40 {
        let path = if n % 2 == 0 {
            product_path.as_str()
        } else {
            "/products/?limit=5"
        };
        let reply = api.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {path} after the kill");
    }

    // New containers on the same volumes find the data written through the gateway.
    deployment.script(&["roll", "catalog"]);
    assert_eq!(deployment.running("catalog").len(), 2);
    assert_eq!(api.fetch(&product_path).await["name"], "Lamp");
    deployment.script(&["roll", "users"]);
    assert_eq!(api.fetch(&format!("/user/{uid}")).await["name"], "Ada");
    assert_eq!(api.fetch(&invoice_path).await["status"], "paid");

    deployment.script(&["scale", "catalog", "3"]);
    assert_eq!(deployment.running("catalog").len(), 3);
    assert_eq!(api.fetch(&product_path).await["name"], "Lamp");

    // SIGTERM to every container: each drains, deregisters and exits 0.
    deployment.script(&["stop"]);
    let containers = deployment.containers();
    assert_eq!(
        containers.len(),
        10,
        "etcd, 8 service instances, the gateway: {containers:?}"
    );
    for name in &containers {
        let state = deployment.inspect(name)["State"].clone();
        assert_eq!(state["Running"], false, "{name}: {state}");
        assert_eq!(state["ExitCode"], 0, "{name} after SIGTERM: {state}");
    }

    deployment.remove_everything();
    assert!(deployment.containers().is_empty());
    assert!(deployment.volumes().is_empty());
    for image in [&deployment.shop_image, &deployment.etcd_image] {
        let exists = deployment.podman(&["image", "exists", image]);
        assert!(!exists.status.success(), "{image} was not removed");
    }
}

/// Checks what every image of the deployment promises: a non-root user, a data volume,
/// SIGTERM to stop, and an exec-form health check with the probe inside the image.
#[track_caller]
fn check_image(image: &Value, what: &str) {
    let config = &image["Config"];
    assert_eq!(config["User"], "10001:10001", "{what}: {config}");
    assert_eq!(config["StopSignal"], "SIGTERM", "{what}: {config}");
    assert!(config["Volumes"].get("/data").is_some(), "{what}: {config}");
    let check = &image["Healthcheck"]["Test"];
    assert_eq!(
        check[0], "CMD",
        "{what}: an exec-form health check: {image}"
    );
    assert_eq!(check[1], "/health_probe", "{what}: {check}");
}

fn podman_installed() -> bool {
    Command::new("podman")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/release/examples/{shop,health_probe}`, built (or brought up to date) by cargo.
fn release_binaries() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "deps"))
        .and_then(|deps| deps.parent()?.parent())
        .expect("the test binary lives under <target>/<profile>/deps")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--example",
            "shop",
            "--example",
            "health_probe",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root())
        .status()
        .expect("running cargo build --release");
    assert!(status.success(), "cargo build --release failed");
    let examples = target.join("release").join("examples");
    (examples.join("shop"), examples.join("health_probe"))
}

/// A free loopback port from 20000 to 29999: below Linux's ephemeral range, so that no
/// outgoing connection takes it, or the ports above it, while the deployment starts.
fn free_port_below_ephemeral(seed: u32) -> u16 {
    (0..1000u32)
        .map(|attempt| 20_000 + (seed / 1000 + attempt * 7_919) % 10_000)
        .map(|port| u16::try_from(port).expect("a port number"))
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free loopback port from 20000 to 29999")
}

/// One run's deployment: names unique to it, and everything it made removed on drop.
struct Deployment {
    name: String,
    shop_image: String,
    etcd_image: String,
    gateway: SocketAddr,
    shop_binary: PathBuf,
    probe_binary: PathBuf,
}

impl Deployment {
    fn new(shop_binary: PathBuf, probe_binary: PathBuf) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("microkit-test-{}-{nanos}", std::process::id());
        // The script takes the ports above the gateway's that are free when it needs them.
        let gateway = SocketAddr::from(([127, 0, 0, 1], free_port_below_ephemeral(nanos)));
        Self {
            shop_image: format!("localhost/{name}-shop:latest"),
            etcd_image: format!("localhost/{name}-etcd:latest"),
            name,
            gateway,
            shop_binary,
            probe_binary,
        }
    }

    /// Runs `deploy/shop-podman ARGS` for this deployment; panics with its output when it
    /// fails or takes longer than [`SCRIPT_PATIENCE`].
    fn script(&self, args: &[&str]) -> String {
        // The output goes to a file: a pipe could be held open by a process the script leaves
        // running (podman's conmon), and reading it would never end.
        let mut log = tempfile::tempfile().expect("a temporary file");
        let mut child = Command::new(root().join("deploy/shop-podman"))
            .args(args)
            .env("SHOP_DEPLOYMENT", &self.name)
            .env("SHOP_GATEWAY", self.gateway.to_string())
            .env("SHOP_IMAGE", &self.shop_image)
            .env("ETCD_IMAGE", &self.etcd_image)
            .env("SHOP_BINARY", &self.shop_binary)
            .env("PROBE_BINARY", &self.probe_binary)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a second handle on the log"))
            .stderr(log.try_clone().expect("a second handle on the log"))
            .spawn()
            .expect("running deploy/shop-podman");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for shop-podman") {
                break Some(status);
            }
            if started.elapsed() > SCRIPT_PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut output = String::new();
        log.seek(SeekFrom::Start(0)).expect("rewinding the log");
        log.read_to_string(&mut output).expect("reading the log");
        match status {
            Some(status) if status.success() => output,
            Some(status) => panic!("shop-podman {args:?} failed ({status}):\n{output}"),
            None => panic!("shop-podman {args:?} took over {SCRIPT_PATIENCE:?}:\n{output}"),
        }
    }

    fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running podman")
    }

    /// `podman ARGS`, which must succeed; its standard output.
    fn podman_ok(&self, args: &[&str]) -> String {
        let output = self.podman(args);
        assert!(
            output.status.success(),
            "podman {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("podman prints UTF-8")
    }

    fn label(&self) -> String {
        format!("label=microkit.deployment={}", self.name)
    }

    /// The deployment's containers, running or not.
    fn containers(&self) -> Vec<String> {
        let listing = self.podman_ok(&[
            "ps",
            "--all",
            "--filter",
            &self.label(),
            "--format",
            "{{.Names}}",
        ]);
        listing.lines().map(str::to_owned).collect()
    }

    /// The running containers of one service, in name order.
    fn running(&self, service: &str) -> Vec<String> {
        let listing = self.podman_ok(&[
            "ps",
            "--filter",
            &self.label(),
            "--filter",
            &format!("label=microkit.service={service}"),
            "--format",
            "{{.Names}}",
        ]);
        let mut names: Vec<String> = listing.lines().map(str::to_owned).collect();
        names.sort();
        names
    }

    fn volumes(&self) -> Vec<String> {
        let listing = self.podman_ok(&["volume", "ls", "--quiet", "--filter", &self.label()]);
        listing.lines().map(str::to_owned).collect()
    }

    fn inspect(&self, container: &str) -> Value {
        let text = self.podman_ok(&["container", "inspect", container]);
        let parsed: Value = serde_json::from_str(&text).expect("podman inspect prints JSON");
        parsed[0].clone()
    }

    fn image(&self, image: &str) -> Value {
        let text = self.podman_ok(&["image", "inspect", image]);
        let parsed: Value = serde_json::from_str(&text).expect("podman inspect prints JSON");
        parsed[0].clone()
    }

    /// Removes the containers (with their anonymous volumes), the named volumes and the
    /// images; whatever was never made is skipped.
    fn remove_everything(&self) {
        let containers = self.containers();
        if !containers.is_empty() {
            let mut args = vec!["rm", "--force", "--volumes", "--time", "5"];
            args.extend(containers.iter().map(String::as_str));
            self.podman(&args);
        }
        let volumes = self.volumes();
        if !volumes.is_empty() {
            let mut args = vec!["volume", "rm", "--force"];
            args.extend(volumes.iter().map(String::as_str));
            self.podman(&args);
        }
        for image in [&self.shop_image, &self.etcd_image] {
            self.podman(&["rmi", "--force", image]);
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.remove_everything();
    }
}
