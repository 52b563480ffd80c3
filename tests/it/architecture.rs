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

/// Cycles between files that belong to modules other branches are reworking; each entry lists
/// the files of one cycle (paths under `src/`, sorted). A cycle not listed here fails the test,
/// and so does an entry that is no longer a cycle.
const KNOWN_CYCLES: &[&[&str]] = &[
    &["buildflags/csv.rs", "buildflags/mod.rs"],
    &["cli/bake.rs", "cli/debug.rs", "cli/mod.rs"],
    &["config/mod.rs", "config/parse.rs"],
    &["content/metadata.rs", "content/mod.rs"],
    &[
        "executor/mod.rs",
        "executor/runtime.rs",
        "executor/spec.rs",
        "executor/user.rs",
    ],
    &[
        "exporter/atomic.rs",
        "exporter/compress.rs",
        "exporter/docker.rs",
        "exporter/image.rs",
        "exporter/layer.rs",
        "exporter/load.rs",
        "exporter/local.rs",
        "exporter/mod.rs",
        "exporter/oci.rs",
        "exporter/options.rs",
        "exporter/push.rs",
        "exporter/reference.rs",
        "exporter/tar.rs",
    ],
    &[
        "registry/auth.rs",
        "registry/mod.rs",
        "registry/pull.rs",
        "registry/push.rs",
        "registry/transport.rs",
    ],
    &[
        "snapshot/apply.rs",
        "snapshot/diff.rs",
        "snapshot/mod.rs",
        "snapshot/native.rs",
    ],
    &["source/local/checksum.rs", "source/local/mod.rs"],
    &["source/mod.rs", "source/stat_cache.rs"],
];

/// A token of Rust source. Comments, strings and char literals are dropped: a path inside them
/// is not an import.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Ident(&'a str),
    PathSep,
    Punct(u8),
}

fn tokens(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied()) {
            (b'/', Some(b'/')) => i += text[i..].find('\n').unwrap_or(text.len() - i),
            (b'/', Some(b'*')) => i += text[i..].find("*/").unwrap() + 2,
            (b'"', _) => i = string_end(bytes, i + 1, 0),
            (b'\'', Some(b'\\')) => i += 3 + text[i + 3..].find('\'').unwrap() + 1,
            (b'\'', _) if bytes.get(i + 2) == Some(&b'\'') => i += 3,
            (b':', Some(b':')) => {
                out.push(Token::PathSep);
                i += 2;
            }
            (b, _) if ident(b) => {
                let start = i;
                while i < bytes.len() && ident(bytes[i]) {
                    i += 1;
                }
                let word = &text[start..i];
                let hashes = bytes[i..].iter().take_while(|&&b| b == b'#').count();
                if matches!(word, "r" | "br") && bytes.get(i + hashes) == Some(&b'"') {
                    i = string_end(bytes, i + hashes + 1, hashes);
                } else {
                    out.push(Token::Ident(word));
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

/// Returns the index after the string literal whose body starts at `i`.
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
fn without_test_code(tokens: Vec<Token<'_>>) -> Vec<Token<'_>> {
    use Token::{Ident, Punct};
    let cfg_test = [
        Punct(b'#'),
        Punct(b'['),
        Ident("cfg"),
        Punct(b'('),
        Ident("test"),
    ];
    let mut out = Vec::new();
    let mut tokens = tokens.into_iter().peekable();
    let mut window: Vec<Token<'_>> = Vec::new();
    while let Some(token) = tokens.next() {
        window.push(token);
        if !cfg_test.starts_with(&window) {
            out.append(&mut window);
            continue;
        }
        if window.len() < cfg_test.len() {
            continue;
        }
        window.clear();
        // Skip `)]` and then the item: up to a `;` or the `}` that closes its body.
        let mut depth = 2;
        for token in tokens.by_ref() {
            match token {
                Punct(b'{' | b'[' | b'(') => depth += 1,
                Punct(b'}') if depth == 1 => break,
                Punct(b'}' | b']' | b')') => depth -= 1,
                Punct(b';') if depth == 0 => break,
                _ => {}
            }
        }
    }
    out
}

/// Every `a::b::c` path in `tokens`, with `use` groups (`a::{b, c::d}`) expanded.
fn paths<'a>(tokens: &[Token<'a>]) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let previous = i.checked_sub(1).map(|p| &tokens[p]);
        let starts = matches!(tokens[i], Token::Ident(_))
            && (tokens.get(i + 1) == Some(&Token::PathSep)
                || previous == Some(&Token::Ident("use")))
            && previous != Some(&Token::PathSep);
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
            Some(Token::Ident(name)) => {
                prefix.push(name);
                i += 1;
            }
            Some(Token::Punct(b'{')) => {
                i += 1;
                while !matches!(tokens.get(i), None | Some(Token::Punct(b'}'))) {
                    let next = path_tree(tokens, i, prefix.clone(), out);
                    i = next.max(i + 1);
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

/// The module a path used in `module` points to: the longest prefix that is a file of ours.
/// Bare paths (`child::item`) count only when they start with a child module of `module`.
fn target(
    module: &[String],
    path: &[&str],
    files: &BTreeMap<Vec<String>, String>,
) -> Option<Vec<String>> {
    let (mut base, rest) = match path {
        ["crate", rest @ ..] => (Vec::new(), rest),
        ["super", rest @ ..] => (module[..module.len().checked_sub(1)?].to_vec(), rest),
        ["self", rest @ ..] => (module.to_vec(), rest),
        _ => (module.to_vec(), path),
    };
    let bare = std::ptr::eq(rest, path);
    for segment in rest {
        let mut next = base.clone();
        next.push((*segment).to_owned());
        if !files.contains_key(&next) {
            break;
        }
        base = next;
    }
    (!bare || base.len() > module.len()).then_some(base)
}

/// Maps each module path (`["graph", "op"]`) to its file under `src/`, without test files.
fn file_modules(src: &Path) -> BTreeMap<Vec<String>, String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap().to_str().unwrap().to_owned();
        let mut module: Vec<String> = relative
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_owned)
            .collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
            module.pop();
        }
        if relative != "main.rs" && module.last().is_none_or(|last| last != "tests") {
            modules.insert(module, relative);
        }
    }
    modules
}

