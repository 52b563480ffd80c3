//! Overlayfs snapshots: a step's root filesystem is an overlay of its parent's layers plus a
//! fresh upper directory, so starting a step costs a mount instead of a copy of the whole
//! tree. Part of `snapshot`.
//!
//! Layout of one snapshot, `<dir>/<id>/`: `upper/` (what the step changed, with overlayfs
//! whiteouts), `work/` (overlayfs' scratch), `lowers` (the parent's layer directories, top
//! first, one per line) and `merged/`, the mount point every consumer reads as a full tree
//! (the same contract as a native snapshot's directory). While a step runs, `merged/` is a
//! read-write overlay; once it is done it is remounted read-only with `upper/` as its top
//! lower layer, so a committed snapshot can be the lower layer of others without sharing an
//! upper directory between mounts. A snapshot found again in a later process is mounted on
//! first use ([`Snapshotter::mount`]).
//!
//! Mounts live in a private mount namespace (entered by [`Overlay::new`]) so that they vanish
//! with the process, even after `kill -9`, and never show up on the host.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use crate::snapshot::error::{Error, Result, io_error};
use crate::snapshot::snapshotter::{Snapshotter, new_id};
use crate::snapshot::tree::{copy_tree, remove_snapshot};

/// The overlayfs snapshotter: a step's tree is a mount over its parent's layers.
#[derive(Debug)]
pub struct Overlay {
    dir: PathBuf,
}

impl Overlay {
    /// Keeps snapshots under `dir` when overlayfs works there for this process: it must be
    /// allowed a private mount namespace (so mounts end with it) and the filesystem must take
    /// overlay upper directories. Moves the calling thread into that namespace; `None` means
    /// overlays cannot be used and nothing was mounted.
    pub fn new(dir: &Path) -> Option<Self> {
        (fs::create_dir_all(dir).is_ok() && private_mount_namespace() && supported(dir)).then(
            || Self {
                dir: dir.to_owned(),
            },
        )
    }
}

impl Snapshotter for Overlay {
    fn name(&self) -> &'static str {
        "overlayfs"
    }

    fn prepare(&self, parent: Option<&Path>) -> Result<PathBuf> {
        fs::create_dir_all(&self.dir).map_err(io_error("create", &self.dir))?;
        prepare(&self.dir, &new_id(), parent)
    }

    fn commit(&self, path: &Path) -> Result<()> {
        commit(path)
    }

    fn mount(&self, path: &Path) -> Result<()> {
        if !path.is_dir() {
            return Err(Error::NotFound(path.display().to_string()));
        }
        ensure_mounted(path)
    }

    fn remove(&self, path: &Path) -> Result<()> {
        while snapshot_of(path).is_some() && is_mount_point(path) {
            rustix::mount::unmount(path, UnmountFlags::DETACH)
                .map_err(|e| io_error("unmount", path)(e.into()))?;
        }
        remove_snapshot(path)
    }

    fn fill(&self, path: &Path, fill: &mut dyn FnMut(&Path)) -> Result<()> {
        let Some(dir) = snapshot_of(path) else {
            fill(path);
            return Ok(());
        };
        // Overlayfs forbids changing its layers under a mount: the prepared (still empty)
        // tree is unmounted, its upper directory filled, and the same overlay mounted again.
        rustix::mount::unmount(path, UnmountFlags::DETACH)
            .map_err(|e| io_error("unmount", path)(e.into()))?;
        fill(&dir.join("upper"));
        let lowers_path = dir.join("lowers");
        let lowers = fs::read_to_string(&lowers_path).map_err(io_error("read", &lowers_path))?;
        let lowers: Vec<PathBuf> = lowers
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowerdir(&lowers),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        mount(path, &data, MountFlags::empty()).map_err(io_error("mount an overlay on", path))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        unmount_all(&self.dir);
    }
}

/// The kernel takes mount options as one page; longer layer lists are flattened into a copy.
const MAX_OPTIONS: usize = 4000;

/// Moves the calling thread (and the threads it starts later) into a private mount namespace
/// whose mounts do not propagate to the host. Returns `false` when that is not allowed (not
/// root), in which case overlay snapshots must not be used.
#[allow(unsafe_code, reason = "unshare(2) has no safe wrapper in rustix 1.x")]
fn private_mount_namespace() -> bool {
    // SAFETY: only CLONE_NEWNS (and the CLONE_FS it implies) is unshared, never
    // CLONE_FILES, so no thread can lose access to file descriptors; the new namespace
    // applies to this thread and the threads it spawns afterwards (the solver's pool).
    let unshared = unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) };
    if unshared.is_err() {
        return false;
    }
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .is_ok()
}

