//! The caller's verified client certificate, under mutual TLS.

use std::sync::Arc;

use http::request::Parts;

use crate::extract::FromRequestParts;
use crate::Problem;

/// Who the client is, by the certificate it presented under mutual TLS and the server
/// verified against `TlsConfig::client_ca` (feature `tls`): a service identity.
///
/// As an extractor it refuses (401) a request that came without a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    inner: Arc<Names>,
}

#[derive(Debug, PartialEq, Eq)]
struct Names {
    subject: String,
    common_name: Option<String>,
    alt_names: Vec<String>,
}

impl PeerIdentity {
    /// An identity from the names of a verified certificate.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn new(
        subject: String,
        common_name: Option<String>,
        alt_names: Vec<String>,
    ) -> Self {
        Self {
            inner: Arc::new(Names {
                subject,
                common_name,
                alt_names,
            }),
        }
    }

    /// The certificate's subject, such as `CN=payments, O=shop`.
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// The subject's common name, such as `payments`.
    pub fn common_name(&self) -> Option<&str> {
        self.inner.common_name.as_deref()
    }

    /// The subject alternative names: DNS names, URIs (a SPIFFE id, say), emails and IPs.
    pub fn alt_names(&self) -> &[String] {
        &self.inner.alt_names
    }

    /// Whether the certificate names `name` as its common name or an alternative name.
    pub fn is(&self, name: &str) -> bool {
        self.common_name() == Some(name) || self.alt_names().iter().any(|alt| alt == name)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerIdentity {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<PeerIdentity>()
            .cloned()
            .ok_or_else(|| {
                Problem::new(http::StatusCode::UNAUTHORIZED)
                    .with_detail("the request came without a verified client certificate")
            })
    }
}

/// `None` for a request without a verified client certificate.
impl<S: Send + Sync> crate::extract::OptionalFromRequestParts<S> for PeerIdentity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<PeerIdentity>().cloned())
    }
}
