//! Entitlements as buildx's bake checks them before anything builds: the privileges a plan
//! needs (host network, insecure mode, file system access outside the working directory),
//! the ones `--allow` grants, and the missing ones, phrased as buildx asks for them.
//!
//! The check itself is pure: path resolution (symlinks, existing ancestors) comes in through
//! [`Resolve`], so tests run on made-up trees. Part of `plan`.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::plan::{BuildRequest, Context, Dockerfile, NamedContext};

/// The host network for RUN steps.
pub const NETWORK_HOST: &str = "network.host";
/// Privileged RUN steps.
pub const SECURITY_INSECURE: &str = "security.insecure";

/// Why `--allow` values cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// An entitlement key bake does not know.
    #[error("unknown entitlement key `{key}` in `--allow {value}`")]
    #[diagnostic(
        code(bake::allow),
        help(
            "use `network.host`, `security.insecure`, `ssh`, `fs.read=PATH`, `fs.write=PATH`, `fs=PATH`, `image.push=REF`, `image.load=REF` or `image=REF`"
        )
    )]
    Unknown {
        /// The key.
        key: String,
        /// The whole value.
        value: String,
    },
    /// A file system grant without a path.
    #[error("`--allow {value}` needs a path")]
    #[diagnostic(code(bake::allow), help("write it as `--allow {value}=/some/dir`"))]
    NoPath {
        /// The value as written.
        value: String,
    },
    /// Privileges were requested and not granted.
    #[error("additional privileges requested")]
    #[diagnostic(code(bake::entitlements), help("{help}"))]
    Denied {
        /// The `--allow` flags to add.
        help: String,
    },
}

/// What `--allow` (or a target's `entitlements`) grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// `network.host`.
    pub network_host: bool,
    /// `security.insecure`.
    pub security_insecure: bool,
    /// `ssh`: forwarding the default SSH agent.
    pub ssh: bool,
    /// `fs.read=PATH` (and `fs=PATH`), resolved.
    pub fs_read: Vec<PathBuf>,
    /// `fs.write=PATH` (and `fs=PATH`), resolved.
    pub fs_write: Vec<PathBuf>,
    /// `image.push=REF`, `image.load=REF`, `image=REF`: accepted as buildx does; no build
    /// needs them.
    pub image: Vec<String>,
}

impl Grants {
    /// The entitlements this grants that BuildKit's solver checks, by name.
    pub fn solver_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.network_host {
            out.push(NETWORK_HOST.to_owned());
        }
        if self.security_insecure {
            out.push(SECURITY_INSECURE.to_owned());
        }
        out
    }

    /// Whether nothing is missing.
    pub fn is_empty(&self) -> bool {
        !self.network_host
            && !self.security_insecure
            && !self.ssh
            && self.fs_read.is_empty()
            && self.fs_write.is_empty()
    }
}

/// How paths are resolved: symlinks followed, as buildx compares them.
pub trait Resolve {
    /// A path the build uses: its existing part with symlinks resolved, plus the first
    /// component that does not exist yet (the entry the build would create).
    fn needed(&self, path: &Path) -> PathBuf;
    /// A granted path: its existing part with symlinks resolved, the rest appended as is.
    fn granted(&self, path: &Path) -> PathBuf;
}

/// Resolves paths on the real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl Disk {
    /// The longest existing prefix of `path`, resolved, and the components after it.
    fn split(path: &Path) -> (PathBuf, Vec<std::ffi::OsString>) {
        let mut existing: PathBuf = path.components().collect();
        let mut rest = Vec::new();
        loop {
            if let Ok(resolved) = std::fs::canonicalize(&existing) {
                rest.reverse();
                return (resolved, rest);
            }
            match existing.file_name() {
                Some(name) => rest.push(name.to_owned()),
                None => {
                    rest.reverse();
                    return (existing, rest);
                }
            }
            if !existing.pop() {
                rest.reverse();
                return (PathBuf::from("/"), rest);
            }
        }
    }
}

