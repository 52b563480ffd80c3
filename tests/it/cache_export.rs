//! `cache-to` / `cache-from` through the `bake` binary: a cold build exports its cache, and a
//! build of a copy of the project on a fresh state root imports it and runs no step, for the
//! local, registry and inline backends; `mode=min` against `mode=max`; the caches read by
//! `skopeo` and `umoci`; a SIGKILLed export; missing and unsupported caches. The S3 and
//! GitHub Actions tests (`cache_s3`, `cache_gha`) build with the helpers here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;
pub(crate) use crate::support::can_build as can_run;
use crate::support::registry::{TestRegistry, raw_manifest};

/// A multi-stage build whose final stage copies from a builder stage and ends with a RUN
/// that writes random bytes: a step that ran again would give other bytes.
pub(crate) const DOCKERFILE: &str = "FROM base AS builder\nRUN echo built > /built\n\
FROM base\nCOPY foo /foo\nCOPY --from=builder /built /built\n\
RUN head -c 16 /dev/urandom | od -x > /r\n";

/// The committed busybox base, from where it lies in the repository.
pub(crate) fn base() -> String {
    base_at(&support::root().join("fixtures/base/busybox"))
}

/// The busybox base in the layout `layout` (a copy of the committed one).
fn base_at(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    format!("oci-layout://{}@{digest}", layout.display())
}

/// Writes a project with `dockerfile` under `dir`; its outputs are listed in `OUTPUTS`
/// (comma-separated bake list items) so each test picks them.
pub(crate) fn project(dir: &Path, dockerfile: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.join("foo"), "foo\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=local,dest=out\"]\n}\n",
    )
    .unwrap();
    dir.to_owned()
}

/// What a build reported.
pub(crate) struct Built {
    /// The rawjson progress and the warnings.
    pub(crate) stderr: String,
    /// Build steps (not the context load, cache or export steps) that were CACHED.
    pub(crate) cached: usize,
    /// Build steps that ran.
    pub(crate) ran: usize,
}

/// A first build of `dir` on the empty root `root` exporting a `mode=max` local cache to
/// `cache`; nothing can have come from a cache.
fn cold_with_max_cache(dir: &Path, root: &Path, cache: &Path) -> Built {
    let cold = bake(
        dir,
        root,
        &[format!(
            "*.cache-to=type=local,dest={},mode=max",
            cache.display()
        )],
    );
    assert_eq!(cold.cached, 0, "{}", cold.stderr);
    cold
}

fn bake(dir: &Path, root: &Path, sets: &[String]) -> Built {
    bake_with_env(dir, root, sets, &[])
}

/// [`bake`] with the `oci-layout://` reference `base` as the base image.
fn bake_on(dir: &Path, root: &Path, sets: &[String], base: &str) -> Built {
    build(dir, root, sets, &[], base)
}

/// Builds `dir` on state root `root` with `--set` items `sets` and the variables `env`
/// (beside `BASE`) in bake's environment; the build must succeed.
pub(crate) fn bake_with_env(
    dir: &Path,
    root: &Path,
    sets: &[String],
    env: &[(String, String)],
) -> Built {
    build(dir, root, sets, env, &base())
}

/// [`bake_with_env`] on the base image `base`.
fn build(dir: &Path, root: &Path, sets: &[String], env: &[(String, String)], base: &str) -> Built {
    let mut args: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--progress=rawjson".into(),
    ];
    for set in sets {
        args.push("--set".into());
        args.push(set.clone());
    }
    let mut env = env.to_vec();
    env.push(("BASE".to_owned(), base.to_owned()));
    let output = support::bake(dir, &args, &env, None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "started")
        .filter(|e| {
            let name = e["name"].as_str().unwrap_or_default();
            ![
                "[internal]",
                "importing cache",
                "preparing build cache",
                "exporting",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        })
        .filter_map(|e| e["vertex"].as_str())
        .collect();
    let count = |event: &str| {
        events
            .iter()
            .filter(|e| e["event"] == event)
            .filter(|e| e["vertex"].as_str().is_some_and(|v| steps.contains(&v)))
            .count()
    };
    Built {
        cached: count("cached"),
        ran: count("done"),
        stderr,
    }
}

