//! A fault a test can inject into a running shop, off unless the environment turns it on:
//! `SHOP_FAULT=kill-after-invoice` makes the process `kill -9` itself once a checkout's
//! invoice exists and before the cart is emptied, the worst moment for a crash.

use serde_json::Value;

/// The environment variable a test sets.
const VARIABLE: &str = "SHOP_FAULT";

/// Which fault is on, read once at start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fault {
    kill_after_invoice: bool,
}

impl Fault {
    pub(crate) fn from_env() -> Self {
        let fault = std::env::var(VARIABLE).unwrap_or_default();
        Self {
            kill_after_invoice: fault == "kill-after-invoice",
        }
    }

    /// Where a checkout stands once payments made its invoice.
    pub(crate) async fn after_invoice(&self, invoice: &Value) {
        if !self.kill_after_invoice {
            return;
        }
        eprintln!(
            "shop: {VARIABLE}: kill -9 after invoice {} was created",
            invoice["id"]
        );
        let pid = std::process::id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        if !killed.is_ok_and(|status| status.success()) {
            std::process::abort();
        }
        // SIGKILL is on its way: nothing after this point runs.
        std::future::pending::<()>().await;
    }
}
