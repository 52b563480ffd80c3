//! Content checksums of context paths: what a COPY's cache key uses. Part of `source::local`.

use std::io::Read as _;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::xattrs::read_xattrs;
use super::{Entry, EntryKind, LocalSource};
use crate::digest::Digest;
use crate::source::dockerignore::{self, Pattern};
use crate::source::error::{Error, Result, io_error};
use crate::source::stat_cache::{FileStat, StatCache};

use rayon::prelude::*;

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
        self.checksum_entries(&entries, selectors, cache)
    }

    /// [`Self::checksum`] over entries already listed by [`Self::walk`]. The entries the
    /// selectors name are hashed in parallel; files the cache knows are not read.
    pub fn checksum_entries(
        &self,
        entries: &[Entry],
        selectors: &[&str],
        cache: &mut StatCache,
    ) -> Result<Digest> {
        Ok(self.checksum_digests(entries, selectors, cache)?.0)
    }

    /// [`Self::checksum_entries`], also returning the digest of every entry it hashed (by
    /// index into `entries`; `None` for entries the selectors do not name), from which
    /// [`Self::checksum_known`] computes other selectors' checksums without any I/O.
    pub fn checksum_digests(
        &self,
        entries: &[Entry],
        selectors: &[&str],
        cache: &mut StatCache,
    ) -> Result<(Digest, Vec<Option<Digest>>)> {
        cache.start_pass();
        let plan = self.plan(entries, selectors)?;
        let needed = needed(entries.len(), &plan);
        let indices: Vec<usize> = (0..entries.len()).filter(|&i| needed[i]).collect();
        let shared: &StatCache = cache;
        let computed: Vec<Hashed> = indices
            .par_iter()
            .map(|&index| {
                let (digest, read) = self.entry_digest(&entries[index], shared)?;
                Ok((index, digest, read))
            })
            .collect::<Result<_>>()?;
        let mut digests: Vec<Option<Digest>> = vec![None; entries.len()];
        for (index, digest, update) in computed {
            digests[index] = Some(digest);
            if let Some(update) = update {
                let path = entries[index].path.to_string_lossy();
                cache.record_entry(
                    &path,
                    update.stat,
                    update.content,
                    update.entry,
                    update.read,
                );
            }
        }
        Ok((combine(entries, &digests, &plan), digests))
    }

    /// The checksum of what `selectors` name, from entry digests already known (as
    /// [`Self::checksum_digests`] returns them for a tree with this tree's content); `None`
    /// when one it needs is missing. Only symlinks on the selectors' paths are read.
    pub fn checksum_known(
        &self,
        entries: &[Entry],
        digests: &[Option<Digest>],
        selectors: &[&str],
    ) -> Result<Option<Digest>> {
        let plan = self.plan(entries, selectors)?;
        let needed = needed(entries.len(), &plan);
        let complete = needed
            .iter()
            .zip(digests)
            .all(|(needed, digest)| !needed || digest.is_some());
        Ok(complete.then(|| combine(entries, digests, &plan)))
    }

    /// What each selector hashes: named subtrees, as ranges of `entries`.
    fn plan(&self, entries: &[Entry], selectors: &[&str]) -> Result<Vec<Selected>> {
        let mut plan: Vec<Selected> = Vec::new();
        for selector in selectors {
            let cleaned = dockerignore::clean(selector.trim_start_matches('/'));
            if cleaned.contains(['*', '?', '[']) {
                let pattern = Pattern::new(&cleaned)?;
                let matched = entries
                    .iter()
                    .enumerate()
                    .filter(|(_, entry)| pattern.matches(&entry.path.to_string_lossy()))
                    .map(|(index, entry)| (index, subtree(entries, &entry.path)))
                    .collect();
                plan.push(Selected::Glob(matched));
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
                let range = subtree(entries, &path);
                plan.push(Selected::Path(path, range));
            }
        }
        Ok(plan)
    }

    /// Hashes one entry's header fields and content; a file the cache does not know is read.
    /// For a file, also returns what to record in the cache (nothing when it knew the whole
    /// entry).
    fn entry_digest(&self, entry: &Entry, cache: &StatCache) -> Result<(Digest, Option<Update>)> {
        let full = self.root.join(&entry.path);
        if entry.kind == EntryKind::File
            && let Some(digest) = cache.lookup_entry(&entry.path.to_string_lossy(), entry.stat)
        {
            return Ok((digest, None));
        }
        let (kind, permissions, link): (&[u8], u32, &[u8]) = match &entry.kind {
            EntryKind::Directory => (b"dir", entry.mode & 0o7777, b""),
            EntryKind::File => (b"file", entry.mode & 0o7777, b""),
            // Compat: buildkit cache/contenthash: symlinks hash with mode 0777 whatever lstat
            // says, since their permission bits mean nothing on Linux.
            EntryKind::Symlink(target) => (b"symlink", 0o777, target.as_os_str().as_bytes()),
            EntryKind::Other => (b"other", entry.mode & 0o7777, b""),
        };
        let mut read = false;
        let content = match entry.kind {
            EntryKind::File => {
                let text = entry.path.to_string_lossy();
                match cache.lookup(&text, entry.stat) {
                    Some(digest) => digest,
                    None => {
                        read = true;
                        self.hash_file(&entry.path)?
                    }
                }
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
        let digest = Digest::of_parts(parts.iter().map(Vec::as_slice));
        let update = (entry.kind == EntryKind::File).then_some(Update {
            stat: entry.stat,
            content,
            entry: digest,
            read,
        });
        Ok((digest, update))
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

/// An entry's index, its digest, and what to record of it.
type Hashed = (usize, Digest, Option<Update>);

/// What a checksum learnt about one file, for the cache.
struct Update {
    stat: FileStat,
    content: Digest,
    entry: Digest,
    /// Whether the content had to be read.
    read: bool,
}

/// What one selector hashes.
enum Selected {
    /// Each matching entry (by index) with its subtree.
    Glob(Vec<(usize, Range<usize>)>),
    /// One path's subtree.
    Path(PathBuf, Range<usize>),
}

/// The range of `entries` (sorted, parents first) holding `top` and everything below it.
fn subtree(entries: &[Entry], top: &Path) -> Range<usize> {
    let start = entries.partition_point(|e| e.path.as_path() < top);
    let length = entries[start..]
        .iter()
        .take_while(|e| e.path.starts_with(top))
        .count();
    start..start + length
}

/// Which entries a plan hashes.
fn needed(count: usize, plan: &[Selected]) -> Vec<bool> {
    let mut needed = vec![false; count];
    for selected in plan {
        match selected {
            Selected::Glob(matched) => {
                for (_, range) in matched {
                    needed[range.clone()].fill(true);
                }
            }
            Selected::Path(_, range) => needed[range.clone()].fill(true),
        }
    }
    needed
}

/// The checksum of a plan from its entries' digests.
fn combine(entries: &[Entry], digests: &[Option<Digest>], plan: &[Selected]) -> Digest {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for selected in plan {
        match selected {
            Selected::Glob(matched) => {
                parts.push(b"glob".to_vec());
                for (index, range) in matched {
                    let top = &entries[*index].path;
                    parts.push(top.as_os_str().as_bytes().to_vec());
                    let digest = tree_digest(entries, digests, top, range.clone());
                    parts.push(digest.as_bytes().to_vec());
                }
            }
            Selected::Path(top, range) => {
                parts.push(b"path".to_vec());
                let digest = tree_digest(entries, digests, top, range.clone());
                parts.push(digest.as_bytes().to_vec());
            }
        }
    }
    Digest::of_parts(parts.iter().map(Vec::as_slice))
}

/// Hashes `top` and everything below it (the entries in `range`), names taken relative to
/// `top`.
fn tree_digest(
    entries: &[Entry],
    digests: &[Option<Digest>],
    top: &Path,
    range: Range<usize>,
) -> Digest {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for index in range {
        let entry = &entries[index];
        let name = entry.path.strip_prefix(top).unwrap_or(&entry.path);
        parts.push(name.as_os_str().as_bytes().to_vec());
        let digest = digests[index].unwrap_or_else(|| Digest::of(b""));
        parts.push(digest.as_bytes().to_vec());
    }
    Digest::of_parts(parts.iter().map(Vec::as_slice))
}
