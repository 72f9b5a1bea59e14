//! Endpoint spellings: `127.0.0.1:2379`, `http://host:2379`, `https://host:2379` (feature
//! `tls`), all normalized to `http://host:port` (or `https://host:port`); the hosts of
//! registry URLs (`url`) too.

use crate::discovery::DiscoveryError;

/// The port of etcd's client URL, when a URL names none.
const DEFAULT_PORT: u16 = 2379;

/// Normalizes one endpoint to `http://host:port` or `https://host:port`.
pub(super) fn normalize(endpoint: &str) -> Result<String, DiscoveryError> {
    let endpoint = endpoint.trim();
    let (scheme, rest) = match endpoint.split_once("://") {
        None => ("http", endpoint),
        Some(("http", rest)) => ("http", rest),
        #[cfg(feature = "tls")]
        Some(("https", rest)) => ("https", rest),
        #[cfg(not(feature = "tls"))]
        Some(("https", _)) => {
            return Err(DiscoveryError::Config(format!(
                "etcd endpoint `{endpoint}`: https:// needs microkit's feature `tls`"
            )))
        }
        Some((scheme, _)) => {
            return Err(DiscoveryError::Config(format!(
                "etcd endpoint `{endpoint}`: only http:// and https:// are supported, not \
                 {scheme}://"
            )))
        }
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    host_port(authority, endpoint).map(|authority| format!("{scheme}://{authority}"))
}

/// Checks `host[:port]` (IPv6 hosts bracketed), adding etcd's default port when missing.
pub(super) fn host_port(authority: &str, context: &str) -> Result<String, DiscoveryError> {
    let invalid = |why: &str| DiscoveryError::Config(format!("etcd endpoint `{context}`: {why}"));
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid("expected host:port"));
    }
    let parsed: http::uri::Authority = authority
        .parse()
        .map_err(|_| invalid("expected host:port"))?;
    if parsed.host().is_empty() {
        return Err(invalid("no host"));
    }
    // A port after the host (an IPv6 host is bracketed, so its colons do not count).
    let port = authority
        .rsplit_once(':')
        .filter(|(host, _)| !host.contains(':') || host.ends_with(']'))
        .map(|(_, port)| port);
    match port {
        Some(port) if port.parse::<u16>().is_ok() => Ok(authority.to_owned()),
        Some(_) => Err(invalid("invalid port")),
        None => Ok(format!("{authority}:{DEFAULT_PORT}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_endpoints() {
        assert_eq!(
            normalize("127.0.0.1:2379").unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(normalize("http://etcd:1/").unwrap(), "http://etcd:1");
        assert_eq!(normalize("[::1]:5").unwrap(), "http://[::1]:5");
        assert_eq!(normalize("etcd").unwrap(), "http://etcd:2379");
        assert_eq!(
            normalize("https://etcd:1").is_ok(),
            cfg!(feature = "tls"),
            "https needs the feature"
        );
        assert!(normalize("grpc://etcd:1").is_err());
        assert!(normalize("http://etcd:1/v3").is_err());
        assert!(normalize("").is_err());
        assert!(normalize("etcd:x").is_err());
    }
}
