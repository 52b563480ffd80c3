//! The executor against a real OCI runtime (runc, and crun where the host allows it), as
//! root, on a busybox rootfs built here from Debian's `busybox-static`. When runc, busybox or
//! root privileges are missing, each test prints why and returns early; CI has all three.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::{build_busybox_rootfs, find_in_path};
use bake::executor::spec::{self, GeneratedFiles};
use bake::executor::user::ResolvedUser;
use bake::executor::{
    Error, ExecRequest, ExitStatus, Mount, MountKind, Network, Runc, Runtime, Stream,
};
use tempfile::TempDir;

/// A rootfs plus the state directories one runtime needs.
struct Sandbox {
    rootfs: TempDir,
    state: TempDir,
    binary: PathBuf,
}

/// Output of one run.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Returns the sandbox, or prints why the test cannot run here.
fn sandbox_with(runtime: &str) -> Option<Sandbox> {
    let skip = |why: String| {
        crate::support::skip(&format!("skipping executor test: {why}"));
        None
    };
    // /proc/self belongs to the effective uid of the reading process.
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return skip("not running as root".into());
    }
    let Some(binary) = find_in_path(runtime) else {
        return skip(format!(
            "`{runtime}` is not installed (Debian package `{runtime}`)"
        ));
    };
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        return skip("`/bin/busybox` is missing (Debian package `busybox-static`)".into());
    }
    let rootfs = tempfile::tempdir().unwrap();
    build_busybox_rootfs(rootfs.path(), busybox);
    Some(Sandbox {
        rootfs,
        state: tempfile::tempdir().unwrap(),
        binary,
    })
}

fn sandbox() -> Option<Sandbox> {
    sandbox_with("runc")
}

impl Sandbox {
    fn runtime(&self) -> Runc {
        Runc::new(&self.binary, self.state.path().join("runtime"))
            .with_bundle_root(self.state.path().join("bundles"))
    }

    fn request(&self, script: &str) -> ExecRequest {
        ExecRequest::new(
            self.rootfs.path(),
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        )
    }

    fn run(&self, request: &ExecRequest) -> Output {
        self.try_run(request).unwrap()
    }

    fn try_run(&self, request: &ExecRequest) -> Result<Output, Error> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let status = self
            .runtime()
            .run(request, &mut |stream, bytes| match stream {
                Stream::Stdout => stdout.extend_from_slice(bytes),
                Stream::Stderr => stderr.extend_from_slice(bytes),
            })?;
        Ok(Output {
            status,
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        })
    }
}

#[test]
fn config_json_snapshot() {
    let mut request = ExecRequest::new(
        "/var/lib/bake/snapshots/42/rootfs",
        vec!["/bin/sh".into(), "-c".into(), "make install".into()],
    );
    request.env = vec!["GOPATH=/go".into()];
    request.cwd = "/src".into();
    request.user = "builder".into();
    request.hostname = "web".into();
    request.network = Network::None;
    request.mounts = vec![
        Mount {
            destination: "/src".into(),
            kind: MountKind::Bind {
                source: "/var/lib/bake/context".into(),
                readonly: true,
            },
        },
        Mount {
            destination: "/root/.cache".into(),
            kind: MountKind::Bind {
                source: "/var/lib/bake/cache-mounts/go".into(),
                readonly: false,
            },
        },
        Mount {
            destination: "/tmp".into(),
            kind: MountKind::Tmpfs {
                size: Some(64 << 20),
            },
        },
    ];
    request.extra_hosts = vec![("db".into(), "10.0.0.2".into())];
    let user = ResolvedUser {
        uid: 1500,
        gid: 1600,
        additional_gids: vec![1700],
    };
    let files = GeneratedFiles {
        hosts: "/tmp/bake-bundle-x/hosts".into(),
        resolv_conf: "/tmp/bake-bundle-x/resolv.conf".into(),
        hostname: "/tmp/bake-bundle-x/hostname".into(),
    };
    let json = spec::to_json(&spec::build(&request, &user, &files).unwrap()).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"/tmp/bake-bundle-[^/]+", "[BUNDLE]");
    settings.bind(|| {
        insta::assert_snapshot!("config_json", String::from_utf8(json).unwrap());
    });
}

