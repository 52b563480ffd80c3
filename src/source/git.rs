//! Git repositories as build inputs: URL parsing (every form BuildKit accepts), resolving a
//! ref to the commit it names now, and checking a commit out into a directory through a bare
//! clone cached in the state root. Part of `source`.
//!
//! Uses the `git` binary, so the user's git configuration applies as it does to their own
//! clones: credential helpers and `insteadOf` rules for HTTPS, the SSH agent
//! (`SSH_AUTH_SOCK`) and `~/.ssh/config` for SSH.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{Error, Result, io_error};
use crate::digest::Digest;

pub use crate::graph::git::{BadGitUrl, CHECKSUM, FULL_URL, GitUrl, KEEP_GIT_DIR, is_git_url};

/// HTTP credentials for git remotes, as buildx passes `BUILDX_BAKE_GIT_AUTH_TOKEN` and
/// `BUILDX_BAKE_GIT_AUTH_HEADER` (BuildKit's `GIT_AUTH_TOKEN`/`GIT_AUTH_HEADER` secrets).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Tokens by host (`None`: every host), from `..._TOKEN` and `..._TOKEN.<host>`.
    pub tokens: BTreeMap<Option<String>, String>,
    /// Authorization schemes by host, from `..._HEADER` and `..._HEADER.<host>`.
    pub schemes: BTreeMap<Option<String>, String>,
}

impl Auth {
    /// Reads the `<prefix>_TOKEN[.host]` and `<prefix>_HEADER[.host]` variables of `env`.
    pub fn from_env(env: &BTreeMap<String, String>, prefix: &str) -> Self {
        let mut auth = Self::default();
        for (key, value) in env {
            for (suffix, map) in [("_TOKEN", &mut auth.tokens), ("_HEADER", &mut auth.schemes)] {
                let name = format!("{prefix}{suffix}");
                if key.eq_ignore_ascii_case(&name) {
                    map.insert(None, value.clone());
                } else if key.len() > name.len() + 1
                    && key[..name.len()].eq_ignore_ascii_case(&name)
                    && key.as_bytes()[name.len()] == b'.'
                {
                    map.insert(Some(key[name.len() + 1..].to_owned()), value.clone());
                }
            }
        }
        auth
    }

    /// The `Authorization` header value for `host`, if a token is set.
    // Compat: BuildKit gitsource: a token goes as `basic base64("x-access-token:" + token)`;
    // another scheme (`bearer`) sends the token as it is.
    fn header(&self, host: &str) -> Option<String> {
        let pick = |map: &BTreeMap<Option<String>, String>| {
            map.get(&Some(host.to_owned()))
                .or_else(|| map.get(&None))
                .cloned()
        };
        let token = pick(&self.tokens)?;
        let scheme = pick(&self.schemes).unwrap_or_else(|| "basic".to_owned());
        Some(if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            format!("basic {encoded}")
        } else {
            format!("{scheme} {token}")
        })
    }
}

/// What a ref resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The commit (40 hex digits).
    pub commit: String,
    /// The ref that names it on the remote, to fetch by (`None`: the commit itself).
    pub refname: Option<String>,
}

/// Git repositories cached under the state root: one bare repository per remote URL, and
/// checkouts made from it.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    auth: Auth,
}

impl Git {
    /// A cache under `state/git`.
    pub fn new(state: &Path) -> Self {
        Self {
            dir: state.join("git"),
            auth: Auth::default(),
        }
    }

    /// Sets the HTTP credentials sent to remotes.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// A `git` command that never prompts, with the credentials for `url`'s host.
    fn git(&self, url: &GitUrl) -> Command {
        let mut command = Command::new("git");
        command
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ADVICE", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(Stdio::null());
        if !url.ssh
            && let Some(header) = self.auth.header(&url.host)
        {
            command.args(["-c", &format!("http.extraHeader=Authorization: {header}")]);
        }
        command
    }