/// The cache manifest (an image manifest) and config of the OCI layout `dir` under `tag`,
/// read with `skopeo`.
fn layout_cache(dir: &Path, tag: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    support::find_in_path("skopeo")?;
    let manifest = support::registry::raw_image(&format!("oci:{}:{tag}", dir.display()));
    let digest = manifest["config"]["digest"].as_str().unwrap();
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let config = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    Some((manifest, config))
}

#[test]
fn a_local_max_cache_makes_a_fresh_root_in_another_directory_run_nothing() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let first = project(&scratch.path().join("a/project"), DOCKERFILE);
    let cache = scratch.path().join("cache");
    let cold = cold_with_max_cache(&first, &scratch.path().join("root-a"), &cache);
    assert!(cold.ran >= 5, "{}", cold.stderr);
    assert!(cold.stderr.contains("exporting cache to client directory"));
    assert!(cold.stderr.contains("preparing build cache for export"));

    // The cache is an OCI layout that independent tools read.
    if let Some((manifest, config)) = layout_cache(&cache, "latest") {
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.buildkit.cacheconfig.v0"
        );
        let records = config["records"].as_array().unwrap();
        assert!(records.len() >= 5, "{config}");
        assert!(manifest["layers"].as_array().unwrap().iter().all(|l| {
            l["annotations"]["containerd.io/uncompressed"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
        }));
    } else {
        support::skip("skipping the skopeo check: `skopeo` is not installed");
    }
    if support::find_in_path("umoci").is_some() {
        let listed = Command::new("umoci")
            .args(["ls", "--layout"])
            .arg(&cache)
            .output()
            .unwrap();
        assert!(listed.status.success(), "{listed:?}");
        assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "latest");
    } else {
        support::skip("skipping the umoci check: `umoci` is not installed");
    }

    // A checkout elsewhere on a fresh root, with its base layout elsewhere too: every step
    // comes from the imported cache.
    let second = scratch.path().join("elsewhere/checkout");
    support::copy_tree(&first, &second, &["out"]);
    let layout = scratch.path().join("elsewhere/base");
    support::copy_tree(&support::root().join("fixtures/base/busybox"), &layout, &[]);
    let warm = bake_on(
        &second,
        &scratch.path().join("root-b"),
        &[format!("*.cache-from=type=local,src={}", cache.display())],
        &base_at(&layout),
    );
    assert_eq!(warm.ran, 0, "{}", warm.stderr);
    assert_eq!(warm.cached, cold.ran, "{}", warm.stderr);
    assert!(warm.stderr.contains("records imported"), "{}", warm.stderr);
    let bytes = |dir: &Path| std::fs::read(dir.join("out/r")).unwrap();
    assert_eq!(bytes(&first), bytes(&second), "the RUN did not run again");
    assert_eq!(std::fs::read(second.join("out/built")).unwrap(), b"built\n");

    // The import was saved in root B: without the cache, nothing runs either.
    let again = bake_on(
        &second,
        &scratch.path().join("root-b"),
        &[],
        &base_at(&layout),
    );
    assert_eq!(again.ran, 0, "{}", again.stderr);
}

