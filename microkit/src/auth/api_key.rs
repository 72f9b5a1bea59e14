//! API keys, the second scheme: long random secrets held only as SHA-256 digests.
//!
//! Why SHA-256 and not a slow password hash: an API key is a random secret of 128 bits or
//! more, not a password a person chose, so it cannot be guessed from its digest; a slow hash
//! would only add milliseconds to every request. (GitHub and Stripe store their tokens so.)
//! What matters is that the keys themselves are never stored, and that comparing digests takes
//! the same time whichever byte differs.

use std::path::Path;
use std::sync::Arc;

use serde_json::Map;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::identity::{Identity, Scheme};
use crate::BoxError;

/// The API keys a service accepts, each with the subject and scopes it stands for.
///
/// ```
/// use microkit::auth::ApiKeys;
///
/// // Store only the digest: `ApiKeys::hash` prints what goes into configuration.
/// let digest = ApiKeys::hash("mk_3f9a2c7e1b5d4a6f8e0c2b4d6f8a0c2e");
/// let keys = ApiKeys::new().key(&digest, "nightly-report", ["stats:read"]);
/// assert_eq!(keys.len(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    entries: Arc<Vec<Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    digest: [u8; 32],
    subject: Arc<str>,
    scopes: Vec<String>,
}

impl ApiKeys {
    /// No keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The digest to store for `key`: SHA-256, as 64 lowercase hex digits.
    pub fn hash(key: &str) -> String {
        Sha256::digest(key.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Accepts the key whose digest ([`ApiKeys::hash`]) is `digest`, as `subject` with
    /// `scopes`.
    ///
    /// # Panics
    /// When `digest` is not 64 hex digits: a configuration mistake to catch at start-up.
    pub fn key(
        self,
        digest: &str,
        subject: impl Into<Arc<str>>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.try_key(digest, subject, scopes)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    fn try_key(
        mut self,
        digest: &str,
        subject: impl Into<Arc<str>>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, BoxError> {
        let digest = parse_digest(digest)?;
        Arc::make_mut(&mut self.entries).push(Entry {
            digest,
            subject: subject.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        });
        Ok(self)
    }

    /// Reads keys from a file, one per line: `DIGEST SUBJECT [SCOPE,SCOPE...]`; blank lines
    /// and lines starting with `#` are skipped.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BoxError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("reading the API keys in {}: {err}", path.display()))?;
        let mut keys = Self::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_ascii_whitespace();
            let (Some(digest), Some(subject)) = (fields.next(), fields.next()) else {
                return Err(format!(
                    "{}:{}: expected `DIGEST SUBJECT [SCOPES]`",
                    path.display(),
                    number + 1
                )
                .into());
            };
            let scopes = fields
                .next()
                .map(|scopes| {
                    scopes
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            keys = keys
                .try_key(digest, subject, scopes)
                .map_err(|err| format!("{}:{}: {err}", path.display(), number + 1))?;
        }
        Ok(keys)
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is accepted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identity `presented` stands for. Every stored digest is compared, each in constant
    /// time, so the time taken says nothing about which key came close.
    pub(crate) fn verify(&self, presented: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for entry in self.entries.iter() {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        found.map(|entry| {
            Identity::new(
                Scheme::ApiKey,
                entry.subject.clone(),
                entry.scopes.iter().cloned(),
                Map::new(),
            )
        })
    }
}

fn parse_digest(hex: &str) -> Result<[u8; 32], BoxError> {
    let malformed = || format!("an API key digest must be 64 hex digits, not `{hex}`");
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(malformed().into());
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| malformed())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| malformed())?;
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_itself_verifies() {
        let keys = ApiKeys::new().key(&ApiKeys::hash("secret-key-1"), "job", ["a", "b"]);
        let identity = keys.verify("secret-key-1").unwrap();
        assert_eq!(identity.subject(), "job");
        assert_eq!(identity.scopes(), ["a", "b"]);
        assert_eq!(identity.scheme(), Scheme::ApiKey);
        assert!(keys.verify("secret-key-2").is_none());
        assert!(keys.verify(&ApiKeys::hash("secret-key-1")).is_none());
    }

    #[test]
    fn files_hold_digests_subjects_and_scopes() {
        let dir = std::env::temp_dir().join(format!("microkit-apikeys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        let line = format!(
            "# comment\n\n{} report stats:read,stats:write\n",
            ApiKeys::hash("k1")
        );
        std::fs::write(&path, line).unwrap();
        let keys = ApiKeys::from_file(&path).unwrap();
        assert!(keys.verify("k1").unwrap().has_scope("stats:write"));
        std::fs::write(&path, "nothex report\n").unwrap();
        assert!(ApiKeys::from_file(&path)
            .unwrap_err()
            .to_string()
            .contains(":1:"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    #[should_panic(expected = "64 hex digits")]
    fn a_malformed_digest_is_a_start_up_error() {
        let _ = ApiKeys::new().key("abc", "x", ["y"]);
    }
}
