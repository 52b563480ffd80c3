//! Layer application (including a corpus of hostile layers), tree diffs and the native and
//! overlayfs snapshotters.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bake::snapshot::{self, DiffOptions, Native, Snapshotter};
use tar::{EntryType, Header};

/// One tar entry with a raw (possibly hostile) name, written without the tar crate's checks.
struct Raw<'a> {
    name: &'a [u8],
    kind: EntryType,
    link: &'a [u8],
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name: name.as_bytes(),
        kind: EntryType::Regular,
        link: b"",
        data,
    }
}

fn symlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        name: name.as_bytes(),
        kind: EntryType::Symlink,
        link: target.as_bytes(),
        data: b"",
    }
}

fn hardlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        name: name.as_bytes(),
        kind: EntryType::Link,
        link: target.as_bytes(),
        data: b"",
    }
}

fn dir(name: &str) -> Raw<'_> {
    Raw {
        name: name.as_bytes(),
        kind: EntryType::Directory,
        link: b"",
        data: b"",
    }
}

fn layer(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = Header::new_gnu();
        header.set_entry_type(entry.kind);
        header.set_mode(if entry.kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_size(entry.data.len() as u64);
        header.set_mtime(1_700_000_000);
        if entry.name.len() <= 100 && entry.link.len() <= 100 {
            // Raw bytes: `set_path` would refuse `..` and absolute names, which is the point.
            header.as_old_mut().name[..entry.name.len()].copy_from_slice(entry.name);
            header.as_old_mut().linkname[..entry.link.len()].copy_from_slice(entry.link);
            header.set_cksum();
            builder.append(&header, entry.data).unwrap();
        } else if entry.link.is_empty() {
            let name = std::str::from_utf8(entry.name).unwrap();
            builder.append_data(&mut header, name, entry.data).unwrap();
        } else {
            let name = std::str::from_utf8(entry.name).unwrap();
            let link = std::str::from_utf8(entry.link).unwrap();
            builder.append_link(&mut header, name, link).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

/// A tree as `path -> (type, mode, uid, gid, content or link target)`.
type Tree = BTreeMap<PathBuf, (String, u32, u32, u32, Vec<u8>)>;

fn tree(root: &Path) -> Tree {
    fn walk(root: &Path, relative: &Path, out: &mut Tree) {
        let mut names: Vec<_> = fs::read_dir(root.join(relative))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = relative.join(&name);
            let full = root.join(&path);
            let meta = fs::symlink_metadata(&full).unwrap();
            let kind = format!("{:?}", meta.file_type());
            let content = if meta.is_file() {
                fs::read(&full).unwrap()
            } else if meta.file_type().is_symlink() {
                fs::read_link(&full)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                format!("rdev={}", meta.rdev()).into_bytes()
            };
            out.insert(
                path.clone(),
                (kind, meta.mode(), meta.uid(), meta.gid(), content),
            );
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Tree::new();
    walk(root, Path::new(""), &mut out);
    out
}

/// A root dir next to a canary dir whose tree must never change.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("root")).unwrap();
        fs::create_dir_all(dir.path().join("canary/sub")).unwrap();
        fs::write(dir.path().join("canary/file"), b"canary").unwrap();
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn canary(&self) -> String {
        self.dir.path().join("canary").to_str().unwrap().to_owned()
    }

    fn outside(&self) -> (Tree, Vec<std::ffi::OsString>) {
        let mut top: Vec<_> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        top.sort();
        (tree(&self.dir.path().join("canary")), top)
    }
}

const HOST_MARKER: &str = "bake-hostile-layer-marker";

#[test]
fn hostile_layers_never_touch_the_host() {
    let sandbox_probe = Sandbox::new();
    let canary = sandbox_probe.canary();
    let long_component = "x".repeat(300);
    let long_path = "d/".repeat(2100) + "f";
    let canary_escape = format!("../canary/{HOST_MARKER}");
    let etc_marker = format!("a/b/etc/{HOST_MARKER}");
    let etc_link_marker = format!("etclink/{HOST_MARKER}");
    let canary_abs_file = format!("{canary}/{HOST_MARKER}");
    let canary_file = format!("{canary}/file");
    let canary_parent = Path::new(&canary)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let cases: Vec<(&str, Vec<Raw<'_>>)> = vec![
        ("dotdot name", vec![file(&canary_escape, b"evil")]),
        ("dotdot directory", vec![dir("../evil-dir")]),
        ("absolute name", vec![file(&canary_abs_file, b"evil")]),
        (
            "chained symlinks",
            vec![
                symlink("a", "/"),
                symlink("a/b", ".."),
                file(&etc_marker, b"evil"),
            ],
        ),
        (
            "symlink to /etc",
            vec![symlink("etclink", "/etc"), file(&etc_link_marker, b"evil")],
        ),
        (
            "symlink to the canary",
            vec![
                symlink("c", &canary),
                file("c/file", b"evil"),
                file("c/new", b"evil"),
            ],
        ),
        (
            "relative symlink out",
            vec![
                symlink("up", "../../../../../.."),
                file("up/tmp/evil", b"evil"),
            ],
        ),
        (
            "symlink then dir through it",
            vec![symlink("s", &canary), dir("s/sub/inner")],
        ),
        (
            "hard link to /etc/passwd",
            vec![hardlink("pw", "/etc/passwd")],
        ),
        (
            "hard link out with dotdot",
            vec![hardlink("pw", "../canary/file")],
        ),
        (
            "hard link through a symlink",
            vec![symlink("c", &canary), hardlink("pw", "c/file")],
        ),
        ("whiteout of dotdot", vec![file(".wh..", b"")]),
        (
            "nested whiteout of dotdot",
            vec![dir("sub"), file("sub/.wh..", b"")],
        ),
        ("whiteout of dot", vec![file("sub/.wh.", b"")]),
        (
            "whiteout through a symlink",
            vec![symlink("p", &canary_parent), file("p/.wh.canary", b"")],
        ),
        (
            "opaque through a symlink",
            vec![symlink("o", &canary), file("o/.wh..wh..opq", b"")],
        ),
        (
            "file replaces a symlink",
            vec![symlink("f", &canary_file), file("f", b"evil")],
        ),
        ("long component", vec![file(&long_component, b"x")]),
        ("very long path", vec![file(&long_path, b"x")]),
        ("truncated archive", vec![]),
    ];
    let host_etc_before = fs::read_dir("/etc").unwrap().count();
    let passwd_links = fs::metadata("/etc/passwd").unwrap().nlink();
    for (name, entries) in cases {
        let sandbox = Sandbox::new();
        let before = sandbox.outside();
        let mut bytes = layer(&entries);
        if name == "truncated archive" {
            bytes = layer(&[file("big", &[7u8; 4096])]);
            bytes.truncate(1024);
        }
        let result = snapshot::apply_layer(&sandbox.root(), bytes.as_slice());
        println!("{name}: {result:?}");
        assert_eq!(sandbox.outside(), before, "case `{name}` changed the host");
        assert!(
            !Path::new("/etc").join(HOST_MARKER).exists(),
            "case `{name}` wrote to /etc"
        );
        if let Err(error) = result
            && !matches!(error, snapshot::Error::Layer { .. })
        {
            let message = error.to_string();
            assert!(
                message.contains('`'),
                "case `{name}`: error names no entry: {message}"
            );
        }
    }
    assert_eq!(fs::read_dir("/etc").unwrap().count(), host_etc_before);
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), passwd_links);
}

#[test]
fn hostile_results_land_inside_the_root() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let marker = format!("a/b/etc/{HOST_MARKER}");
    let bytes = layer(&[
        symlink("a", "/"),
        symlink("a/b", ".."),
        file(&marker, b"inside"),
    ]);
    snapshot::apply_layer(&root, bytes.as_slice()).unwrap();
    assert_eq!(
        fs::read(root.join("etc").join(HOST_MARKER)).unwrap(),
        b"inside"
    );

    let error = snapshot::apply_layer(&root, layer(&[file("../x", b"")]).as_slice()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "layer entry `../x` escapes the root with `..`"
    );
    let error = snapshot::apply_layer(&root, layer(&[file(".wh..", b"")]).as_slice()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "layer entry `.wh..` is a whiteout of an invalid name"
    );
    let error = snapshot::apply_layer(&root, layer(&[hardlink("pw", "../etc/passwd")]).as_slice())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "layer entry `pw` is a hard link to `../etc/passwd`, outside the root"
    );
    let error = snapshot::apply_layer(&root, layer(&[hardlink("pw", "/etc/passwd")]).as_slice())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("failed to create hard link layer entry `pw`"),
        "{error}"
    );
}