impl Resolve for Disk {
    fn needed(&self, path: &Path) -> PathBuf {
        let (mut resolved, rest) = Self::split(path);
        if let Some(first) = rest.first() {
            resolved.push(first);
        }
        resolved
    }

    fn granted(&self, path: &Path) -> PathBuf {
        let (mut resolved, rest) = Self::split(path);
        resolved.extend(rest);
        resolved
    }
}

/// Parses `--allow` values (each may be a comma list) into grants, paths taken from `cwd`.
pub fn parse_allow(values: &[String], cwd: &Path, resolve: &dyn Resolve) -> Result<Grants, Error> {
    let mut grants = Grants::default();
    for value in values.iter().flat_map(|v| v.split(',')) {
        let value = value.trim();
        match value {
            "" => continue,
            NETWORK_HOST => grants.network_host = true,
            SECURITY_INSECURE => grants.security_insecure = true,
            "ssh" => grants.ssh = true,
            _ => {
                let (key, path) = value.split_once('=').unwrap_or((value, ""));
                let (read, write) = match key {
                    "fs.read" => (true, false),
                    "fs.write" => (false, true),
                    "fs" => (true, true),
                    "image" | "image.push" | "image.load" => {
                        grants.image.push(path.to_owned());
                        continue;
                    }
                    _ => {
                        return Err(Error::Unknown {
                            key: key.to_owned(),
                            value: value.to_owned(),
                        });
                    }
                };
                if path.is_empty() {
                    return Err(Error::NoPath {
                        value: key.to_owned(),
                    });
                }
                // Compat: buildx reads `*` as every path.
                let path = if path == "*" { "/" } else { path };
                let resolved = resolve.granted(&cwd.join(path));
                if read {
                    grants.fs_read.push(resolved.clone());
                }
                if write {
                    grants.fs_write.push(resolved);
                }
            }
        }
    }
    Ok(grants)
}

/// Paths given with `--set` on the command line (`output`, `secret`, `cache-to`,
/// `cache-from`): the user typed them, so they are granted without `--allow`, as buildx does.
pub fn from_overrides(overrides: &[String], cwd: &Path, resolve: &dyn Resolve) -> Grants {
    let mut grants = Grants::default();
    for entry in overrides {
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        let attribute = key.rsplit_once('.').map_or(key, |(_, a)| a);
        let attribute = attribute.trim_end_matches('+');
        let (reads, writes): (Vec<String>, Vec<String>) = match attribute {
            "output" => (
                Vec::new(),
                crate::buildflags::ExportEntry::parse(value)
                    .ok()
                    .map(|o| o.attrs.get("dest").cloned().unwrap_or(o.destination))
                    .into_iter()
                    .collect(),
            ),
            "secret" => (
                crate::buildflags::Secret::parse(value)
                    .ok()
                    .map(|s| s.src)
                    .into_iter()
                    .collect(),
                Vec::new(),
            ),
            "cache-to" | "cache-from" => {
                let paths: Vec<String> = crate::buildflags::CacheEntry::parse_list(value)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|c| c.attrs.get("dest").or_else(|| c.attrs.get("src")).cloned())
                    .collect();
                if attribute == "cache-to" {
                    (Vec::new(), paths)
                } else {
                    (paths, Vec::new())
                }
            }
            _ => continue,
        };
        let resolved = |p: &String| resolve.granted(&cwd.join(p));
        grants
            .fs_read
            .extend(reads.iter().filter(|p| !p.is_empty()).map(resolved));
        grants
            .fs_write
            .extend(writes.iter().filter(|p| !p.is_empty()).map(resolved));
    }
    grants
}

