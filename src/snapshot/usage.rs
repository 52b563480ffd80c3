//! How much a step result holds and when a build last used it, kept in two side files next
//! to each snapshot directory so garbage collection can pick what to remove without walking
//! every tree. Part of `snapshot`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Side file: the digest of every file a context snapshot holds, under its source's stat.
pub const MANIFEST: &str = "files";

/// Side file: the checksums already computed of a committed snapshot, by selectors.
pub const CHECKSUMS: &str = "checksums";

/// Every side file a snapshot may have; removing a snapshot removes them all.
pub const SIDE_FILES: [&str; 4] = ["size", "used", MANIFEST, CHECKSUMS];

/// The snapshot directory (`<root>/snapshots/<id>`) a result path belongs to.
pub fn snapshot_dir(result: &Path) -> &Path {
    match result.file_name() {
        Some(name) if name == "merged" => result.parent().unwrap_or(result),
        _ => result,
    }
}

/// `<snapshot>.<extension>`, a side file of the snapshot directory.
pub fn side_file(snapshot: &Path, extension: &str) -> PathBuf {
    let mut name = snapshot.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

/// Records that a build used the result at `result` (advisory: errors are ignored).
pub fn mark_used(result: &Path) {
    let _ = fs::write(side_file(snapshot_dir(result), "used"), b"");
}

/// Records how many bytes the finished result at `result` holds: for an overlay snapshot its
/// own layer directories, else the whole tree (advisory: errors are ignored).
pub fn record_size(result: &Path) {
    let snapshot = snapshot_dir(result);
    let bytes = if snapshot == result {
        tree_size(snapshot)
    } else {
        ["upper", "flat", "empty"]
            .iter()
            .map(|name| tree_size(&snapshot.join(name)))
            .sum()
    };
    let _ = fs::write(side_file(snapshot, "size"), bytes.to_string());
    mark_used(result);
}

/// Records `bytes` as what the finished result at `result` holds, for a step that counted
/// what it wrote (a tree made of hard links to other snapshots is mostly not its own), so no
/// walk of a large tree is on the build's path. An overlay snapshot's flattened lower, made
/// before the step ran, is added (advisory: errors are ignored).
pub fn record_bytes(result: &Path, bytes: u64) {
    let snapshot = snapshot_dir(result);
    let flat = if snapshot == result {
        0
    } else {
        tree_size(&snapshot.join("flat"))
    };
    let _ = fs::write(side_file(snapshot, "size"), (bytes + flat).to_string());
    mark_used(result);
}

fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return own;
    };
    own + entries
        .flatten()
        .map(|entry| tree_size(&entry.path()))
        .sum::<u64>()
}
