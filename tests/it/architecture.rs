//! Enforces the architecture of `src/lib.rs`: every `crate::<module>` path used in a top-level
//! module must be listed for that module in [`ALLOWED`], and files under `src/` must import
//! each other without cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which crate modules each top-level module imports: the layers of `src/lib.rs`, edge by edge.
const ALLOWED: &[(&str, &[&str])] = &[
    ("diag", &[]),
    ("digest", &[]),
    ("path", &[]),
    ("platform", &[]),
    ("progress", &[]),
    ("buildflags", &[]),
    ("oci", &["digest", "platform"]),
    ("config", &["diag", "platform"]),
    ("bake", &["diag", "path", "buildflags"]),
    ("plan", &["bake", "buildflags", "platform"]),
    ("graph", &["digest", "platform"]),
    (
        "frontend",
        &["graph", "oci", "platform", "digest", "diag", "path"],
    ),
    ("solver", &["graph", "digest", "progress"]),
    (
        "ops",
        &[
            "solver", "graph", "executor", "source", "snapshot", "content", "progress", "digest",
            "platform", "path",
        ],
    ),
    ("executor", &[]),
    (
        "source",
        &[
            "snapshot", "content", "registry", "oci", "platform", "digest", "graph", "path",
        ],
    ),
    ("snapshot", &["content", "digest"]),
    ("content", &["digest"]),
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
            "digest",
        ],
    ),
    (
        "remote",
        &[
            "exporter",
            "plan",
            "buildflags",
            "source",
            "registry",
            "oci",
            "platform",
            "progress",
            "diag",
        ],
    ),
    (
        "engine",
        &[
            "remote",
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

/// A token of Rust source; comments, strings and char literals are dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Token<'a> {
    Ident(&'a str),
    PathSep,
    Punct(u8),
}

fn tokens(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let (mut out, mut i) = (Vec::new(), 0);
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied()) {
            (b'/', Some(b'/')) => i += text[i..].find('\n').unwrap_or(text.len() - i),
            (b'/', Some(b'*')) => i += text[i..].find("*/").unwrap() + 2,
            (b'"', _) => i = string_end(bytes, i + 1, 0),
            (b'\'', Some(b'\\')) => i += 3 + text[i + 3..].find('\'').unwrap() + 1,
            (b'\'', _) if bytes.get(i + 2) == Some(&b'\'') => i += 3,
            (b':', Some(b':')) => (out.push(Token::PathSep), i += 2).1,
            (b, _) if ident(b) => {
                let start = i;
                while i < bytes.len() && ident(bytes[i]) {
                    i += 1;
                }
                let hashes = bytes[i..].iter().take_while(|&&b| b == b'#').count();
                if matches!(&text[start..i], "r" | "br") && bytes.get(i + hashes) == Some(&b'"') {
                    i = string_end(bytes, i + hashes + 1, hashes);
                } else {
                    out.push(Token::Ident(&text[start..i]));
                }
            }
            (b, _) => {
                if !b.is_ascii_whitespace() {
                    out.push(Token::Punct(b));
                }
                i += 1;
            }
        }
    }
    out
}

/// Returns the index after the (raw, with `hashes`) string literal whose body starts at `i`.
fn string_end(bytes: &[u8], mut i: usize, hashes: usize) -> usize {
    loop {
        match bytes[i] {
            b'\\' if hashes == 0 => i += 2,
            b'"' if bytes[i + 1..].iter().take(hashes).all(|&b| b == b'#') => {
                return i + 1 + hashes;
            }
            _ => i += 1,
        }
    }
}

/// Drops every `#[cfg(test)]` item (test modules, test helpers): test code may use anything.
fn without_test_code<'a>(tokens: &[Token<'a>]) -> Vec<Token<'a>> {
    use Token::{Ident, Punct};
    let (mut out, mut i) = (Vec::new(), 0);
    while i < tokens.len() {
        let attribute = [Punct(b'#'), Punct(b'['), Ident("cfg"), Punct(b'(')];
        if !(tokens[i..].starts_with(&attribute) && tokens.get(i + 4) == Some(&Ident("test"))) {
            out.push(tokens[i]);
            i += 1;
            continue;
        }
        // Skip the attribute and then the item: up to a `;` or the `}` that closes its body.
        let mut depth = 0;
        for token in &tokens[i + 7..] {
            i += 1;
            match token {
                Punct(b'{' | b'[' | b'(') => depth += 1,
                Punct(b'}') if depth == 1 => break,
                Punct(b'}' | b']' | b')') => depth -= 1,
                Punct(b';') if depth == 0 => break,
                _ => {}
            }
        }
        i += 7;
    }
    out
}

/// Every `a::b::c` path in `tokens` (and `use a;`), with `use` groups `a::{b, c::d}` expanded.
fn paths<'a>(tokens: &[Token<'a>]) -> Vec<Vec<&'a str>> {
    let (mut out, mut i) = (Vec::new(), 0);
    while i < tokens.len() {
        let previous = i.checked_sub(1).map(|p| tokens[p]);
        let starts = matches!(tokens[i], Token::Ident(_))
            && (tokens.get(i + 1) == Some(&Token::PathSep)
                || previous == Some(Token::Ident("use")))
            && previous != Some(Token::PathSep);
        i = if starts {
            path_tree(tokens, i, Vec::new(), &mut out)
        } else {
            i + 1
        };
    }
    out
}

