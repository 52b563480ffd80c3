//! The registry client against a real `docker-registry` on 127.0.0.1: push, pull by tag and
//! digest, multi-platform indexes, basic auth from a `DOCKER_CONFIG`, mirrors, cross-repository
//! mounts, chunked uploads and resumed pulls. `skopeo` checks what we push.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bake::content::Store;
use bake::digest::Digest;
use bake::platform::Platform;
use bake::registry::{BlobPush, Client, ClientOptions, HostOptions, Reference};
use bake::source::oci_layout::{OciLayout, Selector};

use crate::support::find_in_path;
use crate::support::registry::TestRegistry;

fn busybox_layout() -> PathBuf {
    crate::support::root().join("fixtures/base/busybox")
}

fn amd64() -> Platform {
    "linux/amd64".parse().unwrap()
}

fn client_with(options: ClientOptions) -> Client {
    Client::new(options).unwrap()
}

/// A client that reads no credentials (an empty config dir).
fn anonymous(config_dir: &Path) -> Client {
    client_with(ClientOptions {
        docker_config: Some(config_dir.join("config.json")),
        ..ClientOptions::default()
    })
}

/// Pushes the busybox fixture to `target`; returns the manifest digest.
fn push_busybox(
    client: &Client,
    store: &Store,
    target: &Reference,
    mount_from: Option<&Reference>,
) -> (Digest, Vec<BlobPush>) {
    let layout = OciLayout::open(&busybox_layout()).unwrap();
    let image = layout.resolve(&Selector::Default, &amd64()).unwrap();
    layout.import(&image, store).unwrap();
    let mut pushes = Vec::new();
    for blob in std::iter::once(&image.config_descriptor).chain(&image.layers) {
        pushes.push(
            client
                .push_blob(target, &blob.digest, blob.size, store, mount_from)
                .unwrap(),
        );
    }
    let bytes = store.read(&image.manifest_digest).unwrap();
    let digest = client
        .push_manifest(target, &image.manifest.media_type, &bytes)
        .unwrap();
    assert_eq!(digest, image.manifest_digest);
    (digest, pushes)
}

fn skopeo_digest(reference: &str) -> Option<String> {
    find_in_path("skopeo").or_else(|| {
        crate::support::skip("skipped skopeo check: `skopeo` is not installed");
        None
    })?;
    let output = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(Digest::of(&output.stdout).to_string())
}

#[test]
fn push_then_pull_by_tag_and_digest() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = anonymous(dir.path());
    let store = Store::open(dir.path().join("push-root")).unwrap();
    let target: Reference = format!("{}/busybox:latest", registry.host).parse().unwrap();
    let (digest, pushes) = push_busybox(&client, &store, &target, None);
    assert!(pushes.iter().all(|push| *push == BlobPush::Uploaded));
    if let Some(inspected) = skopeo_digest(&format!("{}/busybox:latest", registry.host)) {
        assert_eq!(inspected, digest.to_string());
    }
    // A second push finds every blob already there.
    let (_, again) = push_busybox(&client, &store, &target, None);
    assert!(again.iter().all(|push| *push == BlobPush::Existed));

    let fresh = Store::open(dir.path().join("pull-root")).unwrap();
    let pulled = client.pull(&target, &amd64(), &fresh).unwrap();
    assert_eq!(pulled.manifest.digest, digest);
    assert_eq!(pulled.image.os, "linux");
    assert_eq!(pulled.diff_ids.len(), pulled.layers.len());
    for blob in pulled.blobs() {
        assert!(fresh.exists(&blob), "{blob} missing after pull");
    }
    let by_digest = target.with_digest(digest);
    let again = Store::open(dir.path().join("pull-by-digest")).unwrap();
    let pinned = client.pull(&by_digest, &amd64(), &again).unwrap();
    assert_eq!(pinned.config, pulled.config);

    let missing: Reference = format!("{}/busybox:nope", registry.host).parse().unwrap();
    let error = client.resolve(&missing).unwrap_err().to_string();
    assert!(error.contains("manifest not found"), "{error}");
}

