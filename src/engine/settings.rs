//! Choices a build makes from the configuration before it starts: where its state lives and
//! which platform a request without one builds for, and what relative paths are relative to.
//! Part of `engine`.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::engine::error::Error;
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

/// Checks every request's platform against `[worker.oci] platforms`: when the config names
/// the worker's platforms, nothing else is built, so a host that should not emulate (or a
/// CI runner meant for one architecture) fails before any step instead of running an
/// unexpected platform slowly. A configured platform also takes older variants of itself
/// (`linux/amd64/v3` builds `linux/amd64/v2`).
pub fn check_worker_platforms(plan: &plan::Plan, config: &Config) -> Result<(), Error> {
    let configured = &config.worker.platforms;
    if configured.is_empty() {
        return Ok(());
    }
    for request in &plan.requests {
        let wanted = request.platform.clone().unwrap_or_else(Platform::host);
        if configured.iter().any(|p| p.match_rank(&wanted).is_some()) {
            continue;
        }
        return Err(Error::WorkerPlatform {
            target: request.target.clone(),
            platform: wanted.to_string(),
            platforms: configured
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", "),
            file: config.path.as_ref().map_or_else(
                || "the config file".to_owned(),
                |p| format!("`{}`", p.display()),
            ),
        });
    }
    Ok(())
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
/// only their first process runs under QEMU, or nothing can run them. When the config names
/// `[worker.oci] platforms`, those and only those, as the worker builds nothing else.
pub fn worker_platforms(config: &Config) -> Vec<WorkerPlatform> {
    use crate::ops::emulation::native_platforms;
    if !config.worker.platforms.is_empty() {
        return config
            .worker
            .platforms
            .iter()
            .map(|platform| WorkerPlatform {
                platform: platform.clone(),
                how: runs(platform),
            })
            .collect();
    }
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
        let how = runs(&platform);
        out.push(WorkerPlatform { platform, how });
    }
    out
}

/// How `platform`'s RUN steps run here, in words.
fn runs(platform: &Platform) -> String {
    match crate::ops::emulation::for_platform(platform) {
        Ok(emulation) => emulation.describe(platform),
        Err(missing) => format!(
            "unavailable: no binfmt_misc handler and no `qemu-{}-static`",
            missing.qemu
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(platforms: &[Option<&str>]) -> plan::Plan {
        plan::Plan {
            requests: platforms
                .iter()
                .map(|p| crate::engine::lower::tests::request("app", *p, &[]))
                .collect(),
        }
    }

    fn config(platforms: &[&str]) -> Config {
        let mut config = Config::default();
        config.worker.platforms = platforms.iter().map(|p| p.parse().unwrap()).collect();
        config
    }

    #[test]
    fn worker_platforms_admit_their_spellings_and_older_variants_only() {
        let worker = config(&["linux/amd64/v3", "linux/arm64/v8"]);
        for ok in [
            "linux/amd64",
            "linux/amd64/v2",
            "linux/amd64/v3",
            "linux/arm64",
        ] {
            assert!(
                check_worker_platforms(&plan(&[Some(ok)]), &worker).is_ok(),
                "{ok}"
            );
        }
        for refused in ["linux/amd64/v4", "linux/arm/v7", "linux/s390x"] {
            let error = check_worker_platforms(&plan(&[Some(refused)]), &worker).unwrap_err();
            assert!(error.to_string().contains(refused), "{error}");
        }
        assert!(check_worker_platforms(&plan(&[Some("linux/s390x")]), &config(&[])).is_ok());
    }
}
