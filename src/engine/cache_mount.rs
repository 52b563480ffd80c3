//! Cache mounts that travel with a build cache: `cache-to … cache-mounts=` archives the
//! `RUN --mount=type=cache` directories a target's steps use into layer blobs, and the
//! mounts a `cache-from` cache carries seed the worker's empty cache mounts. Part of
//! `engine`, the one place that knows both the cache index and the ops worker.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cache::backend::CacheMounts;
use crate::cache::format::{LayerBlob, MountBlob};
use crate::cache::import::Imported;
use crate::content::{Fetch as _, Store};
use crate::engine::lower::Lowered;
use crate::exporter::{ImageOptions, Layer};
use crate::graph::{MountKind, Op};
use crate::ops::cache_mount::{BoxError, Seeds};
use crate::ops::worker::LayerBlob as SnapshotBlob;

/// The imported caches' cache mounts, as the worker's [`Seeds`].
pub(crate) struct ImportedMounts(pub(crate) Arc<Imported>);

impl Seeds for ImportedMounts {
    fn seed(&self, id: &str, store: &Store) -> Result<Option<SnapshotBlob>, BoxError> {
        let Some(mount) = self.0.mount(id) else {
            return Ok(None);
        };
        let descriptor = &mount.blob.descriptor;
        self.0.fetch(&descriptor.digest, store)?;
        Ok(Some(SnapshotBlob {
            digest: descriptor.digest,
            media_type: descriptor.media_type.clone(),
            size: descriptor.size,
            diff_id: mount.blob.diff_id,
        }))
    }
}

/// The ids of the cache mounts the RUN steps of `target` use, sorted.
fn used_by(lowered: &Lowered<'_>, target: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let by_digest: std::collections::BTreeMap<_, _> = lowered
        .definition
        .vertices
        .iter()
        .map(|v| (v.digest, v))
        .collect();
    let roots: Vec<_> = lowered
        .requests
        .iter()
        .filter(|l| l.request.target == target)
        .filter_map(|l| l.root)
        .collect();
    for root in roots {
        for digest in crate::engine::combine::reachable(&lowered.definition, &root.vertex) {
            let Some(vertex) = by_digest.get(&digest) else {
                continue;
            };
            if let Op::Exec(exec) = vertex.op.as_ref() {
                ids.extend(exec.mounts.iter().filter_map(|m| match &m.kind {
                    MountKind::Cache { id, .. } => Some(id.clone()),
                    _ => None,
                }));
            }
        }
    }
    ids
}

/// The ids `wanted` picks among those `used`.
fn chosen(wanted: &CacheMounts, used: &BTreeSet<String>) -> BTreeSet<String> {
    match wanted {
        CacheMounts::None => BTreeSet::new(),
        CacheMounts::All => used.clone(),
        CacheMounts::Ids(ids) => ids.iter().cloned().collect(),
    }
}

/// Archives the cache mount `id` under `cache_root` into `store` as a layer blob compressed
/// as `options` ask; `None` when the mount is absent or empty on this root.
fn archive(
    cache_root: &std::path::Path,
    id: &str,
    store: &Store,
    options: &ImageOptions,
) -> Result<Option<MountBlob>, BoxError> {
    let temp = tempfile::NamedTempFile::new_in(store.root())?;
    let Some(_) = crate::ops::cache_mount::archive(cache_root, id, temp.as_file())? else {
        return Ok(None);
    };
    let layers = [Layer::Tar(temp.path().to_path_buf())];
    let Some((descriptor, diff_id)) = crate::exporter::layer_blobs(store, &layers, options)?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    Ok(Some(MountBlob {
        id: id.to_owned(),
        blob: LayerBlob {
            descriptor,
            diff_id: diff_id.parse()?,
        },
    }))
}

/// Where cache mounts are archived from and to.
pub(crate) struct Archiving<'a> {
    /// The state root's cache mounts.
    pub(crate) cache_root: &'a std::path::Path,
    /// The content store the blobs go to.
    pub(crate) store: &'a Store,
    /// The compression of the cache entry.
    pub(crate) options: &'a ImageOptions,
}

/// The cache mounts `wanted` picks for `target` (besides those in `already`, archived for
/// another target sharing the destination), archived as layer blobs, each named in `log`.
pub(crate) fn export(
    lowered: &Lowered<'_>,
    target: &str,
    wanted: &CacheMounts,
    archiving: &Archiving<'_>,
    already: &[MountBlob],
    log: &dyn Fn(&str),
) -> Result<Vec<MountBlob>, BoxError> {
    let used = used_by(lowered, target);
    let mut out = Vec::new();
    for id in chosen(wanted, &used) {
        if already.iter().any(|m| m.id == id) {
            continue;
        }
        match archive(
            archiving.cache_root,
            &id,
            archiving.store,
            archiving.options,
        )? {
            Some(mount) => {
                log(&format!(
                    "cache mount `{id}`: layer {} ({} bytes)",
                    mount.blob.descriptor.digest, mount.blob.descriptor.size
                ));
                out.push(mount);
            }
            None if used.contains(&id) => {
                log(&format!("cache mount `{id}` is empty: not exported"));
            }
            None => log(&format!(
                "cache mount `{id}` is not used by target `{target}` and is empty: not exported"
            )),
        }
    }
    Ok(out)
}
