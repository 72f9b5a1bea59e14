//! [`EtcdRegistry`]: discovery for many processes and machines, through etcd's v3 JSON gateway.
//!
//! | file | what it holds |
//! |---|---|
//! | `client` | HTTP to the gateway: failover between endpoints, streamed answers |
//! | `wire` | the gateway's JSON (base64 keys and values, int64 as strings) |
//! | `ops` | the typed calls: lease grant / keepalive / revoke, put, range, delete |
//! | `keeper` | one registration's lease, kept alive, and re-registration |
//! | `watcher` | one watched service's list, mirrored from a prefix watch |
//! | `endpoints` | endpoint parsing |
//! | `url` | the `etcd://` and `etcds://` registry URLs |
//! | `connector` | connections to members: TCP, or TLS for `https://` endpoints |
//! | `auth` | user/password authentication and its token |

mod auth;
mod client;
mod connector;
mod endpoints;
mod keeper;
mod ops;
mod url;
mod watcher;
mod wire;

use std::time::Duration;

use tokio::sync::oneshot;

use self::client::Client;
use self::keeper::Keeper;
use self::watcher::Watchers;
use self::wire::prefix_end;
use super::{BoxFuture, DiscoveryError, Instance, Registration, Registry, Watch};

/// How long one call to etcd may take, connect included, before the next endpoint is tried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A registry in etcd (3.4 or later), spoken to over its v3 JSON gateway, so no protobuf
/// toolchain is needed.
///
/// Each registered instance is the key `<prefix><service>/<id>`, holding the instance as JSON,
/// attached to a lease of [`ttl`](Self::with_ttl) kept alive every TTL/3: an instance that
/// dies without deregistering disappears within its TTL. If etcd loses the lease (it expired
/// during an outage, or etcd came back without its data), the instance registers again.
///
/// Watches list the service's keys, then follow a prefix watch; when the watch breaks or is
/// compacted they list again. Every TTL they also list the keys afresh (bounded by half a TTL),
/// so a watch gone silent (etcd frozen, a half-open connection) is found within 1.5 TTLs and
/// replaced. While etcd is unreachable they keep serving the last good list.
///
/// etcd may be down when a service starts: [`Microservice`](crate::service::Microservice)
/// keeps serving and registers once etcd answers, and a client's resolver asks again on its
/// next call (a watch that could not list its service is not cached).
///
/// Cloning shares the connections and the watches.
///
/// ```no_run
/// # async fn run() -> Result<(), microkit::discovery::DiscoveryError> {
/// use microkit::discovery::{EtcdRegistry, Instance, Registry};
///
/// let registry = EtcdRegistry::from_url("etcd://10.0.0.1:2379,10.0.0.2:2379")?;
/// let registration = registry
///     .register(Instance::new("catalog", "10.0.0.7:8080".parse().unwrap()))
///     .await?;
/// let users = registry.watch("users").await?;
/// // ... serve ...
/// registration.deregister().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EtcdRegistry {
    client: Client,
    ttl: Duration,
    prefix: String,
    watchers: Watchers,
}

impl EtcdRegistry {
    /// The default lease TTL.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "/microkit/services/";

