//! Resolves a Docker-style user string (`name`, `uid`, `uid:gid`, `name:group`) to numeric ids
//! using the rootfs's own `/etc/passwd` and `/etc/group`, never the host's.
//!
//! Part of the executor; imports nothing from the crate's graph, cache, image or layer
//! modules. Paths inside the rootfs are resolved with [`resolve_in_root`], so a symlink such
//! as `/etc/passwd -> /host/secret` cannot make us read a file outside the rootfs.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::executor::error::{Error, Result};

/// Numeric identity of the container process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary group ids, in `/etc/group` order.
    pub additional_gids: Vec<u32>,
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Names of the members.
    pub members: Vec<String>,
}

/// Resolves `user` against the passwd and group files of `rootfs`.
///
/// Compat: buildkit executor/oci/user.go `GetUser`: an empty string is root; a purely numeric
/// `uid` or `uid:gid` is taken as is, without reading any file (so the gid of a bare uid is 0
/// and there are no supplementary groups); anything else goes through the passwd and group
/// files, as moby/sys/user `GetExecUser` does, and supplementary groups are added only when
/// no group was given.
///
/// # Errors
///
/// [`Error::UnknownUser`] or [`Error::UnknownGroup`] for names the rootfs does not define
/// (a missing file defines nothing), [`Error::InvalidUser`] for malformed strings.
pub fn resolve(rootfs: &Path, user: &str) -> Result<ResolvedUser> {
    if user.is_empty() {
        return Ok(ResolvedUser::default());
    }
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if user_part.is_empty() || group_part.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(Error::InvalidUser { user: user.into() });
    }
    let numeric_uid = user_part.parse::<u32>().ok();
    let numeric_gid = group_part.map(|g| g.parse::<u32>().ok());
    // The fast path never opens a file, so numeric users work on a rootfs without /etc.
    if let (Some(uid), None | Some(Some(_))) = (numeric_uid, numeric_gid) {
        return Ok(ResolvedUser {
            uid,
            gid: numeric_gid.flatten().unwrap_or(0),
            additional_gids: Vec::new(),
        });
    }

    let passwd_path = resolve_in_root(rootfs, "/etc/passwd");
    let group_path = resolve_in_root(rootfs, "/etc/group");
    let passwd = parse_passwd(&read_optional(&passwd_path)?);
    let groups = parse_group(&read_optional(&group_path)?);

    let entry = passwd
        .iter()
        .find(|e| Some(e.uid) == numeric_uid || e.name == user_part);
    let (uid, mut gid, name) = match (entry, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name.as_str())),
        // A numeric uid that passwd does not list is still a valid user.
        (None, Some(uid)) => (uid, 0, None),
        (None, None) => {
            return Err(Error::UnknownUser {
                user: user_part.into(),
                path: passwd_path,
            });
        }
    };
    let mut additional_gids = Vec::new();
    match group_part {
        Some(group) => {
            gid = match group.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => groups
                    .iter()
                    .find(|g| g.name == group)
                    .map(|g| g.gid)
                    .ok_or_else(|| Error::UnknownGroup {
                        group: group.into(),
                        path: group_path.clone(),
                    })?,
            };
        }
        None => {
            if let Some(name) = name {
                additional_gids = groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m == name))
                    .map(|g| g.gid)
                    .collect();
                additional_gids.dedup();
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

/// Reads a file, treating "does not exist" as empty.
fn read_optional(path: &Path) -> Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(Error::ReadUserDatabase {
            path: path.into(),
            source,
        }),
    }
}

/// Parses `/etc/passwd`, skipping comments and malformed lines as libc does.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?.trim();
            let _password = fields.next()?;
            let uid = fields.next()?.trim().parse().ok()?;
            let gid = fields.next()?.trim().parse().ok()?;
            (!name.is_empty()).then(|| PasswdEntry {
                name: name.into(),
                uid,
                gid,
            })
        })
        .collect()
}

/// Parses `/etc/group`, skipping comments and malformed lines as libc does.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?.trim();
            let _password = fields.next()?;
            let gid = fields.next()?.trim().parse().ok()?;
            let members = fields
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            (!name.is_empty()).then(|| GroupEntry {
                name: name.into(),
                gid,
                members,
            })
        })
        .collect()
}

