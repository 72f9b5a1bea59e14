//! `GET /docs` on the shop's gateway, rendered by a real browser: headless Chromium (Debian's
//! `chromium`) loads the page, Redoc's script shipped in the crate and the merged document,
//! all from the gateway on loopback, and the operations show up in the rendered page. A
//! screenshot is kept as a test artifact: `target/test-artifacts/docs-gateway.png`.
//!
//! Without Chromium the test is skipped with a message, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1` says it must run.

use microkit_test_support as support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use microkit::http::StatusCode;
use support::etcd::services_required;
use support::shop::{temp_data_dir, wait_healthy, ShopProcess};
use tokio::process::Command;

/// How long Chromium may take for one run, page load and rendering included.
const BROWSER_LIMIT: Duration = Duration::from_secs(90);

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// `target/test-artifacts/`, beside the profile directory the test binary runs from.
fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "deps"))
        .and_then(|deps| deps.parent()?.parent())
        .expect("the test binary lives under target/<profile>/deps")
        .join("test-artifacts");
    std::fs::create_dir_all(&target).expect("the artifacts directory");
    target
}

/// Runs headless Chromium on `url` with `args`, in a profile of its own, within
/// [`BROWSER_LIMIT`]; returns what it printed.
async fn browse(browser: &str, url: &str, args: &[String]) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut command = Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish {url} within {BROWSER_LIMIT:?}"))
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_gateway_docs_render_every_operation_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(
            !services_required(),
            "chromium is required (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    };
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let shop = ShopProcess::start(&["--listen", "127.0.0.1:0", "--data-dir", &dir], 7).await;
    let gateway = shop.api("gateway");
    wait_healthy(gateway, support::PATIENCE).await;
    let page = gateway.get("/docs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    let url = format!("http://{}/docs", gateway.addr);

    // Redoc renders after it has fetched the document: give the page virtual time for it.
    let budget = "--virtual-time-budget=20000".to_owned();
    let dom = browse(browser, &url, &[budget.clone(), "--dump-dom".to_owned()]).await;
    let expected = [
        "Checks the cart out",
        "Pays an open invoice",
        "Sends an email to a registered user",
        "/user/{uid}/cart/checkout",
        "/invoices/{id}/pay",
        "/send_email/",
        "/log",
        "/products/",
    ];
    let missing: Vec<&str> = expected
        .into_iter()
        .filter(|text| !dom.contains(text))
        .collect();
    assert!(
        missing.is_empty(),
        "the rendered page lacks {missing:?}; it holds:\n{}",
        &dom[..dom.len().min(4000)]
    );
    assert!(
        !dom.contains("Something went wrong"),
        "Redoc reported an error"
    );

    let screenshot = artifacts_dir().join("docs-gateway.png");
    let _ = std::fs::remove_file(&screenshot);
    browse(
        browser,
        &url,
        &[
            budget,
            "--window-size=1280,2200".to_owned(),
            format!("--screenshot={}", screenshot.display()),
        ],
    )
    .await;
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(png.len() > 20_000, "a page with content, not a blank one");
    eprintln!("screenshot: {}", screenshot.display());
}
