//! What a route that honours `Idempotency-Key` adds to its operation.

use http::StatusCode;
use serde_json::{json, Value};

use super::Operation;
use crate::idempotency::IdempotencyConfig;

impl Operation {
    /// Documents the `Idempotency-Key` request header of a route that honours it with
    /// `config` (see [`idempotency`](crate::idempotency)): the keys it accepts, the 400 of any
    /// other, the 409 (with `Retry-After`) while the key's first request still runs, the 422 of
    /// a key used for another request, and `Idempotent-Replayed` on a replayed success.
    ///
    /// ```
    /// use microkit::idempotency::IdempotencyConfig;
    /// use microkit::router::post;
    /// use microkit::Router;
    ///
    /// let app: Router = Router::new().route(
    ///     "/pay",
    ///     post(|| async { "paid" }).describe(|op| {
    ///         op.idempotency_key(&IdempotencyConfig::default());
    ///     }),
    /// );
    /// let document = app.openapi("payments", "1.0.0");
    /// let operation = &document["paths"]["/pay"]["post"];
    /// assert_eq!(operation["parameters"][0]["name"], "Idempotency-Key");
    /// assert!(operation["responses"]["422"].is_object());
    /// ```
    pub fn idempotency_key(&mut self, config: &IdempotencyConfig) -> &mut Self {
        let description = "Makes the request safe to retry: the first request with a key runs \
             and its answer is kept; a retry with the same key and the same request gets that \
             answer again (with `Idempotent-Replayed: true`) instead of running twice. A key \
             used with another request is a 422; while its first request runs, a 409. Send a \
             fresh key (a UUID, say) for each new request.";
        self.idempotency_key_header(config, description)
            .problem(StatusCode::BAD_REQUEST)
            .problem_header(
                StatusCode::CONFLICT,
                "Retry-After",
                "While the key's first request still runs: seconds to wait before retrying.",
                json!({ "type": "string", "pattern": "^[0-9]+$" }),
            )
            .problem(StatusCode::UNPROCESSABLE_ENTITY)
            .response_header(
                "Idempotent-Replayed",
                "`true` on an answer kept for the key and replayed, not produced anew.",
                json!({ "type": "string", "const": "true" }),
            )
    }
}

impl Operation {
    /// Documents the `Idempotency-Key` request header alone, with `description` and the keys
    /// `config` accepts ([`IdempotencyConfig::key_of`]), for a handler that keeps its own
    /// record of what a key did and answers for it in its own words;
    /// [`idempotency_key`](Self::idempotency_key) documents the whole contract of
    /// [`Idempotency`](crate::idempotency::Idempotency).
    pub fn idempotency_key_header(
        &mut self,
        config: &IdempotencyConfig,
        description: &str,
    ) -> &mut Self {
        self.parameter(
            "header",
            "Idempotency-Key",
            false,
            key_schema(config.key_len_limit()),
            Some(description),
        )
    }
}

/// The keys the server accepts, exactly: 1 to `limit` characters of visible ASCII or spaces,
/// or the same within double quotes (a structured-field string, the same key), around the
/// optional white space a header value may carry; an empty quoted string is no key.
fn key_schema(limit: usize) -> Value {
    let unquoted = match limit {
        0 | 1 => "[!-~]".to_owned(),
        _ => format!("[!-~]([ -~]{{0,{}}}[!-~])?", limit - 2),
    };
    json!({
        "type": "string",
        "anyOf": [
            {
                "pattern": format!("^[ \\t]*{unquoted}[ \\t]*$"),
                "not": { "pattern": "^[ \\t]*\"\"[ \\t]*$" },
            },
            { "pattern": format!("^[ \\t]*\"[ -~]{{1,{limit}}}\"[ \\t]*$") },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::{Begin, Idempotency, IDEMPOTENCY_KEY};
    use crate::resource::store::MemoryStore;
    use std::sync::Arc;

    /// Whether `value` matches `schema` (the subset `key_schema` uses).
    fn matches(schema: &Value, value: &str) -> bool {
        let pattern = |schema: &Value| {
            schema["pattern"]
                .as_str()
                .is_none_or(|pattern| regex::Regex::new(pattern).unwrap().is_match(value))
        };
        let branch =
            |schema: &Value| pattern(schema) && schema.get("not").is_none_or(|not| !pattern(not));
        schema["anyOf"].as_array().unwrap().iter().any(branch)
    }

    /// Whether the server takes `value` as a key, by `Idempotency::begin`.
    async fn accepted(config: IdempotencyConfig, value: &str) -> bool {
        let store = Arc::new(MemoryStore::new());
        let idempotency = Idempotency::with_config(store, config);
        let request = http::Request::post("/pay")
            .header(IDEMPOTENCY_KEY, value)
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        match idempotency.begin(&parts, b"{}").await {
            Ok(Begin::Run(claim)) => claim.key().is_some(),
            Ok(Begin::Replay(_)) => unreachable!("a fresh store keeps no answer"),
            Err(problem) => {
                assert_eq!(problem.status(), 400, "{value:?}");
                false
            }
        }
    }

    #[tokio::test]
    async fn the_key_schema_admits_exactly_the_keys_the_server_accepts() {
        for limit in [1, 2, 5, 255] {
            let config = IdempotencyConfig::default().max_key_len(limit);
            let schema = key_schema(limit);
            let long = "k".repeat(limit);
            let longer = "k".repeat(limit + 1);
            let values = [
                "a".to_owned(),
                "ab".to_owned(),
                "a b".to_owned(),
                " a ".to_owned(),
                "\ta".to_owned(),
                "\"".to_owned(),
                "\"\"".to_owned(),
                " \"\" ".to_owned(),
                "\" \"".to_owned(),
                "\"a\"".to_owned(),
                "\"a".to_owned(),
                "a\"".to_owned(),
                "a\tb".to_owned(),
                "caf\u{e9}".to_owned(),
                long.clone(),
                longer.clone(),
                format!("\"{long}\""),
                format!("\"{longer}\""),
                format!("  {long}  "),
                "550e8400-e29b-41d4-a716-446655440000".to_owned(),
            ];
            for value in values {
                // What no header can carry (a non-Latin-1 character) is left out.
                if http::HeaderValue::from_str(&value).is_err() {
                    continue;
                }
                assert_eq!(
                    matches(&schema, &value),
                    accepted(config, &value).await,
                    "limit {limit}: {value:?}"
                );
            }
        }
    }

    #[test]
    fn a_route_documents_the_header_and_its_problems() {
        let mut operation = Operation::new(Vec::new(), crate::openapi::Schemas::default());
        operation
            .response_object(
                crate::openapi::ResponseKey::Status(201),
                json!({ "description": "Created" }),
            )
            .idempotency_key(&IdempotencyConfig::default());
        let (operation, _) = operation.finish();
        assert_eq!(operation["parameters"][0]["in"], "header");
        assert_eq!(operation["parameters"][0]["required"], false);
        for status in ["400", "409", "422"] {
            assert!(operation["responses"][status].is_object(), "{status}");
        }
        assert!(operation["responses"]["409"]["headers"]["Retry-After"].is_object());
        assert!(operation["responses"]["201"]["headers"]["Idempotent-Replayed"].is_object());
    }
}
