//! Lookup speed of `microkit::router::matcher` against matchit 0.9, side by
//! side: all 130 GitHub API paths against the 130 GitHub API routes.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

const ROUTES: &str = include_str!("data/github-api-routes.txt");
const REQUESTS: &str = include_str!("data/github-api-requests.txt");

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
}

fn github_api_lookup(c: &mut Criterion) {
    let routes = lines(ROUTES);
    let paths = lines(REQUESTS);

    let mut microkit = microkit::router::matcher::Matcher::new();
    let mut matchit = matchit::Router::new();
    for route in &routes {
        microkit.insert(*route, true).expect("insert into microkit");
        matchit.insert(*route, true).expect("insert into matchit");
    }
    for path in &paths {
        assert!(microkit.at(path).is_ok(), "microkit does not match {path}");
        assert!(matchit.at(path).is_ok(), "matchit does not match {path}");
    }

    let mut group = c.benchmark_group("github_api_lookup");
    group.bench_function("microkit", |b| {
        b.iter(|| {
            for path in &paths {
                black_box(microkit.at(black_box(path)).ok());
            }
        });
    });
    group.bench_function("matchit", |b| {
        b.iter(|| {
            for path in &paths {
                black_box(matchit.at(black_box(path)).ok());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, github_api_lookup);
criterion_main!(benches);
