//! `--load` (a `docker` output without `dest`): the `docker load` tarball streamed into the
//! Docker engine on `DOCKER_HOST` (default `/var/run/docker.sock`) through its
//! `POST /images/load` API. Part of `exporter`.
//!
//! With no engine there, the export fails with a message naming the file outputs that work
//! without one: bake never needs a daemon to build, only to hand an image to Docker.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::buildflags::ExportEntry;
use crate::exporter::error::{Error, Result};
use crate::exporter::output::{BuildOutput, ExportContext, ExportResponse};

/// The engine address Docker uses when `DOCKER_HOST` is unset.
const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// Loads `output` into the Docker engine, or explains why it cannot.
pub(crate) fn export(
    store: &crate::content::Store,
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
) -> Result<ExportResponse> {
    let address = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| DEFAULT_SOCKET.to_owned());
    let unreachable = || Error::NoDockerEngine {
        socket: address.clone(),
    };
    // Ping first, so a missing engine fails before any image work is done.
    let mut ping = connect(&address).ok_or_else(unreachable)?;
    let answered = ping
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .and_then(|()| status_line(&mut ping))
        .is_ok_and(|status| status == 200);
    if !answered {
        return Err(unreachable());
    }
    let io_error = |source| Error::Io {
        action: "load the image into the Docker engine at",
        path: address.clone().into(),
        source,
    };
    let mut stream = connect(&address).ok_or_else(unreachable)?;
    stream
        .write_all(
            b"POST /images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\n\
              Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\
              Connection: close\r\n\r\n",
        )
        .map_err(io_error)?;
    let response = {
        let mut body = Chunked(&mut stream);
        let response = crate::exporter::docker::export(store, entry, output, context, &mut body)?;
        body.finish().map_err(io_error)?;
        response
    };
    let status = status_line(&mut stream).map_err(io_error)?;
    if status != 200 {
        return Err(io_error(io::Error::other(format!(
            "the engine answered HTTP {status}"
        ))));
    }
    Ok(response)
}

/// Connects to `unix:///path` or `tcp://host:port`; `None` when nothing listens.
fn connect(address: &str) -> Option<Box<dyn Stream>> {
    if let Some(path) = address.strip_prefix("unix://") {
        let stream = UnixStream::connect(path).ok()?;
        return Some(Box::new(stream));
    }
    let host = address.strip_prefix("tcp://")?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .ok()?
        .next()?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    Some(Box::new(stream))
}

/// Reads an HTTP status line and returns the status code.
fn status_line(stream: &mut dyn Stream) -> io::Result<u16> {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected answer `{}`", line.trim())))
}

/// A writer that frames what it is given as HTTP/1.1 chunks.
struct Chunked<'a>(&'a mut Box<dyn Stream>);

impl Chunked<'_> {
    fn finish(self) -> io::Result<()> {
        self.0.write_all(b"0\r\n\r\n")?;
        self.0.flush()
    }
}

impl Write for Chunked<'_> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        write!(self.0, "{:x}\r\n", buffer.len())?;
        self.0.write_all(buffer)?;
        self.0.write_all(b"\r\n")?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_framed_in_hex() {
        let (mut left, right) = UnixStream::pair().expect("pair");
        let mut boxed: Box<dyn Stream> = Box::new(right);
        let mut chunked = Chunked(&mut boxed);
        chunked.write_all(&[b'x'; 26]).expect("write");
        chunked.finish().expect("finish");
        drop(boxed);
        let mut framed = String::new();
        left.read_to_string(&mut framed).expect("read");
        assert_eq!(framed, format!("1a\r\n{}\r\n0\r\n\r\n", "x".repeat(26)));
    }

    #[test]
    fn no_engine_names_the_file_alternatives() {
        let error = Error::NoDockerEngine {
            socket: "unix:///nonexistent.sock".to_owned(),
        }
        .to_string();
        assert!(error.contains("type=docker,dest=img.tar"), "{error}");
        assert!(error.contains("type=oci"), "{error}");
        assert!(connect("unix:///nonexistent/docker.sock").is_none());
    }
}
