//! The `oci` exporter: the image as an OCI image layout, in a tar (default) or a directory
//! (`tar=false`). Also the layout writer the `docker` exporter shares. Part of `exporter`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tar::{EntryType, Header};

use crate::buildflags::ExportEntry;
use crate::digest::Digest;
use crate::exporter::atomic::{AtomicDir, AtomicFile};
use crate::exporter::attrs::source_date_epoch;
use crate::exporter::error::{Error, Result, io_error};
use crate::exporter::image::{Assembled, assemble};
use crate::exporter::options::{AnnotationKind, ImageOptions, parse_bool_attr};
use crate::exporter::output::{BuildOutput, ExportContext, ExportResponse};
use crate::exporter::reference::{normalize, oci_ref_name};
use crate::oci::{Descriptor, Index, REF_NAME_ANNOTATION, media_types};

/// `index.json` annotation holding the full image name.
const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The `oci-layout` file's content.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Exports `output` as an OCI layout.
pub(crate) fn export(
    store: &crate::content::Store,
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
    stdout: &mut dyn Write,
) -> Result<ExportResponse> {
    let prepared = prepare(store, entry, output, context)?;
    let as_tar = match entry.attrs.get("tar") {
        Some(value) => parse_bool_attr("tar", value)?,
        None => true,
    };
    let files = Files {
        assembled: &prepared.assembled,
        index_json: &prepared.index_json,
        docker_manifest: None,
    };
    if as_tar {
        write_tar_destination(entry, &files, stdout)?;
    } else {
        if entry.destination.is_empty() || entry.destination == "-" {
            return Err(Error::MissingDestination {
                kind: "oci (tar=false)".to_owned(),
            });
        }
        write_directory(Path::new(&entry.destination), &files)?;
    }
    Ok(prepared.response)
}

/// An image assembled for a layout, with its `index.json` and the metadata to report.
pub(crate) struct Prepared {
    pub(crate) assembled: Assembled,
    pub(crate) index_json: Vec<u8>,
    pub(crate) names: Vec<String>,
    pub(crate) response: ExportResponse,
}

/// Assembles the image and the layout's `index.json` for an `oci` or `docker` entry.
pub(crate) fn prepare(
    store: &crate::content::Store,
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
) -> Result<Prepared> {
    let epoch = source_date_epoch(&entry.attrs, context)?;
    let options = ImageOptions::parse(&entry.attrs, epoch)?;
    let names = options
        .names
        .iter()
        .map(|name| normalize(name))
        .collect::<Result<Vec<_>>>()?;
    let assembled = assemble(store, output, &options, context.now)?;
    let index_json = index_json(&assembled, &names, &options)?;
    let mut response = ExportResponse {
        metadata: assembled.metadata(),
    };
    if !names.is_empty() {
        response
            .metadata
            .insert("image.name".to_owned(), names.join(",").into());
    }
    Ok(Prepared {
        assembled,
        index_json,
        names,
        response,
    })
}

/// Builds the layout's `index.json`: one entry per name (or one unnamed entry).
// Compat: containerd images/archive WithManifest, as buildkit exporter/oci calls it.
pub(crate) fn index_json(
    assembled: &Assembled,
    names: &[String],
    options: &ImageOptions,
) -> Result<Vec<u8>> {
    let mut base = assembled.root.clone();
    // The config digest is reported to buildx but not written into the layout.
    base.annotations.remove("config.digest");
    base.annotations.extend(
        options
            .annotations
            .for_kind(AnnotationKind::IndexDescriptor, None),
    );
    let manifests: Vec<Descriptor> = if names.is_empty() {
        vec![base]
    } else {
        names
            .iter()
            .map(|name| {
                let mut descriptor = base.clone();
                descriptor
                    .annotations
                    .insert(CONTAINERD_NAME_ANNOTATION.to_owned(), name.clone());
                descriptor
                    .annotations
                    .insert(REF_NAME_ANNOTATION.to_owned(), oci_ref_name(name));
                descriptor
            })
            .collect()
    };
    let index = Index {
        schema_version: 2,
        media_type: media_types::OCI_INDEX.to_owned(),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: Default::default(),
    };
    serde_json::to_vec(&index).map_err(|source| Error::Json {
        what: "index.json",
        source,
    })
}

/// The files of a layout besides the blobs.
pub(crate) struct Files<'a> {
    pub(crate) assembled: &'a Assembled,
    pub(crate) index_json: &'a [u8],
    /// `manifest.json` for `docker load`, in the docker variant.
    pub(crate) docker_manifest: Option<&'a [u8]>,
}

impl Files<'_> {
    /// Returns the non-blob files, sorted by name.
    fn documents(&self) -> Vec<(&'static str, &[u8])> {
        let mut documents = vec![("index.json", self.index_json)];
        if let Some(manifest) = self.docker_manifest {
            documents.push(("manifest.json", manifest));
        }
        documents.push(("oci-layout", OCI_LAYOUT));
        documents
    }
}

/// Writes the layout as a tar to the destination, or to `stdout` for `-` or none.
pub(crate) fn write_tar_destination(
    entry: &ExportEntry,
    files: &Files<'_>,
    stdout: &mut dyn Write,
) -> Result<()> {
    let destination = entry.destination.as_str();
    if destination.is_empty() || destination == "-" {
        return write_tar(files, stdout).map_err(io_error("write", "-"));
    }
    let dest = Path::new(destination);
    let mut file = AtomicFile::create(dest)?;
    write_tar(files, file.file()).map_err(io_error("write", dest))?;
    file.commit()
}

/// Writes the layout as a tar, entries sorted by name, fixed owners, modes and times.
// Compat: containerd images/archive writeTar (records sorted by name, blobs 0444).
fn write_tar(files: &Files<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = header(EntryType::Directory, 0o755, 0);
        builder.append_data(&mut header, dir, io::empty())?;
    }
    let mut blobs: Vec<_> = files.assembled.blobs.iter().collect();
    blobs.sort();
    for (digest, path) in blobs {
        let file = fs::File::open(path)?;
        let size = file.metadata()?.len();
        let mut header = header(EntryType::Regular, 0o444, size);
        builder.append_data(&mut header, blob_name(digest), file)?;
    }
    for (name, bytes) in files.documents() {
        let mut header = header(EntryType::Regular, 0o444, bytes.len() as u64);
        builder.append_data(&mut header, name, bytes)?;
    }
    builder.into_inner()?.flush()
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Returns a blob's path inside a layout (`blobs/sha256/<hex>`).
pub(crate) fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Writes the layout as a directory, replacing the files of an existing layout.
pub(crate) fn write_directory(dest: &Path, files: &Files<'_>) -> Result<()> {
    let atomic = AtomicDir::create(dest)?;
    let blobs = atomic.path().join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_error("create", &blobs))?;
    for (digest, path) in &files.assembled.blobs {
        let target = atomic.path().join(blob_name(digest));
        fs::copy(path, &target).map_err(io_error("copy blob to", &target))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o444))
            .map_err(io_error("set permissions of", &target))?;
    }
    for (name, bytes) in files.documents() {
        let target = atomic.path().join(name);
        fs::write(&target, bytes).map_err(io_error("write", &target))?;
    }
    atomic.commit()
}
