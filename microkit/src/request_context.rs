//! What the server, its trace and the router learn about a request, kept together in one
//! extension entry.
//!
//! Why one: every entry in `http::Extensions` is a boxed value in a hash map, and every lookup
//! hashes and probes. The server knows the client's address, its trace the request's span
//! (while a subscriber listens), the router the route that matched; each as an entry of its
//! own would cost every routed request an allocation, an insert, a drop and the router a
//! lookup. As one, the trace and the router fill in the entry the server made.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http::Extensions;

use crate::extract::{RemoteAddr, RouteMatch};
use crate::router::MatchedRoute;
use crate::trace::ServerSpan;

/// Where the router leaves the route that matched for a layer outside it that asked
/// ([`RequestContext::report_route`]): the metrics layer, which labels every request by its
/// route.
///
/// Why not the public [`ReportMatchedRoute`](crate::router::ReportMatchedRoute) way, the
/// route in the response's extensions: a response's extensions are empty, and the first entry
/// makes their map (three allocations and an insert, some 550 instructions per request); this
/// slot is one allocation, and the request's entry it rides in exists already.
pub(crate) type RouteSlot = Arc<OnceLock<MatchedRoute>>;

/// The client's address (from the server), the request's span (from its trace), the route
/// match (from the router) and where to report the route to (from the metrics layer).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestContext {
    remote: Option<SocketAddr>,
    span: Option<ServerSpan>,
    route: Option<RouteMatch>,
    report: Option<RouteSlot>,
}

impl RequestContext {
    /// The server's part: a request arrived from `remote`.
    pub(crate) fn arrived(extensions: &mut Extensions, remote: SocketAddr) {
        extensions.insert(Self {
            remote: Some(remote),
            ..Self::default()
        });
    }

    /// The trace's part: the request's span, for the router and the request id layer to
    /// record on. (The entry is made here, and by the router, for a request that did not come
    /// through microkit's server: one dispatched in process, in a test.)
    pub(crate) fn traced(extensions: &mut Extensions, span: ServerSpan) {
        extensions.get_or_insert_default::<Self>().span = Some(span);
    }

    /// The router's part: `route` matched. It replaces an earlier match (the outer router's,
    /// for a router mounted as a route's service), as a second insert would. The route is
    /// reported, made by `report`, when a layer asked for it and no outer router reported
    /// its own already (the slot is taken). Returns the request's span, to be named after the
    /// route.
    pub(crate) fn matched(
        extensions: &mut Extensions,
        route: RouteMatch,
        report: impl FnOnce() -> MatchedRoute,
    ) -> Option<&ServerSpan> {
        let context = extensions.get_or_insert_default::<Self>();
        context.route = Some(route);
        if let Some(slot) = context.report.take() {
            // Set once: only the router that took the slot sets it.
            let _ = slot.set(report());
        }
        context.span.as_ref()
    }

    /// A layer's part: it wants to know the route that answers the request (the first router
    /// to match it fills the slot). Layers asking in turn share one slot: the outermost
    /// router's match is the one every layer sees, as with a marker in the request.
    pub(crate) fn report_route(extensions: &mut Extensions) -> RouteSlot {
        extensions
            .get_or_insert_default::<Self>()
            .report
            .get_or_insert_with(RouteSlot::default)
            .clone()
    }

    /// The route that matched, if the request went through a router and one did.
    pub(crate) fn route(extensions: &Extensions) -> Option<&RouteMatch> {
        extensions.get::<Self>()?.route.as_ref()
    }

    /// The request's span, while a subscriber listens.
    pub(crate) fn span(extensions: &Extensions) -> Option<&ServerSpan> {
        extensions.get::<Self>()?.span.as_ref()
    }

    /// The client's address: one put in as a [`RemoteAddr`], else the server's. The one put
    /// in wins: a layer that learns the client's address from a trusted proxy's field says so
    /// by inserting it, as it did when the server's was an entry of its own.
    pub(crate) fn remote(extensions: &Extensions) -> Option<SocketAddr> {
        match extensions.get::<RemoteAddr>() {
            Some(RemoteAddr(addr)) => Some(*addr),
            None => extensions.get::<Self>()?.remote,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::extract::PathParams;

    fn reported() -> MatchedRoute {
        unreachable!("no layer asked for the route")
    }

    fn route(pattern: &str) -> RouteMatch {
        RouteMatch {
            pattern: Arc::from(pattern),
            params: PathParams::from_pairs(&[]),
            body_limit: None,
        }
    }

    #[test]
    fn the_route_joins_the_servers_entry() {
        let mut extensions = Extensions::new();
        let remote: SocketAddr = "192.0.2.7:5150".parse().unwrap();
        RequestContext::arrived(&mut extensions, remote);
        RequestContext::matched(&mut extensions, route("/user/{id}"), reported);
        assert_eq!(extensions.len(), 1);
        assert_eq!(RequestContext::remote(&extensions), Some(remote));
        let matched = RequestContext::route(&extensions).unwrap();
        assert_eq!(&*matched.pattern, "/user/{id}");
    }

    #[test]
    fn a_later_match_replaces_an_earlier_one() {
        let mut extensions = Extensions::new();
        RequestContext::matched(&mut extensions, route("/api/{*rest}"), reported);
        RequestContext::matched(&mut extensions, route("/user/{id}"), reported);
        assert_eq!(extensions.len(), 1);
        let matched = RequestContext::route(&extensions).unwrap();
        assert_eq!(&*matched.pattern, "/user/{id}");
        assert_eq!(RequestContext::remote(&extensions), None);
    }

    #[test]
    fn the_first_match_fills_the_slot_every_asking_layer_shares() {
        let mut extensions = Extensions::new();
        let outer = RequestContext::report_route(&mut extensions);
        let inner = RequestContext::report_route(&mut extensions);
        assert!(Arc::ptr_eq(&outer, &inner));
        let allow = http::HeaderValue::from_static("GET");
        RequestContext::matched(&mut extensions, route("/api/{*rest}"), || {
            MatchedRoute::new(Arc::from("/api/{*rest}"), allow.clone())
        });
        // A router mounted as the route's service matches again, and reports nothing.
        RequestContext::matched(&mut extensions, route("/user/{id}"), reported);
        assert_eq!(outer.get().map(MatchedRoute::pattern), Some("/api/{*rest}"));
        let matched = RequestContext::route(&extensions).unwrap();
        assert_eq!(&*matched.pattern, "/user/{id}");
    }

    #[test]
    fn an_address_put_in_by_hand_is_read() {
        let mut extensions = Extensions::new();
        let remote: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        extensions.insert(RemoteAddr(remote));
        RequestContext::matched(&mut extensions, route("/"), reported);
        assert_eq!(RequestContext::remote(&extensions), Some(remote));
    }

    #[test]
    fn an_address_put_in_overrides_the_servers() {
        let mut extensions = Extensions::new();
        RequestContext::arrived(&mut extensions, "127.0.0.1:40000".parse().unwrap());
        let client: SocketAddr = "203.0.113.9:5150".parse().unwrap();
        extensions.insert(RemoteAddr(client));
        assert_eq!(RequestContext::remote(&extensions), Some(client));
    }
}
