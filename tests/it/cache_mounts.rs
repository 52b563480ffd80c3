//! Cache mounts that travel with a build cache (`cache-to … cache-mounts=true`), through the
//! `bake` binary: a RUN fills its cache mount with random bytes only when the mount is empty,
//! so a fresh state root that imports the cache (and runs the step again, its build arg
//! changed) reproduces the first root's bytes only if the mount travelled. Also the progress
//! lines of the export and import, and `cache.manifest` in `--metadata-file`; through a
//! local layout, a registry, S3 (moto_server) and the GitHub Actions cache (a local server).

use std::path::{Path, PathBuf};

use crate::cache_export::{base, can_run, project};
use crate::support;
use crate::support::gha::{GhaServer, token};
use crate::support::moto::Moto;
use crate::support::registry::TestRegistry;

/// The RUN writes random bytes into the cache mount when it has none, and copies them out.
const DOCKERFILE: &str = "FROM base AS build\nARG V\n\
RUN --mount=type=cache,id=x,target=/c [ -f /c/r ] || head -c 16 /dev/urandom | od -x > /c/r; \
echo \"$V\" > /v; cp /c/r /r\n\
FROM scratch\nCOPY --from=build /r /r\n";

/// What a build printed and wrote.
struct Run {
    /// Its progress (and warnings).
    stderr: String,
    /// The RUN step's copy of the cache mount's file.
    bytes: Vec<u8>,
    /// The `--metadata-file`.
    metadata: serde_json::Value,
}

/// Builds a new project under `dir` on state root `root` with build arg `V=version`, the
/// `--set` items `sets` and `--progress=progress`; the build must succeed.
fn build(dir: &Path, root: &Path, version: &str, sets: &[String], progress: &str) -> Run {
    build_with_env(dir, root, version, sets, progress, &[])
}

/// [`build`] with the variables `env` (beside `BASE`) in bake's environment.
fn build_with_env(
    dir: &Path,
    root: &Path,
    version: &str,
    sets: &[String],
    progress: &str,
    env: &[(String, String)],
) -> Run {
    let dir: PathBuf = project(dir, DOCKERFILE);
    let mut args: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        format!("--progress={progress}"),
        "--metadata-file".into(),
        "metadata.json".into(),
        "--set".into(),
        format!("default.args.V={version}"),
    ];
    for set in sets {
        args.push("--set".into());
        args.push(set.clone());
    }
    let mut env = env.to_vec();
    env.push(("BASE".to_owned(), base()));
    let output = support::bake(&dir, &args, &env, None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    Run {
        bytes: std::fs::read(dir.join("out/r")).unwrap(),
        metadata: serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).unwrap())
            .unwrap(),
        stderr,
    }
}