#[test]
fn rootfs_absolute_symlinks_resolve_inside_the_root() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let bytes = layer(&[
        dir("run"),
        dir("var"),
        symlink("var/run", "/run"),
        file("var/run/pid", b"1"),
    ]);
    snapshot::apply_layer(&root, bytes.as_slice()).unwrap();
    assert_eq!(fs::read(root.join("run/pid")).unwrap(), b"1");
    assert_eq!(
        fs::read_link(root.join("var/run")).unwrap(),
        Path::new("/run")
    );
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_contents() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let lower = layer(&[
        dir("gone"),
        file("gone/a", b"a"),
        file("keep", b"k"),
        file("drop", b"d"),
        dir("opq"),
        file("opq/old", b"o"),
    ]);
    snapshot::apply_layer(&root, lower.as_slice()).unwrap();
    let upper = layer(&[
        file(".wh.gone", b""),
        file(".wh.drop", b""),
        file(".wh.never-existed", b""),
        dir("opq"),
        file("opq/new", b"n"),
        file("opq/.wh..wh..opq", b""),
    ]);
    snapshot::apply_layer(&root, upper.as_slice()).unwrap();
    let names: Vec<_> = tree(&root).into_keys().collect();
    assert_eq!(
        names,
        [PathBuf::from("keep"), "opq".into(), "opq/new".into()]
    );
}

