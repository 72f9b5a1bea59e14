//! The PostgreSQL store over TLS, against a server of the test's own (see
//! `support::postgres`) with `ssl = on`, a certificate for `localhost` and `127.0.0.1` made
//! here by a test CA (rcgen), and a `pg_hba.conf` that takes TCP connections only over TLS,
//! with a SCRAM password. Each `sslmode` is checked for what it promises, and a mode that
//! cannot be met fails `connect` with an error that says why.

use microkit_test_support as support;

use std::path::{Path, PathBuf};

use microkit::resource::store::postgres::PostgresStore;
use microkit::resource::store::{Collection, Store, StoreError};
use serde_json::{json, Map, Value};
use support::certs;
use support::postgres::Postgres;

const PASSWORD: &str = "tls-secret";

/// A server that speaks TLS only, the CA that signed its certificate, and another CA.
struct TlsServer {
    pg: Postgres,
    /// The CA that signed the server's certificate (and the clients' it trusts), as PEM.
    ca: PathBuf,
    /// A client certificate for the user `postgres` (its common name) and its key.
    client: (PathBuf, PathBuf),
    /// A CA that signed nothing the server holds.
    other_ca: PathBuf,
    _files: tempfile::TempDir,
}

impl TlsServer {
    /// A server whose TCP clients authenticate by `method` in `pg_hba.conf`
    /// (`scram-sha-256`: a password; `cert`: a client certificate the CA signed).
    async fn start(test: &str, method: &str) -> Option<Self> {
        let files = tempfile::tempdir().unwrap();
        let authority = certs::authority("microkit postgres test CA");
        let ca = certs::write(files.path(), "ca.pem", &authority.pem);
        let other_ca = certs::write(
            files.path(),
            "other-ca.pem",
            &certs::authority("another CA").pem,
        );
        let (cert, key) = certs::leaf(&authority, "localhost", &["localhost", "127.0.0.1"]);
        let client = certs::leaf_files(files.path(), &authority, "postgres", &["postgres"]);
        let ca_pem = authority.pem.clone();
        let pg = Postgres::start_with(test, |data| {
            certs::write(data, "server.crt", &cert);
            certs::write(data, "ca.crt", &ca_pem);
            let key = certs::write(data, "server.key", &key);
            restrict(&key);
            append(
                &data.join("postgresql.conf"),
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
                 ssl_ca_file = 'ca.crt'\n",
            );
            // The Unix socket (trusted) is how the test sets the password; over TCP, TLS or
            // nothing.
            std::fs::write(
                data.join("pg_hba.conf"),
                format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\n"),
            )
            .unwrap();
        })?;
        set_password(&pg).await;
        Some(Self {
            pg,
            ca,
            client,
            other_ca,
            _files: files,
        })
    }

    /// `postgres://postgres:PASSWORD@HOST:PORT/postgres?PARAMS`.
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{params}",
            self.pg.port()
        )
    }
}

fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Sets the superuser's password over the Unix socket, which needs none.
async fn set_password(pg: &Postgres) {
    let (client, connection) = tokio_postgres::Config::new()
        .host_path(pg.dir())
        .port(pg.port())
        .user("postgres")
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("ALTER USER postgres PASSWORD '{PASSWORD}'"))
        .await
        .unwrap();
}

/// A write and a read through `store`.
async fn round_trip(store: &PostgresStore) {
    let notes = Collection::new("notes");
    store.prepare(&notes).await.unwrap();
    let data: Map<String, Value> = json!({"text": "over TLS"}).as_object().unwrap().clone();
    let created = store.create(&notes, None, None, data).await.unwrap();
    let read = store.get(&notes, None, &created.id).await.unwrap();
    assert_eq!(read.data["text"], "over TLS");
    assert_eq!(read, created);
}

/// The error `connect` fails with, as text (its sources included).
async fn connect_error(url: &str) -> String {
    match PostgresStore::connect(url).await {
        Ok(_) => panic!("{url} connected"),
        Err(error) => describe(&error),
    }
}

