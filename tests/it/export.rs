//! Exporters checked with independent tools: `skopeo inspect` of OCI and docker archives,
//! `umoci unpack` of OCI layouts, `tar -tv` of tar output, and the local directory tree.
//! When a tool is missing the test prints why and returns (CI installs them).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use bake::buildflags::ExportEntry;
use bake::content::Store;
use bake::exporter::{self, BuildOutput, ExportContext, ExportResponse, Layer, PlatformOutput};
use bake::oci::{History, Image};
use bake::platform::Platform;
use serde_json::Value;

const EPOCH: u64 = 1_700_000_000;

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        crate::support::skip(&format!(
            "skipping: `{name}` is not installed (apt-get install {name})"
        ));
    }
    found
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Two snapshot trees: a base with files, a directory, a symlink and a hard link, and a
/// second step that deletes one file and adds another.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    lower: PathBuf,
    upper: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    let lower = root.join("lower");
    fs::create_dir_all(lower.join("etc")).expect("etc");
    fs::create_dir_all(lower.join("bin")).expect("bin");
    fs::create_dir_all(lower.join("data")).expect("data");
    fs::set_permissions(lower.join("data"), fs::Permissions::from_mode(0o700)).expect("chmod");
    fs::write(lower.join("etc/hello"), "hello\n").expect("hello");
    fs::hard_link(lower.join("etc/hello"), lower.join("etc/hello-hard")).expect("hard link");
    fs::write(lower.join("etc/remove-me"), "bye\n").expect("remove-me");
    fs::write(lower.join("bin/tool"), "#!/bin/sh\n").expect("tool");
    fs::set_permissions(lower.join("bin/tool"), fs::Permissions::from_mode(0o755)).expect("chmod");
    symlink("etc/hello", lower.join("link")).expect("symlink");
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(lower.join("bin/tool"), Some(1000), Some(1000)).expect("chown");
    }
    let upper = root.join("upper");
    bake::snapshot::copy_tree(&lower, &upper).expect("copy");
    fs::remove_file(upper.join("etc/remove-me")).expect("delete");
    fs::write(upper.join("etc/new"), "new\n").expect("new");
    Fixture {
        _dir: dir,
        root,
        lower,
        upper,
    }
}

fn platform(text: &str) -> Platform {
    text.parse().expect("platform")
}

fn platform_output(fixture: &Fixture, platform: Platform) -> PlatformOutput {
    let mut image = Image::empty(&platform);
    image.config.cmd = Some(vec!["/bin/tool".to_owned()]);
    image.history = vec![
        History {
            created_by: Some("COPY . / # buildkit".to_owned()),
            comment: Some("buildkit.dockerfile.v0".to_owned()),
            ..History::default()
        },
        History {
            created_by: Some("CMD [\"/bin/tool\"]".to_owned()),
            empty_layer: true,
            ..History::default()
        },
        History {
            created_by: Some("RUN rm /etc/remove-me # buildkit".to_owned()),
            ..History::default()
        },
    ];
    PlatformOutput {
        platform,
        rootfs: fixture.upper.clone(),
        layers: vec![
            Layer::Diff {
                lower: None,
                upper: fixture.lower.clone(),
            },
            Layer::Diff {
                lower: Some(fixture.lower.clone()),
                upper: fixture.upper.clone(),
            },
        ],
        image,
        inline_cache: None,
    }
}

fn single(fixture: &Fixture) -> BuildOutput {
    BuildOutput {
        lazy: None,
        platforms: vec![platform_output(fixture, platform("linux/amd64"))],
    }
}

fn export_with(
    store: &Store,
    spec: &str,
    output: &BuildOutput,
    epoch: Option<u64>,
) -> exporter::Result<ExportResponse> {
    let entry = ExportEntry::parse(spec).expect("spec");
    let context = ExportContext {
        source_date_epoch: epoch,
        now: 1_800_000_000,
        state_dir: None,
    };
    exporter::export(store, &entry, output, &context, &mut std::io::sink())
}

