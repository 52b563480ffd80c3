//! Remote build inputs made local before the front end runs: a git context is checked out at
//! the commit its ref names now, an HTTP tarball is unpacked, and a plain file over HTTP
//! becomes the Dockerfile of an empty context, as buildx does. The rest of the build then
//! treats them as local directories, keyed by content. Part of `engine`.
//!
//! Checkouts live in the state root under the commit (and the subdirectory and whether
//! `.git` is kept), so an unchanged ref costs one `git ls-remote` and reuses the tree, whose
//! stat cache makes its checksum cheap; a moved branch gets a new tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::engine::error::Error;
use crate::plan::{BuildRequest, Context, Dockerfile, NamedContext, Plan};
use crate::source::git::{Auth, Git, GitUrl, is_git_url};
use crate::source::http::Http;

/// The context that is read from stdin.
pub const STDIN: &str = "-";

/// Whether a command-line word is a remote bake definition rather than a target name.
// Compat: buildx IsRemoteURL: an HTTP(S) URL or a git URL.
pub fn is_remote_url(word: &str) -> bool {
    word.starts_with("https://") || word.starts_with("http://") || is_git_url(word)
}

/// The git URL `url` with `subdir` joined below its own directory (`None`: not a git URL).
pub fn git_subdir(url: &str, subdir: &str) -> Option<String> {
    if !is_git_url(url) {
        return None;
    }
    GitUrl::parse(url)
        .ok()
        .map(|base| base.join_subdir(subdir).display())
}

/// Whether any request reads a git or HTTP context, Dockerfile or named context.
pub fn has_remote(plan: &Plan) -> bool {
    plan.requests.iter().any(|r| {
        matches!(r.context, Context::Remote(_))
            || matches!(r.dockerfile, Dockerfile::Remote(_))
            || r.named_contexts
                .values()
                .any(|c| matches!(c, NamedContext::Remote { .. }))
    })
}

/// A remote input made local.
#[derive(Debug, Clone)]
enum Fetched {
    /// A directory tree (a checkout or an unpacked tarball).
    Tree(PathBuf),
    /// A single non-archive file: the text of a Dockerfile.
    File(String),
}

/// Fetches every remote input of `plan` into the state root `root` and returns the plan with
/// local paths in their place. `env` supplies `BUILDX_BAKE_GIT_AUTH_TOKEN`/`_HEADER`.
pub fn fetch(plan: &Plan, root: &Path, env: &BTreeMap<String, String>) -> Result<Plan, Error> {
    let mut fetcher = Fetcher {
        git: Git::new(root).with_auth(Auth::from_env(env, "BUILDX_BAKE_GIT_AUTH")),
        http: Http::new(root),
        root: root.to_owned(),
        seen: BTreeMap::new(),
    };
    let requests = plan
        .requests
        .iter()
        .map(|request| fetcher.request(request))
        .collect::<Result<_, _>>()?;
    Ok(Plan { requests })
}

/// A bake definition read from a URL: the directory it came in (a checkout or an unpacked
/// tarball), or the single file the URL is.
#[derive(Debug, Clone)]
pub enum Definition {
    /// A repository or archive: bake files are read from this directory.
    Tree(PathBuf),
    /// A single file: its text.
    File(String),
}

