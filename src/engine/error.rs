//! The engine's errors: every cause stays a typed `#[source]` to the top, where miette renders
//! the whole chain; a failed step also carries the Dockerfile excerpt of its instruction (as
//! BuildKit's `errdefs.WithSource`). Part of `engine`.

use std::path::PathBuf;
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

use crate::frontend::dockerfile;
use crate::ops::worker;

/// The solver's error over the worker's op errors.
pub type SolveError = crate::solver::Error<worker::Error>;

/// Why a build or a front-end call failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// The Dockerfile could not be read.
    #[error("target `{target}`: failed to read the Dockerfile `{path}`")]
    #[diagnostic(
        code(engine::dockerfile),
        help("check the target's `context` and `dockerfile`")
    )]
    ReadDockerfile {
        /// The target.
        target: String,
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The build context directory does not exist.
    #[error("target `{target}`: the context directory `{}` does not exist", path.display())]
    #[diagnostic(code(engine::context), help("check the target's `context`"))]
    MissingContext {
        /// The target.
        target: String,
        /// The directory.
        path: PathBuf,
    },
    /// A named context cannot be used as written.
    #[error("target `{target}`: named context `{name}` (`{value}`) cannot be used")]
    #[diagnostic(
        code(engine::named_context),
        help("check `contexts.{name}` of target `{target}` in the bake file")
    )]
    NamedContext {
        /// The target.
        target: String,
        /// The context's name.
        name: String,
        /// The context as written.
        value: String,
        /// Why it cannot be used.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A git or HTTP context could not be fetched.
    #[error("target `{target}`: failed to fetch the context `{url}`")]
    #[diagnostic(
        code(engine::remote_context),
        help("check the URL, its ref and that the server is reachable")
    )]
    RemoteContext {
        /// The target.
        target: String,
        /// The context as written.
        url: String,
        /// Why.
        #[source]
        source: Box<crate::source::Error>,
    },
    /// The request needs something this version cannot do.
    #[error("target `{target}`: {what} is not supported")]
    #[diagnostic(code(engine::unsupported))]
    Unsupported {
        /// The target.
        target: String,
        /// What is missing.
        what: String,
    },
    /// An `output` entry is invalid; found before anything is built.
    #[error("target `{target}`: invalid output `type={kind}`")]
    #[diagnostic(code(engine::output))]
    Output {
        /// The target.
        target: String,
        /// The output type as written.
        kind: String,
        /// What is wrong with it.
        #[source]
        source: Box<crate::exporter::Error>,
    },
    /// A `cache-to` or `cache-from` entry is invalid; found before anything is built.
    #[error("target `{target}`: invalid `{attribute}` entry `type={kind}`")]
    #[diagnostic(code(engine::cache))]
    Cache {
        /// The target.
        target: String,
        /// `cache-to` or `cache-from`.
        attribute: &'static str,
        /// The cache type as written.
        kind: String,
        /// What is wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A cache export failed (without `ignore-error=true`).
    #[error("target `{target}`: failed to export the build cache to {destination}")]
    #[diagnostic(
        code(engine::cache_export),
        help("add `ignore-error=true` to the `cache-to` entry to make this a warning")
    )]
    CacheExport {
        /// The target.
        target: String,
        /// The backend.
        destination: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `--load` of a target with several platforms: Docker's image store takes one.
    #[error(
        "target `{target}` builds several platforms ({platforms}), and Docker's image store takes one platform per image"
    )]
    #[diagnostic(
        code(engine::load),
        help(
            "load one platform (`--set {target}.platform=linux/amd64 --load`), or write all of them with `--set {target}.output=type=oci,dest={target}.tar`"
        )
    )]
    LoadPlatforms {
        /// The target.
        target: String,
        /// Its platforms.
        platforms: String,
    },
    /// A `type=docker` archive asked of a target with several platforms.
    // Compat: buildkit's docker exporter refuses manifest lists with this message.
    #[error(
        "target `{target}` builds several platforms ({platforms}): docker exporter does not currently support exporting manifest lists"
    )]
    #[diagnostic(
        code(engine::output),
        help(
            "a Docker image archive holds one platform: write every platform with `type=oci,dest={dest}` (an index of all of them), or build one platform for `type=docker`"
        )
    )]
    DockerPlatforms {
        /// The target.
        target: String,
        /// Its platforms.
        platforms: String,
        /// The archive it asked for.
        dest: String,
    },
    /// A request's platform is not one the configured worker builds.
    #[error(
        "target `{target}` builds for `{platform}`, and the worker builds only {platforms} (`[worker.oci] platforms` in {file})"
    )]
    #[diagnostic(
        code(engine::worker_platform),
        help(
            "add `{platform}` to `[worker.oci] platforms`, or build the target for one of the worker's platforms (`--set {target}.platform=...`)"
        )
    )]
    WorkerPlatform {
        /// The target.
        target: String,
        /// The platform it asked for.
        platform: String,
        /// The worker's platforms, as `` `linux/amd64`, `linux/arm64` ``.
        platforms: String,
        /// The config file that set them.
        file: String,
    },
    /// The `target:` links cannot be ordered.
    #[error("the `target:` links of {targets} form a loop or name a target that is not built")]
    #[diagnostic(
        code(engine::links),
        help("a target may link only targets of the same bake run, without cycles")
    )]
    Links {
        /// The targets that could not be ordered, as `` `a`, `b` ``.
        targets: String,
    },
    /// A target's graph could not join the combined graph.
    #[error("target `{target}`: {message}")]
    #[diagnostic(code(engine::graph))]
    Graph {
        /// The target.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// A secret or SSH agent the target asks for cannot be provided.
    #[error("target `{target}`: {message}")]
    #[diagnostic(code(engine::session))]
    Session {
        /// The target.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// The state root could not be opened.
    #[error("failed to open the state root `{}`", root.display())]
    #[diagnostic(
        code(engine::state),
        help("check `--root` or `root` in buildkitd.toml")
    )]
    State {
        /// The state root.
        root: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A build step failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Step(Box<StepFailed>),
    /// A build on a BuildKit daemon failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Remote(Box<crate::remote::Error>),
    /// A step needs an entitlement the build was not granted or the worker does not allow.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Entitlement(Box<Refused>),
    /// The build was cancelled (Ctrl-C, SIGTERM, a closed progress pipe); running steps were
    /// stopped.
    #[error("build cancelled")]
    #[diagnostic(code(engine::cancelled))]
    Cancelled,
    /// The solve stopped without a failing step (cancelled, or a malformed graph).
    #[error("the build stopped")]
    #[diagnostic(code(engine::solve))]
    Solve(#[source] Box<SolveError>),
    /// The layers of a result could not be assembled.
    #[error("target `{target}`: failed to assemble the image layers")]
    #[diagnostic(code(engine::layers))]
    Layers {
        /// The target.
        target: String,
        /// The cause.
        #[source]
        source: Box<crate::engine::layers::Error>,
    },
    /// An exporter failed.
    #[error("target `{target}`: failed to export `type={kind}`")]
    #[diagnostic(code(engine::export))]
    Export {
        /// The target.
        target: String,
        /// The output type.
        kind: String,
        /// The exporter's error.
        #[source]
        source: Box<crate::exporter::Error>,
    },
    /// Garbage collection failed.
    #[error("garbage collection failed")]
    #[diagnostic(code(engine::gc))]
    Gc(#[source] crate::cache::gc::Error),
    /// The Dockerfile front end rejected the Dockerfile.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Dockerfile(#[from] Box<dockerfile::Error>),
}

/// A failed build step, with the instruction that made it and the targets that hold it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{}: step `{name}` failed", target_list(targets))]
#[diagnostic(code(engine::step))]
pub struct StepFailed {
    /// The targets whose graphs hold the step.
    pub targets: Vec<String>,
    /// The step's progress name (`[2/3] RUN make`).
    pub name: String,
    /// The Dockerfile the instruction is in.
    #[source_code]
    pub file: Option<NamedSource<Arc<str>>>,
    /// The instruction.
    #[label("this step failed")]
    pub span: Option<SourceSpan>,
    /// What to do about it, when the cause suggests something.
    #[help]
    pub hint: Option<String>,
    /// The step's vertex.
    pub vertex: crate::digest::Digest,
    /// The cause: the op's error with its exit code and output tail.
    #[source]
    pub source: crate::solver::Failure<worker::Error>,
}

/// `` target `a` `` or `` targets `a`, `b` `` (`the build` when no target is known).
pub(crate) fn target_list(targets: &[String]) -> String {
    match targets {
        [] => "the build".to_owned(),
        [one] => format!("target `{one}`"),
        many => {
            let names: Vec<String> = many.iter().map(|t| format!("`{t}`")).collect();
            format!("targets {}", names.join(", "))
        }
    }
}

/// A hint for a failed step whose cause has a known fix.
pub(crate) fn hint(failure: &crate::solver::Failure<worker::Error>) -> Option<String> {
    use crate::ops::exec;
    if let crate::solver::Failure::Op(worker::Error::Exec(exec::Error::Executor(
        crate::executor::Error::Spawn { binary, source },
    ))) = failure
        && source.kind() == std::io::ErrorKind::NotFound
    {
        return Some(format!(
            "the OCI runtime `{}` is not installed: install it (`apt-get install runc`) or set `binary` under `[worker.oci]` in buildkitd.toml",
            binary.display()
        ));
    }
    // Exit 126 is the shell's "cannot execute": a program the emulated first process started
    // was handed to the kernel, which had no handler for it.
    if let crate::solver::Failure::Op(worker::Error::Failed {
        code,
        tail,
        first_process_only: Some(platform),
        ..
    }) = failure
        && (*code == 126 || tail.to_ascii_lowercase().contains("exec format error"))
    {
        return Some(crate::ops::emulation::exec_format_hint(platform));
    }
    if let crate::solver::Failure::Op(worker::Error::Emulation(missing)) = failure {
        return Some(format!(
            "install QEMU's user-mode emulators (`apt-get install qemu-user-static`), or register a binfmt_misc handler for `{}`",
            missing.qemu
        ));
    }
    if let crate::solver::Failure::Op(worker::Error::Exec(exec::Error::Executor(
        crate::executor::Error::Runtime { message, .. },
    ))) = failure
        && let Some(program) = missing_program(message)
    {
        return Some(if program == "/bin/sh" {
            "the image has no `/bin/sh`, which a shell-form RUN needs (a `FROM scratch` stage has none): build on an image with a shell, or write the step in exec form, `RUN [\"/program\", \"arg\"]`".to_owned()
        } else {
            format!(
                "the image has no `{program}`: check the program's path, or install it in an earlier step"
            )
        });
    }
    None
}

/// The program runc could not find, from its ``exec: "/bin/sh": stat /bin/sh: no such file
/// or directory`` message.
fn missing_program(message: &str) -> Option<&str> {
    if !message.contains("no such file or directory") {
        return None;
    }
    let rest = &message[message.find("exec: \"")? + "exec: \"".len()..];
    rest.split('"').next().filter(|p| !p.is_empty())
}

/// A step that needs an entitlement it does not have.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("target `{target}`: step `{name}`: {reason}")]
#[diagnostic(code(engine::entitlement))]
pub struct Refused {
    /// The target whose graph holds the step.
    pub target: String,
    /// The step's progress name.
    pub name: String,
    /// BuildKit's words: `network.host is not allowed`, or the daemon configuration's.
    pub reason: String,
    /// The Dockerfile the instruction is in.
    #[source_code]
    pub file: Option<NamedSource<Arc<str>>>,
    /// The instruction.
    #[label("needs {entitlement}")]
    pub span: Option<SourceSpan>,
    /// The entitlement.
    pub entitlement: &'static str,
    /// What to change.
    #[help]
    pub help: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_messages_name_the_missing_program() {
        let message = "runc run failed: unable to start container process: exec: \"/bin/sh\": stat /bin/sh: no such file or directory";
        assert_eq!(missing_program(message), Some("/bin/sh"));
        assert_eq!(missing_program("exec: \"/x\": permission denied"), None);
    }

    #[test]
    fn target_lists_read_naturally() {
        assert_eq!(target_list(&[]), "the build");
        assert_eq!(target_list(&["a".to_owned()]), "target `a`");
        assert_eq!(
            target_list(&["a".to_owned(), "b".to_owned()]),
            "targets `a`, `b`"
        );
    }

    #[test]
    fn an_exec_format_error_under_first_process_injection_names_the_setup_command() {
        let failed = |code, first_process_only: Option<&str>| {
            crate::solver::Failure::Op(worker::Error::Failed {
                command: "/bin/sh -c cat /x | sort".to_owned(),
                code,
                tail: "/bin/sh: sort: Exec format error".to_owned(),
                first_process_only: first_process_only.map(str::to_owned),
            })
        };
        let text = hint(&failed(126, Some("linux/arm64"))).expect("a hint");
        assert!(text.contains("bake setup emulation --arch arm64"), "{text}");
        assert!(text.contains("qemu-user-static"), "{text}");
        assert!(hint(&failed(2, Some("linux/arm64"))).is_some());
        // A native step, or one whose every process was emulated, has other causes.
        assert_eq!(hint(&failed(126, None)), None);
    }

    #[test]
    fn a_missing_runtime_binary_gets_an_install_hint() {
        let error = crate::executor::Error::Spawn {
            binary: "runc".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let failure =
            crate::solver::Failure::Op(worker::Error::Exec(crate::ops::exec::Error::from(error)));
        let hint = hint(&failure).expect("a hint");
        assert!(hint.contains("apt-get install runc"), "{hint}");
        assert!(hint.contains("[worker.oci]"), "{hint}");
    }
}
