//! A `remote` builder with two nodes: two unix sockets that both forward to the engine's
//! `/grpc`, one listing `linux/amd64` and the other `linux/arm64`. Each forwarder keeps
//! what bake sent through it, so a test sees which node was asked for which platform.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::remote_build::{BASE, bake, engine, seed_base, serve_forwarder, stderr};

/// A node's socket and everything bake wrote to it.
struct Node {
    socket: String,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Node {
    /// Whether bake sent `needle` through this node (a Solve request's `platform`
    /// attribute, the front end's name).
    fn saw(&self, needle: &str) -> bool {
        let sent = self.sent.lock().unwrap();
        sent.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

/// Serves `dir/NAME.sock`, forwarding every connection to the engine's `/grpc` and
/// keeping the bytes the client sends.
fn node(dir: &Path, name: &str) -> Node {
    let socket = dir.join(format!("{name}.sock"));
    let sent = Arc::new(Mutex::new(Vec::new()));
    serve_forwarder(&socket, Some(sent.clone()));
    Node {
        socket: format!("unix://{}", socket.display()),
        sent,
    }
}

/// Two recording nodes and the buildx store naming them as the builder `farm`; both live
/// as long as the value.
struct Farm {
    amd: Node,
    arm: Node,
    config_dir: String,
    _sockets: tempfile::TempDir,
    _config: tempfile::TempDir,
}

impl Farm {
    fn new() -> Self {
        let sockets = tempfile::tempdir().unwrap();
        let (amd, arm) = (node(sockets.path(), "amd"), node(sockets.path(), "arm"));
        let config = farm(&amd, &arm);
        Self {
            config_dir: config.path().display().to_string(),
            amd,
            arm,
            _sockets: sockets,
            _config: config,
        }
    }
}

/// A buildx store whose instance `farm` is a `remote` builder with the nodes `amd` and
/// `arm`, listing one platform each.
fn farm(amd: &Node, arm: &Node) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("instances")).unwrap();
    let node = |name: &str, endpoint: &str, architecture: &str| {
        serde_json::json!({
            "Name": name,
            "Endpoint": endpoint,
            "Platforms": [{"architecture": architecture, "os": "linux"}],
            "Flags": null,
            "DriverOpts": null,
            "Files": null,
        })
    };
    let instance = serde_json::json!({
        "Name": "farm",
        "Driver": "remote",
        "Nodes": [node("amd", &amd.socket, "amd64"), node("arm", &arm.socket, "arm64")],
        "Dynamic": false,
    });
    std::fs::write(dir.path().join("instances/farm"), instance.to_string()).unwrap();
    dir
}

/// A project whose image holds `/arch`, copied from `amd64.txt` or `arm64.txt` by
/// `TARGETARCH`: no RUN, so no platform needs emulating.
fn arch_project(outputs: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("amd64.txt"), "built for amd64\n").unwrap();
    std::fs::write(dir.path().join("arm64.txt"), "built for arm64\n").unwrap();
    std::fs::write(dir.path().join(".dockerignore"), "out\n").unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n  \
             tags = [\"127.0.0.1:5999/farm/app:1\"]\n  output = [{outputs}]\n}}\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn each_platform_builds_on_the_node_that_lists_it_and_local_exports_merge() {
    if !engine() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let farm = Farm::new();
    let dir = arch_project(r#""type=local,dest=out""#);
    let metadata = dir.path().join("metadata.json");
    let output = bake(
        dir.path(),
        &[
            "--builder",
            "farm",
            "--progress=plain",
            "--metadata-file",
            &metadata.display().to_string(),
        ],
        &[("BUILDX_CONFIG", &farm.config_dir)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let out = dir.path().join("out");
    assert_eq!(
        std::fs::read_to_string(out.join("linux_amd64/arch")).unwrap(),
        "built for amd64\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("linux_arm64/arch")).unwrap(),
        "built for arm64\n"
    );
    let mut entries: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, vec!["linux_amd64", "linux_arm64"]);
    assert!(
        farm.amd.saw("linux/amd64") && !farm.amd.saw("linux/arm64"),
        "node amd"
    );
    assert!(
        farm.arm.saw("linux/arm64") && !farm.arm.saw("linux/amd64"),
        "node arm"
    );
    assert!(metadata.is_file(), "the metadata file is written");
    // Both nodes' steps are in the one progress view.
    let progress = stderr(&output);
    assert!(
        progress.contains("[linux/amd64 1/1] COPY amd64.txt /arch")
            && progress.contains("[linux/arm64 1/1] COPY arm64.txt /arch"),
        "{progress}"
    );

    // `bake debug builders` shows each node with the platforms the store lists for it.
    let listed = bake(
        dir.path(),
        &["debug", "builders", "--builder", "farm"],
        &[("BUILDX_CONFIG", &farm.config_dir)],
    );
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("\\_ {name} ")))
            .unwrap_or_else(|| panic!("no node `{name}`: {table}"))
            .to_owned()
    };
    assert!(line("amd").contains("linux/amd64*"), "{table}");
    assert!(line("arm").contains("linux/arm64*"), "{table}");
    assert!(!line("amd").contains("linux/arm64*"), "{table}");
}

