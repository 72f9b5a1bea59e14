//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) database_url: Option<String>,
    pub(crate) replicas: usize,
    pub(crate) only: Option<String>,
    pub(crate) registry: String,
    pub(crate) email_rate: u32,
    /// Verify tokens with the keys of this JWKS file (see `access.rs`).
    pub(crate) auth_jwks: Option<PathBuf>,
    /// Verify HS256 tokens with this secret.
    pub(crate) auth_secret: Option<String>,
    /// The secret the gateway signs relayed callers with; shared by every process of a shop
    /// run as several (`--only`), random in a single process.
    pub(crate) relay_secret: Option<String>,
    /// Serve the gateway over HTTPS with this certificate chain and key (PEM).
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
}

impl Options {
    pub(crate) const USAGE: &'static str = "\
usage: shop [--listen ADDR] [--data-dir DIR] [--database-url postgres://...] [--replicas N]
            [--only users|emails|catalog|cart|payments|stats|gateway]
            [--registry memory|etcd://HOST:PORT] [--email-rate N]
            [--auth-jwks FILE | --auth-secret SECRET] [--relay-secret SECRET]
            [--tls-cert FILE --tls-key FILE]

--registry etcd[s]://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...][?cacert=F&cert=F&key=F&password_file=F]
    etcd://  plain HTTP to the etcd members; etcds:// TLS, the members' certificates
             checked against cacert (PEM; the system's CAs without it)
    cert, key  a client certificate for etcd's --client-cert-auth (PEM, together)
    USER:PASSWORD@  etcd's auth; percent-encode @ : / ? # , % in them (%40 %3A ...)
    USER@  the password kept out of the process list: read from password_file (one
           trailing newline dropped), or else from $MICROKIT_REGISTRY_PASSWORD
    example: etcds://catalog:s3cr%40t@10.0.0.1,10.0.0.2?cacert=ca.pem&cert=c.pem&key=c.key";

    pub(crate) fn parse(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("shop-data"),
            database_url: None,
            replicas: 1,
            only: None,
            registry: "memory".to_owned(),
            email_rate: 5,
            auth_jwks: None,
            auth_secret: None,
            relay_secret: None,
            tls: None,
        };
        let (mut tls_cert, mut tls_key) = (None, None);
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err("help".to_owned());
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--listen" => {
                    options.listen = value
                        .parse()
                        .map_err(|_| format!("--listen: `{value}` is not an address"))?;
                }
                "--data-dir" => options.data_dir = PathBuf::from(value),
                "--database-url" => {
                    if !value.starts_with("postgres://") && !value.starts_with("postgresql://") {
                        return Err(format!(
                            "--database-url: `{value}` is not a postgres:// URL"
                        ));
                    }
                    options.database_url = Some(value);
                }
                "--replicas" => {
                    options.replicas = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or("--replicas: expected a number from 1 to 64")?;
                }
                "--only" => {
                    if ![
                        "users", "emails", "catalog", "cart", "payments", "stats", "gateway",
                    ]
                    .contains(&value.as_str())
                    {
                        return Err(format!("--only: `{value}` is not a service of the shop"));
                    }
                    options.only = Some(value);
                }
                "--registry" => {
                    if value != "memory"
                        && !value.starts_with("etcd://")
                        && !value.starts_with("etcds://")
                    {
                        return Err(
                            "--registry: expected `memory`, etcd://HOST:PORT or etcds://..."
                                .to_owned(),
                        );
                    }
                    options.registry = value;
                }
                "--email-rate" => {
                    options.email_rate = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("--email-rate: expected a positive number")?;
                }
                "--auth-jwks" => options.auth_jwks = Some(PathBuf::from(value)),
                "--auth-secret" => {
                    if value.len() < 32 {
                        return Err("--auth-secret: use at least 32 characters".to_owned());
                    }
                    options.auth_secret = Some(value);
                }
                "--relay-secret" => {
                    if value.len() < 32 {
                        return Err("--relay-secret: use at least 32 characters".to_owned());
                    }
                    options.relay_secret = Some(value);
                }
                "--tls-cert" => tls_cert = Some(PathBuf::from(value)),
                "--tls-key" => tls_key = Some(PathBuf::from(value)),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        if options.auth_jwks.is_some() && options.auth_secret.is_some() {
            return Err("give --auth-jwks or --auth-secret, not both".to_owned());
        }
        options.tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".to_owned()),
        };
        Ok(options)
    }
}
