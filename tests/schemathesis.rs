//! schemathesis (PyPI's `schemathesis`, a client nobody here wrote) against the documents the
//! shop's services serve: `--checks all`, every phase (examples, coverage, fuzzing, stateful),
//! a time cap per service, and any failure it reports fails the test with its report.
//!
//! The operations tested are those the handlers' types and the routes' notes document
//! ([`HAND_WRITTEN`]): checkout, pay, send_email and the stats log.
//!
//! Without schemathesis the test is skipped with a message, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1` says it must run.

use microkit_test_support as support;

use std::process::Stdio;
use std::time::Duration;

use support::etcd::services_required;
use support::shop::{temp_data_dir, wait_healthy, ShopProcess};
use tokio::process::Command;

/// The time budget schemathesis gets for each service.
const TIME_CAP_SECONDS: u64 = 20;
/// A fixed seed, so that a failure seen once is seen again.
const SEED: &str = "20261128";

/// The services and the operation ids of their hand-written routes.
const HAND_WRITTEN: [(&str, &[&str]); 4] = [
    ("cart", &["checkoutCart"]),
    ("payments", &["payInvoice"]),
    ("emails", &["sendEmail"]),
    ("stats", &["readLog"]),
];

fn schemathesis_installed() -> bool {
    std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs schemathesis on the document at `url`, limited to `operation_ids`; the report when it
/// found anything.
async fn run(url: &str, operation_ids: &[&str]) -> Result<(), String> {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schemathesis.toml");
    let mut command = Command::new("schemathesis");
    command
        .args([
            "--no-color",
            "--config-file",
            config,
            "run",
            "--checks",
            "all",
        ])
        .args(["--max-time", &TIME_CAP_SECONDS.to_string()])
        .args(["--seed", SEED, "--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none"]);
    for id in operation_ids {
        command.args(["--include-operation-id", id]);
    }
    let report = tempfile::tempdir().expect("a report directory");
    command
        .args(["--report-dir"])
        .arg(report.path())
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Past the time cap, schemathesis finishes the case at hand and reports: allow for that.
    let limit = Duration::from_secs(TIME_CAP_SECONDS + 90);
    let output = tokio::time::timeout(limit, command.output())
        .await
        .map_err(|_| format!("schemathesis did not finish {url} within {limit:?}"))?
        .map_err(|err| format!("schemathesis did not run: {err}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tested = stdout.contains("Tested:") && !stdout.contains("Tested: 0");
    if output.status.success() && tested {
        return Ok(());
    }
    Err(format!(
        "schemathesis on {url} (exit {:?}, operations tested: {tested}):\n{stdout}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[tokio::test]
async fn schemathesis_finds_nothing_in_the_hand_written_routes() {
    if !schemathesis_installed() {
        assert!(
            !services_required(),
            "schemathesis is required (pip install schemathesis)"
        );
        eprintln!("skipped: schemathesis is not installed (pip install schemathesis)");
        return;
    }
    let data = temp_data_dir();
    let dir = data.path().display().to_string();
    let shop = ShopProcess::start(&["--listen", "127.0.0.1:0", "--data-dir", &dir], 7).await;
    wait_healthy(shop.api("gateway"), support::PATIENCE).await;
    let mut failures = Vec::new();
    for (service, operation_ids) in HAND_WRITTEN {
        let url = format!("http://{}/openapi.json", shop.addr(service));
        if let Err(report) = run(&url, operation_ids).await {
            failures.push(format!("== {service}\n{report}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
