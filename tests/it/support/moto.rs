//! A throwaway S3 API on 127.0.0.1: `moto_server` (PyPI `moto[server]`) with one bucket,
//! optionally with IAM checks on and one IAM user whose keys the tests sign with. Killed on
//! drop.
//!
//! With IAM checks on, moto rejects signed requests for keys holding `:` (it recomputes the
//! signature over the decoded path), which every blob key has (`blobs/sha256:…`); tests of
//! credentials therefore use manifest keys, and blob tests run with the checks off.
//!
//! `.ci/run` installs moto into a venv at `target/tmp/moto`; elsewhere `moto_server` on
//! `PATH` serves too. Missing moto is a skip, and a failure under `CI=true`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{find_in_path, skip};

/// A running moto server with a bucket and a user allowed `s3:*`.
pub(crate) struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) endpoint: String,
    /// The bucket created at start.
    pub(crate) bucket: String,
    /// The IAM user's access key id.
    pub(crate) access_key_id: String,
    /// The IAM user's secret access key.
    pub(crate) secret_access_key: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Where `moto_server` is: the venv `.ci/run` makes, else `PATH`.
fn moto_binary() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    find_in_path("moto_server")
}

impl Moto {
    /// Starts moto accepting any credentials, or returns `None` after recording the skip
    /// (panics under `CI=true`).
    pub(crate) fn start() -> Option<Self> {
        Self::launch(false)
    }

    /// Starts moto checking every request's signature and IAM policy.
    pub(crate) fn start_with_iam() -> Option<Self> {
        Self::launch(true)
    }

    fn launch(iam: bool) -> Option<Self> {
        let Some(binary) = moto_binary() else {
            let reason = "skipped: `moto_server` is not installed (.ci/run puts it in target/tmp/moto; or pip install 'moto[server]')";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {reason}"
            );
            skip(reason);
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("moto.log");
        // The first four requests (bucket, user, key, policy) run unauthenticated; every
        // later one must be signed by a known key with a policy that allows it.
        let mut command = Command::new(binary);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if iam {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", "4");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(dir.path().join("moto.err")).unwrap())
            .spawn()
            .unwrap();
        let endpoint = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&endpoint).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut moto = Self {
            child,
            endpoint: format!("http://{endpoint}"),
            bucket: "bake-cache".to_owned(),
            access_key_id: "AKIAMOTOMOTOMOTOMOTO".to_owned(),
            secret_access_key: "moto".to_owned(),
            log,
            _dir: dir,
        };
        let (status, _) = moto.request("PUT", &format!("/{}", moto.bucket), "");
        assert_eq!(status, 200, "creating the bucket: {}", moto.log());
        if !iam {
            return Some(moto);
        }
        let iam = |action: &str| format!("Action={action}&UserName=bake&Version=2010-05-08");
        let (status, body) = moto.request("POST", "/", &iam("CreateUser"));
        assert_eq!(status, 200, "{body}");
        let (status, body) = moto.request("POST", "/", &iam("CreateAccessKey"));
        assert_eq!(status, 200, "{body}");
        moto.access_key_id = between(&body, "<AccessKeyId>", "</AccessKeyId>");
        moto.secret_access_key = between(&body, "<SecretAccessKey>", "</SecretAccessKey>");
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        let form = format!(
            "{}&PolicyName=all&PolicyDocument={}",
            iam("PutUserPolicy"),
            form_encode(policy)
        );
        let (status, body) = moto.request("POST", "/", &form);
        assert_eq!(status, 200, "{body}");
        Some(moto)
    }

    /// Sends an unsigned request (only the first four are accepted) and returns the status
    /// and body.
    fn request(&self, method: &str, path: &str, form: &str) -> (u16, String) {
        let host = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).unwrap();
        // IAM's query API needs a service name in the credential scope to route the call.
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0";
        let content_type = if form.is_empty() {
            String::new()
        } else {
            "Content-Type: application/x-www-form-urlencoded\r\n".to_owned()
        };
        let authorization = if path == "/" {
            format!("Authorization: {auth}\r\n")
        } else {
            String::new()
        };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{content_type}{authorization}Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.push_str(
            &std::fs::read_to_string(self.log.with_file_name("moto.err")).unwrap_or_default(),
        );
        text
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).unwrap() + start.len();
    let to = text[from..].find(end).unwrap() + from;
    text[from..to].to_owned()
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
