//! Emulation through the `bake` binary: `bake setup emulation` registers a QEMU
//! `binfmt_misc` handler, after which an arm64 RUN step of many processes through pipes
//! builds and matches the amd64 one; without a handler only the first process is emulated,
//! and the failure names the fix. Each test changes the host's handlers under the exclusive
//! binfmt lock and puts them back as they were when it ends, passing or not.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support;

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";

/// Skips locally, fails in CI (where `.ci/run` installs everything these tests need).
fn unavailable(reason: &str) {
    if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!("{reason}");
    }
    support::skip(reason);
}

/// The two-platform busybox base, or `None` (after saying why) when this host cannot run
/// these tests.
fn base(scratch: &Path) -> Option<String> {
    let needs = "emulation test needs root, runc, binfmt_misc, an x86_64 host, qemu-user-static, busybox-static and busybox-static:arm64 unpacked into target/tmp/arm64 (.ci/run does it)";
    let binfmt = std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|text| text.lines().any(|l| l.ends_with("\tbinfmt_misc")));
    if !rustix::process::geteuid().is_root()
        || support::find_in_path("runc").is_none()
        || !binfmt
        || std::env::consts::ARCH != "x86_64"
        || !Path::new("/usr/bin/qemu-aarch64-static").is_file()
    {
        unavailable(&format!("skipping: {needs}"));
        return None;
    }
    let layout = support::build_two_platform_busybox_layout(scratch);
    if layout.is_none() {
        unavailable(&format!("skipping: {needs}"));
    }
    layout
}

/// The host's handlers when a test started, put back on drop: handlers the test added or
/// changed are removed, the ones it removed registered again, and `binfmt_misc` unmounted
/// when it was not mounted before.
struct Restore {
    mounted: bool,
    handlers: BTreeMap<String, String>,
}

fn is_mounted() -> bool {
    Path::new(BINFMT).join("register").exists()
}

fn handlers() -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(BINFMT) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "register" && e.file_name() != "status")
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((e.file_name().into_string().unwrap(), text))
        })
        .collect()
}

impl Restore {
    fn record() -> Self {
        Restore {
            mounted: is_mounted(),
            handlers: handlers(),
        }
    }
}

/// The `register` line that recreates a handler from the kernel's description of it.
fn register_line(name: &str, text: &str) -> String {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    let escaped = |hex: String| -> String {
        hex.as_bytes()
            .chunks(2)
            .map(|pair| format!("\\x{}", std::str::from_utf8(pair).unwrap()))
            .collect()
    };
    let interpreter = field("interpreter ");
    let flags = field("flags:");
    let extension = field("extension ");
    if extension.is_empty() {
        format!(
            ":{name}:M:{}:{}:{}:{interpreter}:{flags}",
            field("offset "),
            escaped(field("magic ")),
            escaped(field("mask "))
        )
    } else {
        format!(
            ":{name}:E::{}::{interpreter}:{flags}",
            extension.trim_start_matches('.')
        )
    }
}

impl Drop for Restore {
    #[expect(
        clippy::print_stderr,
        reason = "a handler that cannot be put back is reported"
    )]
    fn drop(&mut self) {
        let now = handlers();
        for (name, text) in &now {
            if self.handlers.get(name) != Some(text) {
                let _ = std::fs::write(Path::new(BINFMT).join(name), "-1");
            }
        }
        for (name, text) in &self.handlers {
            if now.get(name) == Some(text) {
                continue;
            }
            let line = register_line(name, text);
            if let Err(error) = std::fs::write(Path::new(BINFMT).join("register"), &line) {
                eprintln!("could not restore binfmt_misc handler `{name}` ({line}): {error}");
            }
            if text.starts_with("disabled") {
                let _ = std::fs::write(Path::new(BINFMT).join(name), "0");
            }
        }
        if !self.mounted && is_mounted() {
            let _ = rustix::mount::unmount(BINFMT, rustix::mount::UnmountFlags::empty());
        }
    }
}

