//! Applies an uncompressed OCI image layer (a tar stream) onto a root directory. Part of
//! `snapshot`.
//!
//! This is the security-critical path: a layer is untrusted input. We never call
//! `tar::Archive::unpack`, which rejects legitimate absolute symlinks inside a rootfs
//! (`var/run -> /run`) and writes whiteouts literally. Instead every path lookup goes through
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from the root's file descriptor, so the
//! kernel resolves `..` and symlinks (absolute ones included) as if `root` were `/`, and the
//! last component is then created with a `*at` call on a single name that never follows a
//! symlink. Nothing a layer contains can make us write outside `root`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use crate::snapshot::error::{Error, Result};

/// The prefix OCI uses to mark a deleted path: `.wh.<name>` deletes `<name>`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The marker that makes its directory opaque: lower layers' contents are hidden.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Applies the layer read from `layer` onto `root`, creating `root` if needed.
///
/// Entries are applied in order: regular files, directories, symlinks, hard links, device
/// nodes and fifos (only when running as root, as rootless Docker does), OCI whiteouts and
/// opaque markers, PAX `SCHILY.xattr.*` extended attributes. Absolute names are taken relative
/// to `root`, as Docker does; `..` components and hard links leaving the root are errors that
/// name the entry.
pub fn apply_layer(root: &Path, layer: impl Read) -> Result<()> {
    std::fs::create_dir_all(root).map_err(|source| Error::Io {
        action: "create",
        path: root.to_owned(),
        source,
    })?;
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| Error::Io {
        action: "open",
        path: root.to_owned(),
        source: errno.into(),
    })?;
    let mut applier = Applier {
        root: root_fd,
        privileged: rustix::process::geteuid().is_root(),
        seen: HashSet::new(),
        directories: Vec::new(),
    };
    let mut archive = tar::Archive::new(layer);
    let entries = archive
        .entries()
        .map_err(|source| Error::Layer { source })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Layer { source })?;
        applier.apply(entry)?;
    }
    applier.finish()
}

struct Applier {
    root: OwnedFd,
    privileged: bool,
    /// Paths this layer created; an opaque marker must not delete them.
    seen: HashSet<PathBuf>,
    /// Directory mtimes, set last because creating children changes them.
    directories: Vec<(PathBuf, PathBuf, u64)>,
}