/// The entitlements `requests` need and `granted` (plus the working directory `cwd`, which
/// is always readable and writable) does not give.
pub fn missing(
    requests: &[BuildRequest],
    cwd: &Path,
    granted: &Grants,
    resolve: &dyn Resolve,
) -> Grants {
    let mut out = Grants::default();
    let mut reads: BTreeSet<PathBuf> = BTreeSet::new();
    let mut writes: BTreeSet<PathBuf> = BTreeSet::new();
    for request in requests {
        // Compat: buildx's bake asks for `network.host` for a target whose `network` is host.
        if request.network.as_deref() == Some("host") {
            out.network_host |= !granted.network_host;
        }
        for entitlement in &request.entitlements {
            match entitlement.as_str() {
                NETWORK_HOST => out.network_host |= !granted.network_host,
                SECURITY_INSECURE => out.security_insecure |= !granted.security_insecure,
                _ => {}
            }
        }
        read_paths(request, cwd, &mut reads);
        for output in &request.outputs {
            let dest = output
                .attrs
                .get("dest")
                .map_or(output.destination.as_str(), String::as_str);
            if matches!(output.kind.as_str(), "local" | "tar" | "oci" | "docker")
                && !dest.is_empty()
                && dest != "-"
            {
                writes.insert(cwd.join(dest));
            }
        }
        for cache in &request.cache_to {
            if cache.kind == "local"
                && let Some(dest) = cache.attrs.get("dest")
            {
                writes.insert(cwd.join(dest));
            }
        }
        for ssh in &request.ssh {
            if ssh.paths.is_empty() || ssh.paths.iter().all(String::is_empty) {
                out.ssh |= !granted.ssh;
            }
        }
    }
    let cwd = resolve.needed(cwd);
    out.fs_read = outside(reads, &cwd, &granted.fs_read, resolve);
    out.fs_write = outside(writes, &cwd, &granted.fs_write, resolve);
    out
}

fn read_paths(request: &BuildRequest, cwd: &Path, reads: &mut BTreeSet<PathBuf>) {
    if let Context::Local(path) = &request.context {
        reads.insert(path.clone());
    }
    if let Dockerfile::File(path) = &request.dockerfile {
        reads.insert(path.clone());
    }
    for named in request.named_contexts.values() {
        // An `oci-layout://` store is an image source, not a directory sent as context.
        if let NamedContext::Local { path } = named {
            reads.insert(path.clone());
        }
    }
    for secret in &request.secrets {
        if !secret.src.is_empty() {
            reads.insert(cwd.join(&secret.src));
        }
    }
    for ssh in &request.ssh {
        reads.extend(
            ssh.paths
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| cwd.join(p)),
        );
    }
    for cache in &request.cache_from {
        if cache.kind == "local"
            && let Some(src) = cache.attrs.get("src")
        {
            reads.insert(cwd.join(src));
        }
    }
}

/// The resolved `paths` outside `cwd` and every grant, without those under another one.
fn outside(
    paths: BTreeSet<PathBuf>,
    cwd: &Path,
    grants: &[PathBuf],
    resolve: &dyn Resolve,
) -> Vec<PathBuf> {
    let resolved: BTreeSet<PathBuf> = paths.iter().map(|p| resolve.needed(p)).collect();
    let mut out: Vec<PathBuf> = Vec::new();
    // Sorted order puts a parent before its children, so children fold into it.
    for path in resolved {
        if path.starts_with(cwd) || grants.iter().any(|g| path.starts_with(g)) {
            continue;
        }
        if out.iter().any(|kept| path.starts_with(kept)) {
            continue;
        }
        out.push(path);
    }
    out
}

