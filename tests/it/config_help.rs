//! What `bake --help` and the config warning say bake acts on: the overlayfs snapshotter, the
//! GC keys and `[registry]` mirrors, plain HTTP, insecure and CA are in effect, so neither
//! text calls them unused; keys bake does not act on are still named.

use crate::support;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The text with every run of whitespace as one space, so clap's wrapping does not matter.
fn flat(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn help_names_the_snapshotters_and_the_registry_and_gc_keys_in_effect() {
    let dir = tempfile::tempdir().unwrap();
    let output = support::bake(dir.path(), &args(&["--help"]), &[], None);
    assert!(output.status.success());
    let help = flat(&output.stdout);
    assert!(!help.contains("only `native`"), "{help}");
    assert!(
        help.contains("`snapshotter` (`auto`, `overlayfs` or `native`)"),
        "{help}"
    );
    assert!(
        help.contains("`[registry.\"host\"]` `mirrors`, `http`, `insecure` and `ca`"),
        "{help}"
    );
    assert!(help.contains("`gckeepstorage`"), "{help}");
    assert!(!help.contains("not acted on yet"), "{help}");
}

#[test]
fn registry_and_gc_keys_are_not_named_as_inert_but_unsupported_keys_are() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY foo /foo\n").unwrap();
    std::fs::write(dir.join("foo"), "foo\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  output = [\"type=local,dest=out\"]\n}\n",
    )
    .unwrap();
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(
        &config,
        concat!(
            "[worker.oci]\n",
            "  gc = true\n",
            "  gckeepstorage = \"10GB\"\n",
            "  reservedSpace = \"1GB\"\n",
            "  maxUsedSpace = \"20GB\"\n",
            "  [[worker.oci.gcpolicy]]\n",
            "    keepDuration = \"48h\"\n",
            "    maxUsedSpace = \"5GB\"\n",
            "[registry.\"x.example\"]\n",
            "  mirrors = [\"mirror.example:5000\"]\n",
            "  http = true\n",
            "  insecure = false\n",
            "  ca = [\"/etc/config/myca.pem\"]\n",
            "  tlsconfigdir = [\"/etc/certs.d\"]\n",
            "[dns]\n",
            "  nameservers = [\"1.1.1.1\"]\n",
        ),
    )
    .unwrap();
    let root = scratch.path().join("state").display().to_string();
    let output = support::bake(
        &dir,
        &args(&["--config", &config.display().to_string(), "--root", &root]),
        &[],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let text = flat(stderr.as_bytes());
    // The warning's message, up to its help line (which names what bake does act on).
    let warning = text
        .split_once("does not act on")
        .and_then(|(_, rest)| rest.split_once("help:"))
        .map(|(message, _)| message)
        .unwrap_or_else(|| panic!("no inert-key warning: {stderr}"));
    assert!(warning.contains("`dns`"), "{warning}");
    assert!(
        warning.contains("`registry.\"x.example\".tlsconfigdir`"),
        "{warning}"
    );
    for acted_on in [
        "mirrors",
        "http`",
        "insecure",
        ".ca`",
        "gc`",
        "gckeepstorage",
        "reservedSpace",
        "maxUsedSpace",
        "gcpolicy",
        "keepDuration",
    ] {
        assert!(!warning.contains(acted_on), "`{acted_on}` named: {warning}");
    }
    assert!(!text.contains("act on yet"), "{stderr}");
}

#[test]
fn help_lists_the_debug_commands() {
    let dir = tempfile::tempdir().unwrap();
    let output = support::bake(dir.path(), &args(&["--help"]), &[], None);
    assert!(output.status.success());
    let help = flat(&output.stdout);
    assert!(help.contains("bake debug graph TARGET"), "{help}");
    assert!(help.contains("bake debug plan"), "{help}");
}

#[test]
fn debug_workers_lists_the_native_platforms_and_the_emulated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let output = support::bake(dir.path(), &args(&["debug", "workers"]), &[], None);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let host = match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64",
        other => other,
    };
    assert!(
        text.lines()
            .any(|l| l.starts_with(host) && l.trim_end().ends_with("native")),
        "{text}"
    );
    if std::env::consts::ARCH == "x86_64"
        && std::path::Path::new("/usr/bin/qemu-aarch64-static").is_file()
    {
        assert!(
            text.lines().any(|l| l.starts_with("linux/arm64 ")
                && (l.contains("qemu-aarch64-static") || l.contains("binfmt_misc"))),
            "{text}"
        );
    }
}
