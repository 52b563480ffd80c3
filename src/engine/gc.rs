//! Garbage collection after builds, under buildkitd.toml's GC keys. Part of `engine`.

use std::path::Path;

use crate::engine::error::Error;

/// Collects garbage in the state root after a build, under buildkitd.toml's GC keys: `gc`
/// (on unless `false`), a size budget from `maxUsedSpace` or `gckeepstorage` (else the last
/// `[[worker.oci.gcpolicy]]` that sets `maxUsedSpace` or `keepBytes`, else 10% of the disk,
/// as BuildKit's default) raised to `reservedSpace` (what GC always leaves), and the
/// `keepDuration` of the first policy without filters. Returns `None` when disabled or another build holds the root.
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
    crate::cache::gc::collect(root, &policy).map_err(Error::Gc)
}
