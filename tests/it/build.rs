//! `bake` building for real: an OCI-layout base, COPY from the context, a RUN step under
//! runc, COPY --from and a local export; then a warm rebuild where every step is cached
//! (asserted from `--progress=rawjson`), and an edit that rebuilds the steps reading it.

use std::path::Path;

use crate::support;
use crate::support::busybox_base as base;
use crate::support::can_build as can_run;

/// The rawjson progress events of a build, without the export steps (which run every time,
/// so they would hide whether any build step ran).
fn events(stderr: &str) -> Vec<serde_json::Value> {
    let all: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let exports: std::collections::HashSet<String> = all
        .iter()
        .filter(|e| e["event"] == "started")
        .filter(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.contains("exporting to "))
        })
        .filter_map(|e| e["vertex"].as_str().map(str::to_owned))
        .collect();
    all.into_iter()
        .filter(|e| e["vertex"].as_str().is_none_or(|v| !exports.contains(v)))
        .collect()
}

/// Writes `scratch/project` with `dockerfile` and a bake file whose `default` target takes
/// the base as the named context `base`, adds `attributes` (HCL lines) and exports to `out`.
fn base_project(scratch: &Path, dockerfile: &str, attributes: &str) -> std::path::PathBuf {
    let dir = scratch.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "variable \"BASE\" {{}}\ntarget \"default\" {{\n  contexts = {{ base = BASE }}\n  {attributes}\n  output = [\"type=local,dest=out\"]\n}}\n"
        ),
    )
    .unwrap();
    dir
}

fn run(dir: &Path, root: &Path) -> (std::process::Output, Vec<serde_json::Value>) {
    run_with_base(dir, root, &base())
}

fn run_with_base(
    dir: &Path,
    root: &Path,
    base: &str,
) -> (std::process::Output, Vec<serde_json::Value>) {
    let args: Vec<String> = ["--root", root.to_str().unwrap(), "--progress=rawjson"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let output = support::bake(dir, &args, &[("BASE".to_owned(), base.to_owned())], None);
    let events = events(&String::from_utf8_lossy(&output.stderr));
    (output, events)
}

#[test]
fn builds_caches_and_rebuilds_only_what_changed() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    support::copy_tree(&support::root().join("fixtures/build-e2e/local"), &dir, &[]);
    let root = scratch.path().join("state");

    let (output, cold) = run(&dir, &root);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/local/bar")).unwrap(),
        "foo\n"
    );
    let done = cold.iter().filter(|e| e["event"] == "done").count();
    assert!(done >= 3, "COPY, RUN and COPY --from ran: {cold:?}");

    let (output, warm) = run(&dir, &root);
    assert!(output.status.success());
    let names: Vec<&str> = warm
        .iter()
        .filter(|e| e["event"] == "started")
        .filter_map(|e| e["name"].as_str())
        .collect();
    for step in [
        "COPY foo /etc/foo",
        "RUN cp /etc/foo /etc/bar",
        "COPY --from=build /etc/bar /bar",
    ] {
        let vertex = warm
            .iter()
            .find(|e| {
                e["event"] == "started" && e["name"].as_str().is_some_and(|n| n.ends_with(step))
            })
            .unwrap_or_else(|| panic!("{step} not in {names:?}"))["vertex"]
            .clone();
        assert!(
            warm.iter()
                .any(|e| e["event"] == "cached" && e["vertex"] == vertex),
            "{step} should be cached on the second run: {warm:?}"
        );
    }

    std::fs::write(dir.join("foo"), "changed\n").unwrap();
    let (output, edited) = run(&dir, &root);
    assert!(output.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.join("out/local/bar")).unwrap(),
        "changed\n"
    );
    assert!(
        edited.iter().any(|e| e["event"] == "done"),
        "the edit rebuilt something"
    );
}

#[test]
fn a_failing_run_step_exits_1_with_its_output() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN echo about to fail && exit 3\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n}\n",
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        scratch.path().join("state").display().to_string(),
    ];
    let output = support::bake(&dir, &args, &[("BASE".to_owned(), base())], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exit code 3") && stderr.contains("about to fail"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

fn image_project(dir: &Path) {
    support::copy_tree(&support::root().join("fixtures/build-e2e/local"), dir, &[]);
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=oci,dest=out/img.tar,rewrite-timestamp=true\"]\n}\n",
    )
    .unwrap();
}

