//! `cache-to type=local,dest=DIR` and `cache-from type=local,src=DIR`: a build cache in an
//! OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/`), each cache
//! named in `index.json` by its tag. Part of `cache` (named apart from [`super::local`], the
//! state root's own cache index).
//!
//! Writes are crash-safe: every blob goes to a temp file in `blobs/sha256/` (a name no
//! reader takes for a blob), is fsynced and renamed to its digest, and `index.json` is
//! replaced by a rename only after every blob it names is in place. A build killed during
//! an export leaves the previous `index.json` (or none), never one naming a missing blob.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::cache::remote::{Remote, RemoteError, Result};
use crate::digest::Digest;
use crate::oci::{Descriptor, Index, REF_NAME_ANNOTATION, media_types};

/// The `oci-layout` file's content.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A cache in an OCI layout directory.
#[derive(Debug, Clone)]
pub struct LocalLayout {
    dir: PathBuf,
    /// `dest` or `src`, for messages.
    key: &'static str,
}

impl LocalLayout {
    /// The layout at `dir` (created on the first write), named `dest=` in messages.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            key: "dest",
        }
    }

    /// The layout at `dir` read by `cache-from`, named `src=` in messages.
    pub fn source(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            key: "src",
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    fn error(&self, action: &str, path: &Path) -> impl FnOnce(io::Error) -> RemoteError {
        let what = format!("failed to {action} `{}`", path.display());
        move |source| RemoteError::new(what, source)
    }

    /// Reads `index.json`; an absent one is an empty index.
    fn index(&self) -> Result<Option<Index>> {
        let path = self.dir.join("index.json");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.error("read", &path)(error)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RemoteError::new(format!("malformed `{}`", path.display()), source))
    }

    /// Writes `bytes` to `path` under a temp name in the same directory, fsynced, then
    /// renamed into place.
    fn write_atomic(&self, path: &Path, bytes: &mut dyn Read) -> Result<()> {
        let parent = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(self.error("create", parent))?;
        let mut temp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(parent)
            .map_err(self.error("create a temp file in", parent))?;
        io::copy(bytes, temp.as_file_mut()).map_err(self.error("write", path))?;
        temp.as_file_mut()
            .flush()
            .and_then(|()| temp.as_file().sync_all())
            .map_err(self.error("write", path))?;
        temp.persist(path)
            .map_err(|e| self.error("rename into place", path)(e.error))?;
        // The rename is durable once the directory is.
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Remote for LocalLayout {
    fn describe(&self) -> String {
        format!("type=local,{}={}", self.key, self.dir.display())
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.blob_path(digest).is_file())
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send>>> {
        let path = self.blob_path(digest);
        match File::open(&path) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(self.error("open", &path)(error)),
        }
    }

    fn put_blob(&self, digest: &Digest, _: &str, _: u64, blob: &mut dyn Read) -> Result<()> {
        let path = self.blob_path(digest);
        if path.is_file() {
            return Ok(());
        }
        self.write_atomic(&path, blob)
    }

    fn get_manifest(&self, name: &str) -> Result<Option<(String, Vec<u8>)>> {
        let Some(index) = self.index()? else {
            return Ok(None);
        };
        // `digest=` picks a manifest by digest; otherwise the tag names it.
        let found = index.manifests.iter().find(|d| {
            d.digest.to_string() == name
                || d.annotations.get(REF_NAME_ANNOTATION).map(String::as_str) == Some(name)
        });
        let Some(descriptor) = found else {
            return Ok(None);
        };
        let path = self.blob_path(&descriptor.digest);
        let bytes = fs::read(&path).map_err(self.error("read", &path))?;
        if Digest::of(&bytes) != descriptor.digest {
            return Err(RemoteError::message(format!(
                "`{}` does not match its digest `{}`",
                path.display(),
                descriptor.digest
            )));
        }
        Ok(Some((descriptor.media_type.clone(), bytes)))
    }

    fn put_manifest(&self, name: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let digest = Digest::of(bytes);
        self.put_blob(&digest, media_type, bytes.len() as u64, &mut &bytes[..])?;
        let layout = self.dir.join("oci-layout");
        if !layout.is_file() {
            self.write_atomic(&layout, &mut &OCI_LAYOUT[..])?;
        }
        let mut index = self.index()?.unwrap_or(Index {
            schema_version: 2,
            media_type: media_types::OCI_INDEX.to_owned(),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: Default::default(),
        });
        // The tag moves to the new manifest; other tags stay.
        index
            .manifests
            .retain(|d| d.annotations.get(REF_NAME_ANNOTATION).map(String::as_str) != Some(name));
        let mut descriptor = Descriptor::new(media_type, digest, bytes.len() as u64);
        descriptor
            .annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), name.to_owned());
        index.manifests.push(descriptor);
        let text = serde_json::to_vec(&index)
            .map_err(|source| RemoteError::new("failed to encode `index.json`", source))?;
        self.write_atomic(&self.dir.join("index.json"), &mut &text[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_named_by_tag_and_blobs_land_whole() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LocalLayout::new(dir.path().join("cache"));
        assert!(layout.get_manifest("latest").unwrap().is_none());
        let blob = b"layer bytes";
        let digest = Digest::of(blob);
        layout
            .put_blob(&digest, "x", blob.len() as u64, &mut &blob[..])
            .unwrap();
        assert!(layout.has_blob(&digest).unwrap());
        layout.put_manifest("latest", "m/one", b"{}").unwrap();
        layout.put_manifest("other", "m/two", b"[]").unwrap();
        layout.put_manifest("latest", "m/three", b"{ }").unwrap();
        let (media_type, bytes) = layout.get_manifest("latest").unwrap().unwrap();
        assert_eq!(
            (media_type.as_str(), bytes.as_slice()),
            ("m/three", &b"{ }"[..])
        );
        let by_digest = Digest::of(b"[]").to_string();
        assert_eq!(layout.get_manifest(&by_digest).unwrap().unwrap().1, b"[]");
        let names: Vec<_> = fs::read_dir(dir.path().join("cache/blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        assert!(dir.path().join("cache/oci-layout").is_file());
    }

    #[test]
    fn a_manifest_whose_blob_changed_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LocalLayout::new(dir.path());
        layout.put_manifest("latest", "m", b"{}").unwrap();
        fs::write(layout.blob_path(&Digest::of(b"{}")), b"tampered").unwrap();
        assert!(layout.get_manifest("latest").is_err());
    }
}
