//! Images between bake and the Docker engine: `--load` from the embedded solver runs under
//! `docker run`, and `type=oci`/`type=docker` archives come out of the engine's BuildKit,
//! which has no exporter for them (bake exports to the engine and converts `docker save`).

use std::process::Command;

use crate::remote_build::{bake, engine, seed_base, stderr};

/// A tag no other test run uses, so parallel runs never remove each other's image.
fn unique_tag(what: &str) -> String {
    format!(
        "bake-it/{what}-{}:latest",
        uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap()
    )
}

/// Removes an image from the engine when dropped, even when the test fails.
struct EngineImage(String);

impl Drop for EngineImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", "--force", &self.0])
            .output();
    }
}

#[test]
fn load_from_the_embedded_solver_runs_under_docker_run() {
    if !engine() || !seed_base() {
        return;
    }
    let tag = unique_tag("loaded");
    let _cleanup = EngineImage(tag.clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\nWORKDIR /srv\nRUN echo \"written by $(id -u) in $(pwd)\" > /file\nCMD [\"cat\", \"/file\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        format!("target \"default\" {{\n  tags = [\"{tag}\"]\n}}\n"),
    )
    .unwrap();
    let state = dir.path().join("state").display().to_string();
    let output = bake(dir.path(), &["--root", &state, "--load"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let run = Command::new("docker")
        .args(["run", "--rm", &tag, "cat", "/file"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "written by 0 in /srv\n"
    );
    // The image's config travelled too: its CMD and WORKDIR.
    let default = Command::new("docker")
        .args(["run", "--rm", &tag])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&default.stdout),
        "written by 0 in /srv\n",
        "{}",
        stderr(&default)
    );
    let pwd = Command::new("docker")
        .args(["run", "--rm", &tag, "pwd"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pwd.stdout), "/srv\n");
}
