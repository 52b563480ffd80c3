//! Snapshot refs: a step result that knows the chain of trees it stands on, so an export
//! lists its layers by walking parents instead of re-reading the build graph. Part of
//! `snapshot`.
//!
//! A [`Ref`] is a committed tree (its directory, once materialised), the ref it was made from
//! (its parent: the base input of an exec or file op) and what it adds on top of that parent
//! (a [`Layer`]). A base image is a chain of [`Layer::Blob`] refs of which only the top one is
//! unpacked; the others are lazy and [`Ref::materialise`] builds them from their blobs in the
//! content store when something needs their tree.
//!
//! A ref serialises as a flat list of nodes, parents first, so a chain of any length reads
//! back without recursion and shared parents are written once.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::content::Store;
use crate::digest::Digest;

use crate::snapshot::apply::apply_layer;
use crate::snapshot::error::{Error, Result};
use crate::snapshot::snapshotter::Snapshotter;

/// A layer blob known by digest: a base image layer in the content store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// The blob's digest (of its possibly compressed bytes).
    pub digest: Digest,
    /// The blob's media type, which says how it is compressed.
    pub media_type: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// The digest of the uncompressed tar, from the image config's `rootfs.diff_ids`.
    pub diff_id: Digest,
}

/// What a ref adds on top of its parent.
#[derive(Debug, Clone)]
pub enum Layer {
    /// A step's changes: the difference between its tree and its parent's (its whole tree
    /// when it has no parent), computed when an image is exported.
    Diff,
    /// A base image layer, exported as the blob it already is.
    Blob(Blob),
    /// Nothing of its own: a tree that starts a chain without being exported as a layer (an
    /// empty `scratch`, a local directory used as a root).
    Empty,
    /// Whole trees stacked on the parent, one layer each (`COPY --link`).
    Merge(Vec<Ref>),
}

/// A committed snapshot and the chain it stands on; cheap to clone.
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "Chain", try_from = "Chain")]
pub struct Ref(Arc<Inner>);

struct Inner {
    /// The tree; `None` while a lazy blob ref is not materialised. The lock also keeps two
    /// threads from materialising the same ref twice.
    path: Mutex<Option<PathBuf>>,
    parent: Option<Ref>,
    layer: Layer,
}

impl Ref {
    /// A materialised ref: the committed tree at `path`, made from `parent` by `layer`.
    pub fn new(path: PathBuf, parent: Option<Ref>, layer: Layer) -> Self {
        Self(Arc::new(Inner {
            path: Mutex::new(Some(path)),
            parent,
            layer,
        }))
    }

