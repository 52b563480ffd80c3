//! Compares two directory trees and writes the difference as an OCI layer tar. Part of
//! `snapshot`; used by the native (copying) snapshotter, whose upper dir is a full copy.
//!
//! The walk visits both trees together, one directory at a time with names sorted by bytes, so
//! the same trees always give the same bytes. Deletions become `.wh.<name>` entries. Both trees
//! are our own snapshot directories, but their contents come from build steps, so nothing here
//! follows a symlink: every stat is an `lstat` and only real directories are descended into.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::snapshot::apply::WHITEOUT_PREFIX;
use crate::snapshot::error::{Error, Result, io_error};

/// How [`diff`] writes entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Clamps every mtime to at most this many seconds since the epoch, as BuildKit's
    /// `rewrite-timestamp=true` does with `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<u64>,
}

/// Writes to `out` a layer that turns `lower` (or an empty tree) into `upper`, and returns `out`.
///
/// Changed or new paths are written with their type, mode, owner, mtime, xattrs, symlink target
/// and device numbers; files sharing an inode become hard links to the first path written;
/// paths missing from `upper` become OCI whiteouts.
pub fn diff<W: Write>(
    lower: Option<&Path>,
    upper: &Path,
    out: W,
    options: &DiffOptions,
) -> Result<W> {
    let mut writer = Writer {
        builder: tar::Builder::new(out),
        options: *options,
        inodes: HashMap::new(),
    };
    writer.walk(Path::new(""), lower, upper)?;
    writer.builder.into_inner().map_err(|source| Error::Io {
        action: "finish layer for",
        path: upper.to_owned(),
        source,
    })
}

struct Writer<W: Write> {
    builder: tar::Builder<W>,
    options: DiffOptions,
    /// `(dev, ino)` of multiply-linked files already written, and the name they were written as.
    inodes: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Writer<W> {
    fn walk(&mut self, relative: &Path, lower: Option<&Path>, upper: &Path) -> Result<()> {
        let mut names = read_names(upper)?;
        if let Some(lower) = lower {
            names.extend(read_names(lower)?);
        }
        names.sort();
        names.dedup();
        for name in names {
            let child = relative.join(&name);
            let upper_path = upper.join(&name);
            let lower_path = lower.map(|lower| lower.join(&name));
            let upper_meta = lstat(&upper_path)?;
            let lower_meta = match &lower_path {
                Some(path) => lstat(path)?,
                None => None,
            };
            let Some(upper_meta) = upper_meta else {
                if lower_meta.is_some() {
                    self.whiteout(relative, &name)?;
                }
                continue;
            };
            let changed = match (&lower_meta, &lower_path) {
                (Some(lower_meta), Some(lower_path)) => {
                    differs(lower_path, lower_meta, &upper_path, &upper_meta)
                        .map_err(io_error("compare", &upper_path))?
                }
                _ => true,
            };
            if changed {
                self.add(&child, &upper_path, &upper_meta)?;
            }
            if upper_meta.is_dir() {
                let lower_dir = match (&lower_meta, &lower_path) {
                    (Some(meta), Some(path)) if meta.is_dir() => Some(path.as_path()),
                    _ => None,
                };
                self.walk(&child, lower_dir, &upper_path)?;
            }
        }
        Ok(())
    }

    fn add(&mut self, relative: &Path, path: &Path, meta: &Metadata) -> Result<()> {
        let error = io_error("write layer entry for", path);
        let xattrs = read_xattrs(path).map_err(error)?;
        let mut header = Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid().into());
        header.set_gid(meta.gid().into());
        header.set_mtime(self.clamp(u64::try_from(meta.mtime()).unwrap_or(0)));
        header.set_size(0);
        if !xattrs.is_empty() {
            self.append_pax(relative, &xattrs)
                .map_err(io_error("write layer entry for", path))?;
        }
        let error = io_error("write layer entry for", path);
        let file_type = meta.file_type();
        if file_type.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.inodes.get(&key) {
                    header.set_entry_type(EntryType::Link);
                    let first = first.clone();
                    return self
                        .builder
                        .append_link(&mut header, relative, first)
                        .map_err(error);
                }
                self.inodes.insert(key, relative.to_owned());
            }
            header.set_entry_type(EntryType::Regular);
            header.set_size(meta.len());
            let file = File::open(path).map_err(io_error("open", path))?;
            // `take` guards against a file growing while we read it: the header's size wins.
            return self
                .builder
                .append_data(&mut header, relative, file.take(meta.len()))
                .map_err(error);
        }
        if file_type.is_symlink() {
            header.set_entry_type(EntryType::Symlink);
            let target = fs::read_link(path).map_err(io_error("read symlink", path))?;
            return self
                .builder
                .append_link(&mut header, relative, target)
                .map_err(error);
        }
        let entry_type = if file_type.is_dir() {
            EntryType::Directory
        } else if file_type.is_char_device() {
            EntryType::Char
        } else if file_type.is_block_device() {
            EntryType::Block
        } else if file_type.is_fifo() {
            EntryType::Fifo
        } else {
            // Sockets cannot be stored in a layer.
            return Ok(());
        };
        header.set_entry_type(entry_type);
        if matches!(entry_type, EntryType::Char | EntryType::Block) {
            let device = meta.rdev();
            header
                .set_device_major(rustix::fs::major(device))
                .map_err(io_error("write layer entry for", path))?;
            header
                .set_device_minor(rustix::fs::minor(device))
                .map_err(io_error("write layer entry for", path))?;
        }
        self.builder
            .append_data(&mut header, relative, io::empty())
            .map_err(error)
    }

    fn whiteout(&mut self, parent: &Path, name: &OsStr) -> Result<()> {
        let mut marker = OsString::from(WHITEOUT_PREFIX);
        marker.push(name);
        let relative = parent.join(marker);
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(0);
        header.set_mtime(self.clamp(0));
        self.builder
            .append_data(&mut header, &relative, io::empty())
            .map_err(io_error("write whiteout", &relative))
    }

    /// Writes a PAX extended header carrying `SCHILY.xattr.*` records for the next entry.
    fn append_pax(&mut self, relative: &Path, xattrs: &[(OsString, Vec<u8>)]) -> io::Result<()> {
        let mut data = Vec::new();
        for (name, value) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name.as_bytes());
            pax_record(&mut data, &key, value);
        }
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        // The name of an extended header is informational; keep it short so it always fits.
        let name: Vec<u8> = relative
            .as_os_str()
            .as_bytes()
            .iter()
            .copied()
            .take(80)
            .collect();
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend(
            name.iter()
                .map(|&byte| if byte == b'/' { b'_' } else { byte }),
        );
        header.as_old_mut().name[..pax_name.len()].copy_from_slice(&pax_name);
        header.set_cksum();
        self.builder.append(&header, data.as_slice())
    }

    fn clamp(&self, mtime: u64) -> u64 {
        match self.options.source_date_epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        }
    }
}

