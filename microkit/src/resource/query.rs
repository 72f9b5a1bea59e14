//! The list endpoint's query: paging and filters.

use serde_json::Value;

use super::openapi::MAX_PAGING;
use super::spec::ResourceSpec;
use crate::extract::whole_number;
use crate::{FieldError, Problem};

/// A parsed list query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListParams {
    pub(crate) offset: u64,
    pub(crate) limit: u64,
    pub(crate) filters: Vec<(String, Value)>,
    /// The filters as they came, for the `Link` header.
    raw_filters: Vec<(String, String)>,
}

/// Parses `offset`, `limit` and filters; anything else, a negative or non-numeric paging
/// value, or a filter value of the wrong type is a 400 naming the parameter.
pub(crate) fn parse(
    spec: &ResourceSpec,
    schema: &Value,
    query: Option<&str>,
) -> Result<ListParams, Problem> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|err| Problem::bad_request(format!("invalid query string: {err}")))?;
    let mut params = ListParams {
        offset: 0,
        limit: spec.default_limit,
        filters: Vec::new(),
        raw_filters: Vec::new(),
    };
    let mut errors = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "offset" => match paging(&value) {
                Some(offset) => params.offset = offset,
                None => errors.push(FieldError::new("offset", PAGING_RULE)),
            },
            "limit" => match paging(&value) {
                Some(limit) => params.limit = limit.min(spec.max_limit),
                None => errors.push(FieldError::new("limit", PAGING_RULE)),
            },
            field if spec.filterable.contains(&field) => match typed_value(schema, field, &value) {
                Some(typed) => {
                    params.filters.push((key.clone(), typed));
                    params.raw_filters.push((key, value));
                }
                None => errors.push(FieldError::new(field, "has the wrong type for this field")),
            },
            _ => errors.push(FieldError::new(
                key,
                "is not a query parameter of this list (offset, limit or a filterable field)",
            )),
        }
    }
    if errors.is_empty() {
        Ok(params)
    } else {
        Err(Problem::bad_request("the list query is invalid").with_field_errors(errors))
    }
}

const PAGING_RULE: &str = "must be a whole number from 0 to 9223372036854775807";

/// An `offset` or `limit`: digits, up to [`MAX_PAGING`] (the stores count in `i64`), as the
/// document says.
fn paging(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|value| *value <= MAX_PAGING)
}

/// A filter's text as the JSON value its field holds, by the field's schema type; the
/// document gives each filter the same type (`filter_schema` in `openapi.rs`).
fn typed_value(schema: &Value, field: &str, text: &str) -> Option<Value> {
    let types: Vec<&str> = match &schema["properties"][field]["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => vec!["string"],
    };
    if types.contains(&"integer") {
        // `5.0` is the integer 5 to JSON Schema, as in a body; `5.5` and `1e20` are not.
        return match text.parse::<i64>() {
            Ok(signed) => Some(Value::from(signed)),
            Err(_) => text
                .parse::<u64>()
                .ok()
                .map(Value::from)
                .or_else(|| whole_number(text).map(Value::Number)),
        };
    }
    if types.contains(&"number") {
        // Not `inf` or `NaN`, which JSON cannot hold.
        let number = text.parse::<f64>().ok().filter(|n| n.is_finite())?;
        return serde_json::Number::from_f64(number).map(Value::Number);
    }
    if types.contains(&"boolean") {
        return text.parse::<bool>().ok().map(Value::from);
    }
    Some(Value::String(text.to_owned()))
}

impl ListParams {
    /// The `Link` header to the next page, while more items remain.
    pub(crate) fn next_link(&self, list_path: &str, returned: usize, total: u64) -> Option<String> {
        let next = self.offset.checked_add(returned as u64)?;
        if returned == 0 || next >= total {
            return None;
        }
        let mut query = vec![
            ("offset".to_owned(), next.to_string()),
            ("limit".to_owned(), self.limit.to_string()),
        ];
        query.extend(self.raw_filters.iter().cloned());
        let query = serde_urlencoded::to_string(&query).ok()?;
        Some(format!("<{list_path}?{query}>; rel=\"next\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::spec::Actions;
    use crate::resource::store::IdKind;
    use serde_json::json;

    const SPEC: ResourceSpec = ResourceSpec {
        name: "User",
        collection: "user",
        path: "/user",
        list_path: None,
        fields: &["id", "email", "age"],
        id_field: "id",
        id_kind: IdKind::Integer,
        read_only: &[],
        unique: &["email"],
        filterable: &["email", "age"],
        soft_delete: None,
        parent_ids: &[],
        actions: Actions::ALL,
        default_limit: 20,
        max_limit: 100,
    };

    fn schema() -> Value {
        json!({"properties": {"email": {"type": "string"}, "age": {"type": ["integer", "null"]}}})
    }

    #[test]
    fn paging_defaults_and_clamps() {
        let params = parse(&SPEC, &schema(), None).unwrap();
        assert_eq!((params.offset, params.limit), (0, 20));
        let params = parse(&SPEC, &schema(), Some("offset=5&limit=1000")).unwrap();
        assert_eq!((params.offset, params.limit), (5, 100));
    }

    #[test]
    fn bad_paging_unknown_parameters_and_mistyped_filters_are_400() {
        for query in [
            "offset=-1",
            "limit=x",
            "offset=99999999999999999999999",
            "offset=9223372036854775808",
            "limit=+5",
            "colour=red",
            "age=old",
        ] {
            let problem = parse(&SPEC, &schema(), Some(query)).unwrap_err();
            assert_eq!(problem.status(), 400, "{query}");
        }
    }

    #[test]
    fn filters_are_typed_by_the_schema() {
        let params = parse(&SPEC, &schema(), Some("email=a%40b.example&age=30")).unwrap();
        assert_eq!(
            params.filters,
            vec![
                ("email".to_owned(), json!("a@b.example")),
                ("age".to_owned(), json!(30))
            ]
        );
    }

    #[test]
    fn integer_filters_read_whole_numbers_written_as_floats_exactly() {
        for (text, integer) in [
            ("5.0", json!(5)),
            ("5e0", json!(5)),
            ("50e-1", json!(5)),
            ("-3.00", json!(-3)),
            ("-0.0", json!(0)),
            ("-9223372036854775808.0", json!(i64::MIN)),
            ("9223372036854775807.0", json!(i64::MAX)),
            ("18446744073709551615.0", json!(u64::MAX)),
            ("1e19", json!(10_000_000_000_000_000_000u64)),
        ] {
            let params = parse(&SPEC, &schema(), Some(&format!("age={text}"))).unwrap();
            assert_eq!(params.filters, vec![("age".to_owned(), integer)], "{text}");
        }
        for text in [
            "5.5",
            "-9223372036854775809.0",
            "-9223372036854775809",
            "18446744073709551616.0",
            "18446744073709551616",
            "1e20",
            "1e400",
            "1e-400",
            "5.",
            "NaN",
        ] {
            let problem = parse(&SPEC, &schema(), Some(&format!("age={text}"))).unwrap_err();
            assert_eq!(problem.status(), 400, "{text}");
        }
    }

    #[test]
    fn next_link_while_more_remain() {
        let params = parse(&SPEC, &schema(), Some("limit=2&email=a%40b.example")).unwrap();
        assert_eq!(
            params.next_link("/user/", 2, 5).unwrap(),
            "</user/?offset=2&limit=2&email=a%40b.example>; rel=\"next\""
        );
        assert!(params.next_link("/user/", 1, 1).is_none());
    }
}
