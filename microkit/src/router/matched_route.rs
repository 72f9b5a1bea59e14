//! Which route answered a request, told to layers outside the router.
//!
//! Layers put on a whole router (with [`Router::layer`](super::Router::layer)) see a request
//! before it is matched, so they cannot read the route from it. One that labels requests by
//! route (metrics, access logs) marks the request with [`ReportMatchedRoute`], and the router
//! answers with the [`MatchedRoute`] in the response's extensions. Unmarked requests cost
//! nothing more. (The crate's own metrics layer, on every service's every request, learns
//! the route by a private way that costs one allocation rather than the response's extension
//! map.)

use std::sync::Arc;

use http::{HeaderValue, Method};

/// Marks a request whose response should carry the [`MatchedRoute`] that answered it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportMatchedRoute;

/// The route that answered a request marked with [`ReportMatchedRoute`], in the response's
/// extensions. Absent when no route matched (the fallback, a trailing-slash redirect, a 405,
/// an `OPTIONS` the router answered itself).
#[derive(Debug, Clone)]
pub struct MatchedRoute {
    pattern: Arc<str>,
    allow: HeaderValue,
}

impl MatchedRoute {
    pub(crate) fn new(pattern: Arc<str>, allow: HeaderValue) -> Self {
        Self { pattern, allow }
    }

    /// The route's pattern, as it was routed: `/user/{id}`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the route has a handler for `method` by name, rather than only one for any
    /// method.
    pub fn routes_by_name(&self, method: &Method) -> bool {
        self.allow
            .as_bytes()
            .split(|&byte| byte == b',')
            .any(|name| name == method.as_str().as_bytes())
    }
}
