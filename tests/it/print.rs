//! `--print` and `--list` on every `fixtures/bake/<case>` (cases without a buildx golden
//! file), snapshotted.

use crate::support;

#[test]
fn print_cases() {
    insta::glob!("../../fixtures", "bake/*/cmd", |cmd| {
        let case = cmd.parent().unwrap();
        let (output, _) = support::run_fixture(cmd);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {stderr}", case.display());
        insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
    });
}

#[test]
fn stdin_file_is_read_and_sniffed() {
    let scratch = tempfile::tempdir().unwrap();
    let hcl = "target \"default\" {\n  tags = [\"from-stdin\"]\n}\n";
    let args = vec!["-f".to_owned(), "-".to_owned(), "--print".to_owned()];
    let output = support::bake(scratch.path(), &args, &[], Some(hcl));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("from-stdin"));
    let json = r#"{"target": {"default": {"tags": ["json-stdin"]}}}"#;
    let output = support::bake(scratch.path(), &args, &[], Some(json));
    assert!(String::from_utf8_lossy(&output.stdout).contains("json-stdin"));
}
