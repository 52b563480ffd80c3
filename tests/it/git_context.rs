//! Git repositories as build inputs, through the `bake` binary against a real `git daemon` on
//! 127.0.0.1: a target context at a tag and a branch (a moved branch rebuilds, the tag stays
//! CACHED), `ADD <git url>`, a named context from git, a remote bake definition, and the
//! errors of an unknown ref.

use std::path::Path;
use std::process::Output;

use crate::support::{self, git::GitDaemon};

/// Runs `bake` in `dir` on the state root `root` with rawjson progress and `BASE` set.
fn bake(dir: &Path, root: &Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--progress=rawjson".into(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    support::bake(
        dir,
        &all,
        &[("BASE".to_owned(), support::busybox_base())],
        None,
    )
}

fn ok(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "bake failed:\n{stderr}");
    stderr
}

/// A repository whose `app/` holds a Dockerfile copying `msg`, with a submodule `lib` (the
/// repository `sub`); tag `v1` has `v1`.
fn app_repository(daemon: &GitDaemon) {
    let sub = daemon.repository("sub");
    sub.commit(&[("subfile", "from the submodule\n")], "sub");
    let repo = daemon.repository("repo");
    repo.git(&["submodule", "add", "--quiet", &daemon.url("sub"), "lib"]);
    repo.commit(
        &[
            ("app/Dockerfile", "FROM base\nCOPY msg /msg\n"),
            ("app/msg", "v1\n"),
            ("README", "root file\n"),
        ],
        "v1",
    );
    repo.git(&["tag", "v1"]);
}

#[test]
fn a_git_context_builds_its_ref_and_only_a_moved_branch_rebuilds() {
    let Some(daemon) = GitDaemon::start() else {
        return;
    };
    if !support::can_build() {
        return;
    }
    app_repository(&daemon);
    let url = daemon.url("repo");
    let scratch = tempfile::tempdir().unwrap();
    let (dir, root) = (scratch.path().join("project"), scratch.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            r#"variable "BASE" {{}}
target "tag" {{
  context  = "{url}#v1:app"
  contexts = {{ base = BASE }}
  output   = ["type=local,dest=out-tag"]
}}
target "main" {{
  context  = "{url}#main:app"
  contexts = {{ base = BASE }}
  output   = ["type=local,dest=out-main"]
}}
"#
        ),
    )
    .unwrap();
    ok(&bake(&dir, &root, &["tag", "main"]));
    let read = |name: &str| std::fs::read_to_string(dir.join(name).join("msg")).unwrap();
    assert_eq!(read("out-tag"), "v1\n");
    assert_eq!(read("out-main"), "v1\n");

    let repo = support::git::Repo {
        dir: daemon.base.join("repo"),
    };
    repo.commit(&[("app/msg", "v2\n")], "v2");
    let main = ok(&bake(&dir, &root, &["main"]));
    assert_eq!(read("out-main"), "v2\n", "the moved branch is built again");
    let (_, done) = support::step_counts(&main);
    assert!(done > 0, "the moved branch ran its COPY again:\n{main}");
    let tag = ok(&bake(&dir, &root, &["tag"]));
    let (cached, done) = support::step_counts(&tag);
    assert_eq!(done, 0, "the tag's build is all CACHED:\n{tag}");
    assert!(cached > 0, "{tag}");
    assert_eq!(read("out-tag"), "v1\n");
}

#[test]
fn add_of_a_git_url_copies_the_tree_and_a_named_context_reads_git() {
    let Some(daemon) = GitDaemon::start() else {
        return;
    };
    if !support::can_build() {
        return;
    }
    app_repository(&daemon);
    let url = daemon.url("repo");
    let scratch = tempfile::tempdir().unwrap();
    let (dir, root) = (scratch.path().join("project"), scratch.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM base\nADD {url}#v1 /src\nADD --keep-git-dir=true {url}#v1 /kept\nCOPY --from=named app/msg /named-msg\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            r#"variable "BASE" {{}}
target "default" {{
  contexts = {{ base = BASE, named = "{url}#v1" }}
  output   = ["type=local,dest=out"]
}}
"#
        ),
    )
    .unwrap();
    ok(&bake(&dir, &root, &[]));
    let out = dir.join("out");
    assert_eq!(
        std::fs::read_to_string(out.join("src/app/msg")).unwrap(),
        "v1\n"
    );
    assert!(
        !out.join("src/.git").exists(),
        "no .git without --keep-git-dir"
    );
    assert!(out.join("kept/.git").is_dir(), "--keep-git-dir keeps it");
    assert_eq!(
        std::fs::read_to_string(out.join("named-msg")).unwrap(),
        "v1\n"
    );
    // The checkout's files carry the commit time, not the time of the checkout.
    let mtime = std::fs::metadata(out.join("src/README"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(mtime, 1_700_000_000);
    let again = ok(&bake(&dir, &root, &[]));
    assert_eq!(support::step_counts(&again).1, 0, "{again}");
}

#[test]
fn bake_reads_the_definition_from_a_git_repository() {
    let Some(daemon) = GitDaemon::start() else {
        return;
    };
    let repo = daemon.repository("defs");
    repo.commit(
        &[
            (
                "docker-bake.hcl",
                "variable \"BASE\" {}\ntarget \"default\" {\n  context  = \"app\"\n  contexts = { base = BASE }\n  output   = [\"type=local,dest=out\"]\n}\ntarget \"other\" {\n  dockerfile-inline = \"FROM scratch\"\n}\n",
            ),
            ("app/Dockerfile", "FROM base\nCOPY msg /msg\n"),
            ("app/msg", "from the repository\n"),
        ],
        "definition",
    );
    let url = format!("{}#main", daemon.url("defs"));
    let scratch = tempfile::tempdir().unwrap();
    let (dir, root) = (scratch.path().join("cwd"), scratch.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    // `--print` shows the definition as buildx does: a target left at `.` gets the URL.
    let print = bake(&dir, &root, &[&url, "other", "--print"]);
    let printed: serde_json::Value =
        serde_json::from_slice(&print.stdout).unwrap_or_else(|_| panic!("{}", ok(&print)));
    assert_eq!(printed["target"]["other"]["context"], url.as_str());
    if !support::can_build() {
        return;
    }
    ok(&bake(&dir, &root, &[&url]));
    assert_eq!(
        std::fs::read_to_string(dir.join("out/msg")).unwrap(),
        "from the repository\n"
    );
}

#[test]
fn an_unknown_ref_fails_naming_the_url_and_the_ref() {
    let Some(daemon) = GitDaemon::start() else {
        return;
    };
    app_repository(&daemon);
    let url = daemon.url("repo");
    let scratch = tempfile::tempdir().unwrap();
    let (dir, root) = (scratch.path().join("project"), scratch.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!("target \"default\" {{\n  context = \"{url}#nope\"\n}}\n"),
    )
    .unwrap();
    let output = bake(&dir, &root, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown ref `nope`") && stderr.contains(&url),
        "{stderr}"
    );
    let missing = bake(&dir, &root, &[&format!("{}#main", daemon.url("absent"))]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("absent") && stderr.contains("git exited with status"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
