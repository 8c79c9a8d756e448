//! Compile tests of `#[derive(SessionData)]`: what it accepts (`ui/pass`)
//! and how it explains what it refuses (`ui/fail`, with `.stderr`
//! snapshots made on this toolchain: `TRYBUILD=overwrite` to refresh).

#[test]
fn derive_session_data() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
