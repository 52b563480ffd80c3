//! Settings from a `buildkitd.toml`, read with BuildKit's own keys so an existing file works
//! unchanged. Leaf: imports only `diag` and `platform`.
//!
//! [`parse`] checks every key it knows and returns typed values with the warnings found on
//! the way: unknown keys and values bake replaces (snapshotters such as `stargz`). Wrong types
//! and bad values are errors that point at the file, line and column. [`default_path`] says
//! where buildkitd looks for the file; [`load`] reads it.
//!
//! bake acts on `root`; on `[worker.oci]` `binary`, `max-parallelism`, `snapshotter`,
//! `platforms` and the GC keys (`gc`, `gckeepstorage`, `reservedSpace`, `maxUsedSpace`,
//! `gcpolicy`); and on `[registry."host"]` `mirrors`, `http`, `insecure` and `ca`. Every other
//! known key is checked, kept in [`Config`] (DNS, history, client certificates, ...) and
//! listed by [`Config::inert_keys`] so the command line can say it was ignored.

mod error;
mod parse;
mod types;
mod units;

use std::path::{Path, PathBuf};

use crate::diag::SourceFile;

pub use self::error::{Diagnostic, Error};
pub use self::types::{
    Config, Dns, Gc, GcPolicy, History, KeyPair, Loaded, OciWorker, Registry, Snapshotter,
};
pub use self::units::DiskSpace;

/// Parses a `buildkitd.toml`. Every wrong type or bad value in the file is reported at
/// once.
///
/// # Errors
///
/// Returns every error found: TOML syntax, wrong types, bad sizes, durations, platforms and
/// values.
pub fn parse(file: &SourceFile) -> Result<Loaded, Error> {
    parse::document(file)
}

/// Returns where buildkitd looks for its config when no `--config` is given:
/// `/etc/buildkit/buildkitd.toml` as root, else `$XDG_CONFIG_HOME/buildkit/buildkitd.toml`,
/// else `~/.config/buildkit/buildkitd.toml`. `None` when there is no home to look in.
// Compat: buildkitd's default `--config` (cmd/buildkitd/main.go with util/appdefaults):
// rootful uses /etc/buildkit, rootless the XDG config directory.
pub fn default_path(
    is_root: bool,
    xdg_config_home: Option<&Path>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    let dir = if is_root {
        PathBuf::from("/etc/buildkit")
    } else {
        let set = |p: &&Path| !p.as_os_str().is_empty();
        match (xdg_config_home.filter(set), home.filter(set)) {
            (Some(config), _) => config.join("buildkit"),
            (None, Some(home)) => home.join(".config/buildkit"),
            (None, None) => return None,
        }
    };
    Some(dir.join("buildkitd.toml"))
}

/// Reads and parses the file at `path`. A missing file gives the defaults unless
/// `required` (the user named it with `--config`).
///
/// # Errors
///
/// `config::read` when the file cannot be read (or is missing and required), and every
/// error of [`parse`].
pub fn load(path: &Path, required: bool) -> Result<Loaded, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Loaded::default());
        }
        Err(error) => {
            let help = (error.kind() == std::io::ErrorKind::NotFound)
                .then(|| "check the path given to `--config`".to_owned());
            return Err(Error::one(
                Diagnostic::error(
                    "config::read",
                    format!("failed to read config file `{}`: {error}", path.display()),
                )
                .maybe_help(help),
            ));
        }
    };
    let file = SourceFile::new(path.display().to_string(), text);
    let mut loaded = parse(&file)?;
    loaded.config.path = Some(path.to_path_buf());
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_follows_buildkitd() {
        assert_eq!(
            default_path(true, Some(Path::new("/x")), Some(Path::new("/home/u"))),
            Some(PathBuf::from("/etc/buildkit/buildkitd.toml"))
        );
        assert_eq!(
            default_path(false, Some(Path::new("/x")), Some(Path::new("/home/u"))),
            Some(PathBuf::from("/x/buildkit/buildkitd.toml"))
        );
        assert_eq!(
            default_path(false, None, Some(Path::new("/home/u"))),
            Some(PathBuf::from("/home/u/.config/buildkit/buildkitd.toml"))
        );
        // An empty XDG_CONFIG_HOME counts as unset.
        assert_eq!(
            default_path(false, Some(Path::new("")), Some(Path::new("/h"))),
            Some(PathBuf::from("/h/.config/buildkit/buildkitd.toml"))
        );
        assert_eq!(default_path(false, None, None), None);
    }

    #[test]
    fn missing_files_are_defaults_unless_required() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buildkitd.toml");
        let loaded = load(&path, false).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.config.runtime(), PathBuf::from("runc"));
        let error = load(&path, true).unwrap_err();
        assert_eq!(error.diagnostics[0].code, "config::read");
        std::fs::write(&path, "root = \"/state\"\n").unwrap();
        let loaded = load(&path, true).unwrap();
        assert_eq!(loaded.config.root, Some(PathBuf::from("/state")));
        assert_eq!(loaded.config.path, Some(path.clone()));
        assert!(loaded.config.inert_warning().is_none());
        std::fs::write(&path, "debug = true\n[grpc]\nuid = 0\n").unwrap();
        let warning = load(&path, true).unwrap().config.inert_warning().unwrap();
        assert!(warning.is_warning());
        assert_eq!(
            warning.message,
            format!(
                "bake checks but does not act on these keys of `{}`: `debug`, `grpc`",
                path.display()
            )
        );
    }
}