fn store(fixture: &Fixture, name: &str) -> Store {
    Store::open(fixture.root.join(name)).expect("store")
}

/// Where the tree came from decides who owns it: image layers keep the real owners, a local
/// export belongs to the user who ran bake (as buildx writes it on the client).
#[derive(Clone, Copy, PartialEq)]
enum Owners {
    Kept,
    Exporter,
}

fn check_unpacked(rootfs: &Path, owners: Owners) {
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/hello")).expect("hello"),
        "hello\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/new")).expect("new"),
        "new\n"
    );
    assert!(
        !rootfs.join("etc/remove-me").exists(),
        "the deletion is applied"
    );
    let tool = fs::metadata(rootfs.join("bin/tool")).expect("tool");
    assert_eq!(tool.mode() & 0o7777, 0o755);
    if rustix::process::geteuid().is_root() {
        let expected = match owners {
            Owners::Kept => (1000, 1000),
            Owners::Exporter => (0, 0),
        };
        assert_eq!((tool.uid(), tool.gid()), expected);
    }
    let data = fs::metadata(rootfs.join("data")).expect("data");
    assert_eq!(data.mode() & 0o7777, 0o700);
    assert_eq!(
        fs::read_link(rootfs.join("link")).expect("link"),
        Path::new("etc/hello")
    );
    let hello = fs::metadata(rootfs.join("etc/hello")).expect("hello");
    let hard = fs::metadata(rootfs.join("etc/hello-hard")).expect("hard");
    assert_eq!(hello.ino(), hard.ino(), "the hard link survives");
}

fn manifest_of(store: &Store, response: &ExportResponse) -> Value {
    let digest: bake::digest::Digest = response.metadata["containerimage.digest"]
        .as_str()
        .expect("digest")
        .parse()
        .expect("digest");
    serde_json::from_slice(&store.read(&digest).expect("manifest")).expect("json")
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|layer| layer["digest"].as_str().expect("digest").to_owned())
        .collect()
}

#[test]
fn oci_archive_is_read_by_skopeo() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let dest = fixture.root.join("image.tar");
    let response = export_with(
        &store,
        &format!("type=oci,dest={},name=example.com/app:1", dest.display()),
        &single(&fixture),
        Some(EPOCH),
    )
    .expect("export");
    let metadata = &response.metadata;
    assert_eq!(metadata["image.name"], "example.com/app:1");
    let descriptor = &metadata["containerimage.descriptor"];
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(descriptor["digest"], metadata["containerimage.digest"]);
    assert_eq!(
        descriptor["annotations"]["config.digest"],
        metadata["containerimage.config.digest"]
    );
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let manifest = manifest_of(&store, &response);
    let listing = run(Command::new("tar").arg("-tf").arg(&dest));
    assert!(listing.lines().any(|l| l == "oci-layout"));
    assert!(listing.lines().any(|l| l == "index.json"));
    if !tool("skopeo") {
        return;
    }
    let inspect: Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", dest.display()))))
    .expect("json");
    assert_eq!(inspect["Layers"].as_array().expect("layers").len(), 2);
    assert_eq!(
        inspect["Layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l.as_str().expect("digest").to_owned())
            .collect::<Vec<_>>(),
        layer_digests(&manifest)
    );
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Created"], "2023-11-14T22:13:20Z");
    let config: Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(format!("oci-archive:{}", dest.display()))))
    .expect("json");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().expect("ids").len(),
        2
    );
    assert_eq!(config["history"].as_array().expect("history").len(), 3);
    assert_eq!(config["config"]["Cmd"][0], "/bin/tool");
}

