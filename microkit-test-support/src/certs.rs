//! Certificates made in the test with rcgen: a certificate authority, leaf certificates it
//! signs, and PEM files in a directory for the APIs that read files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A certificate authority made for one test.
pub struct Authority {
    /// What signs its leaves.
    pub issuer: Issuer<'static, KeyPair>,
    /// Its certificate, as PEM: what clients and servers trust.
    pub pem: String,
}

/// A new self-signed CA whose common name is `name`.
pub fn authority(name: &str) -> Authority {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    Authority {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// A leaf certificate and its key, as PEM.
pub fn leaf(ca: &Authority, common_name: &str, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes `text` to `name` in `dir` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A leaf made by `ca` written to `<stem>.pem` and `<stem>.key` in `dir`; returns both paths.
pub fn leaf_files(dir: &Path, ca: &Authority, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = leaf(ca, names.first().copied().unwrap_or(stem), names);
    (
        write(dir, &format!("{stem}.pem"), &cert),
        write(dir, &format!("{stem}.key"), &key),
    )
}
