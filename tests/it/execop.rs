//! The exec op against real runc on a busybox root: root writes persist, binds, throwaway
//! writable binds, cache mounts across runs, tmpfs, secrets. Skips (and says why) without
//! root, runc or busybox; CI has all three.

use std::collections::BTreeMap;
use std::path::Path;

use bake::executor::{Runc, Stream};
use bake::graph::{
    CacheSharing, ExecMeta, ExecOp, FileOwner, Mount, MountKind, NetworkMode, SecretEnv,
    SecurityMode,
};
use bake::ops::exec::{ExecEnvironment, run};

use crate::support::{build_busybox_rootfs, find_in_path};

fn runc() -> Option<std::path::PathBuf> {
    let root = rustix::process::geteuid().is_root();
    match (
        root,
        find_in_path("runc"),
        Path::new("/bin/busybox").is_file(),
    ) {
        (true, Some(runc), true) => Some(runc),
        _ => {
            crate::support::skip(
                "skipping exec op test: needs root, runc and /bin/busybox (busybox-static)",
            );
            None
        }
    }
}

fn op(script: &str, mounts: Vec<Mount>) -> ExecOp {
    let mut all = vec![Mount {
        input: Some(0),
        selector: String::new(),
        dest: "/".into(),
        output: Some(0),
        readonly: false,
        kind: MountKind::Bind,
    }];
    all.extend(mounts);
    ExecOp {
        meta: ExecMeta {
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: String::new(),
            extra_hosts: Vec::new(),
            devices: Vec::new(),
            shm_size: 0,
            ulimits: Vec::new(),
        },
        mounts: all,
        network: NetworkMode::None,
        security: SecurityMode::Sandbox,
        secret_env: Vec::new(),
        proxy_env: BTreeMap::new(),
        resources: None,
    }
}

fn bind(input: usize, dest: &str, readonly: bool) -> Mount {
    Mount {
        input: Some(input),
        selector: String::new(),
        dest: dest.into(),
        output: None,
        readonly,
        kind: MountKind::Bind,
    }
}

struct Env {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    input: std::path::PathBuf,
    cache: std::path::PathBuf,
    runtime: Runc,
}

fn env(runc: &Path) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    build_busybox_rootfs(&root, Path::new("/bin/busybox"));
    let input = dir.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("data.txt"), "from input").unwrap();
    let runtime =
        Runc::new(runc, dir.path().join("state")).with_bundle_root(dir.path().join("bundles"));
    Env {
        cache: dir.path().join("cache"),
        root,
        input,
        runtime,
        _dir: dir,
    }
}

fn exec(e: &Env, op: &ExecOp, secrets: &BTreeMap<String, Vec<u8>>) -> (i32, String) {
    let environment = ExecEnvironment {
        runtime: &e.runtime,
        cache_root: &e.cache,
        secrets,
        ssh: &BTreeMap::new(),
        emulator: None,
        interpreter: None,
        restore: None,
        note: &|_| {},
    };
    let mut out = String::new();
    let status = run(
        op,
        &e.root,
        &[e.root.as_path(), e.input.as_path()],
        &environment,
        &mut |stream, bytes| {
            if stream == Stream::Stdout {
                out.push_str(&String::from_utf8_lossy(bytes));
            }
        },
    )
    .unwrap();
    (status.code, out)
}

#[test]
fn root_writes_persist_and_exit_codes_return() {
    let Some(runc) = runc() else { return };
    let e = env(&runc);
    let (code, _) = exec(
        &e,
        &op("echo built > /result; exit 0", vec![]),
        &BTreeMap::new(),
    );
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read_to_string(e.root.join("result")).unwrap(),
        "built\n"
    );
    let (code, _) = exec(&e, &op("exit 7", vec![]), &BTreeMap::new());
    assert_eq!(code, 7);
}

#[test]
fn binds_read_inputs_and_writable_binds_leave_the_input_alone() {
    let Some(runc) = runc() else { return };
    let e = env(&runc);
    let (_, out) = exec(
        &e,
        &op("cat /mnt/data.txt", vec![bind(1, "/mnt", true)]),
        &BTreeMap::new(),
    );
    assert_eq!(out, "from input");
    let (code, _) = exec(
        &e,
        &op("echo x > /mnt/new", vec![bind(1, "/mnt", true)]),
        &BTreeMap::new(),
    );
    assert_ne!(code, 0, "read-only bind refuses writes");
    let (code, _) = exec(
        &e,
        &op(
            "echo x > /mnt/new && cat /mnt/new",
            vec![bind(1, "/mnt", false)],
        ),
        &BTreeMap::new(),
    );
    assert_eq!(code, 0);
    assert!(
        !e.input.join("new").exists(),
        "the input itself is untouched"
    );
}

#[test]
fn cache_mounts_persist_across_runs_and_stay_out_of_the_root() {
    let Some(runc) = runc() else { return };
    let e = env(&runc);
    let cache = Mount {
        input: None,
        selector: String::new(),
        dest: "/var/cache/app".into(),
        output: None,
        readonly: false,
        kind: MountKind::Cache {
            id: "/var/cache/app".into(),
            sharing: CacheSharing::Locked,
            owner: FileOwner::default(),
        },
    };
    exec(
        &e,
        &op("echo one >> /var/cache/app/log", vec![cache.clone()]),
        &BTreeMap::new(),
    );
    let (_, out) = exec(
        &e,
        &op(
            "echo two >> /var/cache/app/log; cat /var/cache/app/log",
            vec![cache],
        ),
        &BTreeMap::new(),
    );
    assert_eq!(out, "one\ntwo\n");
    assert!(
        !e.root.join("var/cache/app/log").exists(),
        "cache contents never enter the root"
    );
}

#[test]
fn tmpfs_and_secrets() {
    let Some(runc) = runc() else { return };
    let e = env(&runc);
    let tmpfs = Mount {
        input: None,
        selector: String::new(),
        dest: "/scratch".into(),
        output: None,
        readonly: false,
        kind: MountKind::Tmpfs { size: 0 },
    };
    exec(
        &e,
        &op("echo t > /scratch/t", vec![tmpfs]),
        &BTreeMap::new(),
    );
    assert!(!e.root.join("scratch/t").exists());
    let secret = Mount {
        input: None,
        selector: String::new(),
        dest: "/run/secrets/token".into(),
        output: None,
        readonly: true,
        kind: MountKind::Secret {
            id: "token".into(),
            owner: FileOwner::default(),
            required: true,
        },
    };
    let mut with_env = op(
        "cat /run/secrets/token; echo \" $TOKEN\"",
        vec![secret.clone()],
    );
    with_env.secret_env.push(SecretEnv {
        id: "token".into(),
        name: "TOKEN".into(),
        required: true,
    });
    let secrets = BTreeMap::from([("token".to_owned(), b"s3cret".to_vec())]);
    let (_, out) = exec(&e, &with_env, &secrets);
    assert_eq!(out, "s3cret s3cret\n");
    assert!(
        !e.root.join("run/secrets/token").is_file(),
        "the secret never lands in the root"
    );
    let environment = ExecEnvironment {
        runtime: &e.runtime,
        cache_root: &e.cache,
        secrets: &BTreeMap::new(),
        ssh: &BTreeMap::new(),
        emulator: None,
        interpreter: None,
        restore: None,
        note: &|_| {},
    };
    assert!(
        run(
            &op("true", vec![secret]),
            &e.root,
            &[e.root.as_path()],
            &environment,
            &mut |_, _| {}
        )
        .is_err()
    );
}
