//! What a proxy does to headers on the way through.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, HeaderValue, CONNECTION, FORWARDED, HOST};
use http::HeaderMap;

use super::mark::GATEWAY_MARK;
use crate::client::HeaderLines;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): those named in `Connection`, and the
/// standard ones, which describe one connection and must not travel further.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one look at each name is cheaper than nine removals, each of
    // which hashes its name. (Names as text: a `const` array of `HeaderName`s is built and
    // dropped at every use.)
    if !headers
        .keys()
        .any(|name| HOP_BY_HOP.contains(&name.as_str()))
    {
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
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Records where the request came from, as header lines for the upstream request:
/// `Forwarded` (RFC 7239) and the `X-Forwarded-*` fields most backends read, appending to what
/// earlier proxies wrote, and the [`GATEWAY_MARK`]. The client's `Host` moves to
/// `X-Forwarded-Host` (the [`ServiceClient`](crate::client::ServiceClient) sends the
/// instance's own `Host`). Whatever the client sent of these fields leaves `headers`.
///
/// This runs on every forwarded request: written as lines, the fields go to the wire in one
/// copy, without a map insert or an allocation each.
pub(crate) fn write_forwarding(
    headers: &mut HeaderMap,
    client: Option<SocketAddr>,
    lines: &mut HeaderLines,
) {
    let host = headers.remove(HOST);
    let (mut earlier_for, mut earlier_forwarded) = (None, None);
    const CLAIMED: [&str; 5] = [
        "x-forwarded-for",
        "forwarded",
        "x-forwarded-proto",
        "x-forwarded-host",
        // Every copy a client sent goes: the mark is the gateway's alone.
        super::mark::GATEWAY_MARK_NAME,
    ];
    // Most requests come straight from clients, with none of these: one walk over the names
    // finds that, rather than a lookup each (by text, as in `strip_hop_by_hop`).
    if headers.keys().any(|name| CLAIMED.contains(&name.as_str())) {
        earlier_for = headers.remove(X_FORWARDED_FOR);
        earlier_forwarded = headers.remove(FORWARDED);
        for name in &CLAIMED[2..] {
            headers.remove(*name);
        }
    }
    let host_text = host.as_ref().and_then(|host| host.to_str().ok());
    let ip = client.map(|client| IpText::of(client.ip()));
    match (&ip, &earlier_for) {
        (Some(ip), _) => lines.push_with(&X_FORWARDED_FOR, |out| {
            push_earlier(out, earlier_for.as_ref());
            out.extend_from_slice(ip.as_bytes());
        }),
        // No peer address to add (a request not from microkit's server): what earlier proxies
        // wrote still goes on.
        (None, Some(earlier)) => lines.push(&X_FORWARDED_FOR, earlier.as_bytes()),
        (None, None) => {}
    }
    lines.push_with(&FORWARDED, |out| {
        push_earlier(out, earlier_forwarded.as_ref());
        if let (Some(ip), Some(client)) = (&ip, client) {
            let ip = ip.as_bytes();
            out.extend_from_slice(b"for=\"");
            if client.is_ipv6() {
                out.push(b'[');
                out.extend_from_slice(ip);
                out.push(b']');
            } else {
                out.extend_from_slice(ip);
            }
            out.push(b':');
            out.extend_from_slice(itoa::Buffer::new().format(client.port()).as_bytes());
            out.extend_from_slice(b"\";");
        }
        out.extend_from_slice(b"proto=http");
        if let Some(host) = host_text {
            out.extend_from_slice(b";host=");
            push_quoted(out, host);
        }
    });
    lines.push(&X_FORWARDED_PROTO, b"http");
    if let Some(host) = &host {
        lines.push(&X_FORWARDED_HOST, host.as_bytes());
    }
    lines.push(&GATEWAY_MARK, b"forwarded");
}

/// Drops the forwarding lines whose fields a forward hook set in `headers`: the hook's value
/// wins, as it did when the gateway's fields were map entries the hook could overwrite.
pub(crate) fn let_hook_override(headers: &HeaderMap, lines: &mut HeaderLines) {
    for name in [
        X_FORWARDED_FOR,
        FORWARDED,
        X_FORWARDED_PROTO,
        X_FORWARDED_HOST,
        GATEWAY_MARK,
    ] {
        if headers.contains_key(&name) {
            lines.remove(&name);
        }
    }
}

/// What an earlier proxy wrote, and the separator before this hop's part.
fn push_earlier(out: &mut Vec<u8>, earlier: Option<&HeaderValue>) {
    if let Some(earlier) = earlier.filter(|earlier| !earlier.is_empty()) {
        out.extend_from_slice(earlier.as_bytes());
        out.extend_from_slice(b", ");
    }
}

/// An IP address as text, written on the stack.
struct IpText {
    /// The longest form, an IPv4-mapped IPv6 address, is 45 bytes.
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    fn of(ip: IpAddr) -> Self {
        let mut text = Self {
            buf: [0; 48],
            len: 0,
        };
        match ip {
            IpAddr::V4(ip) => {
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b".");
                    }
                    text.push(itoa::Buffer::new().format(octet).as_bytes());
                }
            }
            IpAddr::V6(ip) => {
                let mut rest = &mut text.buf[..];
                let _ = write!(rest, "{ip}");
                let left = rest.len();
                text.len = text.buf.len() - left;
            }
        }
        text
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hop_by_hop_header_is_removed() {
        for name in HOP_BY_HOP {
            let mut headers = HeaderMap::new();
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
            strip_hop_by_hop(&mut headers);
            assert!(headers.is_empty(), "{name}");
        }
    }

    #[test]
    fn every_claimed_forwarding_field_is_replaced() {
        for name in [
            "x-forwarded-for",
            "forwarded",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-microkit-gateway",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
            let (kept, _) = forwarding(headers, "10.0.0.1:80");
            assert!(kept.is_empty(), "{name}: {kept:?}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_removed_including_those_named_in_connection() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            http::header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    /// The fields the gateway sends for `headers` from `client`: what stays of the request's
    /// own, and the lines it adds, read back as a map.
    fn forwarding(mut headers: HeaderMap, client: &str) -> (HeaderMap, HeaderMap) {
        let mut lines = HeaderLines::new();
        write_forwarding(&mut headers, Some(client.parse().unwrap()), &mut lines);
        let mut added = HeaderMap::new();
        for line in std::str::from_utf8(lines.as_bytes())
            .unwrap()
            .split_terminator("\r\n")
        {
            let (name, value) = line.split_once(": ").unwrap();
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert!(!added.contains_key(&name), "{name} written twice");
            added.insert(name, HeaderValue::from_str(value).unwrap());
        }
        (headers, added)
    }

    #[test]
    fn forwarded_headers_append_to_earlier_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("shop.example"));
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        headers.insert(FORWARDED, HeaderValue::from_static("for=203.0.113.9"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        let (kept, added) = forwarding(headers, "127.0.0.1:5000");
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(added[X_FORWARDED_FOR], "203.0.113.9, 127.0.0.1");
        assert_eq!(added[X_FORWARDED_HOST], "shop.example");
        assert_eq!(added[X_FORWARDED_PROTO], "http");
        assert_eq!(
            added[FORWARDED],
            "for=203.0.113.9, for=\"127.0.0.1:5000\";proto=http;host=\"shop.example\""
        );
        assert_eq!(added[GATEWAY_MARK], "forwarded");
    }

    #[test]
    fn a_hook_setting_a_forwarding_field_replaces_the_gateways() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("shop.example"));
        let mut lines = HeaderLines::new();
        write_forwarding(&mut headers, Some(([10, 0, 0, 1], 80).into()), &mut lines);
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        let_hook_override(&headers, &mut lines);
        let lines = std::str::from_utf8(lines.as_bytes()).unwrap();
        assert!(!lines.contains("x-forwarded-proto"), "{lines}");
        assert!(
            lines.contains("x-forwarded-host: shop.example\r\n"),
            "{lines}"
        );
        assert!(lines.contains("x-forwarded-for: 10.0.0.1\r\n"), "{lines}");
    }

    #[test]
    fn without_a_peer_address_earlier_hops_still_go_on() {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        let mut lines = HeaderLines::new();
        write_forwarding(&mut headers, None, &mut lines);
        let lines = std::str::from_utf8(lines.as_bytes()).unwrap();
        assert!(
            lines.contains("x-forwarded-for: 203.0.113.9\r\n"),
            "{lines}"
        );
        assert!(lines.contains("forwarded: proto=http\r\n"), "{lines}");
        assert!(headers.is_empty());
    }

    #[test]
    fn what_a_client_claims_of_the_forwarding_fields_is_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        headers.insert(X_FORWARDED_HOST, HeaderValue::from_static("bank.example"));
        headers.append(GATEWAY_MARK, HeaderValue::from_static("mine"));
        headers.append(GATEWAY_MARK, HeaderValue::from_static("also mine"));
        let (kept, added) = forwarding(headers, "10.0.0.1:80");
        assert!(kept.is_empty(), "{kept:?}");
        assert_eq!(added[X_FORWARDED_PROTO], "http");
        assert!(!added.contains_key(X_FORWARDED_HOST));
        assert_eq!(added[GATEWAY_MARK], "forwarded");
        assert_eq!(added[FORWARDED], "for=\"10.0.0.1:80\";proto=http");
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
            assert_eq!(IpText::of(ip.parse().unwrap()).as_bytes(), ip.as_bytes());
        }
    }

    #[test]
    fn ipv6_addresses_are_written_as_display_writes_them() {
        for ip in [
            "::1",
            "fe80::1:2",
            "::ffff:255.255.255.255",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(IpText::of(ip.parse().unwrap()).as_bytes(), ip.as_bytes());
        }
    }

    #[test]
    fn forwarded_values_are_quoted_and_escaped() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static(r#"a", for=1.2.3.4;\x"#));
        let (_, added) = forwarding(headers, "[::1]:1234");
        assert_eq!(
            added[FORWARDED],
            r#"for="[::1]:1234";proto=http;host="a\", for=1.2.3.4;\\x""#
        );
    }
}