#[test]
fn oci_directory_unpacks_with_umoci() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let dest = fixture.root.join("layout");
    export_with(
        &store,
        &format!("type=oci,tar=false,dest={},name=app:v1", dest.display()),
        &single(&fixture),
        None,
    )
    .expect("export");
    let index: Value =
        serde_json::from_slice(&fs::read(dest.join("index.json")).expect("index")).expect("json");
    let annotations = &index["manifests"][0]["annotations"];
    assert_eq!(
        annotations["io.containerd.image.name"],
        "docker.io/library/app:v1"
    );
    assert_eq!(annotations["org.opencontainers.image.ref.name"], "v1");
    assert!(annotations.get("config.digest").is_none());
    assert_eq!(index["manifests"][0]["platform"]["os"], "linux");
    if tool("skopeo") {
        let inspect: Value = serde_json::from_str(&run(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:v1", dest.display()))))
        .expect("json");
        assert_eq!(inspect["Layers"].as_array().expect("layers").len(), 2);
    }
    if !tool("umoci") {
        return;
    }
    let bundle = fixture.root.join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:v1", dest.display()))
        .arg(&bundle));
    check_unpacked(&bundle.join("rootfs"), Owners::Kept);
}

#[test]
fn docker_archive_is_read_by_skopeo() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let dest = fixture.root.join("docker.tar");
    let response = export_with(
        &store,
        &format!(
            "type=docker,dest={},name=me/app,oci-mediatypes=false",
            dest.display()
        ),
        &single(&fixture),
        Some(EPOCH),
    )
    .expect("export");
    let manifest = manifest_of(&store, &response);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let unpacked = fixture.root.join("docker");
    fs::create_dir(&unpacked).expect("dir");
    run(Command::new("tar")
        .arg("-xf")
        .arg(&dest)
        .arg("-C")
        .arg(&unpacked));
    let docker_manifest: Value =
        serde_json::from_slice(&fs::read(unpacked.join("manifest.json")).expect("manifest.json"))
            .expect("json");
    assert_eq!(docker_manifest[0]["RepoTags"][0], "me/app:latest");
    assert_eq!(
        docker_manifest[0]["Layers"]
            .as_array()
            .expect("layers")
            .len(),
        2
    );
    assert!(unpacked.join("oci-layout").is_file());
    if !tool("skopeo") {
        return;
    }
    let inspect: Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", dest.display()))))
    .expect("json");
    assert_eq!(inspect["Layers"].as_array().expect("layers").len(), 2);
    assert_eq!(inspect["Architecture"], "amd64");
}

#[test]
fn docker_exporter_rejects_several_platforms() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let output = BuildOutput {
        lazy: None,
        platforms: vec![
            platform_output(&fixture, platform("linux/amd64")),
            platform_output(&fixture, platform("linux/arm64")),
        ],
    };
    let dest = fixture.root.join("docker.tar");
    let error = export_with(
        &store,
        &format!("type=docker,dest={}", dest.display()),
        &output,
        None,
    )
    .expect_err("manifest list");
    assert!(error.to_string().contains("manifest lists"));
    assert!(!dest.exists());
}

