//! `buildkitd.toml`: rendered diagnostics for bad files (`fixtures/config/errors/<case>`),
//! and the `bake` binary honouring `--config` (state root, runtime binary, warnings, errors).

use std::path::Path;

use bake::diag::SourceFile;

use crate::support;
use crate::support::busybox_base as base;

/// Every case renders its errors, or, when the file loads, its warnings.
#[test]
fn bad_configs_render_diagnostics() {
    insta::glob!("../../fixtures", "config/errors/*/buildkitd.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let file = SourceFile::new("buildkitd.toml", text);
        let rendered = match bake::config::parse(&file) {
            Err(error) => bake::diag::render(&error),
            Ok(loaded) => {
                assert!(
                    !loaded.warnings.is_empty(),
                    "{} loads without a warning",
                    path.display()
                );
                loaded
                    .warnings
                    .iter()
                    .map(|w| bake::diag::render(w))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        assert!(!rendered.contains("panicked"));
        insta::assert_snapshot!(rendered);
    });
}

/// A project whose build needs no base image and no runtime: `FROM scratch` + `COPY`.
fn scratch_project(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY foo /foo\n").unwrap();
    std::fs::write(dir.join("foo"), "foo\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  output = [\"type=local,dest=out\"]\n}\n",
    )
    .unwrap();
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_config_root_holds_the_state_and_root_flag_wins() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    scratch_project(&dir);
    let from_config = scratch.path().join("config-root");
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(
        &config,
        format!(
            "root = \"{}\"\n\n[worker.oci]\n  max-parallelism = 2\n",
            from_config.display()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();

    let output = support::bake(&dir, &args(&["--config", &config_arg]), &[], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(dir.join("out/foo")).unwrap(),
        "foo\n"
    );
    assert!(
        from_config.join("metadata.db").is_file(),
        "the state landed in the config's root"
    );
    assert!(
        !stderr(&output).contains("config::"),
        "a file bake fully acts on gives no warning: {}",
        stderr(&output)
    );

    let from_flag = scratch.path().join("flag-root");
    std::fs::remove_dir_all(&from_config).unwrap();
    let flag_arg = from_flag.display().to_string();
    let output = support::bake(
        &dir,
        &args(&["--config", &config_arg, "--root", &flag_arg]),
        &[],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(from_flag.join("metadata.db").is_file(), "--root wins");
    assert!(!from_config.exists(), "the config root was not used");
}

#[test]
fn unknown_keys_and_inert_keys_warn_and_the_build_goes_on() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    scratch_project(&dir);
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(
        &config,
        "rooot = \"/nowhere\"\n[worker.oci]\n  minFreeSpace = \"1GB\"\n[registry.\"docker.io\"]\n  mirrors = [\"mirror.local:5000\"]\n",
    )
    .unwrap();
    let root = scratch.path().join("state").display().to_string();
    let output = support::bake(
        &dir,
        &args(&["--config", &config.display().to_string(), "--root", &root]),
        &[],
        None,
    );
    let stderr = stderr(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(dir.join("out/foo").is_file());
    assert!(
        stderr.contains("unknown key `rooot`") && stderr.contains("buildkitd.toml:1:1"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("does not act on").count(),
        1,
        "one warning for all inert keys: {stderr}"
    );
    assert!(stderr.contains("`worker.oci.minFreeSpace`"), "{stderr}");
}

#[test]
fn a_bad_config_exits_1_pointing_at_the_value() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    scratch_project(&dir);
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(&config, "[worker.oci]\n  max-parallelism = \"four\"\n").unwrap();
    let output = support::bake(
        &dir,
        &args(&["--config", &config.display().to_string()]),
        &[],
        None,
    );
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`worker.oci.max-parallelism` must be an integer, not a string")
            && stderr.contains("buildkitd.toml:2:21"),
        "{stderr}"
    );
    assert!(!dir.join("out").exists(), "nothing was built");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_missing_config_file_is_an_error() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    scratch_project(&dir);
    let output = support::bake(&dir, &args(&["--config", "missing.toml"]), &[], None);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed to read config file `missing.toml`"),
        "{stderr}"
    );
}

/// A project with one RUN step on the busybox base.
fn run_project(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN echo ran > /ran\nFROM scratch\nCOPY --from=0 /ran /ran\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=local,dest=out\"]\n}\n",
    )
    .unwrap();
}

fn build_with_binary(binary: &str) -> (std::process::Output, tempfile::TempDir) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    run_project(&dir);
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(
        &config,
        format!(
            "root = \"{}\"\n[worker.oci]\n  binary = \"{binary}\"\n",
            scratch.path().join("state").display()
        ),
    )
    .unwrap();
    let output = support::bake(
        &dir,
        &args(&["--config", &config.display().to_string()]),
        &[("BASE".to_owned(), base())],
        None,
    );
    (output, scratch)
}

