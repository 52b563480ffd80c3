//! The `docker` exporter: a tarball `docker load` accepts: `manifest.json` (Config, RepoTags,
//! Layers) beside the OCI layout entries BuildKit also writes. Part of `exporter`.

use std::io::Write;

use serde::Serialize;

use crate::buildflags::ExportEntry;
use crate::exporter::error::{Error, Result};
use crate::exporter::oci::{Files, blob_name, prepare, write_tar_destination};
use crate::exporter::output::{BuildOutput, ExportContext, ExportResponse};
use crate::exporter::reference::familiar;

/// One image of `manifest.json`.
// Compat: containerd images/archive exporter (Go field names, nil RepoTags as `null`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Returns `manifest.json` for one image: its config, layers and the names that are tags.
pub(crate) fn manifest_json(manifest: &crate::oci::Manifest, names: &[String]) -> Result<Vec<u8>> {
    let tags: Vec<String> = names
        .iter()
        .filter(|name| !name.contains('@'))
        .map(|name| familiar(name))
        .collect();
    let document = [DockerManifest {
        config: blob_name(&manifest.config.digest),
        repo_tags: (!tags.is_empty()).then_some(tags),
        layers: manifest
            .layers
            .iter()
            .map(|layer| blob_name(&layer.digest))
            .collect(),
    }];
    serde_json::to_vec(&document).map_err(|source| Error::Json {
        what: "manifest.json",
        source,
    })
}

/// Exports `output` (one platform) as a `docker load` tarball.
pub(crate) fn export(
    store: &crate::content::Store,
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
    stdout: &mut dyn Write,
) -> Result<ExportResponse> {
    if output.platforms.len() > 1 {
        return Err(Error::DockerManifestList);
    }
    let prepared = prepare(store, entry, output, context)?;
    let manifest_json = manifest_json(&prepared.assembled.manifests[0].manifest, &prepared.names)?;
    let files = Files {
        assembled: &prepared.assembled,
        index_json: &prepared.index_json,
        docker_manifest: Some(&manifest_json),
    };
    write_tar_destination(entry, &files, stdout)?;
    Ok(prepared.response)
}