#[test]
fn multi_platform_oci_has_an_index() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let output = BuildOutput {
        lazy: None,
        platforms: vec![
            platform_output(&fixture, platform("linux/amd64")),
            platform_output(&fixture, platform("linux/arm64")),
        ],
    };
    let dest = fixture.root.join("layout");
    let response = export_with(
        &store,
        &format!(
            "type=oci,tar=false,dest={},annotation-index.org.opencontainers.image.title=multi",
            dest.display()
        ),
        &output,
        Some(EPOCH),
    )
    .expect("export");
    let index = manifest_of(&store, &response);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.title"],
        "multi"
    );
    let platforms: Vec<_> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            m["platform"]["architecture"]
                .as_str()
                .expect("arch")
                .to_owned()
        })
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    assert!(
        !response
            .metadata
            .contains_key("containerimage.config.digest")
    );
    if tool("skopeo") {
        let raw: Value = serde_json::from_str(&run(Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci:{}", dest.display()))))
        .expect("json");
        assert_eq!(raw["manifests"].as_array().expect("manifests").len(), 2);
    }
}

#[test]
fn compression_choices_produce_valid_images() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    for (compression, media_type) in [
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("uncompressed", "application/vnd.oci.image.layer.v1.tar"),
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
    ] {
        let dest = fixture.root.join(format!("{compression}.tar"));
        let response = export_with(
            &store,
            &format!(
                "type=oci,dest={},compression={compression},compression-level=1",
                dest.display()
            ),
            &single(&fixture),
            Some(EPOCH),
        )
        .expect("export");
        let manifest = manifest_of(&store, &response);
        assert_eq!(manifest["layers"][0]["mediaType"], media_type);
        if compression == "uncompressed" {
            let config: bake::digest::Digest = manifest["config"]["digest"]
                .as_str()
                .expect("digest")
                .parse()
                .expect("digest");
            let config: Value =
                serde_json::from_slice(&store.read(&config).expect("config")).expect("json");
            // Uncompressed layers: the blob digest is the diff_id.
            assert_eq!(
                config["rootfs"]["diff_ids"][0],
                manifest["layers"][0]["digest"]
            );
        }
        if tool("skopeo") {
            run(Command::new("skopeo")
                .arg("inspect")
                .arg(format!("oci-archive:{}", dest.display())));
        }
    }
    let error = export_with(
        &store,
        "type=oci,dest=x.tar,compression=lz4",
        &single(&fixture),
        None,
    )
    .expect_err("unknown compression");
    assert!(error.to_string().contains("`lz4`"), "{error}");
}

#[test]
fn same_inputs_with_source_date_epoch_give_the_same_digest() {
    let first = fixture();
    // Built a second later, so every mtime differs unless rewrite-timestamp clamps it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = fixture();
    let spec = |fixture: &Fixture| {
        format!(
            "type=oci,dest={},rewrite-timestamp=true",
            fixture.root.join("out.tar").display()
        )
    };
    let a = export_with(
        &store(&first, "a"),
        &spec(&first),
        &single(&first),
        Some(EPOCH),
    )
    .expect("first");
    let b = export_with(
        &store(&second, "b"),
        &spec(&second),
        &single(&second),
        Some(EPOCH),
    )
    .expect("second");
    assert_eq!(
        a.metadata["containerimage.digest"],
        b.metadata["containerimage.digest"]
    );
    assert_eq!(
        fs::read(first.root.join("out.tar")).expect("a"),
        fs::read(second.root.join("out.tar")).expect("b"),
        "the archives are byte-identical"
    );
    // Without rewrite-timestamp the layer mtimes differ, and so does the digest.
    let c = export_with(
        &store(&second, "c"),
        &format!("type=oci,dest={}", second.root.join("c.tar").display()),
        &single(&second),
        Some(EPOCH),
    )
    .expect("third");
    assert_ne!(
        a.metadata["containerimage.digest"],
        c.metadata["containerimage.digest"]
    );
}

#[test]
fn tar_output_lists_the_tree() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let dest = fixture.root.join("rootfs.tar");
    export_with(
        &store,
        &format!("type=tar,dest={}", dest.display()),
        &single(&fixture),
        Some(EPOCH),
    )
    .expect("export");
    let listing = run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("--full-time")
        .arg("-tvf")
        .arg(&dest));
    let names: Vec<&str> = listing
        .lines()
        .map(|line| line.split_whitespace().nth(5).expect("name"))
        .collect();
    for expected in ["bin/tool", "etc/hello", "etc/new", "link", "data"] {
        assert!(
            names.iter().any(|n| n.trim_end_matches('/') == expected),
            "{expected} in {listing}"
        );
    }
    assert!(!names.iter().any(|n| n.contains("remove-me")), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("lrwxrwxrwx") && l.contains("link -> etc/hello"))
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("hrw") && l.contains("link to etc/hello"))
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.contains("bin/tool"))
    );
    assert!(
        listing.lines().all(|l| l.contains("2023-11-14 22:13:20")),
        "{listing}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
}

