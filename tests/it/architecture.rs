//! Enforces the module boundaries of `ARCHITECTURE.md`: every `crate::<module>` path used in
//! a top-level module must be listed for that module in [`ALLOWED`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which crate modules each top-level module may import, copied from the module tree.
const ALLOWED: &[(&str, &[&str])] = &[
    ("diag", &[]),
    ("digest", &[]),
    ("path", &[]),
    ("platform", &[]),
    ("progress", &[]),
    ("buildflags", &["diag"]),
    ("oci", &["digest", "platform"]),
    ("config", &["diag", "platform"]),
    ("bake", &["diag", "path", "platform", "buildflags"]),
    ("plan", &["bake", "buildflags", "platform", "diag"]),
    ("graph", &["digest", "platform", "oci", "diag"]),
    ("frontend", &["graph", "oci", "platform", "digest", "diag"]),
    ("solver", &["graph", "digest", "progress", "diag"]),
    (
        "ops",
        &[
            "solver", "graph", "executor", "source", "snapshot", "content", "progress", "digest",
            "platform", "path",
        ],
    ),
    ("executor", &["progress", "diag"]),
    (
        "source",
        &[
            "snapshot", "content", "registry", "oci", "platform", "digest", "graph", "path",
        ],
    ),
    ("snapshot", &["content", "digest", "oci"]),
    ("content", &["digest", "oci"]),
    ("registry", &["content", "oci", "digest", "platform"]),
    (
        "cache",
        &[
            "solver",
            "content",
            "registry",
            "snapshot",
            "oci",
            "digest",
            "buildflags",
        ],
    ),
    (
        "exporter",
        &[
            "snapshot",
            "content",
            "registry",
            "oci",
            "buildflags",
            "platform",
            "progress",
            "digest",
        ],
    ),
    (
        "engine",
        &[
            "plan",
            "frontend",
            "graph",
            "solver",
            "ops",
            "source",
            "cache",
            "exporter",
            "config",
            "progress",
            "diag",
            "platform",
            "executor",
            "content",
            "digest",
            "oci",
            "path",
            "registry",
            "buildflags",
        ],
    ),
    (
        "cli",
        &[
            "bake",
            "plan",
            "engine",
            "graph",
            "config",
            "progress",
            "diag",
            "frontend",
            "platform",
            "buildflags",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Returns the top-level module a file under `src/` belongs to (`None` for lib.rs/main.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative
        .components()
        .next()?
        .as_os_str()
        .to_str()?
        .to_owned();
    match first.as_str() {
        "lib.rs" | "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_owned()),
    }
}

fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (index, _) in text.match_indices("crate::") {
        let rest = &text[index + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

#[test]
fn modules_import_only_what_the_architecture_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("super::super::"),
            "{}: use `crate::…` paths instead of `super::super::`",
            file.display()
        );
        let Some(permitted) = allowed.get(module.as_str()) else {
            violations.push(format!("{module}: not in the ALLOWED table"));
            continue;
        };
        for used in crate_paths(&text) {
            if used != module && !permitted.contains(&used.as_str()) {
                violations.push(format!("{}: imports crate::{used}", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "boundary violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn crate_paths_are_found() {
    let paths = crate_paths("use crate::diag::Span; crate::bake::load(x)");
    assert_eq!(paths.into_iter().collect::<Vec<_>>(), ["bake", "diag"]);
}
