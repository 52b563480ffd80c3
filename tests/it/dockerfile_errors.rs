//! Rendered diagnostics for bad Dockerfiles (`fixtures/dockerfile-errors/<case>`), and a
//! fuzz-style test that arbitrary input never panics the front end.

use bake::diag::SourceFile;
use bake::frontend::dockerfile::{ConvertOptions, check, convert, outline, targets};
use bake::platform::Platform;

fn options(dir: &std::path::Path) -> ConvertOptions {
    let linux = || "linux/amd64".parse::<Platform>().expect("valid platform");
    let mut options = ConvertOptions {
        build_platform: Some(linux()),
        target_platform: Some(linux()),
        ..ConvertOptions::default()
    };
    let text = std::fs::read_to_string(dir.join("options")).unwrap_or_default();
    for line in text.lines() {
        if let Some(target) = line.strip_prefix("target=") {
            options.target = Some(target.to_owned());
        }
    }
    options
}

#[test]
fn dockerfile_error_diagnostics() {
    insta::glob!("../../fixtures", "dockerfile-errors/*/Dockerfile", |path| {
        let dir = path.parent().expect("case folder");
        let text = std::fs::read_to_string(path).expect("readable Dockerfile");
        let file = SourceFile::new("Dockerfile", text);
        let error = match convert(&file, &options(dir)) {
            Ok(_) => panic!("{} converted without an error", dir.display()),
            Err(error) => error,
        };
        insta::assert_snapshot!(bake::diag::render(&error));
    });
}

/// A tiny deterministic generator (xorshift), so the test needs no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const TOKENS: &[&str] = &[
    "FROM",
    "from",
    "RUN",
    "COPY",
    "ADD",
    "ARG",
    "ENV",
    "LABEL",
    "ONBUILD",
    "HEALTHCHECK",
    "CMD",
    "SHELL",
    "WORKDIR",
    "EXPOSE",
    "USER",
    "VOLUME",
    "STOPSIGNAL",
    "ENTRYPOINT",
    "MAINTAINER",
    "AS",
    "alpine",
    "scratch",
    "a",
    "--from=a",
    "--from=0",
    "--mount=type=cache,target=/x",
    "--mount=type=secret",
    "--link",
    "--platform=$BUILDPLATFORM",
    "--chmod=755",
    "<<EOF",
    "<<-'E'",
    "EOF",
    "E",
    "\\",
    "`",
    "\n",
    "\n",
    "\n",
    " ",
    " ",
    "\t",
    "#",
    "# escape=`",
    "# check=skip=all",
    "\"",
    "'",
    "[",
    "]",
    "[\"a\"]",
    "$",
    "${",
    "}",
    "${A:-b}",
    "${A#*}",
    "${A/x/y}",
    "${A?}",
    "=",
    "k=v",
    "/",
    ".",
    "80/TCP",
    "1:2",
    "é",
    "\r\n",
    "NONE",
    "--interval=5s",
];

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let linux: Platform = "linux/amd64".parse().expect("valid platform");
    let options = ConvertOptions {
        build_platform: Some(linux.clone()),
        target_platform: Some(linux),
        ..ConvertOptions::default()
    };
    for _ in 0..3000 {
        let length = 1 + rng.next() % 40;
        let text: String = (0..length)
            .map(|_| rng.pick(TOKENS))
            .collect::<Vec<_>>()
            .join(" ");
        let file = SourceFile::new("Dockerfile", text);
        let _ = convert(&file, &options);
        let _ = check(&file, &options);
        let _ = targets(&file);
        let _ = outline(&file, &options);
    }
}