/// Whether overlayfs works for snapshots under `dir` (kernel support, privileges, and an
/// upper filesystem that can hold whiteouts): mounts a tiny overlay there and removes it.
fn supported(dir: &Path) -> bool {
    let Ok(probe) = tempfile::Builder::new().prefix(".probe-").tempdir_in(dir) else {
        return false;
    };
    let [lower, upper, work, merged] = ["l", "u", "w", "m"].map(|name| probe.path().join(name));
    for path in [&lower, &upper, &work, &merged] {
        if fs::create_dir(path).is_err() {
            return false;
        }
    }
    if fs::write(lower.join("f"), b"").is_err() {
        return false;
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    if mount(&merged, &data, MountFlags::empty()).is_err() {
        return false;
    }
    // Deleting a lower file must leave a whiteout in the upper directory.
    let works = fs::remove_file(merged.join("f")).is_ok()
        && fs::symlink_metadata(upper.join("f"))
            .is_ok_and(|m| m.rdev() == 0 && m.mode() & 0o170000 == 0o020000);
    let _ = rustix::mount::unmount(&merged, UnmountFlags::DETACH);
    works
}

fn mount(target: &Path, data: &str, flags: MountFlags) -> io::Result<()> {
    let data = std::ffi::CString::new(data).map_err(|_| io::ErrorKind::InvalidInput)?;
    rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str())
        .map_err(io::Error::from)
}

/// Whether the tree at `path` is an overlay snapshot's mount point.
pub(super) fn is_snapshot(path: &Path) -> bool {
    snapshot_of(path).is_some()
}

/// The snapshot directory holding `merged` when `merged` is an overlay snapshot.
fn snapshot_of(merged: &Path) -> Option<&Path> {
    let dir = merged.parent()?;
    (merged.file_name()? == "merged" && dir.join("lowers").is_file()).then_some(dir)
}

/// The layer directories that make up the tree at `path`, top first: its own upper
/// directory and its parent's layers for an overlay snapshot, else the directory itself.
fn layers_of(path: &Path) -> Result<Vec<PathBuf>> {
    let Some(dir) = snapshot_of(path) else {
        return Ok(vec![path.to_path_buf()]);
    };
    let lowers_path = dir.join("lowers");
    let lowers = fs::read_to_string(&lowers_path).map_err(io_error("read", &lowers_path))?;
    let upper = dir.join("upper");
    let mut layers = Vec::new();
    // An empty upper directory adds nothing; leaving it out keeps chains short.
    if fs::read_dir(&upper)
        .map_err(io_error("list", &upper))?
        .next()
        .is_some()
    {
        layers.push(upper);
    }
    layers.extend(lowers.lines().filter(|l| !l.is_empty()).map(PathBuf::from));
    Ok(layers)
}

/// The directories holding the files of the committed tree at `path`, top first, such that
/// a path's file is the one in the first directory that has that path: an overlay
/// snapshot's layers, or the tree itself. A file found there can be hard-linked where the
/// mount point's cannot (another filesystem). `None` when the kernel's overlayfs may keep a
/// file's data or a renamed directory's content under another path (`metacopy` or
/// `redirect_dir` on by default), where looking up by path would be wrong.
pub fn layers(path: &Path) -> Option<Vec<PathBuf>> {
    if snapshot_of(path).is_none() {
        return Some(vec![path.to_path_buf()]);
    }
    static BY_PATH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let by_path = *BY_PATH.get_or_init(|| {
        ["metacopy", "redirect_dir"].iter().all(|name| {
            fs::read_to_string(format!("/sys/module/overlay/parameters/{name}"))
                .is_ok_and(|value| value.trim() == "N")
        })
    });
    by_path.then(|| layers_of(path).ok()).flatten()
}

fn lowerdir(layers: &[PathBuf]) -> String {
    layers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

fn is_mount_point(path: &Path) -> bool {
    match (fs::metadata(path), path.parent().map(fs::metadata)) {
        (Ok(inner), Some(Ok(outer))) => inner.dev() != outer.dev(),
        _ => false,
    }
}

/// Creates a snapshot under `dir` whose tree starts as `base` (or empty), mounted
/// read-write, and returns its `merged` directory. A base whose layer list no longer fits
/// in the mount options is copied into a single new layer first.
fn prepare(dir: &Path, id: &str, base: Option<&Path>) -> Result<PathBuf> {
    let snapshot = dir.join(id);
    let [upper, work, merged] = ["upper", "work", "merged"].map(|name| snapshot.join(name));
    fs::create_dir_all(&snapshot).map_err(io_error("create", &snapshot))?;
    for path in [&upper, &work, &merged] {
        fs::create_dir(path).map_err(io_error("create", path))?;
    }
    let mut lowers = match base {
        Some(base) => {
            ensure_mounted(base)?;
            layers_of(base)?
        }
        None => Vec::new(),
    };
    let fixed = upper.display().to_string().len() + work.display().to_string().len() + 40;
    if fixed + lowerdir(&lowers).len() > MAX_OPTIONS
        && let Some(base) = base
    {
        let flat = snapshot.join("flat");
        copy_tree(base, &flat)?;
        lowers = vec![flat];
    }
    if lowers.is_empty() {
        // Overlayfs needs a lower layer; an empty directory stands for "nothing".
        let empty = snapshot.join("empty");
        fs::create_dir(&empty).map_err(io_error("create", &empty))?;
        lowers.push(empty);
    }
    let lowers_path = snapshot.join("lowers");
    let text: String = lowers
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    fs::write(&lowers_path, text).map_err(io_error("write", &lowers_path))?;
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir(&lowers),
        upper.display(),
        work.display()
    );
    mount(&merged, &data, MountFlags::empty()).map_err(io_error("mount an overlay on", &merged))?;
    Ok(merged)
}

