//! The mark the gateway puts on everything it forwards.
//!
//! Why a mark: behind the gateway every request comes from the gateway's own address, a
//! loopback or private one, so a service's network check alone cannot tell a request from
//! outside (relayed through the door) from a peer calling it directly. The gateway therefore
//! marks every request it forwards, and [`AllowNetworks`](super::AllowNetworks) refuses marked
//! requests: a route kept for the services stays closed even when the gateway's route table
//! forgets it.
//!
//! Why it cannot be forged or removed through the gateway: the gateway first removes the
//! hop-by-hop headers (so `Connection: x-microkit-gateway` cannot make it drop its own mark),
//! then replaces every copy of the header a client sent with its own. Forging the mark
//! directly at a service only gets the forger refused, so its value needs no secret.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// The header the gateway sets on every request it forwards; services refuse it on internal
/// routes (see [`AllowNetworks`](super::AllowNetworks)).
pub const GATEWAY_MARK: HeaderName = HeaderName::from_static("x-microkit-gateway");

/// Marks a request as forwarded by the gateway, replacing whatever the client sent.
pub(crate) fn mark(headers: &mut HeaderMap) {
    headers.insert(GATEWAY_MARK, HeaderValue::from_static("forwarded"));
}

/// Whether a request came through a gateway.
pub(crate) fn is_marked(headers: &HeaderMap) -> bool {
    headers.contains_key(GATEWAY_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_replaces_every_copy_a_client_sent() {
        let mut headers = HeaderMap::new();
        headers.append(GATEWAY_MARK, HeaderValue::from_static("mine"));
        headers.append(GATEWAY_MARK, HeaderValue::from_static("also mine"));
        mark(&mut headers);
        let values: Vec<_> = headers.get_all(GATEWAY_MARK).iter().collect();
        assert_eq!(values, ["forwarded"]);
        assert!(is_marked(&headers));
    }
}
