//! The file op (`COPY`, `ADD`, mkdir, mkfile, rm) on real directories: destination rules,
//! wildcards, ownership and modes, links, and that nothing escapes the root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use bake::graph::{CopyAction, FileAction, FileOwner};
use bake::ops::file::apply;

fn copy(src: &str, dest: &str) -> CopyAction {
    CopyAction {
        source: Some(0),
        src: src.to_owned(),
        dest: dest.to_owned(),
        owner: FileOwner::default(),
        mode_str: None,
        follow_symlinks: true,
        dir_copy_contents: true,
        create_dest_path: true,
        allow_wildcard: true,
        allow_empty_wildcard: false,
        attempt_unpack: false,
        parents: false,
        exclude_patterns: Vec::new(),
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

struct Case {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    source: std::path::PathBuf,
}

fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let source = dir.path().join("source");
    fs::create_dir_all(root.join("etc")).unwrap();
    write(
        &root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    );
    write(
        &root.join("etc/group"),
        "root:x:0:\nstaff:x:50:\napp:x:1000:\n",
    );
    fs::create_dir_all(&source).unwrap();
    Case {
        _dir: dir,
        root,
        source,
    }
}

fn run(case: &Case, actions: Vec<FileAction>) -> Result<(), bake::ops::file::Error> {
    apply(&case.root, &[case.source.as_path()], &actions)
}

#[test]
fn file_destination_rules() {
    let c = case();
    write(&c.source.join("a.txt"), "a");
    run(&c, vec![FileAction::Copy(copy("a.txt", "/dir/"))]).unwrap();
    assert_eq!(fs::read_to_string(c.root.join("dir/a.txt")).unwrap(), "a");
    run(&c, vec![FileAction::Copy(copy("a.txt", "/renamed"))]).unwrap();
    assert_eq!(fs::read_to_string(c.root.join("renamed")).unwrap(), "a");
    run(&c, vec![FileAction::Copy(copy("a.txt", "/dir"))]).unwrap();
    assert!(
        c.root.join("dir/a.txt").is_file(),
        "an existing directory receives the file"
    );
}

#[test]
fn directory_contents_are_copied_and_existing_destination_keeps_its_mode() {
    let c = case();
    write(&c.source.join("src/x/y.txt"), "y");
    fs::set_permissions(c.source.join("src"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(c.root.join("app")).unwrap();
    fs::set_permissions(c.root.join("app"), fs::Permissions::from_mode(0o750)).unwrap();
    run(&c, vec![FileAction::Copy(copy("src", "/app"))]).unwrap();
    assert_eq!(fs::read_to_string(c.root.join("app/x/y.txt")).unwrap(), "y");
    assert_eq!(
        fs::metadata(c.root.join("app"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o750
    );
    run(&c, vec![FileAction::Copy(copy("src", "/new/deep/"))]).unwrap();
    assert!(c.root.join("new/deep/x/y.txt").is_file());
    assert_eq!(
        fs::metadata(c.root.join("new/deep"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
}

#[test]
fn wildcards_match_and_empty_matches_fail_unless_allowed() {
    let c = case();
    for name in ["a.txt", "b.txt", "c.md"] {
        write(&c.source.join(name), name);
    }
    run(&c, vec![FileAction::Copy(copy("*.txt", "/out/"))]).unwrap();
    assert!(c.root.join("out/a.txt").is_file() && c.root.join("out/b.txt").is_file());
    assert!(!c.root.join("out/c.md").exists());
    assert!(run(&c, vec![FileAction::Copy(copy("*.rs", "/out/"))]).is_err());
    let mut optional = copy("*.rs", "/out/");
    optional.allow_empty_wildcard = true;
    run(&c, vec![FileAction::Copy(optional)]).unwrap();
    assert!(
        run(&c, vec![FileAction::Copy(copy("*.txt", "/single"))]).is_err(),
        "several sources need a directory"
    );
    assert!(run(&c, vec![FileAction::Copy(copy("missing", "/x"))]).is_err());
}

#[test]
fn chown_names_resolve_in_the_destination_and_chmod_applies() {
    if !is_root() {
        crate::support::skip("skipped: chown needs root");
        return;
    }
    let c = case();
    write(&c.source.join("run.sh"), "#!/bin/sh");
    let mut owned = copy("run.sh", "/opt/run.sh");
    owned.owner = FileOwner {
        user: Some("app".into()),
        group: Some("staff".into()),
        mode: None,
    };
    owned.mode_str = Some("u+x,go-rwx".into());
    fs::set_permissions(c.source.join("run.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    run(&c, vec![FileAction::Copy(owned)]).unwrap();
    let meta = fs::metadata(c.root.join("opt/run.sh")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 50));
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let mut numeric = copy("run.sh", "/opt/n.sh");
    numeric.owner = FileOwner {
        user: Some("42".into()),
        group: None,
        mode: Some(0o755),
    };
    run(&c, vec![FileAction::Copy(numeric)]).unwrap();
    let meta = fs::metadata(c.root.join("opt/n.sh")).unwrap();
    assert_eq!(meta.uid(), 42);
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    let mut unknown = copy("run.sh", "/opt/u.sh");
    unknown.owner.user = Some("nobody-here".into());
    assert!(run(&c, vec![FileAction::Copy(unknown)]).is_err());
}

#[test]
fn symlinks_and_hard_links_are_kept() {
    let c = case();
    write(&c.source.join("dir/target.txt"), "t");
    symlink("target.txt", c.source.join("dir/link")).unwrap();
    fs::hard_link(c.source.join("dir/target.txt"), c.source.join("dir/hard")).unwrap();
    run(&c, vec![FileAction::Copy(copy("dir", "/d/"))]).unwrap();
    assert_eq!(
        fs::read_link(c.root.join("d/link")).unwrap(),
        Path::new("target.txt")
    );
    let a = fs::metadata(c.root.join("d/target.txt")).unwrap();
    let b = fs::metadata(c.root.join("d/hard")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard links stay linked");
}

#[test]
fn destinations_through_absolute_symlinks_stay_inside_the_root() {
    let c = case();
    let canary = c._dir.path().join("canary");
    fs::create_dir_all(&canary).unwrap();
    symlink(&canary, c.root.join("escape")).unwrap();
    write(&c.source.join("f"), "x");
    run(&c, vec![FileAction::Copy(copy("f", "/escape/f"))]).unwrap();
    assert_eq!(
        fs::read_dir(&canary).unwrap().count(),
        0,
        "nothing written outside the root"
    );
}

#[test]
fn sources_cannot_be_read_through_symlinks_leaving_their_root() {
    let c = case();
    symlink("/etc", c.source.join("hostetc")).unwrap();
    // Inside the source root, `/etc` is the source's own (missing) /etc, not the host's.
    assert!(
        run(
            &c,
            vec![FileAction::Copy(copy("hostetc/hostname", "/stolen"))]
        )
        .is_err()
    );
    assert!(!c.root.join("stolen").exists());
}

#[test]
fn mkdir_mkfile_and_rm() {
    let c = case();
    let owner = FileOwner::default();
    run(
        &c,
        vec![
            FileAction::Mkdir {
                path: "/work/a/b".into(),
                owner: owner.clone(),
                make_parents: true,
            },
            FileAction::Mkfile {
                path: "/work/a/b/f".into(),
                owner: owner.clone(),
                data: "hello".into(),
            },
        ],
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(c.root.join("work/a/b/f")).unwrap(),
        "hello"
    );
    assert!(
        run(
            &c,
            vec![FileAction::Mkdir {
                path: "/x/y".into(),
                owner: owner.clone(),
                make_parents: false
            }]
        )
        .is_err()
    );
    run(
        &c,
        vec![FileAction::Rm {
            path: "/work/a/b/f".into(),
            allow_not_found: false,
        }],
    )
    .unwrap();
    assert!(!c.root.join("work/a/b/f").exists());
    assert!(
        run(
            &c,
            vec![FileAction::Rm {
                path: "/nope".into(),
                allow_not_found: false
            }]
        )
        .is_err()
    );
    run(
        &c,
        vec![FileAction::Rm {
            path: "/nope".into(),
            allow_not_found: true,
        }],
    )
    .unwrap();
}

#[test]
fn excludes_and_parents() {
    let c = case();
    write(&c.source.join("src/keep.rs"), "k");
    write(&c.source.join("src/skip.log"), "s");
    let mut excluding = copy("src", "/app/");
    excluding.exclude_patterns = vec!["*.log".into()];
    run(&c, vec![FileAction::Copy(excluding)]).unwrap();
    assert!(c.root.join("app/keep.rs").is_file());
    assert!(!c.root.join("app/skip.log").exists());
    let mut parents = copy("src/keep.rs", "/p/");
    parents.parents = true;
    run(&c, vec![FileAction::Copy(parents)]).unwrap();
    assert!(c.root.join("p/src/keep.rs").is_file());
}

/// A tar with `hello`, `dir/nested` and an absolute symlink, for the `ADD` unpack tests.
fn sample_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o640
        });
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_path(path).unwrap();
        header.set_cksum();
        builder.append(&header, data).unwrap();
    };
    add("hello", tar::EntryType::Regular, b"hi\n", None);
    add("dir/", tar::EntryType::Directory, b"", None);
    add("dir/nested", tar::EntryType::Regular, b"deep\n", None);
    add("abs", tar::EntryType::Symlink, b"", Some("/hello"));
    builder.into_inner().unwrap()
}

fn compressed(kind: &str, tar: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    match kind {
        "tar" => tar.to_vec(),
        "tar.gz" => {
            let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            out.write_all(tar).unwrap();
            out.finish().unwrap()
        }
        "tar.bz2" => {
            let mut out = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            out.write_all(tar).unwrap();
            out.finish().unwrap()
        }
        "tar.xz" => {
            let mut out = Vec::new();
            lzma_rs::xz_compress(&mut std::io::Cursor::new(tar), &mut out).unwrap();
            out
        }
        "tar.zst" => zstd::encode_all(tar, 1).unwrap(),
        other => panic!("no compression {other}"),
    }
}

#[test]
fn add_unpacks_local_archives_in_every_compression() {
    if !is_root() {
        return;
    }
    for kind in ["tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst"] {
        let case = case();
        let name = format!("app.{kind}");
        fs::write(case.source.join(&name), compressed(kind, &sample_tar())).unwrap();
        let mut add = copy(&name, "/opt/app");
        add.attempt_unpack = true;
        run(&case, vec![FileAction::Copy(add)]).unwrap();
        let dest = case.root.join("opt/app");
        assert_eq!(
            fs::read_to_string(dest.join("hello")).unwrap(),
            "hi\n",
            "{kind}"
        );
        assert_eq!(
            fs::read_to_string(dest.join("dir/nested")).unwrap(),
            "deep\n",
            "{kind}"
        );
        let meta = fs::metadata(dest.join("hello")).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (1000, 0o640), "{kind}");
        assert_eq!(
            fs::read_link(dest.join("abs")).unwrap(),
            Path::new("/hello"),
            "{kind}: links are kept as written"
        );
        assert!(!case.root.join("opt/app/app.tar").exists());
    }
}

#[test]
fn add_copies_non_archives_and_copy_never_unpacks() {
    if !is_root() {
        return;
    }
    let case = case();
    fs::write(case.source.join("fake.tar.gz"), "not an archive\n").unwrap();
    fs::write(case.source.join("real.tar"), sample_tar()).unwrap();
    let mut add = copy("fake.tar.gz", "/fake.tar.gz");
    add.attempt_unpack = true;
    run(
        &case,
        vec![
            FileAction::Copy(add),
            FileAction::Copy(copy("real.tar", "/real.tar")),
        ],
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(case.root.join("fake.tar.gz")).unwrap(),
        "not an archive\n"
    );
    assert_eq!(
        fs::read(case.root.join("real.tar")).unwrap(),
        sample_tar(),
        "COPY keeps archives whole"
    );
}

#[test]
fn add_refuses_archive_entries_leaving_the_destination() {
    if !is_root() {
        return;
    }
    let case = case();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(4);
    // `set_path` refuses `..`, so the name is written into the header bytes directly.
    let name = b"../../escaped";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_cksum();
    builder.append(&header, &b"bad\n"[..]).unwrap();
    fs::write(case.source.join("evil.tar"), builder.into_inner().unwrap()).unwrap();
    let mut add = copy("evil.tar", "/opt/x/");
    add.attempt_unpack = true;
    let error = run(&case, vec![FileAction::Copy(add)]).unwrap_err();
    assert!(error.to_string().contains("evil.tar"), "{error}");
    assert!(!case.root.join("escaped").exists());
    assert!(!case.root.parent().unwrap().join("escaped").exists());
}