/// The explanation buildx prints for `missing`, and the `--allow` flags that grant it.
pub fn describe(missing: &Grants) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut flags = Vec::new();
    if missing.network_host {
        lines.push(" - Running build containers that can access host network".to_owned());
        flags.push(NETWORK_HOST.to_owned());
    }
    if missing.security_insecure {
        lines.push(" - Running privileged containers that can make system changes".to_owned());
        flags.push(SECURITY_INSECURE.to_owned());
    }
    if missing.ssh {
        lines.push(" - Forwarding default SSH agent socket".to_owned());
        flags.push("ssh".to_owned());
    }
    let both: Vec<&PathBuf> = missing
        .fs_read
        .iter()
        .filter(|p| missing.fs_write.contains(p))
        .collect();
    for path in &both {
        lines.push(format!(
            " - Read and write access to path {}",
            path.display()
        ));
        flags.push(format!("fs={}", path.display()));
    }
    for path in missing.fs_read.iter().filter(|p| !both.contains(p)) {
        lines.push(format!(" - Read access to path {}", path.display()));
        flags.push(format!("fs.read={}", path.display()));
    }
    for path in missing.fs_write.iter().filter(|p| !both.contains(p)) {
        lines.push(format!(" - Write access to path {}", path.display()));
        flags.push(format!("fs.write={}", path.display()));
    }
    let flags = flags.into_iter().map(|f| format!("--allow={f}")).collect();
    (lines, flags)
}

/// How the user is asked: whether there is someone to answer, and whether the file system
/// checks are errors (`BUILDX_BAKE_ENTITLEMENTS_FS`, on unless set false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptMode {
    /// stdin is a terminal and `CI` is unset.
    pub interactive: bool,
    /// File system entitlements are enforced.
    pub enforce_fs: bool,
}