/// Fetches a remote bake definition (`bake <url>`) into the state root `root`.
// Compat: buildx ReadRemoteFiles (bake/remote.go): a git URL is checked out, an HTTP URL is
// unpacked when it is an archive, else it is the one bake file.
pub fn definition(
    url: &str,
    root: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Definition, crate::source::Error> {
    let mut fetcher = Fetcher {
        git: Git::new(root).with_auth(Auth::from_env(env, "BUILDX_BAKE_GIT_AUTH")),
        http: Http::new(root),
        root: root.to_owned(),
        seen: BTreeMap::new(),
    };
    Ok(match fetcher.fetch(url, false)? {
        Fetched::Tree(dir) => Definition::Tree(dir),
        Fetched::File(text) => Definition::File(text),
    })
}

struct Fetcher {
    git: Git,
    http: Http,
    root: PathBuf,
    /// What each URL (with its keep-git-dir choice) became, so targets sharing it fetch once.
    seen: BTreeMap<(String, bool), Fetched>,
}

impl Fetcher {
    fn request(&mut self, request: &BuildRequest) -> Result<BuildRequest, Error> {
        let mut out = request.clone();
        // Compat: BuildKit's dockerui keeps `.git` in a git context when the build argument
        // `BUILDKIT_CONTEXT_KEEP_GIT_DIR` is true.
        let keep = request
            .build_args
            .get("BUILDKIT_CONTEXT_KEEP_GIT_DIR")
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "True"));
        if let Context::Remote(url) = &request.context {
            let fetched = self
                .fetch(url, keep)
                .map_err(|source| Error::RemoteContext {
                    target: request.target.clone(),
                    url: url.clone(),
                    source: Box::new(source),
                })?;
            match fetched {
                Fetched::Tree(dir) => {
                    if let Dockerfile::Remote(name) = &request.dockerfile {
                        out.dockerfile = Dockerfile::File(dir.join(name));
                    }
                    out.context = Context::Local(dir);
                }
                Fetched::File(text) => {
                    if let Dockerfile::Remote(_) = &request.dockerfile {
                        out.dockerfile = Dockerfile::Inline(text);
                    }
                    out.context = Context::Local(self.empty()?);
                }
            }
        }
        for (name, context) in &request.named_contexts {
            let NamedContext::Remote { url } = context else {
                continue;
            };
            let fetched = self
                .fetch(url, false)
                .map_err(|source| Error::NamedContext {
                    target: request.target.clone(),
                    name: name.clone(),
                    value: url.clone(),
                    source: Box::new(source),
                })?;
            let path = match fetched {
                Fetched::Tree(dir) => dir,
                // Compat: a named context from a single file is a directory holding it.
                Fetched::File(_) => self.single_file_dir(url)?,
            };
            out.named_contexts
                .insert(name.clone(), NamedContext::Local { path });
        }
        Ok(out)
    }

    fn fetch(&mut self, url: &str, keep_git_dir: bool) -> Result<Fetched, crate::source::Error> {
        let key = (url.to_owned(), keep_git_dir);
        if let Some(done) = self.seen.get(&key) {
            return Ok(done.clone());
        }
        let fetched = if is_git_url(url) {
            Fetched::Tree(self.checkout(&GitUrl::parse(url)?, keep_git_dir)?)
        } else {
            let (blob, digest) = if url == STDIN {
                self.stdin()?
            } else {
                let download = self.http.fetch(url, None)?;
                (self.http.path(&download), download.digest)
            };
            if crate::source::archive::is_archive(&blob) {
                let dir = self.root.join("http/trees").join(&digest.hex()[..32]);
                if !dir.is_dir() {
                    let temporary = self.temporary("http")?;
                    crate::source::archive::unpack(&blob, &temporary, url)?;
                    settle(&temporary, &dir)?;
                }
                Fetched::Tree(dir)
            } else {
                let text = std::fs::read(&blob).map_err(|source| crate::source::Error::Io {
                    action: "read",
                    path: blob.clone(),
                    source,
                })?;
                Fetched::File(String::from_utf8_lossy(&text).into_owned())
            }
        };
        self.seen.insert(key, fetched.clone());
        Ok(fetched)
    }

    /// Reads stdin (the context `-`) into a blob of the state root, once: its path and digest.
    fn stdin(&self) -> Result<(PathBuf, crate::digest::Digest), crate::source::Error> {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|source| crate::source::Error::Io {
                action: "read",
                path: PathBuf::from("stdin"),
                source,
            })?;
        let digest = crate::digest::Digest::of(&bytes);
        let dir = self.root.join("stdin");
        let blob = dir.join(digest.hex());
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| crate::source::Error::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        // Written aside and renamed, so a killed read never leaves a blob under its digest
        // that holds less than stdin did.
        let temporary = dir.join(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&temporary, &bytes).map_err(io("write", &temporary))?;
        std::fs::rename(&temporary, &blob).map_err(io("create", &blob))?;
        Ok((blob, digest))
    }

    /// The checkout of `url` at the commit its ref names now.
    fn checkout(&self, url: &GitUrl, keep_git_dir: bool) -> Result<PathBuf, crate::source::Error> {
        let resolved = self.git.resolve(url)?;
        let variant = Digest::of_parts([
            url.subdir.as_deref().unwrap_or_default().as_bytes(),
            b"\0",
            if keep_git_dir { b"keep" } else { b"drop" },
        ]);
        let dir = self.root.join("git/checkouts").join(format!(
            "{}-{}",
            resolved.commit,
            &variant.hex()[..16]
        ));
        if !dir.is_dir() {
            let temporary = self.temporary("git")?;
            self.git
                .checkout(url, &resolved, keep_git_dir, &temporary)?;
            settle(&temporary, &dir)?;
        }
        Ok(dir)
    }

    /// A new directory beside the final ones, renamed into place when complete.
    fn temporary(&self, kind: &str) -> Result<PathBuf, crate::source::Error> {
        let dir = self
            .root
            .join(kind)
            .join(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|source| crate::source::Error::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// An empty directory, the context of a Dockerfile given by URL.
    fn empty(&self) -> Result<PathBuf, Error> {
        let dir = self.root.join("http/empty");
        std::fs::create_dir_all(&dir).map_err(|source| Error::State {
            root: self.root.clone(),
            source: Box::new(source),
        })?;
        Ok(dir)
    }

    /// A directory holding the single file `url` downloaded to, under its file name.
    fn single_file_dir(&self, url: &str) -> Result<PathBuf, Error> {
        let state = |source: std::io::Error| Error::State {
            root: self.root.clone(),
            source: Box::new(source),
        };
        let download = self.http.fetch(url, None).map_err(|e| Error::State {
            root: self.root.clone(),
            source: Box::new(e),
        })?;
        let dir = self
            .root
            .join("http/files")
            .join(&download.digest.hex()[..32]);
        std::fs::create_dir_all(&dir).map_err(state)?;
        let target = dir.join(download.filename());
        if !target.is_file() {
            std::fs::copy(self.http.path(&download), &target).map_err(state)?;
        }
        Ok(dir)
    }
}

/// Moves a finished tree to its final name; another process that got there first wins.
fn settle(temporary: &Path, dir: &Path) -> Result<(), crate::source::Error> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|source| crate::source::Error::Io {
            action: "create",
            path: parent.to_owned(),
            source,
        })?;
    }
    if std::fs::rename(temporary, dir).is_err() {
        let _ = std::fs::remove_dir_all(temporary);
        if !dir.is_dir() {
            return Err(crate::source::Error::Io {
                action: "create",
                path: dir.to_owned(),
                source: std::io::Error::other("could not move the fetched tree into place"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_parts_of_a_plan_are_found() {
        let mut plan = Plan::default();
        assert!(!has_remote(&plan));
        let request = BuildRequest {
            context: Context::Local("/x".into()),
            ..crate::engine::lower::tests::request("app", None, &[])
        };
        plan.requests.push(request.clone());
        assert!(!has_remote(&plan));
        let mut named = request;
        named.named_contexts.insert(
            "src".to_owned(),
            NamedContext::Remote {
                url: "git://h/r".to_owned(),
            },
        );
        plan.requests.push(named);
        assert!(has_remote(&plan));
    }
}