fn digest(dir: &Path, root: &Path, epoch: &str) -> String {
    let metadata = dir.join("metadata.json");
    let args: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--metadata-file".into(),
        metadata.display().to_string(),
    ];
    let env = [
        ("BASE".to_owned(), base()),
        ("SOURCE_DATE_EPOCH".to_owned(), epoch.to_owned()),
    ];
    let output = support::bake(dir, &args, &env, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(metadata).unwrap()).unwrap();
    metadata["default"]["containerimage.digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn same_inputs_and_source_date_epoch_give_the_same_image_digest_in_fresh_roots() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
    image_project(&a);
    image_project(&b);
    let first = digest(&a, &scratch.path().join("root-a"), "1700000000");
    // A second apart, so unclamped timestamps would differ.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = digest(&b, &scratch.path().join("root-b"), "1700000000");
    assert!(first.starts_with("sha256:"));
    assert_eq!(first, second);
}

#[test]
fn two_processes_build_on_one_root_at_once() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("state");
    let dirs: Vec<_> = ["one", "two"]
        .iter()
        .map(|n| scratch.path().join(n))
        .collect();
    for dir in &dirs {
        support::copy_tree(&support::root().join("fixtures/build-e2e/local"), dir, &[]);
    }
    let handles: Vec<_> = dirs
        .iter()
        .map(|dir| {
            let (dir, root) = (dir.clone(), root.clone());
            std::thread::spawn(move || run(&dir, &root).0)
        })
        .collect();
    for (handle, dir) in handles.into_iter().zip(&dirs) {
        let output = handle.join().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("out/local/bar")).unwrap(),
            "foo\n"
        );
    }
}

#[test]
fn target_links_feed_one_target_into_another() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("shared.Dockerfile"),
        "FROM base\nENV FROM_SHARED=yes\nRUN echo shared > /shared\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("app.Dockerfile"),
        "FROM shared\nRUN cat /shared > /app && echo $FROM_SHARED >> /app\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"shared\" {\n  dockerfile = \"shared.Dockerfile\"\n  contexts = { base = BASE }\n}\ntarget \"app\" {\n  dockerfile = \"app.Dockerfile\"\n  contexts = { shared = \"target:shared\" }\n  output = [\"type=local,dest=out\"]\n}\n",
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        scratch.path().join("state").display().to_string(),
        "app".into(),
    ];
    let output = support::bake(&dir, &args, &[("BASE".to_owned(), base())], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/app")).unwrap(),
        "shared\nyes\n",
        "the linked result and its ENV"
    );
}

/// All targets are one solve: two targets with the same Dockerfile but different context
/// directories keep their own files, while the step they have in common runs once.
#[test]
fn one_solve_tells_contexts_apart_and_runs_shared_steps_once() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    for (name, text) in [("a", "from a\n"), ("b", "from b\n")] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("file"), text).unwrap();
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN echo shared > /shared\nCOPY file /file\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ngroup \"default\" { targets = [\"a\", \"b\"] }\ntarget \"a\" {\n  context = \"a\"\n  dockerfile = \"../Dockerfile\"\n  contexts = { base = BASE }\n  output = [\"type=local,dest=out/a\"]\n}\ntarget \"b\" {\n  inherits = [\"a\"]\n  context = \"b\"\n  output = [\"type=local,dest=out/b\"]\n}\n",
    )
    .unwrap();
    let (output, events) = run(&dir, &scratch.path().join("state"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for name in ["a", "b"] {
        assert_eq!(
            std::fs::read_to_string(dir.join("out").join(name).join("file")).unwrap(),
            format!("from {name}\n")
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("out").join(name).join("shared")).unwrap(),
            "shared\n"
        );
    }
    let runs = events
        .iter()
        .filter(|e| e["event"] == "started")
        .filter(|e| {
            e["name"]
                .as_str()
                .is_some_and(|n| n.contains("RUN echo shared"))
        })
        .count();
    assert_eq!(runs, 1, "the shared RUN step is one vertex: {events:?}");
}