    /// A registry using the etcd members at `endpoints`: socket addresses, `host:port`,
    /// `http://host:port`, or `https://host:port` (feature `tls`, with
    /// [`with_tls`](Self::with_tls)). Only the endpoints are checked here; connections are
    /// made on first use, so a service may start before etcd does.
    pub fn connect<E: ToString>(endpoints: &[E]) -> Result<Self, DiscoveryError> {
        let endpoints = endpoints
            .iter()
            .map(|endpoint| endpoints::normalize(&endpoint.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(DiscoveryError::Config("no etcd endpoint given".into()));
        }
        Ok(Self::with_endpoints(endpoints))
    }

    /// The environment variable [`from_url`](Self::from_url) reads the password from when
    /// the URL names a user and neither a password nor a `password_file`.
    pub const PASSWORD_VARIABLE: &'static str = url::PASSWORD_VARIABLE;

    /// A registry from a URL that says everything [`connect`](Self::connect),
    /// [`with_tls`](Self::with_tls) and [`with_credentials`](Self::with_credentials) would:
    ///
    /// ```text
    /// etcd[s]://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...][?cacert=PATH&cert=PATH&key=PATH&password_file=PATH]
    /// ```
    ///
    /// - `etcd://` speaks plain HTTP to the members; `etcds://` TLS (feature `tls`), checking
    ///   each member's certificate against its host and the CA in `cacert` (PEM), or the
    ///   operating system's authorities without it.
    /// - `cert` and `key` (PEM files, together) are the client certificate for etcd's
    ///   `--client-cert-auth`; the parameters are named after etcdctl's flags.
    /// - `USER:PASSWORD@` authenticates (etcd's auth); both are percent-decoded, so a
    ///   password holding `@`, `:`, `/`, `?`, `#`, `,` or `%` spells them `%40`, `%3A`, `%2F`,
    ///   `%3F`, `%23`, `%2C`, `%25`. The password never appears in an error or in `Debug`.
    /// - `USER@` alone keeps the password out of the process list: it is read from the file
    ///   `password_file` names (one trailing newline dropped), or else from the environment
    ///   variable [`PASSWORD_VARIABLE`](Self::PASSWORD_VARIABLE) (`MICROKIT_REGISTRY_PASSWORD`).
    /// - The port is 2379 when left out. A file that cannot be read fails here.
    ///
    /// ```no_run
    /// # fn run() -> Result<(), microkit::discovery::DiscoveryError> {
    /// use microkit::discovery::EtcdRegistry;
    ///
    /// let registry = EtcdRegistry::from_url(
    ///     "etcds://catalog:s3cr%40t@10.0.0.1,10.0.0.2?cacert=/etc/etcd/ca.pem\
    ///      &cert=/etc/etcd/catalog.pem&key=/etc/etcd/catalog.key",
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn from_url(url: &str) -> Result<Self, DiscoveryError> {
        let url = url::EtcdUrl::parse(url)?;
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut registry = Self::with_endpoints(url.endpoints);
        #[cfg(feature = "tls")]
        if let Some(files) = url.tls {
            registry = registry.with_tls(tls_from_files(files)?);
        }
        Ok(match url.credentials {
            Some((user, password)) => registry.with_credentials(user, password),
            None => registry,
        })
    }

    fn with_endpoints(endpoints: Vec<String>) -> Self {
        Self {
            client: Client::new(endpoints, REQUEST_TIMEOUT, client::Options::default()),
            ttl: Self::DEFAULT_TTL,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            watchers: Watchers::default(),
        }
    }

    /// Speaks TLS to `https://` endpoints (feature `tls`): the member's certificate must chain
    /// to `tls`'s certificate authorities and name the endpoint's host, and `tls`'s client
    /// certificate, if any, is presented (etcd's `--client-cert-auth`). With auth on, etcd's
    /// JSON gateway refuses a client certificate whose subject has a common name (it would
    /// stand for a user over gRPC and cannot over the gateway): name the client by its SAN
    /// only, and authenticate with [`with_credentials`](Self::with_credentials).
    ///
    /// ```no_run
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use microkit::client::ClientTls;
    /// use microkit::discovery::EtcdRegistry;
    ///
    /// let registry = EtcdRegistry::connect(&["https://10.0.0.1:2379"])?
    ///     .with_tls(ClientTls::trusting("etcd-ca.pem")?.client_cert("svc.pem", "svc.key")?)
    ///     .with_credentials("catalog", std::env::var("ETCD_PASSWORD")?);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, tls: crate::client::ClientTls) -> Self {
        self.client = self.client.reconfigured(|options| options.tls = Some(tls));
        self.watchers = Watchers::default();
        self
    }

    /// Authenticates as `user` with `password` (etcd's auth, enabled with `etcdctl auth
    /// enable`): the password is traded for a token at the first call and whenever etcd
    /// rejects the token (it expired), and the token goes with every call. The user needs
    /// read and write permission on the [`prefix`](Self::prefix). Use it with TLS, or the
    /// password crosses the network in plain text.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        let credentials = Some((user.into(), password.into()));
        self.client = self
            .client
            .reconfigured(|options| options.credentials = credentials);
        self.watchers = Watchers::default();
        self
    }

    /// Sets the lease TTL (whole seconds, rounded up; etcd raises TTLs below its minimum,
    /// about 2 s by default). Registrations made afterwards use it.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Duration::from_secs(ttl_secs(ttl) as u64);
        self
    }

    /// Sets the key prefix (a `/` is appended if missing). Registries that share a cluster
    /// see each other's instances only under the same prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        self.prefix = prefix;
        // Running watches follow the old prefix: this registry must not share them.
        self.watchers = Watchers::default();
        self
    }

    /// The lease TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys of `service`'s instances all start with this.
    fn service_prefix(&self, service: &str) -> Vec<u8> {
        format!("{}{service}/", self.prefix).into_bytes()
    }
}

/// The client TLS an `etcds://` URL's files describe.
#[cfg(feature = "tls")]
fn tls_from_files(files: url::TlsFiles) -> Result<crate::client::ClientTls, DiscoveryError> {
    use crate::client::ClientTls;
    let config = |err: std::io::Error| DiscoveryError::Config(format!("etcd URL: {err}"));
    let tls = match &files.cacert {
        Some(ca) => ClientTls::trusting(ca).map_err(config)?,
        None => ClientTls::platform_roots().map_err(config)?,
    };
    match &files.client {
        Some((cert, key)) => tls.client_cert(cert, key).map_err(config),
        None => Ok(tls),
    }
}