#[test]
fn min_exports_fewer_records_than_max_and_still_caches_the_final_stage() {
    if !can_run() {
        return;
    }
    if support::find_in_path("skopeo").is_none() {
        support::skip("skipping cache mode test: `skopeo` is not installed");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    // The builder stage's file is not in the final image except through the COPY, so
    // `min` leaves out the builder's RUN.
    let dockerfile = "FROM base AS builder\nRUN echo built > /built && echo junk > /junk\n\
FROM base\nCOPY --from=builder /built /built\nRUN head -c 16 /dev/urandom | od -x > /r\n";
    let first = project(&scratch.path().join("a"), dockerfile);
    let (min, max) = (scratch.path().join("min"), scratch.path().join("max"));
    let cold = bake(
        &first,
        &scratch.path().join("root-a"),
        &[
            format!("*.cache-to=type=local,dest={}", min.display()),
            format!("*.cache-to=type=local,dest={},mode=max", max.display()),
        ],
    );
    let records = |dir: &Path| {
        layout_cache(dir, "latest").unwrap().1["records"]
            .as_array()
            .unwrap()
            .len()
    };
    let (min_records, max_records) = (records(&min), records(&max));
    assert!(
        min_records < max_records,
        "min {min_records} max {max_records}: {}",
        cold.stderr
    );

    let second = scratch.path().join("b");
    support::copy_tree(&first, &second, &["out"]);
    let warm = bake(
        &second,
        &scratch.path().join("root-b"),
        &[format!("*.cache-from=type=local,src={}", min.display())],
    );
    // Only the builder's RUN runs again (its output feeds the COPY's key); the final
    // stage's steps are all cached, so the random bytes are the same.
    assert_eq!(warm.ran, 1, "{}", warm.stderr);
    assert_eq!(
        std::fs::read(first.join("out/r")).unwrap(),
        std::fs::read(second.join("out/r")).unwrap()
    );
}

#[test]
fn a_registry_cache_is_read_by_skopeo_and_imported_on_a_fresh_root() {
    if !can_run() {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        support::skip("skipping registry cache test: `docker-registry` is not installed");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let first = project(&scratch.path().join("a"), DOCKERFILE);
    let reference = format!("{}/cache:build", registry.host);
    let cold = bake(
        &first,
        &scratch.path().join("root-a"),
        &[format!("*.cache-to=type=registry,ref={reference},mode=max")],
    );
    assert!(cold.stderr.contains("exporting cache to registry"));
    if support::find_in_path("skopeo").is_some() {
        let manifest = raw_manifest(&reference);
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.buildkit.cacheconfig.v0"
        );
        assert!(manifest["layers"].as_array().unwrap().len() >= 4);
    } else {
        support::skip("skipping the skopeo check: `skopeo` is not installed");
    }
    let second = scratch.path().join("b");
    support::copy_tree(&first, &second, &["out"]);
    let warm = bake(
        &second,
        &scratch.path().join("root-b"),
        &[format!("*.cache-from=type=registry,ref={reference}")],
    );
    assert_eq!(warm.ran, 0, "{}", warm.stderr);
    assert_eq!(warm.cached, cold.ran);
    assert_eq!(
        std::fs::read(first.join("out/r")).unwrap(),
        std::fs::read(second.join("out/r")).unwrap()
    );
}

/// The layer digests of the image `reference` pushed to a test registry, bottom first.
fn pushed_layers(reference: &str) -> Vec<String> {
    raw_manifest(reference)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether a file named after the hex of `digest` lies anywhere under `dir`.
fn holds_blob(dir: &Path, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            holds_blob(&path, digest)
        } else {
            entry.file_name().to_string_lossy() == hex
        }
    })
}

/// Copies the pushed image `reference` with skopeo (which checks every blob's digest) and
/// returns the file `/r` of its last layer.
fn pulled_r(reference: &str, into: &Path) -> Vec<u8> {
    let copied = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:x", into.display()))
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let last = pushed_layers(reference).pop().unwrap();
    let blob = into
        .join("blobs/sha256")
        .join(last.trim_start_matches("sha256:"));
    let file = Command::new("tar")
        .arg("-xzOf")
        .arg(&blob)
        .arg("r")
        .output()
        .unwrap();
    assert!(
        file.status.success(),
        "{}",
        String::from_utf8_lossy(&file.stderr)
    );
    file.stdout
}

