//! `bake setup emulation`: registers (or removes) the host's QEMU `binfmt_misc` handlers, so
//! every process of a foreign RUN step runs emulated, not only its first. Part of `ops`.
//!
//! Registration is host-wide and lasts until reboot. Each handler gets the `F` flag (the
//! kernel opens the interpreter now, so it works inside any container's root) and keeps the
//! published `P` (the program sees its own `argv[0]`: busybox and other multi-call binaries
//! choose what to run by it, and QEMU 6+ on Linux 5.12+ reads the flag from the aux vector)
//! and `O` (the kernel passes an open descriptor of the binary). `C` is never added: it would
//! make every foreign setuid binary run with its owner's rights through the emulator, which
//! Debian's descriptions do not ask for either.
// Compat: tonistiigi/binfmt registers with `POCF`; this keeps QEMU's published flags plus `F`.

use std::path::{Path, PathBuf};

use crate::ops::emulation::binfmt::{self, Flags, Handler};
use crate::ops::emulation::definition::{Definition, Sources};
use crate::ops::emulation::{is_native, qemu_arch};

/// Why setting up emulation failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// Only root may change the host's handlers.
    #[error("`bake setup emulation` changes the host's binfmt_misc handlers and must run as root")]
    #[diagnostic(
        code(setup::not_root),
        help("run it with `sudo`, or as root in the VM or container that builds")
    )]
    NotRoot,
    /// `binfmt_misc` could not be mounted.
    #[error("failed to mount binfmt_misc at `{}`", dir.display())]
    #[diagnostic(
        code(setup::mount),
        help(
            "the kernel needs binfmt_misc (`grep binfmt /proc/filesystems`); in a container, run the setup on its host or in a privileged container"
        )
    )]
    Mount {
        /// The mount point.
        dir: PathBuf,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
    /// An architecture no QEMU description or built-in entry covers.
    #[error("no QEMU binfmt_misc description for architecture `{architecture}`")]
    #[diagnostic(
        code(setup::architecture),
        help(
            "name an architecture as Go (`arm64`, `riscv64`, `ppc64le`, `s390x`, `arm`, `386`) or QEMU (`aarch64`) does, with its `qemu-<arch>-static` installed"
        )
    )]
    Unknown {
        /// The architecture as given.
        architecture: String,
    },
    /// No QEMU emulator is installed for an architecture.
    #[error("no QEMU emulator for `{architecture}`: `qemu-{qemu}-static` is not installed")]
    #[diagnostic(
        code(setup::emulator),
        help("install QEMU's static user-mode emulators: `apt-get install qemu-user-static`")
    )]
    NotInstalled {
        /// The architecture as given.
        architecture: String,
        /// QEMU's name for it.
        qemu: String,
    },
    /// No architecture was named and no foreign QEMU emulator is installed.
    #[error("no QEMU emulator for another architecture is installed")]
    #[diagnostic(
        code(setup::emulator),
        help("install QEMU's static user-mode emulators: `apt-get install qemu-user-static`")
    )]
    NothingInstalled,
    /// The kernel refused a handler or its removal.
    #[error("failed to {action} the binfmt_misc handler `{name}`")]
    #[diagnostic(code(setup::register))]
    Kernel {
        /// `register` or `remove`.
        action: &'static str,
        /// The handler.
        name: String,
        /// The kernel's error (for `register`, about the line written).
        #[source]
        source: std::io::Error,
    },
}

/// What setup did for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The CPU runs it; nothing to register.
    Native,
    /// A handler was registered.
    Registered(Handler),
    /// The same handler (same name and interpreter) was registered already.
    AlreadyRegistered(Handler),
    /// Another handler (another name or interpreter) already runs it; left as it is.
    HandledBy(Handler),
    /// A handler of the same name is registered but switched off; left as it is.
    Disabled(Handler),
    /// A handler was removed.
    Removed(String),
    /// There was nothing to remove.
    NotRegistered,
}

