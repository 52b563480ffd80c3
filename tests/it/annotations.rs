//! A target's `annotations` reach the images it exports (index, manifests, descriptors,
//! per platform), and its `attest` entries are judged by the builder that would attach them.

use std::path::Path;

use crate::remote_build::{bake, engine, seed_base, serial, stderr};
use crate::support;
use crate::support::registry::raw_image;

fn blob(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

fn project(annotations: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "annotated\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY a.txt /\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n  annotations = [{annotations}]\n  output = [\"type=oci,dest=image,tar=false\"]\n}}\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn target_annotations_reach_the_index_the_manifests_and_their_descriptors() {
    if !support::can_build() {
        return;
    }
    let dir = project(
        r#""org.opencontainers.image.title=app", "index,manifest-descriptor:org.opencontainers.image.version=1.2", "manifest[linux/arm64]:arch.only=arm""#,
    );
    let state = dir.path().join("state").display().to_string();
    let output = bake(dir.path(), &["--root", &state], &[]);
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        !text.contains("annotations"),
        "no warning names them: {text}"
    );
    let layout = dir.path().join("image");
    // skopeo reads the layout's index; the index annotations are on it.
    let index = raw_image(&format!("oci:{}", layout.display()));
    assert_eq!(
        index["annotations"]["org.opencontainers.image.version"], "1.2",
        "{index}"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index}");
    for descriptor in manifests {
        let arch = descriptor["platform"]["architecture"].as_str().unwrap();
        assert_eq!(
            descriptor["annotations"]["org.opencontainers.image.version"], "1.2",
            "{index}"
        );
        let manifest = blob(&layout, descriptor["digest"].as_str().unwrap());
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.title"], "app",
            "{manifest}"
        );
        let arm_only = &manifest["annotations"]["arch.only"];
        if arch == "arm64" {
            assert_eq!(arm_only, "arm", "{manifest}");
        } else {
            assert!(arm_only.is_null(), "{manifest}");
        }
        assert!(manifest["annotations"]["org.opencontainers.image.version"].is_null());
    }
}

#[test]
fn a_malformed_annotation_fails_naming_it_before_building() {
    let dir = project(r#""config:k=v""#);
    let state = dir.path().join("state").display().to_string();
    let output = bake(dir.path(), &["--root", &state], &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("invalid annotation type `config`"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(!dir.path().join("image").exists());
}

/// A project for the engine whose Dockerfile copies itself into an empty image; `hcl` is
/// its bake file.
fn engine_project(hcl: impl AsRef<str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY Dockerfile /\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("docker-bake.hcl"), hcl.as_ref()).unwrap();
    dir
}

#[test]
fn attestations_on_the_engine_fail_as_buildx_fails_unless_switched_off() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = serial();
    let dir = engine_project(
        "target \"asks\" {\n  attest = [\"type=provenance,mode=max\"]\n  output = [\"type=local,dest=asks\"]\n}\ntarget \"off\" {\n  attest = [\"type=provenance,disabled=true\", \"type=sbom,disabled=true\"]\n  output = [\"type=local,dest=off\"]\n}\n",
    );
    let refused = bake(dir.path(), &["--builder", "docker://", "asks"], &[]);
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains("attestations are not supported for the docker driver"),
        "{text}"
    );
    assert!(!dir.path().join("asks").exists(), "nothing was exported");
    // Switched off, they are not sent and the build goes ahead, with no warning about them.
    let off = bake(dir.path(), &["--builder", "docker://", "off"], &[]);
    let text = stderr(&off);
    assert!(off.status.success(), "{text}");
    assert!(!text.contains("attest"), "{text}");
    assert!(dir.path().join("off/Dockerfile").is_file());
}

#[test]
fn annotations_reach_an_oci_archive_the_engine_built() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = serial();
    let dir = engine_project(
        "target \"default\" {\n  annotations = [\"org.opencontainers.image.title=engine\", \"manifest-descriptor:seen.on=descriptor\"]\n  output = [\"type=oci,dest=image,tar=false\"]\n}\n",
    );
    let output = bake(dir.path(), &["--builder", "docker://"], &[]);
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    let layout = dir.path().join("image");
    let manifest = raw_image(&format!("oci:{}", layout.display()));
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"], "engine",
        "{manifest}"
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["seen.on"], "descriptor",
        "{index}"
    );
}

#[test]
fn annotations_an_old_engine_drops_from_its_images_are_named_in_a_warning() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = serial();
    let tag = format!(
        "bake-it/annotated-{}:latest",
        uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap()
    );
    let dir = engine_project(format!(
        "target \"default\" {{\n  tags = [\"{tag}\"]\n  annotations = [\"org.opencontainers.image.title=x\"]\n  output = [\"type=image\"]\n}}\n"
    ));
    let output = bake(dir.path(), &["--builder", "docker://"], &[]);
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &tag])
        .output();
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("the annotations of target `default` are ignored by builder"),
        "{text}"
    );
}
