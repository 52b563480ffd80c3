//! Graph snapshots: every `fixtures/dockerfile/<case>/Dockerfile` is converted for
//! `linux/amd64` and the resulting definition and image config are snapshotted as JSON, so any
//! change in lowering or in the digest encoding shows up in review. Image history is also
//! checked through a real build (`created_by` texts and `created` times as BuildKit writes them).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bake::diag::SourceFile;
use bake::frontend::dockerfile::{
    ConvertOptions, ImageResolver, NamedContext, ResolvedImage, convert,
};
use bake::oci;
use bake::platform::Platform;

/// A resolver standing in for a registry: a few known images with fixed configs.
struct FakeResolver;

impl ImageResolver for FakeResolver {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, String> {
        let mut image = oci::Image::empty(platform);
        image.config.env = vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_owned()];
        match reference {
            "docker.io/library/onbuild-base:latest" => {
                image.config.on_build = Some(vec![
                    "COPY app.txt /app/".to_owned(),
                    "RUN echo triggered".to_owned(),
                ]);
            }
            "docker.io/library/with-workdir:latest" => {
                image.config.working_dir = Some("/srv".to_owned());
                image.config.user = Some("nobody".to_owned());
                image.config.cmd = Some(vec!["serve".to_owned()]);
            }
            "docker.io/library/broken:latest" => return Err("manifest unknown".to_owned()),
            // The base image of the build conformance suite (busybox installed into scratch).
            "docker.io/bake-test/busybox:latest" => {
                image.config.env = vec!["PATH=/bin".to_owned()];
                image.config.cmd = Some(vec!["/bin/sh".to_owned()]);
                image.history = [
                    ("COPY busybox /bin/busybox # buildkit", false),
                    ("RUN /bin/busybox --install -s /bin # buildkit", false),
                    ("ENV PATH=/bin", true),
                    ("CMD [\"/bin/sh\"]", true),
                ]
                .into_iter()
                .map(|(created_by, empty_layer)| oci::History {
                    created_by: Some(created_by.to_owned()),
                    comment: Some("buildkit.dockerfile.v0".to_owned()),
                    empty_layer,
                    ..oci::History::default()
                })
                .collect();
            }
            _ => {}
        }
        // One pinned image shows how a resolved digest ends up in the source identifier.
        let digest = (reference == "docker.io/library/golang:1.22")
            .then(|| bake::digest::Digest::of(b"golang manifest"));
        Ok(Some(ResolvedImage { digest, image }))
    }
}

/// Reads `KEY=VALUE` lines of an optional `options` file next to the Dockerfile:
/// `target=`, `platform=`, `arg:NAME=`, `context:NAME=` (`docker-image://`, `target:`, `local:`).
fn options_for(dir: &Path) -> ConvertOptions {
    let linux = || "linux/amd64".parse::<Platform>().expect("valid platform");
    let mut options = ConvertOptions {
        build_platform: Some(linux()),
        target_platform: Some(linux()),
        resolver: Some(Arc::new(FakeResolver)),
        ..ConvertOptions::default()
    };
    let text = std::fs::read_to_string(dir.join("options")).unwrap_or_default();
    let mut contexts = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line.split_once('=').expect("KEY=VALUE");
        let value = value.to_owned();
        if let Some(name) = key.strip_prefix("arg:") {
            options.build_args.insert(name.to_owned(), value);
        } else if let Some(name) = key.strip_prefix("context:") {
            let context = if let Some(reference) = value.strip_prefix("docker-image://") {
                NamedContext::Image {
                    reference: reference.to_owned(),
                }
            } else if let Some(target) = value.strip_prefix("target:") {
                NamedContext::Target {
                    name: target.to_owned(),
                }
            } else if let Some(path) = value.strip_prefix("oci-layout://") {
                let (path, reference) = match path.split_once(':') {
                    Some((path, tag)) => (path.to_owned(), Some(tag.to_owned())),
                    None => (path.to_owned(), None),
                };
                NamedContext::OciLayout { path, reference }
            } else {
                NamedContext::Local {
                    name: value.trim_start_matches("local:").to_owned(),
                }
            };
            contexts.insert(name.to_owned(), context);
        } else if key == "target" {
            options.target = Some(value);
        } else if key == "platform" {
            options.target_platform = Some(value.parse().expect("valid platform"));
        } else if let Some(name) = key.strip_prefix("label:") {
            options.labels.insert(name.to_owned(), value);
        } else {
            panic!("unknown option `{key}`");
        }
    }
    options.named_contexts = contexts;
    options
}

