//! Property test: random non-conflicting routes (static segments, plain,
//! prefixed and suffixed parameters, catch-alls) are all found again, with
//! the right parameters, from paths built by substituting parameter values.

use microkit::router::matcher::Matcher;
use proptest::prelude::*;

/// One segment of a generated route.
#[derive(Clone, Debug)]
enum Segment {
    Static(String),
    Param,
    Prefixed(String),
    Suffixed(String),
    Surrounded(String, String),
}

/// A generated route: a unique first segment keeps routes from conflicting
/// and makes the expected match unambiguous; a "static twin" (a parameter
/// replaced by a static word) adds static-versus-parameter overlap.
#[derive(Clone, Debug)]
struct RouteSpec {
    segments: Vec<Segment>,
    catch_all: bool,
    twin_word: String,
}

fn segment() -> impl Strategy<Value = Segment> {
    // Static words and affixes use letters only; parameter values use digits
    // only, so a value never spells a static word of a sibling route.
    prop_oneof![
        "[a-z]{1,6}".prop_map(Segment::Static),
        Just(Segment::Param),
        "[a-z]{1,3}_".prop_map(Segment::Prefixed),
        "\\.[a-z]{1,3}".prop_map(Segment::Suffixed),
        ("[a-z]{1,3}-", "-[a-z]{1,3}").prop_map(|(p, s)| Segment::Surrounded(p, s)),
    ]
}

fn route_spec() -> impl Strategy<Value = RouteSpec> {
    (
        prop::collection::vec(segment(), 0..5),
        any::<bool>(),
        "[a-z]{1,6}",
    )
        .prop_map(|(segments, catch_all, twin_word)| RouteSpec {
            segments,
            catch_all,
            twin_word,
        })
}

/// The route template, the matching path and the expected parameters.
fn build(index: usize, spec: &RouteSpec, twin: bool) -> (String, String, Vec<(String, String)>) {
    let mut route = format!("/r{index}");
    let mut path = route.clone();
    let mut params = Vec::new();
    let mut twinned = false;
    for (i, segment) in spec.segments.iter().enumerate() {
        let name = format!("p{i}");
        let value = format!("{index}{i}");
        let (template, concrete) = match segment {
            Segment::Static(word) => (word.clone(), word.clone()),
            Segment::Param if twin && !twinned => {
                twinned = true;
                (spec.twin_word.clone(), spec.twin_word.clone())
            }
            Segment::Param => (format!("{{{name}}}"), value.clone()),
            Segment::Prefixed(prefix) => {
                (format!("{prefix}{{{name}}}"), format!("{prefix}{value}"))
            }
            Segment::Suffixed(suffix) => {
                (format!("{{{name}}}{suffix}"), format!("{value}{suffix}"))
            }
            Segment::Surrounded(prefix, suffix) => (
                format!("{prefix}{{{name}}}{suffix}"),
                format!("{prefix}{value}{suffix}"),
            ),
        };
        if template.contains('{') {
            params.push((name, value));
        }
        route.push('/');
        route.push_str(&template);
        path.push('/');
        path.push_str(&concrete);
    }
    if spec.catch_all {
        let value = format!("{index}/x/{index}");
        route.push_str("/{*rest}");
        path.push('/');
        path.push_str(&value);
        params.push(("rest".to_owned(), value));
    }
    (route, path, params)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_route_is_found_with_its_params(specs in prop::collection::vec(route_spec(), 1..12)) {
        let mut matcher = Matcher::new();
        let mut expectations = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let (route, path, params) = build(index, spec, false);
            prop_assert!(matcher.insert(route.clone(), route.clone()).is_ok(), "insert {route}");
            expectations.push((route, path, params));

            let has_plain_param = spec.segments.iter().any(|s| matches!(s, Segment::Param));
            if has_plain_param {
                let (twin, path, params) = build(index, spec, true);
                // A twin may legitimately conflict (e.g. it equals a static
                // sibling); only the twins that were accepted are checked.
                if matcher.insert(twin.clone(), twin.clone()).is_ok() {
                    expectations.push((twin, path, params));
                }
            }
        }

        prop_assert_eq!(matcher.len(), expectations.len());
        for (route, path, params) in &expectations {
            let found = matcher.at(path);
            prop_assert!(found.is_ok(), "{path} should match {route}");
            let found = found.unwrap();
            prop_assert_eq!(found.value, route, "path {}", path);
            let captured: Vec<(String, String)> = found
                .params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            prop_assert_eq!(&captured, params, "path {}", path);
        }
    }
}
