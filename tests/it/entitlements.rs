//! Entitlements through the `bake` binary: paths outside the working directory need
//! `--allow fs.*`, `RUN --network=host` and `RUN --security=insecure` need their entitlement,
//! and a non-interactive run refuses with the `--allow` to add.

use std::path::Path;
use std::process::Output;

use crate::support;

fn run(dir: &Path, root: &Path, extra: &[&str], env: &[(&str, String)]) -> (Output, String) {
    let mut args = vec![
        "--root".to_owned(),
        root.display().to_string(),
        "--progress=plain".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let output = support::bake(dir, &args, &env, None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// A project in `dir` copying `hello.txt` from `context` into a local output at `dest`.
fn copy_project(dir: &Path, context: &str, dest: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  context = \"{context}\"\n  dockerfile-inline = \"FROM scratch\\nCOPY hello.txt /\\n\"\n  output = [\"type=local,dest={dest}\"]\n}}\n"
        ),
    )
    .unwrap();
}

#[test]
fn an_output_outside_the_working_directory_needs_fs_write() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    let outside = scratch.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let dest = outside.join("out");
    copy_project(&dir, ".", &dest.display().to_string());
    std::fs::write(dir.join("hello.txt"), "hi\n").unwrap();
    let root = scratch.path().join("state");

    let (output, stderr) = run(&dir, &root, &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let flag = format!("--allow=fs.write={}", dest.display());
    assert!(
        stderr.contains(&format!("Pass \"{flag}\" to grant requested privileges.")),
        "{stderr}"
    );
    assert!(
        stderr.contains("additional privileges requested"),
        "{stderr}"
    );
    assert!(!dest.exists(), "nothing is written before the check");

    // A grant on the parent covers the destination inside it.
    let allow = format!("--allow=fs.write={}", outside.display());
    let (output, stderr) = run(&dir, &root, &[&allow], &[]);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dest.join("hello.txt")).unwrap(),
        "hi\n"
    );
}

#[test]
fn a_context_outside_the_working_directory_needs_fs_read() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    let shared = scratch.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello.txt"), "shared\n").unwrap();
    copy_project(&dir, "../shared", "out");
    let root = scratch.path().join("state");
    let resolved = std::fs::canonicalize(&shared).unwrap();

    let (output, stderr) = run(&dir, &root, &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(" - Read access to path {}", resolved.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("--allow=fs.read={}", resolved.display())),
        "{stderr}"
    );
    assert!(!dir.join("out").exists());

    // `fs.write` does not grant reading; `fs` grants both; a relative grant works.
    let (output, _) = run(&dir, &root, &["--allow", "fs.write=../shared"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let (output, stderr) = run(&dir, &root, &["--allow", "network.host,fs=../shared"], &[]);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/hello.txt")).unwrap(),
        "shared\n"
    );

    // BUILDX_BAKE_ENTITLEMENTS_FS=0 turns the refusal into a warning.
    let (output, stderr) = run(
        &dir,
        &root,
        &[],
        &[("BUILDX_BAKE_ENTITLEMENTS_FS", "0".to_owned())],
    );
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(" - Read access to path"), "{stderr}");
}

#[test]
fn an_unknown_allow_key_is_an_error() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    copy_project(&dir, ".", "out");
    std::fs::write(dir.join("hello.txt"), "hi\n").unwrap();
    let (output, stderr) = run(
        &dir,
        &scratch.path().join("state"),
        &["--allow", "network"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown entitlement key `network`"),
        "{stderr}"
    );
}

/// A project in `dir` building `dockerfile` on the busybox base into `out/`, with `extra`
/// lines in its target.
fn run_project(dir: &Path, dockerfile: &str, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "variable \"BASE\" {{}}\nvariable \"PORT\" {{ default = \"0\" }}\ntarget \"default\" {{\n  contexts = {{ base = BASE }}\n  args = {{ PORT = PORT }}\n  output = [\"type=local,dest=out\"]\n{extra}}}\n"
        ),
    )
    .unwrap();
}

fn base_env(port: u16) -> Vec<(&'static str, String)> {
    vec![("BASE", crate::output::base()), ("PORT", port.to_string())]
}

/// A TCP server on 127.0.0.1 that answers `pong` to every connection, for as long as the
/// test runs.
fn pong_server() -> u16 {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"pong\n");
        }
    });
    port
}

