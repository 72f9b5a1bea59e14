//! The one error body of microkit (RFC 9457), as the document describes it.

use http::StatusCode;
use serde_json::{json, Value};

/// The media type of every problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The schema of a problem: the standard members, `errors` for failing fields, and any
/// extension member.
pub fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem: every error microkit answers with.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string", "description": "A URI naming the kind of problem (`about:blank` by default)." },
            "title": { "type": "string", "description": "The status's reason phrase, or a short summary." },
            "status": { "type": "integer", "minimum": 100, "maximum": 599 },
            "detail": { "type": "string", "description": "What went wrong with this request." },
            "instance": { "type": "string" },
            "errors": {
                "type": "array",
                "description": "The failing fields, each with a message.",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {
                        "field": { "type": "string" },
                        "message": { "type": "string" },
                    },
                },
            },
        },
        "additionalProperties": true,
    })
}

/// A response holding a problem with `status` (0: any status).
pub(crate) fn problem_response(status: u16) -> Value {
    let description = match StatusCode::from_u16(status) {
        Ok(status) => format!(
            "{}: a problem",
            status.canonical_reason().unwrap_or("an error")
        ),
        Err(_) => "a problem".to_owned(),
    };
    json!({
        "description": description,
        "content": {
            PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } },
        },
    })
}
