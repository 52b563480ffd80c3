//! A small HTTP/1.1 file server on 127.0.0.1, in process: it serves byte strings by path with
//! an `ETag` and `Last-Modified`, answers `If-None-Match` with `304`, and counts what it
//! answered, so tests can tell a revalidation from a download. Stopped on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One file the server holds.
#[derive(Clone)]
struct File {
    body: Vec<u8>,
    etag: String,
    last_modified: String,
    disposition: Option<String>,
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, File>,
    /// Every answer, as `(path, status)`.
    log: Vec<(String, u16)>,
    version: u32,
}

/// A running server.
pub(crate) struct HttpServer {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    address: std::net::SocketAddr,
}

impl HttpServer {
    /// Starts a server with no files.
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let state = thread_state.clone();
                    std::thread::spawn(move || serve(stream, &state));
                }
            }
        });
        Self {
            base: format!("http://{address}"),
            state,
            stop,
            address,
        }
    }

    /// Serves `body` at `path` (replacing what was there: a new ETag and Last-Modified).
    pub(crate) fn put(&self, path: &str, body: &[u8]) {
        self.put_with_disposition(path, body, None);
    }

    /// Serves `body` at `path` with a `Content-Disposition: attachment; filename=...`.
    pub(crate) fn put_with_disposition(&self, path: &str, body: &[u8], filename: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        let version = state.version;
        state.files.insert(
            path.to_owned(),
            File {
                body: body.to_vec(),
                etag: format!("\"v{version}\""),
                // 2023-11-14 22:13:20 UTC plus a minute per version.
                last_modified: format!("Tue, 14 Nov 2023 22:{:02}:20 GMT", 13 + version % 40),
                disposition: filename.map(|f| format!("attachment; filename=\"{f}\"")),
            },
        );
    }

    /// The URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// How many times `path` was answered with `status`.
    pub(crate) fn count(&self, path: &str, status: u16) -> usize {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|(p, s)| p == path && *s == status)
            .count()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let file = state.lock().unwrap().files.get(&path).cloned();
    let (status, head, body) = match file {
        None => (404, String::new(), b"not found".to_vec()),
        Some(file) if headers.get("if-none-match") == Some(&file.etag) => {
            (304, format!("ETag: {}\r\n", file.etag), Vec::new())
        }
        Some(file) => {
            let mut head = format!(
                "ETag: {}\r\nLast-Modified: {}\r\n",
                file.etag, file.last_modified
            );
            if let Some(disposition) = &file.disposition {
                head.push_str(&format!("Content-Disposition: {disposition}\r\n"));
            }
            (200, head, file.body)
        }
    };
    state.lock().unwrap().log.push((path, status));
    let reason = match status {
        200 => "OK",
        304 => "Not Modified",
        _ => "Not Found",
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
        if status == 304 { 0 } else { body.len() }
    );
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}