/// One line of the report: an architecture and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The architecture as given (or QEMU's name, when all installed ones were chosen).
    pub architecture: String,
    /// What happened.
    pub action: Action,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let describe = |h: &Handler| {
            format!(
                "`{}` (interpreter `{}`, flags `{}`)",
                h.name,
                h.interpreter.display(),
                h.flags
            )
        };
        let architecture = &self.architecture;
        match &self.action {
            Action::Native => write!(f, "{architecture}: native on this host, no handler needed"),
            Action::Registered(h) => write!(f, "{architecture}: registered {}", describe(h)),
            Action::AlreadyRegistered(h) => {
                write!(f, "{architecture}: already registered {}", describe(h))
            }
            Action::HandledBy(h) => write!(
                f,
                "{architecture}: already handled by {}; left as it is",
                describe(h)
            ),
            Action::Disabled(h) => write!(
                f,
                "{architecture}: {} is registered but disabled; left as it is (`--uninstall` removes it)",
                describe(h)
            ),
            Action::Removed(name) => write!(f, "{architecture}: removed `{name}`"),
            Action::NotRegistered => write!(f, "{architecture}: no handler registered"),
        }
    }
}

/// What `bake setup emulation` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Whether `binfmt_misc` had to be mounted first.
    pub mounted: bool,
    /// One line per architecture.
    pub lines: Vec<Line>,
}

/// Registers handlers for `architectures` (Go or QEMU names; none: every architecture
/// whose `qemu-<arch>-static` is installed), mounting `binfmt_misc` first when needed.
/// Every architecture is checked before anything is registered.
pub fn install(architectures: &[String]) -> Result<Report, Error> {
    require_root()?;
    let dir = Path::new(binfmt::DIR);
    let sources = Sources::host();
    let steps = plan_install(architectures, &binfmt::handlers(dir), &sources)?;
    let mounted = mount(dir)?;
    // Mounting may reveal handlers (a fresh mount shows the kernel's own list): plan again.
    let steps = if mounted {
        plan_install(architectures, &binfmt::handlers(dir), &sources)?
    } else {
        steps
    };
    let mut lines = Vec::new();
    for (architecture, step) in steps {
        let action = match step {
            Step::Done(action) => action,
            Step::Register(definition) => Action::Registered(register(dir, &definition)?),
        };
        lines.push(Line {
            architecture,
            action,
        });
    }
    Ok(Report { mounted, lines })
}

/// Removes the handlers that run `architectures` (none: every handler named `qemu-*`).
pub fn uninstall(architectures: &[String]) -> Result<Report, Error> {
    require_root()?;
    let dir = Path::new(binfmt::DIR);
    let sources = Sources::host();
    let mut lines = Vec::new();
    for (architecture, names) in plan_uninstall(architectures, &binfmt::handlers(dir), &sources)? {
        if names.is_empty() {
            lines.push(Line {
                architecture: architecture.clone(),
                action: Action::NotRegistered,
            });
        }
        for name in names {
            binfmt::remove(dir, &name).map_err(|source| Error::Kernel {
                action: "remove",
                name: name.clone(),
                source,
            })?;
            lines.push(Line {
                architecture: architecture.clone(),
                action: Action::Removed(name),
            });
        }
    }
    Ok(Report {
        mounted: false,
        lines,
    })
}

/// What to do for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Done(Action),
    Register(Definition),
}

/// Decides, without changing anything, what registering `architectures` takes given the
/// handlers already registered.
fn plan_install(
    architectures: &[String],
    registered: &[Handler],
    sources: &Sources,
) -> Result<Vec<(String, Step)>, Error> {
    let chosen: Vec<String> = if architectures.is_empty() {
        sources
            .installed()
            .into_iter()
            .filter(|arch| !is_native(arch))
            .collect()
    } else {
        architectures.to_vec()
    };
    if chosen.is_empty() {
        return Err(Error::NothingInstalled);
    }
    let mut steps = Vec::new();
    for architecture in chosen {
        let qemu = qemu_arch(&architecture).to_owned();
        if is_native(&qemu) {
            steps.push((architecture, Step::Done(Action::Native)));
            continue;
        }
        let Some(definition) = sources.find(&qemu) else {
            return Err(if sources.describe(&qemu).is_some() {
                Error::NotInstalled { architecture, qemu }
            } else {
                Error::Unknown { architecture }
            });
        };
        let header = definition.sample_header();
        let existing = registered
            .iter()
            .filter(|h| h.enabled && h.matcher.matches(&header))
            .min_by_key(|h| h.name != definition.name);
        // The kernel keeps names unique: a disabled handler of the same name blocks ours.
        let same_name = registered.iter().find(|h| h.name == definition.name);
        let step = match (existing, same_name) {
            (Some(h), _)
                if h.name == definition.name
                    && same_file(&h.interpreter, &definition.interpreter) =>
            {
                Step::Done(Action::AlreadyRegistered(h.clone()))
            }
            (Some(h), _) => Step::Done(Action::HandledBy(h.clone())),
            (None, Some(h)) if !h.enabled => Step::Done(Action::Disabled(h.clone())),
            (None, Some(h)) => Step::Done(Action::HandledBy(h.clone())),
            (None, None) => Step::Register(definition),
        };
        steps.push((architecture, step));
    }
    Ok(steps)
}