#[test]
fn dockerfile_graphs() {
    insta::glob!("../../fixtures", "dockerfile/*/Dockerfile", |path| {
        let dir = path.parent().expect("case folder");
        let text = std::fs::read_to_string(path).expect("readable Dockerfile");
        let file = SourceFile::new("Dockerfile", text);
        let converted = match convert(&file, &options_for(dir)) {
            Ok(converted) => converted,
            Err(error) => panic!("{}", bake::diag::render(&error)),
        };
        insta::assert_json_snapshot!(converted);
    });
}

#[test]
fn digests_are_stable_across_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dockerfile/multi-stage");
    let text = std::fs::read_to_string(dir.join("Dockerfile")).expect("fixture exists");
    let file = SourceFile::new("Dockerfile", text);
    let first = convert(&file, &options_for(&dir)).expect("converts");
    let second = convert(&file, &options_for(&dir)).expect("converts");
    assert_eq!(first.definition, second.definition);
    assert!(first.definition.root.is_some());
}

/// The image config and history BuildKit produced for the build conformance cases
/// (`fixtures/dockerfile/buildkit-*/expected-image.json`) must come out of our conversion too.
#[test]
fn image_config_and_history_match_buildkit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dockerfile");
    let mut failures = Vec::new();
    let mut cases = 0;
    for entry in std::fs::read_dir(&root).expect("fixtures exist") {
        let dir = entry.expect("readable entry").path();
        let Ok(expected) = std::fs::read_to_string(dir.join("expected-image.json")) else {
            continue;
        };
        cases += 1;
        let expected: serde_json::Value = serde_json::from_str(&expected).expect("valid JSON");
        let text = std::fs::read_to_string(dir.join("Dockerfile")).expect("readable Dockerfile");
        let converted = convert(&SourceFile::new("Dockerfile", text), &options_for(&dir))
            .unwrap_or_else(|e| panic!("{}", bake::diag::render(&e)));
        let image = serde_json::to_value(&converted.image).expect("serialises");
        let history: Vec<serde_json::Value> = converted
            .image
            .history
            .iter()
            .map(|h| serde_json::json!({"created_by": h.created_by, "empty_layer": h.empty_layer}))
            .collect();
        let actual = serde_json::json!({"config": image["config"], "history": history});
        if actual != expected {
            failures.push(format!(
                "{}:\n  expected {expected}\n  actual   {actual}",
                dir.display()
            ));
        }
    }
    assert!(cases >= 20, "only {cases} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Builds `Dockerfile` text from `FROM scratch` into an OCI layout and returns its config.
fn built_config(dockerfile: &str, env: &[(String, String)]) -> serde_json::Value {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("app");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("a/b.txt"), "b").unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  output = [\"type=oci,dest=layout,tar=false\"]\n}\n",
    )
    .unwrap();
    let args = vec![
        "--root".to_owned(),
        scratch.path().join("state").display().to_string(),
    ];
    let output = crate::support::bake(&dir, &args, env, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |digest: &str| -> serde_json::Value {
        let path = dir.join("layout/blobs").join(digest.replacen(':', "/", 1));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("layout/index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    read(manifest["config"]["digest"].as_str().unwrap())
}

#[test]
fn image_history_is_written_as_buildkit_writes_it() {
    let dockerfile = "FROM scratch\nENV A=1\nCOPY --parents a/b.txt /dst/\n\
        HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://localhost/\n";
    let config = built_config(dockerfile, &[]);
    let history = config["history"].as_array().unwrap();
    let created_by: Vec<&str> = history
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        created_by,
        [
            "ENV A=1",
            "COPY --parents a/b.txt /dst/ # buildkit",
            "HEALTHCHECK &{[\"CMD-SHELL\" \"curl -f http://localhost/\"] \"30s\" \"0s\" \"0s\" \"0s\" '\\x03'}",
        ]
    );
    // Without SOURCE_DATE_EPOCH every entry carries the build time, as the config does.
    for entry in history {
        assert_eq!(entry["created"], config["created"], "{entry}");
    }
    let epoch = [("SOURCE_DATE_EPOCH".to_owned(), "1700000000".to_owned())];
    let config = built_config(dockerfile, &epoch);
    for entry in config["history"].as_array().unwrap() {
        assert_eq!(entry["created"], "2023-11-14T22:13:20Z", "{entry}");
    }
}
