//! A context edited again and again through the binary: with overlays each context snapshot
//! is a layer of what changed over the last one (and a whole snapshot again past a depth),
//! so after every kind of edit (new, changed, removed and re-typed paths, modes, symlinks,
//! `.dockerignore`) the build must still see exactly the context, also with two builds on
//! one state root at once.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::support;
use crate::support::busybox_base as base;
use crate::support::can_build as can_run;

fn project(scratch: &Path) -> PathBuf {
    let dir = scratch.join("project");
    for index in 0..30 {
        let sub = dir.join(format!("src/d{}", index % 3));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("f{index:02}")),
            format!("file {index:02}\n"),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("d0/f00", dir.join("src/link")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nCOPY src /src\nRUN find /src | sort > /listing\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\nvariable \"OUT\" { default = \"out\" }\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=local,dest=${OUT}\"]\n}\n",
    )
    .unwrap();
    dir
}

/// Builds and returns whether the context snapshot was a layer over the last one.
fn build(dir: &Path, root: &Path, out: &str) -> bool {
    let args: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--progress=plain".into(),
    ];
    let env = [
        ("BASE".to_owned(), base()),
        ("OUT".to_owned(), out.to_owned()),
    ];
    let output = support::bake(dir, &args, &env, None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    stderr.contains("a layer over the last one")
}

/// Every path below `dir`: kind, permission bits and content or link target.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(relative, format!("dir {mode:o}"));
                walk(root, &path, out);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(relative, format!("link {}", target.display()));
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                out.insert(relative, format!("file {mode:o} {} {text}", meta.size()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The context's `src` as the build should see it, and what the RUN step listed.
fn check(dir: &Path, out: &str, step: &str) {
    let mut expected = tree(&dir.join("src"));
    let ignored = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
    for line in ignored.lines() {
        let below = line.trim_start_matches("src/");
        expected.retain(|path, _| path != below && !path.starts_with(&format!("{below}/")));
    }
    assert_eq!(tree(&dir.join(out).join("src")), expected, "after {step}");
    let listing = std::fs::read_to_string(dir.join(out).join("listing")).unwrap();
    let listed: Vec<String> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("/src/").map(str::to_owned))
        .collect();
    assert_eq!(
        listed,
        expected.keys().cloned().collect::<Vec<_>>(),
        "the RUN step's view after {step}"
    );
}

#[test]
fn every_kind_of_edit_reaches_the_build_through_layered_context_snapshots() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(scratch.path());
    let root = scratch.path().join("state");
    build(&dir, &root, "out");
    check(&dir, "out", "the first build");
    let src = dir.join("src");
    type Edit = Box<dyn Fn(&Path)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "a changed file",
            Box::new(|s| std::fs::write(s.join("d0/f03"), "changed\n").unwrap()),
        ),
        (
            "a new file",
            Box::new(|s| std::fs::write(s.join("d1/new"), "new\n").unwrap()),
        ),
        (
            "a removed file",
            Box::new(|s| std::fs::remove_file(s.join("d2/f05")).unwrap()),
        ),
        (
            "a removed directory",
            Box::new(|s| std::fs::remove_dir_all(s.join("d1")).unwrap()),
        ),
        (
            "a file replaced by a directory",
            Box::new(|s| {
                std::fs::remove_file(s.join("d0/f06")).unwrap();
                std::fs::create_dir(s.join("d0/f06")).unwrap();
                std::fs::write(s.join("d0/f06/inner"), "inner\n").unwrap();
            }),
        ),
        (
            "a directory replaced by a file",
            Box::new(|s| {
                std::fs::remove_dir_all(s.join("d0/f06")).unwrap();
                std::fs::write(s.join("d0/f06"), "a file again\n").unwrap();
            }),
        ),
        (
            "a changed mode",
            Box::new(|s| {
                std::fs::set_permissions(s.join("d0/f09"), std::fs::Permissions::from_mode(0o700))
                    .unwrap();
            }),
        ),
        (
            "a retargeted symlink",
            Box::new(|s| {
                std::fs::remove_file(s.join("link")).unwrap();
                std::os::unix::fs::symlink("d2", s.join("link")).unwrap();
            }),
        ),
        (
            "a directory's mode",
            Box::new(|s| {
                std::fs::set_permissions(s.join("d2"), std::fs::Permissions::from_mode(0o750))
                    .unwrap();
            }),
        ),
        (
            "an ignored file",
            Box::new(|s| {
                let dir = s.parent().unwrap();
                std::fs::write(dir.join(".dockerignore"), "src/d0/f00\n").unwrap();
            }),
        ),
        (
            "an ignore rule dropped",
            Box::new(|s| {
                let dir = s.parent().unwrap();
                std::fs::write(dir.join(".dockerignore"), "").unwrap();
                // Else the context is the one two edits ago, whose build is cached.
                std::fs::write(s.join("d0/f00"), "back\n").unwrap();
            }),
        ),
        (
            "one more change",
            Box::new(|s| std::fs::write(s.join("d2/f02"), "last\n").unwrap()),
        ),
    ];
    let mut layered = 0;
    for (step, edit) in &edits {
        edit(&src);
        layered += usize::from(build(&dir, &root, "out"));
        check(&dir, "out", step);
    }
    // With overlays (a `lowers` file in some snapshot), every edit but the one that starts
    // a new chain past the depth limit made a layer.
    let overlays = std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .any(|e| e.unwrap().path().join("lowers").exists());
    if overlays {
        assert_eq!(layered, edits.len() - 1, "layered context snapshots");
    } else {
        support::skip("bigtree_edits: no overlayfs here, context snapshots are whole copies");
    }

    // Two builds of one more edit on the same root at once: both see it.
    std::fs::write(src.join("d0/f00"), "together\n").unwrap();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| build(&dir, &root, "out"));
        let second = scope.spawn(|| build(&dir, &root, "out2"));
        first.join().unwrap();
        second.join().unwrap();
    });
    check(&dir, "out", "two builds at once");
    check(&dir, "out2", "two builds at once");
}
