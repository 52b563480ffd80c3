//! Build-input sources: `.dockerignore` semantics (a table fixture), the local context (walk,
//! checksums, stat cache, symlink safety, materialising) and OCI layouts (the busybox layout
//! BuildKit built).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use bake::content;
use bake::digest::Digest;
use bake::platform::Platform;
use bake::source::dockerignore::{self, Matcher};
use bake::source::local::{EntryKind, LocalOptions, LocalSource};
use bake::source::oci_layout::{OciLayout, Selector};
use bake::source::{Error, StatCache};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[test]
fn dockerignore_cases_match_moby() {
    let text = fs::read_to_string(fixtures().join("dockerignore/cases.txt")).unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split(" | ").collect();
        let [patterns, path, expected] = columns[..] else {
            panic!("malformed case `{line}`");
        };
        let lines = patterns.split_whitespace().collect::<Vec<_>>().join("\n");
        let matcher = Matcher::new(&dockerignore::parse(&lines)).unwrap();
        let expected: bool = expected.trim().parse().unwrap();
        count += 1;
        if matcher.excludes(path) != expected {
            failures.push(format!("{patterns} | {path}: expected {expected}"));
        }
    }
    assert!(count >= 40, "only {count} cases");
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

/// A small context: files, a nested directory, an executable and two symlinks.
fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("src/gen")).unwrap();
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(root.join("src/gen/out.rs"), "// generated\n").unwrap();
    fs::write(root.join("docs/a.md"), "a\n").unwrap();
    fs::write(root.join("docs/keep.md"), "keep\n").unwrap();
    fs::write(root.join("build.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("build.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("src/main.rs", root.join("link")).unwrap();
    symlink("/etc/passwd", root.join("escape")).unwrap();
    dir
}

fn paths(source: &LocalSource) -> Vec<String> {
    source
        .walk()
        .unwrap()
        .iter()
        .map(|e| e.path.to_string_lossy().into_owned())
        .collect()
}

fn options(excludes: &[&str], includes: &[&str]) -> LocalOptions {
    LocalOptions {
        exclude_patterns: excludes.iter().map(|s| s.to_string()).collect(),
        include_patterns: includes.iter().map(|s| s.to_string()).collect(),
        follow_paths: Vec::new(),
    }
}

#[test]
fn walk_is_sorted_and_applies_dockerignore_with_reincludes() {
    let dir = context();
    let all = LocalSource::new(dir.path(), &LocalOptions::default()).unwrap();
    assert_eq!(
        paths(&all),
        [
            "build.sh",
            "docs",
            "docs/a.md",
            "docs/keep.md",
            "escape",
            "link",
            "src",
            "src/gen",
            "src/gen/out.rs",
            "src/main.rs"
        ]
    );
    let filtered = LocalSource::new(
        dir.path(),
        &options(&["docs", "!docs/keep.md", "src/gen"], &[]),
    )
    .unwrap();
    assert_eq!(
        paths(&filtered),
        [
            "build.sh",
            "docs",
            "docs/keep.md",
            "escape",
            "link",
            "src",
            "src/main.rs"
        ]
    );
}

#[test]
fn dockerfile_specific_ignore_file_is_used_by_load() {
    let dir = context();
    fs::write(dir.path().join(".dockerignore"), "docs\n").unwrap();
    fs::write(dir.path().join("app.Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(
        dir.path().join("app.Dockerfile.dockerignore"),
        "src\n*.Dockerfile*\n",
    )
    .unwrap();
    let source = LocalSource::load(dir.path(), Some(Path::new("app.Dockerfile")), &[]).unwrap();
    let seen = paths(&source);
    assert!(seen.contains(&"docs/a.md".to_owned()), "{seen:?}");
    assert!(!seen.iter().any(|p| p.starts_with("src")), "{seen:?}");
}

#[test]
fn include_patterns_keep_only_what_the_build_reads() {
    let dir = context();
    let source = LocalSource::new(dir.path(), &options(&[], &["src/*.rs", "build.sh"])).unwrap();
    assert_eq!(paths(&source), ["build.sh", "src", "src/main.rs"]);
    let deep = LocalSource::new(dir.path(), &options(&["src/gen/out.rs"], &["src"])).unwrap();
    assert_eq!(paths(&deep), ["src", "src/gen", "src/main.rs"]);
}

#[test]
fn follow_paths_bring_in_symlink_targets_and_refuse_escapes() {
    let dir = context();
    fs::create_dir(dir.path().join("docker")).unwrap();
    fs::write(dir.path().join("docker/real.Dockerfile"), "FROM scratch\n").unwrap();
    symlink("docker/real.Dockerfile", dir.path().join("Dockerfile")).unwrap();
    let follow = |path: &str| LocalOptions {
        follow_paths: vec![path.to_owned()],
        ..LocalOptions::default()
    };
    let source = LocalSource::new(dir.path(), &follow("Dockerfile")).unwrap();
    assert_eq!(
        paths(&source),
        ["Dockerfile", "docker", "docker/real.Dockerfile"]
    );
    let error = LocalSource::new(dir.path(), &follow("escape")).unwrap_err();
    assert!(matches!(error, Error::OutsideContext { .. }), "{error}");
}

fn checksum(dir: &Path, selectors: &[&str]) -> Digest {
    let source = LocalSource::new(dir, &LocalOptions::default()).unwrap();
    source
        .checksum(selectors, &mut StatCache::in_memory())
        .unwrap()
}

fn set_mtime(path: &Path, seconds: i64) {
    let time = rustix::fs::Timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

#[test]
fn checksum_ignores_mtime_but_not_content_or_mode() {
    let dir = context();
    let root = dir.path();
    let whole = checksum(root, &["."]);
    let src = checksum(root, &["src"]);
    assert_eq!(checksum(root, &["."]), whole, "deterministic");

    set_mtime(&root.join("src/main.rs"), 1_000_000);
    set_mtime(&root.join("src"), 2_000_000);
    assert_eq!(checksum(root, &["."]), whole, "mtime must not matter");

    fs::write(root.join("docs/a.md"), "changed\n").unwrap();
    assert_ne!(checksum(root, &["."]), whole, "content matters");
    assert_eq!(
        checksum(root, &["src"]),
        src,
        "an unselected file does not matter"
    );

    fs::set_permissions(root.join("src/main.rs"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_ne!(checksum(root, &["src"]), src, "mode matters");
}

#[test]
fn checksum_of_a_path_does_not_depend_on_its_name_but_a_wildcard_does() {
    let dir = context();
    let root = dir.path();
    fs::create_dir(root.join("copy")).unwrap();
    fs::write(root.join("copy/main.rs"), "fn main() {}\n").unwrap();
    fs::create_dir(root.join("copy/gen")).unwrap();
    fs::write(root.join("copy/gen/out.rs"), "// generated\n").unwrap();
    for path in ["src", "src/gen", "copy", "copy/gen"] {
        fs::set_permissions(root.join(path), fs::Permissions::from_mode(0o755)).unwrap();
    }
    for path in [
        "src/main.rs",
        "copy/main.rs",
        "src/gen/out.rs",
        "copy/gen/out.rs",
    ] {
        fs::set_permissions(root.join(path), fs::Permissions::from_mode(0o644)).unwrap();
    }
    assert_eq!(checksum(root, &["src"]), checksum(root, &["copy"]));
    assert_ne!(checksum(root, &["src/*"]), checksum(root, &["copy/*"]));
    // The symlink `link` resolves to `src/main.rs` inside the context.
    assert_eq!(checksum(root, &["link"]), checksum(root, &["src/main.rs"]));
}

#[test]
fn symlinks_out_of_the_context_are_errors_for_selectors() {
    let dir = context();
    let root = dir.path();
    symlink("../..", root.join("up")).unwrap();
    let source = LocalSource::new(root, &LocalOptions::default()).unwrap();
    let mut cache = StatCache::in_memory();
    for selector in ["escape", "up/etc", "up"] {
        let error = source.checksum(&[selector], &mut cache).unwrap_err();
        assert!(
            matches!(error, Error::OutsideContext { .. }),
            "{selector}: {error}"
        );
        assert!(error.to_string().contains(selector), "{error}");
    }
    // `..` in the selector itself stays inside the context, like `COPY ../x`.
    assert_eq!(
        source.resolve("../src/main.rs").unwrap(),
        Path::new("src/main.rs")
    );
    let missing = source.checksum(&["nope"], &mut cache).unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
}

#[test]
fn materialize_copies_modes_and_symlinks_without_following_them() {
    let dir = context();
    let source = LocalSource::new(dir.path(), &options(&["docs", "!docs/keep.md"], &[])).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let out = dest.path().join("snapshot");
    let entries = source.materialize(&out).unwrap();
    assert!(entries.iter().any(|e| e.kind == EntryKind::Directory));
    let mode = fs::metadata(out.join("build.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        fs::read_link(out.join("escape")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(out.join("link")).unwrap(),
        Path::new("src/main.rs")
    );
    assert_eq!(
        fs::read_to_string(out.join("docs/keep.md")).unwrap(),
        "keep\n"
    );
    assert!(!out.join("docs/a.md").exists());
    let original = fs::metadata(dir.path().join("src/main.rs")).unwrap();
    let copied = fs::metadata(out.join("src/main.rs")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(copied.mtime(), original.mtime());
    assert_eq!(
        (copied.uid(), copied.gid()),
        (original.uid(), original.gid())
    );
}

#[test]
fn materialize_keeps_hard_links_linked() {
    let dir = context();
    fs::hard_link(dir.path().join("build.sh"), dir.path().join("build2.sh")).unwrap();
    let source = LocalSource::new(dir.path(), &LocalOptions::default()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    source.materialize(dest.path()).unwrap();
    use std::os::unix::fs::MetadataExt;
    let first = fs::metadata(dest.path().join("build.sh")).unwrap();
    let second = fs::metadata(dest.path().join("build2.sh")).unwrap();
    assert_eq!(first.ino(), second.ino());
    assert_eq!(first.nlink(), 2);
}

#[test]
fn stat_cache_rereads_nothing_for_an_unchanged_context_of_10000_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("context");
    for d in 0..100 {
        let sub = root.join(format!("d{d:03}"));
        fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            fs::write(sub.join(format!("f{f:03}")), format!("{d}/{f}")).unwrap();
        }
    }
    // Entries whose change time is within a second of the pass are racy and never trusted
    // (see stat_cache.rs); wait until the files are old enough.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cache_dir = dir.path().join("cache");
    let source = LocalSource::new(&root, &LocalOptions::default()).unwrap();

    let mut first = StatCache::load(&cache_dir, source.root());
    let digest = source.checksum(&["."], &mut first).unwrap();
    assert_eq!(first.content_reads(), 10_000);
    first.save().unwrap();

    let mut second = StatCache::load(&cache_dir, source.root());
    assert_eq!(second.len(), 10_000);
    assert_eq!(source.checksum(&["."], &mut second).unwrap(), digest);
    assert_eq!(
        second.content_reads(),
        0,
        "an unchanged context is not read again"
    );

    fs::write(root.join("d042/f007"), "changed").unwrap();
    let changed = source.checksum(&["."], &mut second).unwrap();
    assert_ne!(changed, digest);
    assert_eq!(second.content_reads(), 1, "only the changed file is read");
    second.save().unwrap();
}

#[test]
fn damaged_stat_cache_file_is_ignored() {
    let dir = context();
    let cache_dir = tempfile::tempdir().unwrap();
    let source = LocalSource::new(dir.path(), &LocalOptions::default()).unwrap();
    let mut cache = StatCache::load(cache_dir.path(), source.root());
    source.checksum(&["."], &mut cache).unwrap();
    cache.save().unwrap();
    for file in fs::read_dir(cache_dir.path()).unwrap() {
        fs::write(file.unwrap().path(), "{not json").unwrap();
    }
    let cache = StatCache::load(cache_dir.path(), source.root());
    assert!(cache.is_empty());
}

fn busybox() -> OciLayout {
    OciLayout::open(&fixtures().join("base/busybox")).unwrap()
}

fn amd64() -> Platform {
    "linux/amd64".parse().unwrap()
}

#[test]
fn busybox_layout_resolves_by_default_tag_and_digest() {
    let layout = busybox();
    assert_eq!(layout.tags(), ["latest"]);
    let image = layout.resolve(&Selector::Default, &amd64()).unwrap();
    assert_eq!(image.config.config.env, ["PATH=/bin"]);
    assert_eq!(image.config.config.cmd, Some(vec!["/bin/sh".to_owned()]));
    assert_eq!(image.config.os, "linux");
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.diff_ids.len(), 2);
    let tagged = layout
        .resolve(&Selector::Tag("latest".into()), &amd64())
        .unwrap();
    assert_eq!(tagged.manifest_digest, image.manifest_digest);
    let by_digest = layout
        .resolve(&Selector::Digest(image.manifest_digest), &amd64())
        .unwrap();
    assert_eq!(by_digest.config_descriptor, image.config_descriptor);
}

#[test]
fn missing_tag_lists_available_tags() {
    let layout = busybox();
    let error = layout
        .resolve(&Selector::Tag("v2".into()), &amd64())
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("`v2`") && message.contains("`latest`"),
        "{message}"
    );
}

#[test]
fn parse_reference_splits_path_tag_and_digest() {
    assert_eq!(
        bake::graph::parse_layout_reference("/a/b:v1").unwrap(),
        ("/a/b".to_owned(), Selector::Tag("v1".into()))
    );
    assert_eq!(
        bake::graph::parse_layout_reference("./x.y/b").unwrap(),
        ("./x.y/b".to_owned(), Selector::Default)
    );
    let digest = Digest::of(b"x");
    assert_eq!(
        bake::graph::parse_layout_reference(&format!("/a@{digest}")).unwrap(),
        ("/a".to_owned(), Selector::Digest(digest))
    );
}

#[test]
fn busybox_unpacks_with_its_symlinks_and_imports_into_the_store() {
    let layout = busybox();
    let image = layout.resolve(&Selector::Default, &amd64()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    layout.unpack(&image, &root).unwrap();
    let busybox = fs::symlink_metadata(root.join("bin/busybox")).unwrap();
    assert!(busybox.is_file());
    assert_eq!(busybox.permissions().mode() & 0o777, 0o755);
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );

    let store = content::Store::open(dir.path().join("store")).unwrap();
    layout.import(&image, &store).unwrap();
    for descriptor in image
        .layers
        .iter()
        .chain([&image.config_descriptor, &image.manifest])
    {
        assert_eq!(store.size(&descriptor.digest).unwrap(), descriptor.size);
    }
}

/// Copies the busybox layout somewhere writable.
fn busybox_copy(into: &Path) -> PathBuf {
    let source = fixtures().join("base/busybox");
    let target = into.join("busybox");
    fs::create_dir_all(target.join("blobs/sha256")).unwrap();
    for name in ["oci-layout", "index.json"] {
        fs::copy(source.join(name), target.join(name)).unwrap();
    }
    for blob in fs::read_dir(source.join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap();
        fs::copy(
            blob.path(),
            target.join("blobs/sha256").join(blob.file_name()),
        )
        .unwrap();
    }
    target
}

#[test]
fn corrupt_layer_is_an_error_naming_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = busybox_copy(dir.path());
    let layout = OciLayout::open(&path).unwrap();
    let image = layout.resolve(&Selector::Default, &amd64()).unwrap();
    let layer = &image.layers[1];
    let blob = layout.blob_path(&layer.digest);
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, bytes).unwrap();

    let error = layout
        .unpack(&image, &dir.path().join("rootfs"))
        .unwrap_err();
    assert!(matches!(error, Error::CorruptBlob { .. }), "{error}");
    assert!(
        error.to_string().contains(&layer.digest.to_string()),
        "{error}"
    );

    let store = content::Store::open(dir.path().join("store")).unwrap();
    let error = layout.import(&image, &store).unwrap_err();
    assert!(
        error.to_string().contains(&layer.digest.to_string()),
        "{error}"
    );
    assert!(!store.exists(&layer.digest));
}

#[test]
fn corrupt_manifest_is_an_error_naming_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = busybox_copy(dir.path());
    let layout = OciLayout::open(&path).unwrap();
    let image = layout.resolve(&Selector::Default, &amd64()).unwrap();
    fs::write(layout.blob_path(&image.config_descriptor.digest), b"{}").unwrap();
    let error = layout.resolve(&Selector::Default, &amd64()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&image.config_descriptor.digest.to_string()),
        "{message}"
    );
}

