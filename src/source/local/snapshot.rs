//! Checksums of committed snapshots, and the manifest a context snapshot keeps beside it.
//! Part of `source::local`.
//!
//! A committed snapshot is never written again, so a checksum of it is computed once and
//! remembered in a side file (`<snapshot>.checksums`), and a context snapshot's manifest
//! (`<snapshot>.files`, the digest of every file copied into it) stands in for reading its
//! files the first time.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{Entry, LocalOptions, LocalSource};
use crate::digest::Digest;
use crate::snapshot::usage::{CHECKSUMS, MANIFEST, side_file, snapshot_dir};
use crate::source::error::{Result, io_error};
use crate::source::stat_cache::StatCache;

/// Where the manifest of the snapshot whose tree is `snapshot` lives.
pub fn manifest_path(snapshot: &Path) -> PathBuf {
    side_file(snapshot_dir(snapshot), MANIFEST)
}

/// Loads the manifest of the context snapshot `snapshot` (empty when it has none).
pub fn load_manifest(snapshot: &Path) -> StatCache {
    StatCache::load_file(manifest_path(snapshot))
}

/// The checksum of what `selectors` name in the committed snapshot whose tree is
/// `snapshot` (see [`LocalSource::checksum`]), and how many files were read for it: none when
/// it was computed before, or when the snapshot's manifest knows every file.
pub fn snapshot_checksum(snapshot: &Path, selectors: &[&str]) -> Result<(Digest, u64)> {
    let memo_path = side_file(snapshot_dir(snapshot), CHECKSUMS);
    let key = selectors.join("\n");
    let mut memo: BTreeMap<String, Digest> = std::fs::read(&memo_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let Some(digest) = memo.get(&key) {
        return Ok((*digest, 0));
    }
    let source = LocalSource::new(snapshot, &LocalOptions::default())?;
    let mut cache = load_manifest(snapshot).trust_paths();
    let digest = source.checksum(selectors, &mut cache)?;
    memo.insert(key, digest);
    // Advisory: a memo that cannot be written only costs computing it again.
    let _ = write_atomic(&memo_path, &serde_json::to_vec(&memo).unwrap_or_default());
    Ok((digest, cache.content_reads()))
}

/// The checksum of what `selectors` name in the committed snapshot whose tree is `snapshot`,
/// from the entries and entry digests of the walk it was copied from (see
/// [`LocalSource::checksum_known`]): no file of the snapshot is listed or read. `None` when a
/// digest it needs is missing.
pub fn snapshot_checksum_known(
    snapshot: &Path,
    entries: &[Entry],
    digests: &[Option<Digest>],
    selectors: &[&str],
) -> Result<Option<Digest>> {
    LocalSource::new(snapshot, &LocalOptions::default())?
        .checksum_known(entries, digests, selectors)
}

/// Writes `bytes` to `path` through a temp file renamed into place, so readers see the old
/// or the new content, never part of it.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io_error("create", dir))?;
    temp.write_all(bytes)
        .map_err(io_error("write", temp.path()))?;
    temp.persist(path)
        .map_err(|error| io_error("rename", path)(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::stat_cache::StatCache;

    /// The checksums a COPY computes from the walk's digests are the ones it would compute by
    /// reading the snapshot: files, directories, symlinks, links, modes, xattrs, wildcards.
    #[test]
    fn checksums_from_the_walk_match_the_snapshot() {
        if !rustix::process::geteuid().is_root() {
            // Ownership is only kept in a snapshot as root; the worker checks the same.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("context");
        std::fs::create_dir_all(context.join("src/deep")).unwrap();
        std::fs::write(context.join("src/a.txt"), "a").unwrap();
        std::fs::write(context.join("src/deep/b.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            context.join("src/deep/b.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::hard_link(context.join("src/a.txt"), context.join("src/a-link.txt")).unwrap();
        std::os::unix::fs::symlink("deep", context.join("src/shortcut")).unwrap();
        std::fs::write(context.join("top.txt"), "top").unwrap();
        let _ = rustix::fs::setxattr(
            context.join("top.txt").as_path(),
            "user.note",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        );
        let source = LocalSource::new(&context, &LocalOptions::default()).unwrap();
        let entries = source.walk().unwrap();
        let mut cache = StatCache::in_memory();
        let (_, digests) = source
            .checksum_digests(&entries, &["/"], &mut cache)
            .unwrap();
        let snapshot = dir.path().join("snapshot");
        let made = source.materialize(&snapshot).unwrap();
        for selectors in [
            vec!["/"],
            vec!["src"],
            vec!["src/shortcut"],
            vec!["src/*.txt", "top.txt"],
            vec!["src/deep/b.sh"],
        ] {
            let known = snapshot_checksum_known(&snapshot, &made, &digests, &selectors)
                .unwrap()
                .expect("every entry was hashed");
            let (read, _) = snapshot_checksum(&snapshot, &selectors).unwrap();
            assert_eq!(known, read, "{selectors:?}");
        }
        assert!(matches!(
            snapshot_checksum_known(&snapshot, &made, &digests, &["missing"]),
            Err(crate::source::Error::NotFound { .. })
        ));
    }
}