    /// Resolves `url`'s ref to the commit it names on the remote now (`git ls-remote`); a
    /// full commit SHA resolves to itself without asking.
    pub fn resolve(&self, url: &GitUrl) -> Result<Resolved> {
        let reference = url.reference.as_deref().unwrap_or("HEAD");
        let resolved = if is_commit(reference) {
            Resolved {
                commit: reference.to_ascii_lowercase(),
                refname: None,
            }
        } else {
            let output = run(
                self.git(url).args(["ls-remote", &url.remote]),
                url,
                "list the refs of",
            )?;
            pick_ref(&output, reference).ok_or_else(|| Error::UnknownRef {
                url: url.display(),
                reference: reference.to_owned(),
            })?
        };
        if let Some(checksum) = &url.checksum
            && !resolved.commit.starts_with(&checksum.to_ascii_lowercase())
        {
            return Err(Error::GitChecksum {
                url: url.display(),
                expected: checksum.clone(),
                actual: resolved.commit,
            });
        }
        Ok(resolved)
    }

    /// The bare repository caching `url`'s remote, created on first use.
    fn repository(&self, url: &GitUrl) -> Result<PathBuf> {
        let key = Digest::of(url.remote.as_bytes()).hex();
        let repository = self.dir.join("repositories").join(&key[..32]);
        if !repository.join("HEAD").is_file() {
            std::fs::create_dir_all(&self.dir).map_err(io_error("create", &self.dir))?;
            // Initialised beside its final name and renamed, so a half-made repository is
            // never found under it.
            let temporary = self
                .dir
                .join(format!("init-{}", uuid::Uuid::new_v4().simple()));
            run(
                self.git(url)
                    .args(["init", "--quiet", "--bare"])
                    .arg(&temporary),
                url,
                "create a cache for",
            )?;
            std::fs::create_dir_all(self.dir.join("repositories"))
                .map_err(io_error("create", &self.dir))?;
            if std::fs::rename(&temporary, &repository).is_err() {
                // Another process made it first.
                let _ = std::fs::remove_dir_all(&temporary);
            }
        }
        Ok(repository)
    }