#[test]
fn not_a_layout_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let error = OciLayout::open(dir.path()).unwrap_err();
    assert!(matches!(error, Error::NotLayout { .. }), "{error}");
}

/// Writes `bytes` as a blob of `layout` and returns its descriptor JSON.
fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = Digest::of(bytes);
    fs::write(layout.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
}

/// Builds a one-file layer tar.
fn layer_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data).unwrap();
    builder.into_inner().unwrap()
}

/// A layout whose `index.json` names a nested index (tag `multi`) with an amd64 image (zstd
/// layer) and an arm64 image (uncompressed layer).
fn multi_platform_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("multi");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut entries = Vec::new();
    for (arch, name) in [("amd64", "zstd"), ("arm64", "plain")] {
        let tar = layer_tar(&format!("etc/{name}"), arch.as_bytes());
        let (media_type, blob) = if name == "zstd" {
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                zstd::encode_all(tar.as_slice(), 3).unwrap(),
            )
        } else {
            ("application/vnd.oci.image.layer.v1.tar", tar.clone())
        };
        let layer = put_blob(&layout, media_type, &blob);
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Env": [format!("ARCH={arch}")]},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(&tar).to_string()]},
        });
        let config = put_blob(
            &layout,
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": [layer],
        });
        let mut entry = put_blob(
            &layout,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
        entry["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        entries.push(entry);
    }
    let nested = serde_json::json!({"schemaVersion": 2, "manifests": entries});
    let mut top = put_blob(
        &layout,
        "application/vnd.oci.image.index.v1+json",
        nested.to_string().as_bytes(),
    );
    top["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "multi"});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    layout
}

#[test]
fn nested_index_selects_by_platform_and_unpacks_zstd_and_plain_layers() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::open(&multi_platform_layout(dir.path())).unwrap();
    for (platform, file) in [("linux/amd64", "zstd"), ("linux/arm64/v8", "plain")] {
        let platform: Platform = platform.parse().unwrap();
        let image = layout
            .resolve(&Selector::Tag("multi".into()), &platform)
            .unwrap();
        assert_eq!(image.config.architecture, platform.architecture);
        let root = dir.path().join(file);
        layout.unpack(&image, &root).unwrap();
        let text = fs::read_to_string(root.join("etc").join(file)).unwrap();
        assert_eq!(text, platform.architecture);
    }
    let riscv: Platform = "linux/riscv64".parse().unwrap();
    let error = layout.resolve(&Selector::Default, &riscv).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("linux/riscv64") && message.contains("linux/arm64"),
        "{message}"
    );
}

