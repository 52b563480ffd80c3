//! `--call` methods and `bake debug` on every `fixtures/call/<case>`: the exit code and the
//! stdout are snapshotted together (checks that find problems print and exit 1).

use crate::support;

#[test]
fn call_cases() {
    insta::glob!("../../fixtures", "call/*/cmd", |cmd| {
        let (output, scratch) = support::run_fixture(cmd);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout).replace(&scratch, "[CASE]");
        insta::assert_snapshot!(format!("exit: {:?}\n{stdout}", output.status.code()));
    });
}
