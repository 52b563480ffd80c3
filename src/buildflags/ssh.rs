//! The `ssh` spec: `id[=path]`, and the agent socket it names on this host (shared by the
//! embedded solver and a BuildKit session). Part of `buildflags`.

use std::path::{Path, PathBuf};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::unavailable::Unavailable;

/// The id an `ssh` entry or `RUN --mount=type=ssh` without `id` stands for.
// Compat: buildkit sshforward.DefaultID.
pub const DEFAULT_SSH_ID: &str = "default";

/// An SSH agent socket or key set (`ssh`): `default` or `id=path,path`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ssh {
    /// The id `RUN --mount=type=ssh,id=` refers to.
    pub id: String,
    /// Key files or agent sockets; empty means the default agent.
    pub paths: Vec<String>,
}

impl Ssh {
    /// Parses `id[=path[,path...]]`.
    // Compat: buildx SSH.UnmarshalText (util/buildflags/ssh.go).
    pub fn parse(input: &str) -> Self {
        match input.split_once('=') {
            Some((id, paths)) => Self {
                id: id.to_owned(),
                paths: paths.split(',').map(str::to_owned).collect(),
            },
            None => Self {
                id: input.to_owned(),
                paths: Vec::new(),
            },
        }
    }
}

impl Serialize for Ssh {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let count = usize::from(!self.id.is_empty()) + usize::from(!self.paths.is_empty());
        let mut out = serializer.serialize_struct("Ssh", count)?;
        if !self.id.is_empty() {
            out.serialize_field("id", &self.id)?;
        }
        if !self.paths.is_empty() {
            out.serialize_field("paths", &self.paths)?;
        }
        out.end()
    }
}

impl Ssh {
    /// The id, `default` when none is written.
    pub fn id_or_default(&self) -> &str {
        if self.id.is_empty() {
            DEFAULT_SSH_ID
        } else {
            &self.id
        }
    }

    /// The agent socket, as an absolute path: `$SSH_AUTH_SOCK` for an entry without a path
    /// (or with an empty one), else its path, which must be a socket.
    // Compat: buildkit sshprovider AgentConfig.toDialer (an empty path means SSH_AUTH_SOCK).
    pub fn agent_socket(&self) -> Result<PathBuf, Unavailable> {
        let id = self.id_or_default().to_owned();
        let path = match self.paths.as_slice() {
            [] => None,
            [one] if one.is_empty() => None,
            [one] => Some(PathBuf::from(one)),
            several => {
                return Err(Unavailable::SeveralPaths {
                    id,
                    count: several.len(),
                });
            }
        };
        let path = match path {
            Some(path) => path,
            None => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| Unavailable::NoAgent { id: id.clone() })?,
        };
        let path = std::path::absolute(&path).unwrap_or(path);
        socket(&id, &path)?;
        Ok(path)
    }
}

fn socket(id: &str, path: &Path) -> Result<(), Unavailable> {
    use std::os::unix::fs::FileTypeExt as _;
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(()),
        Ok(_) => Err(Unavailable::NotSocket {
            id: id.to_owned(),
            path: path.to_owned(),
        }),
        Err(error) => Err(Unavailable::AgentPath {
            id: id.to_owned(),
            path: path.to_owned(),
            error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_id_defaults_and_key_files_are_refused() {
        assert_eq!(Ssh::parse("").id_or_default(), "default");
        assert_eq!(Ssh::parse("gh=/x").id_or_default(), "gh");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "not a socket").unwrap();
        let entry = Ssh::parse(&format!("gh={}", key.display()));
        assert!(matches!(
            entry.agent_socket(),
            Err(Unavailable::NotSocket { .. })
        ));
        let two = Ssh::parse("gh=/a,/b");
        assert!(matches!(
            two.agent_socket(),
            Err(Unavailable::SeveralPaths { count: 2, .. })
        ));
    }

    #[test]
    fn ssh_socket_path_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let entry = Ssh::parse(&format!("a={}", path.display()));
        assert_eq!(entry.agent_socket().unwrap(), path);
    }
}
