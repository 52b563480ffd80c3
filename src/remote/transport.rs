//! Byte streams to a BuildKit: a unix or TCP socket (TLS optional) for a buildkitd, or the
//! Docker engine's API socket upgraded to raw HTTP/2 on `POST /grpc` and `POST /session`.
//! Part of `remote`.
//!
//! gRPC needs an HTTP/2 connection; for the engine it is the upgraded HTTP/1.1 connection
//! itself, so tonic gets a connector that performs the upgrade and hands over the stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf,
};
use tonic::transport::{Channel, Endpoint};

use crate::remote::builder::{Address, Driver, Node, Tls};
use crate::remote::error::{Error, Result};

/// Boxed errors as tonic's connector wants them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connected, bidirectional byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A boxed [`Io`], so plain, TLS and upgraded connections share one type.
pub(crate) struct Stream(Box<dyn Io>);

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// How to open a connection to one node.
#[derive(Clone)]
pub(crate) struct Dialer {
    driver: Driver,
    address: Address,
    tls: Option<(Arc<tokio_rustls::rustls::ClientConfig>, String)>,
}

impl Dialer {
    /// Prepares the dialer for `node` (reads its TLS files).
    pub(crate) fn new(builder: &str, driver: Driver, node: &Node) -> Result<Self> {
        let tls = match &node.tls {
            Some(tls) => Some(tls_config(builder, &node.address, tls)?),
            None => None,
        };
        Ok(Self {
            driver,
            address: node.address.clone(),
            tls,
        })
    }

    /// The node's address, for messages.
    pub(crate) fn address(&self) -> String {
        self.address.to_string()
    }

    async fn socket(&self) -> std::io::Result<Stream> {
        Ok(match &self.address {
            Address::Unix(path) => Stream(Box::new(tokio::net::UnixStream::connect(path).await?)),
            Address::Tcp(host) => {
                let tcp = tokio::net::TcpStream::connect(host).await?;
                tcp.set_nodelay(true)?;
                match &self.tls {
                    Some((config, name)) => {
                        let name =
                            tokio_rustls::rustls::pki_types::ServerName::try_from(name.clone())
                                .map_err(std::io::Error::other)?;
                        let connector = tokio_rustls::TlsConnector::from(config.clone());
                        Stream(Box::new(connector.connect(name, tcp).await?))
                    }
                    None => Stream(Box::new(tcp)),
                }
            }
        })
    }

    /// A connection speaking HTTP/2 to the control API.
    pub(crate) async fn grpc(&self) -> std::io::Result<Stream> {
        let mut stream = self.socket().await?;
        if self.driver == Driver::Docker {
            upgrade(&mut stream, "/grpc", &[]).await?;
        }
        Ok(stream)
    }

    /// The engine's `/session` connection (docker driver only), upgraded with the session's
    /// headers: after it, the engine is the HTTP/2 client and bake serves.
    pub(crate) async fn session(&self, headers: &[(String, String)]) -> std::io::Result<Stream> {
        let mut stream = self.socket().await?;
        upgrade(&mut stream, "/session", headers).await?;
        Ok(stream)
    }

    /// Whether sessions go over the engine's `/session` endpoint rather than the control
    /// API's `Session` stream.
    pub(crate) fn engine_session(&self) -> bool {
        self.driver == Driver::Docker
    }

    /// A gRPC channel over one connection from [`Dialer::grpc`].
    pub(crate) async fn channel(&self, builder: &str) -> Result<Channel> {
        let dialer = self.clone();
        let connector = tower::service_fn(move |_: http::Uri| {
            let dialer = dialer.clone();
            async move { Ok::<_, BoxError>(TokioIo::new(dialer.grpc().await?)) }
        });
        // The URI only fills the `:authority` header: the connector decides where to go.
        Endpoint::from_static("http://buildkit")
            .connect_with_connector(connector)
            .await
            .map_err(|source| Error::Connect {
                builder: builder.to_owned(),
                address: self.address(),
                source: Box::new(source),
            })
    }
}