/// `examples/bake/monorepo`: eight targets, one shared base stage through a `target:` link,
/// every exporter type.
#[test]
fn monorepo_example_builds_shares_its_base_and_rebuilds_only_what_changed() {
    // Run the way the README says: no variables, the OS image made by bake from
    // busybox-static (`.ci/run` installs it).
    if !can_run() || !Path::new("/bin/busybox").is_file() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("monorepo");
    support::copy_tree(&support::root().join("examples/bake/monorepo"), &dir, &[]);
    let root = scratch.path().join("state");
    let go = || {
        let args: Vec<String> = vec![
            "--root".into(),
            root.display().to_string(),
            "--progress=rawjson".into(),
            // The OS base copies the host's busybox from `/bin`.
            "--allow=fs.read=/bin".into(),
        ];
        let output = support::bake(&dir, &args, &[], None);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        events(&stderr)
    };
    let ran = |events: &[serde_json::Value]| -> Vec<String> {
        let names: std::collections::HashMap<String, String> = events
            .iter()
            .filter(|e| e["event"] == "started")
            .map(|e| {
                (
                    e["vertex"].as_str().unwrap().to_owned(),
                    e["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        events
            .iter()
            .filter(|e| e["event"] == "done")
            .filter_map(|e| names.get(e["vertex"].as_str().unwrap()).cloned())
            .filter(|name| name.contains(" RUN "))
            .collect()
    };

    let cold_events = go();
    // With several targets building, every step name says which target it is for.
    assert!(
        cold_events.iter().any(|e| e["event"] == "started"
            && e["name"].as_str().is_some_and(|n| n.starts_with("[os ")
                && n.ends_with("RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]"))),
        "{cold_events:?}"
    );
    let cold = ran(&cold_events);
    let shared: Vec<&String> = cold
        .iter()
        .filter(|n| n.contains("/opt/acme/release"))
        .collect();
    assert_eq!(
        shared.len(),
        1,
        "the shared base stage runs exactly once: {cold:?}"
    );
    for output in [
        "out/api-slim.tar",
        "out/api-full.tar",
        "out/worker.tar",
        "out/migrations.tar",
        "out/web/usr/share/web/web.built",
        "out/docs/usr/share/docs/docs.built",
        "out/cli/index.json",
    ] {
        assert!(dir.join(output).exists(), "{output} was exported");
    }

    let warm = ran(&go());
    assert!(warm.is_empty(), "a second run runs no RUN step: {warm:?}");

    std::fs::write(dir.join("services/web/main.txt"), "web changed\n").unwrap();
    let edited = ran(&go());
    assert!(
        !edited.is_empty() && edited.iter().all(|n| n.contains("building web")),
        "only web rebuilt: {edited:?}"
    );
}

/// Ctrl-C (SIGINT) in the middle of a long `RUN`: bake kills the step's container (PID 1 in
/// its namespace ignores SIGINT), exits 1 soon after, leaves no container behind, and the
/// root still builds afterwards.
#[test]
fn ctrl_c_stops_a_running_step_and_leaves_the_root_usable() {
    use std::io::BufRead as _;
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN echo started && sleep 120\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n}\n",
    )
    .unwrap();
    let root = scratch.path().join("state");
    let home = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bake"))
        .args(["--root", root.to_str().unwrap(), "--progress=plain"])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("BASE", base())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
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
    let sent = std::time::Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(20),
        "bake took {:?} to stop",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{seen}{rest}");
    assert!(rest.contains("cancel"), "{rest}");
    let containers = std::process::Command::new("runc")
        .args([
            "--root",
            root.join("runtime").to_str().unwrap(),
            "list",
            "-q",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&containers.stdout).trim(), "");

    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN echo again > /again\n",
    )
    .unwrap();
    let (output, _) = run(&dir, &root);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Only the paths the build reads are part of the context: editing a file no instruction
/// reads leaves every vertex cached (the context source included), editing a read one does
/// not.
#[test]
fn files_the_build_does_not_read_are_not_part_of_the_context() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/used"), "1\n").unwrap();
    std::fs::write(dir.join("unused"), "1\n").unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM base\nCOPY src /src\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=local,dest=out\"]\n}\n",
    )
    .unwrap();
    let root = scratch.path().join("state");
    let executed = |events: &[serde_json::Value]| {
        events
            .iter()
            .filter(|e| e["event"] == "done")
            .filter_map(|e| e["vertex"].as_str().map(str::to_owned))
            .count()
    };
    let (output, _) = run(&dir, &root);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!dir.join("out/unused").exists());

    std::fs::write(dir.join("unused"), "2\n").unwrap();
    let (output, events) = run(&dir, &root);
    assert!(output.status.success());
    assert_eq!(executed(&events), 0, "nothing reads `unused`: {events:?}");

    std::fs::write(dir.join("src/used"), "2\n").unwrap();
    let (output, events) = run(&dir, &root);
    assert!(output.status.success());
    assert!(
        executed(&events) >= 1,
        "the COPY reads `src/used`: {events:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/src/used")).unwrap(),
        "2\n"
    );
}

