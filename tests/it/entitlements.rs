//! Entitlements through the `bake` binary: paths outside the working directory need
//! `--allow fs.*`, `RUN --network=host` and `RUN --security=insecure` need their entitlement,
//! and a non-interactive run refuses with the `--allow` to add.

use std::path::Path;
use std::process::Output;

use crate::support;

fn run(dir: &Path, root: &Path, extra: &[&str], env: &[(&str, String)]) -> (Output, String) {
    let mut args = vec![
        "--root".to_owned(),
        root.display().to_string(),
        "--progress=plain".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let output = support::bake(dir, &args, &env, None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// A project in `dir` copying `hello.txt` from `context` into a local output at `dest`.
fn copy_project(dir: &Path, context: &str, dest: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  context = \"{context}\"\n  dockerfile-inline = \"FROM scratch\\nCOPY hello.txt /\\n\"\n  output = [\"type=local,dest={dest}\"]\n}}\n"
        ),
    )
    .unwrap();
}

#[test]
fn an_output_outside_the_working_directory_needs_fs_write() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    let outside = scratch.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let dest = outside.join("out");
    copy_project(&dir, ".", &dest.display().to_string());
    std::fs::write(dir.join("hello.txt"), "hi\n").unwrap();
    let root = scratch.path().join("state");

    let (output, stderr) = run(&dir, &root, &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let flag = format!("--allow=fs.write={}", dest.display());
    assert!(
        stderr.contains(&format!("Pass \"{flag}\" to grant requested privileges.")),
        "{stderr}"
    );
    assert!(
        stderr.contains("additional privileges requested"),
        "{stderr}"
    );
    assert!(!dest.exists(), "nothing is written before the check");

    // A grant on the parent covers the destination inside it.
    let allow = format!("--allow=fs.write={}", outside.display());
    let (output, stderr) = run(&dir, &root, &[&allow], &[]);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dest.join("hello.txt")).unwrap(),
        "hi\n"
    );
}

#[test]
fn a_context_outside_the_working_directory_needs_fs_read() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    let shared = scratch.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello.txt"), "shared\n").unwrap();
    copy_project(&dir, "../shared", "out");
    let root = scratch.path().join("state");
    let resolved = std::fs::canonicalize(&shared).unwrap();

    let (output, stderr) = run(&dir, &root, &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(" - Read access to path {}", resolved.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("--allow=fs.read={}", resolved.display())),
        "{stderr}"
    );
    assert!(!dir.join("out").exists());

    // `fs.write` does not grant reading; `fs` grants both; a relative grant works.
    let (output, _) = run(&dir, &root, &["--allow", "fs.write=../shared"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let (output, stderr) = run(&dir, &root, &["--allow", "network.host,fs=../shared"], &[]);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/hello.txt")).unwrap(),
        "shared\n"
    );

    // BUILDX_BAKE_ENTITLEMENTS_FS=0 turns the refusal into a warning.
    let (output, stderr) = run(
        &dir,
        &root,
        &[],
        &[("BUILDX_BAKE_ENTITLEMENTS_FS", "0".to_owned())],
    );
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(" - Read access to path"), "{stderr}");
}

#[test]
fn an_unknown_allow_key_is_an_error() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    copy_project(&dir, ".", "out");
    std::fs::write(dir.join("hello.txt"), "hi\n").unwrap();
    let (output, stderr) = run(
        &dir,
        &scratch.path().join("state"),
        &["--allow", "network"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown entitlement key `network`"),
        "{stderr}"
    );
}