/// Sends `method path` to the engine's API and copies the answer's body into `body`
/// (chunked or not); returns the status. Used for the image endpoints the control API lacks.
pub(crate) async fn engine_request(
    dialer: &Dialer,
    method: &str,
    path: &str,
    body: &mut (dyn AsyncWrite + Send + Unpin),
) -> std::io::Result<u16> {
    engine_call(dialer, method, path, None, body).await
}

/// Removes the engine image `name`; a failure leaves only a tag behind, which is not worth
/// failing a build for, so it is not reported.
pub(crate) async fn remove_image(dialer: &Dialer, name: &str) {
    let _ = engine_request(
        dialer,
        "DELETE",
        &format!("/images/{name}"),
        &mut tokio::io::sink(),
    )
    .await;
}

/// Sends `method path` with `upload` (a tar of `length` bytes) as the request body, copying
/// the answer's body into `body`; returns the status.
pub(crate) async fn engine_upload(
    dialer: &Dialer,
    method: &str,
    path: &str,
    upload: (&mut (dyn AsyncRead + Send + Unpin), u64),
    body: &mut (dyn AsyncWrite + Send + Unpin),
) -> std::io::Result<u16> {
    engine_call(dialer, method, path, Some(upload), body).await
}

async fn engine_call(
    dialer: &Dialer,
    method: &str,
    path: &str,
    upload: Option<(&mut (dyn AsyncRead + Send + Unpin), u64)>,
    body: &mut (dyn AsyncWrite + Send + Unpin),
) -> std::io::Result<u16> {
    let mut stream = dialer.socket().await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    if let Some((_, length)) = &upload {
        request.push_str(&format!(
            "Content-Type: application/x-tar\r\nContent-Length: {length}\r\n"
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    if let Some((reader, length)) = upload {
        let sent = tokio::io::copy(&mut reader.take(length), &mut stream).await?;
        if sent != length {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    stream.flush().await?;
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("unexpected answer `{}`", line.trim())))?;
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            }
        }
    }
    if !chunked {
        match length {
            Some(length) => tokio::io::copy(&mut (&mut reader).take(length), body).await?,
            None => tokio::io::copy(&mut reader, body).await?,
        };
        return Ok(status);
    }
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size `{}`", line.trim())))?;
        if size == 0 {
            break;
        }
        let copied = tokio::io::copy(&mut (&mut reader).take(size), body).await?;
        if copied != size {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.clear();
        reader.read_line(&mut line).await?;
    }
    Ok(status)
}

/// Sends an HTTP/1.1 upgrade to `h2c` on `path` and reads the answer up to the end of its
/// headers (byte by byte, so nothing of the HTTP/2 stream after it is consumed).
// Compat: the Docker client's DialHijack: `Connection: Upgrade`, `Upgrade: h2c`, 101 back.
async fn upgrade(
    stream: &mut Stream,
    path: &str,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::other(
                "the engine's answer has no end of headers",
            ));
        }
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the engine closed the connection on `POST {path}`"),
            ));
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let status = text.split_whitespace().nth(1).unwrap_or_default();
    if status != "101" {
        let first = text.lines().next().unwrap_or_default();
        return Err(std::io::Error::other(format!(
            "the engine answered `{first}` to `POST {path}` (an engine without BuildKit support?)"
        )));
    }
    Ok(())
}

