//! Runs every `fixtures/conformance/bake` case exactly as `../shared/conformance/README.md`
//! describes: same arguments, same environment, stdout compared with what buildx printed.

use crate::support;

fn normalize(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|_| {
        text.trim()
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[test]
fn every_bake_case_matches_buildx() {
    let root = support::root().join("fixtures/conformance/bake");
    let cases = support::cases(&root, "args");
    assert_eq!(cases.len(), 45, "the bake suite has 45 cases");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_owned();
        let scratch = tempfile::tempdir().unwrap();
        let work = scratch.path().join("case");
        support::copy_tree(
            case,
            &work,
            &["args", "env", "compare", "expected.exit", "expected.stdout"],
        );
        let args = support::shell_words(&std::fs::read_to_string(case.join("args")).unwrap());
        let env = support::read_env(&case.join("env"));
        let output = support::bake(&work, &args, &env, None);
        let want_ok = std::fs::read_to_string(case.join("expected.exit"))
            .unwrap()
            .trim()
            == "0";
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() != want_ok {
            failures.push(format!(
                "{name}: exit {:?}, wanted {}\n{stderr}",
                output.status.code(),
                if want_ok { "0" } else { "nonzero" }
            ));
            continue;
        }
        if !want_ok {
            assert_eq!(
                output.status.code(),
                Some(1),
                "{name}: errors exit with 1\n{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        }
        if let Ok(expected) = std::fs::read_to_string(case.join("expected.stdout")) {
            let got = String::from_utf8_lossy(&output.stdout);
            if normalize(&expected) != normalize(&got) {
                failures.push(format!(
                    "{name}: output differs\n--- want\n{expected}\n--- got\n{got}\n{stderr}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn print_output_is_byte_identical_to_buildx() {
    // Beyond JSON equality: buildx's exact bytes (indentation, key order, final newline).
    let root = support::root().join("fixtures/conformance/bake");
    for name in [
        "basic-default-group",
        "secrets-ssh-attrs",
        "matrix-map-values",
        "outputs-and-cache",
    ] {
        let case = root.join(name);
        let scratch = tempfile::tempdir().unwrap();
        support::copy_tree(
            &case,
            scratch.path(),
            &["args", "env", "compare", "expected.exit", "expected.stdout"],
        );
        let args = support::shell_words(&std::fs::read_to_string(case.join("args")).unwrap());
        let output = support::bake(scratch.path(), &args, &[], None);
        let expected = std::fs::read_to_string(case.join("expected.stdout")).unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected, "{name}");
    }
}
