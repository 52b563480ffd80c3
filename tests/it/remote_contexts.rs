//! Named contexts on the engine's BuildKit, whose Dockerfile front end predates them: image
//! contexts are written into the Dockerfile, others fail naming the context; `target:` links
//! fail on a `remote` builder, which has no image store bake could name.

use std::path::Path;

use crate::remote_build::{BASE, bake, engine, grpc_forwarder, seed_base, stderr, store};

/// A project whose Dockerfile reads the named context `os` three ways; `contexts` as HCL.
fn project(contexts: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/file"), "from sub\n").unwrap();
    std::fs::write(dir.path().join(".dockerignore"), "out\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM os AS first\nRUN --mount=from=os,target=/m ls /m/bin/busybox > /mounted\nFROM first\nCOPY --from=os /bin/busybox /copied\nRUN echo derived > /derived\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  contexts = {{ {contexts} }}\n  output = [\"type=local,dest=out\"]\n}}\n"
        ),
    )
    .unwrap();
    dir
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join("out").join(file)).unwrap_or_default()
}

#[test]
fn image_context_on_the_engine_is_written_into_the_dockerfile() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let dir = project(&format!("os = \"docker-image://{BASE}\""));
    let output = bake(
        dir.path(),
        &["--builder", "docker://", "--progress=plain"],
        &[],
    );
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert_eq!(read(dir.path(), "derived"), "derived\n");
    assert_eq!(read(dir.path(), "mounted"), "/m/bin/busybox\n");
    assert!(dir.path().join("out/copied").is_file());
    assert!(!text.contains("docker.io/library/os"), "{text}");
}

#[test]
fn local_context_on_the_engine_fails_naming_it() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let dir = project("os = \"./sub\"");
    let output = bake(dir.path(), &["--builder", "docker://"], &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("remote::unsupported"), "{text}");
    assert!(text.contains("the context `os`"), "{text}");
    assert!(text.contains("predates named contexts"), "{text}");
}

#[test]
fn target_link_on_a_remote_builder_fails_naming_it() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let sockets = tempfile::tempdir().unwrap();
    let socket = grpc_forwarder(sockets.path());
    let config = store("remote", &format!("unix://{}", socket.display()), false);
    let config_dir = config.path().display().to_string();
    let dir = project("os = \"target:os\"");
    let hcl = std::fs::read_to_string(dir.path().join("docker-bake.hcl")).unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        format!("{hcl}target \"os\" {{\n  dockerfile-inline = \"FROM {BASE}\"\n}}\n"),
    )
    .unwrap();
    let output = bake(
        dir.path(),
        &["--builder", "eng"],
        &[("BUILDX_CONFIG", &config_dir)],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the `target:os` context `os` is not supported with builder `eng`"),
        "{text}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn oci_layout_context_on_the_engine_is_loaded_under_an_internal_name_and_removed() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let layout = crate::support::root().join("fixtures/base/busybox");
    let dir = project(&format!("os = \"oci-layout://{}\"", layout.display()));
    let output = bake(
        dir.path(),
        &["--builder", "docker://", "--progress=plain"],
        &[],
    );
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert_eq!(read(dir.path(), "derived"), "derived\n");
    assert_eq!(read(dir.path(), "mounted"), "/m/bin/busybox\n");
    // The layout's busybox, byte for byte, reached the build.
    let copied = std::fs::read(dir.path().join("out/copied")).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert!(index["manifests"].as_array().is_some_and(|m| !m.is_empty()));
    assert!(copied.starts_with(b"\x7fELF"), "an executable was copied");
    let left = std::process::Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .unwrap();
    let images = String::from_utf8_lossy(&left.stdout);
    assert!(
        !images.contains("bake-internal/layout"),
        "the internal image is removed: {images}"
    );
}
