//! Big contexts through the binary: a rebuild after a one-file change hashes that file and no
//! other, copies no other into the new context snapshot (the rest are kept from the last one:
//! linked, or under a new overlay layer), and the `type=local` export
//! rewrites only the changed file (the others keep their inode); a removed file disappears
//! from the destination; an edit that keeps size and mtime (`touch -d` back) is still seen.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::support;
use crate::support::busybox_base as base;
use crate::support::can_build as can_run;

const FILES: usize = 60;

/// A context of `FILES` files in three directories, a COPY of them and a RUN listing them.
fn project(scratch: &Path) -> PathBuf {
    let dir = scratch.join("project");
    for index in 0..FILES {
        let sub = dir.join(format!("src/d{}", index % 3));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("f{index:02}.txt")),
            format!("file {index:02}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nCOPY src /src\nRUN find /src -type f | wc -l > /count\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=local,dest=out\"]\n}\n",
    )
    .unwrap();
    dir
}

/// The log lines of one build (rawjson progress).
fn build(dir: &Path, root: &Path, snapshotter: &str) -> Vec<String> {
    let config = dir.join("buildkitd.toml");
    std::fs::write(
        &config,
        format!("[worker.oci]\n  snapshotter = \"{snapshotter}\"\n"),
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--config".into(),
        config.display().to_string(),
        "--progress=rawjson".into(),
    ];
    let output = support::bake(dir, &args, &[("BASE".to_owned(), base())], None);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "log")
        .filter_map(|e| e["line"].as_str().map(str::to_owned))
        .collect()
}

/// The number in `<prefix>N <suffix>` of the one log line starting with `line_start`.
fn count(logs: &[String], line_start: &str, before: &str) -> u64 {
    let line = logs
        .iter()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no `{line_start}` line in {logs:#?}"));
    let head = &line[..line.find(before).unwrap_or_else(|| panic!("{line}"))];
    head.rsplit(' ')
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no count before `{before}` in `{line}`"))
}

fn hashed(logs: &[String]) -> u64 {
    count(logs, "context: ", " file")
}

fn copied(logs: &[String]) -> u64 {
    count(logs, "snapshot: ", " copied")
}

/// Waits out the stat cache's racy window (a file changed less than a second before a sync
/// is hashed again by the next one), so counts are exact.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

/// Inode of every file under `dir`, by relative path.
fn inodes(dir: &Path) -> BTreeMap<String, u64> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u64>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                walk(root, &entry.path(), out);
            } else {
                let relative = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .display()
                    .to_string();
                out.insert(relative, meta.ino());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn a_one_file_change_hashes_copies_and_exports_only_that_file() {
    if !can_run() {
        return;
    }
    for snapshotter in ["auto", "native"] {
        let scratch = tempfile::tempdir().unwrap();
        let dir = project(scratch.path());
        settle();
        let root = scratch.path().join("state");
        let out = dir.join("out/src");

        let cold = build(&dir, &root, snapshotter);
        assert_eq!(hashed(&cold), FILES as u64, "{snapshotter}: {cold:#?}");
        assert_eq!(copied(&cold), FILES as u64, "{snapshotter}: {cold:#?}");
        assert_eq!(
            std::fs::read_to_string(dir.join("out/count"))
                .unwrap()
                .trim(),
            FILES.to_string()
        );

        // Nothing changed: nothing is read and the export writes nothing.
        let before = inodes(&dir.join("out"));
        let warm = build(&dir, &root, snapshotter);
        assert_eq!(hashed(&warm), 0, "{snapshotter}: {warm:#?}");
        assert_eq!(inodes(&dir.join("out")), before, "{snapshotter}");

        // One file changed: only it is hashed, copied and rewritten.
        std::fs::write(dir.join("src/d1/f07.txt"), "changed, and longer\n").unwrap();
        settle();
        let logs = build(&dir, &root, snapshotter);
        assert_eq!(hashed(&logs), 1, "{snapshotter}: {logs:#?}");
        assert_eq!(copied(&logs), 1, "{snapshotter}: {logs:#?}");
        assert_eq!(
            std::fs::read_to_string(out.join("d1/f07.txt")).unwrap(),
            "changed, and longer\n"
        );
        let after = inodes(&dir.join("out"));
        let rewritten: Vec<&String> = after
            .iter()
            .filter(|(path, inode)| before.get(*path) != Some(*inode))
            .map(|(path, _)| path)
            .collect();
        // The RUN step wrote `/count` again, with the same bytes: only its mtime is updated.
        assert_eq!(rewritten, vec!["src/d1/f07.txt"], "{snapshotter}");

        // Same size and mtime put back: the changed ctime and inode still give it away.
        let file = dir.join("src/d2/f08.txt");
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, "FILE 08\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        settle();
        let logs = build(&dir, &root, snapshotter);
        assert_eq!(hashed(&logs), 1, "{snapshotter}: {logs:#?}");
        assert_eq!(
            std::fs::read_to_string(out.join("d2/f08.txt")).unwrap(),
            "FILE 08\n",
            "{snapshotter}: the export has the new content"
        );

        // A removed file disappears from the destination; files bake did not write stay.
        std::fs::remove_file(dir.join("src/d0/f03.txt")).unwrap();
        std::fs::write(dir.join("out/mine.txt"), "not bake's").unwrap();
        build(&dir, &root, snapshotter);
        assert!(!out.join("d0/f03.txt").exists(), "{snapshotter}");
        assert!(dir.join("out/mine.txt").exists(), "{snapshotter}");
        assert_eq!(
            std::fs::read_to_string(dir.join("out/count"))
                .unwrap()
                .trim(),
            (FILES - 1).to_string()
        );
    }
}

#[test]
fn an_export_edited_behind_bakes_back_is_repaired() {
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(scratch.path());
    let root = scratch.path().join("state");
    build(&dir, &root, "auto");
    // Same size, same mtime: only the record of the last export can tell.
    let exported = dir.join("out/src/d0/f00.txt");
    let mtime = std::fs::metadata(&exported).unwrap().modified().unwrap();
    std::fs::write(&exported, "FILE 00\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&exported)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    // A temp file left by an export that was killed while writing.
    let leftover = dir.join(format!(
        "out/src/d0/.f00.txt.bake-4242-{}",
        "0123456789abcdef0123456789abcdef"
    ));
    std::fs::write(&leftover, "half").unwrap();
    build(&dir, &root, "auto");
    assert_eq!(std::fs::read_to_string(&exported).unwrap(), "file 00\n");
    assert!(!leftover.exists());
}
