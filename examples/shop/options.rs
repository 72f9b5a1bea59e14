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
}

impl Options {
    pub(crate) const USAGE: &'static str = "\
usage: shop [--listen ADDR] [--data-dir DIR] [--database-url postgres://...] [--replicas N]
            [--only users|emails|catalog|cart|payments|stats|gateway]
            [--registry memory|etcd://HOST:PORT] [--email-rate N]";

    pub(crate) fn parse(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("shop-data"),
            database_url: None,
            replicas: 1,
            only: None,
            registry: "memory".to_owned(),
            email_rate: 5,
        };
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
                    if value != "memory" && !value.starts_with("etcd://") {
                        return Err(format!(
                            "--registry: `{value}` is neither `memory` nor etcd://HOST:PORT"
                        ));
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
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(options)
    }
}