/// The log lines of the rawjson progress `stderr`.
fn log_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "log")
        .filter_map(|e| e["line"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_cache_mount_exported_with_the_cache_fills_the_mount_on_a_fresh_root() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    let cache_to = format!(
        "*.cache-to=type=local,dest={},cache-mounts=true",
        cache.display()
    );
    let first = build(
        &scratch.path().join("a"),
        &scratch.path().join("root-a"),
        "1",
        &[cache_to],
        "rawjson",
    );
    let lines = log_lines(&first.stderr);
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    assert!(has("cache mount `x`: layer sha256:"), "{lines:?}");
    assert!(has("writing layer sha256:"), "{lines:?}");
    assert!(has("writing config sha256:"), "{lines:?}");
    assert!(has("writing cache image manifest sha256:"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wrote ") && l.contains("and 1 cache mounts")),
        "{lines:?}"
    );
    // `cache.manifest` names the manifest the layout's `index.json` tags `latest`, as
    // BuildKit's local cache exporter answers it.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    let tagged = &index["manifests"][0];
    let answered: serde_json::Value = serde_json::from_str(
        first.metadata["default"]["cache.manifest"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answered["digest"], tagged["digest"]);
    assert_eq!(answered["mediaType"], tagged["mediaType"]);
    assert_eq!(answered["size"], tagged["size"]);

    // Another root, another build arg: the RUN runs again, on the imported mount.
    let second = build(
        &scratch.path().join("b"),
        &scratch.path().join("root-b"),
        "2",
        &[format!("*.cache-from=type=local,src={}", cache.display())],
        "plain",
    );
    assert_eq!(first.bytes, second.bytes, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("and 1 cache mounts imported from `latest`"),
        "{}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .contains("cache mount `x` restored from the imported build cache"),
        "{}",
        second.stderr
    );
    // A mount with content is never replaced: root B's own bytes stay, whatever the cache.
    std::fs::remove_dir_all(&cache).unwrap();
    let changed = build(
        &scratch.path().join("c"),
        &scratch.path().join("root-c"),
        "3",
        &[format!(
            "*.cache-to=type=local,dest={},cache-mounts=x",
            cache.display()
        )],
        "rawjson",
    );
    assert_ne!(changed.bytes, first.bytes);
    let kept = build(
        &scratch.path().join("d"),
        &scratch.path().join("root-b"),
        "4",
        &[format!("*.cache-from=type=local,src={}", cache.display())],
        "rawjson",
    );
    assert_eq!(kept.bytes, first.bytes);
}

#[test]
fn without_the_option_the_mount_does_not_travel() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    let first = build(
        &scratch.path().join("a"),
        &scratch.path().join("root-a"),
        "1",
        &[format!("*.cache-to=type=local,dest={}", cache.display())],
        "rawjson",
    );
    assert!(
        log_lines(&first.stderr)
            .iter()
            .all(|l| !l.starts_with("cache mount")),
        "{}",
        first.stderr
    );
    let second = build(
        &scratch.path().join("b"),
        &scratch.path().join("root-b"),
        "2",
        &[format!("*.cache-from=type=local,src={}", cache.display())],
        "rawjson",
    );
    assert_ne!(first.bytes, second.bytes);
    assert!(!second.stderr.contains("restored"), "{}", second.stderr);
}

#[test]
fn a_cache_mount_travels_through_a_registry() {
    if !can_run() {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        support::skip("skipping registry cache mount test: `docker-registry` is not installed");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let reference = format!("{}/cache:mounts", registry.host);
    let first = build(
        &scratch.path().join("a"),
        &scratch.path().join("root-a"),
        "1",
        &[format!(
            "*.cache-to=type=registry,ref={reference},cache-mounts=true"
        )],
        "rawjson",
    );
    assert!(first.metadata["default"]["cache.manifest"].is_string());
    let second = build(
        &scratch.path().join("b"),
        &scratch.path().join("root-b"),
        "2",
        &[format!("*.cache-from=type=registry,ref={reference}")],
        "rawjson",
    );
    assert_eq!(first.bytes, second.bytes, "{}", second.stderr);
}

#[test]
fn a_cache_mount_travels_through_s3_in_the_bare_config() {
    if !can_run() {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let env = [
        ("AWS_ACCESS_KEY_ID".to_owned(), moto.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            moto.secret_access_key.clone(),
        ),
    ];
    let entry = format!(
        "type=s3,bucket={},endpoint_url={},use_path_style=true,region=us-east-1,name=mounts",
        moto.bucket, moto.endpoint
    );
    let scratch = tempfile::tempdir().unwrap();
    let first = build_with_env(
        &scratch.path().join("a"),
        &scratch.path().join("root-a"),
        "1",
        &[format!("*.cache-to={entry},cache-mounts=x")],
        "rawjson",
        &env,
    );
    assert!(
        log_lines(&first.stderr)
            .iter()
            .any(|l| l.starts_with("writing cache config sha256:")),
        "{}",
        first.stderr
    );
    // BuildKit's S3 exporter answers no manifest descriptor.
    assert!(first.metadata["default"].get("cache.manifest").is_none());
    let second = build_with_env(
        &scratch.path().join("b"),
        &scratch.path().join("root-b"),
        "2",
        &[format!("*.cache-from={entry}")],
        "rawjson",
        &env,
    );
    assert_eq!(first.bytes, second.bytes, "{}", second.stderr);
}

#[test]
fn a_cache_mount_travels_through_the_github_actions_cache() {
    if !can_run() {
        return;
    }
    let main = token(&[("refs/heads/main", 3)]);
    let server = GhaServer::start(&[&main]);
    let env = [
        ("ACTIONS_RUNTIME_TOKEN".to_owned(), main.clone()),
        ("ACTIONS_RESULTS_URL".to_owned(), server.url.clone()),
        ("ACTIONS_CACHE_SERVICE_V2".to_owned(), "true".to_owned()),
    ];
    let scratch = tempfile::tempdir().unwrap();
    let first = build_with_env(
        &scratch.path().join("a"),
        &scratch.path().join("root-a"),
        "1",
        &["*.cache-to=type=gha,scope=mounts,cache-mounts=true".to_owned()],
        "rawjson",
        &env,
    );
    let second = build_with_env(
        &scratch.path().join("b"),
        &scratch.path().join("root-b"),
        "2",
        &["*.cache-from=type=gha,scope=mounts".to_owned()],
        "rawjson",
        &env,
    );
    assert_eq!(first.bytes, second.bytes, "{}", second.stderr);
}

#[test]
fn targets_sharing_a_destination_archive_a_shared_mount_once() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(&scratch.path().join("a"), DOCKERFILE);
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\n\
         group \"default\" { targets = [\"one\", \"two\"] }\n\
         target \"one\" {\n  contexts = { base = BASE }\n  args = { V = \"1\" }\n  output = [\"type=local,dest=out1\"]\n}\n\
         target \"two\" {\n  contexts = { base = BASE }\n  args = { V = \"2\" }\n  output = [\"type=local,dest=out2\"]\n}\n",
    )
    .unwrap();
    let cache = scratch.path().join("cache");
    let args: Vec<String> = vec![
        "--root".into(),
        scratch.path().join("root").display().to_string(),
        "--progress=rawjson".into(),
        "--metadata-file".into(),
        "metadata.json".into(),
        "--set".into(),
        format!(
            "*.cache-to=type=local,dest={},cache-mounts=true",
            cache.display()
        ),
    ];
    let output = support::bake(&dir, &args, &[("BASE".to_owned(), base())], None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let archived = log_lines(&stderr)
        .iter()
        .filter(|l| l.starts_with("cache mount `x`: layer"))
        .count();
    assert_eq!(archived, 1, "{stderr}");
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(
        metadata["one"]["cache.manifest"],
        metadata["two"]["cache.manifest"]
    );
    assert!(metadata["one"]["cache.manifest"].is_string());
}

#[test]
fn cache_mounts_on_an_inline_cache_fail_before_the_build() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(&scratch.path().join("a"), DOCKERFILE);
    let args: Vec<String> = vec![
        "--root".into(),
        scratch.path().join("root").display().to_string(),
        "--set".into(),
        "*.cache-to=type=inline,cache-mounts=true".into(),
    ];
    let output = support::bake(&dir, &args, &[("BASE".to_owned(), base())], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cache-mounts"), "{stderr}");
    assert!(!dir.join("out").exists());
}

/// A RUN whose cache mount starts from a stage's directory (`from=`, `source=`) and appends
/// the build arg to a log in it.
const SEEDED: &str = "FROM base AS seed\nRUN mkdir -p /s && echo seeded > /s/file\n\
FROM base\nARG V\n\
RUN --mount=type=cache,id=y,target=/c,from=seed,source=/s \
cp /c/file /r && echo \"$V\" >> /c/log && cp /c/log /log\n";

fn build_seeded(dir: &Path, root: &Path, version: &str) -> std::process::Output {
    let dir = project(dir, SEEDED);
    support::bake(
        &dir,
        &[
            "--root".into(),
            root.display().to_string(),
            "--set".into(),
            format!("default.args.V={version}"),
        ],
        &[("BASE".to_owned(), base())],
        None,
    )
}

#[test]
fn a_cache_mount_from_a_stage_starts_as_a_copy_of_it_and_then_persists() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    let root = scratch.path().join("root");
    for version in ["1", "2"] {
        let output = build_seeded(&dir, &root, version);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("out/r")).unwrap(),
        "seeded\n"
    );
    // The second run found the first run's writes: the mount persisted from its seed.
    assert_eq!(
        std::fs::read_to_string(dir.join("out/log")).unwrap(),
        "1\n2\n"
    );
}

#[test]
fn a_cache_mount_from_a_missing_directory_fails_naming_it() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    project(&dir, &SEEDED.replace("source=/s", "source=/nowhere"));
    let output = support::bake(
        &dir,
        &[
            "--root".into(),
            scratch.path().join("root").display().to_string(),
        ],
        &[("BASE".to_owned(), base())],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the base of the cache mount") && stderr.contains("nowhere"),
        "{stderr}"
    );
}