#[test]
fn chunked_upload_and_cross_repository_mount() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let chunked = client_with(ClientOptions {
        docker_config: Some(dir.path().join("config.json")),
        chunk_size: 256 << 10,
        ..ClientOptions::default()
    });
    let store = Store::open(dir.path().join("root")).unwrap();
    let first: Reference = format!("{}/first/busybox:1", registry.host)
        .parse()
        .unwrap();
    let (digest, _) = push_busybox(&chunked, &store, &first, None);
    assert!(
        registry.count_requests("\"PATCH /v2/first/busybox/blobs/uploads/") >= 4,
        "the 1 MiB layer should go up in 256 KiB chunks: {}",
        registry.log()
    );
    let second: Reference = format!("{}/second/busybox:1", registry.host)
        .parse()
        .unwrap();
    let (_, pushes) = push_busybox(&chunked, &store, &second, Some(&first));
    assert!(
        pushes.iter().all(|push| *push == BlobPush::Mounted),
        "{pushes:?}"
    );
    let fresh = Store::open(dir.path().join("pulled")).unwrap();
    let pulled = chunked.pull(&second, &amd64(), &fresh).unwrap();
    assert_eq!(pulled.manifest.digest, digest);
}

/// Writes a one-layer image for `platform` into `store`; returns the manifest bytes.
fn tiny_image(client: &Client, store: &Store, target: &Reference, platform: &str) -> Vec<u8> {
    let parsed: Platform = platform.parse().unwrap();
    let layer = format!("layer for {platform}").into_bytes();
    let layer_digest = store.write(&layer).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": parsed.architecture, "os": parsed.os,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
        "config": {"Env": [format!("PLATFORM={platform}")]},
    }))
    .unwrap();
    let config_digest = store.write(&config).unwrap();
    for (digest, size) in [(layer_digest, layer.len()), (config_digest, config.len())] {
        client
            .push_blob(target, &digest, size as u64, store, None)
            .unwrap();
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    client
        .push_manifest(
            &target.with_digest(Digest::of(&manifest)),
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .unwrap();
    manifest
}

#[test]
fn multi_platform_index_resolves_per_platform() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = anonymous(dir.path());
    let store = Store::open(dir.path().join("root")).unwrap();
    let target: Reference = format!("{}/multi:1", registry.host).parse().unwrap();
    let mut entries = Vec::new();
    let mut expected = BTreeMap::new();
    for (platform, architecture) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let manifest = tiny_image(&client, &store, &target, platform);
        let digest = Digest::of(&manifest);
        expected.insert(platform, digest);
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(), "size": manifest.len(),
            "platform": {"architecture": architecture, "os": "linux"},
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    client
        .push_manifest(&target, "application/vnd.oci.image.index.v1+json", &index)
        .unwrap();
    for (platform, digest) in &expected {
        let resolved = client
            .resolve_image(&target, &platform.parse().unwrap())
            .unwrap();
        assert_eq!(resolved.root.digest, Digest::of(&index));
        assert_eq!(resolved.manifest.digest, *digest, "{platform}");
        let fresh = Store::open(dir.path().join(platform.replace('/', "_"))).unwrap();
        let pulled = client
            .pull(&target, &platform.parse().unwrap(), &fresh)
            .unwrap();
        assert_eq!(
            pulled.image.config.env_value("PLATFORM"),
            Some(*platform),
            "{platform}"
        );
    }
    let error = client
        .resolve_image(&target, &"linux/s390x".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("found: linux/amd64, linux/arm64"), "{error}");
}

