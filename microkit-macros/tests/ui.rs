//! Compile-time behaviour of `#[derive(Resource)]`: what compiles, and the errors of what
//! does not (`tests/ui/fail/*.stderr`; regenerate with `TRYBUILD=overwrite`, then read them).
//! The toolchain is pinned in `rust-toolchain.toml` because compiler output is compared.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
