//! How builds fail, through the `bake` binary: a failed step keeps its cause (exit code,
//! output tail, the Dockerfile line), a bad layer names the entry and the reason, outputs are
//! checked before anything runs, and wrong paths are reported against what the user wrote.

use std::io::Write as _;
use std::path::Path;

use sha2::Digest as _;

use crate::support;
use crate::support::can_build as can_run;

fn base() -> String {
    let layout = support::root().join("fixtures/base/busybox");
    format!("oci-layout://{}", layout.display())
}

/// Writes a project with `dockerfile` and one target `app` using `contexts.base`, plus the
/// extra HCL lines in `target_lines`.
fn project(dir: &Path, dockerfile: &str, base: &str, target_lines: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!("target \"app\" {{\n  contexts = {{ base = \"{base}\" }}\n{target_lines}\n}}\n"),
    )
    .unwrap();
}

fn run(dir: &Path, root: &Path, extra: &[&str]) -> (std::process::Output, String) {
    let mut args = vec!["--root".to_owned(), root.display().to_string()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push("app".to_owned());
    let output = support::bake(dir, &args, &[], None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

#[test]
fn a_quiet_failing_run_shows_its_exit_code_output_and_line() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(
        &dir,
        "FROM base\nRUN echo first-line; echo second-line >&2; exit 3\n",
        &base(),
        "",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &["--progress=quiet"]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exit code 3"), "{stderr}");
    assert!(stderr.contains("first-line"), "{stderr}");
    assert!(stderr.contains("second-line"), "{stderr}");
    assert!(stderr.contains("target `app`"), "{stderr}");
    // The excerpt of the Dockerfile points at the RUN line.
    assert!(stderr.contains("[Dockerfile:2:1]"), "{stderr}");
    assert!(!stderr.contains("target ``"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unknown_output_type_fails_before_building_and_names_the_types() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    // A step that would fail if it ran: the output check must come first.
    project(
        &dir,
        "FROM base\nRUN exit 9\n",
        &base(),
        "  output = [\"type=s3,dest=x\"]",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &["--progress=plain"]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown output type `s3`"), "{stderr}");
    assert!(
        stderr.contains("`local`, `tar`, `oci`, `docker`, `image`, `registry`"),
        "{stderr}"
    );
    assert!(!stderr.contains("RUN exit 9"), "a step ran: {stderr}");
    assert!(
        !stderr.contains("registry, which is not supported"),
        "{stderr}"
    );
}

#[test]
fn a_local_output_without_dest_fails_before_building() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(
        &dir,
        "FROM base\nRUN exit 9\n",
        &base(),
        "  output = [\"type=local\"]",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &["--progress=plain"]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("requires `dest`"), "{stderr}");
    assert!(!stderr.contains("RUN exit 9"), "a step ran: {stderr}");
}

#[test]
fn a_missing_dockerfile_names_the_os_error_once() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(&dir, "FROM base\n", &base(), "  dockerfile = \"Nope\"");
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &[]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed to read the Dockerfile"), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_missing_context_directory_is_not_reported_as_a_missing_dockerfile() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(&dir, "FROM base\n", &base(), "  context = \"nodir\"");
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &[]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("context directory"), "{stderr}");
    assert!(stderr.contains("nodir"), "{stderr}");
    assert!(!stderr.contains("Dockerfile`"), "{stderr}");
}

#[test]
fn a_bad_oci_layout_context_is_reported_against_the_contexts_entry() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(&dir, "FROM base\n", "oci-layout:///nonexistent/layout", "");
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &[]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("named context `base`"), "{stderr}");
    assert!(stderr.contains("contexts.base"), "{stderr}");
    assert!(stderr.contains("/nonexistent/layout"), "{stderr}");
    assert!(!stderr.contains("FROM base"), "{stderr}");
}

#[test]
fn a_missing_copy_source_names_the_context_not_a_snapshot() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    let root = scratch.path().join("state");
    project(
        &dir,
        "FROM base\nCOPY missing.txt /\n",
        &base(),
        "  output = [\"type=local,dest=out\"]",
    );
    let (output, stderr) = run(&dir, &root, &["--progress=quiet"]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.txt"), "{stderr}");
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
    assert!(!stderr.contains(&root.display().to_string()), "{stderr}");
}

