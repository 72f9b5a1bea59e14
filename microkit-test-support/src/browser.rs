//! Headless Chromium (Debian's `chromium`) for the tests that look at a page the way an
//! operator does, and where to keep what they saw.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How long Chromium may take for one run, page load and rendering included.
const BROWSER_LIMIT: Duration = Duration::from_secs(90);

/// The Chromium command installed, if any.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// The Chromium command for a browser test, or `None` (after saying so) when it is not
/// installed and the test may skip; panics when CI or `MICROKIT_REQUIRE_SERVICES=1` requires it.
pub fn chromium_or_skip() -> Option<&'static str> {
    let browser = chromium();
    if browser.is_none() {
        assert!(
            !crate::etcd::services_required(),
            "chromium is required (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
    }
    browser
}

/// `target/test-artifacts/`, beside the profile directory the test binary runs from.
pub fn artifacts_dir() -> PathBuf {
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
/// 90 seconds; returns what it printed.
pub async fn browse(browser: &str, url: &str, args: &[String]) -> String {
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

/// Takes a screenshot of `url` in a `width`x`height` window after `args` (a virtual time
/// budget, say), keeps it as `target/test-artifacts/<name>`, checks it is a PNG of a page with
/// content, and returns its path.
pub async fn screenshot(
    browser: &str,
    url: &str,
    args: &[String],
    (width, height): (u32, u32),
    name: &str,
) -> PathBuf {
    let path = artifacts_dir().join(name);
    let _ = std::fs::remove_file(&path);
    let mut args = args.to_vec();
    args.push(format!("--window-size={width},{height}"));
    args.push(format!("--screenshot={}", path.display()));
    browse(browser, url, &args).await;
    let png = std::fs::read(&path).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(png.len() > 20_000, "a page with content, not a blank one");
    eprintln!("screenshot: {}", path.display());
    path
}
