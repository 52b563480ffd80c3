//! fsutil's file transfer protocol, both ways: serving a local directory to the daemon (the
//! build context and the Dockerfile's directory: stat packets in walk order, then file
//! contents on request) and receiving an exported tree into a directory (`type=local`).
//! Part of `remote`.
//!
//! The walk is `source::local`'s, so `.dockerignore` (the exclude patterns the daemon sends
//! back), include patterns and follow paths select exactly the files the embedded solver
//! would read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::remote::proto::{Packet, Stat, packet};
use crate::source::local::{EntryKind, LocalOptions, LocalSource};

/// Bytes per data packet, as fsutil's sender.
const CHUNK: usize = 32 * 1024;

/// Go's `os.FileMode` type bits.
mod go {
    pub(super) const DIR: u32 = 1 << 31;
    pub(super) const SYMLINK: u32 = 1 << 27;
    pub(super) const DEVICE: u32 = 1 << 26;
    pub(super) const NAMED_PIPE: u32 = 1 << 25;
    pub(super) const SOCKET: u32 = 1 << 24;
    pub(super) const SETUID: u32 = 1 << 23;
    pub(super) const SETGID: u32 = 1 << 22;
    pub(super) const CHAR_DEVICE: u32 = 1 << 21;
    pub(super) const STICKY: u32 = 1 << 20;
    /// Every type bit: a mode with none of them is a regular file.
    pub(super) const TYPE: u32 =
        DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | (1 << 19);
}

/// Converts `st_mode` to Go's `os.FileMode`, which fsutil puts on the wire.
// Compat: Go os.fillFileStatFromSys (type bits) and fsutil stat_unix.go.
pub(crate) fn go_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & 0o170_000 {
        0o040_000 => go::DIR,
        0o120_000 => go::SYMLINK,
        0o060_000 => go::DEVICE,
        0o020_000 => go::DEVICE | go::CHAR_DEVICE,
        0o010_000 => go::NAMED_PIPE,
        0o140_000 => go::SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= go::SETUID;
    }
    if st_mode & 0o2000 != 0 {
        mode |= go::SETGID;
    }
    if st_mode & 0o1000 != 0 {
        mode |= go::STICKY;
    }
    mode
}

/// The permission bits (with setuid, setgid, sticky) of a Go `os.FileMode`.
fn unix_permissions(go_mode: u32) -> u32 {
    let mut mode = go_mode & 0o777;
    if go_mode & go::SETUID != 0 {
        mode |= 0o4000;
    }
    if go_mode & go::SETGID != 0 {
        mode |= 0o2000;
    }
    if go_mode & go::STICKY != 0 {
        mode |= 0o1000;
    }
    mode
}

/// What the daemon asked to see of a directory (the request's metadata).
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    /// `include-patterns`.
    pub(crate) include_patterns: Vec<String>,
    /// `exclude-patterns`.
    pub(crate) exclude_patterns: Vec<String>,
    /// `followpaths`.
    pub(crate) follow_paths: Vec<String>,
}

fn status(error: impl std::fmt::Display) -> Status {
    Status::internal(error.to_string())
}

/// Lists `root` as fsutil stat packets; returns them with the paths of requestable files by
/// packet index.
fn listing(
    root: &Path,
    selection: &Selection,
) -> Result<(Vec<Stat>, BTreeMap<u32, PathBuf>), Status> {
    let source = LocalSource::new(
        root,
        &LocalOptions {
            exclude_patterns: selection.exclude_patterns.clone(),
            include_patterns: selection.include_patterns.clone(),
            follow_paths: selection.follow_paths.clone(),
        },
    )
    .map_err(status)?;
    let mut stats = Vec::new();
    let mut files = BTreeMap::new();
    for (index, entry) in source.walk().map_err(status)?.into_iter().enumerate() {
        let path = entry.path.to_string_lossy().into_owned();
        let metadata =
            std::fs::symlink_metadata(source.root().join(&entry.path)).map_err(status)?;
        let linkname = match &entry.kind {
            EntryKind::Symlink(target) => target.to_string_lossy().into_owned(),
            _ => String::new(),
        };
        if entry.kind == EntryKind::File {
            files.insert(u32::try_from(index).map_err(status)?, entry.path.clone());
        }
        let (major, minor) = (rustix::fs::major(entry.rdev), rustix::fs::minor(entry.rdev));
        stats.push(Stat {
            path,
            mode: go_mode(entry.mode),
            uid: entry.uid,
            gid: entry.gid,
            size: if entry.kind == EntryKind::File {
                i64::try_from(entry.size).unwrap_or(i64::MAX)
            } else {
                0
            },
            mod_time: metadata.mtime() * 1_000_000_000 + metadata.mtime_nsec(),
            linkname,
            devmajor: i64::from(major),
            devminor: i64::from(minor),
        });
    }
    Ok((stats, files))
}

