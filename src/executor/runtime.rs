//! Runs an [`ExecRequest`] with an OCI runtime binary (runc or crun) behind the [`Runtime`]
//! trait: writes a bundle, starts the container in the foreground, streams its output and
//! always cleans up.
//!
//! Part of the executor; imports nothing from the crate's graph, cache, image or layer
//! modules.
//!
//! Compat: buildkit executor/runcexecutor: one bundle per run in a private directory, the
//! runtime's own state under a separate `--root`, `delete --force` when the run ends.
//! Diverges: buildkit drives runc through go-runc with a pidfd-based reaper; we call the
//! binary directly and wait for it, which is all a foreground `run` needs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use crate::executor::error::{Error, Result};
use crate::executor::request::{ExecRequest, ExitStatus, Resources, Stream};
use crate::executor::spec::{self, GeneratedFiles};
use crate::executor::stub::MountStubs;
use crate::executor::user;

/// Something that can run one process in a container. Implementations are shared by the
/// solver's parallel workers, hence `Send + Sync`.
pub trait Runtime: Send + Sync {
    /// Runs `request` to completion, passing every chunk the process writes to `output` as it
    /// arrives, stdout and stderr interleaved in arrival order.
    ///
    /// A process that exits non-zero is reported in the [`ExitStatus`], not as an error.
    /// The runtime's own diagnostics (runc prints its errors to stderr) reach `output` as
    /// [`Stream::Stderr`] too, so a build log shows them where the user looks.
    ///
    /// # Errors
    ///
    /// When the user cannot be resolved, the spec is invalid, or the runtime itself fails to
    /// create or start the container.
    fn run(
        &self,
        request: &ExecRequest,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<ExitStatus>;
}

/// An OCI runtime binary with runc's command line: runc itself, or crun.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    state_root: PathBuf,
    bundle_root: PathBuf,
    host_resolv_conf: PathBuf,
    cancel: Option<Arc<AtomicBool>>,
}

/// What crun 1.8 prints when it refuses a cgroup v1/v2 hybrid host.
const HYBRID_CGROUPS_MESSAGE: &str = "cgroups in hybrid mode not supported";

