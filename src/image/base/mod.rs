//! Base images: the pure half of building on a base pulled from a registry.
//!
//! The registry module downloads the manifest, config and layer blobs into
//! the blob cache. This module parses them, copies the layer blobs into the
//! OCI layout unchanged, and reads the base's filesystem into an
//! [`ImageTree`] so kuul's layers are checked against it.

pub mod config;
pub mod filesystem;
pub mod manifest;
pub mod system;

use std::io::Write;
use std::path::{Path, PathBuf};

use self::config::BaseConfig;
use self::manifest::ImageManifest;
use crate::image::layout::Layout;
use crate::image::tree::ImageTree;
use crate::image::{BuiltLayer, ImageError};

/// Annotation naming the base image, from the OCI image spec.
pub const BASE_NAME_ANNOTATION: &str = "org.opencontainers.image.base.name";

/// Annotation with the digest of the base image, from the OCI image spec.
pub const BASE_DIGEST_ANNOTATION: &str = "org.opencontainers.image.base.digest";

/// A base image that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("invalid base image manifest: {reason}\nhint: check that `image.base` names an OCI or Docker v2 image")]
    InvalidManifest { reason: String },

    #[error("invalid base image config: {reason}\nhint: check that `image.base` names an OCI or Docker v2 image")]
    InvalidConfig { reason: String },

    #[error(
        "unsupported {what} media type `{media_type}` in the base image\nhint: use a base with OCI or Docker v2 schema 2 manifests and tar, gzip or zstd layers"
    )]
    UnsupportedMediaType { media_type: String, what: &'static str },

    #[error(
        "the base image has no manifest for platform `{platform}` (it has: {available})\nhint: choose a base built for `{platform}`"
    )]
    PlatformNotFound { platform: String, available: String },

    #[error(
        "the base image is a single-platform image for `{found}`, not `{platform}`\nhint: use a multi-platform base (an image index) that has `{platform}`, or build for `{found}` only"
    )]
    PlatformMismatch { platform: String, found: String },

    #[error(
        "base image blob `{digest}` has digest `{actual}`\nhint: remove the blob from the cache `{}` and build again", cache.display()
    )]
    DigestMismatch { digest: String, actual: String, cache: PathBuf },

    #[error(
        "base image {what} `{digest}` arrived with digest `{actual}`\nhint: build again; if this repeats, the registry serves damaged content"
    )]
    DownloadDigestMismatch { what: &'static str, digest: String, actual: String },

    #[error("invalid base image layer `{digest}`: {reason}\nhint: rebuild the base image with a standard tool")]
    InvalidLayer { digest: String, reason: String },

    #[error("failed to read `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error(transparent)]
    Image(#[from] ImageError),
}

/// A base image as the registry module hands it over: the chosen manifest,
/// its config bytes and the cached layer blobs.
#[derive(Debug, Clone)]
pub struct PulledBase {
    /// The reference as `image.base` gives it.
    pub name: String,
    /// The digest the reference resolved to: the index when the base is
    /// multi-platform, else the image manifest. `kuul.lock` pins it.
    pub digest: String,
    pub manifest: ImageManifest,
    pub config: Vec<u8>,
    /// The cached blob of each layer, in manifest order.
    pub layer_paths: Vec<PathBuf>,
}

/// A base image imported into a layout.
#[derive(Debug, Clone)]
pub struct BaseImage {
    pub name: String,
    pub digest: String,
    pub config: BaseConfig,
    /// The base's layers, their blobs byte-identical to the registry's.
    pub layers: Vec<BuiltLayer>,
    /// The base's filesystem after all its layers and whiteouts.
    pub tree: ImageTree,
}

/// Reads the base's filesystem after all its layers and whiteouts, without
/// copying anything into a layout (`kuul lock` reads the dpkg database).
pub fn read_filesystem(pulled: &PulledBase) -> Result<ImageTree, BaseError> {
    let mut tree = ImageTree::new();
    for (descriptor, path) in pulled.manifest.layers.iter().zip(&pulled.layer_paths) {
        filesystem::apply_layer(&mut tree, path, &descriptor.media_type, &descriptor.digest)?;
    }
    Ok(tree)
}

/// Copies the base's layer blobs into `layout`, checking each digest, and
/// reads its filesystem and config.
pub fn import(layout: &Layout, pulled: &PulledBase) -> Result<BaseImage, BaseError> {
    let config = config::parse_config(&pulled.config, pulled.manifest.layers.len())?;

    let mut tree = ImageTree::new();
    let mut layers = Vec::new();
    for (index, (descriptor, path)) in pulled.manifest.layers.iter().zip(&pulled.layer_paths).enumerate() {
        copy_blob(layout, path, &descriptor.digest)?;
        let entries = filesystem::apply_layer(&mut tree, path, &descriptor.media_type, &descriptor.digest)?;

        layers.push(BuiltLayer {
            descriptor: descriptor.clone(),
            diff_id: config.diff_ids[index].clone(),
            description: format!("base layer {}", index + 1),
            entries,
        });
    }

    Ok(BaseImage { name: pulled.name.clone(), digest: pulled.digest.clone(), config, layers, tree })
}

/// Streams a cached blob into the layout and fails when its digest differs
/// from `digest`, so a damaged cache never reaches an image.
fn copy_blob(layout: &Layout, source: &Path, digest: &str) -> Result<(), BaseError> {
    let io_error = |source_error| BaseError::Io { path: source.to_path_buf(), source: source_error };
    let mut file = std::fs::File::open(source).map_err(io_error)?;
    let mut writer = layout.blob_writer()?;
    std::io::copy(&mut file, &mut writer).map_err(io_error)?;
    writer.flush().map_err(io_error)?;

    let descriptor = writer.commit("application/octet-stream")?;
    if descriptor.digest != digest {
        let cache = source.parent().map(Path::to_path_buf).unwrap_or_default();
        return Err(BaseError::DigestMismatch { digest: digest.to_owned(), actual: descriptor.digest, cache });
    }
    Ok(())
}