impl Applier {
    fn apply(&mut self, mut entry: tar::Entry<'_, impl Read>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let Some(path) = normalize(&raw).ok_or_else(|| Error::Escape {
            entry: shown.clone(),
        })?
        else {
            // The root itself: its metadata belongs to whoever created `root`.
            return Ok(());
        };
        let name = path.file_name().unwrap_or_default().to_owned();
        let parent = path.parent().unwrap_or(Path::new("")).to_owned();
        if let Some(deleted) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&shown, &parent, deleted);
        }
        let kind = entry.header().entry_type();
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry
            .pax_extensions()
            .map_err(|source| entry_error(&shown, "read PAX headers of", source))?
        {
            for extension in extensions.flatten() {
                if let Some(key) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((key.to_vec(), extension.value_bytes().to_vec()));
                }
            }
        }
        let header = entry.header();
        let meta = Meta {
            mode: header.mode().unwrap_or(0o644) & 0o7777,
            uid: header
                .uid()
                .ok()
                .and_then(|id| u32::try_from(id).ok())
                .unwrap_or(0),
            gid: header
                .gid()
                .ok()
                .and_then(|id| u32::try_from(id).ok())
                .unwrap_or(0),
            mtime: header.mtime().unwrap_or(0),
            xattrs,
        };
        let device = rustix::fs::makedev(
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        );
        let shown_ref = &shown;
        let io =
            |action: &'static str| move |errno: Errno| entry_error(shown_ref, action, errno.into());
        let dir = self
            .ensure_directory(&parent)
            .map_err(io("create the parent directory of"))?;
        let is_directory = kind == EntryType::Directory;
        self.clear_existing(dir.as_fd(), &name, is_directory)
            .map_err(io("replace"))?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = rustix::fs::openat(
                    &dir,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(io("create"))?;
                let mut file = File::from(fd);
                io::copy(&mut entry, &mut file)
                    .map_err(|source| entry_error(&shown, "write", source))?;
                self.set_fd_metadata(file.as_fd(), &meta)
                    .map_err(io("set metadata of"))?;
            }
            EntryType::Directory => {
                match rustix::fs::mkdirat(&dir, &name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(errno) => return Err(io("create")(errno)),
                }
                let fd = rustix::fs::openat(
                    &dir,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io("open"))?;
                self.set_fd_metadata(fd.as_fd(), &meta)
                    .map_err(io("set metadata of"))?;
                self.directories
                    .push((parent.clone(), name.clone().into(), meta.mtime));
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                // The target is stored verbatim: absolute targets are resolved inside the root
                // whenever we (or the container) follow them.
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &dir, &name)
                    .map_err(io("create symlink"))?;
                self.set_at_metadata(dir.as_fd(), &name, &meta)
                    .map_err(io("set metadata of"))?;
            }
            EntryType::Link => {
                let raw_target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let escape = || Error::HardLinkEscape {
                    entry: shown.clone(),
                    target: String::from_utf8_lossy(&raw_target).into_owned(),
                };
                let target = normalize(&raw_target)
                    .ok_or_else(escape)?
                    .ok_or_else(escape)?;
                let target_dir = self
                    .open_directory(target.parent().unwrap_or(Path::new("")))
                    .map_err(io("resolve the hard link target of"))?;
                let target_name = target.file_name().unwrap_or_default();
                // linkat without AT_SYMLINK_FOLLOW links the target name itself, never what a
                // symlink there points to, and the target's directory was resolved IN_ROOT.
                rustix::fs::linkat(&target_dir, target_name, &dir, &name, AtFlags::empty())
                    .map_err(io("create hard link"))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if !self.privileged && kind != EntryType::Fifo {
                    // Compat: moby pkg/archive skips device nodes when not root (rootless).
                    return Ok(());
                }
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                rustix::fs::mknodat(
                    &dir,
                    &name,
                    file_type,
                    Mode::from_raw_mode(meta.mode),
                    device,
                )
                .map_err(io("create device node"))?;
                self.set_at_metadata(dir.as_fd(), &name, &meta)
                    .map_err(io("set metadata of"))?;
                // chown clears set-id bits, and mknod applied the umask: set the mode last.
                rustix::fs::chmodat(
                    &dir,
                    &name,
                    Mode::from_raw_mode(meta.mode),
                    AtFlags::empty(),
                )
                .map_err(io("set mode of"))?;
            }
            // PAX global headers and GNU volume labels carry no file.
            _ => return Ok(()),
        }
        self.seen.insert(path);
        Ok(())
    }

    fn whiteout(&mut self, shown: &str, parent: &Path, deleted: &[u8]) -> Result<()> {
        let directory = match self.open_directory(parent) {
            Ok(fd) => fd,
            // Nothing below to hide.
            Err(Errno::NOENT) => return Ok(()),
            Err(errno) => {
                return Err(entry_error(
                    shown,
                    "open the directory of whiteout",
                    errno.into(),
                ));
            }
        };
        if deleted == &OPAQUE_WHITEOUT.as_bytes()[WHITEOUT_PREFIX.len()..] {
            return self.clear_opaque(shown, parent, directory);
        }
        if deleted.is_empty()
            || deleted == b"."
            || deleted == b".."
            || deleted.starts_with(WHITEOUT_PREFIX.as_bytes())
        {
            if deleted.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other `.wh..wh.` names are aufs bookkeeping (hard link dirs), not deletions.
                return Ok(());
            }
            return Err(Error::BadWhiteout {
                entry: shown.to_owned(),
            });
        }
        remove_all_at(directory.as_fd(), OsStr::from_bytes(deleted))
            .map_err(|errno| entry_error(shown, "apply whiteout", errno.into()))
    }

    fn clear_opaque(&mut self, shown: &str, parent: &Path, directory: OwnedFd) -> Result<()> {
        let error = |errno: Errno| entry_error(shown, "apply opaque whiteout", errno.into());
        let readable = rustix::fs::openat(
            &directory,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(error)?;
        for name in list_names(readable.as_fd()).map_err(error)? {
            // Only lower layers' contents are hidden; what this layer already put here stays.
            if !self.seen.contains(&parent.join(&name)) {
                remove_all_at(directory.as_fd(), &name).map_err(error)?;
            }
        }
        Ok(())
    }

    fn open_directory(&self, path: &Path) -> rustix::io::Result<OwnedFd> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        rustix::fs::openat2(
            &self.root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            // IN_ROOT: `..` and absolute symlinks stop at the root. NO_MAGICLINKS: /proc-style
            // links (which a rootfs could contain as a mount) are refused rather than followed.
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Opens `path`, creating missing directories (0755, as Docker does) one component at a
    /// time, each resolved again from the root.
    fn ensure_directory(&self, path: &Path) -> rustix::io::Result<OwnedFd> {
        match self.open_directory(path) {
            Err(Errno::NOENT) => {}
            other => return other,
        }
        let mut current = self.open_directory(Path::new(""))?;
        let mut prefix = PathBuf::new();
        for component in path.iter() {
            prefix.push(component);
            current = match self.open_directory(&prefix) {
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&current, component, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => return Err(errno),
                    }
                    self.open_directory(&prefix)?
                }
                other => other?,
            };
        }
        Ok(current)
    }

    /// Removes what is at `name` unless a directory meets a directory (which merges).
    fn clear_existing(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        is_directory: bool,
    ) -> rustix::io::Result<()> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(errno) => Err(errno),
            Ok(stat) => {
                let existing_directory =
                    FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
                if existing_directory && is_directory {
                    Ok(())
                } else {
                    remove_all_at(dir, name)
                }
            }
        }
    }

    fn set_fd_metadata(&self, fd: BorrowedFd<'_>, meta: &Meta) -> rustix::io::Result<()> {
        self.chown(rustix::fs::fchown(
            fd,
            Some(uid(meta.uid)),
            Some(gid(meta.gid)),
        ))?;
        for (name, value) in &meta.xattrs {
            set_xattr(fd, name, value)?;
        }
        // After chown, which clears set-id bits.
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
        rustix::fs::futimens(fd, &timestamps(meta.mtime))
    }

    fn set_at_metadata(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
    ) -> rustix::io::Result<()> {
        self.chown(rustix::fs::chownat(
            dir,
            name,
            Some(uid(meta.uid)),
            Some(gid(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        ))?;
        rustix::fs::utimensat(
            dir,
            name,
            &timestamps(meta.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
    }

    fn chown(&self, result: rustix::io::Result<()>) -> rustix::io::Result<()> {
        match result {
            // Compat: moby pkg/archive ignores ownership it cannot set when not root.
            Err(Errno::PERM) if !self.privileged => Ok(()),
            other => other,
        }
    }

    fn finish(self) -> Result<()> {
        for (parent, name, mtime) in self.directories.iter().rev() {
            let path = parent.join(name);
            let error = |errno: Errno| Error::Io {
                action: "set the mtime of",
                path: path.clone(),
                source: errno.into(),
            };
            let dir = self.open_directory(parent).map_err(error)?;
            match rustix::fs::utimensat(&dir, name, &timestamps(*mtime), AtFlags::SYMLINK_NOFOLLOW)
            {
                // A later whiteout may have removed it.
                Ok(()) | Err(Errno::NOENT) => {}
                Err(errno) => return Err(error(errno)),
            }
        }
        Ok(())
    }
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Turns an entry name into a relative path of normal components: leading `/` and `.` are
/// dropped (Docker re-roots absolute names). Returns `None` for any `..` component and
/// `Some(None)` for the root itself.
fn normalize(raw: &[u8]) -> Option<Option<PathBuf>> {
    let mut path = PathBuf::new();
    for component in raw.split(|&byte| byte == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return None,
            name => path.push(OsStr::from_bytes(name)),
        }
    }
    Some((!path.as_os_str().is_empty()).then_some(path))
}

fn set_xattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> rustix::io::Result<()> {
    // A layer must not smuggle overlayfs control attributes (opaque, redirect, metacopy) into a
    // directory that later serves as an overlay lower dir.
    if name.starts_with(b"trusted.overlay.") {
        return Ok(());
    }
    match rustix::fs::fsetxattr(fd, OsStr::from_bytes(name), value, XattrFlags::empty()) {
        // Compat: moby ignores xattrs the filesystem does not support.
        Err(Errno::NOTSUP) => Ok(()),
        other => other,
    }
}

/// Removes `name` in `dir`, recursively for directories, without following symlinks.
pub(super) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(errno) => return Err(errno),
    }
    let child = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for grandchild in list_names(child.as_fd())? {
        remove_all_at(child.as_fd(), &grandchild)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// Lists the names in an open directory, without `.` and `..`.
pub(super) fn list_names(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

fn timestamps(mtime: u64) -> Timestamps {
    let time = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

fn uid(raw: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(raw)
}

fn gid(raw: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw)
}

fn entry_error(entry: &str, action: &'static str, source: io::Error) -> Error {
    Error::Entry {
        entry: entry.to_owned(),
        action,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_reroots_absolute_names_and_rejects_dotdot() {
        assert_eq!(
            normalize(b"/etc//passwd"),
            Some(Some(PathBuf::from("etc/passwd")))
        );
        assert_eq!(normalize(b"./a/./b/"), Some(Some(PathBuf::from("a/b"))));
        assert_eq!(normalize(b"./"), Some(None));
        assert_eq!(normalize(b"/"), Some(None));
        assert_eq!(normalize(b"a/../../b"), None);
        assert_eq!(normalize(b".."), None);
    }
}