/// The handlers to remove for each architecture.
fn plan_uninstall(
    architectures: &[String],
    registered: &[Handler],
    sources: &Sources,
) -> Result<Vec<(String, Vec<String>)>, Error> {
    if architectures.is_empty() {
        let names: Vec<String> = registered
            .iter()
            .filter(|h| h.name.starts_with("qemu-"))
            .map(|h| h.name.clone())
            .collect();
        return Ok(vec![("qemu-*".to_owned(), names)]);
    }
    let mut out = Vec::new();
    for architecture in architectures {
        let qemu = qemu_arch(architecture);
        let definition = sources.describe(qemu).ok_or_else(|| Error::Unknown {
            architecture: architecture.clone(),
        })?;
        let header = definition.sample_header();
        let names = registered
            .iter()
            .filter(|h| h.matcher.matches(&header))
            .map(|h| h.name.clone())
            .collect();
        out.push((architecture.clone(), names));
    }
    Ok(out)
}

fn require_root() -> Result<(), Error> {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot)
    }
}

/// Mounts `binfmt_misc` at `dir` unless it is mounted; says whether it mounted it.
fn mount(dir: &Path) -> Result<bool, Error> {
    if binfmt::is_mounted(dir) {
        return Ok(false);
    }
    rustix::mount::mount(
        "binfmt_misc",
        dir,
        "binfmt_misc",
        rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        None,
    )
    .map_err(|errno| Error::Mount {
        dir: dir.to_owned(),
        source: errno.into(),
    })?;
    Ok(true)
}

/// Registers `definition` with `F` added, and returns the handler as the kernel now lists it.
fn register(dir: &Path, definition: &Definition) -> Result<Handler, Error> {
    let flags = Flags {
        fix_binary: true,
        ..definition.flags
    };
    let kernel = |source| Error::Kernel {
        action: "register",
        name: definition.name.clone(),
        source,
    };
    let line = binfmt::register_line(
        &definition.name,
        definition.offset,
        &definition.magic,
        &definition.mask,
        &definition.interpreter,
        flags,
    )
    .map_err(|message| kernel(std::io::Error::other(message)))?;
    binfmt::register(dir, &line).map_err(|e| {
        kernel(std::io::Error::new(
            e.kind(),
            format!("{e} (writing `{line}` to `register`)"),
        ))
    })?;
    let text = std::fs::read_to_string(dir.join(&definition.name)).map_err(kernel)?;
    Handler::parse(&definition.name, &text)
        .map_err(|message| kernel(std::io::Error::other(message)))
}

