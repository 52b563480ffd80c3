//! A throwaway `git daemon` on 127.0.0.1 serving the repositories under a temp directory, and
//! a helper to make commits in them. Killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `git daemon`.
pub(crate) struct GitDaemon {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) host: String,
    /// The directory whose repositories it serves (`git://HOST/<name>`).
    pub(crate) base: PathBuf,
    _dir: tempfile::TempDir,
}

impl GitDaemon {
    /// Starts a daemon over a new empty directory, or returns `None` (after recording why)
    /// when git or its daemon is missing.
    pub(crate) fn start() -> Option<Self> {
        let daemon = Path::new("/usr/lib/git-core/git-daemon");
        if super::find_in_path("git").is_none() || !daemon.is_file() {
            super::skip("skipping: `git` and `git daemon` are needed (Debian package `git`)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("repos");
        std::fs::create_dir_all(&base).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--export-all")
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(&base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "git daemon did not start on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            child,
            host,
            base,
            _dir: dir,
        })
    }

    /// A new repository `name` (branch `main`), served as `git://HOST/name`.
    pub(crate) fn repository(&self, name: &str) -> Repo {
        let dir = self.base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let repo = Repo { dir };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    /// The URL of repository `name`.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("git://{}/{name}", self.host)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A working repository the daemon serves.
pub(crate) struct Repo {
    /// Its working tree.
    pub(crate) dir: PathBuf,
}

impl Repo {
    /// Runs git in the repository and returns its stdout.
    pub(crate) fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(["-c", "user.name=bake", "-c", "user.email=bake@example.com"])
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .env("GIT_COMMITTER_DATE", "1700000000 +0000")
            .env("GIT_AUTHOR_DATE", "1700000000 +0000")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Writes `files` (path, content) and commits them all with `message`.
    pub(crate) fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let path = self.dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }
}