#[test]
fn entries_keep_mode_owner_mtime_xattrs_links_and_devices() {
    let sandbox = Sandbox::new();
    let root = sandbox.root();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o4750);
    header.set_uid(1234);
    header.set_gid(5678);
    header.set_mtime(1_600_000_000);
    header.set_size(5);
    // A PAX header carrying an xattr for the next entry.
    let record = b"31 SCHILY.xattr.user.color=red\n";
    let mut pax = Header::new_ustar();
    pax.set_entry_type(EntryType::XHeader);
    pax.set_size(record.len() as u64);
    pax.set_path("PaxHeaders/bin_tool").unwrap();
    pax.set_cksum();
    builder.append(&pax, &record[..]).unwrap();
    builder
        .append_data(&mut header, "bin/tool", &b"hello"[..])
        .unwrap();
    let mut link = Header::new_gnu();
    link.set_entry_type(EntryType::Link);
    link.set_size(0);
    builder
        .append_link(&mut link, "bin/alias", "bin/tool")
        .unwrap();
    let mut null = Header::new_gnu();
    null.set_entry_type(EntryType::Char);
    null.set_mode(0o666);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    null.set_size(0);
    builder
        .append_data(&mut null, "dev/null", &b""[..])
        .unwrap();
    let mut fifo = Header::new_gnu();
    fifo.set_entry_type(EntryType::Fifo);
    fifo.set_mode(0o600);
    fifo.set_size(0);
    builder
        .append_data(&mut fifo, "run/fifo", &b""[..])
        .unwrap();
    let bytes = builder.into_inner().unwrap();
    snapshot::apply_layer(&root, bytes.as_slice()).unwrap();

    let tool = fs::symlink_metadata(root.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4750);
    assert_eq!(
        (tool.uid(), tool.gid(), tool.mtime()),
        (1234, 5678, 1_600_000_000)
    );
    assert_eq!(tool.nlink(), 2);
    assert_eq!(
        fs::symlink_metadata(root.join("bin/alias")).unwrap().ino(),
        tool.ino()
    );
    let mut value = [0u8; 16];
    let length =
        rustix::fs::lgetxattr(root.join("bin/tool"), "user.color", &mut value[..]).unwrap();
    assert_eq!(&value[..length], b"red");
    let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert_eq!(
        (
            rustix::fs::major(null.rdev()),
            rustix::fs::minor(null.rdev())
        ),
        (1, 3)
    );
    assert_eq!(null.permissions().mode() & 0o7777, 0o666);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        fs::symlink_metadata(root.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

fn build_lower(lower: &Path) {
    fs::create_dir_all(lower.join("etc/conf.d")).unwrap();
    fs::create_dir_all(lower.join("var/lib/deep/er")).unwrap();
    fs::create_dir_all(lower.join("becomes-file")).unwrap();
    fs::write(lower.join("etc/passwd"), b"root:x:0:0\n").unwrap();
    fs::write(lower.join("etc/conf.d/a"), b"a").unwrap();
    fs::write(lower.join("var/lib/deep/er/x"), b"x").unwrap();
    fs::write(lower.join("becomes-dir"), b"file").unwrap();
    fs::write(lower.join("unchanged"), b"same").unwrap();
    fs::write(lower.join("chmod-me"), b"m").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", lower.join("link")).unwrap();
}

fn mutate_upper(upper: &Path) {
    fs::write(upper.join("etc/passwd"), b"root:x:0:0\nuser:x:1000:1000\n").unwrap();
    fs::remove_file(upper.join("etc/conf.d/a")).unwrap();
    fs::remove_dir_all(upper.join("var/lib/deep")).unwrap();
    fs::remove_dir_all(upper.join("becomes-file")).unwrap();
    fs::write(upper.join("becomes-file"), b"now a file").unwrap();
    fs::remove_file(upper.join("becomes-dir")).unwrap();
    fs::create_dir(upper.join("becomes-dir")).unwrap();
    fs::write(upper.join("becomes-dir/inside"), b"i").unwrap();
    fs::set_permissions(upper.join("chmod-me"), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(upper.join("chmod-me"), Some(42), Some(43)).unwrap();
    fs::remove_file(upper.join("link")).unwrap();
    std::os::unix::fs::symlink("../relative/target", upper.join("link")).unwrap();
    fs::create_dir_all(upper.join("new/dir")).unwrap();
    fs::write(upper.join("new/dir/file"), b"new").unwrap();
    fs::hard_link(upper.join("new/dir/file"), upper.join("new/hardlink")).unwrap();
    rustix::fs::lsetxattr(
        upper.join("new/dir/file"),
        "user.k",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        upper.join("new/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
}

#[test]
fn applying_a_diff_onto_lower_reproduces_upper() {
    let dir = tempfile::tempdir().unwrap();
    let (lower, upper, target) = (
        dir.path().join("lower"),
        dir.path().join("upper"),
        dir.path().join("target"),
    );
    fs::create_dir(&lower).unwrap();
    build_lower(&lower);
    snapshot::copy_tree(&lower, &upper).unwrap();
    assert!(tree(&lower) == tree(&upper));
    mutate_upper(&upper);

    let options = DiffOptions::default();
    let bytes = snapshot::diff(Some(&lower), &upper, Vec::new(), &options).unwrap();
    assert_eq!(
        bytes,
        snapshot::diff(Some(&lower), &upper, Vec::new(), &options).unwrap(),
        "deterministic"
    );
    let mut names = Vec::new();
    for entry in tar::Archive::new(bytes.as_slice()).entries().unwrap() {
        names.push(
            entry
                .unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert!(names.contains(&"var/lib/.wh.deep".to_owned()), "{names:?}");
    assert!(names.contains(&"etc/conf.d/.wh.a".to_owned()), "{names:?}");
    assert!(!names.contains(&"unchanged".to_owned()), "{names:?}");

    snapshot::copy_tree(&lower, &target).unwrap();
    snapshot::apply_layer(&target, bytes.as_slice()).unwrap();
    assert_eq!(tree(&target), tree(&upper));
    let mut value = [0u8; 8];
    let length =
        rustix::fs::lgetxattr(target.join("new/dir/file"), "user.k", &mut value[..]).unwrap();
    assert_eq!(&value[..length], b"v");
    let file = fs::metadata(target.join("new/dir/file")).unwrap();
    assert_eq!(
        file.ino(),
        fs::metadata(target.join("new/hardlink")).unwrap().ino()
    );

    // From nothing: the diff against no lower is the whole tree.
    let full = snapshot::diff(None, &upper, Vec::new(), &options).unwrap();
    let fresh = dir.path().join("fresh");
    snapshot::apply_layer(&fresh, full.as_slice()).unwrap();
    assert_eq!(tree(&fresh), tree(&upper));
}

#[test]
fn source_date_epoch_clamps_mtimes() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("file"), b"x").unwrap();
    let options = DiffOptions {
        source_date_epoch: Some(86_400),
    };
    let bytes = snapshot::diff(None, dir.path(), Vec::new(), &options).unwrap();
    for entry in tar::Archive::new(bytes.as_slice()).entries().unwrap() {
        assert_eq!(entry.unwrap().header().mtime().unwrap(), 86_400);
    }
}

/// Prepares a base and a child of it through `snapshotter`, diffs them as an export does,
/// then removes the child.
fn snapshotter_prepares_commits_diffs_and_removes(snapshotter: &dyn Snapshotter) {
    let base = snapshotter.prepare(None).unwrap();
    fs::write(base.join("a"), b"a").unwrap();
    snapshotter.commit(&base).unwrap();
    let child = snapshotter.prepare(Some(&base)).unwrap();
    assert_ne!(child, base);
    assert_eq!(fs::read(child.join("a")).unwrap(), b"a");
    fs::remove_file(child.join("a")).unwrap();
    fs::write(child.join("b"), b"b").unwrap();
    snapshotter.commit(&child).unwrap();
    let layer_bytes =
        snapshot::diff(Some(&base), &child, Vec::new(), &DiffOptions::default()).unwrap();
    let names: Vec<_> = tar::Archive::new(layer_bytes.as_slice())
        .entries()
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, [".wh.a", "b"]);
    assert_eq!(fs::read(base.join("a")).unwrap(), b"a");

    snapshotter.remove(&child).unwrap();
    assert!(matches!(
        snapshotter.mount(&child),
        Err(snapshot::Error::NotFound(_))
    ));
    snapshotter.mount(&base).unwrap();
}

#[test]
fn native_snapshotter_prepares_commits_diffs_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    snapshotter_prepares_commits_diffs_and_removes(&Native::new(dir.path()));
}

#[test]
fn overlay_snapshotter_prepares_commits_diffs_and_removes() {
    // Its own thread: the overlay snapshotter moves it into a private mount namespace.
    std::thread::spawn(|| {
        let dir = tempfile::tempdir().unwrap();
        let overlay = rustix::process::geteuid()
            .is_root()
            .then(|| snapshot::Overlay::new(dir.path()))
            .flatten();
        let Some(overlay) = overlay else {
            crate::support::skip(
                "skipping: overlayfs snapshots need root and a filesystem that takes them",
            );
            return;
        };
        snapshotter_prepares_commits_diffs_and_removes(&overlay);
    })
    .join()
    .unwrap();
}
