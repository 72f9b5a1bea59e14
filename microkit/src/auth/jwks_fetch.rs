//! Fetching a JWKS document from its URL: one GET on a connection of its own (fetches are
//! rare: at first use, for an unknown key id at most once per refetch interval, and when the
//! copy is ten minutes old), over TLS for `https` URLs (feature `tls`, with the client's
//! [`ClientTls`](crate::client::ClientTls)), bounded in time and in size.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::Empty;

use crate::client::one_shot;
use crate::BoxError;

/// The longest a JWKS document may be (1 MiB); real ones are a few KiB.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// How long a fetch may take, from connecting to the last byte of the document.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a JWKS document is served, and how to reach it.
#[derive(Debug)]
pub(super) struct JwksUrl {
    uri: Uri,
    /// Set for `https` URLs, and only for them.
    #[cfg(feature = "tls")]
    tls: Option<crate::client::ClientTls>,
}

impl JwksUrl {
    /// An `http` URL, or an `https` one checked against the operating system's certificate
    /// authorities (feature `tls`).
    pub(super) fn new(url: &str) -> Result<Self, BoxError> {
        let uri = parse(url)?;
        if uri.scheme_str() == Some("http") {
            return Self::plain(uri);
        }
        #[cfg(feature = "tls")]
        {
            let tls = crate::client::ClientTls::platform_roots()
                .map_err(|err| format!("the JWKS URL `{url}`: {err}"))?;
            Self::secure(uri, tls)
        }
        #[cfg(not(feature = "tls"))]
        Err(format!("the JWKS URL `{url}` is https: that needs microkit's feature `tls`").into())
    }

    /// An `https` URL whose server's certificate must chain to `tls`'s certificate
    /// authorities (and which is shown `tls`'s client certificate, if any).
    #[cfg(feature = "tls")]
    pub(super) fn with_tls(url: &str, tls: crate::client::ClientTls) -> Result<Self, BoxError> {
        let uri = parse(url)?;
        if uri.scheme_str() != Some("https") {
            return Err(format!(
                "the JWKS URL `{url}` is given TLS settings but is not https: the keys would \
                 travel unprotected"
            )
            .into());
        }
        Self::secure(uri, tls)
    }

    #[cfg(feature = "tls")]
    fn secure(uri: Uri, tls: crate::client::ClientTls) -> Result<Self, BoxError> {
        let mut url = Self::plain(uri)?;
        url.tls = Some(tls);
        Ok(url)
    }

    /// The URL without TLS (the `https` constructors add it).
    fn plain(uri: Uri) -> Result<Self, BoxError> {
        one_shot::address(&uri).map_err(|err| format!("the JWKS URL: {err}"))?;
        Ok(Self {
            uri,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// The document: the body of a 2xx answer to a GET (redirects are not followed).
    pub(super) async fn get(&self) -> Result<Vec<u8>, BoxError> {
        let request = Request::get(self.uri.clone())
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .body(Empty::<Bytes>::new())?;
        #[cfg(feature = "tls")]
        let tls = self.tls.as_ref();
        #[cfg(not(feature = "tls"))]
        let tls = None;
        let response = one_shot::exchange(tls, request, MAX_DOCUMENT_BYTES, FETCH_TIMEOUT)
            .await
            .map_err(|err| format!("fetching the JWKS document: {err}"))?;
        if !response.status().is_success() {
            return Err(format!("the JWKS URL answered {}", response.status()).into());
        }
        Ok(response.into_body().to_vec())
    }
}

fn parse(url: &str) -> Result<Uri, BoxError> {
    let uri: Uri = url
        .parse()
        .map_err(|err| format!("the JWKS URL `{url}`: {err}"))?;
    if uri.scheme_str() != Some("http") && uri.scheme_str() != Some("https") {
        return Err(format!("the JWKS URL `{url}` must be http:// or https://").into());
    }
    // Credentials in the URL would travel in the `Host` header and show wherever the URL is
    // printed; identity providers serve their keys to anyone.
    if uri
        .authority()
        .is_some_and(|authority| authority.as_str().contains('@'))
    {
        return Err("a JWKS URL cannot carry a user or password".into());
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_up_front() {
        assert!(JwksUrl::new("ftp://idp.example/jwks").is_err());
        assert!(JwksUrl::new("/jwks.json").is_err());
        let refused = JwksUrl::new("https://user:secret@idp.example/jwks").unwrap_err();
        assert!(!refused.to_string().contains("secret"), "{refused}");
        let url = JwksUrl::new("http://127.0.0.1/keys?v=1").unwrap();
        assert_eq!(one_shot::address(&url.uri).unwrap(), ("127.0.0.1", 80));
        let url = JwksUrl::new("http://[::1]:8080/keys").unwrap();
        assert_eq!(one_shot::address(&url.uri).unwrap(), ("::1", 8080));
    }
}
