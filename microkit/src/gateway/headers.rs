//! What a proxy does to headers on the way through.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONNECTION, FORWARDED, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::HeaderMap;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const PROXY_AUTHENTICATE: HeaderName = HeaderName::from_static("proxy-authenticate");
const PROXY_AUTHORIZATION: HeaderName = HeaderName::from_static("proxy-authorization");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): those named in `Connection`, and the
/// standard ones, which describe one connection and must not travel further.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one look at each name is cheaper than nine removals, each of
    // which hashes its name.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The hop-by-hop headers every proxy removes.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Records where the request came from: `Forwarded` (RFC 7239) and the `X-Forwarded-*`
/// headers most backends read, appending to what earlier proxies wrote.
pub(crate) fn add_forwarded(headers: &mut HeaderMap, client: Option<SocketAddr>) {
    let host = headers.get(HOST).cloned();
    // One buffer per header, written in place and handed to its value without a copy: this
    // runs on every request.
    let mut forwarded = Vec::with_capacity(64);
    if let Some(client) = client {
        let mut ip = Vec::with_capacity(15);
        push_ip(&mut ip, client.ip());
        // RFC 7239 §6: `for="1.2.3.4:5678"`, or `for="[::1]:1234"` for IPv6; an address holds
        // no character that needs escaping.
        forwarded.extend_from_slice(b"for=\"");
        match client {
            SocketAddr::V4(_) => forwarded.extend_from_slice(&ip),
            SocketAddr::V6(_) => {
                forwarded.push(b'[');
                forwarded.extend_from_slice(&ip);
                forwarded.push(b']');
            }
        }
        forwarded.push(b':');
        forwarded.extend_from_slice(itoa::Buffer::new().format(client.port()).as_bytes());
        forwarded.extend_from_slice(b"\";");
        append(headers, X_FORWARDED_FOR, ip);
    }
    forwarded.extend_from_slice(b"proto=http");
    if let Some(host) = host.as_ref().and_then(|host| host.to_str().ok()) {
        forwarded.extend_from_slice(b";host=");
        push_quoted(&mut forwarded, host);
    }
    append(headers, FORWARDED, forwarded);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// Writes `ip` as text; IPv4, the usual case, without the formatting machinery.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
            }
        }
        IpAddr::V6(ip) => {
            let _ = write!(out, "{ip}");
        }
    }
}

/// Appends `value` as an RFC 7230 quoted-string, the form RFC 7239 requires for anything that
/// is not a token: a client's `Host` could otherwise close the quotes and add parameters or
/// elements of its own (`a", for=1.2.3.4`).
fn push_quoted(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    for &byte in value.as_bytes() {
        if byte == b'"' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// Sets `name` to `value`, after what earlier proxies wrote there.
fn append(headers: &mut HeaderMap, name: HeaderName, mut value: Vec<u8>) {
    if let Some(earlier) = headers.get(&name).map(HeaderValue::as_bytes) {
        if !earlier.is_empty() {
            value.splice(0..0, earlier.iter().copied().chain(*b", "));
        }
    }
    // The buffer becomes the value's storage: validated, not copied.
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed_including_those_named_in_connection() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_headers_append_to_earlier_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("shop.example"));
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        add_forwarded(&mut headers, Some(([127, 0, 0, 1], 5000).into()));
        assert_eq!(headers[X_FORWARDED_FOR], "203.0.113.9, 127.0.0.1");
        assert_eq!(headers[X_FORWARDED_HOST], "shop.example");
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(
            headers[FORWARDED],
            "for=\"127.0.0.1:5000\";proto=http;host=\"shop.example\""
        );
    }

    #[test]
    fn ipv4_addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.9.99.100",
            "255.255.255.255",
            "127.0.0.1",
            "192.168.1.20",
        ] {
            let mut out = Vec::new();
            push_ip(&mut out, ip.parse().unwrap());
            assert_eq!(out, ip.as_bytes());
        }
    }

    #[test]
    fn forwarded_values_are_quoted_and_escaped() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static(r#"a", for=1.2.3.4;\x"#));
        add_forwarded(&mut headers, Some("[::1]:1234".parse().unwrap()));
        assert_eq!(
            headers[FORWARDED],
            r#"for="[::1]:1234";proto=http;host="a\", for=1.2.3.4;\\x""#
        );
    }
}