#[test]
fn a_missing_runtime_binary_says_how_to_install_it() {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(&dir, "FROM base\nRUN true\n", &base(), "");
    std::fs::write(
        dir.join("buildkitd.toml"),
        "[worker.oci]\nbinary = \"/nonexistent/runc\"\n",
    )
    .unwrap();
    let (output, stderr) = run(
        &dir,
        &scratch.path().join("state"),
        &["--config", "buildkitd.toml", "--progress=quiet"],
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/runc"), "{stderr}");
    assert!(stderr.contains("apt-get install runc"), "{stderr}");
    assert!(stderr.contains("[worker.oci]"), "{stderr}");
}

/// Writes an OCI layout whose only layer holds a hard link escaping the root.
fn hostile_layout(dir: &Path) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Link);
    header.set_size(0);
    header.set_mode(0o644);
    builder
        .append_link(&mut header, "escape", "../../../etc/passwd")
        .unwrap();
    let layer = builder.into_inner().unwrap();
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let write = |bytes: &[u8]| -> String {
        let hex = format!("{:x}", sha2::Sha256::digest(bytes));
        std::fs::File::create(blobs.join(&hex))
            .unwrap()
            .write_all(bytes)
            .unwrap();
        format!("sha256:{hex}")
    };
    let layer_digest = write(&layer);
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string();
    let config_digest = write(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    let manifest_digest = write(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len()}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

#[test]
fn a_layer_that_cannot_be_applied_names_the_entry_and_the_reason() {
    let scratch = tempfile::tempdir().unwrap();
    let layout = scratch.path().join("hostile");
    hostile_layout(&layout);
    let dir = scratch.path().join("p");
    project(
        &dir,
        "FROM base\n",
        &format!("oci-layout://{}", layout.display()),
        "  output = [\"type=local,dest=out\"]",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &["--progress=quiet"]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed to apply layer"), "{stderr}");
    assert!(stderr.contains("`escape`"), "{stderr}");
    assert!(stderr.contains("outside the root"), "{stderr}");
    assert!(!dir.join("out").exists(), "no half-written output");
}

#[test]
fn options_bake_accepts_but_does_not_act_on_are_named_in_warnings() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"app\" {\n  cache-to = [\"type=local,dest=cache,reset=true\"]\n  cache-from = [\"type=local,src=cache\"]\n  attest = [\"type=provenance,mode=max\"]\n  output = [\"type=oci,dest=app.tar,registry.insecure=true\"]\n}\n",
    )
    .unwrap();
    let args: Vec<String> = [
        "--root",
        &scratch.path().join("state").display().to_string(),
        "app",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let output = support::bake(&dir, &args, &[], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for needle in [
        "WARNING: `cache-to` attribute `reset` of target `app` (`type=local`) is ignored",
        "WARNING: cache-from `type=local,src=",
        "cache` was not imported: no cache manifest `latest`",
        "WARNING: `attest` is ignored (target `app`)",
        "WARNING: output attribute `registry.insecure` of target `app` (`type=oci`) is ignored",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
    }
    assert!(
        dir.join("cache/index.json").is_file(),
        "the cache was written"
    );
    // `--print` builds nothing and warns about nothing.
    let output = support::bake(&dir, &["--print".to_owned(), "app".to_owned()], &[], None);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("WARNING"));
}

#[test]
fn a_shell_run_on_an_image_without_a_shell_says_so() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nRUN echo hi\n").unwrap();
    std::fs::write(dir.join("docker-bake.hcl"), "target \"app\" {}\n").unwrap();
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &["--progress=quiet"]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the image has no `/bin/sh`"), "{stderr}");
    assert!(stderr.contains("exec form"), "{stderr}");
}

#[test]
fn a_base_without_the_requested_platform_is_an_error_naming_what_it_has() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    // The busybox fixture is a single amd64 manifest: no index to choose an arm64 image from.
    project(
        &dir,
        "FROM base\nCOPY Dockerfile /x\n",
        &base(),
        "  platforms = [\"linux/arm64\"]\n  output = [\"type=oci,dest=out.tar\"]",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &["--progress=quiet"]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // The report wraps long lines where the checkout's path length puts them: compare
    // without the box drawing and line breaks.
    let flat: String = stderr
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let flat = flat.replace("/ ", "/");
    assert!(flat.contains("`linux/arm64`"), "{stderr}");
    assert!(flat.contains("`linux/amd64`"), "{stderr}");
    assert!(
        !dir.join("out.tar").exists(),
        "no image for the wrong platform"
    );
}

#[test]
fn an_unknown_platform_is_an_error_before_anything_runs() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(
        &dir,
        "FROM base\n",
        &base(),
        "  platforms = [\"linux/amd65\"]",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &[]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown architecture `amd65`"), "{stderr}");
}

#[test]
fn loading_a_multi_platform_target_says_what_docker_takes() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(
        &dir,
        "FROM base\nRUN exit 9\n",
        &base(),
        "  platforms = [\"linux/amd64\", \"linux/arm64\"]",
    );
    let (output, stderr) = run(&dir, &scratch.path().join("state"), &["--load"]);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // The report wraps long lines: compare with the box drawing and line breaks taken out.
    let flat: String = stderr
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("Docker's image store takes one platform"),
        "{stderr}"
    );
    assert!(stderr.contains("linux/amd64, linux/arm64"), "{stderr}");
    assert!(stderr.contains("type=oci"), "{stderr}");
    assert!(!stderr.contains("RUN exit 9"), "a step ran: {stderr}");
}

#[test]
fn a_docker_archive_of_a_multi_platform_target_fails_before_building() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("p");
    project(
        &dir,
        "FROM base\nRUN exit 9\n",
        &base(),
        "  platforms = [\"linux/amd64\", \"linux/arm64\"]",
    );
    let (output, stderr) = run(
        &dir,
        &scratch.path().join("state"),
        &["--set", "*.output=type=docker,dest=img.tar"],
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let flat: String = stderr
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("docker exporter does not currently support exporting manifest lists"),
        "{stderr}"
    );
    assert!(flat.contains("type=oci,dest=img.tar"), "{stderr}");
    assert!(!stderr.contains("RUN exit 9"), "a step ran: {stderr}");
    assert!(!dir.join("img.tar").exists());
}
