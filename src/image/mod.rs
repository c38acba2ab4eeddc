//! Image assembly: deterministic tar layers, the image config, the manifest
//! and the OCI image layout. Synchronous and streaming: memory use does not
//! grow with the size of the files packed.

pub mod archive;
pub mod layout;
pub mod tree;

use std::collections::BTreeMap;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
}

/// What goes into the image config besides the layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSettings {
    pub entrypoint: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// `UID:GID`.
    pub user: String,
    pub workdir: String,
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations (`org.opencontainers.image.*`).
    pub annotations: BTreeMap<String, String>,
    /// Seconds since the Unix epoch, used for the config's `created` field and
    /// every file's mtime.
    pub created: i64,
    /// GOARCH-style name, such as `amd64`.
    pub architecture: String,
    pub os: String,
}

/// One layer as written to the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// The compressed blob.
    pub descriptor: Descriptor,
    /// Digest of the uncompressed tar, as listed in the config's `rootfs`.
    pub diff_id: String,
    pub description: String,
    pub entries: usize,
}

/// The result of writing an image into a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<BuiltLayer>,
}

impl BuiltImage {
    /// Total bytes of the manifest, config and layer blobs.
    pub fn total_size(&self) -> u64 {
        self.manifest.size + self.config.size + self.layers.iter().map(|l| l.descriptor.size).sum::<u64>()
    }
}