#[test]
fn layer_that_does_not_match_its_diff_id_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = multi_platform_layout(dir.path());
    let layout = OciLayout::open(&path).unwrap();
    let mut image = layout.resolve(&Selector::Default, &amd64()).unwrap();
    image.diff_ids[0] = Digest::of(b"something else");
    let error = layout.unpack(&image, &dir.path().join("root")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&image.layers[0].digest.to_string()),
        "{error}"
    );
}

#[test]
fn a_file_changed_right_after_hashing_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("hot"), "one").unwrap();
    let source = LocalSource::new(dir.path(), &LocalOptions::default()).unwrap();
    let mut cache = StatCache::in_memory();
    let first = source.checksum(&["hot"], &mut cache).unwrap();
    // Same size, and quite possibly the same coarse timestamps: only the racy rule catches it.
    fs::write(dir.path().join("hot"), "two").unwrap();
    let second = source.checksum(&["hot"], &mut cache).unwrap();
    assert_ne!(first, second);
    assert_eq!(cache.content_reads(), 2);
}

#[test]
fn ownership_is_hashed_and_copied_when_root() {
    if !rustix::process::geteuid().is_root() {
        crate::support::skip("skipped: changing owners needs root");
        return;
    }
    let dir = context();
    let file = dir.path().join("src/main.rs");
    let before = checksum(dir.path(), &["src"]);
    std::os::unix::fs::lchown(&file, Some(1234), Some(5678)).unwrap();
    assert_ne!(checksum(dir.path(), &["src"]), before, "owner matters");
    let source = LocalSource::new(dir.path(), &LocalOptions::default()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    source.materialize(dest.path()).unwrap();
    use std::os::unix::fs::MetadataExt;
    let copied = fs::metadata(dest.path().join("src/main.rs")).unwrap();
    assert_eq!((copied.uid(), copied.gid()), (1234, 5678));
}

#[test]
fn walk_lists_symlinked_directories_without_entering_them() {
    let dir = context();
    symlink("/etc", dir.path().join("etc")).unwrap();
    symlink("../..", dir.path().join("up")).unwrap();
    let source = LocalSource::new(dir.path(), &LocalOptions::default()).unwrap();
    let entries = source.walk().unwrap();
    let etc = entries.iter().find(|e| e.path == Path::new("etc")).unwrap();
    assert_eq!(etc.kind, EntryKind::Symlink(PathBuf::from("/etc")));
    assert!(!entries.iter().any(|e| {
        e.path.components().count() > 1 && (e.path.starts_with("etc") || e.path.starts_with("up"))
    }));
    // Hashing the whole context hashes the links, not what they point to.
    source
        .checksum(&["."], &mut StatCache::in_memory())
        .unwrap();
}