    /// A lazy ref: the layer `blob` on top of `parent`, unpacked only by [`Ref::materialise`].
    pub fn lazy(parent: Option<Ref>, blob: Blob) -> Self {
        Self(Arc::new(Inner {
            path: Mutex::new(None),
            parent,
            layer: Layer::Blob(blob),
        }))
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<PathBuf>> {
        // The slot is only ever replaced whole, so a panic cannot leave it half written.
        self.0.path.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tree's directory, when materialised.
    pub fn path(&self) -> Option<PathBuf> {
        self.slot().clone()
    }

    /// Whether the tree exists on disk (a lazy ref's does not until materialised).
    pub fn is_materialised(&self) -> bool {
        self.slot().is_some()
    }

    /// The ref this one was made from.
    pub fn parent(&self) -> Option<&Ref> {
        self.0.parent.as_ref()
    }

    /// What this ref adds on top of its parent.
    pub fn layer(&self) -> &Layer {
        &self.0.layer
    }

    /// This ref, then its parent, its parent's parent and so on down to the base.
    pub fn chain(&self) -> impl Iterator<Item = &Ref> {
        std::iter::successors(Some(self), |r| r.parent())
    }

    /// Every ref this one needs, itself included: its chain and the chains of merged trees,
    /// each once.
    pub fn closure(&self) -> Vec<Ref> {
        let mut seen = std::collections::HashSet::new();
        let mut found = Vec::new();
        let mut stack = vec![self.clone()];
        while let Some(next) = stack.pop() {
            if !seen.insert(Arc::as_ptr(&next.0)) {
                continue;
            }
            if let Some(parent) = next.parent() {
                stack.push(parent.clone());
            }
            if let Layer::Merge(trees) = next.layer() {
                stack.extend(trees.iter().cloned());
            }
            found.push(next);
        }
        found
    }

    /// Whether two handles name the same ref.
    pub fn ptr_eq(&self, other: &Ref) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Makes the tree usable in this process and returns its directory: mounts a committed
    /// tree through `snapshotter`, or builds a lazy blob ref by applying its blob from `store`
    /// onto its (materialised) parent.
    pub fn materialise(&self, snapshotter: &dyn Snapshotter, store: &Store) -> Result<PathBuf> {
        let mut slot = self.slot();
        if let Some(path) = slot.as_ref() {
            snapshotter.mount(path)?;
            return Ok(path.clone());
        }
        let Layer::Blob(blob) = self.layer() else {
            // Only `Ref::lazy` makes a ref without a tree, and it always holds a blob.
            return Err(Error::NotFound("a snapshot ref without a tree".to_owned()));
        };
        let parent = self
            .parent()
            .map(|parent| parent.materialise(snapshotter, store))
            .transpose()?;
        let tree = snapshotter.prepare(parent.as_deref())?;
        let applied = apply_blob(store, blob, &tree).and_then(|()| snapshotter.commit(&tree));
        if let Err(error) = applied {
            let _ = snapshotter.remove(&tree);
            return Err(error);
        }
        *slot = Some(tree.clone());
        Ok(tree)
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ref")
            .field("path", &self.path())
            .field("layer", self.layer())
            .field("parent", &self.parent())
            .finish()
    }
}

/// Applies the layer `blob` from `store` onto `tree`, checking its uncompressed digest.
///
/// # Errors
///
/// When the blob is missing or malformed, or unpacks to another uncompressed digest.
pub fn apply_blob(store: &Store, blob: &Blob, tree: &std::path::Path) -> Result<()> {
    let path = store.blob_path(&blob.digest);
    let layer_error = |source: io::Error| Error::Layer { source };
    let file = File::open(&path).map_err(|source| Error::Io {
        action: "open",
        path: path.clone(),
        source,
    })?;
    let mut tar = Hashing {
        inner: decompress(&blob.media_type, BufReader::new(file)).map_err(layer_error)?,
        hasher: Sha256::new(),
    };
    apply_layer(tree, &mut tar)?;
    // The diff id covers the end-of-archive blocks too, which the applier may leave unread.
    io::copy(&mut tar, &mut io::sink()).map_err(layer_error)?;
    let diff_id = Digest::from_bytes(tar.hasher.finalize().into());
    if diff_id != blob.diff_id {
        return Err(layer_error(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "layer `{}` unpacks to `{diff_id}`, expected `{}`",
                blob.digest, blob.diff_id
            ),
        )));
    }
    Ok(())
}

/// The tar stream inside a layer blob of `media_type`.
fn decompress<'a>(media_type: &str, reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let kind = media_type.rsplit(['.', '+']).next().unwrap_or_default();
    Ok(match kind {
        "tar" => Box::new(reader),
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(reader)?),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("unsupported layer media type `{media_type}`"),
            ));
        }
    })
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

/// The serialised form of a [`Ref`]: its closure, parents before children, the ref itself
/// last.
#[derive(Serialize, Deserialize)]
struct Chain {
    nodes: Vec<Node>,
}

#[derive(Serialize, Deserialize)]
struct Node {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<usize>,
    layer: NodeLayer,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum NodeLayer {
    Diff,
    Blob(Blob),
    Empty,
    Merge { trees: Vec<usize> },
}

impl From<Ref> for Chain {
    fn from(top: Ref) -> Self {
        let mut nodes = Vec::new();
        let mut index: HashMap<*const Inner, usize> = HashMap::new();
        // Post-order without recursion: a ref is written once everything it needs is.
        let mut stack = vec![(top, false)];
        while let Some((next, ready)) = stack.pop() {
            let key = Arc::as_ptr(&next.0);
            if index.contains_key(&key) {
                continue;
            }
            let needs: Vec<Ref> = next
                .parent()
                .into_iter()
                .chain(match next.layer() {
                    Layer::Merge(trees) => trees.as_slice(),
                    _ => &[],
                })
                .cloned()
                .collect();
            if !ready {
                stack.push((next, true));
                stack.extend(needs.into_iter().rev().map(|r| (r, false)));
                continue;
            }
            let at = |r: &Ref| index.get(&Arc::as_ptr(&r.0)).copied();
            let layer = match next.layer() {
                Layer::Diff => NodeLayer::Diff,
                Layer::Blob(blob) => NodeLayer::Blob(blob.clone()),
                Layer::Empty => NodeLayer::Empty,
                Layer::Merge(trees) => NodeLayer::Merge {
                    trees: trees.iter().filter_map(at).collect(),
                },
            };
            nodes.push(Node {
                path: next.path(),
                parent: next.parent().and_then(at),
                layer,
            });
            index.insert(key, nodes.len() - 1);
        }
        Self { nodes }
    }
}

/// Why a serialised ref cannot be read back.
#[derive(Debug)]
struct BadChain(&'static str);

impl fmt::Display for BadChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed snapshot chain: {}", self.0)
    }
}