/// Maps the container path `path` to a host path under `rootfs`, resolving symlinks as if
/// `rootfs` were `/`: absolute link targets and `..` never leave `rootfs`.
///
/// Compat: the scoping of github.com/cyphar/filepath-securejoin, which buildkit uses for the
/// same purpose. Components that do not exist are appended as they are.
pub fn resolve_in_root(rootfs: &Path, path: &str) -> PathBuf {
    // Bounds symlink chains, as the kernel's MAXSYMLINKS (40) does.
    let mut budget = 40;
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = components(path).into_iter().rev().collect();
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = join(rootfs, &resolved).join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) if budget > 0 => {
                budget -= 1;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(components(&target).into_iter().rev());
            }
            _ => resolved.push(part),
        }
    }
    join(rootfs, &resolved)
}

/// Splits a container path into normal components and `..`, dropping `.` and `/`.
fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn join(rootfs: &Path, parts: &[String]) -> PathBuf {
    let mut out = rootfs.to_path_buf();
    out.extend(parts);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\n\
                          app:x:1000:1001:App:/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app, root\napp:x:1001:\nstaff:x:50:app\n";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        dir
    }

    fn ids(uid: u32, gid: u32, additional_gids: &[u32]) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            additional_gids: additional_gids.to_vec(),
        }
    }

    #[test]
    fn parses_passwd_skipping_comments_and_malformed_lines() {
        let entries = parse_passwd(PASSWD);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].name, "app");
        assert_eq!((entries[1].uid, entries[1].gid), (1000, 1001));
    }

    #[test]
    fn parses_group_members() {
        let groups = parse_group(GROUP);
        assert_eq!(groups[1].members, ["app", "root"]);
        assert!(groups[0].members.is_empty());
    }

    #[test]
    fn empty_user_is_root() {
        assert_eq!(
            resolve(Path::new("/nonexistent"), "").unwrap(),
            ids(0, 0, &[])
        );
    }

    #[test]
    fn numeric_users_need_no_files() {
        let none = Path::new("/nonexistent");
        assert_eq!(resolve(none, "1234").unwrap(), ids(1234, 0, &[]));
        assert_eq!(resolve(none, "1234:55").unwrap(), ids(1234, 55, &[]));
    }

    #[test]
    fn name_gets_primary_and_supplementary_groups() {
        let dir = rootfs();
        assert_eq!(
            resolve(dir.path(), "app").unwrap(),
            ids(1000, 1001, &[10, 50])
        );
    }

    #[test]
    fn explicit_group_drops_supplementary_groups() {
        let dir = rootfs();
        assert_eq!(
            resolve(dir.path(), "app:staff").unwrap(),
            ids(1000, 50, &[])
        );
        assert_eq!(resolve(dir.path(), "app:7").unwrap(), ids(1000, 7, &[]));
        assert_eq!(
            resolve(dir.path(), "1000:wheel").unwrap(),
            ids(1000, 10, &[])
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let dir = rootfs();
        let err = resolve(dir.path(), "ghost").unwrap_err();
        assert!(matches!(err, Error::UnknownUser { ref user, .. } if user == "ghost"));
        assert!(
            err.to_string()
                .starts_with("unable to find user `ghost` in `")
        );
        let err = resolve(dir.path(), "app:ghosts").unwrap_err();
        assert!(matches!(err, Error::UnknownGroup { ref group, .. } if group == "ghosts"));
    }

    #[test]
    fn missing_passwd_allows_only_numeric_ids() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            resolve(dir.path(), "app"),
            Err(Error::UnknownUser { .. })
        ));
        assert_eq!(resolve(dir.path(), "5").unwrap(), ids(5, 0, &[]));
    }

    #[test]
    fn malformed_user_strings_are_rejected() {
        for user in [":", "app:", ":1", "a:b:c"] {
            assert!(
                matches!(
                    resolve(Path::new("/"), user),
                    Err(Error::InvalidUser { .. })
                ),
                "{user}"
            );
        }
    }

    #[test]
    fn symlinks_cannot_escape_the_rootfs() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let escape = format!("../../../../../..{}/passwd", outside.path().display());
        std::os::unix::fs::symlink(&escape, dir.path().join("etc/passwd")).unwrap();
        let resolved = resolve_in_root(dir.path(), "/etc/passwd");
        assert!(resolved.starts_with(dir.path()), "{}", resolved.display());
        assert!(matches!(
            resolve(dir.path(), "evil"),
            Err(Error::UnknownUser { .. })
        ));
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("real/etc")).unwrap();
        std::os::unix::fs::symlink("/real/etc", dir.path().join("etc")).unwrap();
        assert_eq!(
            resolve_in_root(dir.path(), "/etc/passwd"),
            dir.path().join("real/etc/passwd")
        );
    }
}
