//! One image from several nodes: each node pushed its platforms by digest, and one index
//! listing every node's manifests is written to every name of the output, with bake's
//! registry client. Part of `remote`.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha2::Digest as _;

use crate::oci::{Descriptor, Index, media_types};
use crate::platform::Platform;
use crate::registry::{Client, ClientOptions, HostOptions, Reference};

/// Annotations of the merged index: `annotation-index.*` on the index itself and
/// `annotation-manifest-descriptor.*` on its entries (optionally for one platform).
// Compat: buildx build.extractIndexAnnotations and imagetools Combine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Annotations {
    index: BTreeMap<String, String>,
    descriptors: Vec<(Option<Platform>, String, String)>,
}

impl Annotations {
    /// Reads the annotation keys of an output's attributes.
    pub(crate) fn of(attrs: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut out = Self::default();
        for (key, value) in attrs {
            let Some(rest) = key.strip_prefix("annotation-") else {
                continue;
            };
            let (kind, rest) = rest
                .split_once(['.', '['])
                .map_or((rest, ""), |(kind, _)| (kind, &rest[kind.len()..]));
            let (platform, name) = match rest.strip_prefix('[') {
                Some(qualified) => {
                    let (platform, name) = qualified
                        .split_once("].")
                        .ok_or_else(|| format!("the annotation key `{key}` is malformed"))?;
                    let platform = platform
                        .parse::<Platform>()
                        .map_err(|error| format!("the annotation key `{key}`: {error}"))?;
                    (Some(platform), name)
                }
                None => (None, rest.strip_prefix('.').unwrap_or_default()),
            };
            if name.is_empty() {
                return Err(format!("the annotation key `{key}` names no annotation"));
            }
            match kind {
                "index" => {
                    out.index.insert(name.to_owned(), value.clone());
                }
                "manifest-descriptor" => {
                    out.descriptors
                        .push((platform, name.to_owned(), value.clone()));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// What a node's image exporter says it pushed: the descriptor when the daemon sends one,
/// else a digest taken for an index of unknown size.
// Compat: buildx build.go reads `containerimage.descriptor`, then `containerimage.digest`.
pub(crate) fn pushed(response: &BTreeMap<String, String>) -> Option<Descriptor> {
    if let Some(descriptor) = response
        .get("containerimage.descriptor")
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .and_then(|bytes| serde_json::from_slice::<Descriptor>(&bytes).ok())
    {
        return Some(descriptor);
    }
    let digest = response.get("containerimage.digest")?.parse().ok()?;
    Some(Descriptor::new(
        media_types::DOCKER_MANIFEST_LIST,
        digest,
        0,
    ))
}

/// The index listing every manifest of `sources` (each an index, with its bytes), the same
/// manifest once; and its descriptor. Docker media types when every entry has one, else OCI.
// Compat: buildx imagetools Resolver.Combine (indented JSON, entries in source order).
pub(crate) fn combine(
    sources: &[(Descriptor, Vec<u8>)],
    annotations: &Annotations,
) -> Result<(Vec<u8>, Descriptor), String> {
    let mut manifests: Vec<Descriptor> = Vec::new();
    for (descriptor, bytes) in sources {
        let not_index = |why: String| {
            format!(
                "`{}` is not an image index ({why}); the node was asked for one",
                descriptor.digest
            )
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|error| not_index(error.to_string()))?;
        if !value
            .get("manifests")
            .is_some_and(serde_json::Value::is_array)
        {
            return Err(not_index("it lists no `manifests`".to_owned()));
        }
        let index: Index =
            serde_json::from_value(value).map_err(|error| not_index(error.to_string()))?;
        for entry in index.manifests {
            match manifests.iter_mut().find(|m| m.digest == entry.digest) {
                Some(known) => {
                    if known.media_type.is_empty() {
                        known.media_type = entry.media_type;
                    }
                    if entry.platform.is_some() {
                        known.platform = entry.platform;
                    }
                    known.annotations.extend(entry.annotations);
                }
                None => manifests.push(entry),
            }
        }
    }
    for (platform, name, value) in &annotations.descriptors {
        for manifest in &mut manifests {
            let applies = platform.as_ref().is_none_or(|wanted| {
                manifest
                    .platform
                    .as_ref()
                    .is_some_and(|p| p.to_platform() == wanted.clone().normalize())
            });
            if applies {
                manifest.annotations.insert(name.clone(), value.clone());
            }
        }
    }
    let docker = manifests
        .iter()
        .all(|m| m.media_type.starts_with("application/vnd.docker."));
    let media_type = if docker {
        media_types::DOCKER_MANIFEST_LIST
    } else {
        media_types::OCI_INDEX
    };
    let index = Index {
        schema_version: 2,
        media_type: media_type.to_owned(),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: annotations.index.clone(),
    };
    let bytes =
        go_escaped(&serde_json::to_string_pretty(&index).map_err(|error| error.to_string())?);
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
        .parse()
        .map_err(|_| "the merged index's digest does not parse".to_owned())?;
    let size = bytes.len() as u64;
    Ok((bytes, Descriptor::new(media_type, digest, size)))
}

/// JSON text as Go's `encoding/json` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped
/// (they occur only inside strings, so the text can be rewritten as a whole).
fn go_escaped(json: &str) -> Vec<u8> {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            _ => out.push(c),
        }
    }
    out.into_bytes()
}

/// The repositories of `names` (tags dropped, each once): where the nodes push by digest.
// Compat: buildx build.toRepoOnly.
pub(crate) fn repositories(names: &str) -> Result<String, String> {
    let mut out: Vec<String> = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let reference: Reference = name
            .parse()
            .map_err(|error| format!("the image name `{name}`: {error}"))?;
        if !out.contains(&reference.name()) {
            out.push(reference.name());
        }
    }
    Ok(out.join(","))
}

/// Reads what each node pushed from the repository of the first of `names`, merges it,
/// and pushes the index to every name; returns the index's digest. `insecure` is the
/// output's `registry.insecure` (plain HTTP, no TLS checks for that registry). Blocking.
pub(crate) fn push_merged(
    names: &str,
    insecure: bool,
    pushed: &[Descriptor],
    annotations: &Annotations,
) -> Result<String, String> {
    let references: Vec<Reference> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|name| {
            name.parse::<Reference>()
                .map_err(|error| format!("the image name `{name}`: {error}"))
        })
        .collect::<Result<_, _>>()?;
    let first = references
        .first()
        .ok_or_else(|| "no image name to push to".to_owned())?;
    let mut options = ClientOptions::default();
    if insecure {
        options.hosts.insert(
            first.registry.clone(),
            HostOptions {
                http: true,
                insecure: true,
                ..HostOptions::default()
            },
        );
    }
    let client = Client::new(options).map_err(|error| error.to_string())?;
    let mut sources = Vec::new();
    for descriptor in pushed {
        let resolved = client
            .resolve(&first.with_digest(descriptor.digest))
            .map_err(|error| error.to_string())?;
        sources.push((descriptor.clone(), resolved.bytes));
    }
    let (bytes, index) = combine(&sources, annotations)?;
    for reference in &references {
        let tagged = match &reference.tag {
            Some(_) => reference.clone(),
            None => reference.with_tag("latest"),
        };
        client
            .push_manifest(&tagged, &index.media_type, &bytes)
            .map_err(|error| error.to_string())?;
    }
    Ok(index.digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(media_type: &str, fill: char, platform: &str) -> serde_json::Value {
        let (os, rest) = platform.split_once('/').unwrap();
        let (architecture, variant) = rest
            .split_once('/')
            .map_or((rest, None), |(a, v)| (a, Some(v)));
        let mut platform = serde_json::json!({"architecture": architecture, "os": os});
        if let Some(variant) = variant {
            platform["variant"] = variant.into();
        }
        serde_json::json!({
            "mediaType": media_type,
            "digest": format!("sha256:{}", fill.to_string().repeat(64)),
            "size": 400,
            "platform": platform,
        })
    }

    fn index(entries: &[serde_json::Value]) -> (Descriptor, Vec<u8>) {
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::DOCKER_MANIFEST_LIST,
            "manifests": entries,
        }))
        .unwrap();
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
        (
            Descriptor::new(
                media_types::DOCKER_MANIFEST_LIST,
                digest.parse().unwrap(),
                bytes.len() as u64,
            ),
            bytes,
        )
    }

    #[test]
    fn every_nodes_manifests_go_into_one_index_in_node_order() {
        let amd = descriptor(media_types::DOCKER_MANIFEST, 'a', "linux/amd64");
        let arm = descriptor(media_types::DOCKER_MANIFEST, 'b', "linux/arm/v7");
        let sources = vec![index(std::slice::from_ref(&amd)), index(&[arm, amd])];
        let (bytes, merged) = combine(&sources, &Annotations::default()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\""), "{text}");
        let index: Index = serde_json::from_slice(&bytes).unwrap();
        let platforms: Vec<String> = index
            .manifests
            .iter()
            .map(|m| m.platform.as_ref().unwrap().to_platform().to_string())
            .collect();
        assert_eq!(
            platforms,
            vec!["linux/amd64", "linux/arm/v7"],
            "the same manifest once"
        );
        assert_eq!(merged.media_type, media_types::DOCKER_MANIFEST_LIST);
        assert_eq!(merged.size, bytes.len() as u64);
        assert_eq!(
            merged.digest.to_string(),
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
        );
    }

    #[test]
    fn one_oci_manifest_makes_an_oci_index_and_annotations_land_where_asked() {
        let amd = descriptor(media_types::OCI_MANIFEST, 'a', "linux/amd64");
        let arm = descriptor(media_types::DOCKER_MANIFEST, 'b', "linux/arm64");
        let attrs = BTreeMap::from([
            (
                "annotation-index.org.opencontainers.image.title".to_owned(),
                "t".to_owned(),
            ),
            ("annotation-index.cmp".to_owned(), "a<b".to_owned()),
            (
                "annotation-manifest-descriptor[linux/arm64].note".to_owned(),
                "arm".to_owned(),
            ),
            ("annotation.ignored".to_owned(), "x".to_owned()),
        ]);
        let annotations = Annotations::of(&attrs).unwrap();
        let (bytes, merged) = combine(&[index(&[amd]), index(&[arm])], &annotations).unwrap();
        assert_eq!(merged.media_type, media_types::OCI_INDEX);
        let index: Index = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(index.annotations["org.opencontainers.image.title"], "t");
        assert!(index.manifests[0].annotations.is_empty());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("a<b"), "escaped as Go does: {text}");
        assert!(text.contains(r#""a\u003cb""#), "{text}");
        assert_eq!(index.manifests[1].annotations["note"], "arm");
    }

    #[test]
    fn a_node_result_that_is_not_an_index_is_an_error() {
        let (descriptor, _) = index(&[]);
        let error = combine(
            &[(descriptor, b"{\"config\":1}".to_vec())],
            &Annotations::default(),
        )
        .unwrap_err();
        assert!(error.contains("is not an image index"), "{error}");
    }

    #[test]
    fn names_become_their_repositories_once() {
        assert_eq!(
            repositories("127.0.0.1:5000/app:1,127.0.0.1:5000/app:2,alpine").unwrap(),
            "127.0.0.1:5000/app,docker.io/library/alpine"
        );
        assert!(repositories("UPPER/case").is_err());
    }

    #[test]
    fn the_pushed_descriptor_is_read_from_the_exporter_response() {
        let json = r#"{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":300}"#;
        let response = BTreeMap::from([
            (
                "containerimage.descriptor".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(json),
            ),
            (
                "containerimage.digest".to_owned(),
                format!("sha256:{}", "2".repeat(64)),
            ),
        ]);
        let found = pushed(&response).unwrap();
        assert_eq!(
            (found.media_type.as_str(), found.size),
            (media_types::OCI_INDEX, 300)
        );
        let response = BTreeMap::from([(
            "containerimage.digest".to_owned(),
            format!("sha256:{}", "2".repeat(64)),
        )]);
        let found = pushed(&response).unwrap();
        assert_eq!(found.media_type, media_types::DOCKER_MANIFEST_LIST);
        assert!(pushed(&BTreeMap::new()).is_none());
    }

    /// Debian's `docker-registry` on a free loopback port, killed on drop.
    struct Registry {
        child: std::process::Child,
        host: String,
        _dir: tempfile::TempDir,
    }

    impl Drop for Registry {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn registry() -> Option<Registry> {
        let binary = std::path::Path::new("/usr/bin/docker-registry");
        if !binary.is_file() {
            eprintln!(
                "skipped: `docker-registry` is not installed (apt-get install docker-registry)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            host,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while ureq::get(format!("http://{}/v2/", registry.host))
            .call()
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(registry)
    }

    fn sha256(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
    }

    /// Pushes what one node's `push-by-digest` leaves: a config, a manifest and a
    /// one-entry index, all by digest; returns the index's descriptor.
    fn node_push(client: &Client, repository: &Reference, architecture: &str) -> Descriptor {
        let config = format!(
            r#"{{"architecture":"{architecture}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let host = &repository.registry;
        let started = ureq::post(format!(
            "http://{host}/v2/{}/blobs/uploads/",
            repository.repository
        ))
        .send_empty()
        .unwrap();
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with('/') {
            format!("http://{host}{location}")
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        ureq::put(format!(
            "{location}{separator}digest={}",
            sha256(config.as_bytes())
        ))
        .header("Content-Type", "application/octet-stream")
        .send(config.as_bytes())
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": sha256(config.as_bytes()),
                "size": config.len(),
            },
            "layers": [],
        }))
        .unwrap();
        let manifest_digest = client
            .push_manifest(
                &repository.with_digest(sha256(&manifest).parse().unwrap()),
                media_types::DOCKER_MANIFEST,
                &manifest,
            )
            .unwrap();
        let (descriptor, bytes) = index(&[serde_json::json!({
            "mediaType": media_types::DOCKER_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "platform": {"architecture": architecture, "os": "linux"},
        })]);
        client
            .push_manifest(
                &repository.with_digest(descriptor.digest),
                media_types::DOCKER_MANIFEST_LIST,
                &bytes,
            )
            .unwrap();
        descriptor
    }

    #[test]
    fn what_each_node_pushed_by_digest_becomes_one_index_under_every_name() {
        let Some(registry) = registry() else { return };
        let client = Client::new(ClientOptions::default()).unwrap();
        let repository: Reference = format!("{}/farm/app", registry.host).parse().unwrap();
        let amd = node_push(&client, &repository, "amd64");
        let arm = node_push(&client, &repository, "arm64");
        let names = format!("{0}/farm/app:1,{0}/farm/app:stable", registry.host);
        let digest = push_merged(&names, false, &[amd, arm], &Annotations::default()).unwrap();
        for tag in ["1", "stable"] {
            let resolved = client.resolve(&repository.with_tag(tag)).unwrap();
            assert_eq!(
                sha256(&resolved.bytes),
                digest,
                "{tag} names the merged index"
            );
            assert_eq!(
                resolved.descriptor.media_type,
                media_types::DOCKER_MANIFEST_LIST
            );
            let index: Index = serde_json::from_slice(&resolved.bytes).unwrap();
            let platforms: Vec<String> = index
                .manifests
                .iter()
                .map(|m| m.platform.as_ref().unwrap().to_platform().to_string())
                .collect();
            assert_eq!(platforms, vec!["linux/amd64", "linux/arm64"]);
        }
        // A digest no node pushed is named in the error.
        let missing = Descriptor::new(
            media_types::DOCKER_MANIFEST_LIST,
            format!("sha256:{}", "0".repeat(64)).parse().unwrap(),
            0,
        );
        let error = push_merged(&names, false, &[missing], &Annotations::default()).unwrap_err();
        assert!(error.contains(&"0".repeat(64)), "{error}");
    }
}