    /// Fetches `resolved` into the cache (depth 1) unless it is there already.
    fn fetch(&self, url: &GitUrl, resolved: &Resolved, repository: &Path) -> Result<()> {
        let has = |commit: &str| {
            Command::new("git")
                .arg("--git-dir")
                .arg(repository)
                .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if has(&resolved.commit) {
            return Ok(());
        }
        let wanted = resolved
            .refname
            .clone()
            .unwrap_or_else(|| resolved.commit.clone());
        let mut fetch = self.git(url);
        fetch
            .arg("--git-dir")
            .arg(repository)
            .args(["fetch", "--quiet", "--depth", "1", "--no-tags", &url.remote])
            .arg(&wanted);
        let fetched = run(&mut fetch, url, "fetch");
        if fetched.is_err() && resolved.refname.is_none() {
            // A server that refuses to send a commit by its SHA: fetch everything instead.
            let mut full = self.git(url);
            full.arg("--git-dir")
                .arg(repository)
                .args(["fetch", "--quiet", "--no-tags", &url.remote])
                .arg("+refs/heads/*:refs/remotes/origin/*");
            run(&mut full, url, "fetch")?;
        } else {
            fetched?;
        }
        if !has(&resolved.commit) {
            return Err(Error::UnknownRef {
                url: url.display(),
                reference: resolved.commit.clone(),
            });
        }
        // A ref keeps the commit from git's own garbage collection.
        run(
            self.git(url)
                .arg("--git-dir")
                .arg(repository)
                .args(["update-ref", &format!("refs/bake/{}", resolved.commit)])
                .arg(&resolved.commit),
            url,
            "record a commit of",
        )?;
        Ok(())
    }

    /// Checks `resolved` out into `into` (an existing, empty directory): the whole tree, or
    /// `url`'s subdirectory, with submodules, every mtime set to the commit time, and
    /// `.git` only when `keep_git_dir`.
    pub fn checkout(
        &self,
        url: &GitUrl,
        resolved: &Resolved,
        keep_git_dir: bool,
        into: &Path,
    ) -> Result<()> {
        let repository = self.repository(url)?;
        {
            let _lock = lock(&repository)?;
            self.fetch(url, resolved, &repository)?;
        }
        let work = tempfile::Builder::new()
            .prefix("checkout-")
            .tempdir_in(&self.dir)
            .map_err(io_error("create a directory in", &self.dir))?;
        let tree = work.path();
        let git = |args: &[&str]| {
            let mut command = self.git(url);
            command.arg("-C").arg(tree).args(args);
            command
        };
        run(&mut git(&["init", "--quiet"]), url, "check out")?;
        let objects = tree.join(".git/objects/info/alternates");
        std::fs::write(
            &objects,
            format!("{}\n", repository.join("objects").display()),
        )
        .map_err(io_error("write", &objects))?;
        if let Ok(shallow) = std::fs::read(repository.join("shallow")) {
            let path = tree.join(".git/shallow");
            std::fs::write(&path, shallow).map_err(io_error("write", &path))?;
        }
        run(
            &mut git(&["remote", "add", "origin", &url.remote]),
            url,
            "check out",
        )?;
        run(
            &mut git(&["checkout", "--quiet", "--detach", &resolved.commit]),
            url,
            "check out",
        )?;
        if tree.join(".gitmodules").is_file() {
            run(
                &mut git(&[
                    "submodule",
                    "update",
                    "--quiet",
                    "--init",
                    "--recursive",
                    "--depth",
                    "1",
                ]),
                url,
                "fetch the submodules of",
            )?;
        }
        if keep_git_dir {
            // A self-contained `.git`: the objects it borrowed from the cache are copied in.
            run(
                &mut git(&["repack", "-a", "-d", "--quiet"]),
                url,
                "check out",
            )?;
            std::fs::remove_file(&objects).map_err(io_error("remove", &objects))?;
        } else {
            let dot_git = tree.join(".git");
            std::fs::remove_dir_all(&dot_git).map_err(io_error("remove", &dot_git))?;
        }
        let time = run(
            self.git(url).arg("--git-dir").arg(&repository).args([
                "show",
                "-s",
                "--format=%ct",
                &resolved.commit,
            ]),
            url,
            "read the commit time of",
        )?;
        let mtime: i64 = time.trim().parse().unwrap_or(0);
        let source = match &url.subdir {
            Some(subdir) => {
                let path = tree.join(subdir);
                if !path.is_dir() {
                    return Err(Error::GitSubdir {
                        url: url.display(),
                        subdir: subdir.clone(),
                    });
                }
                path
            }
            None => tree.to_path_buf(),
        };
        set_mtimes(&source, mtime)?;
        for entry in std::fs::read_dir(&source).map_err(io_error("read", &source))? {
            let entry = entry.map_err(io_error("read", &source))?;
            let target = into.join(entry.file_name());
            std::fs::rename(entry.path(), &target).map_err(io_error("move", &target))?;
        }
        set_mtimes(into, mtime)
    }
}

/// Whether `reference` is a full commit SHA.
fn is_commit(reference: &str) -> bool {
    reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Picks the commit `reference` names from `git ls-remote` output: an exact full ref, else
/// a tag (its peeled commit), else a branch, else any ref ending in `/<reference>`.
// Compat: git's own ref lookup order (refs/<name>, refs/tags/, refs/heads/).
fn pick_ref(listing: &str, reference: &str) -> Option<Resolved> {
    let refs: BTreeMap<&str, &str> = listing
        .lines()
        .filter_map(|line| {
            let (commit, name) = line.split_once('\t')?;
            Some((name.trim(), commit.trim()))
        })
        .collect();
    let candidates = [
        reference.to_owned(),
        format!("refs/{reference}"),
        format!("refs/tags/{reference}"),
        format!("refs/heads/{reference}"),
    ];
    let found = candidates
        .iter()
        .find(|name| refs.contains_key(name.as_str()))
        .cloned()
        .or_else(|| {
            let suffix = format!("/{reference}");
            refs.keys()
                .find(|name| name.ends_with(&suffix) && !name.ends_with("^{}"))
                .map(|name| (*name).to_owned())
        })?;
    // An annotated tag lists the tag object; the commit is on its `^{}` line.
    let commit = refs
        .get(format!("{found}^{{}}").as_str())
        .or_else(|| refs.get(found.as_str()))?;
    Some(Resolved {
        commit: (*commit).to_owned(),
        refname: (found != "HEAD").then_some(found),
    })
}

/// Holds an exclusive lock on `<repository>.lock` while it lives.
fn lock(repository: &Path) -> Result<std::fs::File> {
    let path = repository.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error("open", &path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| Error::Io {
        action: "lock",
        path: path.clone(),
        source: e.into(),
    })?;
    Ok(file)
}

/// Runs a git command; a failure names the URL, what was being done and git's last words.
fn run(command: &mut Command, url: &GitUrl, action: &'static str) -> Result<String> {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| Error::GitSpawn { source })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    Err(Error::Git {
        action,
        url: url.display(),
        status: output.status.code().unwrap_or(-1),
        stderr: tail,
    })
}