#[test]
fn local_output_copies_the_tree_per_platform() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let dest = fixture.root.join("out");
    export_with(
        &store,
        &format!("type=local,dest={}", dest.display()),
        &single(&fixture),
        None,
    )
    .expect("export");
    check_unpacked(&dest, Owners::Exporter);

    let split = fixture.root.join("split");
    let output = BuildOutput {
        lazy: None,
        platforms: vec![
            platform_output(&fixture, platform("linux/amd64")),
            platform_output(&fixture, platform("linux/arm/v7")),
        ],
    };
    export_with(
        &store,
        &format!("type=local,dest={}", split.display()),
        &output,
        Some(EPOCH),
    )
    .expect("export");
    check_unpacked(&split.join("linux_amd64"), Owners::Exporter);
    check_unpacked(&split.join("linux_arm_v7"), Owners::Exporter);
    let mtime = fs::symlink_metadata(split.join("linux_arm_v7/etc/new"))
        .expect("new")
        .mtime();
    assert_eq!(mtime, EPOCH as i64);
}

#[test]
fn local_output_never_writes_through_existing_symlinks() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let dest = fixture.root.join("out");
    let outside = fixture.root.join("outside");
    fs::create_dir_all(&dest).expect("dest");
    fs::create_dir_all(&outside).expect("outside");
    symlink(&outside, dest.join("etc")).expect("symlink");
    export_with(
        &store,
        &format!("type=local,dest={}", dest.display()),
        &single(&fixture),
        None,
    )
    .expect("export");
    assert_eq!(fs::read_dir(&outside).expect("outside").count(), 0);
    check_unpacked(&dest, Owners::Exporter);
}

#[test]
fn failing_export_leaves_no_partial_output() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let out = fixture.root.join("outputs");
    fs::create_dir(&out).expect("outputs");
    let mut output = single(&fixture);
    output.platforms[0]
        .layers
        .push(Layer::Tar(fixture.root.join("missing.tar")));
    for kind in ["oci", "docker"] {
        let dest = out.join(format!("{kind}.tar"));
        let error = export_with(
            &store,
            &format!("type={kind},dest={}", dest.display()),
            &output,
            None,
        )
        .expect_err("missing layer");
        assert!(error.to_string().contains("missing.tar"), "{error}");
    }
    let mut broken = single(&fixture);
    broken.platforms[0].rootfs = fixture.root.join("no-such-rootfs");
    for kind in ["tar", "local"] {
        let dest = out.join(format!("{kind}-out"));
        export_with(
            &store,
            &format!("type={kind},dest={}", dest.display()),
            &broken,
            None,
        )
        .expect_err("missing rootfs");
    }
    let left: Vec<_> = fs::read_dir(&out)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn cacheonly_and_unknown_types() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let response =
        export_with(&store, "type=cacheonly", &single(&fixture), None).expect("cacheonly");
    assert!(response.metadata.is_empty());
    let error = export_with(&store, "type=s3,dest=x", &single(&fixture), None).expect_err("s3");
    assert!(
        error
            .to_string()
            .starts_with("unknown output type `s3`: the types are `local`"),
        "{error}"
    );
}

