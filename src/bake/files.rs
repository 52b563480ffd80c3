//! Which bake files to read and what format each is: buildx's default names, `-f`,
//! `BUILDX_BAKE_FILE`, stdin, and format sniffing for names without a known extension.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bake::error::Diagnostic;
use crate::diag::SourceFile;

/// The names looked up in the working directory when no file is given, in load order.
// Compat: buildx defaultFilenames (bake/bake.go).
pub const DEFAULT_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-bake.json",
    "docker-bake.hcl",
    "docker-bake.override.json",
    "docker-bake.override.hcl",
];

/// The syntax of one bake file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// HCL native syntax (`.hcl`).
    Hcl,
    /// HCL JSON syntax (`.json`).
    Json,
    /// A Compose file (`.yml`, `.yaml`).
    Compose,
    /// Unknown extension (or stdin): sniffed at load time.
    Unknown,
}

impl Format {
    /// Picks the format from a file name's extension.
    pub fn of(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".hcl") {
            Format::Hcl
        } else if lower.ends_with(".json") {
            Format::Json
        } else if lower.ends_with(".yml") || lower.ends_with(".yaml") {
            Format::Compose
        } else {
            Format::Unknown
        }
    }
}

/// Lists the files to load: `-f` values if any, else `BUILDX_BAKE_FILE` (split on `:` or
/// `BUILDX_BAKE_PATH_SEPARATOR`), else the default names that exist in `cwd`.
pub fn discover(
    explicit: &[String],
    bake_file_env: Option<&str>,
    separator: Option<&str>,
    cwd: &Path,
) -> Result<Vec<String>, Diagnostic> {
    if !explicit.is_empty() {
        return Ok(explicit.to_vec());
    }
    if let Some(list) = bake_file_env.filter(|l| !l.trim().is_empty()) {
        let separator = separator.filter(|s| !s.is_empty()).unwrap_or(":");
        return Ok(list
            .split(separator)
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect());
    }
    let found: Vec<String> = DEFAULT_NAMES
        .iter()
        .filter(|name| cwd.join(name).is_file())
        .map(|name| (*name).to_owned())
        .collect();
    if found.is_empty() {
        return Err(Diagnostic::new(
            "bake::no_files",
            format!("couldn't find a bake definition in `{}`", cwd.display()),
        )
        .help(format!(
            "create one of {}, or pass a file with `-f`",
            DEFAULT_NAMES.join(", ")
        )));
    }
    Ok(found)
}

/// Reads the named files (`-` is stdin), relative to `cwd`.
pub fn read(names: &[String], cwd: &Path) -> Result<Vec<SourceFile>, Diagnostic> {
    names
        .iter()
        .map(|name| {
            let text = if name == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|error| {
                        Diagnostic::new(
                            "bake::read",
                            format!("failed to read the bake file from stdin: {error}"),
                        )
                    })?;
                text
            } else {
                let path: PathBuf = cwd.join(name);
                std::fs::read_to_string(&path).map_err(|error| {
                    Diagnostic::new("bake::read", format!("failed to read `{name}`: {error}"))
                        .help("check the path given with `-f` or `BUILDX_BAKE_FILE`")
                })?
            };
            Ok(SourceFile::new(name.clone(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_extensions() {
        assert_eq!(Format::of("docker-bake.HCL"), Format::Hcl);
        assert_eq!(Format::of("x.json"), Format::Json);
        assert_eq!(Format::of("compose.Yaml"), Format::Compose);
        assert_eq!(Format::of("-"), Format::Unknown);
    }

    #[test]
    fn default_names_load_in_buildx_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "docker-bake.override.hcl",
            "docker-bake.hcl",
            "compose.yaml",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let found = discover(&[], None, None, dir.path()).unwrap();
        assert_eq!(
            found,
            [
                "compose.yaml",
                "docker-bake.hcl",
                "docker-bake.override.hcl"
            ]
        );
    }

    #[test]
    fn explicit_files_and_env_list_win() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = vec!["a.hcl".to_owned()];
        assert_eq!(
            discover(&explicit, Some("b.hcl"), None, dir.path()).unwrap(),
            ["a.hcl"]
        );
        assert_eq!(
            discover(&[], Some("b.hcl: c.json"), None, dir.path()).unwrap(),
            ["b.hcl", "c.json"]
        );
        assert_eq!(
            discover(&[], Some("b.hcl;c.json"), Some(";"), dir.path()).unwrap(),
            ["b.hcl", "c.json"]
        );
    }

    #[test]
    fn no_file_at_all_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            discover(&[], None, None, dir.path()).unwrap_err().code,
            "bake::no_files"
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&["nope.hcl".to_owned()], dir.path()).is_err());
    }
}
