//! The exec op (`RUN`): turns a graph `ExecOp` and its input roots into one executor run.
//! Part of `ops`.
//!
//! The op's `/` mount is the mutable root the caller prepared; other binds come from input
//! roots. A writable bind that produces no output gets a throwaway copy, so a cached input is
//! never changed by a later step. Cache mounts persist under a cache root and never enter a
//! layer; secrets are written to a private directory outside the root and bound read-only.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::executor::{self, ExecRequest, ExitStatus, MountKind, Network, Runtime, Stream};
use crate::graph::{self, ExecOp, NetworkMode, SecurityMode};
use crate::ops::cache_mount::Restore;

/// Why an exec op could not run (a non-zero exit is not an error: see [`ExitStatus`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mount refers to an input the vertex does not have (a malformed definition).
    #[error("mount `{dest}` refers to input {index}, but only {count} inputs were given")]
    MissingInput {
        /// The mount point.
        dest: String,
        /// The input index.
        index: usize,
        /// How many inputs there are.
        count: usize,
    },
    /// A required secret was not provided.
    #[error("secret `{id}` is required but was not provided")]
    MissingSecret {
        /// The secret id.
        id: String,
    },
    /// A required SSH agent was not provided.
    #[error(
        "SSH agent `{id}` is required but was not provided (bake `ssh` attribute or `--set *.ssh=default`)"
    )]
    MissingSsh {
        /// The SSH id.
        id: String,
    },
    /// The step asks for something bake does not provide.
    #[error("{what} is not supported")]
    Unsupported {
        /// What is missing.
        what: String,
    },
    /// Preparing a mount failed.
    #[error("failed to prepare `{path}`")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A cache mount's directory could not be prepared.
    #[error(transparent)]
    CacheMount(#[from] crate::ops::cache_mount::Error),
    /// Copying an input for a writable mount failed.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::Error),
    /// The runtime failed.
    #[error(transparent)]
    Executor(#[from] executor::Error),
}

/// Result alias for the exec op.
pub type Result<T> = std::result::Result<T, Error>;

/// What every exec op of a build shares.
pub struct ExecEnvironment<'a> {
    /// The OCI runtime (runc or crun).
    pub runtime: &'a dyn Runtime,
    /// Where cache mounts live between builds (`<root>/cache-mounts`).
    pub cache_root: &'a Path,
    /// Secret values by id.
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
    /// SSH agent sockets by id (`RUN --mount=type=ssh`).
    pub ssh: &'a BTreeMap<String, PathBuf>,
    /// The QEMU emulator to start the step's first process under, for a foreign platform
    /// this host has no `binfmt_misc` handler for.
    pub emulator: Option<&'a Path>,
    /// The interpreter of a `binfmt_misc` handler registered without `F`, which the kernel
    /// looks up inside the container: bound read-only at its own path.
    pub interpreter: Option<&'a Path>,
    /// Fills empty cache mounts from the imported build caches.
    pub restore: Option<&'a Restore>,
    /// Receives lines about the step's preparation (a cache mount restored) for its log.
    pub note: &'a dyn Fn(&str),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Runs `op` with `root` as its root filesystem and `inputs[i]` as the root of input `i`;
/// `output` receives the process's stdout and stderr as they arrive.
pub fn run(
    op: &ExecOp,
    root: &Path,
    inputs: &[&Path],
    environment: &ExecEnvironment<'_>,
    output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<ExitStatus> {
    if !op.meta.devices.is_empty() {
        return Err(Error::Unsupported {
            what: "`RUN --device`".to_owned(),
        });
    }
    // Scratch space for throwaway copies, empty binds and secret files; removed on return.
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    let mut request = ExecRequest::new(root, op.meta.args.clone());
    request.env = op.meta.env.clone();
    request
        .env
        .extend(op.proxy_env.iter().map(|(k, v)| format!("{k}={v}")));
    request.cwd = if op.meta.cwd.is_empty() {
        "/".to_owned()
    } else {
        op.meta.cwd.clone()
    };
    request.user = op.meta.user.clone();
    // The engine checked the `security.insecure` grant before the build started.
    request.privileged = op.security == SecurityMode::Insecure;
    request.network = match op.network {
        // Compat: without CNI, BuildKit's sandbox network is the host's.
        NetworkMode::Sandbox | NetworkMode::Host => Network::Host,
        NetworkMode::None => Network::None,
    };
    request.extra_hosts = op
        .meta
        .extra_hosts
        .iter()
        .filter_map(|entry| {
            entry
                .split_once('=')
                .map(|(h, ip)| (h.to_owned(), ip.to_owned()))
        })
        .collect();
    request.shm_size = op.meta.shm_size;
    request.rlimits = op
        .meta
        .ulimits
        .iter()
        .map(|u| executor::Rlimit {
            resource: u.name.clone(),
            soft: u.soft,
            hard: u.hard,
        })
        .collect();
    request.resources = op.resources.as_ref().map(|r| executor::Resources {
        memory: r.memory,
        memory_swap: r.memory_swap,
        cpu_shares: r.cpu_shares,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
    });
    for secret in &op.secret_env {
        match environment.secrets.get(&secret.id) {
            Some(value) => request.env.push(format!(
                "{}={}",
                secret.name,
                String::from_utf8_lossy(value)
            )),
            None if secret.required => {
                return Err(Error::MissingSecret {
                    id: secret.id.clone(),
                });
            }
            None => {}
        }
    }
    let mut locks = Vec::new();
    for (index, mount) in op.mounts.iter().enumerate() {
        if mount.dest == "/" {
            continue;
        }
        let kind = mount_kind(
            mount,
            index,
            inputs,
            environment,
            scratch.path(),
            &mut locks,
        )?;
        if let Some(kind) = kind {
            request.mounts.push(executor::Mount {
                destination: mount.dest.clone(),
                kind,
            });
        }
    }
    if let Some(emulator) = environment.emulator {
        // Compat: buildkit's exec_binfmt: the emulator is bound read-only into the container
        // and runs the step's first process.
        request.args = crate::ops::emulation::inject_args(&request.args, &request.env, root);
        request.mounts.push(executor::Mount {
            destination: crate::ops::emulation::EMULATOR_MOUNT.to_owned(),
            kind: executor::MountKind::Bind {
                source: emulator.to_path_buf(),
                readonly: true,
            },
        });
    }
    if let Some(interpreter) = environment.interpreter {
        request.mounts.push(executor::Mount {
            destination: interpreter.display().to_string(),
            kind: executor::MountKind::Bind {
                source: interpreter.to_path_buf(),
                readonly: true,
            },
        });
    }
    let status = environment.runtime.run(&request, output)?;
    drop(locks);
    Ok(status)
}

/// The directory of the input `mount` reads (its `selector` inside that input's root), if
/// it reads one.
fn input_path(mount: &graph::Mount, inputs: &[&Path]) -> Result<Option<PathBuf>> {
    let Some(input) = mount.input else {
        return Ok(None);
    };
    let base = inputs.get(input).ok_or(Error::MissingInput {
        dest: mount.dest.clone(),
        index: input,
        count: inputs.len(),
    })?;
    Ok(Some(crate::executor::user::resolve_in_root(
        base,
        &mount.selector,
    )))
}

fn mount_kind(
    mount: &graph::Mount,
    index: usize,
    inputs: &[&Path],
    environment: &ExecEnvironment<'_>,
    scratch: &Path,
    locks: &mut Vec<fs::File>,
) -> Result<Option<MountKind>> {
    Ok(Some(match &mount.kind {
        graph::MountKind::Bind => {
            let source = match input_path(mount, inputs)? {
                Some(path) => path,
                None => {
                    let empty = scratch.join(format!("empty-{index}"));
                    fs::create_dir_all(&empty).map_err(io_error(&empty))?;
                    empty
                }
            };
            let source = if mount.readonly || mount.input.is_none() {
                source
            } else {
                // Writes to a bind that produces no kept output must not reach the input.
                let copy = scratch.join(format!("bind-{index}"));
                crate::snapshot::copy_tree(&source, &copy)?;
                copy
            };
            MountKind::Bind {
                source,
                readonly: mount.readonly,
            }
        }
        graph::MountKind::Cache { id, sharing, owner } => {
            let base = input_path(mount, inputs)?.map(|path| (path, mount.selector.as_str()));
            let prepared = crate::ops::cache_mount::prepare(
                environment.cache_root,
                id,
                *sharing,
                owner.mode,
                locks,
                environment.restore,
                base.as_ref()
                    .map(|(path, source)| (path.as_path(), *source)),
            )?;
            if let Some(note) = &prepared.note {
                (environment.note)(note);
            }
            MountKind::Bind {
                source: prepared.dir,
                readonly: mount.readonly,
            }
        }
        graph::MountKind::Tmpfs { size } => MountKind::Tmpfs {
            size: (*size > 0).then_some(*size),
        },
        graph::MountKind::Secret {
            id,
            owner,
            required,
        } => {
            let Some(value) = environment.secrets.get(id) else {
                if *required {
                    return Err(Error::MissingSecret { id: id.clone() });
                }
                return Ok(None);
            };
            let file = scratch.join(format!("secret-{index}"));
            fs::write(&file, value).map_err(io_error(&file))?;
            let mode = owner.mode.unwrap_or(0o400);
            fs::set_permissions(&file, fs::Permissions::from_mode(mode))
                .map_err(io_error(&file))?;
            MountKind::Bind {
                source: file,
                readonly: true,
            }
        }
        graph::MountKind::Ssh { id, required, .. } => {
            // Diverges: BuildKit proxies the agent through its session; without a daemon the
            // agent's socket itself is bound into the container.
            let Some(socket) = environment.ssh.get(id) else {
                if *required {
                    return Err(Error::MissingSsh { id: id.clone() });
                }
                return Ok(None);
            };
            MountKind::Bind {
                source: socket.clone(),
                readonly: true,
            }
        }
    }))
}