#[test]
fn stored_layers_are_reused_unless_forced() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let first = export_with(
        &store,
        &format!("type=oci,dest={}", fixture.root.join("a.tar").display()),
        &single(&fixture),
        Some(EPOCH),
    )
    .expect("first");
    let manifest = manifest_of(&store, &first);
    let config_digest: bake::digest::Digest = manifest["config"]["digest"]
        .as_str()
        .expect("digest")
        .parse()
        .expect("digest");
    let config: Value =
        serde_json::from_slice(&store.read(&config_digest).expect("config")).expect("json");
    let base: bake::oci::Descriptor =
        serde_json::from_value(manifest["layers"][0].clone()).expect("descriptor");
    let diff_id = config["rootfs"]["diff_ids"][0]
        .as_str()
        .expect("diff id")
        .to_owned();
    let mut output = single(&fixture);
    output.platforms[0].layers[0] = Layer::Blob {
        descriptor: base.clone(),
        diff_id: diff_id.clone(),
    };

    let reused = export_with(
        &store,
        &format!("type=oci,dest={}", fixture.root.join("b.tar").display()),
        &output,
        Some(EPOCH),
    )
    .expect("reused");
    assert_eq!(
        reused.metadata["containerimage.digest"],
        first.metadata["containerimage.digest"]
    );

    let zstd = export_with(
        &store,
        "type=oci,dest=-,compression=zstd",
        &output,
        Some(EPOCH),
    )
    .expect("zstd");
    let zstd = manifest_of(&store, &zstd);
    assert_eq!(zstd["layers"][0]["digest"], base.digest.to_string());
    assert_eq!(
        zstd["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    let dest = fixture.root.join("forced.tar");
    let forced = export_with(
        &store,
        &format!(
            "type=oci,dest={},compression=zstd,force-compression=true",
            dest.display()
        ),
        &output,
        Some(EPOCH),
    )
    .expect("forced");
    let forced = manifest_of(&store, &forced);
    assert_ne!(forced["layers"][0]["digest"], base.digest.to_string());
    assert_eq!(
        forced["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    if tool("skopeo") {
        let config: Value = serde_json::from_str(&run(Command::new("skopeo")
            .arg("inspect")
            .arg("--config")
            .arg(format!("oci-archive:{}", dest.display()))))
        .expect("json");
        assert_eq!(config["rootfs"]["diff_ids"][0], diff_id.as_str());
    }

    let mut missing = output.clone();
    missing.platforms[0].layers[0] = Layer::Blob {
        descriptor: bake::oci::Descriptor {
            digest: bake::digest::Digest::from_bytes([0; 32]),
            ..base
        },
        diff_id,
    };
    let error = export_with(&store, "type=oci,dest=-", &missing, None).expect_err("missing blob");
    assert!(
        error.to_string().contains("not in the content store"),
        "{error}"
    );
}

#[test]
fn dash_destination_streams_to_the_given_writer() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let context = ExportContext {
        source_date_epoch: Some(EPOCH),
        now: 0,
        state_dir: None,
    };
    for spec in ["type=tar,dest=-", "type=oci,dest=-", "-"] {
        let entry = ExportEntry::parse(spec).expect("spec");
        let mut stdout = Vec::new();
        exporter::export(&store, &entry, &single(&fixture), &context, &mut stdout).expect("export");
        let mut archive = tar::Archive::new(stdout.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        let expected = if spec.contains("oci") {
            "oci-layout"
        } else {
            "etc/new"
        };
        assert!(names.iter().any(|n| n == expected), "{spec}: {names:?}");
    }
}

#[test]
fn annotations_reach_the_manifest_and_descriptors() {
    let fixture = fixture();
    let store = store(&fixture, "store");
    let dest = fixture.root.join("layout");
    let response = export_with(
        &store,
        &format!(
            "type=oci,tar=false,dest={},\
             annotation.org.opencontainers.image.title=app,\
             annotation-manifest-descriptor.org.opencontainers.image.vendor=me,\
             annotation-index-descriptor.com.example.layout=yes",
            dest.display()
        ),
        &single(&fixture),
        Some(EPOCH),
    )
    .expect("export");
    let manifest = manifest_of(&store, &response);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "app"
    );
    let descriptor = &response.metadata["containerimage.descriptor"];
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.vendor"],
        "me"
    );
    let index: Value =
        serde_json::from_slice(&fs::read(dest.join("index.json")).expect("index")).expect("json");
    assert_eq!(
        index["manifests"][0]["annotations"]["com.example.layout"],
        "yes"
    );
    let error = export_with(
        &store,
        "type=oci,dest=-,annotation-index.k=v",
        &single(&fixture),
        None,
    )
    .expect_err("index annotation on one platform");
    assert!(error.to_string().contains("single platform"), "{error}");
}
