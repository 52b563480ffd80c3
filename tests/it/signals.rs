//! Ending a build from outside: its progress reader going away (a closed stderr pipe) and
//! SIGTERM both stop it promptly, with a non-zero status, no panic and no container left.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::output::{base, can_run, project};

/// Starts `bake --progress=plain` in `dir` with stderr piped; the empty `HOME` it gets lives
/// as long as the returned directory.
fn spawn(dir: &Path, root: &Path) -> (Child, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bake"))
        .args(["--root", root.to_str().unwrap(), "--progress=plain"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("BASE", base())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, home)
}

/// Waits up to `limit` for `child` to exit; kills it and fails the test when it does not.
fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bake did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ids of the runc containers still known under the state root.
fn containers(root: &Path) -> String {
    let output = Command::new("runc")
        .args([
            "--root",
            root.join("runtime").to_str().unwrap(),
            "list",
            "-q",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn a_closed_progress_pipe_cancels_the_build_and_bake_exits_non_zero() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    let step = |name: &str| {
        format!("RUN for i in $(seq 1 300); do echo {name} $i; done; sleep 1; echo {name} done\n")
    };
    let dockerfile = format!(
        "FROM base\n{}{}{}{}",
        step("one"),
        step("two"),
        step("three"),
        step("four")
    );
    project(&dir, &dockerfile);
    let root = scratch.path().join("state");
    let (mut child, _home) = spawn(&dir, &root);
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    for _ in 0..2 {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "bake wrote no progress"
        );
    }
    // `| head -2`: the reader goes away mid-build.
    drop(stderr);
    let status = wait(&mut child, Duration::from_secs(60));
    // 101 is a Rust panic's exit status; a signal would leave no code.
    assert_eq!(status.code(), Some(1), "{status}");
    assert_eq!(containers(&root), "");
}

#[test]
fn sigterm_stops_a_running_step_and_leaves_no_container() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    project(&dir, "FROM base\nRUN echo started && sleep 60\n");
    let root = scratch.path().join("state");
    let (mut child, _home) = spawn(&dir, &root);
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.trim_end().ends_with(" started") {
            break;
        }
        line.clear();
    }
    assert!(
        seen.contains("started"),
        "the RUN step never started:\n{seen}"
    );
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    let sent = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    // Keep reading so bake never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    let status = wait(&mut child, Duration::from_secs(20));
    let rest = reader.join().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "bake took {:?} to stop",
        sent.elapsed()
    );
    assert!(!status.success(), "{status}\n{seen}{rest}");
    assert!(
        status.code().is_some(),
        "bake exited through its handler: {status}"
    );
    assert!(!rest.contains("panicked"), "{rest}");
    // The killed step is shown as cancelled, not as the error its killed process returned.
    assert!(rest.contains(" CANCELED"), "{seen}{rest}");
    assert!(!rest.contains("ERROR: process"), "{seen}{rest}");
    assert!(rest.contains("build cancelled"), "{seen}{rest}");
    assert_eq!(containers(&root), "");
}

/// A build stuck where it cannot see the cancel flag (here a registry that accepts the
/// connection and never answers) still ends on SIGTERM, after the grace period.
#[test]
fn sigterm_ends_a_build_stuck_in_a_registry_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, connected) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Hold every connection open without a byte of response.
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            let _ = accepted.send(());
        }
    });
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM 127.0.0.1:{port}/stuck:latest\nRUN true\n"),
    )
    .unwrap();
    std::fs::write(dir.join("docker-bake.hcl"), "target \"default\" {}\n").unwrap();
    let root = scratch.path().join("state");
    let (mut child, _home) = spawn(&dir, &root);
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut rest);
        rest
    });
    connected
        .recv_timeout(Duration::from_secs(30))
        .expect("bake connected to the registry");
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = wait(&mut child, Duration::from_secs(20));
    let rest = reader.join().unwrap();
    assert!(!status.success(), "{status}\n{rest}");
    assert!(
        status.code().is_some(),
        "bake exited through its handler: {status}"
    );
    assert!(!rest.contains("panicked"), "{rest}");
}
