//! Registry failures name their cause: a push or a pull against a port nothing listens on
//! says the connection was refused, not only which operation failed.

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use crate::support;

/// Returns `127.0.0.1:PORT` for a port that was free a moment ago and is closed now.
fn closed_host() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("127.0.0.1:{port}")
}

fn build(dir: &Path, dockerfile: &str, output: &str) -> Output {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.join("a"), "a\n").unwrap();
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!("target \"default\" {{\n  output = [\"{output}\"]\n}}\n"),
    )
    .unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        dir.join("state").display().to_string(),
        "--progress=plain".into(),
    ];
    support::bake(dir, &args, &[], None)
}

fn assert_refused(output: &Output, operation: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(operation), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "the cause is named: {stderr}"
    );
}

#[test]
fn push_to_a_closed_port_names_the_connection_error() {
    let scratch = tempfile::tempdir().unwrap();
    let host = closed_host();
    let output = build(
        scratch.path(),
        "FROM scratch\nCOPY a /a\n",
        &format!("type=image,name={host}/api:1,push=true"),
    );
    assert_refused(&output, &format!("failed to push `{host}/api:1`"));
}

#[test]
fn pull_from_a_closed_port_names_the_connection_error() {
    let scratch = tempfile::tempdir().unwrap();
    let host = closed_host();
    let output = build(
        scratch.path(),
        &format!("FROM {host}/x\nCOPY a /a\n"),
        "type=cacheonly",
    );
    assert_refused(&output, &format!("failed to pull `{host}/x:latest`"));
}
