//! `sslmode`, `sslrootcert`, `sslcert` and `sslkey` in a connection string, with libpq's
//! meanings.
//!
//! `tokio-postgres` knows `disable`, `prefer` and `require` and no certificate files, so
//! these settings are taken out of the string here (in either form: a `postgres://` URL's
//! query, or `key=value` pairs) and the rest is left for `tokio-postgres` to parse.

use std::borrow::Cow;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;

/// How much TLS a connection needs, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, plain text when it does not (libpq's default).
    Prefer,
    /// TLS or no connection; the certificate is checked only against a given root
    /// certificate (then as `VerifyCa`).
    Require,
    /// TLS, with a certificate that chains to the root certificate.
    VerifyCa,
    /// TLS, with a certificate that chains to the root certificate and names the host.
    VerifyFull,
}

/// The TLS settings of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SslSettings {
    /// `sslmode` (`prefer` when absent, as in libpq).
    pub(super) mode: SslMode,
    /// `sslrootcert`: a PEM file of the certificate authorities to trust.
    pub(super) root_cert: Option<PathBuf>,
    /// `sslcert`: the client's certificate chain (PEM), for servers that ask for one.
    pub(super) client_cert: Option<PathBuf>,
    /// `sslkey`: the client certificate's private key (PEM).
    pub(super) client_key: Option<PathBuf>,
}

/// Splits the TLS settings off `url`: what is left is for `tokio-postgres` to parse.
pub(super) fn split_ssl_settings(url: &str) -> Result<(String, SslSettings), String> {
    let mut mode = None;
    let mut root_cert = None;
    let mut client_cert = None;
    let mut client_key = None;
    let mut take = |key: &str, value: Cow<'_, str>| -> Result<bool, String> {
        match key {
            "sslmode" => mode = Some(parse_mode(&value)?),
            "sslrootcert" => root_cert = Some(parse_root_cert(&value)?),
            "sslcert" => client_cert = Some(parse_file(key, &value)?),
            "sslkey" => client_key = Some(parse_file(key, &value)?),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url, &mut take)?
    } else {
        split_pairs(url, &mut take)?
    };
    let settings = SslSettings {
        mode: mode.unwrap_or(SslMode::Prefer),
        root_cert,
        client_cert,
        client_key,
    };
    Ok((rest, settings))
}

fn parse_mode(value: &str) -> Result<SslMode, String> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        "allow" => {
            return Err(
                "sslmode=allow (plain text first, TLS only if refused) is not supported: \
                 use prefer or disable"
                    .to_owned(),
            )
        }
        other => {
            return Err(format!(
                "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ))
        }
    })
}

fn parse_root_cert(value: &str) -> Result<PathBuf, String> {
    match value {
        "system" => Err(
            "sslrootcert=system (the operating system's roots) is not supported: name the CA \
             certificate's PEM file"
                .to_owned(),
        ),
        path => parse_file("sslrootcert", path),
    }
}

fn parse_file(key: &str, value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err(format!("{key} is empty: name a PEM file"));
    }
    Ok(PathBuf::from(value))
}

/// The URL form: the query's parameters are `&`-separated, percent-encoded `key=value`s. The
/// query starts at the first `?` after the credentials, as `tokio-postgres` reads it.
fn split_url(
    url: &str,
    take: &mut impl FnMut(&str, Cow<'_, str>) -> Result<bool, String>,
) -> Result<String, String> {
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(question) = url[after_credentials..].find('?') else {
        return Ok(url.to_owned());
    };
    let (head, query) = url.split_at(after_credentials + question);
    let mut kept = Vec::new();
    for param in query[1..].split('&') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let key = decode(key)?;
        if !take(&key, decode(value)?)? {
            kept.push(param);
        }
    }
    Ok(if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    })
}

fn decode(text: &str) -> Result<Cow<'_, str>, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| format!("{text:?} in the connection URL is not UTF-8 once decoded"))
}

/// The `key=value` form: whitespace-separated, a value either bare or in single quotes, with
/// `\` escaping the next character in both. The pairs kept are written back quoted.
fn split_pairs(
    text: &str,
    take: &mut impl FnMut(&str, Cow<'_, str>) -> Result<bool, String>,
) -> Result<String, String> {
    let mut kept = String::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "{key:?} in the connection string has no `=` and value"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '\'' if quoted => {
                    closed = true;
                    break;
                }
                c if c.is_whitespace() && !quoted => break,
                c => value.push(c),
            }
        }
        if quoted && !closed {
            return Err(format!("the value of {key:?} has no closing quote"));
        }
        if !take(&key, Cow::Borrowed(&value))? {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push_str(&format!("{key}='{escaped}' "));
        }
    }
    Ok(kept.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, SslMode, Option<PathBuf>) {
        let (rest, settings) = split_ssl_settings(url).unwrap();
        assert_eq!(settings.client_cert, None);
        (rest, settings.mode, settings.root_cert)
    }

    #[test]
    fn a_url_without_settings_prefers_tls_and_is_unchanged() {
        let url = "postgres://u:p@db:5432/app?application_name=x";
        assert_eq!(split(url), (url.to_owned(), SslMode::Prefer, None));
        assert_eq!(split("postgresql://db/app").0, "postgresql://db/app");
    }

    #[test]
    fn url_settings_are_taken_out_and_decoded() {
        let (rest, mode, root) = split(
            "postgres://u:p%3F@db/app?sslmode=verify-full&connect_timeout=3&sslrootcert=%2Fetc%2Fca%20x.pem",
        );
        assert_eq!(rest, "postgres://u:p%3F@db/app?connect_timeout=3");
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(root, Some(PathBuf::from("/etc/ca x.pem")));
        let (rest, mode, _) = split("postgres://db/app?sslmode=disable");
        assert_eq!(
            (rest.as_str(), mode),
            ("postgres://db/app", SslMode::Disable)
        );
        // A `?` in the password (percent-encoded or not) is not the query.
        let (rest, mode, _) = split("postgres://u:a?b@db/app?sslmode=require");
        assert_eq!(
            (rest.as_str(), mode),
            ("postgres://u:a?b@db/app", SslMode::Require)
        );
    }

    #[test]
    fn pair_settings_are_taken_out_and_the_rest_kept_quoted() {
        let (rest, mode, root) = split(
            "host=db  sslmode = verify-ca password='it\\'s a secret' sslrootcert='/c a.pem' user=u",
        );
        assert_eq!(rest, "host='db' password='it\\'s a secret' user='u'");
        assert_eq!(mode, SslMode::VerifyCa);
        assert_eq!(root, Some(PathBuf::from("/c a.pem")));
        let parsed: tokio_postgres::Config = rest.parse().unwrap();
        let (_, settings) = split_ssl_settings("host=db sslcert=c.pem sslkey='k.pem'").unwrap();
        assert_eq!(settings.client_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(settings.client_key, Some(PathBuf::from("k.pem")));
        assert_eq!(parsed.get_password(), Some(&b"it's a secret"[..]));
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        for (url, says) in [
            ("postgres://db/app?sslmode=verify", "is not one of"),
            ("postgres://db/app?sslmode=allow", "not supported"),
            ("host=db sslrootcert=system", "not supported"),
            ("host=db sslrootcert=''", "empty"),
            ("host=db sslkey=''", "sslkey is empty"),
            ("host=db sslmode", "no `=`"),
            ("host='db", "no closing quote"),
        ] {
            let error = split_ssl_settings(url).unwrap_err();
            assert!(error.contains(says), "{url}: {error}");
        }
    }
}
