//! Every `fixtures/bake-errors/<case>` is an invalid input: bake must exit with 1, never
//! panic, print nothing on stdout, and render a diagnostic (snapshotted) on stderr.

use crate::support;

#[test]
fn bad_inputs_render_diagnostics() {
    insta::glob!("../../fixtures", "bake-errors/*/cmd", |cmd| {
        let case = cmd.parent().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        support::copy_tree(case, scratch.path(), &["cmd", "env"]);
        let args: Vec<String> = std::fs::read_to_string(cmd)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let env = support::read_env(&case.join("env"));
        let output = support::bake(scratch.path(), &args, &env, None);
        let stderr = String::from_utf8_lossy(&output.stderr)
            .replace(scratch.path().to_str().unwrap(), "[CASE]");
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