/// Ends the writable phase of the snapshot at `merged`: remounts it read-only over its own
/// layers, so its upper directory is only ever a lower layer from now on.
fn commit(merged: &Path) -> Result<()> {
    if snapshot_of(merged).is_none() {
        return Ok(());
    }
    rustix::mount::unmount(merged, UnmountFlags::DETACH)
        .map_err(|e| io_error("unmount", merged)(e.into()))?;
    ensure_mounted(merged)
}

/// Mounts the committed snapshot at `merged` (read-only) if this process has not yet; a
/// native directory needs nothing.
fn ensure_mounted(merged: &Path) -> Result<()> {
    if snapshot_of(merged).is_none() || is_mount_point(merged) {
        return Ok(());
    }
    let mut layers = layers_of(merged)?;
    if layers.len() == 1 {
        // A read-only overlay needs two layers; the empty lower of the snapshot will do, or
        // its (empty) upper directory when that lower is the only layer already: naming one
        // directory twice fails with ELOOP.
        let mut empty = merged.with_file_name("empty");
        if layers[0] == empty {
            empty = merged.with_file_name("upper");
        }
        fs::create_dir_all(&empty).map_err(io_error("create", &empty))?;
        layers.push(empty);
    }
    let data = format!("lowerdir={}", lowerdir(&layers));
    mount(merged, &data, MountFlags::RDONLY).map_err(io_error("mount an overlay on", merged))
}

/// Unmounts every overlay snapshot mounted under `dir` (end of a build).
pub fn unmount_all(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let merged = entry.path().join("merged");
        while is_mount_point(&merged) {
            if rustix::mount::unmount(&merged, UnmountFlags::DETACH).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Native;

    /// Builds `a` (two files), then `b` on `a` (adds one, deletes one), checks what each sees,
    /// then `forget` (a later process) and reads `b` again after [`Snapshotter::mount`].
    fn chain_sees_every_layer_and_deletions(snapshotter: &dyn Snapshotter, forget: &dyn Fn()) {
        let a = snapshotter.prepare(None).unwrap();
        fs::write(a.join("one"), "1").unwrap();
        fs::write(a.join("gone"), "x").unwrap();
        snapshotter.commit(&a).unwrap();
        let b = snapshotter.prepare(Some(&a)).unwrap();
        fs::write(b.join("two"), "2").unwrap();
        fs::remove_file(b.join("gone")).unwrap();
        snapshotter.commit(&b).unwrap();
        assert_eq!(fs::read_to_string(b.join("one")).unwrap(), "1");
        assert_eq!(fs::read_to_string(b.join("two")).unwrap(), "2");
        assert!(!b.join("gone").exists());
        assert!(a.join("gone").exists(), "the parent is untouched");
        assert!(!a.join("two").exists(), "the parent is untouched");
        forget();
        snapshotter.mount(&b).unwrap();
        assert_eq!(fs::read_to_string(b.join("one")).unwrap(), "1");
        assert!(!b.join("gone").exists());
        snapshotter.remove(&b).unwrap();
        assert!(!b.exists());
        assert!(snapshotter.mount(&b).is_err(), "a removed tree is gone");
        snapshotter.mount(&a).unwrap();
        assert_eq!(fs::read_to_string(a.join("one")).unwrap(), "1");
    }

    #[test]
    fn a_native_chain_sees_every_layer_and_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let native = Native::new(&dir.path().join("snapshots"));
        chain_sees_every_layer_and_deletions(&native, &|| {});
    }

    #[test]
    fn an_overlay_chain_sees_every_layer_and_deletions() {
        // Its own thread, so the private mount namespace stays with this test.
        std::thread::spawn(|| {
            let dir = tempfile::tempdir().unwrap();
            let snapshots = dir.path().join("snapshots");
            if !rustix::process::geteuid().is_root() {
                return;
            }
            let Some(overlay) = Overlay::new(&snapshots) else {
                return;
            };
            let a = overlay.prepare(None).unwrap();
            overlay.commit(&a).unwrap();
            assert!(
                fs::write(a.join("x"), "").is_err(),
                "committed is read-only"
            );
            chain_sees_every_layer_and_deletions(&overlay, &|| {
                unmount_all(&snapshots);
            });
            // A native worker never reads an overlay tree as if it were a plain directory.
            assert!(matches!(
                Native::new(&snapshots).mount(&a),
                Err(Error::Foreign(_))
            ));
            drop(overlay);
            assert!(!is_mount_point(&a), "dropping the snapshotter unmounts");
        })
        .join()
        .unwrap();
    }
}