/// Whether two paths name the same file (symlinks resolved), or are equal.
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(name: &str, qemu: &str, enabled: bool, interpreter: &str) -> Handler {
        let definition = Sources {
            binfmt_d: Vec::new(),
            binfmts: Vec::new(),
            path: Vec::new(),
        }
        .describe(qemu)
        .unwrap();
        Handler {
            name: name.to_owned(),
            enabled,
            interpreter: interpreter.into(),
            flags: Flags::parse("POF").unwrap(),
            matcher: binfmt::Matcher::Magic {
                offset: 0,
                magic: definition.magic,
                mask: Some(definition.mask),
            },
        }
    }

    /// Sources with `qemu-riscv64-static` and `qemu-s390x-static` "installed" in `bin`.
    fn sources(bin: &Path) -> Sources {
        for name in [
            "qemu-riscv64-static",
            "qemu-s390x-static",
            "qemu-nonsense-static",
        ] {
            std::fs::write(bin.join(name), "").unwrap();
        }
        Sources {
            binfmt_d: Vec::new(),
            binfmts: Vec::new(),
            path: vec![bin.to_owned()],
        }
    }

    fn names(steps: &[(String, Step)]) -> Vec<(String, String)> {
        steps
            .iter()
            .map(|(arch, step)| {
                let what = match step {
                    Step::Register(d) => format!("register {}", d.name),
                    Step::Done(action) => {
                        format!("{action:?}").split('(').next().unwrap().to_owned()
                    }
                };
                (arch.clone(), what)
            })
            .collect()
    }

    #[test]
    fn by_default_every_installed_foreign_emulator_is_registered() {
        let bin = tempfile::tempdir().unwrap();
        let sources = sources(bin.path());
        let steps = plan_install(&[], &[], &sources).unwrap();
        // `nonsense` has no definition; the host's own architecture never gets a handler.
        let mut expected = Vec::new();
        for arch in ["riscv64", "s390x"] {
            if !is_native(arch) {
                expected.push((arch.to_owned(), format!("register qemu-{arch}")));
            }
        }
        assert_eq!(names(&steps), expected);
        match &steps[0].1 {
            Step::Register(d) => assert_eq!(d.interpreter, bin.path().join("qemu-riscv64-static")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn registered_handlers_are_kept_and_reported() {
        let bin = tempfile::tempdir().unwrap();
        let sources = sources(bin.path());
        let ours = bin.path().join("qemu-riscv64-static");
        let registered = [
            handler("qemu-riscv64", "riscv64", true, ours.to_str().unwrap()),
            handler("s390x-by-someone", "s390x", true, "/opt/qemu-s390x"),
        ];
        let architectures = ["riscv64".to_owned(), "s390x".to_owned()];
        let steps = plan_install(&architectures, &registered, &sources).unwrap();
        assert_eq!(
            names(&steps),
            [
                ("riscv64".to_owned(), "AlreadyRegistered".to_owned()),
                ("s390x".to_owned(), "HandledBy".to_owned())
            ]
        );
        let line = Line {
            architecture: "riscv64".to_owned(),
            action: match &steps[0].1 {
                Step::Done(action) => action.clone(),
                Step::Register(_) => unreachable!(),
            },
        };
        assert!(
            line.to_string()
                .starts_with("riscv64: already registered `qemu-riscv64`"),
            "{line}"
        );
        let disabled = [handler("qemu-s390x", "s390x", false, "/x")];
        let steps = plan_install(&["s390x".to_owned()], &disabled, &sources).unwrap();
        assert_eq!(names(&steps), [("s390x".to_owned(), "Disabled".to_owned())]);
    }

    #[test]
    fn unknown_or_missing_emulators_fail_before_anything_changes() {
        let bin = tempfile::tempdir().unwrap();
        let sources = sources(bin.path());
        let error = plan_install(
            &["riscv64".to_owned(), "nonsense".to_owned()],
            &[],
            &sources,
        )
        .unwrap_err();
        assert!(matches!(error, Error::Unknown { .. }), "{error}");
        let foreign = if is_native("arm64") {
            "ppc64le"
        } else {
            "arm64"
        };
        let error = plan_install(&[foreign.to_owned()], &[], &sources).unwrap_err();
        assert!(error.to_string().contains("is not installed"), "{error}");
        let host = crate::platform::Platform::host().architecture;
        assert_eq!(
            names(&plan_install(std::slice::from_ref(&host), &[], &sources).unwrap()),
            [(host, "Native".to_owned())]
        );
    }

    #[test]
    fn uninstall_removes_the_handlers_that_run_an_architecture() {
        let bin = tempfile::tempdir().unwrap();
        let sources = sources(bin.path());
        let registered = [
            handler("qemu-riscv64", "riscv64", true, "/a"),
            handler("riscv-too", "riscv64", false, "/b"),
            handler("qemu-s390x", "s390x", true, "/c"),
            handler("python3.11", "s390x", true, "/d"),
        ];
        let plan = plan_uninstall(&["riscv64".to_owned()], &registered, &sources).unwrap();
        assert_eq!(
            plan,
            [(
                "riscv64".to_owned(),
                vec!["qemu-riscv64".to_owned(), "riscv-too".to_owned()]
            )]
        );
        // Without architectures, only handlers named `qemu-*` go.
        let plan = plan_uninstall(&[], &registered, &sources).unwrap();
        assert_eq!(plan[0].1, ["qemu-riscv64", "qemu-s390x"]);
        assert!(plan_uninstall(&["nonsense".to_owned()], &registered, &sources).is_err());
    }
}
