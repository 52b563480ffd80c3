//! The monorepo example end to end on the Docker engine's BuildKit: seven services linked to
//! one base through `target:`, the base on the busybox image bake `--load`ed, every output
//! type written on this machine, and a second run all CACHED.

use std::process::Command;

use crate::remote_build::{BASE, bake, engine, seed_base, stderr, steps_not_cached};
use crate::remote_output::{config_digest, internal_images, tool};
use crate::support;

/// The internal image names of `purpose` (a regex: `link`, `[a-z]+`) a run's progress
/// mentions.
fn internal_names(progress: &str, purpose: &str) -> std::collections::BTreeSet<String> {
    let pattern = regex::Regex::new(&format!("bake-internal/{purpose}:[0-9a-f]{{32}}")).unwrap();
    pattern
        .find_iter(progress)
        .map(|found| found.as_str().to_owned())
        .collect()
}

#[test]
fn monorepo_builds_on_the_engine_with_its_links_and_every_output_then_all_cached() {
    if !engine() || !seed_base() || !tool("skopeo") {
        return;
    }
    let _serial = crate::remote_build::serial();
    let dir = tempfile::tempdir().unwrap();
    support::copy_tree(
        &support::root().join("examples/bake/monorepo"),
        dir.path(),
        &["out"],
    );
    let os = format!("docker-image://{BASE}");
    let env = [("OS", os.as_str())];
    let first = bake(
        dir.path(),
        &["--builder", "docker://", "--progress=plain"],
        &env,
    );
    let progress = stderr(&first);
    assert!(first.status.success(), "{progress}");
    // `base` is built once although six targets link it.
    let base_steps: std::collections::BTreeSet<&str> = progress
        .lines()
        .filter(|line| {
            line.ends_with("RUN mkdir -p /opt/acme && echo \"acme base\" > /opt/acme/release")
        })
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(base_steps.len(), 1, "{progress}");
    let links = internal_names(&progress, "link");
    let first_names = internal_names(&progress, "[a-z]+");
    assert_eq!(
        links.len(),
        1,
        "one image for the one linked target: {links:?}"
    );

    let out = dir.path().join("out");
    for (reference, service) in [
        (
            format!("oci-archive:{}", out.join("api-slim.tar").display()),
            "api",
        ),
        (
            format!("oci-archive:{}", out.join("api-full.tar").display()),
            "api",
        ),
        (
            format!("docker-archive:{}", out.join("worker.tar").display()),
            "worker",
        ),
        (format!("oci:{}", out.join("cli").display()), "cli"),
    ] {
        let inspect = Command::new("skopeo")
            .args(["inspect", &reference])
            .output()
            .unwrap();
        assert!(
            inspect.status.success(),
            "{reference}: {}",
            stderr(&inspect)
        );
        let image: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
        let env = image["Env"].to_string();
        assert!(
            env.contains("ACME_HOME=/opt/acme"),
            "{service} stands on base: {image}"
        );
        assert!(
            !internal_images().contains(&config_digest(&reference)),
            "{reference}: no export image left in the engine"
        );
    }
    assert_eq!(
        std::fs::read_to_string(out.join("web/usr/share/web/web.built")).unwrap(),
        "building web from /opt/acme\n"
    );
    assert!(out.join("docs/usr/share/docs/docs.built").is_file());
    let tar = Command::new("tar")
        .arg("-tf")
        .arg(out.join("migrations.tar"))
        .output()
        .unwrap();
    let members = String::from_utf8_lossy(&tar.stdout);
    assert!(
        members.contains("usr/share/migrations/migrations.built"),
        "{members}"
    );

    let second = bake(
        dir.path(),
        &["--builder", "docker://", "--progress=plain"],
        &env,
    );
    let progress = stderr(&second);
    assert!(second.status.success(), "{progress}");
    assert_eq!(
        steps_not_cached(&progress),
        Vec::<String>::new(),
        "{progress}"
    );
    let listed = internal_images();
    for name in first_names
        .iter()
        .chain(internal_names(&progress, "[a-z]+").iter())
    {
        assert!(
            !listed.contains(name.as_str()),
            "{name} was removed: {listed}"
        );
    }
}