fn write_docker_config(dir: &Path, host: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

#[test]
fn basic_auth_uses_docker_config_and_never_prints_the_password() {
    let Some(registry) = TestRegistry::start_with_auth("builder", "right-pass-9f2") else {
        return;
    };
    let good = tempfile::tempdir().unwrap();
    write_docker_config(good.path(), &registry.host, "builder", "right-pass-9f2");
    let client = anonymous(good.path());
    let store = Store::open(good.path().join("root")).unwrap();
    let target: Reference = format!("{}/private/app:1", registry.host).parse().unwrap();
    let (digest, _) = push_busybox(&client, &store, &target, None);
    let fresh = Store::open(good.path().join("pulled")).unwrap();
    assert_eq!(
        client
            .pull(&target, &amd64(), &fresh)
            .unwrap()
            .manifest
            .digest,
        digest
    );

    let bad = tempfile::tempdir().unwrap();
    write_docker_config(bad.path(), &registry.host, "builder", "wrong-pass-7c1");
    let error = anonymous(bad.path()).resolve(&target).unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(
        text.contains("unauthorized: authentication required"),
        "{text}"
    );
    assert!(text.contains("check the credentials for"), "{text}");
    assert!(!text.contains("wrong-pass-7c1"), "{text}");

    let none = tempfile::tempdir().unwrap();
    let error = anonymous(none.path())
        .resolve(&target)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no credentials for"), "{error}");
}

#[test]
fn docker_hub_pulls_go_to_the_configured_mirror() {
    let Some(mirror) = TestRegistry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("root")).unwrap();
    let seeded: Reference = format!("{}/library/busybox:latest", mirror.host)
        .parse()
        .unwrap();
    let (digest, _) = push_busybox(&anonymous(dir.path()), &store, &seeded, None);
    let client = client_with(ClientOptions {
        docker_config: Some(dir.path().join("config.json")),
        hosts: BTreeMap::from([(
            "docker.io".to_owned(),
            HostOptions {
                mirrors: vec![mirror.host.clone()],
                ..HostOptions::default()
            },
        )]),
        ..ClientOptions::default()
    });
    let hub: Reference = "busybox".parse().unwrap();
    let fresh = Store::open(dir.path().join("pulled")).unwrap();
    let pulled = client.pull(&hub, &amd64(), &fresh).unwrap();
    assert_eq!(pulled.manifest.digest, digest);
    assert!(mirror.count_requests("GET /v2/library/busybox/manifests/latest") >= 1);
}

#[test]
fn interrupted_pull_fetches_only_missing_blobs() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = anonymous(dir.path());
    let store = Store::open(dir.path().join("root")).unwrap();
    let target: Reference = format!("{}/resume:1", registry.host).parse().unwrap();
    push_busybox(&client, &store, &target, None);
    let fresh = Store::open(dir.path().join("pulled")).unwrap();
    let pulled = client.pull(&target, &amd64(), &fresh).unwrap();
    let blob_gets = || registry.count_requests("\"GET /v2/resume/blobs/");
    let first = blob_gets();
    assert_eq!(first, 1 + pulled.layers.len(), "{}", registry.log());
    // As if the pull had been killed after the config: the layer never made it to the store.
    fresh.delete(&pulled.layers[0].digest).unwrap();
    client.pull(&target, &amd64(), &fresh).unwrap();
    assert_eq!(
        blob_gets(),
        first + 1,
        "only the missing layer is fetched again"
    );
    assert!(fresh.exists(&pulled.layers[0].digest));
}

#[test]
fn image_source_unpacks_and_remembers_the_tag() {
    let dir = tempfile::tempdir().unwrap();
    let client = anonymous(dir.path());
    let store = Store::open(dir.path().join("root")).unwrap();
    let target = {
        let Some(registry) = TestRegistry::start() else {
            return;
        };
        let target: Reference = format!("{}/base:1", registry.host).parse().unwrap();
        let seed = Store::open(dir.path().join("seed")).unwrap();
        push_busybox(&client, &seed, &target, None);
        let image = bake::source::image::pull(&client, &store, &target, &amd64(), false).unwrap();
        let rootfs = dir.path().join("rootfs");
        bake::source::image::unpack(&store, &image, &rootfs).unwrap();
        assert!(rootfs.join("bin/busybox").exists() || rootfs.join("bin/sh").exists());
        target
        // The registry stops here.
    };
    let cached = bake::source::image::pull(&client, &store, &target, &amd64(), false).unwrap();
    assert_eq!(cached.image.os, "linux");
    let error = bake::source::image::pull(&client, &store, &target, &amd64(), true).unwrap_err();
    let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(
        text.contains("failed to pull") && text.contains(&target.registry),
        "{text}"
    );
}
