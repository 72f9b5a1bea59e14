use std::net::SocketAddr;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, Method, Uri, Version};

use super::{FromRequestParts, OptionalFromRequestParts, Rejection, RejectionKind};
use crate::request_context::RequestContext;

macro_rules! clone_from_parts {
    ($ty:ty, $field:ident) => {
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = std::convert::Infallible;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
                Ok(parts.$field.clone())
            }
        }
    };
}

clone_from_parts!(HeaderMap, headers);
clone_from_parts!(Method, method);
clone_from_parts!(Uri, uri);
clone_from_parts!(Version, version);

/// The client's socket address: the one the server accepted, or one put in its place.
///
/// Take it as a handler argument, or in a layer with [`RemoteAddr::of`] (the server keeps its
/// own with the request's other context, not as an extension of its own, so
/// `extensions().get::<RemoteAddr>()` does not find it). One inserted with
/// `request.extensions_mut().insert(RemoteAddr(addr))` takes the server's place: in a request
/// built by hand (a test), or from a layer that learns the client's address from a trusted
/// proxy's field. The gateway's `Forwarded` and
/// [`AllowNetworksLayer`](crate::gateway::AllowNetworksLayer) read it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

impl RemoteAddr {
    /// The client's address of the request with these extensions: one inserted, else the one
    /// the server accepted; `None` for a request that has neither.
    ///
    /// ```
    /// use microkit::extract::RemoteAddr;
    ///
    /// let mut request = http::Request::new(());
    /// assert_eq!(RemoteAddr::of(request.extensions()), None);
    /// let addr = RemoteAddr("192.0.2.7:5150".parse().unwrap());
    /// request.extensions_mut().insert(addr);
    /// assert_eq!(RemoteAddr::of(request.extensions()), Some(addr));
    /// ```
    pub fn of(extensions: &http::Extensions) -> Option<Self> {
        RequestContext::remote(extensions).map(RemoteAddr)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RemoteAddr {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Self::of(&parts.extensions).ok_or_else(|| {
            Rejection::new(
                RejectionKind::MissingContext,
                "the client address is unknown: the request did not come through microkit's server",
            )
        })
    }
}

/// The route pattern that matched the request, such as `/user/{id}`: a low-cardinality label
/// for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedPath(pub(crate) Arc<str>);

impl MatchedPath {
    /// The pattern.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MatchedPath {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        RequestContext::route(&parts.extensions)
            .map(|matched| MatchedPath(matched.pattern.clone()))
            .ok_or_else(|| {
                Rejection::new(
                    RejectionKind::MissingContext,
                    "no route matched this request",
                )
            })
    }
}

/// A value from the request's extensions, put there by a middleware layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extension<T>(pub T);

impl<S, T> FromRequestParts<S> for Extension<T>
where
    S: Send + Sync,
    T: Clone + Send + Sync + 'static,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<T>()
            .cloned()
            .map(Extension)
            .ok_or_else(|| {
                Rejection::new(
                    RejectionKind::MissingContext,
                    format!(
                    "the request extension `{}` is missing: is the layer that adds it installed?",
                    std::any::type_name::<T>()
                ),
                )
            })
    }
}

/// `None` when neither the server nor a layer gave the request one.
impl<S: Send + Sync> OptionalFromRequestParts<S> for RemoteAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

/// `None` outside a route.
impl<S: Send + Sync> OptionalFromRequestParts<S> for MatchedPath {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(RequestContext::route(&parts.extensions)
            .map(|matched| MatchedPath(matched.pattern.clone())))
    }
}

/// `None` when no layer put the extension in.
impl<S, T> OptionalFromRequestParts<S> for Extension<T>
where
    S: Send + Sync,
    T: Clone + Send + Sync + 'static,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<T>().cloned().map(Extension))
    }
}