/// Reads the path (or `use` tree) at `i` below `prefix` into `out`; returns the index after it.
fn path_tree<'a>(
    tokens: &[Token<'a>],
    mut i: usize,
    mut prefix: Vec<&'a str>,
    out: &mut Vec<Vec<&'a str>>,
) -> usize {
    let start = i;
    loop {
        match tokens.get(i) {
            Some(Token::Ident("self")) if !prefix.is_empty() => i += 1,
            Some(Token::Ident(name)) => (prefix.push(name), i += 1).1,
            Some(Token::Punct(b'{')) => {
                i += 1;
                while !matches!(tokens.get(i), None | Some(Token::Punct(b'}'))) {
                    i = path_tree(tokens, i, prefix.clone(), out).max(i + 1);
                }
                return i + 1;
            }
            _ => break,
        }
        if tokens.get(i) != Some(&Token::PathSep) {
            break;
        }
        i += 1;
    }
    if tokens.get(i) == Some(&Token::Ident("as")) {
        i += 2;
    }
    if i > start {
        out.push(prefix);
    }
    i
}

/// The module (`a::b`, `""` for the crate root) that `path`, used in `module`, points into:
/// its longest prefix that is one of `modules`. A bare path (`child::item`) counts only when it
/// starts with a child of `module`.
fn target(module: &str, path: &[&str], modules: &BTreeSet<String>) -> Option<String> {
    let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
    let (mut base, rest) = match path {
        ["crate", rest @ ..] => (String::new(), rest),
        ["super", rest @ ..] => (parent.to_owned(), rest),
        ["self", rest @ ..] => (module.to_owned(), rest),
        _ => (module.to_owned(), path),
    };
    for segment in rest {
        let next = if base.is_empty() {
            (*segment).to_owned()
        } else {
            format!("{base}::{segment}")
        };
        if !modules.contains(&next) {
            break;
        }
        base = next;
    }
    (rest.len() < path.len() || base != module).then_some(base)
}

/// Which files each file under `src/` imports (paths relative to `src/`), test files left out.
fn file_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut paths_of = Vec::new();
    rust_files(src, &mut paths_of);
    let mut files = BTreeMap::new();
    for path in paths_of {
        let file = path.strip_prefix(src).unwrap().to_str().unwrap().to_owned();
        let stem = file.trim_end_matches(".rs");
        let stem = stem
            .strip_suffix("/mod")
            .unwrap_or(if stem == "lib" { "" } else { stem });
        if file != "main.rs" && path.file_name().unwrap() != "tests.rs" {
            files.insert(stem.replace('/', "::"), file);
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut imports = BTreeMap::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        let tokens = tokens(&text);
        let imported = paths(&without_test_code(&tokens))
            .iter()
            .filter_map(|path| target(module, path, &modules))
            .map(|found| files[&found].clone())
            .filter(|found| found != file)
            .collect();
        imports.insert(file.clone(), imported);
    }
    imports
}

/// The strongly connected components of more than one file: each is a cycle of imports.
fn cycles(imports: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    let reachable = |from: &String| {
        let (mut seen, mut stack) = (BTreeSet::new(), vec![from]);
        while let Some(file) = stack.pop() {
            stack.extend(
                imports[file]
                    .iter()
                    .filter(|next| seen.insert((*next).clone())),
            );
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        imports.keys().map(|f| (f, reachable(f))).collect();
    let component = |file: &String| -> Vec<String> {
        reach[file]
            .iter()
            .filter(|other| reach[other].contains(file))
            .cloned()
            .collect()
    };
    imports
        .keys()
        .map(component)
        .filter(|files| files.len() > 1)
        .collect()
}

#[test]
fn files_import_each_other_without_cycles() {
    let imports = file_imports(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut report = Vec::new();
    for cycle in cycles(&imports) {
        report.push(format!("cycle between {}:", cycle.join(", ")));
        for file in &cycle {
            let inside = imports[file].iter().filter(|next| cycle.contains(next));
            report.extend(inside.map(|next| format!("  {file} -> {next}")));
        }
    }
    assert!(
        report.is_empty(),
        "import cycles between files under src/:\n{}",
        report.join("\n")
    );
}

#[test]
fn file_imports_follow_use_trees_and_skip_tests_comments_and_strings() {
    let text = "use super::{a::B as C, d::{self, e}}; #[cfg(test)] mod tests { use crate::x; }\n\
                // crate::c\nfn f() { let s = r#\"crate::\"y\"#; child::g(); crate::z::h(); use child as c; }";
    let expected = [
        &["super", "a", "B"][..],
        &["super", "d"],
        &["super", "d", "e"],
        &["child", "g"],
        &["crate", "z", "h"],
        &["child"],
    ];
    assert_eq!(paths(&without_test_code(&tokens(text))), expected);
    let modules: BTreeSet<String> = ["", "m", "m::child", "m::a"].map(str::to_owned).into();
    let to = |module: &str, path: &[&str]| target(module, path, &modules);
    assert_eq!(
        to("m::child", &["super", "a", "B"]).as_deref(),
        Some("m::a")
    );
    assert_eq!(to("m::child", &["super", "X"]).as_deref(), Some("m"));
    assert_eq!(to("m", &["child", "g"]).as_deref(), Some("m::child"));
    assert_eq!(to("m", &["std", "fs"]), None);
}
