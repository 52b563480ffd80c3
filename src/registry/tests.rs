//! The bearer-token flow against a minimal in-process registry and token server (Debian's
//! `docker-registry` only does basic auth without a JWT-signing setup; the integration tests
//! in `tests/it/registry.rs` cover the rest against the real one).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::oci::media_types;

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;

/// Serves a manifest for any `/v2/` path, but only with `Bearer tok-1`, and `/token` handing it out.
/// Returns the host and the count of token requests.
fn serve() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    let tokens = Arc::new(AtomicUsize::new(0));
    let counter = tokens.clone();
    let realm = format!("http://{host}/token");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut authorization = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("authorization:") {
                    authorization = value.trim().to_owned();
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let (status, headers, body) = if path.starts_with("/token?") {
                counter.fetch_add(1, Ordering::SeqCst);
                let scoped = path.contains("scope=repository%3Aapp%3Apull");
                if scoped {
                    ("200 OK", String::new(), r#"{"token":"tok-1"}"#.to_owned())
                } else {
                    ("400 Bad Request", String::new(), String::new())
                }
            } else if authorization == "bearer tok-1" {
                (
                    "200 OK",
                    "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n".to_owned(),
                    MANIFEST.to_owned(),
                )
            } else {
                (
                    "401 Unauthorized",
                    format!(
                        "WWW-Authenticate: Bearer realm=\"{realm}\",service=\"test\",scope=\"repository:app:pull\"\r\n"
                    ),
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#.to_owned(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (host, tokens)
}

#[test]
fn bearer_tokens_are_fetched_once_per_scope() {
    let (host, tokens) = serve();
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(ClientOptions {
        docker_config: Some(dir.path().join("config.json")),
        ..ClientOptions::default()
    })
    .expect("client");
    let reference: Reference = format!("{host}/app:latest").parse().expect("reference");
    for _ in 0..2 {
        let resolved = client.resolve(&reference).expect("resolve");
        assert_eq!(resolved.descriptor.media_type, media_types::OCI_MANIFEST);
        assert_eq!(resolved.bytes, MANIFEST.as_bytes());
    }
    assert_eq!(
        tokens.load(Ordering::SeqCst),
        1,
        "the token is cached per scope"
    );
}

#[test]
fn a_pinned_digest_that_does_not_match_is_refused() {
    let (host, _) = serve();
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(ClientOptions {
        docker_config: Some(dir.path().join("config.json")),
        ..ClientOptions::default()
    })
    .expect("client");
    // The server answers every authorised manifest request with the same document.
    let reference: Reference = format!("{host}/app@sha256:{}", "1".repeat(64))
        .parse()
        .expect("reference");
    let error = client.resolve(&reference).expect_err("mismatch");
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error}");
}

#[test]
fn a_transport_error_stays_the_source_of_the_registry_error() {
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
    let error = Error::Connect {
        action: "fetch manifest from",
        host: "127.0.0.1:1".to_owned(),
        source: Box::new(ureq::Error::Io(refused)),
    };
    assert_eq!(
        error.to_string(),
        "failed to fetch manifest from `127.0.0.1:1`"
    );
    let cause = std::error::Error::source(&error).expect("a cause");
    assert!(cause.to_string().contains("connection refused"), "{cause}");
}
