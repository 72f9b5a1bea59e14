//! The registry URL: a cluster's endpoints, the credentials and the TLS files in one string,
//! for a command line or an environment variable.
//!
//! ```text
//! etcd[s]://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...][/][?cacert=PATH&cert=PATH&key=PATH&password_file=PATH]
//! ```
//!
//! `etcds` speaks TLS to every member; the query names files as etcdctl's flags of the same
//! names do. User, password and query values are percent-decoded (`%40` for `@`, `%3A` for
//! `:`...). The password never appears in an error.
//!
//! A password in a command line shows in the process list, so `USER@` without one takes it
//! from the file `password_file` names (read here, one trailing newline dropped), or else
//! from the environment variable `MICROKIT_REGISTRY_PASSWORD`.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use super::endpoints::host_port;
use crate::discovery::DiscoveryError;

/// The environment variable that holds the password of a registry URL that names a user
/// and neither a password nor a `password_file`.
pub(super) const PASSWORD_VARIABLE: &str = "MICROKIT_REGISTRY_PASSWORD";

/// What a registry URL says (`Debug` shows `***` for the password).
#[derive(PartialEq)]
pub(super) struct EtcdUrl {
    /// `http://host:port`, or `https://host:port` for `etcds`.
    pub(super) endpoints: Vec<String>,
    pub(super) credentials: Option<(String, String)>,
    /// Present for `etcds`, and only for it.
    pub(super) tls: Option<TlsFiles>,
}

impl std::fmt::Debug for EtcdUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdUrl")
            .field("endpoints", &self.endpoints)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(user, _)| (user, "***")),
            )
            .field("tls", &self.tls)
            .finish()
    }
}

/// The TLS files an `etcds` URL names (etcdctl's `--cacert`, `--cert` and `--key`).
#[derive(Debug, Default, PartialEq)]
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(super) struct TlsFiles {
    /// The CA that signed the members' certificates; without it, the operating system's.
    pub(super) cacert: Option<PathBuf>,
    /// The client certificate and its key, for etcd's `--client-cert-auth`.
    pub(super) client: Option<(PathBuf, PathBuf)>,
}

impl EtcdUrl {
    /// Parses `url`, taking a password it leaves out from [`PASSWORD_VARIABLE`].
    pub(super) fn parse(url: &str) -> Result<Self, DiscoveryError> {
        Self::parse_with(url, || std::env::var(PASSWORD_VARIABLE).ok())
    }

    /// Parses `url`; `variable` gives the password variable's value, if it is set.
    fn parse_with(
        url: &str,
        variable: impl FnOnce() -> Option<String>,
    ) -> Result<Self, DiscoveryError> {
        let url = url.trim();
        let shown = redacted(url);
        let invalid = |why: String| DiscoveryError::Config(format!("etcd URL `{shown}`: {why}"));
        let (secure, rest) = if let Some(rest) = url.strip_prefix("etcd://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("etcds://") {
            (true, rest)
        } else {
            return Err(invalid("expected etcd:// or etcds://".into()));
        };
        #[cfg(not(feature = "tls"))]
        if secure {
            return Err(invalid("etcds:// needs microkit's feature `tls`".into()));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (userinfo, hosts) = match rest.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, rest),
        };
        let query = Query::parse(query).map_err(invalid)?;
        let credentials = match userinfo {
            Some(userinfo) => Some(
                credentials(userinfo, query.password_file.as_deref(), variable).map_err(invalid)?,
            ),
            None if query.password_file.is_some() => {
                return Err(invalid("`password_file` needs a user: USER@".into()))
            }
            None => None,
        };
        let files = query.tls;
        let tls = match (secure, files) {
            (true, files) => Some(files),
            (false, files) if files == TlsFiles::default() => None,
            (false, _) => {
                return Err(invalid(
                    "cacert, cert and key are TLS settings: use etcds://".into(),
                ))
            }
        };
        let scheme = if secure { "https" } else { "http" };
        let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
        let endpoints = hosts
            .split(',')
            .map(str::trim)
            .filter(|hp| !hp.is_empty())
            .map(|hp| host_port(hp, &shown).map(|authority| format!("{scheme}://{authority}")))
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(invalid("names no host".into()));
        }
        Ok(Self {
            endpoints,
            credentials,
            tls,
        })
    }
}

/// `USER:PASSWORD`, percent-decoded; or `USER` with the password from `password_file`, or
/// else from the variable.
fn credentials(
    userinfo: &str,
    password_file: Option<&std::path::Path>,
    variable: impl FnOnce() -> Option<String>,
) -> Result<(String, String), String> {
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let user = decode(user, "the user")?;
    if user.is_empty() {
        return Err("the user is empty".into());
    }
    let password = match (password, password_file) {
        (Some(_), Some(_)) => {
            return Err("the password is given twice: in the URL and in `password_file`".into())
        }
        (Some(password), None) => decode(password, "the password")?,
        (None, Some(file)) => password_from_file(file)?,
        (None, None) => variable()
            .filter(|password| !password.is_empty())
            .ok_or(format!(
                "a user needs a password: USER:PASSWORD@, `password_file=PATH` or the \
             environment variable {PASSWORD_VARIABLE}"
            ))?,
    };
    Ok((user, password))
}