#[test]
fn exit_code_propagates() {
    let Some(sandbox) = sandbox() else { return };
    assert_eq!(sandbox.run(&sandbox.request("exit 3")).status.code, 3);
    assert!(sandbox.run(&sandbox.request("true")).status.success());
}

#[test]
fn stdout_and_stderr_are_captured() {
    let Some(sandbox) = sandbox() else { return };
    let out = sandbox.run(&sandbox.request("echo to-out; echo to-err >&2"));
    assert_eq!(out.stdout, "to-out\n");
    assert_eq!(out.stderr, "to-err\n");
}

#[test]
fn output_is_streamed_in_arrival_order() {
    let Some(sandbox) = sandbox() else { return };
    let mut events = Vec::new();
    let request = sandbox.request("echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c");
    let status = sandbox
        .runtime()
        .run(&request, &mut |stream, bytes| {
            events.push((stream, String::from_utf8_lossy(bytes).into_owned()));
        })
        .unwrap();
    assert!(status.success());
    assert_eq!(
        events,
        [
            (Stream::Stdout, "a\n".to_owned()),
            (Stream::Stderr, "b\n".to_owned()),
            (Stream::Stdout, "c\n".to_owned()),
        ]
    );
}

#[test]
fn env_and_cwd_are_applied() {
    let Some(sandbox) = sandbox() else { return };
    let mut request = sandbox.request(r#"echo "$GREETING|$PATH|$(pwd)""#);
    request.env = vec!["GREETING=hello".into()];
    request.cwd = "/work/dir".into();
    let out = sandbox.run(&request);
    assert_eq!(
        out.stdout,
        "hello|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/work/dir\n"
    );
}

#[test]
fn named_user_is_resolved_from_the_rootfs() {
    let Some(sandbox) = sandbox() else { return };
    let mut request = sandbox.request("id -u; id -g; id -G");
    request.user = "builder".into();
    let out = sandbox.run(&request);
    assert_eq!(out.stdout, "1500\n1600\n1600 1700\n", "{}", out.stderr);

    request.user = "ghost".into();
    let err = sandbox.try_run(&request).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("unable to find user `ghost` in `"),
        "{err}"
    );
}

#[test]
fn hostname_hosts_and_resolv_conf_are_visible_but_not_left_in_the_rootfs() {
    let Some(sandbox) = sandbox() else { return };
    let mut request = sandbox.request(
        "hostname; cat /etc/hostname; grep db /etc/hosts; grep -c . /etc/resolv.conf >/dev/null && echo resolv-ok",
    );
    request.hostname = "builder-host".into();
    request.extra_hosts = vec![("db".into(), "10.0.0.2".into())];
    let out = sandbox.run(&request);
    assert_eq!(
        out.stdout, "builder-host\nbuilder-host\n10.0.0.2\tdb\nresolv-ok\n",
        "{}",
        out.stderr
    );
    for name in ["hosts", "resolv.conf", "hostname"] {
        let path = sandbox.rootfs.path().join("etc").join(name);
        assert!(!path.exists(), "{} leaked into the rootfs", path.display());
    }
}

#[test]
fn network_none_has_only_loopback() {
    let Some(sandbox) = sandbox() else { return };
    let mut request = sandbox.request("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    request.network = Network::None;
    assert_eq!(sandbox.run(&request).stdout, "lo\n");
}

#[test]
fn host_network_sees_the_host_interfaces() {
    let Some(sandbox) = sandbox() else { return };
    let interfaces = |dev: &str| {
        let mut names: Vec<String> = dev
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_owned())
            .collect();
        names.sort();
        names
    };
    let host = std::fs::read_to_string("/proc/net/dev").unwrap();
    let out = sandbox.run(&sandbox.request("cat /proc/net/dev"));
    assert_eq!(interfaces(&out.stdout), interfaces(&host));
}

