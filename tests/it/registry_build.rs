//! `bake` end to end with a registry: `FROM 127.0.0.1:PORT/busybox` with a RUN step, the
//! result pushed with `type=registry`, checked with `skopeo` and pulled back by digest; the
//! same against htpasswd basic auth, with the right and a wrong password.

use std::path::Path;
use std::process::{Command, Output};

use bake::content::Store;
use bake::registry::{Client, ClientOptions, Reference};
use bake::source::oci_layout::{OciLayout, Selector};

use crate::support;
use crate::support::registry::TestRegistry;

#[expect(clippy::print_stderr, reason = "a skipped test says why")]
fn can_run() -> bool {
    let ok = rustix::process::geteuid().is_root() && support::find_in_path("runc").is_some();
    if !ok {
        eprintln!("skipping registry build test: needs root and runc (Debian package `runc`)");
    }
    ok
}

fn write_config(dir: &Path, host: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("builder:{password}"));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

/// Pushes the busybox fixture as `host/busybox:latest` with credentials from `config_dir`.
fn seed(host: &str, config_dir: &Path, scratch: &Path) {
    seed_as(host, "busybox", config_dir, scratch);
}

/// Pushes the busybox fixture as `host/<repository>:latest`.
fn seed_as(host: &str, repository: &str, config_dir: &Path, scratch: &Path) {
    let client = Client::new(ClientOptions {
        docker_config: Some(config_dir.join("config.json")),
        ..ClientOptions::default()
    })
    .unwrap();
    let store = Store::open(scratch.join("seed")).unwrap();
    let layout = OciLayout::open(&support::root().join("fixtures/base/busybox")).unwrap();
    let image = layout
        .resolve(&Selector::Default, &"linux/amd64".parse().unwrap())
        .unwrap();
    layout.import(&image, &store).unwrap();
    let target: Reference = format!("{host}/{repository}:latest").parse().unwrap();
    for blob in std::iter::once(&image.config_descriptor).chain(&image.layers) {
        client
            .push_blob(&target, &blob.digest, blob.size, &store, None)
            .unwrap();
    }
    let bytes = store.read(&image.manifest_digest).unwrap();
    client
        .push_manifest(&target, &image.manifest.media_type, &bytes)
        .unwrap();
}

fn build(scratch: &Path, host: &str, config_dir: &Path) -> Output {
    let dir = scratch.join("project");
    support::copy_tree(
        &support::root().join("fixtures/build-e2e/registry"),
        &dir,
        &[],
    );
    let args: Vec<String> = [
        "--root",
        scratch.join("state").to_str().unwrap(),
        "--progress=plain",
        "--metadata-file",
        "meta.json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let env = [
        ("BASE".to_owned(), format!("{host}/busybox")),
        ("OUT".to_owned(), format!("{host}/app:1")),
        (
            "DOCKER_CONFIG".to_owned(),
            config_dir.to_str().unwrap().to_owned(),
        ),
    ];
    support::bake(&dir, &args, &env, None)
}

#[test]
fn builds_from_a_registry_base_and_pushes_the_result() {
    if !can_run() {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let config_dir = scratch.path().join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    seed(&registry.host, &config_dir, scratch.path());
    let output = build(scratch.path(), &registry.host, &config_dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.path().join("project/meta.json")).unwrap())
            .unwrap();
    let digest = meta["default"]["containerimage.digest"]
        .as_str()
        .unwrap()
        .to_owned();
    if support::find_in_path("skopeo").is_some() {
        let inspected = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{}/app:1", registry.host))
            .output()
            .unwrap();
        assert!(inspected.status.success());
        assert_eq!(
            bake::digest::Digest::of(&inspected.stdout).to_string(),
            digest
        );
    }
    let client = Client::new(ClientOptions {
        docker_config: Some(config_dir.join("config.json")),
        ..ClientOptions::default()
    })
    .unwrap();
    let pinned: Reference = format!("{}/app@{digest}", registry.host).parse().unwrap();
    let store = Store::open(scratch.path().join("check")).unwrap();
    let image = client
        .pull(&pinned, &"linux/amd64".parse().unwrap(), &store)
        .unwrap();
    let rootfs = scratch.path().join("rootfs");
    bake::source::image::unpack(&store, &image, &rootfs).unwrap();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("hello")).unwrap(),
        "hello\n"
    );
    assert!(rootfs.join("bin/busybox").exists() || rootfs.join("bin/sh").exists());
}

#[test]
fn registry_build_with_basic_auth_and_a_wrong_password() {
    if !can_run() {
        return;
    }
    let Some(registry) = TestRegistry::start_with_auth("builder", "good-pass-41a") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let good = scratch.path().join("good");
    write_config(&good, &registry.host, "good-pass-41a");
    seed(&registry.host, &good, scratch.path());
    let output = build(scratch.path(), &registry.host, &good);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let wrong = scratch.path().join("wrong");
    write_config(&wrong, &registry.host, "bad-pass-93c");
    let fresh = tempfile::tempdir().unwrap();
    let output = build(fresh.path(), &registry.host, &wrong);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unauthorized"), "{stderr}");
    assert!(!stderr.contains("bad-pass-93c"), "{stderr}");
}

/// buildkitd.toml's `[registry."docker.io"] mirrors` serve `FROM busybox` (Docker Hub is not
/// reachable here), and `--push` names the pushed image after the target's `tags`.
#[test]
fn a_config_mirror_serves_docker_hub_and_push_uses_the_tags() {
    if !can_run() {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let config_dir = scratch.path().join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    seed_as(
        &registry.host,
        "library/busybox",
        &config_dir,
        scratch.path(),
    );
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo mirrored > /hello\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  tags = [\"{host}/mirrored:1\", \"{host}/mirrored:latest\"]\n}}\n",
            host = registry.host
        ),
    )
    .unwrap();
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(
        &config,
        format!(
            "[registry.\"docker.io\"]\n  mirrors = [\"{}\"]\n",
            registry.host
        ),
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        scratch.path().join("state").display().to_string(),
        "--config".into(),
        config.display().to_string(),
        "--push".into(),
    ];
    let env = [(
        "DOCKER_CONFIG".to_owned(),
        config_dir.to_str().unwrap().to_owned(),
    )];
    let output = support::bake(&dir, &args, &env, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    if support::find_in_path("skopeo").is_some() {
        for tag in ["1", "latest"] {
            let inspected = Command::new("skopeo")
                .args(["inspect", "--tls-verify=false"])
                .arg(format!("docker://{}/mirrored:{tag}", registry.host))
                .output()
                .unwrap();
            assert!(
                inspected.status.success(),
                "{}",
                String::from_utf8_lossy(&inspected.stderr)
            );
        }
    }
}
