//! The solver's `OpExec` for every `graph::Op`: results are [`Ref`]s to snapshots under one
//! state root, and each op kind is one function. Part of `ops`.
//!
//! An exec or file op starts from a new snapshot of its base input (an overlay on it, or a
//! copy), so inputs stay immutable and shareable between vertices and targets. Each result
//! records the ref it was made from and what kind of layer it adds, which is all an export
//! needs to list the image's layers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::executor::{Runtime, Stream};
use crate::graph::{ExecOp, FileOp, Op, Source, SourceOp, Vertex};
use crate::progress::Stream as LogStream;
use crate::snapshot::{Blob, Native, Overlay, Snapshotter};
use crate::solver::{CacheMap, Context, OpExec};
use crate::source::StatCache;
use crate::source::git::GitUrl;
use crate::source::image::Puller;
use crate::source::local::LocalSource;
use crate::source::oci_layout::OciLayout;

// The worker's result type and its layer kinds, for the engine that exports results.
pub use crate::snapshot::{Blob as LayerBlob, Layer, Ref};

/// An input tree as the op functions read it: a materialised [`Ref`]'s directory.
pub type Snapshot = Arc<PathBuf>;

/// Why an op failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A RUN step exited non-zero.
    #[error("process `{command}` did not complete successfully: exit code {code}\n{tail}")]
    Failed {
        /// The command line.
        command: String,
        /// The exit code.
        code: i32,
        /// The last lines of its output.
        tail: String,
        /// The step's platform when only its first process ran under QEMU (no
        /// `binfmt_misc` handler), which makes the programs it starts fail.
        first_process_only: Option<String>,
    },
    /// The op needs a source bake does not fetch.
    #[error("{what} is not supported")]
    Unsupported {
        /// What is missing.
        what: String,
    },
    /// A local source name the build did not provide.
    #[error("no local context named `{name}` was provided")]
    UnknownLocal {
        /// The name.
        name: String,
    },
    /// An op refers to an input the vertex does not have.
    #[error("malformed op: input {index} is missing")]
    MissingInput {
        /// The index.
        index: usize,
    },
    /// The exec op failed to run.
    #[error(transparent)]
    Exec(#[from] crate::ops::exec::Error),
    /// A file op failed.
    #[error(transparent)]
    File(#[from] crate::ops::file::Error),
    /// A merge failed.
    #[error(transparent)]
    Merge(#[from] crate::ops::merge::Error),
    /// Preparing, committing or mounting a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::Error),
    /// Reading a source failed.
    #[error(transparent)]
    Source(#[from] crate::source::Error),
    /// A source op's identifier is not one bake reads.
    #[error(transparent)]
    BadSource(#[from] crate::graph::SourceError),
    /// The step's platform cannot run on this host.
    #[error(transparent)]
    Emulation(#[from] crate::ops::emulation::NoEmulator),
    /// The content store holding base image layers failed.
    #[error(transparent)]
    Content(#[from] crate::content::Error),
    /// A lazy layer's blob could not be fetched from the build cache it was imported from.
    #[error("failed to fetch layer `{digest}` from the imported build cache")]
    Fetch {
        /// The blob.
        digest: crate::digest::Digest,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Creating a snapshot directory failed.
    #[error("failed to create `{path}`")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A local directory the build may read (`local://<name>`), with its ignore rules.
#[derive(Debug, Clone)]
pub struct LocalInput {
    /// The name the front end gave it (`context`, or a named context's name): the cache key
    /// is computed as if the source were `local://<name>`, so where the directory lives and
    /// what the engine renamed it to never change the key; its content does.
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// The Dockerfile, whose `<Dockerfile>.dockerignore` wins over `.dockerignore`.
    pub dockerfile: Option<PathBuf>,
}

/// Which snapshotter a worker uses (buildkitd.toml's `snapshotter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotterKind {
    /// Overlayfs when this process may mount it on the state root's filesystem, else native.
    Auto,
    /// Overlayfs, falling back to native where it cannot work.
    Overlayfs,
    /// Full copies.
    Native,
}

/// Runs ops for the solver.
pub struct Worker {
    /// Makes, commits and mounts every step's tree; chosen once per worker.
    snapshotter: Arc<dyn Snapshotter>,
    /// Where each context's stat cache lives, so a rebuild reads only changed files.
    stat_caches: PathBuf,
    /// The stat caches of the contexts this worker read, by canonical directory.
    contexts: std::sync::Mutex<BTreeMap<PathBuf, StatCache>>,
    /// What computing a local source's key listed and hashed, by vertex and directory, for
    /// the snapshot made right after when the key misses the cache.
    walks: std::sync::Mutex<BTreeMap<(String, PathBuf), Walked>>,
    /// The same, by the context snapshot made from it: a COPY from that snapshot computes
    /// its key from these instead of listing and reading the snapshot again.
    trees: std::sync::Mutex<BTreeMap<PathBuf, Arc<Walked>>>,
    snapshots: PathBuf,
    runtime: Box<dyn Runtime>,
    cache_root: PathBuf,
    secrets: BTreeMap<String, Vec<u8>>,
    ssh: BTreeMap<String, PathBuf>,
    locals: BTreeMap<String, LocalInput>,
    root: PathBuf,
    images: Option<Arc<Puller>>,
    /// What each git or HTTP source vertex resolved to when its cache key was computed, so
    /// the tree it makes is the one the key names even if the remote moves meanwhile.
    remotes: std::sync::Mutex<BTreeMap<crate::digest::Digest, Remote>>,
    /// Where lazy layers missing from the store come from (an imported build cache).
    fetch: Option<Arc<dyn crate::content::Fetch>>,
    /// Fills empty cache mounts from the imported build caches.
    restore: Option<crate::ops::cache_mount::Restore>,
}

/// How many layers an overlay context snapshot may stand on before the next one is made
/// whole again: each edit adds one, and every lookup through the mount and every COPY link
/// probes them top down.
const MAX_CONTEXT_LAYERS: usize = 8;

/// A context's entries and the digest of each, as its key's checksum computed them.
type Walked = (
    Vec<crate::source::local::Entry>,
    Vec<Option<crate::digest::Digest>>,
);

/// A git or HTTP source pinned at cache-key time.
#[derive(Debug, Clone)]
enum Remote {
    Git(crate::source::git::Resolved),
    Http(crate::source::http::Download),
}

impl Worker {
    /// Creates a worker keeping snapshots under `state/snapshots` and cache mounts under
    /// `state/cache-mounts`.
    pub fn new(
        state: &Path,
        runtime: Box<dyn Runtime>,
        locals: BTreeMap<String, LocalInput>,
    ) -> Self {
        Self {
            snapshotter: Arc::new(Native::new(&state.join("snapshots"))),
            stat_caches: state.join("statcache"),
            contexts: std::sync::Mutex::new(BTreeMap::new()),
            walks: std::sync::Mutex::new(BTreeMap::new()),
            trees: std::sync::Mutex::new(BTreeMap::new()),
            snapshots: state.join("snapshots"),
            runtime,
            cache_root: state.join(crate::ops::cache_mount::CACHE_MOUNTS_DIR),
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            locals,
            root: state.to_owned(),
            images: None,
            remotes: std::sync::Mutex::new(BTreeMap::new()),
            fetch: None,
            restore: None,
        }
    }

    /// Sets where the contents of empty cache mounts come from (the cache mounts carried by
    /// the `cache-from` caches).
    pub fn with_mount_seeds(mut self, seeds: Arc<dyn crate::ops::cache_mount::Seeds>) -> Self {
        self.restore = Some(crate::ops::cache_mount::Restore::new(seeds, &self.root));
        self
    }

    /// Where cache mounts live (`<state>/cache-mounts`), for `cache-to` to archive them.
    pub fn cache_mounts(&self) -> &Path {
        &self.cache_root
    }

    /// Sets the registry puller `docker-image://` sources use (default: one with the
    /// environment's credentials and no `--pull`).
    pub fn with_images(mut self, images: Arc<Puller>) -> Self {
        self.images = Some(images);
        self
    }

    /// Sets where the blobs of lazy layers come from when the store lacks them (the
    /// records imported from `cache-from`).
    pub fn with_fetch(mut self, fetch: Arc<dyn crate::content::Fetch>) -> Self {
        self.fetch = Some(fetch);
        self
    }

    /// Where the blobs of lazy layers come from, if anywhere.
    pub fn fetcher(&self) -> Option<Arc<dyn crate::content::Fetch>> {
        self.fetch.clone()
    }

    /// Picks the snapshotter; overlayfs needs root, a private mount namespace (so mounts end
    /// with the process) and a filesystem that takes overlay upper directories.
    // Compat: buildkitd's `auto` picks overlayfs when the kernel allows it.
    pub fn with_snapshotter(mut self, kind: SnapshotterKind) -> Self {
        let overlay = match kind {
            SnapshotterKind::Native => None,
            SnapshotterKind::Auto | SnapshotterKind::Overlayfs => Overlay::new(&self.snapshots),
        };
        self.snapshotter = match overlay {
            Some(overlay) => Arc::new(overlay),
            None => Arc::new(Native::new(&self.snapshots)),
        };
        self
    }

    /// The snapshotter in use: `overlayfs` or `native`.
    pub fn snapshotter(&self) -> &'static str {
        self.snapshotter.name()
    }

    /// The snapshotter itself, for the cache store that must mount the trees it hands back.
    pub fn snapshots(&self) -> Arc<dyn Snapshotter> {
        self.snapshotter.clone()
    }

    /// Sets the SSH agent sockets RUN steps may mount, by id.
    pub fn with_ssh(mut self, ssh: BTreeMap<String, PathBuf>) -> Self {
        self.ssh = ssh;
        self
    }

    /// Sets the secret values RUN steps may mount.
    pub fn with_secrets(mut self, secrets: BTreeMap<String, Vec<u8>>) -> Self {
        self.secrets = secrets;
        self
    }

    fn fresh(&self) -> Result<PathBuf, Error> {
        std::fs::create_dir_all(&self.snapshots).map_err(|source| Error::Io {
            path: self.snapshots.clone(),
            source,
        })?;
        // Unique across processes and runs: a cached snapshot must never be reused as the
        // scratch directory of a new step.
        let path = self
            .snapshots
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// A new snapshot starting as `base` (or empty): an overlay on it, or a copy of it.
    fn derive(&self, base: Option<&Path>) -> Result<PathBuf, Error> {
        Ok(self.snapshotter.prepare(base)?)
    }

    /// The directory of `input`, mounted or built for this process (a lazy layer's blob is
    /// fetched first when the store lacks it).
    pub fn materialise(&self, input: &Ref) -> Result<PathBuf, Error> {
        if let Some(path) = input.path() {
            self.snapshotter.mount(&path)?;
            return Ok(path);
        }
        // Only a lazy layer has no tree yet: a base image layer, whose blob is in the state
        // root's store, or an imported cache layer, fetched here the first time it is needed.
        let store = crate::content::Store::open(&self.root)?;
        self.fetch_blobs(input, &store)?;
        Ok(input.materialise(self.snapshotter.as_ref(), &store)?)
    }

    /// Fetches the blobs of the lazy layers under `input` that the store lacks.
    pub fn fetch_blobs(&self, input: &Ref, store: &crate::content::Store) -> Result<(), Error> {
        let Some(fetch) = &self.fetch else {
            return Ok(());
        };
        for step in input.chain() {
            if step.is_materialised() {
                // Everything below a tree is already in it.
                break;
            }
            if let Layer::Blob(blob) = step.layer()
                && !store.exists(&blob.digest)
            {
                fetch
                    .fetch(&blob.digest, store)
                    .map_err(|source| Error::Fetch {
                        digest: blob.digest,
                        source,
                    })?;
            }
        }
        Ok(())
    }

    /// The ref for the tree a source op produced at `path`: for a base image, the chain of
    /// its layer blobs (already in the state root's store when this returns) with `path` as
    /// the top one's tree; for anything else, a tree that adds no layer of its own.
    fn source_ref(&self, vertex: &Vertex, op: &SourceOp, path: PathBuf) -> Result<Ref, Error> {
        let platform = vertex
            .platform
            .clone()
            .unwrap_or_else(crate::platform::Platform::host);
        let blob = |digest, media_type: &str, size, diff_id| Blob {
            digest,
            media_type: media_type.to_owned(),
            size,
            diff_id,
        };
        let blobs: Vec<Blob> = match Source::parse(op)? {
            Source::OciLayout { dir, selector } => {
                let layout = OciLayout::open(Path::new(&dir))?;
                let image = layout.resolve(&selector, &platform)?;
                // Exports reuse these blobs as they are, so they join the state root's store.
                layout.import(&image, &crate::content::Store::open(&self.root)?)?;
                (image.layers.iter().zip(image.diff_ids))
                    .map(|(l, diff_id)| blob(l.digest, &l.media_type, l.size, diff_id))
                    .collect()
            }
            Source::Image { reference } => {
                let images = match &self.images {
                    Some(images) => images.clone(),
                    None => Arc::new(Puller::from_env(&self.root, false)?),
                };
                let image = images.pulled(&reference, &platform)?;
                (image.layers.iter().zip(image.diff_ids))
                    .map(|(l, diff_id)| blob(l.digest, &l.media_type, l.size, diff_id))
                    .collect()
            }
            _ => return Ok(Ref::new(path, None, Layer::Empty)),
        };
        let Some((top, below)) = blobs.split_last() else {
            return Ok(Ref::new(path, None, Layer::Empty));
        };
        let parent = below
            .iter()
            .fold(None, |parent, blob| Some(Ref::lazy(parent, blob.clone())));
        Ok(Ref::new(path, parent, Layer::Blob(top.clone())))
    }

    /// Makes the tree of a source op; returns it and, when known without a walk, the bytes
    /// it holds of its own.
    fn source(
        &self,
        vertex: &Vertex,
        op: &SourceOp,
        context: &Context<'_>,
    ) -> Result<(PathBuf, Option<u64>), Error> {
        let platform = || {
            vertex
                .platform
                .clone()
                .unwrap_or_else(crate::platform::Platform::host)
        };
        match Source::parse(op)? {
            Source::Local { name, follow_paths } => {
                let local = self.locals.get(&name).ok_or(Error::UnknownLocal { name })?;
                let source = open_local(local, follow_paths)?;
                let (path, bytes) = self.materialize_local(&source, context)?;
                Ok((path, Some(bytes)))
            }
            Source::Scratch => {
                let path = self.fresh()?;
                crate::source::scratch::materialize(&path)?;
                Ok((path, None))
            }
            Source::OciLayout { dir, selector } => {
                let layout = OciLayout::open(Path::new(&dir))?;
                let image = layout.resolve(&selector, &platform())?;
                let path = self.fresh()?;
                layout.unpack(&image, &path)?;
                Ok((path, None))
            }
            Source::Image { reference } => {
                let images = match &self.images {
                    Some(images) => images.clone(),
                    None => Arc::new(Puller::from_env(&self.root, false)?),
                };
                let path = self.fresh()?;
                images.unpack(&reference, &platform(), &path)?;
                Ok((path, None))
            }
            Source::Target { name } => Err(Error::Unsupported {
                what: format!("the target link `{name}` outside a bake build"),
            }),
            Source::Git { remote, attrs } => {
                let url =
                    GitUrl::from_source(&remote, &attrs).map_err(crate::source::Error::from)?;
                let resolved = match self.pinned(vertex) {
                    Some(Remote::Git(resolved)) => resolved,
                    _ => self.git().resolve(&url)?,
                };
                let keep = attrs
                    .get(crate::source::git::KEEP_GIT_DIR)
                    .is_some_and(|v| v == "true");
                let path = self.fresh()?;
                self.git().checkout(&url, &resolved, keep, &path)?;
                Ok((path, None))
            }
            Source::Http { url, attrs } => {
                let download = match self.pinned(vertex) {
                    Some(Remote::Http(download)) => download,
                    _ => self.http().fetch(
                        &url,
                        attrs.get(crate::source::http::CHECKSUM).map(String::as_str),
                    )?,
                };
                let path = self.fresh()?;
                self.place_download(&download, &attrs, &path)?;
                Ok((path, None))
            }
        }
    }

    /// The stat cache of the context at `root`, loaded once per worker.
    fn stat_cache(&self, root: &Path) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, StatCache>> {
        let mut caches = self.contexts.lock().unwrap_or_else(|e| e.into_inner());
        if !caches.contains_key(root) {
            caches.insert(root.to_owned(), StatCache::load(&self.stat_caches, root));
        }
        caches
    }

    /// Makes the snapshot of a local context and saves its manifest; returns it and the bytes
    /// it holds of its own. With overlays, it is an overlay on the context's last snapshot
    /// holding only what changed (until [`MAX_CONTEXT_LAYERS`] deep, when a full snapshot
    /// starts a new chain); else a new tree linking the files that did not change from the
    /// last snapshot.
    fn materialize_local(
        &self,
        source: &LocalSource,
        context: &Context<'_>,
    ) -> Result<(PathBuf, u64), Error> {
        let previous = {
            let caches = self.stat_cache(source.root());
            caches
                .get(source.root())
                .and_then(|cache| cache.snapshot().map(Path::to_owned))
        };
        let manifest = previous
            .as_deref()
            .map(crate::source::local::snapshot::load_manifest);
        let walked = self
            .walks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(context.vertex().to_owned(), source.root().to_owned()));
        // Layer directories of the last snapshot, whose files can be linked; none when it
        // was collected since.
        let layers = previous
            .as_deref()
            .filter(|path| self.snapshotter.mount(path).is_ok())
            .and_then(crate::snapshot::overlay::layers);
        let (entries, digests) = match walked {
            Some((entries, digests)) => (entries, Some(digests)),
            None => (source.walk()?, None),
        };
        let mut layered = false;
        let (path, made) = match (&previous, &layers, &manifest) {
            (Some(last), Some(layers), Some(manifest))
                if self.snapshotter.name() == "overlayfs"
                    && layers.len() < MAX_CONTEXT_LAYERS
                    && LocalSource::can_update(&entries) =>
            {
                let path = self.derive(Some(last))?;
                let made = source.update_entries(entries, &path, manifest)?;
                layered = true;
                (path, made)
            }
            _ => {
                let path = self.fresh()?;
                let previous = layers.as_deref().zip(manifest.as_ref());
                let made = source.materialize_entries(entries, &path, previous)?;
                (path, made)
            }
        };
        let path = path.as_path();
        // The snapshot holds exactly what the walk hashed when nothing changed while it was
        // copied, every entry could be copied (devices and fifos are skipped) and ownership
        // was kept (root): then its checksums follow from the walk's digests.
        let faithful = made.changed == 0
            && rustix::process::geteuid().is_root()
            && made
                .entries
                .iter()
                .all(|e| e.kind != crate::source::local::EntryKind::Other);
        let walked = digests.filter(|_| faithful).map(|d| (made.entries, d));
        if let Some(walked) = walked {
            self.trees
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_owned(), Arc::new(walked));
        }
        let mut manifest = made.manifest;
        // Advisory: without a manifest the next snapshot copies every file again.
        if manifest
            .save_to(crate::source::local::snapshot::manifest_path(path), false)
            .is_ok()
        {
            let mut caches = self.stat_cache(source.root());
            if let Some(cache) = caches.get_mut(source.root()) {
                cache.set_snapshot(path);
                let _ = cache.save();
            }
        }
        context.log(
            LogStream::Stdout,
            format!(
                "snapshot: {}{} files kept from the previous snapshot, {} copied",
                if layered {
                    "a layer over the last one, "
                } else {
                    ""
                },
                made.reused,
                made.hashed
            ),
        );
        Ok((path.to_owned(), made.bytes))
    }

    /// The git cache, with the credentials of `GIT_AUTH_TOKEN`/`GIT_AUTH_HEADER` secrets
    /// (BuildKit's names) over those of `BUILDX_BAKE_GIT_AUTH_*` variables.
    fn git(&self) -> crate::source::git::Git {
        let process: BTreeMap<String, String> = std::env::vars().collect();
        let mut auth = crate::source::git::Auth::from_env(&process, "BUILDX_BAKE_GIT_AUTH");
        let secrets: BTreeMap<String, String> = self
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let from_secrets = crate::source::git::Auth::from_env(&secrets, "GIT_AUTH");
        auth.tokens.extend(from_secrets.tokens);
        auth.schemes.extend(from_secrets.schemes);
        crate::source::git::Git::new(&self.root).with_auth(auth)
    }

    fn http(&self) -> crate::source::http::Http {
        crate::source::http::Http::new(&self.root)
    }

    /// What `vertex` was pinned to when its key was computed.
    fn pinned(&self, vertex: &Vertex) -> Option<Remote> {
        let remotes = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        remotes.get(&vertex.digest).cloned()
    }

    fn pin(&self, vertex: &Vertex, remote: Remote) {
        let mut remotes = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        remotes.insert(vertex.digest, remote);
    }

    /// Writes a download into `dir` as BuildKit's HTTP source does: one file, named by the
    /// `http.filename` attribute (else `Content-Disposition`, else the URL), mode
    /// `http.perm` (default 0600), mtime from `Last-Modified`.
    fn place_download(
        &self,
        download: &crate::source::http::Download,
        attrs: &BTreeMap<String, String>,
        dir: &Path,
    ) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt as _;
        let name = attrs
            .get(crate::source::http::FILENAME)
            .cloned()
            .unwrap_or_else(|| download.filename());
        let target = dir.join(&name);
        let io = |source| Error::Io {
            path: target.clone(),
            source,
        };
        std::fs::copy(self.http().path(download), &target).map_err(io)?;
        let mode = attrs
            .get(crate::source::http::PERM)
            .and_then(|p| u32::from_str_radix(p, 8).ok())
            .unwrap_or(0o600);
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        if let Some(mtime) = download.mtime() {
            let time = std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(mtime).unwrap_or(0));
            let file = std::fs::File::options()
                .write(true)
                .open(&target)
                .map_err(io)?;
            file.set_modified(time).map_err(io)?;
        }
        Ok(())
    }

    fn exec_op(
        &self,
        vertex: &Vertex,
        op: &ExecOp,
        inputs: &[Snapshot],
        context: &Context<'_>,
    ) -> Result<PathBuf, Error> {
        let root_input = op
            .mounts
            .iter()
            .find(|m| m.dest == "/")
            .and_then(|m| m.input);
        let base = match root_input {
            Some(index) => Some(
                inputs
                    .get(index)
                    .ok_or(Error::MissingInput { index })?
                    .as_path(),
            ),
            None => None,
        };
        // Decided before the step's root is prepared: a platform this host cannot run fails
        // here, naming the fix, instead of as an exec format error from the runtime.
        let platform = vertex
            .platform
            .clone()
            .unwrap_or_else(crate::platform::Platform::host);
        let emulation = crate::ops::emulation::for_platform(&platform)?;
        let emulator = match &emulation {
            crate::ops::emulation::Emulation::Inject { emulator } => Some(emulator.as_path()),
            crate::ops::emulation::Emulation::Native
            | crate::ops::emulation::Emulation::Binfmt { .. } => None,
        };
        let root = self.derive(base)?;
        let paths: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
        let environment = crate::ops::exec::ExecEnvironment {
            runtime: self.runtime.as_ref(),
            cache_root: &self.cache_root,
            secrets: &self.secrets,
            ssh: &self.ssh,
            emulator,
            interpreter: emulation.interpreter_bind(),
            restore: self.restore.as_ref(),
            note: &|line| context.log(LogStream::Stdout, line),
        };
        // The last lines of output, kept for the error message when the step fails.
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut emit = |stream, line: String| {
            context.log(stream, line.as_str());
            tail.push_back(line);
            if tail.len() > 10 {
                tail.pop_front();
            }
        };
        let mut lines = crate::ops::lines::Lines::default();
        let status =
            crate::ops::exec::run(op, &root, &paths, &environment, &mut |stream, bytes| {
                let stream = match stream {
                    Stream::Stdout => LogStream::Stdout,
                    Stream::Stderr => LogStream::Stderr,
                };
                lines.push(stream, bytes, &mut emit);
            });
        // A last line without a newline is still output the user wants to see.
        lines.finish(&mut emit);
        let status = status?;
        if !status.success() {
            return Err(Error::Failed {
                command: op.meta.args.join(" "),
                code: status.code,
                tail: Vec::from(tail).join("\n"),
                first_process_only: emulator.map(|_| platform.to_string()),
            });
        }
        Ok(root)
    }

    /// Applies a file op on a new tree; returns it and, when its only action was a copy by
    /// links, the bytes that copy wrote of its own.
    fn file_op(&self, op: &FileOp, inputs: &[Snapshot]) -> Result<(PathBuf, Option<u64>), Error> {
        let base = match op.base {
            Some(index) => Some(
                inputs
                    .get(index)
                    .ok_or(Error::MissingInput { index })?
                    .as_path(),
            ),
            None => None,
        };
        let root = self.derive(base)?;
        let paths: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
        let mut actions = op.actions.as_slice();
        let mut bytes = None;
        // A first COPY that only adds a whole tree links its files instead of copying them.
        if let Some((first, rest)) = actions.split_first()
            && let Some(plan) = crate::ops::copy_link::plan(&root, &paths, first)?
        {
            let mut outcome = Ok(0);
            self.snapshotter
                .fill(&root, &mut |layer| outcome = plan.apply(layer))?;
            bytes = Some(outcome?).filter(|_| rest.is_empty());
            actions = rest;
        }
        crate::ops::file::apply(&root, &paths, actions)?;
        Ok((root, bytes))
    }
}

impl OpExec for Worker {
    type Ref = Ref;
    type Error = Error;

    fn cache_map(&self, vertex: &Vertex, context: &Context<'_>) -> Result<CacheMap, Error> {
        let mut map = CacheMap::of_vertex(vertex);
        let source = match vertex.op.as_ref() {
            Op::Source(op) => Some(Source::parse(op)?),
            _ => None,
        };
        // An OCI layout's key is the image it holds, not where it lies: a CI machine that
        // checks the layout out elsewhere finds the cache a build exported. One named by
        // tag (or its only image) may be rewritten between builds, so it is resolved again
        // every build; a digest names its content already.
        if let Some(Source::OciLayout { dir, selector }) = &source {
            let platform = vertex
                .platform
                .clone()
                .unwrap_or_else(crate::platform::Platform::host);
            let image = match selector {
                crate::graph::LayoutSelector::Digest(digest) => *digest,
                _ => {
                    OciLayout::open(Path::new(dir))?
                        .resolve(selector, &platform)?
                        .manifest_digest
                }
            };
            map.digest = crate::digest::Digest::of_parts([
                b"bake.source.oci-layout.v1".as_slice(),
                image.as_bytes().as_slice(),
                platform.to_string().as_bytes(),
            ]);
        }
        // A git source's key is the commit its ref names now (one `git ls-remote`), so a moved
        // branch rebuilds and an unchanged one does not.
        if let Some(Source::Git { remote, attrs }) = &source {
            let url = GitUrl::from_source(remote, attrs).map_err(crate::source::Error::from)?;
            let resolved = self.git().resolve(&url)?;
            map.digest = crate::digest::Digest::of_parts([
                map.digest.as_bytes().as_slice(),
                resolved.commit.as_bytes(),
            ]);
            self.pin(vertex, Remote::Git(resolved));
        }
        // An HTTP source's key is its content, revalidated with the server (ETag,
        // Last-Modified) every build; the checksum is verified here, before anything runs.
        if let Some(Source::Http { url, attrs }) = &source {
            let download = self.http().fetch(
                url,
                attrs.get(crate::source::http::CHECKSUM).map(String::as_str),
            )?;
            let name = download.filename();
            let mtime = download.mtime().unwrap_or_default().to_string();
            map.digest = crate::digest::Digest::of_parts([
                map.digest.as_bytes().as_slice(),
                download.digest.as_bytes().as_slice(),
                name.as_bytes(),
                mtime.as_bytes(),
            ]);
            self.pin(vertex, Remote::Http(download));
        }
        // A local source's key is its content: the same files give the same key whatever
        // their mtimes, and any change to a file the build reads gives a new one.
        if let Some(Source::Local { name, follow_paths }) = source
            && let Some(local) = self.locals.get(&name)
        {
            let walk = open_local(local, follow_paths.clone())?;
            let entries = walk.walk()?;
            let (checksum, reads) = {
                let mut caches = self.stat_cache(walk.root());
                let cache = caches
                    .get_mut(walk.root())
                    .ok_or_else(|| Error::UnknownLocal { name: name.clone() })?;
                let before = cache.content_reads();
                let checksum = walk.checksum_digests(&entries, &["/"], cache)?;
                // Advisory: a cache that cannot be written only costs re-reading next time.
                let _ = cache.save();
                (checksum, cache.content_reads() - before)
            };
            let (checksum, digests) = checksum;
            // Compat: BuildKit reports the context transfer on this vertex; bake names what
            // the sync had to read, which is what a rebuild costs.
            context.log(
                LogStream::Stdout,
                format!(
                    "context: {} paths checked, {reads} {} hashed",
                    entries.len(),
                    if reads == 1 { "file" } else { "files" }
                ),
            );
            // Kept for the snapshot this vertex makes if its key misses the cache.
            self.walks.lock().unwrap_or_else(|e| e.into_inner()).insert(
                (context.vertex().to_owned(), walk.root().to_owned()),
                (entries, digests),
            );
            // Keyed as if the source were `local://<name>`: where the directory lives and what
            // the engine renamed it to never change the key; its content does.
            let named = Op::Source(
                Source::Local {
                    name: local.name.clone(),
                    follow_paths,
                }
                .to_op(),
            );
            let base = crate::graph::vertex_digest(&named, &[], vertex.platform.as_ref());
            map.digest = crate::digest::Digest::of_parts([
                base.as_bytes().as_slice(),
                checksum.as_bytes().as_slice(),
            ]);
        }
        // Compat: buildkit's file op keys a copy source by the checksum of the paths it
        // selects, so files the COPY does not read never invalidate it.
        if let Op::File(op) = vertex.op.as_ref() {
            for index in copy_sources(op).into_keys() {
                if let Some(dep) = map.deps.get_mut(index) {
                    dep.content = true;
                }
            }
        }
        Ok(map)
    }

    fn content_digest(
        &self,
        vertex: &Vertex,
        index: usize,
        input: &Ref,
        context: &Context<'_>,
    ) -> Result<Option<crate::digest::Digest>, Error> {
        let _ = context;
        let Op::File(op) = vertex.op.as_ref() else {
            return Ok(None);
        };
        let Some(selectors) = copy_sources(op).remove(&index) else {
            return Ok(None);
        };
        let input = self.materialise(input)?;
        let selectors: Vec<&str> = selectors.iter().map(String::as_str).collect();
        let walked = self
            .trees
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&input)
            .cloned();
        // A context snapshot this worker just made: its checksum follows from the walk's
        // digests. Else a committed snapshot never changes: its checksum is remembered beside
        // it.
        let known = match &walked {
            Some(walked) => crate::source::local::snapshot::snapshot_checksum_known(
                &input, &walked.0, &walked.1, &selectors,
            ),
            None => Ok(None),
        };
        let checksum = match known {
            Ok(Some(digest)) => Ok((digest, 0)),
            Ok(None) => crate::source::local::snapshot::snapshot_checksum(&input, &selectors),
            Err(error) => Err(error),
        };
        match checksum {
            Ok((digest, _)) => Ok(Some(digest)),
            // The input is a snapshot, whose directory means nothing to the user: the step's
            // own error names the path as the Dockerfile wrote it.
            Err(crate::source::Error::NotFound { path, .. }) => {
                Err(crate::ops::file::Error::NotFound { path }.into())
            }
            Err(error) => Err(error.into()),
        }
    }

    fn exec(
        &self,
        vertex: &Vertex,
        inputs: Vec<Ref>,
        context: &Context<'_>,
    ) -> Result<Vec<Ref>, Error> {
        let trees: Vec<Snapshot> = inputs
            .iter()
            .map(|input| self.materialise(input).map(Arc::new))
            .collect::<Result<_, _>>()?;
        // The parent is the input the new tree starts as; its layers sit below this one's.
        let input = |index: Option<usize>| index.and_then(|i| inputs.get(i)).cloned();
        // Bytes the result holds of its own when the step counted them, so a large tree of
        // links is not walked again to size it.
        let mut bytes = None;
        let result = match vertex.op.as_ref() {
            Op::Source(op) => {
                let (path, counted) = self.source(vertex, op, context)?;
                bytes = counted;
                self.snapshotter.commit(&path)?;
                self.source_ref(vertex, op, path)?
            }
            Op::Exec(op) => {
                let path = self.exec_op(vertex, op, &trees, context)?;
                self.snapshotter.commit(&path)?;
                Ref::new(path, input(root_input(op)), Layer::Diff)
            }
            Op::File(op) => {
                let (path, counted) = self.file_op(op, &trees)?;
                bytes = counted;
                self.snapshotter.commit(&path)?;
                Ref::new(path, input(op.base), Layer::Diff)
            }
            Op::Merge(_) => {
                let root = self.fresh()?;
                let paths: Vec<&Path> = trees.iter().map(|p| p.as_path()).collect();
                crate::ops::merge::apply(&root, &paths)?;
                self.snapshotter.commit(&root)?;
                // `COPY --link`: the first input is the chain below, each later one a layer.
                let above = inputs.iter().skip(1).cloned().collect();
                Ref::new(root, inputs.first().cloned(), Layer::Merge(above))
            }
        };
        if let Some(path) = result.path() {
            match bytes {
                Some(bytes) => crate::snapshot::usage::record_bytes(&path, bytes),
                None => crate::snapshot::usage::record_size(&path),
            }
        }
        Ok(vec![result])
    }
}

/// Opens a local context with its ignore file and the paths the build reads.
fn open_local(local: &LocalInput, follow_paths: Option<Vec<String>>) -> Result<LocalSource, Error> {
    let options = crate::source::local::LocalOptions {
        exclude_patterns: crate::source::dockerignore::load(
            &local.dir,
            local.dockerfile.as_deref(),
        )?,
        include_patterns: Vec::new(),
        follow_paths: follow_paths.unwrap_or_default(),
    };
    Ok(LocalSource::new(&local.dir, &options)?)
}

/// The inputs a file op copies from (not its base), with the paths it reads from each.
fn copy_sources(op: &FileOp) -> BTreeMap<usize, Vec<String>> {
    let mut sources: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for action in &op.actions {
        if let crate::graph::FileAction::Copy(copy) = action
            && let Some(index) = copy.source.filter(|i| Some(*i) != op.base)
        {
            sources.entry(index).or_default().push(copy.src.clone());
        }
    }
    sources
}

/// The input an exec op's root filesystem starts as.
fn root_input(op: &ExecOp) -> Option<usize> {
    op.mounts
        .iter()
        .find(|m| m.dest == "/")
        .and_then(|m| m.input)
}
