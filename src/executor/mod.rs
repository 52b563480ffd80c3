//! Runs one RUN step: owns the [`ExecRequest`] (rootfs path, argv, env, cwd, user, mounts,
//! network mode), its translation into an OCI runtime spec ([`spec`]) and the hand-off to an
//! OCI runtime such as runc or crun ([`runtime`]).
//!
//! Stage 4 (execute), storage layer. It imports nothing from the crate: it knows nothing
//! about graphs, caches, images or layers. The caller (the `ops` layer) prepares a rootfs
//! directory and the mount sources; the executor returns an exit status and streams the
//! process's output through a callback.
//!
//! Files the executor generates (`/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`) live in a
//! private bundle directory and are bind-mounted, so they never land in the rootfs and never
//! leak into a layer. Empty mount points that the runtime has to create in the rootfs are
//! removed again after the run ([`stub`]).

mod error;
mod request;
pub mod runtime;
pub mod spec;
pub mod stub;
pub mod user;

pub use self::error::{Error, Result};
pub use self::request::{
    DEFAULT_HOSTNAME, DEFAULT_PATH, ExecRequest, ExitStatus, Mount, MountKind, Network, Resources,
    Rlimit, Stream,
};
pub use self::runtime::{Runc, Runtime};
