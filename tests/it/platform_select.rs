//! One platform-selection rule for every base: the same two-entry index, served by a registry
//! and as an `oci-layout://` directory, gives a build the same base manifest. The index lists
//! `linux/amd64` (no variant) first and `linux/amd64/v2` second with different content; a
//! `linux/amd64/v2` build must take the exact variant from both.

use std::path::Path;

use bake::content::Store;
use bake::digest::Digest;
use bake::registry::{Client, ClientOptions, Reference};
use serde_json::{Value, json};

use crate::support;
use crate::support::registry::TestRegistry;

/// A blob with its media type.
struct Blob {
    media_type: &'static str,
    bytes: Vec<u8>,
}

impl Blob {
    fn json(media_type: &'static str, value: &Value) -> Self {
        Self {
            media_type,
            bytes: serde_json::to_vec(value).unwrap(),
        }
    }

    fn digest(&self) -> Digest {
        Digest::of(&self.bytes)
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest().to_string(),
            "size": self.bytes.len(),
        })
    }
}

/// One single-layer image whose only file, `/which`, holds `which`.
struct Image {
    layer: Blob,
    config: Blob,
    manifest: Blob,
}

fn image(which: &str, variant: Option<&str>) -> Image {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(which.len() as u64);
    header.set_mtime(0);
    builder
        .append_data(&mut header, "which", which.as_bytes())
        .unwrap();
    let layer = Blob {
        media_type: "application/vnd.oci.image.layer.v1.tar",
        bytes: builder.into_inner().unwrap(),
    };
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest().to_string()]},
    });
    if let Some(variant) = variant {
        config["variant"] = variant.into();
    }
    let config = Blob::json("application/vnd.oci.image.config.v1+json", &config);
    let manifest = Blob::json(
        "application/vnd.oci.image.manifest.v1+json",
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        }),
    );
    Image {
        layer,
        config,
        manifest,
    }
}

/// The index: the loose `linux/amd64` entry first, the exact `linux/amd64/v2` one second.
fn index(loose: &Image, exact: &Image) -> Blob {
    let entry = |image: &Image, platform: Value| {
        let mut descriptor = image.manifest.descriptor();
        descriptor["platform"] = platform;
        descriptor
    };
    Blob::json(
        "application/vnd.oci.image.index.v1+json",
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                entry(loose, json!({"architecture": "amd64", "os": "linux"})),
                entry(exact, json!({"architecture": "amd64", "os": "linux", "variant": "v2"})),
            ],
        }),
    )
}

/// Writes the images as a layout whose `index.json` is the two-entry index itself.
fn write_layout(dir: &Path, images: &[&Image], index: &Blob) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for image in images {
        for blob in [&image.layer, &image.config, &image.manifest] {
            std::fs::write(blobs.join(blob.digest().hex()), &blob.bytes).unwrap();
        }
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), &index.bytes).unwrap();
}

/// Pushes the images, then the index under `target`'s tag.
fn push(scratch: &Path, target: &Reference, images: &[&Image], index: &Blob) {
    let client = Client::new(ClientOptions {
        docker_config: Some(scratch.join("no-config.json")),
        ..ClientOptions::default()
    })
    .unwrap();
    let store = Store::open(scratch.join("seed")).unwrap();
    for image in images {
        for blob in [&image.layer, &image.config] {
            let digest = store.write(&blob.bytes).unwrap();
            client
                .push_blob(target, &digest, blob.bytes.len() as u64, &store, None)
                .unwrap();
        }
        client
            .push_manifest(
                &target.with_digest(image.manifest.digest()),
                image.manifest.media_type,
                &image.manifest.bytes,
            )
            .unwrap();
    }
    client
        .push_manifest(target, index.media_type, &index.bytes)
        .unwrap();
}

/// Builds `FROM base` + `COPY` for `linux/amd64/v2` with `base` as the named context, exports
/// an OCI layout directory and returns the digest of its first (base) layer.
fn build_and_read_base_layer(scratch: &Path, name: &str, base: &str) -> String {
    let dir = scratch.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM base\nCOPY added /added\n").unwrap();
    std::fs::write(dir.join("added"), "from the context\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  contexts = {{ base = \"{base}\" }}\n  \
             platforms = [\"linux/amd64/v2\"]\n  output = [\"type=oci,dest=out,tar=false\"]\n}}\n"
        ),
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        scratch.join(format!("{name}-state")).display().to_string(),
    ];
    let output = support::bake(&dir, &args, &[], None);
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read =
        |path: &Path| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let out = dir.join("out");
    let index = read(&out.join("index.json"));
    let manifest_digest: Digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let manifest = read(&out.join("blobs/sha256").join(manifest_digest.hex()));
    manifest["layers"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn registry_and_oci_layout_bases_pick_the_same_manifest_from_one_index() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let loose = image("loose\n", None);
    let exact = image("exact\n", Some("v2"));
    let index = index(&loose, &exact);
    let layout = scratch.path().join("layout");
    write_layout(&layout, &[&loose, &exact], &index);
    let target: Reference = format!("{}/pick:latest", registry.host).parse().unwrap();
    push(scratch.path(), &target, &[&loose, &exact], &index);

    let from_layout = build_and_read_base_layer(
        scratch.path(),
        "layout-build",
        &format!("oci-layout://{}", layout.display()),
    );
    let from_registry = build_and_read_base_layer(
        scratch.path(),
        "registry-build",
        &format!("docker-image://{target}"),
    );

    let wanted = exact.layer.digest().to_string();
    assert_eq!(from_layout, wanted, "the layout base is the exact variant");
    assert_eq!(
        from_registry, wanted,
        "the registry base is the exact variant"
    );
    assert_ne!(loose.layer.digest().to_string(), wanted);
}
