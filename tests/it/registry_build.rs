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

fn can_run() -> bool {
    let ok = rustix::process::geteuid().is_root() && support::find_in_path("runc").is_some();
    if !ok {
        crate::support::skip(
            "skipping registry build test: needs root and runc (Debian package `runc`)",
        );
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

/// Pushes an image of `layers` uncompressed layers, each one file of `size` pseudo-random
/// bytes, as `host/<repository>:1`; returns the layer digests.
fn seed_big(
    host: &str,
    repository: &str,
    layers: usize,
    size: usize,
    scratch: &Path,
) -> Vec<String> {
    let client = Client::new(ClientOptions::default()).unwrap();
    let store = Store::open(scratch.join("seed-big")).unwrap();
    let target: Reference = format!("{host}/{repository}:1").parse().unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for index in 0..layers {
        let mut data = vec![0u8; size];
        for chunk in data.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("blob{index}"), data.as_slice())
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let digest = store.write(&tar).unwrap();
        client
            .push_blob(&target, &digest, tar.len() as u64, &store, None)
            .unwrap();
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest.to_string(),
            "size": tar.len(),
        }));
        diff_ids.push(digest.to_string());
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = store.write(&config).unwrap();
    client
        .push_blob(&target, &config_digest, config.len() as u64, &store, None)
        .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": descriptors,
    }))
    .unwrap();
    client
        .push_manifest(
            &target,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .unwrap();
    diff_ids
}

/// A pull killed with SIGKILL part way resumes: the next build fetches only the layers that
/// had not reached the store, and succeeds.
#[test]
fn a_pull_killed_midway_resumes_without_fetching_finished_blobs() {
    if !can_run() {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let layers = seed_big(&registry.host, "big", 12, 8 << 20, scratch.path());
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {}/big:1\n", registry.host),
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  output = [\"type=tar,dest=out.tar\"]\n}\n",
    )
    .unwrap();
    let root = scratch.path().join("state");
    let blob = |digest: &str| {
        root.join("content/blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bake"))
        .args(["--root", root.to_str().unwrap(), "--progress=quiet"])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as the first layer is in the store.
    let started = std::time::Instant::now();
    while !layers.iter().any(|d| blob(d).exists())
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    let _ = child.wait();
    let finished: Vec<&String> = layers.iter().filter(|d| blob(d).exists()).collect();
    assert!(
        !finished.is_empty(),
        "a layer reached the store before the kill"
    );
    let gets = |digest: &str| registry.count_requests(&format!("\"GET /v2/big/blobs/{digest}"));
    let before: Vec<usize> = finished.iter().map(|d| gets(d)).collect();
    assert!(
        before.iter().all(|count| *count >= 1),
        "the registry log records each finished layer's fetch: {}",
        registry.log()
    );

    let args: Vec<String> = vec!["--root".into(), root.display().to_string()];
    let output = support::bake(&dir, &args, &[], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (digest, count) in finished.iter().zip(before) {
        assert_eq!(gets(digest), count, "{digest} was fetched again");
    }
    for digest in &layers {
        assert!(
            blob(digest).exists(),
            "{digest} is in the store after the rerun"
        );
    }
}
