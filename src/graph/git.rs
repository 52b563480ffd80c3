//! Git URLs as BuildKit reads them: every form a user writes (`https://`, `http://`,
//! `git://`, `ssh://`, `user@host:path`, `github.com/...`), the `#ref:subdir` fragment and
//! buildx's query form, and the `git://` source identifier built from them. Pure data, shared
//! by the Dockerfile front end (which writes git source ops) and the git source (which reads
//! them back).

use std::collections::BTreeMap;

/// The source attribute holding the full remote URL (the identifier drops the scheme).
// Compat: BuildKit pb.AttrFullRemoteURL.
pub const FULL_URL: &str = "git.fullurl";
/// The source attribute that keeps the `.git` directory in the checkout.
pub const KEEP_GIT_DIR: &str = "git.keepgitdir";
/// The source attribute naming the commit (or its prefix) the ref must resolve to.
pub const CHECKSUM: &str = "git.checksum";

/// A git repository reference: where to fetch, which ref and which directory of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitUrl {
    /// What git fetches: the URL without fragment or query.
    pub remote: String,
    /// The host (with its port), for identifiers and credentials.
    pub host: String,
    /// The repository path on the host, without a leading `/`.
    pub path: String,
    /// The branch, tag, commit or full ref (`None`: the remote's HEAD).
    pub reference: Option<String>,
    /// The directory of the repository to use (`None`: the root).
    pub subdir: Option<String>,
    /// The commit the ref must resolve to (a full or abbreviated SHA).
    pub checksum: Option<String>,
    /// Whether the remote is reached over SSH (`ssh://` or `user@host:path`).
    pub ssh: bool,
}

/// Why a git URL does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid git URL `{url}`: {reason}")]
pub struct BadGitUrl {
    /// The URL as written.
    pub url: String,
    /// What is wrong.
    pub reason: String,
}

/// Whether `url` names a git repository rather than a file over HTTP or a local path.
// Compat: buildx/BuildKit DetectGitContext: `git://`, `git@`, `github.com/`, `ssh://`, or an
// HTTP(S) URL whose path ends in `.git`.
pub fn is_git_url(url: &str) -> bool {
    if ["git://", "git@", "github.com/", "ssh://"]
        .iter()
        .any(|prefix| url.starts_with(prefix))
    {
        return true;
    }
    (url.starts_with("https://") || url.starts_with("http://"))
        && url
            .split(['#', '?'])
            .next()
            .is_some_and(|path| path.trim_end_matches('/').ends_with(".git"))
}

impl GitUrl {
    /// Parses a git URL as a user writes it: `https://host/org/repo.git#ref:subdir`,
    /// `git@host:org/repo`, `ssh://...`, `git://...`, with the fragment or buildx's query
    /// form (`?ref=main&subdir=app&checksum=...`).
    pub fn parse(url: &str) -> std::result::Result<Self, BadGitUrl> {
        let bad = |reason: &str| BadGitUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (rest, fragment) = match url.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (url, None),
        };
        let (base, query) = match rest.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (rest, None),
        };
        let base = if base.starts_with("github.com/") {
            format!("https://{base}")
        } else {
            base.to_owned()
        };
        let (host, path, ssh) = if let Some((scheme, after)) = base.split_once("://") {
            if !["https", "http", "git", "ssh"].contains(&scheme) {
                return Err(bad(&format!("unknown scheme `{scheme}`")));
            }
            let (authority, path) = after.split_once('/').unwrap_or((after, ""));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            (host.to_owned(), path.to_owned(), scheme == "ssh")
        } else if let Some((authority, path)) = base.split_once(':')
            && authority.contains('@')
        {
            // scp-like syntax: `user@host:org/repo.git`.
            let host = authority.rsplit('@').next().unwrap_or(authority);
            (host.to_owned(), path.to_owned(), true)
        } else {
            return Err(bad(
                "expected `https://`, `http://`, `git://`, `ssh://` or `user@host:path`",
            ));
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let path = path.trim_matches('/').to_owned();
        if path.is_empty() {
            return Err(bad("no repository path"));
        }
        let mut parsed = Self {
            remote: base,
            host,
            path,
            reference: None,
            subdir: None,
            checksum: None,
            ssh,
        };
        if let Some(fragment) = fragment {
            let (reference, subdir) = match fragment.split_once(':') {
                Some((reference, subdir)) => (reference, Some(subdir)),
                None => (fragment, None),
            };
            parsed.reference = Some(reference).filter(|r| !r.is_empty()).map(str::to_owned);
            parsed.subdir = subdir.and_then(clean_subdir);
        }
        if let Some(query) = query {
            if fragment.is_some() {
                return Err(bad(
                    "use either a `#ref:subdir` fragment or a query, not both",
                ));
            }
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let value = percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned();
                match key {
                    "ref" | "branch" | "tag" => parsed.reference = Some(value),
                    "subdir" => parsed.subdir = clean_subdir(&value),
                    "checksum" | "commit" => parsed.checksum = Some(value),
                    _ => {
                        return Err(bad(&format!(
                            "unknown query parameter `{key}` (expected `ref`, `branch`, `tag`, `subdir` or `checksum`)"
                        )));
                    }
                }
            }
        }
        Ok(parsed)
    }

    /// Reads a `git://` source op back: its identifier after the scheme and its attributes
    /// (the full URL, when the front end recorded one, says how to reach the host).
    pub fn from_source(
        identifier: &str,
        attrs: &BTreeMap<String, String>,
    ) -> std::result::Result<Self, BadGitUrl> {
        let fragment = identifier.split_once('#').map(|(_, f)| f);
        let remote = match attrs.get(FULL_URL) {
            Some(full) => full.clone(),
            None => format!(
                "https://{}",
                identifier.split('#').next().unwrap_or_default()
            ),
        };
        let mut url = Self::parse(&match fragment {
            Some(fragment) => format!("{remote}#{fragment}"),
            None => remote,
        })?;
        if let Some(checksum) = attrs.get(CHECKSUM) {
            url.checksum = Some(checksum.clone());
        }
        Ok(url)
    }

    /// The source op identifier (after `git://`): host, path and `#ref:subdir`, the same for
    /// every protocol that reaches the repository.
    // Compat: BuildKit llb.Git builds the id from remote.Host + path.Join("/", remote.Path).
    pub fn identifier(&self) -> String {
        let mut id = format!("{}/{}", self.host, self.path);
        if self.reference.is_some() || self.subdir.is_some() {
            id.push('#');
            id.push_str(self.reference.as_deref().unwrap_or_default());
            if let Some(subdir) = &self.subdir {
                id.push(':');
                id.push_str(subdir);
            }
        }
        id
    }

    /// The URL with a `#ref:subdir` fragment, as progress and messages show it.
    pub fn display(&self) -> String {
        match (&self.reference, &self.subdir) {
            (None, None) => self.remote.clone(),
            (reference, subdir) => {
                let mut text = format!(
                    "{}#{}",
                    self.remote,
                    reference.as_deref().unwrap_or_default()
                );
                if let Some(subdir) = subdir {
                    text.push(':');
                    text.push_str(subdir);
                }
                text
            }
        }
    }

    /// The same repository and ref with `subdir` joined below this URL's own directory.
    pub fn join_subdir(&self, subdir: &str) -> Self {
        let joined = match &self.subdir {
            Some(base) => format!("{base}/{subdir}"),
            None => subdir.to_owned(),
        };
        Self {
            subdir: clean_subdir(&joined),
            ..self.clone()
        }
    }
}