/// The rustls client configuration of a TLS node, and the name its certificate must carry.
fn tls_config(
    builder: &str,
    address: &Address,
    tls: &Tls,
) -> Result<(Arc<tokio_rustls::rustls::ClientConfig>, String)> {
    use tokio_rustls::rustls;
    let fail = |what: &str, source: BoxError| Error::Tls {
        builder: builder.to_owned(),
        what: what.to_owned(),
        source,
    };
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| fail(&format!("{what} = {}", path.display()), e.into()))
    };
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca {
        Some(path) => {
            let pem = read("cacert", path)?;
            for cert in rustls_pki_types_pem_certs(&pem) {
                roots
                    .add(cert)
                    .map_err(|e| fail(&format!("cacert = {}", path.display()), e.into()))?;
            }
            if roots.is_empty() {
                return Err(fail(
                    &format!("cacert = {}", path.display()),
                    "no PEM certificate in the file".into(),
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("protocol versions", e.into()))?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = rustls_pki_types_pem_certs(&read("cert", cert)?);
            let key_pem = read("key", key)?;
            let key = rustls_pki_types_pem_key(&key_pem).ok_or_else(|| {
                fail(
                    &format!("key = {}", key.display()),
                    "no PEM private key in the file".into(),
                )
            })?;
            builder_config
                .with_client_auth_cert(chain, key)
                .map_err(|e| fail("cert", e.into()))?
        }
        (None, None) => builder_config.with_no_client_auth(),
        _ => {
            return Err(fail(
                "cert",
                "`cert` and `key` must be given together".into(),
            ));
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = match (&tls.server_name, address) {
        (Some(name), _) => name.clone(),
        (None, Address::Tcp(host)) => host
            .rsplit_once(':')
            .map_or(host.as_str(), |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        (None, Address::Unix(_)) => "localhost".to_owned(),
    };
    Ok((Arc::new(config), name))
}

fn rustls_pki_types_pem_certs(
    pem: &[u8],
) -> Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(std::result::Result::ok)
        .collect()
}

fn rustls_pki_types_pem_key(
    pem: &[u8],
) -> Option<tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>> {
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    PrivateKeyDer::from_pem_slice(pem).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upgrade_reads_exactly_the_answer_headers() {
        let (client, mut server) = tokio::io::duplex(4096);
        let mut stream = Stream(Box::new(client));
        let serve = tokio::spawn(async move {
            let mut buffer = vec![0u8; 1024];
            let n = server.read(&mut buffer).await.unwrap();
            let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
            server
                .write_all(b"HTTP/1.1 101 UPGRADED\r\nUpgrade: h2c\r\n\r\nPRI")
                .await
                .unwrap();
            request
        });
        upgrade(
            &mut stream,
            "/session",
            &[("X-Docker-Expose-Session-Uuid".into(), "abc".into())],
        )
        .await
        .unwrap();
        let request = serve.await.unwrap();
        assert!(
            request.starts_with("POST /session HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Upgrade: h2c\r\n"));
        assert!(request.contains("X-Docker-Expose-Session-Uuid: abc\r\n"));
        let mut rest = [0u8; 3];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"PRI");
    }

    /// Serves `answer` once on a unix socket in `dir`, and returns a dialer for it.
    fn serving(dir: &std::path::Path, answer: &'static [u8]) -> Dialer {
        let path = dir.join("engine.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            socket.write_all(answer).await.unwrap();
        });
        let node = Node {
            name: "n".into(),
            address: Address::Unix(path),
            platforms: Vec::new(),
            tls: None,
        };
        Dialer::new("b", Driver::Docker, &node).unwrap()
    }

    #[tokio::test]
    async fn engine_answers_are_read_chunked_or_by_length() {
        let dir = tempfile::tempdir().unwrap();
        let chunked = serving(
            dir.path(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
        );
        let mut body = Vec::new();
        let status = engine_request(&chunked, "GET", "/images/x/get", &mut body)
            .await
            .unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"hello world"[..]));
        let other = tempfile::tempdir().unwrap();
        let sized = serving(
            other.path(),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnopeEXTRA",
        );
        let mut body = Vec::new();
        let status = engine_request(&sized, "DELETE", "/images/x", &mut body)
            .await
            .unwrap();
        assert_eq!((status, body.as_slice()), (404, &b"nope"[..]));
    }

    #[tokio::test]
    async fn upgrade_refused_names_the_answer() {
        let (client, mut server) = tokio::io::duplex(4096);
        let mut stream = Stream(Box::new(client));
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 1024];
            let _ = server.read(&mut buffer).await;
            let _ = server.write_all(b"HTTP/1.1 404 Not Found\r\n\r\n").await;
        });
        let error = upgrade(&mut stream, "/grpc", &[]).await.unwrap_err();
        assert!(error.to_string().contains("404 Not Found"), "{error}");
    }
}
