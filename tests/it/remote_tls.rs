//! The `remote` driver over TCP with TLS: a builder entry in a temporary `BUILDX_CONFIG`
//! with buildx's `cacert`, `cert`, `key` and `servername` driver options, against a
//! TLS-terminating forwarder that checks the client certificate and splices into the
//! engine's `/grpc` upgrade: a buildkitd-like TLS endpoint backed by the engine's BuildKit.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::remote_build::{bake, engine, project, seed_base, stderr};
use crate::remote_output::tool;

/// The name in the server certificate, which is not the address dialled.
const SERVER_NAME: &str = "buildkitd.bake.test";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        stderr(&output)
    );
}

/// Makes `NAME.key` and `NAME.pem`: a CA when `ca` is `None`, else a leaf it signs with
/// `extension` (an `openssl x509 -extfile` line).
fn certificate(dir: &Path, name: &str, ca: Option<&str>, extension: &str) {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    openssl(dir, &["genrsa", "-out", &key, "2048"]);
    let subject = format!("/CN={name}");
    match ca {
        None => openssl(
            dir,
            &[
                "req", "-x509", "-new", "-key", &key, "-subj", &subject, "-days", "2", "-out", &pem,
            ],
        ),
        Some(ca) => {
            let csr = format!("{name}.csr");
            let ext = format!("{name}.ext");
            std::fs::write(dir.join(&ext), extension).unwrap();
            openssl(
                dir,
                &["req", "-new", "-key", &key, "-subj", &subject, "-out", &csr],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &format!("{ca}.pem"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                    "-out",
                    &pem,
                ],
            );
        }
    }
}

fn read_certs(path: &Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Serves TLS on 127.0.0.1 (server certificate `server`, client certificates signed by `ca`
/// required) and forwards each connection to the engine's `/grpc`; returns the port.
fn tls_forwarder(dir: &Path) -> u16 {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(&dir.join("ca.pem")) {
        roots.add(cert).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            read_certs(&dir.join("server.pem")),
            PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client without a certificate the CA signed fails the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut engine) = upgraded_engine().await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut engine).await;
                });
            }
        });
    });
    port
}

/// A connection to the engine's `/grpc`, upgraded, with nothing past the answer's headers
/// read.
async fn upgraded_engine() -> std::io::Result<tokio::net::UnixStream> {
    let mut engine = tokio::net::UnixStream::connect("/var/run/docker.sock").await?;
    engine
        .write_all(
            b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
        )
        .await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(engine.read_u8().await?);
    }
    Ok(engine)
}

/// A buildx store whose instance `tls` is a `remote` builder on `port` with `options`.
fn tls_store(port: u16, options: &serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("instances")).unwrap();
    let instance = serde_json::json!({
        "Name": "tls",
        "Driver": "remote",
        "Nodes": [{
            "Name": "tls0",
            "Endpoint": format!("tcp://127.0.0.1:{port}"),
            "Platforms": null,
            "Flags": null,
            "DriverOpts": options,
            "Files": null,
        }],
        "Dynamic": false,
    });
    std::fs::write(dir.path().join("instances/tls"), instance.to_string()).unwrap();
    dir
}

#[test]
fn remote_builder_over_tls_with_client_certificate_builds_and_a_wrong_ca_names_the_tls_error() {
    if !engine() || !seed_base() || !tool("openssl") {
        return;
    }
    let _serial = crate::remote_build::serial();
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    certificate(dir, "ca", None, "");
    certificate(
        dir,
        "server",
        Some("ca"),
        &format!("subjectAltName=DNS:{SERVER_NAME}\nextendedKeyUsage=serverAuth\n"),
    );
    certificate(dir, "client", Some("ca"), "extendedKeyUsage=clientAuth\n");
    certificate(dir, "other", None, "");
    let port = tls_forwarder(dir);
    let path = |name: &str| dir.join(name).display().to_string();
    let options = |ca: &str| {
        serde_json::json!({
            "cacert": path(ca),
            "cert": path("client.pem"),
            "key": path("client.key"),
            "servername": SERVER_NAME,
        })
    };

    let config = tls_store(port, &options("ca.pem"));
    let config_dir = config.path().display().to_string();
    let project = project(r#""type=local,dest=out""#);
    let output = bake(
        project.path(),
        &["--builder", "tls", "--progress=plain"],
        &[("BUILDX_CONFIG", &config_dir)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(project.path().join("out/out.txt")).unwrap(),
        "hello from the context\n"
    );

    // The daemon's certificate is not signed by the CA bake is told to trust.
    let config = tls_store(port, &options("other.pem"));
    let config_dir = config.path().display().to_string();
    let output = bake(
        project.path(),
        &["--builder", "tls"],
        &[("BUILDX_CONFIG", &config_dir)],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("cannot reach builder `tls`"), "{text}");
    assert!(
        text.contains("UnknownIssuer"),
        "the TLS error is named: {text}"
    );

    // Without a client certificate the daemon refuses the handshake.
    let config = tls_store(
        port,
        &serde_json::json!({ "cacert": path("ca.pem"), "servername": SERVER_NAME }),
    );
    let config_dir = config.path().display().to_string();
    let output = bake(
        project.path(),
        &["--builder", "tls"],
        &[("BUILDX_CONFIG", &config_dir)],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("builder `tls`"), "{text}");
    // Under TLS 1.3 the daemon checks the client after the handshake, so the refusal shows
    // on the first call: as its `CertificateRequired` alert, a closed connection or a broken
    // pipe, whichever the client sees first. The same forwarder served the build above.
    assert!(text.contains("ListWorkers failed"), "{text}");
}
