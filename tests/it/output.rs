//! What a `RUN` step prints reaches the user whole: a last line without a newline is shown in
//! the progress output and in the failure message.

use std::path::Path;

use crate::support;
pub(crate) use crate::support::busybox_base as base;
pub(crate) use crate::support::can_build as can_run;

/// Writes a project in `dir` whose default target builds `dockerfile` on the busybox base.
pub(crate) fn project(dir: &Path, dockerfile: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n}\n",
    )
    .unwrap();
}

fn build(dir: &Path, root: &Path, progress: &str) -> (std::process::Output, String) {
    let args = vec![
        "--root".to_owned(),
        root.display().to_string(),
        format!("--progress={progress}"),
    ];
    let output = support::bake(dir, &args, &[("BASE".to_owned(), base())], None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

#[test]
fn a_last_line_without_a_newline_is_shown_in_plain_progress() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    project(&dir, "FROM base\nRUN printf 'a\\nlast-without-newline'\n");
    let (output, stderr) = build(&dir, &scratch.path().join("state"), "plain");
    assert!(output.status.success(), "{stderr}");
    let logged: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .collect();
    assert!(logged.contains(&"a"), "{stderr}");
    assert!(logged.contains(&"last-without-newline"), "{stderr}");
}

/// The failure message carries the exit code and the output tail, the last line without a
/// newline included, in the progress and (also with `--progress=quiet`) in the final error.
#[test]
fn a_failure_names_the_exit_code_and_the_tail_with_its_last_partial_line() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    project(
        &dir,
        "FROM base\nRUN sh -c 'echo out; printf tail-no-newline; exit 3'\n",
    );
    let (output, stderr) = build(&dir, &scratch.path().join("state"), "plain");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let error = stderr
        .split_once(" ERROR: ")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    assert!(error.contains("exit code 3"), "{stderr}");
    assert!(error.contains("out\ntail-no-newline"), "{stderr}");

    let (output, stderr) = build(&dir, &scratch.path().join("state"), "quiet");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RUN sh -c"), "{stderr}");
    assert!(stderr.contains("exit code 3"), "{stderr}");
    assert!(stderr.contains("tail-no-newline"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