/// `ttl` in whole seconds, rounded up, at least 1.
fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX).max(1)
}

/// Service names and ids are key segments: a `/` in them would let one service's prefix
/// cover another's keys.
fn check_segment(what: &str, value: &str) -> Result<(), DiscoveryError> {
    if value.is_empty() || value.contains('/') {
        return Err(DiscoveryError::Config(format!(
            "{what} `{value}` must be non-empty and contain no `/`"
        )));
    }
    Ok(())
}

impl Registry for EtcdRegistry {
    fn register(&self, instance: Instance) -> BoxFuture<'_, Result<Registration, DiscoveryError>> {
        Box::pin(async move {
            check_segment("service name", &instance.service)?;
            check_segment("instance id", &instance.id)?;
            let mut key = self.service_prefix(&instance.service);
            key.extend_from_slice(instance.id.as_bytes());
            let value = serde_json::to_vec(&instance)
                .map_err(|err| DiscoveryError::Config(format!("unserializable instance: {err}")))?;

            let mut keeper =
                Keeper::new(self.client.clone(), key.clone(), value, ttl_secs(self.ttl));
            keeper.register().await?;
            let (stop, stopped) = oneshot::channel();
            let keeper = tokio::spawn(keeper.run(self.ttl / 3, stopped));

            let client = self.client.clone();
            Ok(Registration::new(instance, move || async move {
                let _ = stop.send(());
                // Stop the keeper first, or it could put the key back.
                match keeper.await.ok().flatten() {
                    // Revoking deletes the key if it is still ours: a newer registration of
                    // the same id (on its own lease) is left alone.
                    Some(lease) => {
                        if let Err(err) = client.revoke(lease).await {
                            tracing::warn!(error = %err, "could not revoke the etcd lease; it expires with its TTL");
                        }
                    }
                    None => {
                        if let Err(err) = client.delete(&key).await {
                            tracing::warn!(error = %err, "could not delete the instance from etcd");
                        }
                    }
                }
            }))
        })
    }

    fn resolve<'a>(
        &'a self,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Instance>, DiscoveryError>> {
        Box::pin(async move {
            let prefix = self.service_prefix(service);
            let (kvs, _) = self.client.range(&prefix, &prefix_end(&prefix)).await?;
            Ok(kvs.iter().filter_map(watcher::decode).collect())
        })
    }

    fn watch<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Watch, DiscoveryError>> {
        Box::pin(watcher::watch(
            &self.client,
            &self.watchers,
            service,
            self.service_prefix(service),
            self.ttl,
        ))
    }
}

impl std::fmt::Debug for EtcdRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdRegistry")
            .field("endpoints", &self.client.endpoints())
            .field("user", &self.client.user())
            .field("ttl", &self.ttl)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_addresses_strings_and_urls() {
        let addr: std::net::SocketAddr = "127.0.0.1:2379".parse().unwrap();
        let registry = EtcdRegistry::connect(&[addr]).unwrap();
        assert_eq!(registry.client.endpoints(), ["http://127.0.0.1:2379"]);
        let registry = EtcdRegistry::connect(&["http://a:1", "b:2"]).unwrap();
        assert_eq!(registry.client.endpoints(), ["http://a:1", "http://b:2"]);
        assert!(EtcdRegistry::connect::<&str>(&[]).is_err());

        let registry = EtcdRegistry::from_url("etcd://a:1,b:2")
            .unwrap()
            .with_ttl(Duration::from_millis(1500))
            .with_prefix("/x");
        assert_eq!(registry.ttl(), Duration::from_secs(2));
        assert_eq!(registry.prefix(), "/x/");
        assert_eq!(registry.service_prefix("catalog"), b"/x/catalog/");
        assert_eq!(registry.ttl, EtcdRegistry::DEFAULT_TTL.min(registry.ttl));
    }

    #[tokio::test]
    async fn rejects_slashes_in_key_segments() {
        let registry = EtcdRegistry::connect(&["127.0.0.1:1"]).unwrap();
        let instance = Instance::new("a/b", ([127, 0, 0, 1], 1).into());
        assert!(matches!(
            registry.register(instance).await,
            Err(DiscoveryError::Config(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_etcd_is_unavailable() {
        // Port 1 on loopback: refused at once.
        let registry = EtcdRegistry::connect(&["127.0.0.1:1"]).unwrap();
        assert!(matches!(
            registry.resolve("catalog").await,
            Err(DiscoveryError::Unavailable(_))
        ));
        assert!(matches!(
            registry.watch("catalog").await,
            Err(DiscoveryError::Unavailable(_))
        ));
    }
}
