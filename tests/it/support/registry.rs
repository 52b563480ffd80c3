//! A throwaway registry on 127.0.0.1: Debian's `docker-registry` on a free port with its
//! storage in a temp dir, optionally behind htpasswd basic auth. Killed on drop.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::find_in_path;

/// A running registry.
pub(crate) struct TestRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) host: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts an open registry, or returns `None` (after saying why) when the tool is missing.
    pub(crate) fn start() -> Option<Self> {
        Self::launch(None)
    }

    /// Starts a registry that accepts only `user`/`password` (bcrypt htpasswd).
    pub(crate) fn start_with_auth(user: &str, password: &str) -> Option<Self> {
        Self::launch(Some((user, password)))
    }

    #[expect(clippy::print_stderr, reason = "a skipped test says why")]
    fn launch(auth: Option<(&str, &str)>) -> Option<Self> {
        let Some(binary) = find_in_path("docker-registry") else {
            eprintln!(
                "skipped: `docker-registry` is not installed (apt-get install docker-registry)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        if let Some((user, password)) = auth {
            if find_in_path("htpasswd").is_none() {
                eprintln!("skipped: `htpasswd` is not installed (apt-get install apache2-utils)");
                return None;
            }
            let htpasswd = dir.path().join("htpasswd");
            let output = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .unwrap();
            assert!(output.status.success(), "htpasswd failed");
            std::fs::write(&htpasswd, &output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: bake-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(dir.path().join("registry.err")).unwrap())
            .spawn()
            .unwrap();
        let registry = Self {
            child,
            host,
            log,
            _dir: dir,
        };
        registry.wait_ready();
        Some(registry)
    }

    /// Waits until `/v2/` answers (200, or 401 behind auth).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(&self.host) {
                let request = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.host
                );
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && (answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 401"))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("registry on {} did not start: {}", self.host, self.log());
    }

    /// Returns the registry's log so far (access lines and errors).
    pub(crate) fn log(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let errors = self.log.with_file_name("registry.err");
        text.push_str(&std::fs::read_to_string(errors).unwrap_or_default());
        text
    }

    /// Counts logged requests whose line contains `needle` (e.g. `"GET /v2/app/blobs/`).
    pub(crate) fn count_requests(&self, needle: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The manifest or index `docker://reference` holds in a test registry (plain HTTP), read
/// with skopeo, which must be installed.
pub(crate) fn raw_manifest(reference: &str) -> serde_json::Value {
    raw_image(&format!("docker://{reference}"))
}

/// The manifest or index of any skopeo image reference (`oci:/layout:tag`,
/// `docker://...` over plain HTTP), read with `skopeo inspect --raw`.
pub(crate) fn raw_image(reference: &str) -> serde_json::Value {
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", reference])
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    serde_json::from_slice(&raw.stdout).unwrap()
}