#[test]
fn a_fully_cached_push_leaves_imported_layers_in_the_cache_and_mounts_them() {
    if !can_run() {
        return;
    }
    if support::find_in_path("skopeo").is_none() {
        support::skip("skipping lazy push test: `skopeo` is not installed");
        return;
    }
    let (Some(registry), Some(other)) = (TestRegistry::start(), TestRegistry::start()) else {
        support::skip("skipping lazy push test: `docker-registry` is not installed");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    // One stage: a `COPY --from` would hash (and so fetch) the stage it copies from.
    let dockerfile = "FROM base\nCOPY foo /foo\nRUN echo built > /built\n\
        RUN head -c 16 /dev/urandom | od -x > /r\n";
    let first = project(&scratch.path().join("a"), dockerfile);
    let cache = format!("{}/cache:build", registry.host);
    let cold = bake(
        &first,
        &scratch.path().join("root-a"),
        &[format!("*.cache-to=type=registry,ref={cache},mode=max")],
    );
    assert_eq!(cold.cached, 0, "{}", cold.stderr);
    let base_blobs = support::root().join("fixtures/base/busybox");

    // Same registry: every step is cached, and the layers the steps made are mounted from
    // the cache's repository without passing through the fresh root.
    let second = scratch.path().join("b");
    support::copy_tree(&first, &second, &["out"]);
    let root_b = scratch.path().join("root-b");
    let image = format!("{}/app:1", registry.host);
    let warm = bake(
        &second,
        &root_b,
        &[
            format!("*.cache-from=type=registry,ref={cache}"),
            format!("*.output=type=registry,name={image}"),
        ],
    );
    assert_eq!(warm.ran, 0, "{}", warm.stderr);
    let layers = pushed_layers(&image);
    let made: Vec<&String> = layers
        .iter()
        .filter(|digest| !holds_blob(&base_blobs, digest))
        .collect();
    assert!(made.len() >= 3, "{layers:?}");
    let downloaded: Vec<&&String> = made.iter().filter(|d| holds_blob(&root_b, d)).collect();
    assert!(
        downloaded.is_empty(),
        "downloaded into the fresh root: {downloaded:?} of {made:?}\n{}",
        warm.stderr
    );
    assert_eq!(
        pulled_r(&image, &scratch.path().join("pulled-b")),
        std::fs::read(first.join("out/r")).unwrap()
    );

    // Another registry cannot mount them: they are fetched from the cache and uploaded.
    let third = scratch.path().join("c");
    support::copy_tree(&first, &third, &["out"]);
    let root_c = scratch.path().join("root-c");
    let elsewhere = format!("{}/app:1", other.host);
    let warm = bake(
        &third,
        &root_c,
        &[
            format!("*.cache-from=type=registry,ref={cache}"),
            format!("*.output=type=registry,name={elsewhere}"),
        ],
    );
    assert_eq!(warm.ran, 0, "{}", warm.stderr);
    assert_eq!(pushed_layers(&elsewhere), layers);
    assert!(made.iter().all(|digest| holds_blob(&root_c, digest)));
    assert_eq!(
        pulled_r(&elsewhere, &scratch.path().join("pulled-c")),
        std::fs::read(first.join("out/r")).unwrap()
    );
}

#[test]
fn a_copy_from_a_cached_stage_is_found_without_fetching_that_stage() {
    if !can_run() {
        return;
    }
    if support::find_in_path("skopeo").is_none() {
        support::skip("skipping the alias test: `skopeo` is not installed");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let first = project(&scratch.path().join("a"), DOCKERFILE);
    let cache = scratch.path().join("cache");
    let cold = cold_with_max_cache(&first, &scratch.path().join("root-a"), &cache);
    let (manifest, config) = layout_cache(&cache, "latest").unwrap();
    assert!(
        config["bake.aliases"]
            .as_object()
            .is_some_and(|a| !a.is_empty()),
        "{config}"
    );
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();

    // Nothing to write: the `COPY --from=builder` finds its key through the imported alias
    // instead of hashing the builder stage, so no layer of the cache is fetched.
    let second = scratch.path().join("b");
    support::copy_tree(&first, &second, &["out"]);
    let root_b = scratch.path().join("root-b");
    let warm = bake(
        &second,
        &root_b,
        &[
            format!("*.cache-from=type=local,src={}", cache.display()),
            "*.output=type=cacheonly".to_owned(),
        ],
    );
    assert_eq!(warm.ran, 0, "{}", warm.stderr);
    assert_eq!(warm.cached, cold.ran, "{}", warm.stderr);
    let fetched: Vec<&String> = layers.iter().filter(|d| holds_blob(&root_b, d)).collect();
    assert!(fetched.is_empty(), "fetched {fetched:?}\n{}", warm.stderr);
}

#[test]
fn an_inline_cache_in_a_pushed_image_is_imported_by_its_reference() {
    if !can_run() {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        support::skip("skipping inline cache test: `docker-registry` is not installed");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    // One stage: an inline cache holds the final image's chain only.
    let dockerfile = "FROM base\nCOPY foo /foo\nRUN head -c 16 /dev/urandom | od -x > /r\n";
    let first = project(&scratch.path().join("a"), dockerfile);
    let image = format!("{}/app:1", registry.host);
    let cold = bake(
        &first,
        &scratch.path().join("root-a"),
        &[
            "*.output=type=local,dest=out".to_owned(),
            format!("*.output=type=registry,name={image}"),
            "*.cache-to=type=inline".to_owned(),
        ],
    );
    assert_eq!(cold.cached, 0);
    let second = scratch.path().join("b");
    support::copy_tree(&first, &second, &["out"]);
    let warm = bake(
        &second,
        &scratch.path().join("root-b"),
        &[format!("*.cache-from=type=registry,ref={image}")],
    );
    assert_eq!(warm.ran, 0, "{}", warm.stderr);
    assert_eq!(warm.cached, cold.ran, "{}", warm.stderr);
    assert_eq!(
        std::fs::read(first.join("out/r")).unwrap(),
        std::fs::read(second.join("out/r")).unwrap()
    );
}

#[test]
fn a_missing_cache_is_a_warning_and_unknown_types_fail_naming_the_supported_ones() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(&scratch.path().join("p"), "FROM base\nRUN echo hi > /hi\n");
    let missing = scratch.path().join("no-such-cache");
    let built = bake(
        &dir,
        &scratch.path().join("root"),
        &[format!("*.cache-from=type=local,src={}", missing.display())],
    );
    assert!(
        built.stderr.contains(&format!(
            "WARNING: cache-from `type=local,src={}` was not imported",
            missing.display()
        )),
        "{}",
        built.stderr
    );
    for kind in ["nosuch", "azblob"] {
        let args: Vec<String> = vec![
            "--root".into(),
            scratch.path().join("root").display().to_string(),
            "--set".into(),
            format!("*.cache-to=type={kind},name=x"),
        ];
        let output = support::bake(&dir, &args, &[("BASE".to_owned(), base())], None);
        // The diagnostic wraps its lines; compare with single spaces.
        let stderr = String::from_utf8_lossy(&output.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("engine::cache"), "{stderr}");
        assert!(!stderr.contains("WARNING"), "{stderr}");
        assert!(
            stderr.contains("supported types are `local`, `registry`, `inline`, `s3`, `gha`"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("RUN echo hi"),
            "failed before building: {stderr}"
        );
    }
}

/// The names in the layout's blob directory.
fn blob_names(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_local_export_leaves_the_previous_cache_whole() {
    if !can_run() {
        return;
    }
    if support::find_in_path("sha256sum").is_none() {
        support::skip("skipping the killed export test: `sha256sum` is not installed");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(&scratch.path().join("p"), "FROM base\nCOPY foo /foo\n");
    let cache = scratch.path().join("cache");
    let cache_to = format!(
        "*.cache-to=type=local,dest={},mode=max,compression=uncompressed",
        cache.display()
    );
    bake(
        &dir,
        &scratch.path().join("root"),
        std::slice::from_ref(&cache_to),
    );
    let index = std::fs::read(cache.join("index.json")).unwrap();
    let before = blob_names(&cache);

    // A 128 MiB layer, first in its chain to be written: the kill lands while it is copied.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN head -c 134217728 /dev/urandom > /big\nCOPY foo /foo\n",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bake"))
        .args(["--root", &scratch.path().join("root").display().to_string()])
        .args(["--progress=quiet", "--set", &cache_to])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("BASE", base())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let killed = loop {
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        if blob_names(&cache).iter().any(|n| !before.contains(n)) {
            child.kill().unwrap();
            child.wait().unwrap();
            break true;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the export never began"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    assert!(killed, "the export finished before the kill could land");
    assert_eq!(
        std::fs::read(cache.join("index.json")).unwrap(),
        index,
        "index.json is the previous one"
    );
    // Every blob under a real name is whole.
    for name in blob_names(&cache).iter().filter(|n| !n.starts_with('.')) {
        let output = Command::new("sha256sum")
            .arg(cache.join("blobs/sha256").join(name))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&output.stdout).starts_with(name.as_str()));
    }
    // A later import reads the previous cache and the build goes on from it.
    let other = scratch.path().join("q");
    support::copy_tree(&dir, &other, &["out"]);
    let imported = bake(
        &other,
        &scratch.path().join("root-b"),
        &[format!("*.cache-from=type=local,src={}", cache.display())],
    );
    assert!(
        imported.stderr.contains("records imported"),
        "{}",
        imported.stderr
    );
    assert!(!imported.stderr.contains("WARNING"), "{}", imported.stderr);
    assert!(imported.cached >= 1, "the base came from the cache");
}
