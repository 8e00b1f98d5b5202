//! Compile-time behaviour of the derives: what compiles, and the errors (with
//! their spans) for what does not. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p es-derive --test ui`, then read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
