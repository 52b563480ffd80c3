//! Targets with several `platforms`, through the `bake` binary: one solve for both platforms,
//! a `FROM --platform=$BUILDPLATFORM` stage run once natively and shared, the arm64 RUN steps
//! under QEMU (through a `binfmt_misc` handler, or started through the emulator), and
//! one index out, split per platform for `type=local`, pushed as an index to a registry.
//! The steps here are single processes, so they pass whether the host has a `binfmt_misc`
//! handler or not; each test shares the binfmt lock so no handler comes or goes mid-build.

use std::path::Path;

use crate::support;
use crate::support::registry::TestRegistry;

/// The two-platform base, or `None` (after saying why) when this host cannot build it.
fn base(scratch: &Path) -> Option<String> {
    if !rustix::process::geteuid().is_root() || support::find_in_path("runc").is_none() {
        support::skip("skipping multi-platform test: needs root and runc");
        return None;
    }
    if !Path::new("/usr/bin/qemu-aarch64-static").is_file() {
        support::skip("skipping multi-platform test: needs qemu-user-static");
        return None;
    }
    let layout = support::build_two_platform_busybox_layout(scratch);
    if layout.is_none() {
        support::skip(
            "skipping multi-platform test: needs an x86_64 host, busybox-static and busybox-static:arm64 unpacked into target/tmp/arm64 (.ci/run does it)",
        );
    }
    layout
}

const DOCKERFILE: &str = "\
FROM --platform=$BUILDPLATFORM base AS shared
RUN head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /random

FROM base
COPY --from=shared /random /random
ARG TARGETPLATFORM
ARG BUILDPLATFORM
RUN uname -m > /arch && echo \"$TARGETPLATFORM on $BUILDPLATFORM\" > /platforms
";

fn project(dir: &Path, base: &str, outputs: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  contexts = {{ base = \"{base}\" }}\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n  output = [{outputs}]\n}}\n"
        ),
    )
    .unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn two_platforms_build_in_one_solve_share_the_build_platform_stage_and_export_one_index() {
    let _binfmt = support::binfmt_lock(false);
    let scratch = tempfile::tempdir().unwrap();
    let Some(base) = base(scratch.path()) else {
        return;
    };
    let dir = scratch.path().join("app");
    project(
        &dir,
        &base,
        "\"type=local,dest=out\", \"type=oci,dest=image,tar=false\"",
    );
    let args = vec![
        "--root".to_owned(),
        scratch.path().join("state").display().to_string(),
        "--progress=plain".to_owned(),
    ];
    let output = support::bake(&dir, &args, &[], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Step names lead with their platform, as BuildKit's do in multi-platform builds.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("[linux/arm64 stage-1 ") && l.contains("] RUN uname -m")),
        "{stderr}"
    );
    assert!(stderr.contains("[linux/amd64 shared "), "{stderr}");
    // The build-platform stage ran once, natively, and both images hold its result.
    assert_eq!(
        stderr.matches("] RUN head -c 16 /dev/urandom").count(),
        1,
        "{stderr}"
    );
    let amd64 = dir.join("out/linux_amd64");
    let arm64 = dir.join("out/linux_arm64");
    assert_eq!(read(&amd64.join("random")), read(&arm64.join("random")));
    assert_eq!(read(&amd64.join("arch")).trim(), "x86_64");
    assert_eq!(read(&arm64.join("arch")).trim(), "aarch64");
    assert_eq!(
        read(&amd64.join("platforms")).trim(),
        "linux/amd64 on linux/amd64"
    );
    assert_eq!(
        read(&arm64.join("platforms")).trim(),
        "linux/arm64 on linux/amd64"
    );
    // One index of two manifests with the right platforms; skopeo reads it.
    let index = support::registry::raw_image(&format!("oci:{}", dir.join("image").display()));
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
}

#[test]
fn a_two_platform_image_is_pushed_as_an_index() {
    let _binfmt = support::binfmt_lock(false);
    let scratch = tempfile::tempdir().unwrap();
    let Some(base) = base(scratch.path()) else {
        return;
    };
    let Some(registry) = TestRegistry::start() else {
        support::skip("skipping multi-platform push test: needs docker-registry");
        return;
    };
    let dir = scratch.path().join("app");
    let name = format!("{}/multi:1", registry.host);
    project(
        &dir,
        &base,
        &format!("\"type=image,name={name},push=true\""),
    );
    std::fs::write(
        dir.join("buildkitd.toml"),
        format!("[registry.\"{}\"]\n  http = true\n", registry.host),
    )
    .unwrap();
    let args = vec![
        "--root".to_owned(),
        scratch.path().join("state").display().to_string(),
        "--config".to_owned(),
        "buildkitd.toml".to_owned(),
    ];
    let output = support::bake(&dir, &args, &[], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let index = crate::support::registry::raw_manifest(&name);
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(2),
        "{index}"
    );
    let arm64 = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--override-arch", "arm64"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(
        arm64.status.success(),
        "{}",
        String::from_utf8_lossy(&arm64.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&arm64.stdout).unwrap();
    assert_eq!(config["Architecture"], "arm64", "{config}");
}
