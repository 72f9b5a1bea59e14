//! The shop in this test's process, and a registration traced at its gateway: what the trace
//! tests (`trace.rs`, `trace_otel.rs`) follow through the services.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use microkit::http::{Method, Request};
use microkit_test_support as support;
use serde_json::json;

use crate::shop;

/// The trace id the registration carries in.
pub(crate) const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
/// The caller's span id in that `traceparent`.
pub(crate) const CALLER_SPAN: &str = "b7ad6b7169203331";

/// The shop, started in-process on free ports with data in a temporary directory.
pub(crate) struct InProcessShop {
    pub(crate) shop: shop::Shop,
    pub(crate) gateway: SocketAddr,
    _data: tempfile::TempDir,
}

impl InProcessShop {
    /// Starts the shop and waits until its gateway is healthy.
    pub(crate) async fn start() -> Self {
        let data = support::shop::temp_data_dir();
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data.path().display().to_string(),
        ]
        .map(str::to_owned);
        let options = shop::Options::parse(args.into_iter()).expect("valid options");
        let shop = shop::Shop::start(options).await.expect("the shop starts");
        let gateway = shop.listeners[0].1;
        support::shop::wait_healthy(support::shop::Api { addr: gateway }, support::PATIENCE).await;
        Self {
            shop,
            gateway,
            _data: data,
        }
    }

    /// The port `service` listens on, as a span records it.
    pub(crate) fn port_of(&self, service: &str) -> String {
        let (_, addr) = self
            .shop
            .listeners
            .iter()
            .find(|(name, _)| name == service)
            .unwrap_or_else(|| panic!("no listener named {service}"));
        addr.port().to_string()
    }
}

/// `POST /user/` registering `name`, in the trace [`TRACE`] under the caller's span
/// [`CALLER_SPAN`].
pub(crate) fn registration(name: &str, email: &str) -> Request<Full<Bytes>> {
    let mut request = support::request(
        Method::POST,
        "/user/",
        json!({ "name": name, "email": email }).to_string(),
    );
    let headers = request.headers_mut();
    headers.insert("content-type", support::value("application/json"));
    headers.insert(
        "traceparent",
        support::value("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    );
    request
}
