//! Runs every `fixtures/conformance/bake` case exactly as `../shared/conformance/README.md`
//! describes: same arguments, same environment, stdout compared with what buildx printed.

use crate::support;

/// Parses output as the conformance runner does: JSON when it parses (reduced to the check
/// findings for `compare = check-warnings` cases), otherwise text with trailing spaces cut.
fn normalize(text: &str, check_warnings: bool) -> Result<serde_json::Value, String> {
    let value: Result<serde_json::Value, String> = serde_json::from_str(text).map_err(|_| {
        text.trim()
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    });
    if !check_warnings {
        return value;
    }
    let keep = ["ruleName", "description", "url", "detail", "location"];
    let doc = value?;
    let mut reduced = serde_json::Map::new();
    for (name, target) in doc["target"].as_object().cloned().unwrap_or_default() {
        let warnings: Vec<serde_json::Value> = target["check"]["warnings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|w| {
                keep.iter()
                    .map(|k| ((*k).to_owned(), w.get(*k).cloned().unwrap_or_default()))
                    .collect()
            })
            .collect();
        reduced.insert(name, serde_json::Value::from(warnings));
    }
    Ok(serde_json::Value::Object(reduced))
}

#[test]
fn every_bake_case_matches_buildx() {
    run_suite("bake", 45);
}

#[test]
fn every_dockerfile_check_case_matches_buildkit() {
    run_suite("dockerfile-check", 14);
}

fn run_suite(suite: &str, count: usize) {
    let root = support::root().join("fixtures/conformance").join(suite);
    let cases = support::cases(&root, "args");
    assert_eq!(cases.len(), count, "the {suite} suite has {count} cases");
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
            let reduced = std::fs::read_to_string(case.join("compare"))
                .is_ok_and(|c| c.trim() == "check-warnings");
            if normalize(&expected, reduced) != normalize(&got, reduced) {
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

/// The `build` suite: real builds compared with what BuildKit exported (local tree, image
/// config, history, layers), through the suite's own comparison script. Needs root, runc and
/// python3; skips and says why otherwise (CI has them).
#[test]
fn every_build_case_matches_buildkit() {
    let ready = rustix::process::geteuid().is_root()
        && support::find_in_path("runc").is_some()
        && support::find_in_path("python3").is_some();
    if !ready {
        crate::support::skip("skipping the build conformance suite: needs root, runc and python3");
        return;
    }
    let root = support::root();
    let layout = root.join("fixtures/base/busybox");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let base = format!(
        "oci-layout://{}@{}",
        layout.display(),
        index["manifests"][0]["digest"].as_str().unwrap()
    );
    let state = tempfile::tempdir().unwrap();
    let command = format!(
        "{} --root {}",
        env!("CARGO_BIN_EXE_bake"),
        state.path().display()
    );
    let output = std::process::Command::new("python3")
        .arg(root.join("fixtures/conformance/buildcmp.py"))
        .args(["check", &command, &base])
        .arg(root.join("fixtures/conformance/build"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("20 passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
