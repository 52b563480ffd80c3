//! Choices a build makes from the configuration before it starts: where its state lives and
//! which platform a request without one builds for, and what relative paths are relative to.
//! Part of `engine`.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::plan;
use crate::platform::Platform;

/// The state root: `explicit` (`--root`), else `root` from the config file, else
/// `/var/lib/bake` as root, else the XDG data directory.
// Compat: buildkitd's default root is /var/lib/buildkit as root, $XDG_DATA_HOME otherwise.
pub fn state_root(explicit: Option<&Path>, config: &Config) -> PathBuf {
    if let Some(root) = explicit.or(config.root.as_deref()) {
        // Runtime specs need absolute paths, and a build must not depend on where a
        // relative root happens to be read from later.
        return std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    }
    if rustix::process::geteuid().is_root() {
        return "/var/lib/bake".into();
    }
    match (std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME")) {
        (Some(data), _) => PathBuf::from(data).join("bake"),
        (None, Some(home)) => PathBuf::from(home).join(".local/share/bake"),
        (None, None) => std::env::temp_dir().join("bake"),
    }
}

/// Gives requests without a platform the worker's first `platforms` entry, as buildkitd
/// makes it the default platform. `None` when nothing changes.
// Compat: buildkit's worker platforms: the first is what a build without a platform targets.
pub fn with_worker_platform(plan: &plan::Plan, config: &Config) -> Option<plan::Plan> {
    let default = config.worker.platforms.first()?;
    if *default == Platform::host().normalize()
        || plan.requests.iter().all(|r| r.platform.is_some())
    {
        return None;
    }
    let requests = plan
        .requests
        .iter()
        .map(|request| plan::BuildRequest {
            platform: request.platform.clone().or_else(|| Some(default.clone())),
            ..request.clone()
        })
        .collect();
    Some(plan::Plan { requests })
}

/// Output paths are relative to the directory bake runs in, as in buildx.
pub fn absolute(destination: &str) -> String {
    let path = Path::new(destination);
    if path.is_absolute() {
        return destination.to_owned();
    }
    std::env::current_dir().map_or_else(
        |_| destination.to_owned(),
        |cwd| cwd.join(path).display().to_string(),
    )
}

/// A platform this host's worker can build for, and how its RUN steps run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPlatform {
    /// The platform.
    pub platform: Platform,
    /// `native`, `binfmt_misc handler ...`, `first process only, under ...` or
    /// `unavailable: ...`.
    pub how: String,
}

/// The platforms this host builds for (like `buildctl debug workers`): what the CPU runs,
/// then every common architecture, saying whether a `binfmt_misc` handler runs its steps,
/// only their first process runs under QEMU, or nothing can run them.
pub fn worker_platforms() -> Vec<WorkerPlatform> {
    use crate::ops::emulation::{for_platform, native_platforms};
    let mut out: Vec<WorkerPlatform> = native_platforms()
        .into_iter()
        .map(|platform| WorkerPlatform {
            platform,
            how: "native".to_owned(),
        })
        .collect();
    for text in [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/ppc64le",
        "linux/s390x",
        "linux/riscv64",
        "linux/mips64le",
        "linux/loong64",
    ] {
        let Ok(platform) = text.parse::<Platform>() else {
            continue;
        };
        if out.iter().any(|w| w.platform == platform) {
            continue;
        }
        let how = match for_platform(&platform) {
            Ok(emulation) => emulation.describe(&platform),
            Err(missing) => format!(
                "unavailable: no binfmt_misc handler and no `qemu-{}-static`",
                missing.qemu
            ),
        };
        out.push(WorkerPlatform { platform, how });
    }
    out
}
