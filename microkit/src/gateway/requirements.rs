//! Per-route requirements at the gateway (feature `auth`): a path prefix may require a
//! verified caller, a scheme or a scope, checked before the request is forwarded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::auth::{Identity, Requirement};
use crate::{Request, Response};

/// The realm in challenges the gateway's requirements send.
const REALM: &str = "microkit";

/// Path prefixes and what each requires; every rule whose prefix matches must hold.
#[derive(Debug, Clone, Default)]
pub(super) struct Requirements {
    rules: Arc<Vec<(String, Requirement)>>,
}

impl Requirements {
    pub(super) fn add(&mut self, prefix: &str, requirement: Requirement) {
        Arc::make_mut(&mut self.rules).push((prefix.to_owned(), requirement));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn refusal(&self, request: &Request) -> Option<Response> {
        let path = request.uri().path();
        let identity = request.extensions().get::<Identity>();
        self.rules
            .iter()
            .filter(|(prefix, _)| covers(prefix, path))
            .find_map(|(_, requirement)| requirement.check(identity).err())
            .map(|refused| refused.response(REALM))
    }
}

/// Whether `prefix` covers `path` on a segment boundary: `/invoices` covers `/invoices`,
/// `/invoices/` and `/invoices/7`, not `/invoicesx`.
fn covers(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

impl<S> Layer<S> for Requirements {
    type Service = RequirementsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirementsService {
            inner,
            requirements: self.clone(),
        }
    }
}

/// The service [`Requirements`] wraps.
#[derive(Debug, Clone)]
pub(super) struct RequirementsService<S> {
    inner: S,
    requirements: Requirements,
}

impl<S> Service<Request> for RequirementsService<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.requirements.refusal(&request) {
            None => Box::pin(self.inner.call(request)),
            Some(refused) => Box::pin(std::future::ready(Ok(refused))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_covers_its_own_segments_only() {
        assert!(covers("/invoices", "/invoices"));
        assert!(covers("/invoices", "/invoices/7/pay"));
        assert!(covers("/invoices/", "/invoices/7"));
        assert!(!covers("/invoices", "/invoicesx"));
        assert!(!covers("/invoices", "/user/1/invoices"));
    }
}