fn describe(error: &StoreError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn verify_full_with_the_signing_ca_connects_by_name_and_by_address() {
    let Some(server) = TlsServer::start("tls-verify-full", "scram-sha-256").await else {
        return;
    };
    let ca = server.ca.display();
    for host in ["localhost", "127.0.0.1"] {
        // channel_binding=require: the SCRAM exchange is bound to the certificate seen
        // (SCRAM-SHA-256-PLUS), or the connection fails.
        let url = server.url(
            host,
            &format!("sslmode=verify-full&sslrootcert={ca}&channel_binding=require"),
        );
        let store = PostgresStore::connect(&url).await.unwrap();
        round_trip(&store).await;
    }
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_from_another_ca_or_for_another_name() {
    let Some(server) = TlsServer::start("tls-refused", "scram-sha-256").await else {
        return;
    };
    let other = server.other_ca.display();
    let error = connect_error(&server.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ))
    .await;
    assert!(
        error.contains("TLS handshake") && error.contains("UnknownIssuer"),
        "{error}"
    );
    // `require` with a root certificate checks the chain too (libpq's rule).
    let error =
        connect_error(&server.url("127.0.0.1", &format!("sslmode=require&sslrootcert={other}")))
            .await;
    assert!(error.contains("UnknownIssuer"), "{error}");

    // The right CA, but a host name the certificate does not hold: verify-full refuses,
    // verify-ca (chain only) accepts.
    let ca = server.ca.display();
    let port = server.pg.port();
    let by_name = |mode: &str| {
        format!(
            "host=db.example hostaddr=127.0.0.1 port={port} user=postgres password={PASSWORD} \
             dbname=postgres sslmode={mode} sslrootcert='{ca}'"
        )
    };
    let error = connect_error(&by_name("verify-full")).await;
    assert!(
        error.contains("TLS handshake") && error.contains("not valid for name \"db.example\""),
        "{error}"
    );
    let store = PostgresStore::connect(&by_name("verify-ca")).await.unwrap();
    round_trip(&store).await;
}

#[tokio::test]
async fn require_and_prefer_encrypt_without_a_root_certificate_and_disable_is_refused() {
    let Some(server) = TlsServer::start("tls-require", "scram-sha-256").await else {
        return;
    };
    // The server takes TCP connections over TLS only, so each success here was encrypted.
    for params in [
        "sslmode=require&channel_binding=require",
        "sslmode=prefer",
        "",
    ] {
        let store = PostgresStore::connect(&server.url("127.0.0.1", params))
            .await
            .unwrap_or_else(|error| panic!("{params}: {}", describe(&error)));
        round_trip(&store).await;
    }
    let error = connect_error(&server.url("127.0.0.1", "sslmode=disable")).await;
    assert!(
        error.contains("pg_hba.conf") && error.contains("no encryption"),
        "{error}"
    );
    // Over the Unix socket PostgreSQL never speaks TLS, and a TLS mode does not ask (libpq).
    let socket = format!(
        "host='{}' port={} user=postgres dbname=postgres sslmode=require",
        server.pg.dir().display(),
        server.pg.port()
    );
    round_trip(&PostgresStore::connect(&socket).await.unwrap()).await;
}

#[tokio::test]
async fn a_server_without_tls_fails_require_and_serves_prefer_in_plain_text() {
    let Some(plain) = Postgres::start("tls-none") else {
        return;
    };
    let url = |mode: &str| format!("{}?sslmode={mode}", plain.url());
    for mode in ["require", "verify-ca", "verify-full"] {
        let ca = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca.path(), certs::authority("unused").pem).unwrap();
        let url = format!("{}&sslrootcert={}", url(mode), ca.path().display());
        let error = connect_error(&url).await;
        assert!(
            error.contains("server does not support TLS"),
            "{mode}: {error}"
        );
    }
    round_trip(&PostgresStore::connect(&url("prefer")).await.unwrap()).await;
    round_trip(&PostgresStore::connect(&url("disable")).await.unwrap()).await;
}

#[tokio::test]
async fn settings_that_cannot_be_met_are_refused_before_connecting() {
    // Nothing listens here: each error is the setting's, not the connection's.
    for (url, says) in [
        (
            "postgres://127.0.0.1:1/db?sslmode=verify-full",
            "needs sslrootcert",
        ),
        ("postgres://127.0.0.1:1/db?sslmode=strict", "is not one of"),
        ("postgres://127.0.0.1:1/db?sslmode=allow", "not supported"),
        (
            "postgres://127.0.0.1:1/db?sslmode=require&sslrootcert=/nonexistent.pem",
            "/nonexistent.pem",
        ),
    ] {
        let error = connect_error(url).await;
        assert!(error.contains(says), "{url}: {error}");
    }
}

#[tokio::test]
async fn a_client_certificate_from_sslcert_and_sslkey_authenticates() {
    let Some(server) = TlsServer::start("tls-client-cert", "cert").await else {
        return;
    };
    let ca = server.ca.display();
    let (cert, key) = (server.client.0.display(), server.client.1.display());
    // No password: the certificate (its common name, `postgres`) is the credential.
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}\
         &sslcert={cert}&sslkey={key}",
        server.pg.port()
    );
    round_trip(&PostgresStore::connect(&url).await.unwrap()).await;

    let without = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
        server.pg.port()
    );
    let error = connect_error(&without).await;
    assert!(
        error.contains("requires a valid client certificate"),
        "{error}"
    );
    let error = connect_error(&format!("{without}&sslcert={cert}")).await;
    assert!(error.contains("sslcert and sslkey go together"), "{error}");
}
