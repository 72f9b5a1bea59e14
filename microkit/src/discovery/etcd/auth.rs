//! etcd's user/password authentication: `/v3/auth/authenticate` trades the password for a
//! token, which every call then carries in its `Authorization` header. Tokens expire (a
//! simple token after `--auth-token-ttl` unused, 5 minutes by default; a JWT at its `exp`):
//! etcd then answers 401 and the client authenticates again.

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The user and password given to the registry, and the token they were last traded for.
pub(super) struct Credentials {
    user: String,
    password: String,
    token: Mutex<Option<Arc<str>>>,
}

impl Credentials {
    pub(super) fn new(user: String, password: String) -> Self {
        Self {
            user,
            password,
            token: Mutex::new(None),
        }
    }

    /// The token in use, if any.
    pub(super) fn token(&self) -> Option<Arc<str>> {
        self.token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps `token` for the calls that follow.
    pub(super) fn keep(&self, token: Arc<str>) {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token);
    }

    /// Drops `rejected` (unless another call already replaced it), so the next call
    /// authenticates again.
    pub(super) fn forget(&self, rejected: &Arc<str>) {
        let mut token = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if token.as_ref() == Some(rejected) {
            *token = None;
        }
    }

    /// The body of `/v3/auth/authenticate`.
    pub(super) fn request(&self) -> AuthenticateRequest<'_> {
        AuthenticateRequest {
            name: &self.user,
            password: &self.password,
        }
    }

    /// The user (never the password) for debug output.
    pub(super) fn user(&self) -> &str {
        &self.user
    }
}

/// `/v3/auth/authenticate`'s request.
#[derive(Serialize)]
pub(super) struct AuthenticateRequest<'a> {
    name: &'a str,
    password: &'a str,
}

/// `/v3/auth/authenticate`'s answer.
#[derive(Deserialize)]
pub(super) struct AuthenticateResponse {
    pub(super) token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_token_is_forgotten_unless_already_replaced() {
        let credentials = Credentials::new("svc".into(), "pw".into());
        let first: Arc<str> = Arc::from("first");
        credentials.keep(first.clone());
        let second: Arc<str> = Arc::from("second");
        credentials.keep(second.clone());
        credentials.forget(&first);
        assert_eq!(credentials.token(), Some(second.clone()));
        credentials.forget(&second);
        assert_eq!(credentials.token(), None);
        let body = serde_json::to_value(credentials.request()).unwrap();
        assert_eq!(body, serde_json::json!({"name": "svc", "password": "pw"}));
    }
}