/// Which files each file imports (`src/`-relative paths; a file never imports itself).
fn file_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = file_modules(src);
    let mut imports = BTreeMap::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        let tokens = without_test_code(tokens(&text));
        let targets: BTreeSet<String> = paths(&tokens)
            .iter()
            .filter_map(|path| target(module, path, &files))
            .map(|found| files[&found].clone())
            .filter(|found| found != file)
            .collect();
        imports.insert(file.clone(), targets);
    }
    imports
}

/// The strongly connected components with more than one file: each is a cycle of imports.
fn cycles(imports: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    let reachable = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(file) = stack.pop() {
            for next in &imports[file] {
                if seen.insert(next.clone()) {
                    stack.push(next);
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        imports.keys().map(|f| (f, reachable(f))).collect();
    let mut found = BTreeSet::new();
    for (file, from_file) in &reach {
        let component: Vec<String> = from_file
            .iter()
            .filter(|other| reach[other].contains(*file))
            .cloned()
            .collect();
        if component.len() > 1 {
            found.insert(component);
        }
    }
    found
}

#[test]
fn files_import_each_other_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let imports = file_imports(&src);
    let found = cycles(&imports);
    let known: BTreeSet<Vec<String>> = KNOWN_CYCLES
        .iter()
        .map(|files| files.iter().map(|f| (*f).to_owned()).collect())
        .collect();
    let mut report = Vec::new();
    for cycle in found.difference(&known) {
        report.push(format!("cycle between {}:", cycle.join(", ")));
        for file in cycle {
            for next in imports[file].iter().filter(|next| cycle.contains(next)) {
                report.push(format!("  {file} -> {next}"));
            }
        }
    }
    for stale in known.difference(&found) {
        report.push(format!(
            "no longer a cycle, remove from KNOWN_CYCLES: {}",
            stale.join(", ")
        ));
    }
    assert!(
        report.is_empty(),
        "import cycles between files under src/:\n{}",
        report.join("\n")
    );
}

#[test]
fn file_imports_follow_super_self_crate_and_child_paths() {
    let text = "use super::{a::B as C, d::{self, e}}; #[cfg(test)] mod tests { use crate::x; }\n\
                // crate::comment\nfn f() { let s = \"crate::y\"; child::g(); crate::z::h(); use child as c; }";
    let tokens = without_test_code(tokens(text));
    let found = paths(&tokens);
    let expected: Vec<Vec<&str>> = vec![
        vec!["super", "a", "B"],
        vec!["super", "d"],
        vec!["super", "d", "e"],
        vec!["child", "g"],
        vec!["crate", "z", "h"],
        vec!["child"],
    ];
    assert_eq!(found, expected);
    let files: BTreeMap<Vec<String>, String> =
        [vec![], vec!["m"], vec!["m", "child"], vec!["m", "a"]]
            .into_iter()
            .map(|m| (m.iter().map(|s| (*s).to_owned()).collect(), m.join("/")))
            .collect();
    let module = ["m".to_owned(), "child".to_owned()];
    let parent = ["m".to_owned()];
    assert_eq!(
        target(&module, &["super", "a", "B"], &files),
        Some(parent.iter().cloned().chain(["a".to_owned()]).collect())
    );
    assert_eq!(
        target(&module, &["super", "X"], &files),
        Some(parent.to_vec())
    );
    assert_eq!(
        target(&parent, &["child", "g"], &files),
        Some(module.to_vec())
    );
    assert_eq!(target(&parent, &["std", "fs"], &files), None);
}
