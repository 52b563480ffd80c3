//! Images between bake and the Docker engine: `--load` from the embedded solver runs under
//! `docker run`, and `type=oci`/`type=docker` archives come out of the engine's BuildKit,
//! which has no exporter for them (bake exports to the engine and converts `docker save`).

use std::process::Command;

use crate::remote_build::{bake, engine, project, seed_base, stderr};
use crate::support;

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
    let _serial = crate::remote_build::serial();
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

/// Whether `tool` is installed; in CI it must be.
pub(crate) fn tool(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "`{tool}` is missing, and CI needs it"
        );
        support::skip(&format!("`{tool}` is not installed"));
    }
    found
}

#[test]
fn oci_and_docker_archives_come_from_the_engine_by_way_of_docker_save() {
    if !engine() || !seed_base() || !tool("skopeo") || !tool("umoci") {
        return;
    }
    let _serial = crate::remote_build::serial();
    let dir = project(
        r#""type=oci,dest=app.tar,unpack=true", "type=docker,dest=docker.tar,compression=uncompressed", "type=oci,dest=layout,tar=false""#,
    );
    let hcl = std::fs::read_to_string(dir.path().join("docker-bake.hcl")).unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        hcl.replace("output =", "tags = [\"acme/app:1\"]\n  output ="),
    )
    .unwrap();
    let output = bake(
        dir.path(),
        &["--builder", "docker://", "--progress=plain"],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "WARNING: output attribute `unpack` of target `default` (`type=oci`) is ignored"
        ),
        "{}",
        stderr(&output)
    );

    let inspect = Command::new("skopeo")
        .arg("inspect")
        .arg(format!(
            "oci-archive:{}",
            dir.path().join("app.tar").display()
        ))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let image: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(image["Architecture"], "amd64", "{image}");
    // Two layers of the base, then COPY and RUN.
    assert_eq!(image["Layers"].as_array().unwrap().len(), 4, "{image}");

    // The layout directory unpacks, and the file the RUN step wrote is in it.
    let bundle = dir.path().join("bundle");
    let unpack = Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:1", dir.path().join("layout").display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(unpack.status.success(), "{}", stderr(&unpack));
    assert_eq!(
        std::fs::read_to_string(bundle.join("out.txt")).unwrap(),
        "hello from the context\n"
    );

    let docker = Command::new("skopeo")
        .arg("inspect")
        .arg(format!(
            "docker-archive:{}",
            dir.path().join("docker.tar").display()
        ))
        .output()
        .unwrap();
    assert!(docker.status.success(), "{}", stderr(&docker));
    let tar = Command::new("tar")
        .arg("-xOf")
        .arg(dir.path().join("docker.tar"))
        .arg("manifest.json")
        .output()
        .unwrap();
    let manifest = String::from_utf8_lossy(&tar.stdout);
    assert!(
        manifest.contains("\"RepoTags\":[\"acme/app:1\"]"),
        "{manifest}"
    );
    let config = config_digest(&format!(
        "oci-archive:{}",
        dir.path().join("app.tar").display()
    ));
    assert!(
        !internal_images().contains(&config),
        "the engine keeps no export image: {config}"
    );
}

/// The engine's images bake names internally, with their IDs (config digests).
pub(crate) fn internal_images() -> String {
    let listed = Command::new("docker")
        .args([
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
            "bake-internal/*",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&listed.stdout).into_owned()
}

/// The config digest of the image skopeo finds at `reference`.
pub(crate) fn config_digest(reference: &str) -> String {
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", reference])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn outputs_are_checked_before_the_engine_builds_anything() {
    if !engine() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let dir = project(r#""type=local,dest=out", "type=oci,dest=app.tar,compression=brotli""#);
    let output = bake(
        dir.path(),
        &["--builder", "docker://", "--progress=plain"],
        &[],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("invalid output `type=oci`"), "{text}");
    assert!(text.contains("brotli"), "{text}");
    assert!(
        !text.contains("#1 "),
        "nothing was sent to the engine: {text}"
    );
    assert!(!dir.path().join("out").exists());

    let unknown = project(r#""type=s3,dest=out""#);
    let output = bake(unknown.path(), &["--builder", "docker://"], &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("unknown output type `s3`"), "{text}");
}

#[test]
fn load_on_the_docker_builder_leaves_the_image_in_the_engine() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let tag = unique_tag("remote-loaded");
    let _cleanup = EngineImage(tag.clone());
    let dir = project(r#""type=docker""#);
    let hcl = std::fs::read_to_string(dir.path().join("docker-bake.hcl")).unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        hcl.replace("output =", &format!("tags = [\"{tag}\"]\n  output =")),
    )
    .unwrap();
    let output = bake(dir.path(), &["--builder", "docker://"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "nothing is written to stdout");
    let run = Command::new("docker")
        .args(["run", "--rm", &tag, "cat", "/out.txt"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hello from the context\n"
    );
}

#[test]
fn outputs_inside_the_context_never_reach_a_later_solve_of_the_same_build() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.txt"), "in\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\nCOPY . /ctx/\n", crate::remote_build::BASE),
    )
    .unwrap();
    // No .dockerignore: the outputs land inside the context. The engine solves once per
    // output, and each solve reads the context again.
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        "target \"default\" {\n  output = [\"type=local,dest=out/fs\", \"type=tar,dest=out/fs.tar\"]\n}\n",
    )
    .unwrap();
    let output = bake(dir.path(), &["--builder", "docker://"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let local: Vec<String> = std::fs::read_dir(dir.path().join("out/fs/ctx"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!local.iter().any(|n| n == "out"), "{local:?}");
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(dir.path().join("out/fs.tar"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("ctx/input.txt"), "{listing}");
    assert!(!listing.contains("ctx/out"), "{listing}");
    assert!(!listing.contains(".bake-export-"), "{listing}");
}