/// A RUN step of many processes through pipes (`find`, `sort`, `sed`, `cat`, `tar`), which
/// only works when every process runs on the step's architecture.
const DOCKERFILE: &str = "\
FROM base
RUN mkdir -p /data/fruit && echo zebra > /data/fruit/z && echo apple > /data/a \\
 && { find /data -type f | sort | sed 's,^/data/,file: ,'; \\
      cat /data/fruit/z /data/a | sort | sed 's/^/line: /'; \\
      tar -C /data -cf - . | tar -tf - | sort | sed 's/^/tar: /'; \\
      uname -m | sed 's/^/arch: /'; } > /result
";

fn project(dir: &Path, base: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  contexts = {{ base = \"{base}\" }}\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n  output = [\"type=local,dest=out\"]\n}}\n"
        ),
    )
    .unwrap();
}

fn bake(dir: &Path, args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    support::bake(dir, &args, &[], None)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `bake debug workers` line for `linux/arm64`.
fn arm64_worker(dir: &Path) -> String {
    let output = bake(dir, &["debug", "workers"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .find(|l| l.starts_with("linux/arm64 "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn setup_registers_a_handler_that_runs_every_process_of_a_foreign_step() {
    let _lock = support::binfmt_lock(true);
    let _restore = Restore::record();
    let scratch = tempfile::tempdir().unwrap();
    let Some(base) = base(scratch.path()) else {
        return;
    };
    let dir = scratch.path().join("app");
    project(&dir, &base);
    let state = scratch.path().join("state").display().to_string();

    let setup = bake(&dir, &["setup", "emulation", "--arch", "arm64"]);
    let stdout = text(&setup.stdout);
    assert!(setup.status.success(), "{stdout}{}", text(&setup.stderr));
    assert!(
        stdout.contains("arm64: registered `qemu-aarch64`")
            || stdout.contains("arm64: already registered")
            || stdout.contains("arm64: already handled by"),
        "{stdout}"
    );
    // The kernel's own description: enabled, with `F` so it works inside the container.
    let registered = handlers();
    let (name, handler) = registered
        .iter()
        .find(|(_, t)| t.contains("magic 7f454c460201010000000000000000000200b700"))
        .expect("an aarch64 handler");
    assert!(handler.starts_with("enabled"), "{name}: {handler}");
    if stdout.contains("registered `qemu-aarch64`") {
        let flags = handler.lines().find(|l| l.starts_with("flags:")).unwrap();
        assert!(flags.contains('F'), "{flags}");
    }
    // Idempotent: a second run changes nothing and says so.
    let again = bake(&dir, &["setup", "emulation", "--arch", "arm64"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("arm64: already"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(handlers(), registered);
    assert!(
        arm64_worker(&dir).contains("binfmt_misc handler"),
        "{}",
        arm64_worker(&dir)
    );

    let build = bake(&dir, &["--root", &state, "--progress=plain"]);
    assert!(build.status.success(), "{}", text(&build.stderr));
    let read = |platform: &str| {
        std::fs::read_to_string(dir.join("out").join(platform).join("result")).unwrap()
    };
    let amd64 = read("linux_amd64");
    let arm64 = read("linux_arm64");
    assert!(amd64.ends_with("arch: x86_64\n"), "{amd64}");
    assert!(arm64.ends_with("arch: aarch64\n"), "{arm64}");
    assert!(
        amd64.contains("file: fruit/z\n") && amd64.contains("tar: ./a\n"),
        "{amd64}"
    );
    assert_eq!(amd64.replace("x86_64", "aarch64"), arm64);

    let uninstall = bake(
        &dir,
        &["setup", "emulation", "--uninstall", "--arch", "arm64"],
    );
    assert!(uninstall.status.success(), "{}", text(&uninstall.stderr));
    assert!(
        text(&uninstall.stdout).contains("arm64: removed `"),
        "{}",
        text(&uninstall.stdout)
    );
    assert!(
        !handlers().values().any(|t| t.contains("0200b700")),
        "{:?}",
        handlers()
    );
    assert!(
        arm64_worker(&dir).contains("first process only"),
        "{}",
        arm64_worker(&dir)
    );
    let failed = bake(
        &dir,
        &[
            "--root",
            &state,
            "--progress=plain",
            "--no-cache",
            "--set",
            "default.platform=linux/arm64",
        ],
    );
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("exec format error"),
        "{stderr}"
    );
    let flat = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("no binfmt_misc handler is registered for `arm64`"),
        "{stderr}"
    );
    assert!(
        flat.contains("bake setup emulation --arch arm64"),
        "{stderr}"
    );
}

#[test]
fn without_a_handler_the_first_process_runs_under_the_injected_emulator() {
    let _lock = support::binfmt_lock(true);
    let _restore = Restore::record();
    let scratch = tempfile::tempdir().unwrap();
    let Some(base) = base(scratch.path()) else {
        return;
    };
    let dir = scratch.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    if is_mounted() {
        let removed = bake(
            &dir,
            &["setup", "emulation", "--uninstall", "--arch", "arm64"],
        );
        assert!(removed.status.success(), "{}", text(&removed.stderr));
    }
    assert!(
        arm64_worker(&dir).contains("first process only"),
        "{}",
        arm64_worker(&dir)
    );
    std::fs::write(dir.join("Dockerfile"), "FROM base\nRUN uname -m > /arch\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  contexts = {{ base = \"{base}\" }}\n  platforms = [\"linux/arm64\"]\n  output = [\"type=local,dest=out\"]\n}}\n"
        ),
    )
    .unwrap();
    let state = scratch.path().join("state").display().to_string();
    let build = bake(&dir, &["--root", &state]);
    assert!(build.status.success(), "{}", text(&build.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("out/arch")).unwrap(),
        "aarch64\n"
    );
}

#[test]
fn setup_needs_root_and_known_architectures() {
    let dir = tempfile::tempdir().unwrap();
    let output = bake(
        dir.path(),
        &["setup", "emulation", "--arch", "no-such-arch"],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    if rustix::process::geteuid().is_root() {
        assert!(stderr.contains("`no-such-arch`"), "{stderr}");
        assert!(stderr.contains("setup::architecture"), "{stderr}");
    } else {
        assert!(stderr.contains("must run as root"), "{stderr}");
    }
    assert!(text(&output.stdout).is_empty());
}

#[test]
fn the_register_line_recreates_what_the_kernel_lists() {
    let text = "enabled\ninterpreter /usr/bin/q\nflags: POF\noffset 0\nmagic 7f45\nmask ffff\n";
    assert_eq!(
        register_line("qemu-x", text),
        r":qemu-x:M:0:\x7f\x45:\xff\xff:/usr/bin/q:POF"
    );
    let jar = "disabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n";
    assert_eq!(register_line("jar", jar), ":jar:E::jar::/usr/bin/jexec:");
}

#[test]
fn a_handler_without_f_runs_with_its_interpreter_bound_into_the_step() {
    let _lock = support::binfmt_lock(true);
    let _restore = Restore::record();
    let scratch = tempfile::tempdir().unwrap();
    let Some(base) = base(scratch.path()) else {
        return;
    };
    let dir = scratch.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    // `bake setup` mounts binfmt_misc (registering an unrelated handler); then no arm64
    // handler but one as an older binfmt-support setup leaves it: no `F`, so the kernel looks
    // for the interpreter inside the container at every exec.
    let setup = bake(&dir, &["setup", "emulation", "--arch", "riscv64"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let removed = bake(
        &dir,
        &["setup", "emulation", "--uninstall", "--arch", "arm64"],
    );
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let line = r":bake-test-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:P";
    std::fs::write(Path::new(BINFMT).join("register"), line).unwrap();
    let worker = arm64_worker(&dir);
    assert!(
        worker.contains("`bake-test-aarch64`") && worker.contains("bound into each step"),
        "{worker}"
    );
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN echo b a > /in && cat /in | tr ' ' '\\n' | sort | sed 's/^/x/' > /out && uname -m >> /out\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  contexts = {{ base = \"{base}\" }}\n  platforms = [\"linux/arm64\"]\n  output = [\"type=local,dest=out\"]\n}}\n"
        ),
    )
    .unwrap();
    let state = scratch.path().join("state").display().to_string();
    let build = bake(&dir, &["--root", &state]);
    assert!(build.status.success(), "{}", text(&build.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("out/out")).unwrap(),
        "xa\nxb\naarch64\n"
    );
    // The interpreter's mount point never reaches the result.
    assert!(!dir.join("out/usr").exists());
}
