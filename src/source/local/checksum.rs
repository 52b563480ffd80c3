//! Content checksums of context paths: what a COPY's cache key uses. Part of `source::local`.

use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::xattrs::read_xattrs;
use super::{Entry, EntryKind, LocalSource};
use crate::digest::Digest;
use crate::source::dockerignore::{self, Pattern};
use crate::source::error::{Error, Result, io_error};
use crate::source::stat_cache::StatCache;

impl LocalSource {
    /// Returns the content checksum of the paths `selectors` name, as a COPY's cache key uses
    /// it: file content, mode, owner, xattrs, symlink targets and the directory structure, but
    /// never timestamps.
    ///
    /// A selector is a path (resolved through symlinks with [`Self::resolve`]; `.` is the whole
    /// context) or a wildcard pattern. A path's checksum does not depend on the path's own
    /// name, so renaming a source directory keeps the checksum; a wildcard's does include the
    /// names it matched.
    // Compat: buildkit cache/contenthash Checksum: tarsum-style header fields (mode, uid, gid,
    // size, type, link target, filtered xattrs) plus content, mtime excluded, names relative to
    // the selected path. Diverges: the byte encoding is ours (length-prefixed sha256 parts),
    // not tarsum's, so digests differ from BuildKit's while their equalities agree.
    pub fn checksum(&self, selectors: &[&str], cache: &mut StatCache) -> Result<Digest> {
        let entries = self.walk()?;
        cache.start_pass();
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for selector in selectors {
            let cleaned = dockerignore::clean(selector.trim_start_matches('/'));
            if cleaned.contains(['*', '?', '[']) {
                let pattern = Pattern::new(&cleaned)?;
                parts.push(b"glob".to_vec());
                for entry in entries.iter() {
                    let text = entry.path.to_string_lossy();
                    if pattern.matches(&text) {
                        parts.push(entry.path.as_os_str().as_bytes().to_vec());
                        let digest = self.tree_digest(&entries, &entry.path, cache)?;
                        parts.push(digest.as_bytes().to_vec());
                    }
                }
            } else {
                let path = if cleaned == "." {
                    PathBuf::new()
                } else {
                    self.resolve(&cleaned)?
                };
                if !path.as_os_str().is_empty()
                    && entries.binary_search_by(|e| e.path.cmp(&path)).is_err()
                {
                    return Err(Error::NotFound {
                        path: (*selector).to_owned(),
                        context: self.root.clone(),
                    });
                }
                parts.push(b"path".to_vec());
                parts.push(
                    self.tree_digest(&entries, &path, cache)?
                        .as_bytes()
                        .to_vec(),
                );
            }
        }
        Ok(Digest::of_parts(parts.iter().map(Vec::as_slice)))
    }

    /// Hashes `top` and everything below it, names taken relative to `top`.
    fn tree_digest(&self, entries: &[Entry], top: &Path, cache: &mut StatCache) -> Result<Digest> {
        let start = entries.partition_point(|e| e.path.as_path() < top);
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for entry in entries[start..]
            .iter()
            .take_while(|e| e.path.starts_with(top))
        {
            let name = entry.path.strip_prefix(top).unwrap_or(&entry.path);
            parts.push(name.as_os_str().as_bytes().to_vec());
            parts.push(self.entry_digest(entry, cache)?.as_bytes().to_vec());
        }
        Ok(Digest::of_parts(parts.iter().map(Vec::as_slice)))
    }

    fn entry_digest(&self, entry: &Entry, cache: &mut StatCache) -> Result<Digest> {
        let full = self.root.join(&entry.path);
        let (kind, permissions, link): (&[u8], u32, &[u8]) = match &entry.kind {
            EntryKind::Directory => (b"dir", entry.mode & 0o7777, b""),
            EntryKind::File => (b"file", entry.mode & 0o7777, b""),
            // Compat: buildkit cache/contenthash: symlinks hash with mode 0777 whatever lstat
            // says, since their permission bits mean nothing on Linux.
            EntryKind::Symlink(target) => (b"symlink", 0o777, target.as_os_str().as_bytes()),
            EntryKind::Other => (b"other", entry.mode & 0o7777, b""),
        };
        let content = match entry.kind {
            EntryKind::File => {
                let text = entry.path.to_string_lossy();
                cache.digest(&text, entry.stat, || self.hash_file(&entry.path))?
            }
            _ => Digest::of(b""),
        };
        let xattrs = read_xattrs(&full).map_err(io_error("read xattrs of", &full))?;
        let mut parts: Vec<Vec<u8>> = vec![
            kind.to_vec(),
            permissions.to_be_bytes().to_vec(),
            entry.uid.to_be_bytes().to_vec(),
            entry.gid.to_be_bytes().to_vec(),
            entry.size.to_be_bytes().to_vec(),
            entry.rdev.to_be_bytes().to_vec(),
            link.to_vec(),
            content.as_bytes().to_vec(),
        ];
        for (name, value) in xattrs {
            parts.push(name.as_bytes().to_vec());
            parts.push(value);
        }
        Ok(Digest::of_parts(parts.iter().map(Vec::as_slice)))
    }

    fn hash_file(&self, path: &Path) -> Result<Digest> {
        let mut file = self.open(path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let count = file
                .read(&mut buffer)
                .map_err(io_error("read", self.root.join(path)))?;
            if count == 0 {
                break;
            }
            hasher.update(&buffer[..count]);
        }
        Ok(Digest::from_bytes(hasher.finalize().into()))
    }
}