fn is_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        crate::support::skip("skipping runtime test: RUN steps need root");
    }
    root
}

#[test]
fn a_missing_runtime_binary_fails_the_run_step_naming_it() {
    if !is_root() {
        return;
    }
    let (output, _scratch) = build_with_binary("/nonexistent/bin/crun-missing");
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/bin/crun-missing"),
        "the error names the binary: {stderr}"
    );
    assert!(stderr.contains("RUN echo ran"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn crun_from_the_config_runs_the_run_step() {
    if !is_root() {
        return;
    }
    let Some(crun) = support::find_in_path("crun") else {
        crate::support::skip("skipping crun test: needs crun (Debian package `crun`)");
        return;
    };
    let (output, scratch) = build_with_binary(&crun.display().to_string());
    let stderr = stderr(&output);
    if !output.status.success() && stderr.contains("cgroup") {
        // crun 1.8 refuses the hybrid cgroup layout of some hosts (issue #4).
        crate::support::skip(&format!(
            "skipping crun test: this host's cgroup layout is refused by crun: {stderr}"
        ));
        return;
    }
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("project/out/ran")).unwrap(),
        "ran\n"
    );
}

#[test]
fn the_first_worker_platform_is_the_default_platform() {
    let other = if bake::platform::Platform::host().architecture == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    scratch_project(&dir);
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  output = [\"type=oci,tar=false,dest=out/img\"]\n}\n",
    )
    .unwrap();
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(
        &config,
        format!(
            "root = \"{}\"\n[worker.oci]\n  platforms = [\"linux/{other}\", \"linux/riscv64\"]\n",
            scratch.path().join("state").display()
        ),
    )
    .unwrap();
    let output = support::bake(
        &dir,
        &args(&["--config", &config.display().to_string()]),
        &[],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/img/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"][0]["platform"]["architecture"], other);
}

#[test]
fn a_platform_outside_the_worker_platforms_fails_before_any_step() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    scratch_project(&dir);
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  platforms = [\"linux/amd64\", \"linux/s390x\"]\n  output = [\"type=oci,tar=false,dest=out/img\"]\n}\n",
    )
    .unwrap();
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(
        &config,
        format!(
            "root = \"{}\"\n[worker.oci]\n  platforms = [\"linux/amd64/v3\", \"linux/arm64\"]\n",
            scratch.path().join("state").display()
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let output = support::bake(&dir, &args(&["--config", &config_arg]), &[], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    for part in [
        "target `default` builds for `linux/s390x`",
        "the worker builds only `linux/amd64/v3`,",
        "`linux/arm64` (`[worker.oci] platforms` in",
        "buildkitd.toml`)",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!err.contains("COPY foo"), "no step started: {err}");
    assert!(!dir.join("out").exists(), "nothing exported");

    // The worker's platforms (older variants included) build.
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  platforms = [\"linux/amd64/v2\", \"linux/arm64\"]\n  output = [\"type=oci,tar=false,dest=out/img\"]\n}\n",
    )
    .unwrap();
    let output = support::bake(&dir, &args(&["--config", &config_arg]), &[], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/img/index.json")).unwrap())
            .unwrap();
    let nested = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = dir
        .join("out/img/blobs/sha256")
        .join(&nested["sha256:".len()..]);
    let nested: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(blob).unwrap()).unwrap();
    let platforms: Vec<String> = nested["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let variant = p["variant"].as_str().map(|v| format!("/{v}"));
            format!(
                "{}/{}{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap(),
                variant.unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64/v2", "linux/arm64"]);

    // `bake debug workers` lists the configured platforms and no other.
    let output = support::bake(
        &dir,
        &args(&["debug", "workers", "--config", &config_arg]),
        &[],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(listed, ["linux/amd64/v3", "linux/arm64"]);
}