/// Appends one PAX record, `"<length> <key>=<value>\n"`, whose length counts its own digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut length = rest + 1;
    while length != rest + length.to_string().len() {
        length = rest + length.to_string().len();
    }
    out.extend_from_slice(length.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Returns whether `upper` must be written to the layer. Directory mtimes are ignored: adding a
/// child changes them, and the child's own entry carries the change.
fn differs(
    lower_path: &Path,
    lower: &Metadata,
    upper_path: &Path,
    upper: &Metadata,
) -> io::Result<bool> {
    if lower.file_type() != upper.file_type()
        || lower.mode() != upper.mode()
        || lower.uid() != upper.uid()
        || lower.gid() != upper.gid()
        || lower.rdev() != upper.rdev()
        || read_xattrs(lower_path)? != read_xattrs(upper_path)?
    {
        return Ok(true);
    }
    if upper.is_dir() {
        return Ok(false);
    }
    if upper.file_type().is_symlink() {
        return Ok(fs::read_link(lower_path)? != fs::read_link(upper_path)?);
    }
    if !upper.is_file() {
        return Ok(false);
    }
    if lower.len() != upper.len()
        || (lower.mtime(), lower.mtime_nsec()) != (upper.mtime(), upper.mtime_nsec())
    {
        return Ok(true);
    }
    // Compat: containerd continuity `sameFile`: equal nanosecond mtimes mean equal files, but a
    // zero nanosecond part may come from a copy that lost precision, so compare the bytes.
    if upper.mtime_nsec() != 0 {
        return Ok(false);
    }
    Ok(!same_contents(lower_path, upper_path)?)
}

fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (File::open(a)?, File::open(b)?);
    let (mut buffer_a, mut buffer_b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let count = a.read(&mut buffer_a)?;
        if count == 0 {
            return Ok(b.read(&mut buffer_b[..1])? == 0);
        }
        match b.read_exact(&mut buffer_b[..count]) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(error) => return Err(error),
        }
        if buffer_a[..count] != buffer_b[..count] {
            return Ok(false);
        }
    }
}

/// Reads every extended attribute of `path` (not following symlinks), sorted by name.
pub(super) fn read_xattrs(path: &Path) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let mut names = vec![0u8; 64 * 1024];
    let length = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(length) => length,
        Err(rustix::io::Errno::NOTSUP) => 0,
        Err(errno) => return Err(errno.into()),
    };
    let mut xattrs = Vec::new();
    for name in names[..length]
        .split(|&byte| byte == 0)
        .filter(|name| !name.is_empty())
    {
        let mut value = vec![0u8; 64 * 1024];
        let size = rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value[..])?;
        value.truncate(size);
        xattrs.push((OsStr::from_bytes(name).to_owned(), value));
    }
    xattrs.sort();
    Ok(xattrs)
}

fn read_names(dir: &Path) -> Result<Vec<OsString>> {
    let error = io_error("list", dir);
    fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|entry| entry.map(|entry| entry.file_name()))
                .collect()
        })
        .map_err(error)
}

fn lstat(path: &Path) -> Result<Option<Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            action: "stat",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        let mut out = Vec::new();
        pax_record(&mut out, b"SCHILY.xattr.user.color", b"red");
        assert_eq!(out, b"31 SCHILY.xattr.user.color=red\n");
        // 9 bytes + 1 digit would be 10, which needs 2 digits: the length settles at 11.
        let mut out = Vec::new();
        pax_record(&mut out, b"k", b"vvvvv");
        assert_eq!(out, b"11 k=vvvvv\n");
    }
}
