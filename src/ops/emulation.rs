//! How a RUN step for another architecture runs on this host: natively, through a
//! `binfmt_misc` handler the host registered, or by starting its first process under a QEMU
//! user-mode emulator bound into the container, as BuildKit does when no handler exists.
//! Part of `ops`.

use std::path::{Path, PathBuf};

use crate::platform::Platform;

/// Where a QEMU emulator is bound inside the container.
// Compat: buildkit's qemuMountName.
pub const EMULATOR_MOUNT: &str = "/dev/.buildkit_qemu_emulator";

/// How steps of one platform run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emulation {
    /// The CPU runs them.
    Native,
    /// The kernel hands foreign binaries to the registered `binfmt_misc` handler.
    Binfmt {
        /// The handler's name under `/proc/sys/fs/binfmt_misc`.
        handler: String,
    },
    /// The step's first process starts under this emulator (on the host), bound in at
    /// [`EMULATOR_MOUNT`].
    Inject {
        /// The emulator binary.
        emulator: PathBuf,
    },
}

/// No way to run a platform's steps here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot run `{platform}` steps on this `{host}` host: no binfmt_misc handler and no QEMU emulator (`qemu-{qemu}-static`) found"
)]
pub struct NoEmulator {
    /// The step's platform.
    pub platform: String,
    /// The host's platform.
    pub host: String,
    /// QEMU's name for the architecture.
    pub qemu: String,
}

/// The platforms this host's CPU runs without emulation: its own, and the 32-bit one an
/// amd64 CPU also runs.
pub fn native_platforms() -> Vec<Platform> {
    let host = Platform::host();
    let mut platforms = vec![host.clone()];
    if host.architecture == "amd64" {
        platforms.push(Platform {
            os: host.os.clone(),
            architecture: "386".to_owned(),
            variant: None,
        });
    }
    platforms
}

/// QEMU's name for a Go architecture (`arm64` → `aarch64`).
pub fn qemu_arch(architecture: &str) -> &str {
    match architecture {
        "amd64" => "x86_64",
        "386" => "i386",
        "arm64" => "aarch64",
        "arm" => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64le" => "mips64el",
        "mips64" => "mips64",
        "loong64" => "loongarch64",
        other => other,
    }
}

/// Decides how steps for `platform` run, looking at the host's handlers and `PATH`.
pub fn for_platform(platform: &Platform) -> Result<Emulation, NoEmulator> {
    // `/usr/bin` too: Debian's qemu-user-static lives there, whatever `PATH` says.
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map_or_else(Vec::new, |p| std::env::split_paths(&p).collect());
    dirs.push(PathBuf::from("/usr/bin"));
    let path = std::env::join_paths(dirs).unwrap_or_default();
    for_platform_in(
        platform,
        Path::new("/proc/sys/fs/binfmt_misc"),
        Some(path.as_os_str()),
    )
}

/// [`for_platform`] with the `binfmt_misc` directory and `PATH` given (for tests).
pub fn for_platform_in(
    platform: &Platform,
    binfmt: &Path,
    path: Option<&std::ffi::OsStr>,
) -> Result<Emulation, NoEmulator> {
    let wanted = platform.clone().normalize();
    if wanted.os != "linux"
        || native_platforms()
            .iter()
            .any(|native| native.architecture == wanted.architecture)
    {
        return Ok(Emulation::Native);
    }
    let qemu = qemu_arch(&wanted.architecture);
    for handler in [format!("qemu-{qemu}"), format!("buildkit-qemu-{qemu}")] {
        if let Ok(text) = std::fs::read_to_string(binfmt.join(&handler))
            && text.lines().next() == Some("enabled")
        {
            return Ok(Emulation::Binfmt { handler });
        }
    }
    let names = [
        format!("qemu-{qemu}-static"),
        format!("buildkit-qemu-{qemu}"),
        format!("qemu-{qemu}"),
    ];
    let dirs: Vec<PathBuf> = path.map_or_else(Vec::new, |p| std::env::split_paths(p).collect());
    for name in &names {
        for dir in &dirs {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(Emulation::Inject {
                    emulator: candidate,
                });
            }
        }
    }
    Err(NoEmulator {
        platform: wanted.to_string(),
        host: Platform::host().to_string(),
        qemu: qemu.to_owned(),
    })
}

