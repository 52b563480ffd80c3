//! Rebuilds on one state root: a warm rebuild takes every step from the cache and exports
//! the same image, byte for byte, as the build that made the cache, with either snapshotter;
//! a cache index written by an older format is rebuilt, never trusted or fatal.

use std::path::{Path, PathBuf};

use crate::support;
use crate::support::busybox_base as base;
use crate::support::can_build as can_run;

const EPOCH: &str = "1700000000";

/// What one build reported: its manifest digest, how many steps came from the cache and
/// how many ran.
struct Built {
    digest: String,
    cached: usize,
    done: usize,
}

/// The multi-step fixture (base layout, COPY, RUN, RUN) copied into a scratch project.
fn project(scratch: &Path) -> PathBuf {
    let dir = scratch.join("project");
    support::copy_tree(
        &support::root().join("fixtures/build-e2e/multi-step"),
        &dir,
        &[],
    );
    dir
}

fn build(dir: &Path, root: &Path, snapshotter: &str) -> Built {
    let config = dir.join("buildkitd.toml");
    std::fs::write(
        &config,
        format!("[worker.oci]\n  snapshotter = \"{snapshotter}\"\n"),
    )
    .unwrap();
    let metadata = dir.join("metadata.json");
    let _ = std::fs::remove_file(&metadata);
    let args: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--config".into(),
        config.display().to_string(),
        "--metadata-file".into(),
        metadata.display().to_string(),
        "--progress=rawjson".into(),
    ];
    let env = [
        ("BASE".to_owned(), base()),
        ("SOURCE_DATE_EPOCH".to_owned(), EPOCH.to_owned()),
    ];
    let output = support::bake(dir, &args, &env, None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // The export steps run every time; only build steps say whether anything was rebuilt.
    let exports: Vec<&str> = events
        .iter()
        .filter(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.contains("exporting to "))
        })
        .filter_map(|e| e["vertex"].as_str())
        .collect();
    let count = |event: &str| {
        events
            .iter()
            .filter(|e| e["event"] == event)
            .filter(|e| e["vertex"].as_str().is_none_or(|v| !exports.contains(&v)))
            .count()
    };
    let metadata: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    Built {
        digest: metadata["default"]["containerimage.digest"]
            .as_str()
            .unwrap_or_else(|| panic!("no digest in {metadata}"))
            .to_owned(),
        cached: count("cached"),
        done: count("done"),
    }
}

/// The layer count of the image in the OCI tarball `tar`.
fn layer_count(tar: &Path) -> usize {
    let mut files = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        files.insert(name, bytes);
    }
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_slice(files.get(name).unwrap_or_else(|| panic!("no `{name}`"))).unwrap()
    };
    let blob = |digest: &serde_json::Value| {
        format!(
            "blobs/sha256/{}",
            digest.as_str().unwrap().trim_start_matches("sha256:")
        )
    };
    let index = json("index.json");
    let manifest = json(&blob(&index["manifests"][0]["digest"]));
    manifest["layers"].as_array().unwrap().len()
}

#[test]
fn a_warm_rebuild_is_all_cached_and_exports_the_same_image() {
    if !can_run() {
        return;
    }
    let base_layers = {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("base");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM base\n").unwrap();
        std::fs::write(
            dir.join("docker-bake.hcl"),
            "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=oci,dest=out/img.tar\"]\n}\n",
        )
        .unwrap();
        build(&dir, &scratch.path().join("state"), "native");
        layer_count(&dir.join("out/img.tar"))
    };
    for snapshotter in ["auto", "native"] {
        let scratch = tempfile::tempdir().unwrap();
        let dir = project(scratch.path());
        let root = scratch.path().join("state");
        let cold = build(&dir, &root, snapshotter);
        assert!(cold.done >= 3, "{snapshotter}: COPY, RUN and RUN ran");
        assert_eq!(
            layer_count(&dir.join("out/img.tar")),
            base_layers + 3,
            "{snapshotter}: the base image's layers, then one per step"
        );
        let warm = build(&dir, &root, snapshotter);
        assert_eq!(
            warm.done, 0,
            "{snapshotter}: nothing ran on the warm rebuild"
        );
        assert!(warm.cached >= 4, "{snapshotter}: every step was cached");
        assert_eq!(
            warm.digest, cold.digest,
            "{snapshotter}: the warm rebuild exports the same image"
        );
        assert_eq!(layer_count(&dir.join("out/img.tar")), base_layers + 3);
    }
}

#[test]
fn a_cache_index_from_an_older_format_is_rebuilt() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(scratch.path());
    let root = scratch.path().join("state");
    let first = build(&dir, &root, "native");

    // Rewrite every cache entry the way bake recorded them before results knew their chain:
    // a JSON list of result directories.
    {
        let store = bake::content::Store::open(&root).unwrap();
        let entries = store.references("cache/").unwrap();
        assert!(!entries.is_empty());
        for (name, record) in entries {
            let record: serde_json::Value = serde_json::from_str(&record).unwrap();
            let top = record["refs"][0]["nodes"]
                .as_array()
                .and_then(|nodes| nodes.last())
                .map(|node| node["path"].clone())
                .unwrap_or_else(|| panic!("unexpected record {record}"));
            let old = serde_json::json!([top]).to_string();
            store.set_reference(&name, &old, &[]).unwrap();
        }
    }

    let rebuilt = build(&dir, &root, "native");
    assert_eq!(rebuilt.cached, 0, "old entries are misses");
    assert!(rebuilt.done >= 3);
    assert_eq!(
        rebuilt.digest, first.digest,
        "the rebuilt image is the same (timestamps are rewritten)"
    );
    let warm = build(&dir, &root, "native");
    assert_eq!(
        warm.done, 0,
        "the rebuild recorded entries in the current format"
    );
    assert_eq!(warm.digest, first.digest);
}