/// Garbage collection after a build, under buildkitd.toml's budget: with a budget of one
/// byte every cached result goes (children before the snapshots they stand on), the store
/// stays consistent, and the next build runs every step again and succeeds.
#[test]
fn gc_budget_removes_cached_results_and_the_next_build_redoes_them() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    support::copy_tree(&support::root().join("fixtures/build-e2e/local"), &dir, &[]);
    let config = scratch.path().join("buildkitd.toml");
    std::fs::write(&config, "[worker.oci]\n  gckeepstorage = 1\n").unwrap();
    let root = scratch.path().join("state");
    let go = || {
        let args: Vec<String> = vec![
            "--root".into(),
            root.display().to_string(),
            "--config".into(),
            config.display().to_string(),
            "--progress=rawjson".into(),
        ];
        let output = support::bake(&dir, &args, &[("BASE".to_owned(), base())], None);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        events(&stderr)
    };
    let snapshots = || {
        std::fs::read_dir(root.join("snapshots"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().len() == 32 && e.path().is_dir())
            .count()
    };
    go();
    assert_eq!(snapshots(), 0, "a one-byte budget keeps nothing");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/local/bar")).unwrap(),
        "foo\n",
        "exports happen before collection"
    );
    let again = go();
    let cached = again.iter().filter(|e| e["event"] == "cached").count();
    assert_eq!(cached, 0, "nothing was left to hit: {again:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/local/bar")).unwrap(),
        "foo\n"
    );
}

/// Secrets (from a file, and from the environment variable named like the id) and an SSH
/// agent socket reach `RUN` mounts; a required secret that is missing fails clearly.
#[test]
fn secrets_and_ssh_agent_sockets_reach_run_mounts() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token.txt"), "from-file").unwrap();
    let agent = scratch.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&agent).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\n\
         RUN --mount=type=secret,id=token cat /run/secrets/token > /token\n\
         RUN --mount=type=secret,id=FROMENV cat /run/secrets/FROMENV > /fromenv\n\
         RUN --mount=type=ssh,target=/agent test -S /agent && echo ok > /ssh\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "variable \"BASE\" {{}}\ntarget \"default\" {{\n  contexts = {{ base = BASE }}\n  secret = [\"id=token,src=token.txt\", \"id=FROMENV\"]\n  ssh = [\"default={}\"]\n  output = [\"type=local,dest=out\"]\n}}\n",
            agent.display()
        ),
    )
    .unwrap();
    let root = scratch.path().join("state");
    let args: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        format!("--allow=fs.read={}", agent.display()),
    ];
    let env = [
        ("BASE".to_owned(), base()),
        ("FROMENV".to_owned(), "from-env".to_owned()),
    ];
    let output = support::bake(&dir, &args, &env, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(dir.join("out").join(name)).unwrap();
    assert_eq!(read("token"), "from-file");
    assert_eq!(read("fromenv"), "from-env");
    assert_eq!(read("ssh"), "ok\n");
    assert!(
        !dir.join("out/run/secrets/token").exists(),
        "secrets never land in a layer"
    );

    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN --mount=type=secret,id=missing,required=true true\n",
    )
    .unwrap();
    let output = support::bake(&dir, &args, &env, None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("secret `missing` is required"), "{stderr}");
}

