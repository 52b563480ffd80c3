//! How a RUN step for another architecture runs on this host: natively, through a
//! `binfmt_misc` handler the host registered, or by starting its first process under a QEMU
//! user-mode emulator bound into the container, as BuildKit does when no handler exists; and
//! registering those handlers ([`setup`]). Part of `ops`.
//!
//! A handler is found by what it recognises, not by its name: one whose magic matches an
//! executable header of the architecture counts, whoever registered it. A handler with the
//! `F` flag works in any container, since the kernel opened its interpreter when it was
//! registered. One without `F` makes the kernel look the interpreter up inside the
//! container's root at every exec, so each step gets the host's interpreter bound read-only
//! at that same path (the mount point is removed after the step, so no layer holds it);
//! the interpreter must then be statically linked, as `qemu-user-static`'s are.

pub mod binfmt;
pub mod definition;
pub mod setup;

use std::path::{Path, PathBuf};

use crate::ops::emulation::binfmt::Flags;
use crate::ops::emulation::definition::Sources;
use crate::platform::Platform;

/// Where a QEMU emulator is bound inside the container.
// Compat: buildkit's qemuMountName.
pub const EMULATOR_MOUNT: &str = "/dev/.buildkit_qemu_emulator";

/// How steps of one platform run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emulation {
    /// The CPU runs them.
    Native,
    /// The kernel hands foreign binaries to a registered `binfmt_misc` handler.
    Binfmt {
        /// The handler's name under `/proc/sys/fs/binfmt_misc`.
        handler: String,
        /// Its flags.
        flags: Flags,
        /// Its interpreter.
        interpreter: PathBuf,
    },
    /// The step's first process starts under this emulator (on the host), bound in at
    /// [`EMULATOR_MOUNT`]; programs it starts fail with "exec format error".
    Inject {
        /// The emulator binary.
        emulator: PathBuf,
    },
}

impl Emulation {
    /// The host file to bind at the same path inside each step: the interpreter of a handler
    /// registered without `F`, which the kernel looks up in the container's root.
    pub fn interpreter_bind(&self) -> Option<&Path> {
        match self {
            Emulation::Binfmt {
                flags, interpreter, ..
            } if !flags.fix_binary => Some(interpreter),
            _ => None,
        }
    }

