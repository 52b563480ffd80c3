//! `shm-size`, `ulimits` and `resources` on RUN steps of the embedded solver: what the step
//! sees, what its cache key holds, and how bad values are reported.

use std::path::Path;
use std::process::Output;

use crate::support;

/// A project whose one RUN step records `/dev/shm`'s size, the open-files limits and the
/// memory limit of its cgroup.
fn project(dir: &Path, limits: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN df -k /dev/shm > /shm && ulimit -n > /soft && ulimit -Hn > /hard && \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /memory\n",
    )
    .unwrap();
    write_bake_file(dir, limits);
}

fn write_bake_file(dir: &Path, limits: &str) {
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "variable \"BASE\" {{}}\ntarget \"default\" {{\n  contexts = {{ base = BASE }}\n{limits}  \
             output = [\"type=local,dest=out\"]\n}}\n"
        ),
    )
    .unwrap();
}

fn build(dir: &Path, root: &Path) -> Output {
    let args: Vec<String> = ["--root", root.to_str().unwrap(), "--progress=rawjson"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let output = support::bake(
        dir,
        &args,
        &[("BASE".to_owned(), support::busybox_base())],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join("out").join(file))
        .unwrap()
        .trim()
        .to_owned()
}

/// The size column of `df -k` for `/dev/shm`, in KiB.
fn shm_kib(dir: &Path) -> String {
    let df = read(dir, "shm");
    df.lines()
        .last()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no size in {df}"))
        .to_owned()
}

#[test]
fn shm_size_and_ulimits_reach_run_steps_and_their_cache_key() {
    if !support::can_build() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    let root = scratch.path().join("state");
    project(&dir, "");
    build(&dir, &root);
    assert_eq!(shm_kib(&dir), "65536");

    write_bake_file(
        &dir,
        "  shm-size = \"96m\"\n  ulimits = [\"nofile=1000:2000\"]\n",
    );
    let output = build(&dir, &root);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("shm-size") && !stderr.contains("ulimits"),
        "{stderr}"
    );
    assert_eq!(
        support::step_counts(&stderr).1,
        1,
        "the RUN step ran again: {stderr}"
    );
    assert_eq!(shm_kib(&dir), "98304");
    assert_eq!(
        (read(&dir, "soft"), read(&dir, "hard")),
        ("1000".into(), "2000".into())
    );

    write_bake_file(
        &dir,
        "  shm-size = \"96m\"\n  ulimits = [\"nofile=1000:3000\"]\n",
    );
    let stderr = String::from_utf8_lossy(&build(&dir, &root).stderr).into_owned();
    assert_eq!(
        support::step_counts(&stderr).1,
        1,
        "a new ulimit reran it: {stderr}"
    );
    assert_eq!(read(&dir, "hard"), "3000");

    let stderr = String::from_utf8_lossy(&build(&dir, &root).stderr).into_owned();
    assert_eq!(
        support::step_counts(&stderr).1,
        0,
        "unchanged, cached: {stderr}"
    );
}

#[test]
fn resources_limit_the_run_container_without_entering_the_cache_key() {
    if !support::can_build() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    let root = scratch.path().join("state");
    project(&dir, "  resources = { memory = \"64m\" }\n");
    let output = build(&dir, &root);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("resources"), "{stderr}");
    assert_eq!(read(&dir, "memory"), (64u64 << 20).to_string());

    // As in BuildKit, a cgroup limit does not change what a step produces.
    write_bake_file(&dir, "  resources = { memory = \"32m\" }\n");
    let stderr = String::from_utf8_lossy(&build(&dir, &root).stderr).into_owned();
    assert_eq!(support::step_counts(&stderr).1, 0, "{stderr}");
}

/// Runs bake on a bake file setting `attribute`, expecting a located failure naming `value`.
fn assert_located_failure(attribute: &str, value: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        format!("target \"default\" {{\n  output = [\"type=cacheonly\"]\n  {attribute}\n}}\n"),
    )
    .unwrap();
    let root = dir.path().join("state");
    let args: Vec<String> = vec!["--root".into(), root.display().to_string()];
    let output = support::bake(dir.path(), &args, &[], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("`{value}`")), "{stderr}");
    assert!(stderr.contains("docker-bake.hcl:3:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!root.exists(), "nothing ran: {stderr}");
}

#[test]
fn bad_limits_are_located_errors_before_anything_runs() {
    assert_located_failure("shm-size = \"lots\"", "lots");
    assert_located_failure("ulimits = [\"nofile=x\"]", "nofile=x");
    assert_located_failure("ulimits = [\"bogus=1\"]", "bogus=1");
    assert_located_failure("resources = { memory = \"much\" }", "much");
}

#[test]
fn bad_limits_in_set_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        "target \"default\" {}\n",
    )
    .unwrap();
    for (set, value) in [
        ("default.shm-size=lots", "lots"),
        ("default.ulimits=nofile=1:y", "nofile=1:y"),
    ] {
        let args: Vec<String> = vec!["--print".into(), "--set".into(), set.into()];
        let output = support::bake(dir.path(), &args, &[], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("`{value}`")), "{stderr}");
    }
}