/// `no-cache-filter` names stages whose steps run again even when cached; the other stages'
/// steps stay cached.
#[test]
fn no_cache_filter_reruns_only_the_named_stage() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("project");
    support::copy_tree(&support::root().join("fixtures/build-e2e/local"), &dir, &[]);
    let root = scratch.path().join("state");
    let (output, _) = run(&dir, &root);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bake_file = std::fs::read_to_string(dir.join("docker-bake.hcl")).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        bake_file.replacen(
            "target \"default\" {",
            "target \"default\" {\n  no-cache-filter = [\"build\"]",
            1,
        ),
    )
    .unwrap();
    let (output, events) = run(&dir, &root);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cached = |step: &str| {
        let vertex = events
            .iter()
            .find(|e| {
                e["event"] == "started" && e["name"].as_str().is_some_and(|n| n.contains(step))
            })
            .and_then(|e| e["vertex"].as_str())
            .unwrap_or_else(|| panic!("no step {step}: {events:?}"))
            .to_owned();
        events
            .iter()
            .any(|e| e["event"] == "cached" && e["vertex"].as_str() == Some(vertex.as_str()))
    };
    assert!(
        !cached("RUN cp /etc/foo /etc/bar"),
        "the build stage runs again"
    );
    assert!(
        !cached("COPY foo /etc/foo"),
        "every step of the build stage"
    );
    assert!(
        cached("COPY --from=build /etc/bar /bar"),
        "the other stage reads the same content, so it stays cached"
    );
}

/// The base image need not come from a registry: the test support builds busybox from
/// Debian's `busybox-static` with bake itself into an OCI layout, and a second build uses
/// that layout as its base through a named context.
#[test]
fn a_busybox_base_built_by_bake_serves_as_the_base_of_another_build() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(layout) = support::build_busybox_layout(scratch.path()) else {
        return;
    };
    let dir = scratch.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nRUN ls /bin/sh && echo built-on-our-busybox > /hello\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=local,dest=out\"]\n}\n",
    )
    .unwrap();
    let (output, _) = run_with_base(&dir, &scratch.path().join("state"), &layout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/hello")).unwrap(),
        "built-on-our-busybox\n"
    );
    assert!(
        std::fs::symlink_metadata(dir.join("out/bin/sh"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "--install -s made symlinks"
    );
}

/// Builds a one-file image (`/marker` holding `text`) into the OCI layout directory `layout`.
fn one_file_layout(scratch: &Path, layout: &Path, text: &str) {
    let project = scratch.join("layout-project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("marker"), text).unwrap();
    std::fs::write(
        project.join("Dockerfile"),
        "FROM scratch\nCOPY marker /marker\n",
    )
    .unwrap();
    std::fs::write(
        project.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  output = [\"type=oci,dest={},tar=false\"]\n}}\n",
            layout.display()
        ),
    )
    .unwrap();
    let args = vec![
        "--root".to_owned(),
        scratch.join("layout-state").display().to_string(),
        format!("--allow=fs.write={}", layout.display()),
    ];
    let output = support::bake(&project, &args, &[], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_oci_layout_context_without_digest_is_read_again_every_build() {
    let scratch = tempfile::tempdir().unwrap();
    let layout = scratch.path().join("layout");
    one_file_layout(scratch.path(), &layout, "first");
    let dir = scratch.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM base\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  contexts = {{ base = \"oci-layout://{}\" }}\n  output = [\"type=local,dest=out\"]\n}}\n",
            layout.display()
        ),
    )
    .unwrap();
    let root = scratch.path().join("state");
    let args = vec!["--root".to_owned(), root.display().to_string()];
    let output = support::bake(&dir, &args, &[], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/marker")).unwrap(),
        "first"
    );
    // The layout is rebuilt in place: the next build must see the new image.
    std::fs::remove_dir_all(&layout).unwrap();
    one_file_layout(scratch.path(), &layout, "second");
    let output = support::bake(&dir, &args, &[], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out/marker")).unwrap(),
        "second"
    );
}

#[test]
fn oci_outputs_are_named_after_the_targets_tags() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "a").unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY a.txt /\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  tags = [\"example.com/app:1.0\"]\n  output = [\"type=oci,dest=layout,tar=false\"]\n}\n",
    )
    .unwrap();
    let args = vec![
        "--root".to_owned(),
        scratch.path().join("state").display().to_string(),
    ];
    let output = support::bake(&dir, &args, &[], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("layout/index.json")).unwrap())
            .unwrap();
    let annotations = &index["manifests"][0]["annotations"];
    assert_eq!(
        annotations["io.containerd.image.name"],
        "example.com/app:1.0"
    );
    assert_eq!(annotations["org.opencontainers.image.ref.name"], "1.0");
    if support::find_in_path("skopeo").is_none() {
        return;
    }
    let inspect = std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:1.0", dir.join("layout").display()))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
}

#[test]
fn linked_contexts_example_builds_as_written() {
    if !can_run() || !Path::new("/bin/busybox").is_file() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("linked");
    support::copy_tree(
        &support::root().join("examples/bake/linked-contexts"),
        &dir,
        &[],
    );
    let args = vec![
        "--root".to_owned(),
        scratch.path().join("state").display().to_string(),
        "--allow=fs.read=/bin".to_owned(),
    ];
    let output = support::bake(&dir, &args, &[], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = std::fs::read_to_string(dir.join("out/test-results/results.txt")).unwrap();
    assert!(results.contains("self-test passed"), "{results}");
}

#[test]
fn progress_shows_an_export_step_naming_where_each_output_went() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "a").unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY a.txt /\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "target \"default\" {\n  output = [\"type=local,dest=out\", \"type=oci,dest=image.tar\"]\n}\n",
    )
    .unwrap();
    let args = vec![
        "--root".to_owned(),
        scratch.path().join("state").display().to_string(),
        "--progress=plain".to_owned(),
    ];
    let output = support::bake(&dir, &args, &[], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("exporting to client directory"), "{stderr}");
    assert!(
        stderr.contains(&format!("writing to {}", dir.join("out").display())),
        "{stderr}"
    );
    assert!(stderr.contains("exporting to oci image format"), "{stderr}");
    assert!(
        stderr.contains(&format!("writing to {}", dir.join("image.tar").display())),
        "{stderr}"
    );
}

