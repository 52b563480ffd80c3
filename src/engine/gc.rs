//! Garbage collection after builds, under buildkitd.toml's GC keys. Part of `engine`.

use std::path::Path;

use crate::engine::error::Error;

/// Collects garbage in the state root after a build, under buildkitd.toml's GC keys: `gc`
/// (on unless `false`), a size budget from `maxUsedSpace` or `gckeepstorage` (else the last
/// `[[worker.oci.gcpolicy]]` that sets `maxUsedSpace` or `keepBytes`, else 10% of the disk,
/// as BuildKit's default) raised to `reservedSpace` (what GC always leaves), and the
/// `keepDuration` of the first policy without filters; then cache mounts no step used for 48
/// hours while they hold more than 512 MB. Returns `None` when disabled, when
/// nothing was added or removed since the last collection (less than an hour ago), or when
/// another build holds the root.
// Diverges: BuildKit applies each gcpolicy in turn with its filters; bake applies one budget
// and one age limit to every cached result.
pub fn collect_garbage(
    root: &Path,
    gc: &crate::config::Gc,
) -> Result<Option<crate::cache::gc::Report>, Error> {
    if gc.enabled == Some(false) || !root.join("snapshots").is_dir() {
        return Ok(None);
    }
    let disk = rustix::fs::statvfs(root)
        .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    let bytes = |space: &crate::config::DiskSpace| match space {
        crate::config::DiskSpace::Bytes(bytes) => *bytes,
        crate::config::DiskSpace::Percent(percent) => disk / 100 * u64::from(*percent),
    };
    let budget = [&gc.max_used_space, &gc.keep_storage]
        .into_iter()
        .find_map(|s| s.as_ref())
        .or_else(|| {
            gc.policies.iter().rev().find_map(|p| {
                [&p.max_used_space, &p.keep_bytes]
                    .into_iter()
                    .find_map(|s| s.as_ref())
            })
        })
        .map_or(disk / 10, bytes);
    let reserved = gc
        .reserved_space
        .as_ref()
        .or_else(|| {
            gc.policies
                .iter()
                .rev()
                .find_map(|p| p.reserved_space.as_ref())
        })
        .map_or(0, bytes);
    let budget = budget.max(reserved);
    let policy = crate::cache::gc::Policy {
        keep_bytes: Some(budget),
        keep_duration: gc
            .policies
            .iter()
            .find(|p| p.filters.is_empty() && p.keep_duration.is_some())
            .and_then(|p| p.keep_duration),
    };
    let settings = format!("{:?} {:?}", policy.keep_bytes, policy.keep_duration);
    if !due(root, &settings) {
        return Ok(None);
    }
    let report = crate::cache::gc::collect(root, &policy).map_err(Error::Gc)?;
    // Compat: BuildKit's default first policy, for cache mounts.
    crate::cache::gc::exclusive(root, || {
        crate::ops::cache_mount::collect(
            &root.join(crate::ops::cache_mount::CACHE_MOUNTS_DIR),
            CACHE_MOUNT_UNUSED,
            CACHE_MOUNT_BYTES,
        )
    })
    .map_err(Error::Gc)?;
    if report.is_some() {
        // Advisory: without the stamp the next build collects again.
        let _ = std::fs::write(root.join(STAMP), settings);
    }
    Ok(report)
}

/// How long a cache mount no step uses is kept once cache mounts exceed
/// [`CACHE_MOUNT_BYTES`] (BuildKit's default: 48 hours).
const CACHE_MOUNT_UNUSED: std::time::Duration = std::time::Duration::from_secs(48 * 3600);

/// What cache mounts may hold before unused ones go (BuildKit's default: 512 MB).
const CACHE_MOUNT_BYTES: u64 = 512 * 1024 * 1024;

/// Touched after every collection.
const STAMP: &str = "gc.stamp";

/// How long a root that gained nothing goes without a collection, so results still expire by
/// age when every build is a cache hit.
const IDLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether a collection could find anything: the snapshot directory changed (a snapshot or
/// side file was added or removed) since the last one, the GC settings are not the ones it
/// ran with, or it is older than [`IDLE_INTERVAL`]. A warm build that reused every result
/// skips the scan.
fn due(root: &Path, settings: &str) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let stamp = root.join(STAMP);
    let Some(last) = modified(&stamp) else {
        return true;
    };
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(settings) {
        return true;
    }
    let changed = modified(&root.join("snapshots")).is_none_or(|snapshots| snapshots >= last);
    let idle = std::time::SystemTime::now()
        .duration_since(last)
        .map_or(true, |age| age > IDLE_INTERVAL);
    changed || idle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_that_gained_nothing_is_not_collected_again() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("snapshots")).expect("snapshots");
        assert!(due(root.path(), "a"), "never collected");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.path().join(STAMP), "a").expect("stamp");
        assert!(!due(root.path(), "a"), "nothing new since the stamp");
        assert!(due(root.path(), "b"), "other settings");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::create_dir(root.path().join("snapshots/new")).expect("new");
        assert!(due(root.path(), "a"), "a new snapshot");
    }
}
