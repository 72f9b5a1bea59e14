//! Faults a test can inject into a running shop, off unless the environment turns one on:
//! `SHOP_FAULT=kill-after-take` makes the process `kill -9` itself once a checkout took the
//! cart and before it billed anything; `SHOP_FAULT=kill-after-invoice` once the invoice exists
//! and before the cart is emptied, the worst moment for a crash.

use serde_json::Value;

/// The environment variable a test sets.
const VARIABLE: &str = "SHOP_FAULT";

/// Where a checkout can be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// The cart is taken; nothing is billed.
    AfterTake,
    /// The invoice exists; the cart still holds the lines.
    AfterInvoice,
}

/// Which fault is on, read once at start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fault {
    kill_at: Option<Point>,
}

impl Fault {
    pub(crate) fn from_env() -> Self {
        let kill_at = match std::env::var(VARIABLE).as_deref() {
            Ok("kill-after-take") => Some(Point::AfterTake),
            Ok("kill-after-invoice") => Some(Point::AfterInvoice),
            _ => None,
        };
        Self { kill_at }
    }

    /// A checkout reached `point` (with its invoice once there is one).
    pub(crate) async fn reached(&self, point: Point, invoice: Option<&Value>) {
        if self.kill_at != Some(point) {
            return;
        }
        let invoice = invoice.map_or(Value::Null, |invoice| invoice["id"].clone());
        eprintln!("shop: {VARIABLE}: kill -9 at {point:?} (invoice {invoice})");
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
