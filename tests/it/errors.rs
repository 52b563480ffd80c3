//! Every `fixtures/bake-errors/<case>` is an invalid input: bake must exit with 1, never
//! panic, print nothing on stdout, and render a diagnostic (snapshotted) on stderr.

use crate::support;

#[test]
fn bad_inputs_render_diagnostics() {
    insta::glob!("../../fixtures", "bake-errors/*/cmd", |cmd| {
        let case = cmd.parent().unwrap();
        let (output, scratch) = support::run_fixture(cmd);
        let stderr = String::from_utf8_lossy(&output.stderr).replace(&scratch, "[CASE]");
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {stderr}",
            case.display()
        );
        assert!(
            output.stdout.is_empty(),
            "{}: nothing on stdout",
            case.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        insta::assert_snapshot!(stderr);
    });
}