/// Sets the mtime (and atime) of `root` and everything below it to `seconds`, symlinks
/// included, so a checkout's tree is the same whenever and wherever it is made.
pub(crate) fn set_mtimes(root: &Path, seconds: i64) -> Result<()> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};
    let time = Timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    let mut stack = vec![root.to_path_buf()];
    let mut directories = Vec::new();
    while let Some(path) = stack.pop() {
        let metadata = std::fs::symlink_metadata(&path).map_err(io_error("read", &path))?;
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io_error("read", &path))? {
                stack.push(entry.map_err(io_error("read", &path))?.path());
            }
            directories.push(path);
        } else {
            rustix::fs::utimensat(CWD, &path, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
                Error::Io {
                    action: "set the times of",
                    path: path.clone(),
                    source: e.into(),
                }
            })?;
        }
    }
    // Directories last, deepest first: setting a child's times does not touch its parent's
    // mtime, but moving entries in does.
    for path in directories.iter().rev() {
        rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
            Error::Io {
                action: "set the times of",
                path: path.clone(),
                source: e.into(),
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_resolve_tags_before_branches_and_peel_annotated_tags() {
        let listing = "\
1111111111111111111111111111111111111111\tHEAD
2222222222222222222222222222222222222222\trefs/heads/main
3333333333333333333333333333333333333333\trefs/heads/v1
4444444444444444444444444444444444444444\trefs/tags/v1
5555555555555555555555555555555555555555\trefs/tags/v1^{}
";
        let tag = pick_ref(listing, "v1").unwrap();
        assert_eq!(tag.commit, "5".repeat(40));
        assert_eq!(tag.refname.as_deref(), Some("refs/tags/v1"));
        assert_eq!(pick_ref(listing, "main").unwrap().commit, "2".repeat(40));
        assert_eq!(
            pick_ref(listing, "refs/heads/v1").unwrap().commit,
            "3".repeat(40)
        );
        let head = pick_ref(listing, "HEAD").unwrap();
        assert_eq!(
            (head.commit.as_str(), head.refname),
            ("1111111111111111111111111111111111111111", None)
        );
        assert!(pick_ref(listing, "nope").is_none());
    }

    #[test]
    fn auth_tokens_become_basic_or_scheme_headers_per_host() {
        let env = BTreeMap::from([
            ("BUILDX_BAKE_GIT_AUTH_TOKEN".to_owned(), "t0".to_owned()),
            (
                "BUILDX_BAKE_GIT_AUTH_TOKEN.gitlab.com".to_owned(),
                "t1".to_owned(),
            ),
            (
                "BUILDX_BAKE_GIT_AUTH_HEADER.gitlab.com".to_owned(),
                "bearer".to_owned(),
            ),
        ]);
        let auth = Auth::from_env(&env, "BUILDX_BAKE_GIT_AUTH");
        assert_eq!(auth.header("gitlab.com").as_deref(), Some("bearer t1"));
        assert_eq!(
            auth.header("github.com").as_deref(),
            Some("basic eC1hY2Nlc3MtdG9rZW46dDA=")
        );
        assert_eq!(Auth::default().header("github.com"), None);
    }
}
