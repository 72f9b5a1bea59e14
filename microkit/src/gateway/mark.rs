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

use http::header::HeaderName;
use http::HeaderMap;

/// The header the gateway sets on every request it forwards; services refuse it on internal
/// routes (see [`AllowNetworks`](super::AllowNetworks)).
pub const GATEWAY_MARK: HeaderName = HeaderName::from_static(GATEWAY_MARK_NAME);

/// [`GATEWAY_MARK`]'s name, for walks over a request's names.
pub(crate) const GATEWAY_MARK_NAME: &str = "x-microkit-gateway";

/// Whether a request came through a gateway.
pub(crate) fn is_marked(headers: &HeaderMap) -> bool {
    headers.contains_key(GATEWAY_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_request_is_marked_by_the_field_whatever_its_value() {
        let mut headers = HeaderMap::new();
        assert!(!is_marked(&headers));
        headers.insert(GATEWAY_MARK, HeaderValue::from_static("forwarded"));
        assert!(is_marked(&headers));
    }
}