/// Explains `missing` on `out` and, in an interactive run, asks on `input` whether to grant
/// it. `Ok(true)`: go on (nothing missing, granted, or only unenforced file system access);
/// `Ok(false)`: refused, with the `--allow` flags to add in the error the caller raises.
pub fn prompt(
    missing: &Grants,
    mode: PromptMode,
    command: &[String],
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> std::io::Result<bool> {
    if missing.is_empty() {
        return Ok(true);
    }
    let (lines, flags) = describe(missing);
    writeln!(
        out,
        "Your build is requesting privileges for following possibly insecure capabilities:\n"
    )?;
    for line in &lines {
        writeln!(out, "{line}")?;
    }
    let joined = flags.join(" ");
    if mode.interactive {
        writeln!(
            out,
            "\nIn order to not see this message in the future pass \"{joined}\" to grant requested privileges."
        )?;
    } else {
        writeln!(out, "\nPass \"{joined}\" to grant requested privileges.")?;
    }
    if let Some((first, rest)) = command.split_first() {
        writeln!(out, "\nYour full command with requested privileges:\n")?;
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(" {}", rest.join(" "))
        };
        writeln!(out, "{first} {joined}{rest}\n")?;
    }
    // Compat: buildx groups the SSH agent with the file system checks.
    let solver = missing.network_host || missing.security_insecure;
    if !mode.enforce_fs && !solver {
        return Ok(true);
    }
    if !mode.interactive {
        return Ok(false);
    }
    write!(
        out,
        "Do you want to grant requested privileges and continue? [y/N] "
    )?;
    out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

/// The `--allow` flags for `missing`, as the help of a refusal.
pub fn refusal(missing: &Grants) -> Error {
    let (_, flags) = describe(missing);
    Error::Denied {
        help: format!("pass {} to grant them", flags.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildflags::{ExportEntry, Secret};

    /// Paths resolve to themselves, except that `/link` points at `/real`.
    struct Fake;

    impl Resolve for Fake {
        fn needed(&self, path: &Path) -> PathBuf {
            let mut clean = PathBuf::new();
            for component in path.components() {
                match component {
                    std::path::Component::ParentDir => {
                        clean.pop();
                    }
                    other => clean.push(other),
                }
            }
            let path = clean;
            match path.strip_prefix("/link") {
                Ok(rest) => Path::new("/real").join(rest),
                Err(_) => path,
            }
        }

        fn granted(&self, path: &Path) -> PathBuf {
            self.needed(path)
        }
    }

    fn request() -> BuildRequest {
        let mut request = crate::plan::tests::request_for("/work/app");
        request.outputs = Vec::new();
        request
    }

    fn output(kind: &str, dest: &str) -> ExportEntry {
        ExportEntry {
            kind: kind.to_owned(),
            destination: dest.to_owned(),
            attrs: [("dest".to_owned(), dest.to_owned())].into(),
        }
    }

    fn allow(values: &[&str]) -> Grants {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        parse_allow(&values, Path::new("/work"), &Fake).unwrap()
    }

    #[test]
    fn allow_values_split_on_commas_and_fs_grants_both() {
        let grants = allow(&["network.host,fs=/out", "fs.read=../shared"]);
        assert!(grants.network_host && !grants.security_insecure);
        assert_eq!(
            grants.fs_read,
            [PathBuf::from("/out"), PathBuf::from("/shared")]
        );
        assert_eq!(grants.fs_write, [PathBuf::from("/out")]);
        assert_eq!(grants.solver_names(), ["network.host"]);
    }

    #[test]
    fn bad_allow_values_are_errors() {
        let parse = |v: &str| parse_allow(&[v.to_owned()], Path::new("/work"), &Fake);
        assert!(matches!(parse("network"), Err(Error::Unknown { .. })));
        assert!(matches!(parse("fs.read"), Err(Error::NoPath { .. })));
        assert_eq!(parse("fs=*").unwrap().fs_write, [PathBuf::from("/")]);
        assert!(parse("image.push=docker.io/a/b").is_ok());
    }

    #[test]
    fn paths_inside_the_working_directory_need_nothing() {
        let mut request = request();
        request.outputs = vec![output("local", "out"), output("tar", "-")];
        let missing = missing(&[request], Path::new("/work"), &Grants::default(), &Fake);
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn writes_and_reads_outside_are_listed_once_per_top_directory() {
        let mut request = request();
        request.context = Context::Local("/ctx".into());
        request.dockerfile = Dockerfile::File("/ctx/Dockerfile".into());
        request.outputs = vec![output("local", "/out/a"), output("oci", "/out/a/b.tar")];
        request.secrets = vec![Secret {
            id: "s".into(),
            src: "/secrets/token".into(),
            env: String::new(),
        }];
        request.entitlements = vec!["network.host".into(), "security.insecure".into()];
        let granted = allow(&["security.insecure"]);
        let missing = missing(&[request], Path::new("/work"), &granted, &Fake);
        assert!(missing.network_host && !missing.security_insecure);
        assert_eq!(
            missing.fs_read,
            [PathBuf::from("/ctx"), PathBuf::from("/secrets/token")]
        );
        assert_eq!(missing.fs_write, [PathBuf::from("/out/a")]);
        let (lines, flags) = describe(&missing);
        assert_eq!(
            flags,
            [
                "--allow=network.host",
                "--allow=fs.read=/ctx",
                "--allow=fs.read=/secrets/token",
                "--allow=fs.write=/out/a"
            ]
        );
        assert_eq!(lines[1], " - Read access to path /ctx");
    }

    #[test]
    fn grants_cover_children_and_compare_after_resolving_symlinks() {
        let mut request = request();
        request.outputs = vec![output("local", "/link/out")];
        let missing_with = |values: &[&str]| {
            missing(
                std::slice::from_ref(&request),
                Path::new("/work"),
                &allow(values),
                &Fake,
            )
        };
        assert_eq!(missing_with(&[]).fs_write, [PathBuf::from("/real/out")]);
        assert!(missing_with(&["fs.write=/link"]).is_empty());
        assert!(missing_with(&["fs=/real"]).is_empty());
        assert!(!missing_with(&["fs.read=/real"]).is_empty());
        assert!(missing_with(&["fs.write=/"]).is_empty());
    }

    #[test]
    fn the_default_ssh_agent_needs_ssh_and_key_paths_need_reading() {
        let mut request = request();
        request.ssh = vec![
            crate::buildflags::Ssh::parse("default"),
            crate::buildflags::Ssh::parse("key=/keys/id"),
        ];
        let needed = missing(
            std::slice::from_ref(&request),
            Path::new("/work"),
            &Grants::default(),
            &Fake,
        );
        assert!(needed.ssh);
        assert_eq!(needed.fs_read, [PathBuf::from("/keys/id")]);
        let needed = missing(
            &[request],
            Path::new("/work"),
            &allow(&["ssh,fs.read=/keys"]),
            &Fake,
        );
        assert!(needed.is_empty(), "{needed:?}");
    }

    #[test]
    fn paths_typed_with_set_are_granted() {
        let grants = from_overrides(
            &[
                "app.output=type=local,dest=/out".to_owned(),
                "*.secret=id=a,src=/run/token".to_owned(),
                "*.cache-to=type=local,dest=/cache".to_owned(),
                "*.tags=x".to_owned(),
            ],
            Path::new("/work"),
            &Fake,
        );
        assert_eq!(
            grants.fs_write,
            [PathBuf::from("/out"), PathBuf::from("/cache")]
        );
        assert_eq!(grants.fs_read, [PathBuf::from("/run/token")]);
    }

    #[test]
    fn a_path_read_and_written_is_asked_for_as_fs() {
        let missing = Grants {
            fs_read: vec!["/shared".into()],
            fs_write: vec!["/shared".into()],
            ..Grants::default()
        };
        assert_eq!(describe(&missing).1, ["--allow=fs=/shared"]);
    }

    fn ask(missing: &Grants, interactive: bool, answer: &str) -> (bool, String) {
        let mut out = Vec::new();
        let mode = PromptMode {
            interactive,
            enforce_fs: true,
        };
        let command = ["bake".to_owned(), "app".to_owned()];
        let go = prompt(missing, mode, &command, &mut answer.as_bytes(), &mut out).unwrap();
        (go, String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_prompt_grants_only_on_yes() {
        let missing = Grants {
            network_host: true,
            ..Grants::default()
        };
        let (go, text) = ask(&missing, true, "y\n");
        assert!(go);
        assert!(text.contains(" - Running build containers that can access host network\n"));
        assert!(text.contains("bake --allow=network.host app\n"));
        assert!(text.ends_with("Do you want to grant requested privileges and continue? [y/N] "));
        assert!(ask(&missing, true, "Y\n").0);
        assert!(!ask(&missing, true, "\n").0);
        assert!(!ask(&missing, true, "yes\n").0);
        assert!(!ask(&missing, true, "").0);
    }

    #[test]
    fn a_non_interactive_run_refuses_without_asking() {
        let missing = Grants {
            fs_write: vec!["/out".into()],
            ..Grants::default()
        };
        let (go, text) = ask(&missing, false, "y\n");
        assert!(!go);
        assert!(text.contains("Pass \"--allow=fs.write=/out\" to grant requested privileges."));
        assert!(!text.contains("[y/N]"));
        assert!(ask(&Grants::default(), false, "").0);
    }

    #[test]
    fn unenforced_file_system_checks_only_warn() {
        let missing = Grants {
            fs_read: vec!["/ctx".into()],
            ..Grants::default()
        };
        let mode = PromptMode {
            interactive: false,
            enforce_fs: false,
        };
        let go = prompt(&missing, mode, &[], &mut "".as_bytes(), &mut Vec::new()).unwrap();
        assert!(go);
        let ssh = Grants {
            ssh: true,
            ..Grants::default()
        };
        assert!(prompt(&ssh, mode, &[], &mut "".as_bytes(), &mut Vec::new()).unwrap());
        let host = Grants {
            network_host: true,
            ..missing
        };
        assert!(!prompt(&host, mode, &[], &mut "".as_bytes(), &mut Vec::new()).unwrap());
    }
}
