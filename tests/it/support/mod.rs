//! Shared helpers: copy a fixture into a scratch directory and run the real `bake` binary
//! there with a clean environment.

pub(crate) mod gha;
pub(crate) mod git;
pub(crate) mod http;
pub(crate) mod moto;
pub(crate) mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Says on stderr why a test skips, and records it in `target/tmp/skipped-tests.txt`, which
/// `.ci/run` prints after the tests: a skip is never silent.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
pub(crate) fn skip(reason: &str) {
    use std::io::Write as _;
    eprintln!("{reason}");
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown test")
        .to_owned();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        // One line per skip, so the list `.ci/run` sorts stays readable.
        let line: String = reason
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(300)
            .collect();
        let _ = writeln!(file, "{test}: {line}");
    }
}

/// The repository root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree, skipping the named entries at its top level.
pub(crate) fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_str().unwrap();
        if skip.contains(&name) {
            continue;
        }
        let target = to.join(name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target, &[]);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs `bake` with `args` in `dir`, with only `PATH`, an empty `HOME` and `env` set.
pub(crate) fn bake(
    dir: &Path,
    args: &[String],
    env: &[(String, String)],
    stdin: Option<&str>,
) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bake"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Reads a `KEY=VALUE` per line file (missing file: no variables).
pub(crate) fn read_env(path: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Splits a command line the way a POSIX shell splits words (quotes, backslashes).
pub(crate) fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    current.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => current.extend(chars.next()),
                        other => current.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                current.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Lists the case directories under `dir` (those holding `marker`), sorted.
pub(crate) fn cases(dir: &Path, marker: &str) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join(marker).is_file())
        .collect();
    cases.sort();
    cases
}

/// Runs a `fixtures/<suite>/<case>/cmd` case in a scratch copy: the `cmd` file holds one
/// argument per line, `env` optional variables. Returns the output and the scratch path.
pub(crate) fn run_fixture(cmd: &Path) -> (Output, String) {
    let case = cmd.parent().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    copy_tree(case, scratch.path(), &["cmd", "env"]);
    let args: Vec<String> = std::fs::read_to_string(cmd)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let env = read_env(&case.join("env"));
    let output = bake(scratch.path(), &args, &env, None);
    (output, scratch.path().to_str().unwrap().to_owned())
}

/// Finds an executable on `PATH` (or in the sbin directories).
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Copies busybox into `root/bin`, links every applet to it and adds a passwd and group
/// file. No `/etc/hosts` or `/etc/resolv.conf`: the executor must provide them.
pub(crate) fn build_busybox_rootfs(root: &Path, busybox: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbuilder:x:1500:1600:Builder:/home/builder:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nbuilders:x:1600:\nextra:x:1700:builder\n",
    )
    .unwrap();
    for dir in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
}

/// Builds a busybox base image from Debian's `busybox-static` with bake itself (`FROM
/// scratch`, `COPY busybox /bin/busybox`, `RUN ["/bin/busybox","--install","-s","/bin"]`)
/// into an OCI layout directory under `dir`, and returns its `oci-layout://` reference.
/// `None` when `/bin/busybox` (package `busybox-static`) is missing.
pub(crate) fn build_busybox_layout(dir: &Path) -> Option<String> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        return None;
    }
    let project = dir.join("busybox-base");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(busybox, project.join("busybox")).unwrap();
    std::fs::write(
        project.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n",
    )
    .unwrap();
    std::fs::write(
        project.join("docker-bake.hcl"),
        "target \"default\" {\n  output = [\"type=oci,dest=layout,tar=false\"]\n}\n",
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        dir.join("busybox-state").display().to_string(),
    ];
    let output = bake(&project, &args, &[], None);
    assert!(
        output.status.success(),
        "building the busybox base failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(format!("oci-layout://{}", project.join("layout").display()))
}

/// Debian's arm64 `busybox` (package `busybox-static:arm64`, unpacked by `.ci/run` into
/// `target/tmp/arm64/root`), or `None` when it is not there.
pub(crate) fn arm64_busybox() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("arm64/root/bin/busybox");
    path.is_file().then_some(path)
}

/// Builds a two-platform busybox base (an OCI layout whose index holds a `linux/amd64` and a
/// `linux/arm64` image) with bake itself, from the host's static busybox and Debian's arm64
/// one; the arm64 half's `busybox --install` runs under QEMU. Returns its `oci-layout://`
/// reference, or `None` when a part is missing (the caller skips and says why).
pub(crate) fn build_two_platform_busybox_layout(dir: &Path) -> Option<String> {
    let amd64 = Path::new("/bin/busybox");
    let arm64 = arm64_busybox()?;
    if !amd64.is_file() || std::env::consts::ARCH != "x86_64" {
        return None;
    }
    let project = dir.join("two-platform-base");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(amd64, project.join("busybox-amd64")).unwrap();
    std::fs::copy(arm64, project.join("busybox-arm64")).unwrap();
    std::fs::write(
        project.join("Dockerfile"),
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-$TARGETARCH /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n",
    )
    .unwrap();
    std::fs::write(
        project.join("docker-bake.hcl"),
        "target \"default\" {\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n  output = [\"type=oci,dest=layout,tar=false\"]\n}\n",
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        dir.join("two-platform-state").display().to_string(),
    ];
    let output = bake(&project, &args, &[], None);
    assert!(
        output.status.success(),
        "building the two-platform busybox base failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(format!("oci-layout://{}", project.join("layout").display()))
}

/// The lock every test whose result depends on the host's `binfmt_misc` handlers holds
/// (`target/tmp/binfmt.lock`): handlers are host-wide and tests run in parallel. A test that
/// changes them takes it exclusively; one that only needs them to stay as they are during
/// its build shares it. Released on drop.
pub(crate) struct BinfmtLock(#[expect(dead_code, reason = "held for its lock")] std::fs::File);

/// Takes the [`BinfmtLock`], waiting for the holders that conflict.
pub(crate) fn binfmt_lock(exclusive: bool) -> BinfmtLock {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("binfmt.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    let mode = if exclusive {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::LockShared
    };
    rustix::fs::flock(&file, mode).unwrap();
    BinfmtLock(file)
}

/// The `oci-layout://` reference of the committed busybox base (`fixtures/base/busybox`),
/// pinned to its digest.
pub(crate) fn busybox_base() -> String {
    let layout = root().join("fixtures/base/busybox");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    format!("oci-layout://{}@{digest}", layout.display())
}

/// Whether builds with RUN steps can run here (root and runc); records why not.
pub(crate) fn can_build() -> bool {
    let ok = rustix::process::geteuid().is_root() && find_in_path("runc").is_some();
    if !ok {
        skip("skipping: building needs root and runc (Debian package `runc`)");
    }
    ok
}

/// From `--progress=rawjson` output: how many build steps came from the cache and how many
/// ran (export steps, which run every time, are left out).
pub(crate) fn step_counts(stderr: &str) -> (usize, usize) {
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let exports: Vec<&str> = events
        .iter()
        .filter(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.contains("exporting to "))
        })
        .filter_map(|e| e["vertex"].as_str())
        .collect();
    let count = |event: &str| {
        events
            .iter()
            .filter(|e| e["event"] == event)
            .filter(|e| e["vertex"].as_str().is_none_or(|v| !exports.contains(&v)))
            .count()
    };
    (count("cached"), count("done"))
}
