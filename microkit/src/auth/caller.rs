//! The calling side of service tokens: a [`ServiceClient`](crate::client::ServiceClient)
//! configured with [`ClientConfig::service_tokens`](crate::client::ClientConfig::service_tokens)
//! signs each call as its service, addressed to the service called, so that an internal route
//! behind [`RequireService`](super::RequireService) admits it with nothing added by hand.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};

use super::service::{ServiceTokens, X_MICROKIT_SERVICE};

/// A token is signed again once it is this old; tokens live 60 s and each attempt of a call is
/// stamped as it goes out, so a token on the wire always has at least 30 s left (however long
/// the call's deadline), and signing costs one HMAC per callee every 30 s, not per call.
const RESIGN_AFTER: Duration = Duration::from_secs(30);

/// Who this client calls as, and the tokens it signed lately, by callee.
#[derive(Clone)]
pub(crate) struct CallerTokens {
    caller: Arc<str>,
    tokens: ServiceTokens,
    signed: Arc<RwLock<HashMap<String, (HeaderValue, Instant)>>>,
}

impl std::fmt::Debug for CallerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerTokens")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl CallerTokens {
    pub(crate) fn new(caller: impl Into<Arc<str>>, tokens: ServiceTokens) -> Self {
        Self {
            caller: caller.into(),
            tokens,
            signed: Arc::default(),
        }
    }

    /// Puts a token for a call to `callee` in `headers`, replacing any there: the client
    /// speaks for its own service, never for whoever it got a request from.
    pub(crate) fn stamp(&self, callee: &str, headers: &mut HeaderMap) {
        match self.token_for(callee) {
            Some(token) => {
                headers.insert(X_MICROKIT_SERVICE, token);
            }
            None => {
                headers.remove(X_MICROKIT_SERVICE);
            }
        }
    }

    fn token_for(&self, callee: &str) -> Option<HeaderValue> {
        // Calls share the cache: they only read it, but for one signing per callee each 30 s.
        let fresh = |signed: &HashMap<String, (HeaderValue, Instant)>| {
            signed
                .get(callee)
                .filter(|(_, at)| at.elapsed() < RESIGN_AFTER)
                .map(|(token, _)| token.clone())
        };
        if let Some(token) = fresh(&self.signed.read().unwrap_or_else(PoisonError::into_inner)) {
            return Some(token);
        }
        let mut signed = self.signed.write().unwrap_or_else(PoisonError::into_inner);
        // Another call may have signed it while this one waited for the lock.
        if let Some(token) = fresh(&signed) {
            return Some(token);
        }
        match self.tokens.header_for(&self.caller, callee) {
            Ok((_, token)) => {
                signed.insert(callee.to_owned(), (token.clone(), Instant::now()));
                Some(token)
            }
            Err(err) => {
                // Cannot happen with an HMAC key and names that are header-safe; the call
                // goes out without a token and the callee refuses it, saying so.
                tracing::error!(error = %err, callee, "signing a service token failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_name_the_caller_and_the_callee_and_are_reused_briefly() {
        let tokens = ServiceTokens::new(b"a secret the services share, 32+ bytes");
        let caller = CallerTokens::new("cart", tokens.clone());
        let mut headers = HeaderMap::new();
        headers.insert(X_MICROKIT_SERVICE, HeaderValue::from_static("forged"));
        caller.stamp("emails", &mut headers);
        let first = headers[&X_MICROKIT_SERVICE].clone();
        assert_ne!(first, "forged");
        let shown = format!("{headers:?}");
        assert!(
            !shown.contains(first.to_str().unwrap()),
            "a token never shows in Debug: {shown}"
        );
        let identity = tokens.verify_token(first.to_str().unwrap()).await.unwrap();
        assert_eq!(identity.subject(), "cart");
        assert!(super::super::service::addressed_to(&identity, "emails"));
        assert!(!super::super::service::addressed_to(&identity, "payments"));

        caller.stamp("emails", &mut headers);
        assert_eq!(headers[&X_MICROKIT_SERVICE], first, "reused within 30 s");
        caller.stamp("payments", &mut headers);
        assert_ne!(headers[&X_MICROKIT_SERVICE], first, "one token per callee");
    }
}