#[test]
fn run_network_none_cannot_reach_a_loopback_server_that_the_default_network_reaches() {
    if !crate::output::can_run() {
        return;
    }
    let port = pong_server();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    run_project(
        &dir,
        "FROM base\nARG PORT\n\
         RUN --network=none sh -c 'if nc 127.0.0.1 $PORT </dev/null >/none-reply 2>&1; then echo reached; else echo refused; fi > /none'\n\
         RUN --network=default nc 127.0.0.1 $PORT </dev/null > /default\n\
         RUN nc 127.0.0.1 $PORT </dev/null > /sandbox\n",
        "",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &[], &base_env(port));
    assert!(output.status.success(), "{stderr}");
    let read = |name: &str| std::fs::read_to_string(dir.join("out").join(name)).unwrap();
    assert_eq!(read("none"), "refused\n", "reply: {}", read("none-reply"));
    assert_eq!(read("default"), "pong\n");
    assert_eq!(read("sandbox"), "pong\n");
}

#[test]
fn run_network_host_needs_the_network_host_entitlement() {
    if !crate::output::can_run() {
        return;
    }
    let port = pong_server();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    run_project(
        &dir,
        "FROM base\nARG PORT\nRUN --network=host nc 127.0.0.1 $PORT </dev/null > /host\n",
        "",
    );
    let root = scratch.path().join("state");
    let (output, stderr) = run(&dir, &root, &[], &base_env(port));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("network.host is not allowed"), "{stderr}");
    assert!(stderr.contains("--allow network.host"), "{stderr}");
    assert!(!dir.join("out").exists());

    // Granted by `--allow` but not by the worker configuration.
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(&config, "insecure-entitlements = [\"security.insecure\"]\n").unwrap();
    let config_flag = format!("--config={}", config.display());
    let (output, stderr) = run(
        &dir,
        &root,
        &["--allow", "network.host", &config_flag],
        &base_env(port),
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "granting entitlement network.host is not allowed by build daemon configuration"
        ),
        "{stderr}"
    );

    let (output, stderr) = run(&dir, &root, &["--allow", "network.host"], &base_env(port));
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/host")).unwrap(),
        "pong\n"
    );
}

#[test]
fn run_security_insecure_can_mount_what_the_sandbox_cannot() {
    if !crate::output::can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("state");
    let mount =
        "mkdir -p /mnt && mount -t tmpfs none /mnt && touch /mnt/x && echo mounted > /result";

    let sandbox = scratch.path().join("sandbox");
    run_project(&sandbox, &format!("FROM base\nRUN {mount}\n"), "");
    let (output, stderr) = run(&sandbox, &root, &[], &base_env(0));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed"), "{stderr}");

    let insecure = scratch.path().join("insecure");
    run_project(
        &insecure,
        &format!("FROM base\nRUN --security=insecure {mount}\n"),
        "  entitlements = [\"security.insecure\"]\n",
    );
    // The target asks for the entitlement: bake refuses before building.
    let (output, stderr) = run(&insecure, &root, &[], &base_env(0));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(" - Running privileged containers that can make system changes"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow=security.insecure"), "{stderr}");

    let (output, stderr) = run(
        &insecure,
        &root,
        &["--allow", "security.insecure"],
        &base_env(0),
    );
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(insecure.join("out/result")).unwrap(),
        "mounted\n"
    );
}

#[test]
fn run_security_insecure_without_the_entitlement_fails_before_running() {
    if !crate::output::can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    run_project(
        &dir,
        "FROM base\nRUN echo first > /first\nRUN --security=insecure true\n",
        "",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &[], &base_env(0));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("security.insecure is not allowed"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow security.insecure"), "{stderr}");
    assert!(
        !stderr.contains("] RUN echo first"),
        "no step runs: {stderr}"
    );
}

#[test]
fn a_target_entitlement_bake_does_not_grant_is_named_in_a_warning() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hi\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  dockerfile-inline = \"FROM scratch\\nCOPY hello.txt /\\n\"\n  output = [\"type=local,dest=out\"]\n  entitlements = [\"device=vendor.com/gpu\"]\n}\n",
    )
    .unwrap();
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &[], &[]);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "WARNING: `entitlements` value `device=vendor.com/gpu` is ignored (target `default`)"
        ),
        "{stderr}"
    );
}
