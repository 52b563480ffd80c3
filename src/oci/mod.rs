//! OCI image-spec documents with their on-disk JSON field names: descriptors, manifests,
//! indexes, the image config, media types, and choosing an index entry for a platform. Every
//! module that reads or writes these documents (registry pulls and pushes, `oci-layout://`
//! sources, exporters) uses these types, so a document means the same thing everywhere.
//!
//! Leaf layer; may import `digest` and `platform`. No I/O: bytes in, data out.
//!
//! Diverges: these are our own serde types rather than `oci-spec`'s, whose builders validate
//! media types against OCI only (we also read and write Docker schema 2) and whose field order
//! differs from Go's `ocispecs` structs, which BuildKit marshals and our exports match byte for
//! byte.

mod descriptor;
mod image;
mod manifest;
pub mod media_types;
mod select;

pub use descriptor::{Descriptor, DescriptorPlatform, REF_NAME_ANNOTATION};
pub use image::{
    DEFAULT_PATH_ENV, Empty, Healthcheck, History, INLINE_CACHE_KEY, Image, ImageConfig,
};
pub use manifest::{Index, Manifest};
pub use select::{platform_list, select_platform};