/// The file's content without one trailing newline (as `echo` and editors leave one).
fn password_from_file(file: &std::path::Path) -> Result<String, String> {
    let shown = file.display();
    let text = std::fs::read_to_string(file)
        .map_err(|err| format!("`password_file` {shown} cannot be read: {err}"))?;
    let password = text
        .strip_suffix('\n')
        .map(|text| text.strip_suffix('\r').unwrap_or(text))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(format!("`password_file` {shown} is empty"));
    }
    Ok(password.to_owned())
}

/// What the query says: the TLS files and where the password is.
struct Query {
    tls: TlsFiles,
    password_file: Option<PathBuf>,
}

impl Query {
    fn parse(query: &str) -> Result<Self, String> {
        let (mut cacert, mut cert, mut key, mut password_file) = (None, None, None, None);
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "cacert" => &mut cacert,
                "cert" => &mut cert,
                "key" => &mut key,
                "password_file" => &mut password_file,
                // Named only when it looks like a name: a password that was not percent-encoded
                // may have spilled into the query.
                _ if name.len() <= 32
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    return Err(format!(
                        "unknown parameter `{name}` (known: cacert, cert, key, password_file)"
                    ))
                }
                _ => return Err(
                    "an unknown parameter (known: cacert, cert, key, password_file; percent-encode \
                     `?` and `#` in a password)"
                        .into(),
                ),
            };
            let value = decode(value, name)?;
            if value.is_empty() {
                return Err(format!("`{name}` needs a file"));
            }
            if slot.replace(PathBuf::from(value)).is_some() {
                return Err(format!("`{name}` is given twice"));
            }
        }
        let client = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("`cert` and `key` go together".into()),
        };
        Ok(Self {
            tls: TlsFiles { cacert, client },
            password_file,
        })
    }
}

fn decode(text: &str, what: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| format!("{what} is not UTF-8 once percent-decoded"))
}