    /// How `bake debug workers` describes it.
    pub fn describe(&self, platform: &Platform) -> String {
        match self {
            Emulation::Native => "native".to_owned(),
            Emulation::Binfmt {
                handler,
                flags,
                interpreter,
            } if !flags.fix_binary => format!(
                "binfmt_misc handler `{handler}` (flags `{flags}`, no `F`: `{}` is bound into each step)",
                interpreter.display()
            ),
            Emulation::Binfmt { handler, flags, .. } => {
                format!("binfmt_misc handler `{handler}` (flags `{flags}`)")
            }
            Emulation::Inject { emulator } => format!(
                "first process only, under `{}`: programs a step starts fail without a binfmt_misc handler (`bake setup emulation --arch {}`)",
                emulator.display(),
                platform.architecture
            ),
        }
    }
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

/// Whether this host's CPU runs `architecture` (a Go or a QEMU name) itself.
pub fn is_native(architecture: &str) -> bool {
    native_platforms().iter().any(|native| {
        native.architecture == architecture || qemu_arch(&native.architecture) == architecture
    })
}

/// QEMU's name for a Go architecture (`arm64` → `aarch64`); QEMU names pass through.
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

/// What to do when a foreign step that ran under first-process injection fails with "exec
/// format error": register a handler.
pub fn exec_format_hint(platform: &str) -> String {
    let architecture = platform.split('/').nth(1).unwrap_or(platform);
    format!(
        "no binfmt_misc handler is registered for `{architecture}`, so only the first process of a `{platform}` step runs under QEMU and the programs it starts fail with `exec format error`: register one as root with `bake setup emulation --arch {architecture}`, or install `qemu-user-static` with systemd's binfmt support (`systemd-binfmt`) or `binfmt-support`"
    )
}

/// Decides how steps for `platform` run, looking at the host's handlers and `PATH`.
pub fn for_platform(platform: &Platform) -> Result<Emulation, NoEmulator> {
    for_platform_in(platform, Path::new(binfmt::DIR), &Sources::host())
}

/// [`for_platform`] with the `binfmt_misc` directory and the definition sources given (for
/// tests).
pub fn for_platform_in(
    platform: &Platform,
    binfmt_dir: &Path,
    sources: &Sources,
) -> Result<Emulation, NoEmulator> {
    let wanted = platform.clone().normalize();
    if wanted.os != "linux" || is_native(&wanted.architecture) {
        return Ok(Emulation::Native);
    }
    let qemu = qemu_arch(&wanted.architecture);
    if let Some(handler) = handler_for(qemu, binfmt_dir, sources) {
        return Ok(Emulation::Binfmt {
            handler: handler.name,
            flags: handler.flags,
            interpreter: handler.interpreter,
        });
    }
    let names = [
        format!("qemu-{qemu}-static"),
        format!("buildkit-qemu-{qemu}"),
        format!("qemu-{qemu}"),
    ];
    for name in &names {
        for dir in &sources.path {
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

/// The enabled handler that runs executables of QEMU architecture `qemu`: one with `F`
/// first, else one whose interpreter exists on the host to be bound into the step.
pub fn handler_for(qemu: &str, binfmt_dir: &Path, sources: &Sources) -> Option<binfmt::Handler> {
    if !binfmt::is_enabled(binfmt_dir) {
        return None;
    }
    let sample = sources.describe(qemu).map(|d| d.sample_header());
    let names = [format!("qemu-{qemu}"), format!("buildkit-qemu-{qemu}")];
    let mut usable: Vec<binfmt::Handler> = binfmt::handlers(binfmt_dir)
        .into_iter()
        .filter(|h| h.enabled)
        .filter(|h| match &sample {
            Some(header) => h.matcher.matches(header),
            // An architecture without a known magic is recognised by the usual names.
            None => names.contains(&h.name),
        })
        .filter(|h| h.flags.fix_binary || h.interpreter.is_file())
        .collect();
    usable.sort_by_key(|h| !h.flags.fix_binary);
    usable.into_iter().next()
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

    fn foreign() -> Platform {
        platform(if Platform::host().architecture == "arm64" {
            "linux/amd64"
        } else {
            "linux/arm64"
        })
    }

    fn sources(path: &Path) -> Sources {
        Sources {
            binfmt_d: Vec::new(),
            binfmts: Vec::new(),
            path: vec![path.to_owned()],
        }
    }

    /// A mounted `binfmt_misc` directory with one handler for `qemu` (the built-in magic).
    fn binfmt_with(dir: &Path, name: &str, qemu: &str, flags: &str, interpreter: &Path) {
        std::fs::write(dir.join("register"), "").expect("write");
        std::fs::write(dir.join("status"), "enabled\n").expect("write");
        let definition = sources(dir).describe(qemu).expect("a built-in definition");
        let text = format!(
            "enabled\ninterpreter {}\nflags: {flags}\noffset 0\nmagic {}\nmask {}\n",
            interpreter.display(),
            hex::encode(&definition.magic),
            hex::encode(&definition.mask)
        );
        std::fs::write(dir.join(name), text).expect("write");
    }

    fn executable(path: &Path) {
        std::fs::write(path, b"").expect("write");
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }

    #[test]
    fn the_host_architecture_is_native() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(
            for_platform_in(&Platform::host(), dir.path(), &sources(dir.path())),
            Ok(Emulation::Native)
        );
        assert!(is_native(qemu_arch(&Platform::host().architecture)));
    }

    #[test]
    fn a_registered_handler_wins_over_an_emulator_on_path() {
        let wanted = foreign();
        let qemu = qemu_arch(&wanted.architecture);
        let binfmt = tempfile::tempdir().expect("dir");
        let bin = tempfile::tempdir().expect("dir");
        let emulator = bin.path().join(format!("qemu-{qemu}-static"));
        executable(&emulator);
        assert_eq!(
            for_platform_in(&wanted, binfmt.path(), &sources(bin.path())),
            Ok(Emulation::Inject {
                emulator: emulator.clone()
            })
        );
        // Any name counts: the handler is recognised by its magic.
        binfmt_with(binfmt.path(), "arm-things", qemu, "POF", Path::new("/gone"));
        let found = for_platform_in(&wanted, binfmt.path(), &sources(bin.path()));
        assert_eq!(
            found,
            Ok(Emulation::Binfmt {
                handler: "arm-things".to_owned(),
                flags: Flags::parse("POF").expect("flags"),
                interpreter: "/gone".into(),
            })
        );
        assert_eq!(found.expect("found").interpreter_bind(), None);
        // With handlers switched off globally, none applies.
        std::fs::write(binfmt.path().join("status"), "disabled\n").expect("write");
        assert!(matches!(
            for_platform_in(&wanted, binfmt.path(), &sources(bin.path())),
            Ok(Emulation::Inject { .. })
        ));
    }

    #[test]
    fn a_handler_without_f_is_used_only_when_its_interpreter_can_be_bound() {
        let wanted = foreign();
        let qemu = qemu_arch(&wanted.architecture);
        let binfmt = tempfile::tempdir().expect("dir");
        let bin = tempfile::tempdir().expect("dir");
        let emulator = bin.path().join(format!("qemu-{qemu}-static"));
        binfmt_with(binfmt.path(), "qemu-x", qemu, "P", &emulator);
        // The interpreter is missing: the handler cannot work in a container.
        assert!(for_platform_in(&wanted, binfmt.path(), &sources(bin.path())).is_err());
        executable(&emulator);
        let found = for_platform_in(&wanted, binfmt.path(), &sources(bin.path())).expect("ok");
        assert_eq!(found.interpreter_bind(), Some(emulator.as_path()));
        assert!(found.describe(&wanted).contains("bound into each step"));
        // A disabled handler does not count.
        let text = std::fs::read_to_string(binfmt.path().join("qemu-x")).expect("read");
        std::fs::write(
            binfmt.path().join("qemu-x"),
            text.replace("enabled", "disabled"),
        )
        .expect("write");
        assert!(matches!(
            for_platform_in(&wanted, binfmt.path(), &sources(bin.path())),
            Ok(Emulation::Inject { .. })
        ));
    }

    #[test]
    fn a_handler_for_another_architecture_does_not_count() {
        let binfmt = tempfile::tempdir().expect("dir");
        let empty = tempfile::tempdir().expect("dir");
        binfmt_with(
            binfmt.path(),
            "qemu-riscv64",
            "riscv64",
            "F",
            Path::new("/q"),
        );
        let wanted = if Platform::host().architecture == "s390x" {
            platform("linux/ppc64le")
        } else {
            platform("linux/s390x")
        };
        assert!(for_platform_in(&wanted, binfmt.path(), &sources(empty.path())).is_err());
    }

    #[test]
    fn without_handler_or_emulator_the_error_names_the_package_binary() {
        let dir = tempfile::tempdir().expect("dir");
        if Platform::host().architecture == "s390x" {
            return;
        }
        let empty = tempfile::tempdir().expect("dir");
        let error = for_platform_in(&platform("linux/s390x"), dir.path(), &sources(empty.path()))
            .expect_err("no emulator");
        assert_eq!(error.qemu, "s390x");
        assert!(error.to_string().contains("`linux/s390x`"), "{error}");
        assert!(error.to_string().contains("qemu-s390x-static"), "{error}");
    }

    #[test]
    fn the_exec_format_hint_names_the_architecture_and_the_fixes() {
        let hint = exec_format_hint("linux/arm64");
        assert!(hint.contains("bake setup emulation --arch arm64"), "{hint}");
        assert!(hint.contains("qemu-user-static"), "{hint}");
        assert!(hint.contains("`linux/arm64`"), "{hint}");
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