#[test]
fn progress_names_a_from_with_its_variables_expanded() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "a").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "ARG IMG=base\nFROM ${IMG}\nCOPY a.txt /\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "target \"default\" {{\n  contexts = {{ base = \"{}\" }}\n  output = [\"type=local,dest=out\"]\n}}\n",
            base()
        ),
    )
    .unwrap();
    let args = vec![
        "--root".to_owned(),
        scratch.path().join("state").display().to_string(),
        "--progress=plain".to_owned(),
    ];
    let output = support::bake(&dir, &args, &[], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("FROM base"), "{stderr}");
    assert!(!stderr.contains("FROM ${IMG}"), "{stderr}");
}

/// `examples/bake/monorepo` for `linux/amd64` and `linux/arm64`, as its header says to run it:
/// every image gets both platforms, each with the busybox of its architecture, the arm64 RUN
/// steps under QEMU.
#[test]
fn monorepo_example_builds_for_two_platforms() {
    if !can_run() || !Path::new("/bin/busybox").is_file() {
        return;
    }
    let Some(arm64) = support::arm64_busybox() else {
        support::skip(
            "skipping two-platform monorepo: Debian's arm64 busybox-static is not unpacked in target/tmp/arm64 (.ci/run does it)",
        );
        return;
    };
    if std::env::consts::ARCH != "x86_64" {
        support::skip("skipping two-platform monorepo: needs an amd64 host");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("monorepo");
    support::copy_tree(&support::root().join("examples/bake/monorepo"), &dir, &[]);
    let arm64_dir = arm64.parent().unwrap().display().to_string();
    let args: Vec<String> = vec![
        "--root".into(),
        scratch.path().join("state").display().to_string(),
        "--progress=rawjson".into(),
        "--allow=fs.read=/bin".into(),
        format!("--allow=fs.read={arm64_dir}"),
    ];
    let env = [
        ("PLATFORMS".to_owned(), "linux/amd64,linux/arm64".to_owned()),
        ("BUSYBOX_ARM64_DIR".to_owned(), arm64_dir),
    ];
    let output = support::bake(&dir, &args, &env, None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let started: Vec<String> = events(&stderr)
        .iter()
        .filter(|e| e["event"] == "started")
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect();
    for platform in ["linux/amd64", "linux/arm64"] {
        let shared = started
            .iter()
            .filter(|n| {
                n.contains(&format!("[base {platform} ")) && n.contains("/opt/acme/release")
            })
            .count();
        assert_eq!(shared, 1, "the base runs once per platform: {started:?}");
    }

    let elf_machine = |path: &Path| -> u16 {
        let bytes = std::fs::read(path).unwrap();
        u16::from_le_bytes([bytes[18], bytes[19]])
    };
    for (platform, machine) in [("linux_amd64", 62), ("linux_arm64", 183)] {
        let web = dir.join("out/web").join(platform);
        assert_eq!(
            elf_machine(&web.join("bin/busybox")),
            machine,
            "{platform} has its own busybox"
        );
        assert_eq!(
            std::fs::read_to_string(web.join("usr/share/web/web.built")).unwrap(),
            "building web from /opt/acme\n"
        );
        assert!(
            dir.join("out/docs")
                .join(platform)
                .join("usr/share/docs/docs.built")
                .is_file()
        );
    }
    for archive in ["out/api-slim.tar", "out/worker.tar"] {
        let raw = std::process::Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci-archive:{}", dir.join(archive).display()))
            .output()
            .expect("skopeo runs");
        assert!(raw.status.success(), "{raw:?}");
        let index: serde_json::Value =
            serde_json::from_str(&String::from_utf8_lossy(&raw.stdout)).unwrap();
        let architectures: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(architectures, ["amd64", "arm64"], "{archive}");
    }
}

#[test]
fn extra_hosts_reach_the_hosts_file_of_run_steps_without_a_warning() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = base_project(
        scratch.path(),
        "FROM base\nRUN cp /etc/hosts /hosts\n",
        "extra-hosts = { \"db.internal\" = \"10.1.2.3\" }",
    );
    let (output, _) = run(&dir, &scratch.path().join("root"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("extra-hosts"), "{stderr}");
    let hosts = std::fs::read_to_string(dir.join("out/hosts")).unwrap();
    assert!(hosts.contains("10.1.2.3\tdb.internal"), "{hosts}");
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
}

#[test]
fn the_target_network_is_the_default_of_its_run_steps() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    // The first step takes the target's network; the second asks for its own.
    let dockerfile = "FROM base\nRUN cat /proc/net/dev > /default\nRUN --network=none cat /proc/net/dev > /own\n";
    let write = |network: &str| base_project(scratch.path(), dockerfile, network);
    let dir = write("");
    let interfaces = |file: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join("out").join(file))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_owned()))
            .filter(|name| !name.contains('|'))
            .collect()
    };
    let root = scratch.path().join("root");
    write("network = \"none\"");
    let (output, _) = run(&dir, &root);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("`network`"),
        "no warning names it: {stderr}"
    );
    assert_eq!(interfaces("default"), ["lo"]);
    assert_eq!(interfaces("own"), ["lo"]);
    // Without it the step is in the sandbox network, which without CNI is the host's.
    write("");
    let (output, _) = run(&dir, &root);
    assert!(output.status.success());
    assert!(
        interfaces("default").len() > 1,
        "{:?}",
        interfaces("default")
    );
    assert_eq!(interfaces("own"), ["lo"]);
    // Other modes are BuildKit's refusal, before anything builds.
    write("network = \"bridge\"");
    let (output, _) = run(&dir, &root);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("network mode `bridge` not supported by buildkit"),
        "{stderr}"
    );
    // The host network needs the entitlement, as buildx's bake asks for it.
    write("network = \"host\"");
    let (output, _) = run(&dir, &root);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("network.host"), "{stderr}");
}