/// `url` with its password, if any, replaced by `***`: what errors and logs show. Everything
/// up to the last `@` counts as the user information, so that a password whose `@`, `?` or
/// `#` was not percent-encoded is hidden too (a query path with an `@` is hidden with it).
pub(super) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rfind('@') {
        Some(at) => {
            let (userinfo, after) = (&rest[..at], &rest[at..]);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***{after}"),
                // A user whose password is in a file: nothing secret to hide.
                None if after.contains("password_file=") => url.to_owned(),
                // A user alone, or a password typed without its user: shown as neither.
                None => format!("{scheme}://***{after}"),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses with the password variable unset.
    fn parse(url: &str) -> Result<EtcdUrl, String> {
        EtcdUrl::parse_with(url, || None).map_err(|err| err.to_string())
    }

    #[test]
    fn a_user_alone_takes_the_password_from_a_file_or_else_the_variable() {
        let dir = std::env::temp_dir().join(format!("microkit-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("etcd password");
        std::fs::write(&file, "p@ss word\n").unwrap();
        let query = format!("password_file={}", file.display()).replace(' ', "%20");
        let with_file = |url: &str| {
            EtcdUrl::parse_with(url, || Some("from the variable".into()))
                .map(|url| url.credentials.unwrap().1)
                .map_err(|err| err.to_string())
        };
        assert_eq!(
            with_file(&format!("etcd://shop@a?{query}")).unwrap(),
            "p@ss word"
        );
        assert_eq!(with_file("etcd://shop@a").unwrap(), "from the variable");
        assert_eq!(with_file("etcd://shop:url@a").unwrap(), "url");
        std::fs::write(&file, "crlf\r\n\n").unwrap();
        let kept = with_file(&format!("etcd://shop@a?{query}")).unwrap();
        assert_eq!(kept, "crlf\r\n", "only one trailing newline goes");

        let error = parse("etcd://shop@a").unwrap_err();
        assert!(
            error.contains("password_file") && error.contains(PASSWORD_VARIABLE),
            "{error}"
        );
        let empty = EtcdUrl::parse_with("etcd://shop@a", || Some(String::new()));
        assert!(empty.is_err(), "an empty variable is no password");
        let twice = parse(&format!("etcd://shop:pw@a?{query}")).unwrap_err();
        assert!(twice.contains("twice") && !twice.contains("pw@"), "{twice}");
        assert!(parse(&format!("etcd://a?{query}"))
            .unwrap_err()
            .contains("needs a user"));
        let missing = parse("etcd://shop@a?password_file=/nonexistent/pw").unwrap_err();
        assert!(missing.contains("/nonexistent/pw"), "{missing}");
        std::fs::write(&file, "\n").unwrap();
        let blank = parse(&format!("etcd://shop@a?{query}")).unwrap_err();
        assert!(blank.contains("is empty"), "{blank}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plain_urls_list_endpoints() {
        let url = parse("etcd://10.0.0.1:2379,10.0.0.2:2380/").unwrap();
        assert_eq!(
            url.endpoints,
            ["http://10.0.0.1:2379", "http://10.0.0.2:2380"]
        );
        assert_eq!((url.credentials, url.tls), (None, None));
        assert_eq!(
            parse("etcd://etcd").unwrap().endpoints,
            ["http://etcd:2379"]
        );
        for bad in [
            "http://10.0.0.1:2379",
            "etcd://",
            "etcd://a:1,b:",
            "etcd://a:1?x=1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_are_percent_decoded_and_never_shown() {
        let url = parse("etcd://shop%40eu:p%40ss%3Aw%2Fd%3F%2C@a:1,b:2").unwrap();
        assert_eq!(
            url.credentials,
            Some(("shop@eu".to_owned(), "p@ss:w/d?,".to_owned()))
        );
        assert_eq!(url.endpoints, ["http://a:1", "http://b:2"]);
        let error = parse("etcd://shop:hunter2@a:x").unwrap_err();
        assert!(
            !error.contains("hunter2") && error.contains("shop:***@a:x"),
            "{error}"
        );
        let error = parse("etcd://shop:hunter2@a:1?what=1").unwrap_err();
        assert!(
            !error.contains("hunter2") && error.contains("what"),
            "{error}"
        );
        assert!(
            parse("etcd://shop@a:1").is_err(),
            "a user without a password, a file or the variable"
        );
        assert!(
            parse("etcd://:pw@a:1").is_err(),
            "a password without a user"
        );
        assert!(parse("etcd://u:%ff@a:1").is_err(), "not UTF-8");
    }

    #[test]
    fn tls_files_need_etcds() {
        assert!(parse("etcd://a:1?cacert=ca.pem")
            .unwrap_err()
            .contains("etcds://"));
        assert!(
            parse("etcds://a:1?cert=c.pem").is_err(),
            "a cert without its key"
        );
        assert!(parse("etcds://a:1?cacert=a&cacert=b").is_err());
        assert!(parse("etcds://a:1?cacert=").is_err());
        if cfg!(feature = "tls") {
            let url =
                parse("etcds://u:p@a:1,b?cacert=%2Fetc%2Fca.pem&cert=c.pem&key=c.key").unwrap();
            assert_eq!(url.endpoints, ["https://a:1", "https://b:2379"]);
            let files = url.tls.unwrap();
            assert_eq!(files.cacert, Some(PathBuf::from("/etc/ca.pem")));
            assert_eq!(
                files.client,
                Some((PathBuf::from("c.pem"), PathBuf::from("c.key")))
            );
            assert_eq!(parse("etcds://a").unwrap().tls, Some(TlsFiles::default()));
        } else {
            assert!(parse("etcds://a").unwrap_err().contains("feature `tls`"));
        }
    }

    #[test]
    fn redaction_keeps_everything_but_the_password() {
        assert_eq!(
            redacted("etcds://u:secret@a:1?cacert=x"),
            "etcds://u:***@a:1?cacert=x"
        );
        assert_eq!(redacted("etcd://a:1"), "etcd://a:1");
        // Without `:`, the userinfo may be a password typed without its user: it shows only
        // when a `password_file` says it is a user.
        assert_eq!(redacted("etcd://hunter2@a:1"), "etcd://***@a:1");
        assert_eq!(
            redacted("etcd://hunter2@a:1?cacert=x"),
            "etcd://***@a:1?cacert=x"
        );
        assert_eq!(
            redacted("etcd://u@a:1?password_file=/p"),
            "etcd://u@a:1?password_file=/p"
        );
        let error = parse("etcd://hunter2@a:1").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        assert_eq!(redacted("etcd://a:1?key=k"), "etcd://a:1?key=k");
        // Unencoded, the password still does not show, whatever the parse makes of it.
        let url = "etcds://u:p@ss?w#rd@a:1?cacert=x";
        assert_eq!(redacted(url), "etcds://u:***@a:1?cacert=x");
        let error = parse(url).unwrap_err();
        assert!(
            !error.contains("ss?w") && !error.contains("w#rd"),
            "{error}"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let url = EtcdUrl::parse_with("etcd://u@a:1", || Some("hunter2".into())).unwrap();
        assert_eq!(url.credentials, Some(("u".into(), "hunter2".into())));
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("\"u\""),
            "{shown}"
        );
        assert!(shown.contains("***"), "{shown}");
    }
}
