//! Runs the router conformance data (`tests/data/router-conformance.json`,
//! verified against matchit 0.9.2) against `microkit::router::matcher`.
//!
//! Every case inserts its routes (or its full `inserts` sequence), then
//! checks rejected insertions, merges, lookups and removals. All failing
//! checks are listed at the end rather than stopping at the first one.

use microkit::router::matcher::{InsertError, Matcher};
use serde_json::Value;
use std::collections::BTreeMap;

/// Collects the outcome of every check of every case.
#[derive(Default)]
struct Report {
    passed: usize,
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, case: &str, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!("[{case}] {}", what()));
        }
    }
}

/// The conformance data's name for an insertion error kind.
fn error_kind(error: &InsertError) -> &'static str {
    match error {
        InsertError::Conflict { .. } => "conflict",
        InsertError::InvalidParam { .. } => "InvalidParam",
        InsertError::InvalidParamSegment { .. } => "InvalidParamSegment",
        InsertError::InvalidCatchAll { .. } => "InvalidCatchAll",
        _ => "unknown",
    }
}

fn str_list(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn objects(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Checks an insertion result against an expectation that is either `"ok"`
/// or `{"error": kind, "with"?: route}`.
fn check_insert(
    report: &mut Report,
    case: &str,
    route: &str,
    expect: &Value,
    result: Result<(), InsertError>,
) {
    match (expect.as_str(), result) {
        (Some("ok"), result) => report.check(case, result.is_ok(), || {
            format!("insert {route:?}: expected ok, got {result:?}")
        }),
        (_, Ok(())) => report.check(case, false, || {
            format!("insert {route:?}: expected {expect}, got ok")
        }),
        (_, Err(error)) => {
            let kind = expect.get("error").and_then(Value::as_str);
            report.check(
                case,
                kind.is_none_or(|kind| kind == error_kind(&error)),
                || format!("insert {route:?}: expected {expect}, got {error:?}"),
            );
        }
    }
}

fn run_case(case: &Value, report: &mut Report) {
    let name = case["name"].as_str().unwrap_or("?");
    let mut matcher = Matcher::<String>::new();

    if let Some(inserts) = case.get("inserts").and_then(Value::as_array) {
        for insert in inserts {
            let route = insert["route"].as_str().unwrap_or_default();
            let result = matcher.insert(route, route.to_owned());
            check_insert(report, name, route, &insert["expect"], result);
        }
    } else {
        for route in str_list(case.get("routes")) {
            let result = matcher.insert(route, route.to_owned());
            check_insert(report, name, route, &Value::from("ok"), result);
        }
        for conflict in objects(case.get("conflicts")) {
            let route = conflict["route"].as_str().unwrap_or_default();
            let mut expect = serde_json::json!({});
            if let Some(kind) = conflict.get("error") {
                expect["error"] = kind.clone();
            }
            let result = matcher.clone().insert(route, route.to_owned());
            check_insert(report, name, route, &expect, result);
        }
    }

    if let Some(merge) = case.get("merge") {
        let mut other = Matcher::new();
        for route in str_list(merge.get("routes")) {
            let result = other.insert(route, route.to_owned());
            check_insert(report, name, route, &Value::from("ok"), result);
        }
        let expected = objects(merge.get("errors"));
        let errors = matcher
            .merge(other)
            .err()
            .map(|e| e.into_errors())
            .unwrap_or_default();
        let kinds: Vec<_> = errors.iter().map(error_kind).collect();
        let expected_kinds: Vec<_> = expected
            .iter()
            .map(|e| e["error"].as_str().unwrap_or_default())
            .collect();
        report.check(name, kinds == expected_kinds, || {
            format!("merge: expected errors {expected_kinds:?}, got {errors:?}")
        });
    }

    for lookup in objects(case.get("lookups")) {
        let path = lookup["path"].as_str().unwrap_or_default();
        let expected_route = lookup["route"].as_str();
        let found = matcher.at(path).ok();
        let route = found.as_ref().map(|m| m.value.as_str());
        report.check(name, route == expected_route, || {
            format!("lookup {path:?}: expected {expected_route:?}, got {route:?}")
        });
        if let (Some(found), Some(expected)) = (&found, lookup["params"].as_object()) {
            let params: BTreeMap<&str, &str> = found.params.iter().collect();
            let expected: BTreeMap<&str, &str> = expected
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
                .collect();
            report.check(name, params == expected, || {
                format!("lookup {path:?}: expected params {expected:?}, got {params:?}")
            });
        }
    }

    for op in objects(case.get("remove_ops")) {
        if let Some(route) = op.get("remove").and_then(Value::as_str) {
            let removed = matcher.remove(route);
            let expected = op["expect_removed"].as_str();
            report.check(name, removed.as_deref() == expected, || {
                format!("remove {route:?}: expected {expected:?}, got {removed:?}")
            });
        } else if let Some(route) = op.get("insert").and_then(Value::as_str) {
            let result = matcher.insert(route, route.to_owned());
            check_insert(report, name, route, &Value::from("ok"), result);
        }
    }
    for path in str_list(case.get("remaining_must_match")) {
        report.check(name, matcher.at(path).is_ok(), || {
            format!("after removals, {path:?} no longer matches")
        });
    }
}

#[test]
fn router_conformance() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/router-conformance.json"
    );
    let text = std::fs::read_to_string(file).expect("read the conformance data");
    let data: Value = serde_json::from_str(&text).expect("parse the conformance data");
    let cases = data["cases"].as_array().expect("`cases` is an array");

    let mut report = Report::default();
    for case in cases {
        run_case(case, &mut report);
    }

    println!(
        "{} cases, {} checks passed, {} failed",
        cases.len(),
        report.passed,
        report.failures.len()
    );
    assert!(
        report.failures.is_empty(),
        "{} failing checks:\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
}
