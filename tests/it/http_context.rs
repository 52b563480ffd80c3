//! Files over HTTP as build inputs, through the `bake` binary against an in-process HTTP
//! server on 127.0.0.1: tarball contexts (gzip and zstd, told by content), a plain-text URL
//! as the Dockerfile, and `ADD <url>` with `--checksum`, revalidation (an unchanged URL is
//! CACHED after a `304`, a changed one rebuilds) and a refused wrong checksum.

use std::path::Path;
use std::process::Output;

use sha2::Digest as _;

use crate::support::{self, http::HttpServer};

fn bake(dir: &Path, root: &Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--progress=rawjson".into(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    support::bake(
        dir,
        &all,
        &[("BASE".to_owned(), support::busybox_base())],
        None,
    )
}

fn ok(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "bake failed:\n{stderr}");
    stderr
}

/// A tar archive of `files`.
fn tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn project(scratch: &Path, bake_file: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (dir, root) = (scratch.join("project"), scratch.join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-bake.hcl"), bake_file).unwrap();
    (dir, root)
}

#[test]
fn tarball_contexts_and_a_dockerfile_url_build() {
    if !support::can_build() {
        return;
    }
    let server = HttpServer::start();
    let archive = tar(&[
        ("Dockerfile", "FROM base\nCOPY msg /msg\n"),
        ("msg", "from a tarball\n"),
    ]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzip, &archive).unwrap();
    // No extension in the names: the compression is told by content.
    server.put("/context-gzip", &gzip.finish().unwrap());
    server.put(
        "/context-zstd",
        &zstd::stream::encode_all(archive.as_slice(), 3).unwrap(),
    );
    server.put("/Dockerfile.txt", b"FROM base\nRUN echo plain > /plain\n");
    let scratch = tempfile::tempdir().unwrap();
    let (dir, root) = project(
        scratch.path(),
        &format!(
            r#"variable "BASE" {{}}
target "gzip" {{
  context  = "{gzip}"
  contexts = {{ base = BASE }}
  output   = ["type=local,dest=out-gzip"]
}}
target "zstd" {{
  context  = "{zstd}"
  contexts = {{ base = BASE }}
  output   = ["type=local,dest=out-zstd"]
}}
target "plain" {{
  context  = "{plain}"
  contexts = {{ base = BASE }}
  output   = ["type=local,dest=out-plain"]
}}
"#,
            gzip = server.url("/context-gzip"),
            zstd = server.url("/context-zstd"),
            plain = server.url("/Dockerfile.txt"),
        ),
    );
    ok(&bake(&dir, &root, &["gzip", "zstd", "plain"]));
    for out in ["out-gzip", "out-zstd"] {
        assert_eq!(
            std::fs::read_to_string(dir.join(out).join("msg")).unwrap(),
            "from a tarball\n",
            "{out}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("out-plain/plain")).unwrap(),
        "plain\n"
    );
}

#[test]
fn add_of_a_url_checks_its_checksum_and_revalidates() {
    if !support::can_build() {
        return;
    }
    let server = HttpServer::start();
    server.put("/tool.txt", b"tool v1\n");
    server.put("/data.txt", b"data v1\n");
    server.put_with_disposition("/", b"named by the server\n", Some("report.txt"));
    let checksum = format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"tool v1\n")));
    let scratch = tempfile::tempdir().unwrap();
    let (dir, root) = project(
        scratch.path(),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output   = [\"type=local,dest=out\"]\n}\n",
    );
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM base\nADD --checksum={checksum} --chmod=755 {tool} /tool\nADD {data} /data/\nADD {download} /downloads/\n",
            tool = server.url("/tool.txt"),
            data = server.url("/data.txt"),
            download = server.url("/"),
        ),
    )
    .unwrap();
    ok(&bake(&dir, &root, &[]));
    let out = dir.join("out");
    assert_eq!(
        std::fs::read_to_string(out.join("tool")).unwrap(),
        "tool v1\n"
    );
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(out.join("tool")).unwrap().permissions()
        ) & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_to_string(out.join("data/data.txt")).unwrap(),
        "data v1\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("downloads/report.txt")).unwrap(),
        "named by the server\n",
        "a URL without a file name is named by Content-Disposition"
    );
    let mtime = std::fs::metadata(out.join("data/data.txt"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (1_700_000_000..1_700_003_600).contains(&mtime),
        "mtime from Last-Modified, got {mtime}"
    );

    // Unchanged: one conditional request each, answered 304, and every step CACHED.
    let again = ok(&bake(&dir, &root, &[]));
    assert_eq!(support::step_counts(&again).1, 0, "{again}");
    assert_eq!(server.count("/data.txt", 200), 1);
    assert!(server.count("/data.txt", 304) >= 1);

    // Changed: downloaded again, and the steps from that ADD on run again.
    server.put("/data.txt", b"data v2\n");
    let changed = ok(&bake(&dir, &root, &[]));
    assert!(support::step_counts(&changed).1 > 0, "{changed}");
    assert_eq!(
        std::fs::read_to_string(out.join("data/data.txt")).unwrap(),
        "data v2\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("tool")).unwrap(),
        "tool v1\n"
    );
}

#[test]
fn a_wrong_checksum_is_refused_naming_both_digests() {
    let server = HttpServer::start();
    server.put("/tool.txt", b"tool v1\n");
    let actual = format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"tool v1\n")));
    let wrong = format!("sha256:{}", "0".repeat(64));
    let scratch = tempfile::tempdir().unwrap();
    let (dir, root) = project(
        scratch.path(),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output   = [\"type=local,dest=out\"]\n}\n",
    );
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM base\nADD --checksum={wrong} {} /tool\n",
            server.url("/tool.txt")
        ),
    )
    .unwrap();
    let output = bake(&dir, &root, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&wrong) && stderr.contains(&actual),
        "both digests named:\n{stderr}"
    );
    assert!(!dir.join("out").exists(), "nothing is exported");
    // A 404 names the URL and the status.
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM base\nADD {} /x\n", server.url("/missing")),
    )
    .unwrap();
    let output = bake(&dir, &root, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&server.url("/missing")) && stderr.contains("404"),
        "{stderr}"
    );
}

/// Runs `bake` in `dir` with `stdin` piped in as bytes.
fn bake_with_stdin(dir: &Path, root: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bake"))
        .arg("--root")
        .arg(root)
        .arg("--progress=plain")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_context_of_dash_is_a_tarball_or_a_dockerfile_on_stdin() {
    let scratch = tempfile::tempdir().unwrap();
    let (dir, root) = project(
        scratch.path(),
        "target \"default\" {\n  context = \"-\"\n  output = [\"type=local,dest=out\"]\n}\n",
    );
    // A gzipped tarball holding the Dockerfile and what it copies.
    let archive = tar(&[
        ("Dockerfile", "FROM scratch\nCOPY hello /hello\n"),
        ("hello", "from stdin\n"),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &archive).unwrap();
    let output = bake_with_stdin(&dir, &root, &[], &gz.finish().unwrap());
    ok(&output);
    assert_eq!(
        std::fs::read_to_string(dir.join("out/hello")).unwrap(),
        "from stdin\n"
    );

    // Text that is no archive is the Dockerfile, with an empty context.
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let output = bake_with_stdin(&dir, &root, &[], b"FROM scratch\nWORKDIR /made\n");
    ok(&output);
    assert!(dir.join("out/made").is_dir());

    // stdin cannot hold both the bake file and the context.
    let output = bake_with_stdin(
        &dir,
        &root,
        &["-f", "-"],
        b"target \"default\" {\n  context = \"-\"\n}\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reads its context from stdin"), "{stderr}");
}
