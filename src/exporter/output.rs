//! What the exporters are given and give back: the finished [`BuildOutput`] per platform with
//! its [`Layer`]s, the [`ExportContext`] and the [`ExportResponse`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::content::Fetch;
use crate::oci::Descriptor;
use crate::platform::Platform;

/// One layer of an image, uncompressed, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "an image has a few dozen layers at most; boxing buys nothing"
)]
pub enum Layer {
    /// The difference between two snapshot directories (`lower` absent for a base layer),
    /// computed by [`snapshot::diff`](crate::snapshot::diff) at export time.
    Diff {
        /// The parent tree, or `None` for the first layer.
        lower: Option<PathBuf>,
        /// The tree after the step.
        upper: PathBuf,
    },
    /// An uncompressed layer tar on disk (for example one already produced by a diff).
    Tar(PathBuf),
    /// A layer blob already in the content store (a pulled base image's layer). It is reused
    /// as is unless `force-compression` or `rewrite-timestamp` asks for a new blob.
    Blob {
        /// The blob's descriptor (its media type tells how it is compressed).
        descriptor: Descriptor,
        /// `sha256:<hex>` of the uncompressed tar, from the base image's config.
        diff_id: String,
    },
}

/// What one platform of a build produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformOutput {
    /// The platform the result is for.
    pub platform: Platform,
    /// The final root filesystem, used by the `local` and `tar` exporters.
    pub rootfs: PathBuf,
    /// The image's layers, bottom first, used by the image exporters.
    pub layers: Vec<Layer>,
    /// The image config the front end produced (its `rootfs` and `created` are filled in here).
    pub image: crate::oci::Image,
    /// An inline build cache for the image config (`cache-to type=inline`): the value of
    /// [`INLINE_CACHE_KEY`](crate::oci::INLINE_CACHE_KEY), naming the layers this output's
    /// image options produce.
    pub inline_cache: Option<String>,
}

/// A finished build result: one entry per platform, in the order requested.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildOutput {
    /// The per-platform results.
    pub platforms: Vec<PlatformOutput>,
    /// Where the layer blobs the content store lacks come from, when the result stands on
    /// layers imported from a build cache that were left there because every image output
    /// only pushes: each is then mounted or copied only if the registry lacks it.
    pub lazy: Option<LazyBlobs>,
}

/// The source of lazy layer blobs (an imported build cache).
#[derive(Clone)]
pub struct LazyBlobs(pub Arc<dyn Fetch>);

impl std::fmt::Debug for LazyBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyBlobs")
    }
}

impl PartialEq for LazyBlobs {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What an export reports back: buildx's `--metadata-file` keys for this target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ExportResponse {
    /// Metadata keys (`containerimage.digest`, `containerimage.config.digest`,
    /// `containerimage.descriptor`, `image.name`) with their JSON values.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// Context an export runs in, besides the `output` entry itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportContext {
    /// `SOURCE_DATE_EPOCH` of the build, if set; the `source-date-epoch` attribute overrides it.
    pub source_date_epoch: Option<u64>,
    /// The current time in seconds since the epoch, used for `created` when no
    /// `SOURCE_DATE_EPOCH` is given (passed in so tests and callers control it).
    pub now: u64,
    /// Where exporters keep records of earlier exports (under the state root), so the
    /// `local` exporter writes only what changed; `None` makes every export compare contents.
    pub state_dir: Option<PathBuf>,
}
