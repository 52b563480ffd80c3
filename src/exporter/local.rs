//! The `local` exporter: copies the result's root filesystem into a directory, one
//! `os_arch[_variant]` subdirectory per platform when the result is split. Part of `exporter`.
//!
//! The tree is copied into a temp directory next to `dest` and moved into place, so `dest`
//! never holds a half copy; an existing `dest` is merged into without following any symlink
//! already there, so nothing is written outside it.

use std::fs;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};

use crate::buildflags::ExportEntry;
use crate::exporter::atomic::AtomicDir;
use crate::exporter::attrs::{platform_dir_name, platform_split, source_date_epoch};
use crate::exporter::error::{Error, Result, io_error};
use crate::exporter::output::{BuildOutput, ExportContext, ExportResponse};

/// Copies `output` to `entry.destination`.
// Compat: buildkit exporter/local/export.go (platform split, epoch applied to every mtime).
pub(crate) fn export(
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
) -> Result<ExportResponse> {
    if entry.destination.is_empty() {
        return Err(Error::MissingDestination {
            kind: entry.kind.clone(),
        });
    }
    let epoch = source_date_epoch(&entry.attrs, context)?;
    let split = platform_split(&entry.attrs, output)?;
    let atomic = AtomicDir::create(Path::new(&entry.destination))?;
    for platform in &output.platforms {
        let target = if split {
            let target = atomic.path().join(platform_dir_name(&platform.platform));
            fs::create_dir(&target).map_err(io_error("create", &target))?;
            target
        } else {
            atomic.path().to_owned()
        };
        copy_children(&platform.rootfs, &target)?;
    }
    reset_owners(atomic.path())?;
    if let Some(epoch) = epoch {
        set_mtimes(atomic.path(), epoch)?;
    }
    atomic.commit()?;
    Ok(ExportResponse::default())
}

/// Copies every entry of `source` into the existing directory `target`.
pub(crate) fn copy_children(source: &Path, target: &Path) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(source)
        .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(io_error("read", source))?;
    names.sort();
    for name in names {
        crate::snapshot::copy_tree(&source.join(&name), &target.join(&name))?;
    }
    Ok(())
}

/// Gives everything under `root` to the exporting user.
// Compat: buildx receives a local export on the client and writes it as the user running
// it, so `COPY --chown=10:20` or `RUN chown` show up as that user in the directory (the image
// layers keep the real owners).
fn reset_owners(root: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(root).map_err(io_error("stat", root))?;
    if meta.is_dir() {
        for entry in fs::read_dir(root).map_err(io_error("read", root))? {
            let entry = entry.map_err(io_error("read", root))?;
            reset_owners(&entry.path())?;
        }
    }
    let (uid, gid) = (rustix::process::geteuid(), rustix::process::getegid());
    rustix::fs::chownat(CWD, root, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW).map_err(
        |errno| Error::Io {
            action: "set the owner of",
            path: root.to_owned(),
            source: errno.into(),
        },
    )
}

/// Sets the mtime (and atime) of everything under `root`, not following symlinks.
fn set_mtimes(root: &Path, epoch: u64) -> Result<()> {
    let seconds = i64::try_from(epoch).unwrap_or(i64::MAX);
    let time = Timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    let meta = fs::symlink_metadata(root).map_err(io_error("stat", root))?;
    if meta.is_dir() {
        for entry in fs::read_dir(root).map_err(io_error("read", root))? {
            let entry = entry.map_err(io_error("read", root))?;
            set_mtimes(&entry.path(), epoch)?;
        }
    }
    // Children first: setting a directory's time before writing into it would be undone.
    rustix::fs::utimensat(CWD, root, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|errno| Error::Io {
        action: "set the mtime of",
        path: root.to_owned(),
        source: errno.into(),
    })
}