/// A subdirectory cleaned like Go's `path.Clean`, relative; `None` for the root.
fn clean_subdir(subdir: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in subdir.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form_parses_to_host_path_ref_and_subdir() {
        let url = GitUrl::parse("https://github.com/moby/buildkit.git#v0.10.1:docs").unwrap();
        assert_eq!(url.remote, "https://github.com/moby/buildkit.git");
        assert_eq!(url.host, "github.com");
        assert_eq!(url.path, "moby/buildkit.git");
        assert_eq!(url.reference.as_deref(), Some("v0.10.1"));
        assert_eq!(url.subdir.as_deref(), Some("docs"));
        assert!(!url.ssh);
        assert_eq!(
            url.identifier(),
            "github.com/moby/buildkit.git#v0.10.1:docs"
        );

        let scp = GitUrl::parse("git@github.com:moby/moby.git").unwrap();
        assert_eq!(scp.remote, "git@github.com:moby/moby.git");
        assert_eq!(scp.identifier(), "github.com/moby/moby.git");
        assert!(scp.ssh);

        let daemon = GitUrl::parse("git://127.0.0.1:9418/repo#main").unwrap();
        assert_eq!(daemon.host, "127.0.0.1:9418");
        assert_eq!(daemon.identifier(), "127.0.0.1:9418/repo#main");

        let ssh = GitUrl::parse("ssh://git@host.example:2222/org/repo#:sub/dir/").unwrap();
        assert!(ssh.ssh);
        assert_eq!(ssh.reference, None);
        assert_eq!(ssh.subdir.as_deref(), Some("sub/dir"));
        assert_eq!(ssh.identifier(), "host.example:2222/org/repo#:sub/dir");

        let bare = GitUrl::parse("github.com/org/repo").unwrap();
        assert_eq!(bare.remote, "https://github.com/org/repo");
    }

    #[test]
    fn the_query_form_sets_ref_subdir_and_checksum() {
        let url =
            GitUrl::parse("https://host/org/repo.git?ref=refs/tags/v1&subdir=app&checksum=abc")
                .unwrap();
        assert_eq!(url.reference.as_deref(), Some("refs/tags/v1"));
        assert_eq!(url.subdir.as_deref(), Some("app"));
        assert_eq!(url.checksum.as_deref(), Some("abc"));
        assert!(GitUrl::parse("https://host/r.git?color=red").is_err());
        assert!(GitUrl::parse("https://host/r.git?ref=a#b").is_err());
        assert!(GitUrl::parse("ftp://host/r.git").is_err());
        assert!(GitUrl::parse("https://host").is_err());
    }

    #[test]
    fn git_urls_are_told_from_files_and_paths() {
        assert!(is_git_url("https://github.com/moby/buildkit.git#v0.10.1"));
        assert!(is_git_url("https://host/r.git?ref=main"));
        assert!(is_git_url("git@github.com:moby/buildkit.git"));
        assert!(is_git_url("git://127.0.0.1/repo"));
        assert!(!is_git_url("https://example.com/file.tar.gz"));
        assert!(!is_git_url("./app"));
    }

    #[test]
    fn source_ops_read_back_with_their_full_url() {
        let attrs = BTreeMap::from([(FULL_URL.to_owned(), "git://127.0.0.1:1/repo".to_owned())]);
        let url = GitUrl::from_source("127.0.0.1:1/repo#v1:app", &attrs).unwrap();
        assert_eq!(url.remote, "git://127.0.0.1:1/repo");
        assert_eq!(url.reference.as_deref(), Some("v1"));
        assert_eq!(url.subdir.as_deref(), Some("app"));
        let plain = GitUrl::from_source("github.com/a/b.git", &BTreeMap::new()).unwrap();
        assert_eq!(plain.remote, "https://github.com/a/b.git");
        assert_eq!(
            plain.join_subdir("x/../y").display(),
            "https://github.com/a/b.git#:y"
        );
    }
}
