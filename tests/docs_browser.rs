//! `GET /docs` on the shop's gateway, rendered by a real browser: headless Chromium (Debian's
//! `chromium`) loads the page, Redoc's script shipped in the crate and the merged document,
//! all from the gateway on loopback, and the operations show up in the rendered page. A
//! screenshot is kept as a test artifact: `target/test-artifacts/docs-gateway.png`.
//!
//! Without Chromium the test is skipped with a message, unless `CI=true` or
//! `MICROKIT_REQUIRE_SERVICES=1` says it must run.

use microkit_test_support as support;

use microkit::http::StatusCode;
use support::browser::{browse, chromium_or_skip, screenshot};
use support::shop::{temp_data_dir, wait_healthy, ShopProcess};

#[tokio::test]
async fn the_gateway_docs_render_every_operation_in_a_browser() {
    let Some(browser) = chromium_or_skip() else {
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

    screenshot(browser, &url, &[budget], (1280, 2200), "docs-gateway.png").await;
}
