use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One running copy of a service, as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Unique among all instances (a UUID unless set).
    pub id: String,
    /// The service's name, such as `catalog`.
    pub service: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// How it is spoken to: plain HTTP unless registered as `https`.
    #[serde(default, skip_serializing_if = "Scheme::is_http")]
    pub scheme: Scheme,
    /// For `https`, the name its certificate must carry (a DNS SAN); the service's name when
    /// unset. Callers refuse an instance whose certificate names someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_name: Option<String>,
    /// The version it runs.
    #[serde(default)]
    pub version: String,
    /// The zone it runs in, for zone-aware callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Its share of traffic relative to its peers (1 unless set).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

fn default_weight() -> u32 {
    1
}

/// How an instance is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scheme {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTP over TLS: callers verify the instance's certificate (see
    /// [`Instance::tls_name`]).
    Https,
}

impl Scheme {
    /// Whether this is plain HTTP.
    pub fn is_http(&self) -> bool {
        *self == Self::Http
    }
}

impl Instance {
    /// An instance of `service` at `addr`, with a fresh id, weight 1 and no tags.
    pub fn new(service: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            service: service.into(),
            addr,
            scheme: Scheme::Http,
            tls_name: None,
            version: String::new(),
            zone: None,
            tags: Vec::new(),
            weight: 1,
            metadata: BTreeMap::new(),
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Registers the instance as speaking HTTPS, its certificate naming `tls_name` (or the
    /// service's name when `None`).
    pub fn with_https(mut self, tls_name: Option<String>) -> Self {
        self.scheme = Scheme::Https;
        self.tls_name = tls_name;
        self
    }

    /// The name an `https` instance's certificate must carry: [`tls_name`](Self::tls_name),
    /// or the service's name.
    pub fn certificate_name(&self) -> &str {
        self.tls_name.as_deref().unwrap_or(&self.service)
    }

    /// Sets the version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets the zone.
    pub fn with_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets the weight (at least 1).
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight.max(1);
        self
    }

    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}