/// `text` without whitespace or the diagnostic's wrapping frame, so a message is found
/// wherever the renderer broke its lines.
fn flat(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

#[test]
fn outputs_that_cannot_merge_are_refused_before_any_node_builds() {
    if !engine() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let farm = Farm::new();
    for (output, named) in [
        (r#""type=oci,dest=app.tar""#, "a `type=oci` output"),
        (r#""type=tar,dest=fs.tar""#, "a `type=tar` output"),
    ] {
        let dir = arch_project(output);
        let result = bake(
            dir.path(),
            &["--builder", "farm"],
            &[("BUILDX_CONFIG", &farm.config_dir)],
        );
        let text = stderr(&result);
        assert_eq!(result.status.code(), Some(1), "{text}");
        assert!(flat(&text).contains(&flat(named)), "{text}");
        assert!(
            flat(&text).contains(&flat(
                "split over nodes `amd` (linux/amd64) and `arm` (linux/arm64)"
            )),
            "{text}"
        );
    }
    // Each node pushes by digest to the repository; the merged index needs a tag.
    let dir = arch_project(r#""type=registry""#);
    let hcl = std::fs::read_to_string(dir.path().join("docker-bake.hcl")).unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        hcl.replace("  tags = [\"127.0.0.1:5999/farm/app:1\"]\n", ""),
    )
    .unwrap();
    let result = bake(
        dir.path(),
        &["--builder", "farm"],
        &[("BUILDX_CONFIG", &farm.config_dir)],
    );
    let text = stderr(&result);
    assert_eq!(result.status.code(), Some(1), "{text}");
    assert!(
        flat(&text).contains(&flat("tag is needed when pushing to registry")),
        "{text}"
    );

    // A Docker archive holds one platform, whichever node builds it.
    let dir = arch_project(r#""type=docker,dest=app.tar""#);
    let result = bake(
        dir.path(),
        &["--builder", "farm"],
        &[("BUILDX_CONFIG", &farm.config_dir)],
    );
    let text = stderr(&result);
    assert_eq!(result.status.code(), Some(1), "{text}");
    assert!(
        flat(&text).contains(&flat(
            "docker exporter does not currently support exporting manifest lists"
        )),
        "{text}"
    );
    assert!(
        !farm.amd.saw("dockerfile.v0") && !farm.arm.saw("dockerfile.v0"),
        "no Solve reached a node"
    );
}

#[test]
fn a_failing_node_stops_the_other_and_exits_1_with_its_output() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let farm = Farm::new();
    let dir = arch_project(r#""type=local,dest=out""#);
    // The steps run on the build platform (no emulation); on the arm64 node the RUN fails
    // at once while the amd64 node would still be sleeping.
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM --platform=$BUILDPLATFORM {BASE}\nARG TARGETARCH\n\
             RUN echo building-for-$TARGETARCH && if [ \"$TARGETARCH\" = amd64 ]; then sleep 300; else exit 7; fi\n"
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let output = bake(
        dir.path(),
        &["--builder", "farm", "--progress=plain"],
        &[("BUILDX_CONFIG", &farm.config_dir)],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("building-for-arm64"), "{text}");
    assert!(text.contains("on node `arm`"), "{text}");
    assert!(text.contains("exit code: 7"), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(200),
        "the amd64 node's sleep was not waited for"
    );
    assert!(
        !dir.path().join("out").exists(),
        "no output from a failed build"
    );
}

#[test]
fn a_split_push_asks_the_nodes_to_push_by_digest_to_the_repository() {
    if !engine() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let farm = Farm::new();
    let dir = arch_project(r#""type=image,push=true""#);
    let output = bake(
        dir.path(),
        &["--builder", "farm"],
        &[("BUILDX_CONFIG", &farm.config_dir)],
    );
    // The engine's BuildKit has no `image` exporter (its images go to the engine), so the
    // nodes refuse the push itself; what bake asked of each node is what a buildkitd gets.
    // The merge of what buildkitd nodes push is tested in `remote::merge` against a registry.
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        flat(&text).contains(&flat(r#"exporter "image" could not be found"#)),
        "{text}"
    );
    assert!(
        text.contains("on node `"),
        "the failing node is named: {text}"
    );
    // The first refusal cancels the other node, which may not have sent its Solve yet.
    let asked: Vec<&Node> = [&farm.amd, &farm.arm]
        .into_iter()
        .filter(|node| node.saw("dockerfile.v0"))
        .collect();
    assert!(!asked.is_empty(), "a node was asked to build");
    for node in asked {
        assert!(node.saw("push-by-digest"), "each node pushes by digest");
        assert!(node.saw("multi-platform"), "each node makes an index");
        assert!(node.saw("127.0.0.1:5999/farm/app"), "to the repository");
        assert!(
            !node.saw("127.0.0.1:5999/farm/app:1"),
            "the tag is the merge's"
        );
    }
}

#[test]
fn a_docker_builder_with_two_nodes_refuses_a_split_push_and_split_links() {
    if !engine() {
        return;
    }
    let _serial = crate::remote_build::serial();
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("instances")).unwrap();
    let node = |name: &str, architecture: &str| {
        serde_json::json!({
            "Name": name,
            "Endpoint": "unix:///var/run/docker.sock",
            "Platforms": [{"architecture": architecture, "os": "linux"}],
        })
    };
    let instance = serde_json::json!({
        "Name": "engines",
        "Driver": "docker",
        "Nodes": [node("e0", "amd64"), node("e1", "arm64")],
    });
    std::fs::write(
        config.path().join("instances/engines"),
        instance.to_string(),
    )
    .unwrap();
    let config_dir = config.path().display().to_string();

    let dir = arch_project(r#""type=registry""#);
    let result = bake(
        dir.path(),
        &["--builder", "engines"],
        &[("BUILDX_CONFIG", &config_dir)],
    );
    let text = stderr(&result);
    assert_eq!(result.status.code(), Some(1), "{text}");
    assert!(
        flat(&text).contains(&flat(
            "multi-node push can't be performed with the docker driver"
        )),
        "{text}"
    );

    // `base` is split over both engines; `app` takes it as a `target:` context.
    let hcl = "target \"base\" {\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n}\n\
               target \"app\" {\n  contexts = { base = \"target:base\" }\n  \
               output = [\"type=local,dest=out\"]\n}\n\
               group \"default\" {\n  targets = [\"app\"]\n}\n";
    std::fs::write(dir.path().join("docker-bake.hcl"), hcl).unwrap();
    let result = bake(
        dir.path(),
        &["--builder", "engines"],
        &[("BUILDX_CONFIG", &config_dir)],
    );
    let text = stderr(&result);
    assert_eq!(result.status.code(), Some(1), "{text}");
    assert!(
        flat(&text).contains(&flat("being another target's `target:` context")),
        "{text}"
    );
    assert!(!dir.path().join("out").exists());
}
