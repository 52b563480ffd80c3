//! What `secret` and `ssh` entries name on this host: a secret's value (read from its
//! environment variable or file when asked) and an SSH entry's agent socket. Both back ends
//! use these, the embedded solver once per build and a BuildKit session each time the
//! daemon asks. Part of `buildflags`.

use std::path::{Path, PathBuf};

use super::{Secret, Ssh};

/// The id an `ssh` entry or `RUN --mount=type=ssh` without `id` stands for.
// Compat: buildkit sshforward.DefaultID.
pub const DEFAULT_SSH_ID: &str = "default";

/// Why a secret or SSH agent a target names cannot be provided.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// The environment variable a secret reads is not set.
    #[error("secret `{id}`: environment variable `{name}` is not set")]
    SecretEnv {
        /// The secret id.
        id: String,
        /// The variable.
        name: String,
    },
    /// The file a secret reads cannot be read.
    #[error("secret `{id}`: failed to read `{path}`: {error}")]
    SecretFile {
        /// The secret id.
        id: String,
        /// The file as written.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// An entry without a path, and no `SSH_AUTH_SOCK`.
    #[error(
        "SSH `{id}`: no agent (SSH_AUTH_SOCK is not set; start ssh-agent or give a socket path)"
    )]
    NoAgent {
        /// The SSH id.
        id: String,
    },
    /// The path is not a socket (a key file, say).
    #[error(
        "SSH `{id}`: `{}` is not an agent socket; key files are not supported (load them into ssh-agent and use its socket)",
        path.display()
    )]
    NotSocket {
        /// The SSH id.
        id: String,
        /// The path.
        path: PathBuf,
    },
    /// The path cannot be looked at.
    #[error("SSH `{id}`: `{}`: {error}", path.display())]
    AgentPath {
        /// The SSH id.
        id: String,
        /// The path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// More than one path: only key files may be combined, and bake forwards one agent.
    #[error(
        "SSH `{id}`: {count} paths given; bake forwards one agent socket per id (key files are not supported)"
    )]
    SeveralPaths {
        /// The SSH id.
        id: String,
        /// How many paths.
        count: usize,
    },
}

impl Secret {
    /// Reads the value now: from `env=`, from `src=`, or (neither given) from the
    /// environment variable named like the id if it is set, else the file named like it.
    /// A relative file is relative to the working directory.
    // Compat: buildkit secretsprovider.NewStore: an id alone means the env variable, then
    // the file.
    pub fn read(&self) -> Result<Vec<u8>, Unavailable> {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .map(std::ffi::OsString::into_encoded_bytes)
                .ok_or_else(|| Unavailable::SecretEnv {
                    id: self.id.clone(),
                    name: name.to_owned(),
                })
        };
        let from_file = |path: &str| {
            std::fs::read(path).map_err(|error| Unavailable::SecretFile {
                id: self.id.clone(),
                path: path.to_owned(),
                error,
            })
        };
        if !self.env.is_empty() {
            from_env(&self.env)
        } else if !self.src.is_empty() {
            from_file(&self.src)
        } else if std::env::var_os(&self.id).is_some() {
            from_env(&self.id)
        } else {
            from_file(&self.id)
        }
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
    fn secret_reads_its_file_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "one").unwrap();
        let secret = Secret::parse(&format!("id=tok,src={}", path.display())).unwrap();
        assert_eq!(secret.read().unwrap(), b"one");
        std::fs::write(&path, "two").unwrap();
        assert_eq!(secret.read().unwrap(), b"two");
        std::fs::remove_file(&path).unwrap();
        let error = secret.read().unwrap_err().to_string();
        assert!(error.starts_with("secret `tok`: failed to read"), "{error}");
    }

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