/// Whether `path` is an executable file. The emulator runs inside the container's root, so
/// only a statically linked one works: the static names are tried first (Debian's
/// `qemu-user-static`, BuildKit's `buildkit-qemu-*`), a plain `qemu-*` last.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The argv that starts `args` under the emulator bound at [`EMULATOR_MOUNT`]. A program
/// named without a `/` is looked up in the step's `PATH` inside `rootfs` first, because the
/// emulator does not search `PATH` itself.
pub fn inject_args(args: &[String], env: &[String], rootfs: &Path) -> Vec<String> {
    let Some(program) = args.first() else {
        return Vec::new();
    };
    let program = if program.contains('/') {
        program.clone()
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(crate::executor::DEFAULT_PATH);
        path.split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
            .find(|candidate| {
                std::fs::symlink_metadata(rootfs.join(candidate.trim_start_matches('/'))).is_ok()
            })
            .unwrap_or_else(|| program.clone())
    };
    let mut out = Vec::with_capacity(args.len() + 1);
    out.push(EMULATOR_MOUNT.to_owned());
    out.push(program);
    out.extend(args.iter().skip(1).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(text: &str) -> Platform {
        text.parse().expect("platform")
    }

    #[test]
    fn the_host_architecture_is_native() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(
            for_platform_in(&Platform::host(), dir.path(), None),
            Ok(Emulation::Native)
        );
    }

    #[test]
    fn a_registered_handler_wins_over_an_emulator_on_path() {
        let foreign = if Platform::host().architecture == "arm64" {
            "linux/amd64"
        } else {
            "linux/arm64"
        };
        let wanted = platform(foreign);
        let qemu = qemu_arch(&wanted.architecture);
        let binfmt = tempfile::tempdir().expect("dir");
        let bin = tempfile::tempdir().expect("dir");
        let emulator = bin.path().join(format!("qemu-{qemu}-static"));
        std::fs::write(&emulator, b"").expect("write");
        std::fs::set_permissions(
            &emulator,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        assert_eq!(
            for_platform_in(&wanted, binfmt.path(), Some(bin.path().as_os_str())),
            Ok(Emulation::Inject {
                emulator: emulator.clone()
            })
        );
        std::fs::write(
            binfmt.path().join(format!("qemu-{qemu}")),
            "enabled\ninterpreter /usr/bin/qemu\nflags: F\n",
        )
        .expect("write");
        assert_eq!(
            for_platform_in(&wanted, binfmt.path(), Some(bin.path().as_os_str())),
            Ok(Emulation::Binfmt {
                handler: format!("qemu-{qemu}")
            })
        );
    }

    #[test]
    fn without_handler_or_emulator_the_error_names_the_package_binary() {
        let dir = tempfile::tempdir().expect("dir");
        if Platform::host().architecture == "s390x" {
            return;
        }
        let empty = tempfile::tempdir().expect("dir");
        let error = for_platform_in(
            &platform("linux/s390x"),
            dir.path(),
            Some(empty.path().as_os_str()),
        )
        .expect_err("no emulator");
        assert_eq!(error.qemu, "s390x");
        assert!(error.to_string().contains("`linux/s390x`"), "{error}");
        assert!(error.to_string().contains("qemu-s390x-static"), "{error}");
    }

    #[test]
    fn injected_args_resolve_the_program_in_the_rootfs() {
        let root = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(root.path().join("bin")).expect("mkdir");
        std::fs::write(root.path().join("bin/tool"), b"").expect("write");
        let args = vec!["tool".to_owned(), "-x".to_owned()];
        assert_eq!(
            inject_args(&args, &["PATH=/usr/bin:/bin".to_owned()], root.path()),
            vec![EMULATOR_MOUNT, "/bin/tool", "-x"]
        );
        let shell = vec!["/bin/sh".to_owned(), "-c".to_owned(), "true".to_owned()];
        assert_eq!(
            inject_args(&shell, &[], root.path()),
            vec![EMULATOR_MOUNT, "/bin/sh", "-c", "true"]
        );
    }
}