/// Serves `root` to the daemon: every stat, an empty stat, then each requested file's
/// content, until the daemon says it is done. Runs on a blocking thread (it reads files).
// Compat: fsutil send.go: ids count every stat packet; a file ends with an empty data packet.
pub(crate) fn send_dir(
    root: &Path,
    selection: &Selection,
    mut incoming: Streaming<Packet>,
    out: &mpsc::Sender<Result<Packet, Status>>,
) -> Result<(), Status> {
    let handle = tokio::runtime::Handle::current();
    let send = |packet: Packet| {
        out.blocking_send(Ok(packet))
            .map_err(|_| Status::cancelled("the daemon closed the transfer"))
    };
    let (stats, files) = match listing(root, selection) {
        Ok(listing) => listing,
        Err(error) => {
            let _ = send(Packet {
                r#type: packet::ERR,
                data: error.message().as_bytes().to_vec(),
                ..Packet::default()
            });
            return Err(error);
        }
    };
    for stat in stats {
        send(Packet {
            r#type: packet::STAT,
            stat: Some(stat),
            ..Packet::default()
        })?;
    }
    send(Packet {
        r#type: packet::STAT,
        ..Packet::default()
    })?;
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(status)?;
    while let Some(request) = handle.block_on(incoming.message())? {
        match request.r#type {
            packet::REQ => {
                let path = files.get(&request.id).ok_or_else(|| {
                    Status::invalid_argument(format!("invalid file id {}", request.id))
                })?;
                let fd = rustix::fs::openat2(
                    &root_fd,
                    path,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
                )
                .map_err(|e| status(format!("open {}: {e}", path.display())))?;
                let mut file = File::from(fd);
                let mut buffer = vec![0u8; CHUNK];
                loop {
                    let n = file.read(&mut buffer).map_err(status)?;
                    if n == 0 {
                        break;
                    }
                    send(Packet {
                        r#type: packet::DATA,
                        id: request.id,
                        data: buffer[..n].to_vec(),
                        ..Packet::default()
                    })?;
                }
                send(Packet {
                    r#type: packet::DATA,
                    id: request.id,
                    ..Packet::default()
                })?;
            }
            packet::FIN => {
                send(Packet {
                    r#type: packet::FIN,
                    ..Packet::default()
                })?;
                return Ok(());
            }
            packet::ERR => {
                return Err(Status::aborted(format!(
                    "error from receiver: {}",
                    String::from_utf8_lossy(&request.data)
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks that a path from the daemon stays inside the destination: relative, no `..`.
fn safe_relative(path: &str) -> Result<PathBuf, Status> {
    let relative = Path::new(path);
    let safe = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !safe || path.is_empty() {
        return Err(Status::invalid_argument(format!("refusing path `{path}`")));
    }
    Ok(relative.to_owned())
}

/// Refuses to write below a symlink: every parent of `path` inside `dest` must be a real
/// directory, so an exported symlink cannot redirect a later file out of `dest`.
fn check_parents(dest: &Path, path: &Path) -> Result<(), Status> {
    let mut current = dest.to_owned();
    if let Some(parent) = path.parent() {
        for component in parent.components() {
            current.push(component);
            let metadata = std::fs::symlink_metadata(&current).map_err(status)?;
            if !metadata.is_dir() {
                return Err(Status::invalid_argument(format!(
                    "refusing to write below `{}`, which is not a directory",
                    current.display()
                )));
            }
        }
    }
    Ok(())
}

/// Receives an exported tree into `dest` (created here, empty): reads every stat,
/// creates directories and symlinks, asks for each file's content in turn, then ends the
/// transfer. Runs on a blocking thread (it writes files).
// Compat: fsutil receive.go, the side buildx runs for `type=local`.
pub(crate) fn receive_dir(
    dest: &Path,
    mut incoming: Streaming<Packet>,
    out: &mpsc::Sender<Result<Packet, Status>>,
) -> Result<(), Status> {
    let handle = tokio::runtime::Handle::current();
    let mut stats = Vec::new();
    loop {
        let Some(packet) = handle.block_on(incoming.message())? else {
            return Err(Status::aborted(
                "the daemon ended the export before its listing",
            ));
        };
        match (packet.r#type, packet.stat) {
            (packet::STAT, Some(stat)) => stats.push(stat),
            (packet::STAT, None) => break,
            (packet::ERR, _) => {
                return Err(Status::aborted(
                    String::from_utf8_lossy(&packet.data).into_owned(),
                ));
            }
            _ => {}
        }
    }
    std::fs::create_dir_all(dest).map_err(status)?;
    let root = rustix::process::geteuid().is_root();
    let mut directories = Vec::new();
    for (index, stat) in stats.iter().enumerate() {
        let relative = safe_relative(&stat.path)?;
        check_parents(dest, &relative)?;
        let path = dest.join(&relative);
        let kind = stat.mode & go::TYPE;
        if kind == go::DIR {
            std::fs::create_dir_all(&path).map_err(status)?;
            directories.push((path, stat));
            continue;
        }
        if let Ok(metadata) = std::fs::symlink_metadata(&path) {
            if metadata.is_dir() {
                std::fs::remove_dir_all(&path).map_err(status)?;
            } else {
                std::fs::remove_file(&path).map_err(status)?;
            }
        }
        if kind == go::SYMLINK {
            std::os::unix::fs::symlink(&stat.linkname, &path).map_err(status)?;
        } else if kind == 0 {
            let id = u32::try_from(index).map_err(status)?;
            out.blocking_send(Ok(Packet {
                r#type: packet::REQ,
                id,
                ..Packet::default()
            }))
            .map_err(|_| Status::cancelled("the daemon closed the export"))?;
            let mut file = File::create(&path).map_err(status)?;
            loop {
                let Some(packet) = handle.block_on(incoming.message())? else {
                    return Err(Status::aborted("the daemon ended the export mid-file"));
                };
                if packet.r#type == packet::ERR {
                    return Err(Status::aborted(
                        String::from_utf8_lossy(&packet.data).into_owned(),
                    ));
                }
                if packet.r#type != packet::DATA || packet.id != id {
                    continue;
                }
                if packet.data.is_empty() {
                    break;
                }
                file.write_all(&packet.data).map_err(status)?;
            }
            file.set_permissions(std::fs::Permissions::from_mode(unix_permissions(stat.mode)))
                .map_err(status)?;
        } else {
            // Devices, fifos and sockets are not written by a non-root export; skip them as
            // fsutil's disk writer does without the privilege to create them.
            continue;
        }
        finish(&path, stat, root);
    }
    for (path, stat) in directories.iter().rev() {
        let _ = std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(unix_permissions(stat.mode)),
        );
        finish(path, stat, root);
    }
    out.blocking_send(Ok(Packet {
        r#type: packet::FIN,
        ..Packet::default()
    }))
    .map_err(|_| Status::cancelled("the daemon closed the export"))?;
    // The sender answers FIN with FIN; anything else before the end is ignored.
    while let Some(packet) = handle.block_on(incoming.message())? {
        if packet.r#type == packet::FIN {
            break;
        }
    }
    Ok(())
}

/// Sets owner (as root) and modification time, without following symlinks; failures only
/// lose metadata, never content.
fn finish(path: &Path, stat: &Stat, root: bool) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};
    if root {
        let _ = rustix::fs::chownat(
            CWD,
            path,
            Some(rustix::fs::Uid::from_raw(stat.uid)),
            Some(rustix::fs::Gid::from_raw(stat.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        );
    }
    let time = Timespec {
        tv_sec: stat.mod_time.div_euclid(1_000_000_000),
        tv_nsec: stat.mod_time.rem_euclid(1_000_000_000),
    };
    let _ = rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: time,
            last_modification: time,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_mode_carries_type_and_special_bits() {
        assert_eq!(go_mode(0o100_644), 0o644);
        assert_eq!(go_mode(0o040_755), go::DIR | 0o755);
        assert_eq!(go_mode(0o120_777), go::SYMLINK | 0o777);
        assert_eq!(go_mode(0o020_666), go::DEVICE | go::CHAR_DEVICE | 0o666);
        assert_eq!(go_mode(0o104_755), go::SETUID | 0o755);
        assert_eq!(unix_permissions(go_mode(0o103_755)), 0o3755);
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_relative("a/b").is_ok());
        assert!(safe_relative("../x").is_err());
        assert!(safe_relative("/etc/passwd").is_err());
        assert!(safe_relative("a/../../x").is_err());
    }

    #[test]
    fn listing_numbers_every_entry_and_requests_only_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("b.txt"), "bb").unwrap();
        std::fs::write(dir.path().join("skip.log"), "x").unwrap();
        std::os::unix::fs::symlink("b.txt", dir.path().join("link")).unwrap();
        let (stats, files) = listing(
            dir.path(),
            &Selection {
                exclude_patterns: vec!["*.log".into()],
                ..Selection::default()
            },
        )
        .unwrap();
        let paths: Vec<&str> = stats.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["b.txt", "link", "sub", "sub/a.txt"]);
        assert_eq!(stats[1].linkname, "b.txt");
        assert_eq!(stats[0].size, 2);
        assert_eq!(stats[2].mode & go::DIR, go::DIR);
        let ids: Vec<u32> = files.keys().copied().collect();
        assert_eq!(ids, [0, 3]);
    }
}