impl Runc {
    /// Uses `binary` (a path, or a name looked up in `PATH` such as `runc` or `crun`) with its
    /// container state in `state_root`. Bundles go to the system temporary directory.
    pub fn new(binary: impl Into<PathBuf>, state_root: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            state_root: state_root.into(),
            bundle_root: std::env::temp_dir(),
            host_resolv_conf: "/etc/resolv.conf".into(),
            cancel: None,
        }
    }

    /// Creates each run's bundle directory under `dir` instead of the temporary directory.
    pub fn with_bundle_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bundle_root = dir.into();
        self
    }

    /// Kills running containers once `cancel` is set (Ctrl-C): the process a `RUN` step
    /// starts is PID 1 of its namespace, which ignores SIGINT unless it handles it.
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Stops the container `id` with SIGKILL once the cancel flag is set; returns when `done`.
    fn watch(&self, id: &str, done: &AtomicBool) {
        let Some(cancel) = &self.cancel else { return };
        while !done.load(Ordering::SeqCst) {
            if cancel.load(Ordering::SeqCst) {
                let _ = Command::new(&self.binary)
                    .arg("--root")
                    .arg(&self.state_root)
                    .args(["kill", id, "KILL"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Reads the host's resolver configuration from `path` instead of `/etc/resolv.conf`.
    pub fn with_host_resolv_conf(mut self, path: impl Into<PathBuf>) -> Self {
        self.host_resolv_conf = path.into();
        self
    }

    /// The runtime binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Writes config.json and the generated /etc files into `bundle`.
    fn write_bundle(&self, request: &ExecRequest, bundle: &Path) -> Result<()> {
        let user = user::resolve(&request.rootfs, &request.user)?;
        let files = GeneratedFiles {
            hosts: bundle.join("hosts"),
            resolv_conf: bundle.join("resolv.conf"),
            hostname: bundle.join("hostname"),
        };
        // A host without resolv.conf still gets a usable one (public servers).
        let host_resolv = std::fs::read_to_string(&self.host_resolv_conf).unwrap_or_default();
        if let Some(resources) = &request.resources {
            check_controllers(Path::new("/sys/fs/cgroup"), resources)?;
        }
        let mut spec = spec::build(request, &user, &files)?;
        // A limit the user asked for is left for the runtime to refuse, never lowered.
        let own_nofile = request.rlimits.iter().any(|l| l.resource == "nofile");
        if let Some(ceiling) = nofile_ceiling().filter(|_| !own_nofile) {
            spec::limit_nofile(&mut spec, ceiling)?;
        }
        if let Some(bounding) = capability_bounding_set() {
            spec::limit_capabilities(&mut spec, bounding);
        }
        let hostname = spec::hostname(request);
        for (path, contents) in [
            (
                &files.hosts,
                spec::hosts_file(&hostname, &request.extra_hosts),
            ),
            (
                &files.resolv_conf,
                spec::resolv_conf(&host_resolv, request.network),
            ),
            (&files.hostname, format!("{hostname}\n")),
        ] {
            write(path, contents.as_bytes())?;
        }
        write(&bundle.join("config.json"), &spec::to_json(&spec)?)
    }

    /// Starts the runtime, streams the output to `output` and waits for it.
    fn run_container(
        &self,
        bundle: &Path,
        id: &str,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<ExitStatus> {
        let log = bundle.join("runtime.log");
        let spawn_error = |source| Error::Spawn {
            binary: self.binary.clone(),
            source,
        };
        let mut child = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.state_root)
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // The runtime may print its own error to stderr only; keep a tail to classify it.
        let mut stderr_tail = Vec::new();
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let done = &done;
            scope.spawn(move || self.watch(id, done));
            let (sender, receiver) = mpsc::channel();
            if let Some(pipe) = stdout {
                let sender = sender.clone();
                scope.spawn(move || forward(pipe, Stream::Stdout, &sender));
            }
            if let Some(pipe) = stderr {
                let sender = sender.clone();
                scope.spawn(move || forward(pipe, Stream::Stderr, &sender));
            }
            // Only the readers hold senders now, so the loop ends when both pipes close.
            drop(sender);
            for (stream, chunk) in receiver {
                if stream == Stream::Stderr {
                    keep_tail(&mut stderr_tail, &chunk, 8192);
                }
                output(stream, &chunk);
            }
            done.store(true, Ordering::SeqCst);
        });
        let status = child.wait().map_err(spawn_error)?;

        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        let mut errors = runtime_errors(&log_text);
        let stderr_text = String::from_utf8_lossy(&stderr_tail);
        if errors.is_empty() && stderr_text.contains(HYBRID_CGROUPS_MESSAGE) {
            errors.push(stderr_text.trim().to_owned());
        }
        if !errors.is_empty() {
            let message = errors.join("; ");
            if message.contains(HYBRID_CGROUPS_MESSAGE) {
                return Err(Error::HybridCgroups {
                    binary: self.binary.clone(),
                    message,
                });
            }
            return Err(Error::Runtime {
                binary: self.binary.clone(),
                id: id.to_owned(),
                message,
            });
        }
        match status.code() {
            Some(code) => Ok(ExitStatus { code }),
            None => Err(Error::Runtime {
                binary: self.binary.clone(),
                id: id.to_owned(),
                message: format!("the runtime itself was killed ({status})"),
            }),
        }
    }
}

impl Runtime for Runc {
    fn run(
        &self,
        request: &ExecRequest,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<ExitStatus> {
        std::fs::create_dir_all(&self.bundle_root).map_err(|source| Error::Bundle {
            path: self.bundle_root.clone(),
            source,
        })?;
        // Removed when dropped, after `_cleanup` below (locals drop in reverse order).
        let bundle = tempfile::Builder::new()
            .prefix("bake-bundle-")
            .tempdir_in(&self.bundle_root)
            .map_err(|source| Error::Bundle {
                path: self.bundle_root.clone(),
                source,
            })?;
        self.write_bundle(request, bundle.path())?;
        // Unique per run, so concurrent runs never share state or cgroups.
        let id = format!("bake-{}", uuid::Uuid::new_v4().simple());
        let destinations = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]
            .into_iter()
            .chain(request.mounts.iter().map(|m| m.destination.as_str()));
        let _cleanup = Cleanup {
            runtime: self,
            id: &id,
            stubs: MountStubs::record(&request.rootfs, destinations),
        };
        self.run_container(bundle.path(), &id, output)
    }
}

/// Deletes the container and removes mount stubs when a run ends, however it ends.
struct Cleanup<'a> {
    runtime: &'a Runc,
    id: &'a str,
    stubs: MountStubs,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        // A foreground `run` normally deletes the container itself; `delete --force` covers
        // a runtime that failed halfway, and its "does not exist" error is expected.
        let _ = Command::new(&self.runtime.binary)
            .arg("--root")
            .arg(&self.runtime.state_root)
            .args(["delete", "--force", self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.stubs.remove();
    }
}

/// Copies a pipe to the channel in chunks until EOF or until the receiver is gone.
fn forward(mut pipe: impl Read, stream: Stream, sender: &mpsc::Sender<(Stream, Vec<u8>)>) {
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if sender.send((stream, buffer[..n].to_vec())).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Appends `chunk` to `tail` and drops the oldest bytes beyond `max`, never starting inside
/// a UTF-8 character: the tail is decoded as a whole once the runtime exits (so a character
/// split between two reads, and a last line without a newline, come out intact), and a cut
/// through a character would turn its remaining bytes into U+FFFD.
fn keep_tail(tail: &mut Vec<u8>, chunk: &[u8], max: usize) {
    tail.extend_from_slice(chunk);
    let mut excess = tail.len().saturating_sub(max);
    if excess == 0 {
        return;
    }
    // At most 3 continuation bytes follow a character's first byte.
    for _ in 0..3 {
        match tail.get(excess) {
            Some(byte) if byte & 0xC0 == 0x80 => excess += 1,
            _ => break,
        }
    }
    tail.drain(..excess);
}

/// Extracts error messages from the runtime's JSON log (one object per line, with `level`
/// and `msg`, the format both runc and crun write with `--log-format json`).
fn runtime_errors(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| matches!(entry["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|entry| entry["msg"].as_str().map(str::to_owned))
        .collect()
}

/// Fails, naming the limit, when a cgroup controller a limit needs is not on this host: what
/// a runtime does then differs (an error about joining a cgroup, or nothing at all), and the
/// user should learn which of their limits cannot hold.
fn check_controllers(root: &Path, resources: &Resources) -> Result<()> {
    let unified = std::fs::read_to_string(root.join("cgroup.controllers")).ok();
    for (limit, controller) in resources.controllers() {
        let present = match &unified {
            // cgroup v2 only: the root lists its controllers.
            Some(list) => list.split_whitespace().any(|c| c == controller),
            // cgroup v1 (or hybrid, where runc uses v1): one hierarchy per controller.
            None => root.join(controller).is_dir(),
        };
        // Swap is limited only where swap accounting is on (v1: `memory.memsw.*`).
        let swap_missing = limit == "resources.memory-swap"
            && unified.is_none()
            && present
            && !root.join("memory/memory.memsw.limit_in_bytes").exists();
        if !present || swap_missing {
            return Err(Error::MissingController {
                limit: limit.to_owned(),
                controller: if swap_missing {
                    "memory (swap accounting)".to_owned()
                } else {
                    controller.to_owned()
                },
            });
        }
    }
    Ok(())
}

/// The highest open-files limit a container we start can get: `None` (no ceiling) when we
/// hold `CAP_SYS_RESOURCE`, otherwise our own hard limit. Read from /proc rather than with
/// getrlimit(2) so that the executor needs no unsafe code.
/// This process's capability bounding set (`CapBnd` in `/proc/self/status`).
fn capability_bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

fn nofile_ceiling() -> Option<u64> {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    if effective & (1 << CAP_SYS_RESOURCE) != 0 {
        return None;
    }
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    hard_nofile(&limits)
}

/// Parses the hard "Max open files" limit out of /proc/self/limits.
fn hard_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    // "Max open files  <soft>  <hard>  files"
    line.split_whitespace().nth(4)?.parse().ok()
}

fn write(path: &Path, contents: &[u8]) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| Error::Bundle {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_errors_keep_only_error_entries() {
        let log = concat!(
            r#"{"level":"warning","msg":"ignored","time":"t"}"#,
            "\n",
            r#"{"level":"error","msg":"runc run failed: boom","time":"t"}"#,
            "\nnot json\n"
        );
        assert_eq!(runtime_errors(log), ["runc run failed: boom"]);
    }

    #[test]
    fn the_stderr_tail_never_starts_inside_a_character_and_keeps_a_last_partial_line() {
        let mut tail = Vec::new();
        let text = "é✓ runc: no newline".as_bytes();
        // Arrives in two reads cut inside `✓`; the limit falls inside `é`.
        keep_tail(&mut tail, &text[..4], 64);
        keep_tail(&mut tail, &text[4..], text.len() - 1);
        assert_eq!(String::from_utf8(tail).unwrap(), "✓ runc: no newline");

        let mut tail = Vec::new();
        keep_tail(&mut tail, b"abc", 2);
        assert_eq!(tail, b"bc");
    }

    #[test]
    fn limits_need_their_cgroup_controller() {
        let limits = |memory: bool, swap: bool, cpuset: bool| Resources {
            memory: memory.then_some(1 << 26),
            memory_swap: swap.then_some(-1),
            cpuset_cpus: cpuset.then(|| "0".to_owned()),
            ..Resources::default()
        };
        let missing = |root: &Path, resources: &Resources| match check_controllers(root, resources)
        {
            Err(Error::MissingController { limit, .. }) => Some(limit),
            Ok(()) => None,
            Err(other) => panic!("{other}"),
        };
        // cgroup v1: one directory per controller; swap needs `memory.memsw.*`.
        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir(v1.path().join("memory")).unwrap();
        assert_eq!(missing(v1.path(), &limits(true, false, false)), None);
        assert_eq!(
            missing(v1.path(), &limits(true, false, true)).as_deref(),
            Some("resources.cpuset-cpus")
        );
        assert_eq!(
            missing(v1.path(), &limits(true, true, false)).as_deref(),
            Some("resources.memory-swap")
        );
        std::fs::write(v1.path().join("memory/memory.memsw.limit_in_bytes"), "").unwrap();
        assert_eq!(missing(v1.path(), &limits(true, true, false)), None);
        // cgroup v2: the root lists its controllers.
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu io pids\n").unwrap();
        assert_eq!(
            missing(v2.path(), &limits(true, false, false)).as_deref(),
            Some("resources.memory")
        );
    }

    #[test]
    fn hard_nofile_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 20000                files\n";
        assert_eq!(hard_nofile(limits), Some(20000));
        assert_eq!(
            hard_nofile("Max open files  unlimited  unlimited  files"),
            None
        );
    }

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let rootfs = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let runtime = Runc::new("/nonexistent/runc", state.path()).with_bundle_root(state.path());
        let request = ExecRequest::new(rootfs.path(), vec!["true".into()]);
        let err = runtime.run(&request, &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
        assert_eq!(err.to_string(), "failed to run `/nonexistent/runc`");
    }
}
