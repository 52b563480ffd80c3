//! The `image` and `registry` exporters against a real `docker-registry`: several names,
//! multi-platform indexes, `push-by-digest`, `oci-mediatypes=false`, store-only images, and
//! the metadata buildx writes to `--metadata-file`.

use std::path::{Path, PathBuf};
use std::process::Command;

use bake::buildflags::ExportEntry;
use bake::content::Store;
use bake::digest::Digest;
use bake::exporter::{self, BuildOutput, ExportContext, ExportResponse, Layer, PlatformOutput};
use bake::oci::Image;
use bake::platform::Platform;
use bake::registry::{Client, ClientOptions, Reference};

use crate::support::find_in_path;
use crate::support::registry::TestRegistry;

fn output(root: &Path, platforms: &[&str]) -> BuildOutput {
    let platforms = platforms
        .iter()
        .map(|text| {
            let platform: Platform = text.parse().unwrap();
            let tree = root.join(text.replace('/', "_"));
            std::fs::create_dir_all(tree.join("etc")).unwrap();
            std::fs::write(tree.join("etc/platform"), text).unwrap();
            PlatformOutput {
                platform: platform.clone(),
                rootfs: tree.clone(),
                layers: vec![Layer::Diff {
                    lower: None,
                    upper: tree,
                }],
                image: Image::empty(&platform),
                inline_cache: None,
            }
        })
        .collect();
    BuildOutput {
        platforms,
        lazy: None,
    }
}

fn options(config_dir: &Path) -> ClientOptions {
    ClientOptions {
        docker_config: Some(config_dir.join("config.json")),
        ..ClientOptions::default()
    }
}

fn export(
    store: &Store,
    spec: &str,
    output: &BuildOutput,
    config_dir: &Path,
) -> exporter::Result<ExportResponse> {
    let entry = ExportEntry::parse(spec).unwrap();
    let context = ExportContext {
        source_date_epoch: Some(1_700_000_000),
        now: 1_800_000_000,
        state_dir: None,
    };
    exporter::export_with_registry(
        store,
        &entry,
        output,
        &context,
        &options(config_dir),
        &mut std::io::sink(),
    )
}

fn metadata_digest(response: &ExportResponse) -> String {
    response.metadata["containerimage.digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn skopeo_raw(reference: &str) -> Option<Vec<u8>> {
    find_in_path("skopeo")?;
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
    Some(output.stdout)
}

struct Setup {
    registry: TestRegistry,
    dir: tempfile::TempDir,
    store: Store,
}

fn setup() -> Option<Setup> {
    let registry = TestRegistry::start()?;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("root")).unwrap();
    Some(Setup {
        registry,
        dir,
        store,
    })
}

impl Setup {
    fn client(&self) -> Client {
        Client::new(options(self.dir.path())).unwrap()
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

#[test]
fn image_push_with_several_names_reports_the_pushed_digest() {
    let Some(setup) = setup() else { return };
    let host = &setup.registry.host;
    let built = output(&setup.path().join("tree"), &["linux/amd64"]);
    let response = export(
        &setup.store,
        &format!("type=image,\"name={host}/app:1,{host}/other:2\",push=true"),
        &built,
        &setup.path(),
    )
    .unwrap();
    let digest = metadata_digest(&response);
    assert_eq!(
        response.metadata["image.name"],
        format!("{host}/app:1,{host}/other:2")
    );
    assert!(
        response
            .metadata
            .contains_key("containerimage.config.digest")
    );
    for name in ["app:1", "other:2"] {
        if let Some(raw) = skopeo_raw(&format!("{host}/{name}")) {
            assert_eq!(Digest::of(&raw).to_string(), digest, "{name}");
        }
    }
    assert!(
        setup.registry.count_requests("mount=") >= 1,
        "the second name mounts blobs from the first: {}",
        setup.registry.log()
    );
    let pinned: Reference = format!("{host}/app@{digest}").parse().unwrap();
    let fresh = Store::open(setup.path().join("pulled")).unwrap();
    let pulled = setup
        .client()
        .pull(&pinned, &"linux/amd64".parse().unwrap(), &fresh)
        .unwrap();
    assert_eq!(pulled.manifest.digest.to_string(), digest);
}

#[test]
fn registry_output_pushes_a_multi_platform_docker_manifest_list() {
    let Some(setup) = setup() else { return };
    let host = &setup.registry.host;
    let built = output(&setup.path().join("tree"), &["linux/amd64", "linux/arm64"]);
    let response = export(
        &setup.store,
        &format!("type=registry,name={host}/multi:1,oci-mediatypes=false"),
        &built,
        &setup.path(),
    )
    .unwrap();
    let target: Reference = format!("{host}/multi:1").parse().unwrap();
    let client = setup.client();
    for platform in ["linux/amd64", "linux/arm64"] {
        let resolved = client
            .resolve_image(&target, &platform.parse().unwrap())
            .unwrap();
        assert_eq!(resolved.root.digest.to_string(), metadata_digest(&response));
        assert_eq!(
            resolved.root.media_type,
            "application/vnd.docker.distribution.manifest.list.v2+json"
        );
        let fresh = Store::open(setup.path().join(platform.replace('/', "_"))).unwrap();
        let pulled = client
            .pull(&target, &platform.parse().unwrap(), &fresh)
            .unwrap();
        assert_eq!(pulled.image.platform().to_string(), platform);
    }
}

#[test]
fn push_by_digest_leaves_no_tag() {
    let Some(setup) = setup() else { return };
    let host = &setup.registry.host;
    let built = output(&setup.path().join("tree"), &["linux/amd64"]);
    let response = export(
        &setup.store,
        &format!("type=image,name={host}/bydigest,push=true,push-by-digest=true"),
        &built,
        &setup.path(),
    )
    .unwrap();
    let client = setup.client();
    let tagged: Reference = format!("{host}/bydigest:latest").parse().unwrap();
    assert!(client.resolve(&tagged).is_err());
    let pinned: Reference = format!("{host}/bydigest@{}", metadata_digest(&response))
        .parse()
        .unwrap();
    assert!(client.resolve(&pinned).is_ok());
}

#[test]
fn image_without_push_stays_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("root")).unwrap();
    let built = output(&dir.path().join("tree"), &["linux/amd64"]);
    let response = export(&store, "type=image,name=local/app:1", &built, dir.path()).unwrap();
    let client = Client::new(options(dir.path())).unwrap();
    let reference: Reference = "local/app:1".parse().unwrap();
    // No registry exists: the image can only come from the store.
    let image = bake::source::image::pull(
        &client,
        &store,
        &reference,
        &"linux/amd64".parse().unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(image.root.digest.to_string(), metadata_digest(&response));

    let error = export(&store, "type=image,push=true", &built, dir.path()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("tag is needed when pushing to registry"),
        "{error}"
    );
}
