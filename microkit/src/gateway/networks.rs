//! Guarding internal routes: by the caller's real network address, and never through the
//! gateway.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::StatusCode;
use tower_layer::Layer;
use tower_service::Service;

use super::mark::is_marked;
use crate::extract::RemoteAddr;
use crate::response::IntoResponse;
use crate::{Problem, Request, Response};

/// An IP network such as `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// The network of `addr` with a `prefix`-bit mask (clamped to the address' width).
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let width = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr,
            prefix: prefix.min(width),
        }
    }

    /// Whether `ip` is inside the network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Loopback and the private ranges: where a service's peers live.
    pub fn private() -> Vec<Network> {
        [
            "127.0.0.0/8",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "::1/128",
            "fc00::/7",
        ]
        .iter()
        .map(|net| net.parse().expect("a valid network"))
        .collect()
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (
                addr,
                Some(
                    prefix
                        .parse::<u8>()
                        .map_err(|_| format!("bad prefix in `{text}`"))?,
                ),
            ),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("bad address in `{text}`"))?;
        let full = if addr.is_ipv4() { 32 } else { 128 };
        Ok(Self::new(addr, prefix.unwrap_or(full)))
    }
}

/// Lets a request through only when its real client address ([`RemoteAddr::of`]: the
/// connection's, never a forwarded header, unless a layer put another in its place) is in one
/// of the allowed networks and it did not come through the
/// gateway (it carries no [`GATEWAY_MARK`](super::GATEWAY_MARK)); others get a 403 problem.
/// Put it on internal routes with [`Router::route_layer`](crate::Router::route_layer).
///
/// Why both: behind the gateway every request comes from the gateway's own, private address,
/// so the address alone would let the whole internet in through the door.
#[derive(Debug, Clone)]
pub struct AllowNetworksLayer {
    networks: Arc<[Network]>,
}

impl AllowNetworksLayer {
    /// Allows the given networks.
    pub fn new(networks: impl IntoIterator<Item = Network>) -> Self {
        Self {
            networks: networks.into_iter().collect(),
        }
    }

    /// Allows loopback and the private ranges.
    pub fn private() -> Self {
        Self::new(Network::private())
    }
}

impl<S> Layer<S> for AllowNetworksLayer {
    type Service = AllowNetworks<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AllowNetworks {
            inner,
            networks: self.networks.clone(),
        }
    }
}

/// The service of [`AllowNetworksLayer`].
#[derive(Debug, Clone)]
pub struct AllowNetworks<S> {
    inner: S,
    networks: Arc<[Network]>,
}

impl<S> Service<Request> for AllowNetworks<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let nearby = RemoteAddr::of(request.extensions()).is_some_and(|RemoteAddr(addr)| {
            self.networks.iter().any(|net| net.contains(addr.ip()))
        });
        let detail = if is_marked(request.headers()) {
            "this route is internal: it does not answer requests forwarded by the gateway"
        } else if nearby {
            return Box::pin(self.inner.call(request));
        } else {
            "this route is internal: it only answers callers on the service's own networks"
        };
        Box::pin(async move {
            Ok(Problem::new(StatusCode::FORBIDDEN)
                .with_detail(detail)
                .into_response())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses() {
        let private = Network::private();
        let inside = |ip: &str| private.iter().any(|n| n.contains(ip.parse().unwrap()));
        assert!(inside("127.0.0.1"));
        assert!(inside("10.1.2.3"));
        assert!(inside("172.31.255.255"));
        assert!(!inside("172.32.0.1"));
        assert!(inside("192.168.0.10"));
        assert!(inside("::1"));
        assert!(inside("::ffff:127.0.0.1"));
        assert!(!inside("8.8.8.8"));
        assert!(!inside("2001:db8::1"));
        assert!("0.0.0.0/0"
            .parse::<Network>()
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33x".parse::<Network>().is_err());
    }
}
