//! The extended attributes of a context path that count as part of its identity: what
//! checksums hash and the copy into a snapshot keeps. Part of `source::local`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// Reads the extended attributes that belong to a file's identity, sorted by name.
// Compat: buildkit cache/contenthash: `security.*` except `security.capability`, and
// `system.*` (ACLs the kernel derives), are left out of checksums.
pub(super) fn read_xattrs(path: &Path) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let mut names = vec![0u8; 4096];
    let length = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(length) => break length,
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(rustix::io::Errno::RANGE) => {
                let needed = rustix::fs::llistxattr_query(path)?;
                names.resize(needed.max(names.len() * 2), 0);
            }
            Err(errno) => return Err(errno.into()),
        }
    };
    let mut xattrs = Vec::new();
    for name in names[..length].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let kept = !name.starts_with(b"system.")
            && (!name.starts_with(b"security.") || name == b"security.capability");
        if !kept {
            continue;
        }
        let name = OsStr::from_bytes(name);
        let size = rustix::fs::lgetxattr_query(path, name)?;
        let mut value = vec![0u8; size];
        let size = rustix::fs::lgetxattr(path, name, &mut value[..])?;
        value.truncate(size);
        xattrs.push((name.to_owned(), value));
    }
    xattrs.sort();
    Ok(xattrs)
}