impl TryFrom<Chain> for Ref {
    type Error = BadChain;

    fn try_from(chain: Chain) -> std::result::Result<Self, BadChain> {
        let mut built: Vec<Ref> = Vec::with_capacity(chain.nodes.len());
        for node in chain.nodes {
            // Indices point backwards only, which also rules out cycles.
            let earlier = |i: usize| built.get(i).cloned().ok_or(BadChain("forward reference"));
            let parent = node.parent.map(earlier).transpose()?;
            let layer = match node.layer {
                NodeLayer::Diff => Layer::Diff,
                NodeLayer::Blob(blob) => Layer::Blob(blob),
                NodeLayer::Empty => Layer::Empty,
                NodeLayer::Merge { trees } => Layer::Merge(
                    trees
                        .into_iter()
                        .map(earlier)
                        .collect::<std::result::Result<_, _>>()?,
                ),
            };
            let next = match (node.path, layer) {
                (Some(path), layer) => Ref::new(path, parent, layer),
                (None, Layer::Blob(blob)) => Ref::lazy(parent, blob),
                (None, _) => return Err(BadChain("a step result without a tree")),
            };
            built.push(next);
        }
        built.pop().ok_or(BadChain("no nodes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Native;

    fn blob(store: &Store, files: &[(&str, &str)]) -> Blob {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, text.as_bytes())
                .unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gzip, &tar).unwrap();
        let compressed = gzip.finish().unwrap();
        Blob {
            digest: store.write(&compressed).unwrap(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
            size: compressed.len() as u64,
            diff_id: Digest::of(&tar),
        }
    }

    #[test]
    fn a_chain_walks_down_to_its_base_and_survives_serialisation() {
        let base = Ref::new("/s/base".into(), None, Layer::Empty);
        let step = Ref::new("/s/step".into(), Some(base.clone()), Layer::Diff);
        let linked = Ref::new("/s/linked".into(), None, Layer::Diff);
        let merge = Ref::new(
            "/s/merge".into(),
            Some(step.clone()),
            Layer::Merge(vec![linked, base.clone()]),
        );
        let paths: Vec<_> = merge.chain().map(|r| r.path().unwrap()).collect();
        assert_eq!(paths, ["/s/merge", "/s/step", "/s/base"].map(PathBuf::from));
        assert_eq!(merge.closure().len(), 4, "the shared base is counted once");

        let text = serde_json::to_string(&merge).unwrap();
        assert_eq!(text.matches("/s/base").count(), 1, "{text}");
        let back: Ref = serde_json::from_str(&text).unwrap();
        let paths: Vec<_> = back.chain().map(|r| r.path().unwrap()).collect();
        assert_eq!(paths, ["/s/merge", "/s/step", "/s/base"].map(PathBuf::from));
        let Layer::Merge(trees) = back.layer() else {
            panic!("not a merge: {back:?}");
        };
        let base_again = back.parent().unwrap().parent().unwrap();
        assert!(trees[1].ptr_eq(base_again), "shared refs stay shared");
    }

    #[test]
    fn malformed_chains_are_errors_not_panics() {
        for text in [
            r#"{"nodes":[]}"#,
            r#"{"nodes":[{"parent":1,"layer":{"kind":"diff"},"path":"/a"}]}"#,
            r#"{"nodes":[{"layer":{"kind":"diff"}}]}"#,
            r#"["/old/format"]"#,
        ] {
            assert!(serde_json::from_str::<Ref>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_lazy_blob_ref_materialises_onto_its_parent_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let snapshotter = Native::new(&dir.path().join("snapshots"));
        let first = Ref::lazy(None, blob(&store, &[("one", "1"), ("gone", "x")]));
        let second = Ref::lazy(Some(first.clone()), blob(&store, &[("two", "2")]));
        assert!(!second.is_materialised());
        let tree = second.materialise(&snapshotter, &store).unwrap();
        assert_eq!(std::fs::read_to_string(tree.join("one")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(tree.join("two")).unwrap(), "2");
        assert!(first.is_materialised(), "the parent was built on the way");
        assert_eq!(second.materialise(&snapshotter, &store).unwrap(), tree);

        let mut wrong = blob(&store, &[("three", "3")]);
        wrong.diff_id = Digest::of(b"something else");
        let bad = Ref::lazy(None, wrong);
        assert!(bad.materialise(&snapshotter, &store).is_err());
        assert!(!bad.is_materialised());
    }
}