#[test]
fn bind_mounts_are_read_only_when_asked_and_tmpfs_is_private() {
    let Some(sandbox) = sandbox() else { return };
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("input"), "from-host").unwrap();
    let mut request = sandbox.request(
        "cat /ctx/input; echo; touch /ctx/new 2>/dev/null && echo writable || echo read-only; \
         echo scratch > /scratch/file && cat /scratch/file",
    );
    request.mounts = vec![
        Mount {
            destination: "/ctx".into(),
            kind: MountKind::Bind {
                source: host.path().into(),
                readonly: true,
            },
        },
        Mount {
            destination: "/scratch".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
            },
        },
    ];
    let out = sandbox.run(&request);
    assert_eq!(
        out.stdout, "from-host\nread-only\nscratch\n",
        "{}",
        out.stderr
    );
    assert!(!host.path().join("new").exists());
    // The mount points were stubs created for the run and are gone again.
    assert!(!sandbox.rootfs.path().join("ctx").exists());
    assert!(!sandbox.rootfs.path().join("scratch").exists());
}

#[test]
fn writable_bind_mount_changes_reach_the_host() {
    let Some(sandbox) = sandbox() else { return };
    let host = tempfile::tempdir().unwrap();
    let mut request = sandbox.request("echo cached > /cache/entry");
    request.mounts = vec![Mount {
        destination: "/cache".into(),
        kind: MountKind::Bind {
            source: host.path().into(),
            readonly: false,
        },
    }];
    assert!(sandbox.run(&request).status.success());
    assert_eq!(
        std::fs::read_to_string(host.path().join("entry")).unwrap(),
        "cached\n"
    );
}

#[test]
fn writes_to_the_rootfs_persist() {
    let Some(sandbox) = sandbox() else { return };
    let out = sandbox.run(&sandbox.request("mkdir -p /opt/app && echo built > /opt/app/out"));
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(sandbox.rootfs.path().join("opt/app/out")).unwrap(),
        "built\n"
    );
}

#[test]
fn readonly_rootfs_refuses_writes() {
    let Some(sandbox) = sandbox() else { return };
    let mut request =
        sandbox.request("touch /bin/new 2>/dev/null && echo writable || echo read-only");
    request.readonly_rootfs = true;
    assert_eq!(sandbox.run(&request).stdout, "read-only\n");
}

#[test]
fn missing_command_is_a_runtime_error() {
    let Some(sandbox) = sandbox() else { return };
    let request = ExecRequest::new(sandbox.rootfs.path(), vec!["/no/such/binary".into()]);
    let err = sandbox.try_run(&request).err().unwrap();
    assert!(matches!(err, Error::Runtime { .. }), "{err:?}");
    assert!(err.to_string().contains("/no/such/binary"), "{err}");
    // Cleanup ran although the container never started: no state, no bundle left.
    let runtime_state = sandbox.state.path().join("runtime");
    let containers = std::fs::read_dir(&runtime_state).map_or(0, |d| d.count());
    assert_eq!(
        containers,
        0,
        "container state left in {}",
        runtime_state.display()
    );
    let bundles = std::fs::read_dir(sandbox.state.path().join("bundles"))
        .unwrap()
        .count();
    assert_eq!(bundles, 0);
}

#[test]
fn parallel_runs_both_succeed() {
    let (Some(first), Some(second)) = (sandbox(), sandbox()) else {
        return;
    };
    let outputs = std::thread::scope(|scope| {
        let handles = [&first, &second].map(|sandbox| {
            scope.spawn(move || sandbox.run(&sandbox.request("sleep 0.2; echo done; exit 4")))
        });
        handles.map(|h| h.join().unwrap())
    });
    for out in outputs {
        assert_eq!(
            (out.status.code, out.stdout.as_str()),
            (4, "done\n"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn crun_runs_or_reports_hybrid_cgroups() {
    let Some(sandbox) = sandbox_with("crun") else {
        return;
    };
    match sandbox.try_run(&sandbox.request("echo from-crun; exit 5")) {
        Ok(out) => {
            assert_eq!((out.status.code, out.stdout.as_str()), (5, "from-crun\n"));
        }
        Err(Error::HybridCgroups { message, .. }) => {
            crate::support::skip(&format!(
                "skipping crun test: the host refuses it: {message}"
            ));
        }
        Err(other) => panic!("crun failed unexpectedly: {other:?}"),
    }
}
