//! What the benchmarks that run the release binary share: the root and runc check, the
//! repository, the busybox base and a scratch directory for the run. Included with
//! `#[path = "common/mod.rs"] mod common;` (not a bench target of its own).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Runs divan's main when the machine can build (root and `runc` on `PATH`), else says why
/// `what` skipped.
pub(crate) fn main_if_builds(what: &str) {
    let root = rustix::process::geteuid().is_root();
    let runc = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("runc").is_file()));
    if !(root && runc) {
        eprintln!("skipping {what} benchmarks: they need root and runc (Debian package `runc`)");
        return;
    }
    divan::main();
}

/// The repository.
pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `oci-layout://<abs>/fixtures/base/busybox@sha256:...`, the `BASE` every project takes.
pub(crate) fn base() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let layout = repo().join("fixtures/base/busybox");
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap())
                .unwrap();
        let digest = index["manifests"][0]["digest"].as_str().unwrap();
        format!("oci-layout://{}@{digest}", layout.display())
    })
}

/// A scratch directory for the whole run (projects and primed roots).
pub(crate) fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("bake-bench-")
            .tempdir()
            .unwrap()
    })
    .path()
}

/// Runs the release binary in `dir` on state root `root` with `--progress=plain`, the base in
/// `BASE`, plus `args` and the variables `env`; it must succeed.
pub(crate) fn bake(dir: &Path, root: &Path, args: &[String], env: &[(&str, String)]) {
    let output = Command::new(env!("CARGO_BIN_EXE_bake"))
        .arg("--root")
        .arg(root)
        .arg("--progress=plain")
        .args(args)
        .current_dir(dir)
        .env("BASE", base())
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bake failed in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}
