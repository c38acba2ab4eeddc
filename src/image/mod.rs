//! Image assembly: deterministic tar layers, the image config, the manifest
//! and the OCI image layout. Synchronous and streaming: memory use does not
//! grow with the size of the files packed.

pub mod archive;
pub mod base;
pub mod elf;
pub mod index;
mod json;
pub mod layer;
pub mod layer_cache;
pub mod layout;
pub mod tree;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use self::json::to_canonical_json;
use self::layout::Layout;
use self::tree::TreeError;
use crate::report::Reporter;
use crate::sources::LayerContent;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Errors from building an image or writing it to disk.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Tree(#[from] TreeError),

    #[error("invalid layer entry `{path}`: {reason}\nhint: pass the layer through `ImageTree::add_layer` first")]
    InvalidEntry { path: String, reason: &'static str },

    #[error(
        "invalid creation time `{seconds}`: seconds before 1970 are not supported\nhint: set `SOURCE_DATE_EPOCH` to a value of 0 or more"
    )]
    InvalidTime { seconds: i64 },

    #[error(
        "host file `{path}` changed size while the layer was written: expected {expected} bytes, found {actual}\nhint: build again once nothing writes to the file"
    )]
    SizeChanged { path: PathBuf, expected: u64, actual: u64 },

    #[error("failed to read host file `{path}`: {source}")]
    ReadHostFile { path: PathBuf, source: io::Error },

    #[error("failed to write `{path}` into the layer: {source}")]
    WriteEntry { path: String, source: io::Error },

    #[error("failed to finish layer `{description}`: {source}")]
    WriteLayer { description: String, source: io::Error },

    #[error("failed to read `{path}`: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("failed to write `{path}`: {source}")]
    Write { path: PathBuf, source: io::Error },

    #[error("invalid JSON in `{path}`: {source}")]
    Json { path: PathBuf, source: serde_json::Error },

    #[error(
        "invalid OCI layout at `{path}`: {reason}\nhint: choose an empty directory or an existing OCI image layout"
    )]
    InvalidLayout { path: PathBuf, reason: &'static str },

    #[error(
        "layer `{description}` has digest `{written}` but the layout stored `{stored}`\nhint: this is a bug in kuul, please report it"
    )]
    DigestMismatch { description: String, written: String, stored: String },
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
}

/// The image config fields besides the layers.
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
    /// CPU variant, such as `v7` for `arm`; left out of the config when `None`.
    pub variant: Option<String>,
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

/// Writes an image into `layout` and returns its descriptors.
///
/// The layers pass through a fresh [`tree::ImageTree`] in order. It checks each
/// layer against the ones before it and normalizes its paths, so `layers`
/// may come straight from the sources. Every file gets
/// `settings.created` as its mtime. The config and the manifest are canonical
/// JSON (sorted keys, no whitespace), so the same inputs give the same
/// manifest digest. The image is not tagged: call [`Layout::tag`] for that.
pub fn build(
    layout: &Layout,
    layers: &[LayerContent],
    settings: &ImageSettings,
    reporter: &dyn Reporter,
) -> Result<BuiltImage, ImageError> {
    build_on_base(layout, None, layers, settings, None, reporter)
}

/// Writes an image like [`build`], with `base`'s layers first when it is
/// given. The base's blobs must already be in `layout` (see
/// [`base::import`]), and its history entries come first in the config.
pub fn build_on_base(
    layout: &Layout,
    base: Option<&base::BaseImage>,
    layers: &[LayerContent],
    settings: &ImageSettings,
    cache: Option<&layer_cache::LayerCache>,
    reporter: &dyn Reporter,
) -> Result<BuiltImage, ImageError> {
    let created = rfc3339(settings.created)?;

    let mut tree = base.map(|base| base.tree.clone()).unwrap_or_default();
    let mut built_layers: Vec<BuiltLayer> = base.map(|base| base.layers.clone()).unwrap_or_default();
    let base_history = base.map(|base| base_history(base, &created)).unwrap_or_default();
    let base_layers = built_layers.len();
    for layer in layers {
        reporter.step(&format!("layer {}", layer.description));
        let normalized = tree.add_layer(layer.clone())?;
        let built = match cache {
            Some(cache) => cache.write_layer(layout, &normalized, settings.created)?,
            None => layer_cache::write_compressed(layout, &normalized, settings.created)?,
        };
        built_layers.push(built);
    }

    let config_json = image_config(settings, &created, &built_layers, base_history, base_layers);
    let config = write_json_blob(layout, CONFIG_MEDIA_TYPE, &config_json)?;

    let manifest_json = image_manifest(settings, &config, &built_layers);
    let manifest = write_json_blob(layout, MANIFEST_MEDIA_TYPE, &manifest_json)?;

    Ok(BuiltImage { manifest, config, layers: built_layers })
}

/// Returns the base's history, or one entry per base layer when the base
/// config has none, so the history still lists every layer.
fn base_history(base: &base::BaseImage, created: &str) -> Vec<serde_json::Value> {
    if !base.config.history.is_empty() {
        return base.config.history.clone();
    }
    base.layers
        .iter()
        .map(|_| serde_json::json!({ "created": created, "created_by": "base image", "comment": base.name }))
        .collect()
}

fn write_json_blob(layout: &Layout, media_type: &str, value: &impl Serialize) -> Result<Descriptor, ImageError> {
    let path = layout.dir().join("blobs");
    let bytes = to_canonical_json(value).map_err(|source| ImageError::Json { path, source })?;
    layout.write_blob(media_type, &bytes)
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC.
fn rfc3339(seconds: i64) -> Result<String, ImageError> {
    if seconds < 0 {
        return Err(ImageError::InvalidTime { seconds });
    }
    let timestamp = jiff::Timestamp::from_second(seconds).map_err(|_| ImageError::InvalidTime { seconds })?;
    Ok(timestamp.to_string())
}

/// The image config, as defined by the OCI image spec v1.1.
#[derive(Serialize)]
struct ImageConfig<'a> {
    created: &'a str,
    architecture: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    os: &'a str,
    config: ExecutionConfig<'a>,
    rootfs: RootFs<'a>,
    history: Vec<serde_json::Value>,
}

/// The config's `config` object. Empty fields are left out, as the image
/// spec's own Go types do with `omitempty`.
#[derive(Serialize)]
struct ExecutionConfig<'a> {
    #[serde(rename = "User", skip_serializing_if = "str::is_empty")]
    user: &'a str,
    #[serde(rename = "Env", skip_serializing_if = "<[String]>::is_empty")]
    env: &'a [String],
    #[serde(rename = "Entrypoint", skip_serializing_if = "<[String]>::is_empty")]
    entrypoint: &'a [String],
    #[serde(rename = "WorkingDir", skip_serializing_if = "str::is_empty")]
    working_dir: &'a str,
    #[serde(rename = "Labels", skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: DescriptorJson<'a>,
    layers: Vec<DescriptorJson<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
}

impl<'a> From<&'a Descriptor> for DescriptorJson<'a> {
    fn from(descriptor: &'a Descriptor) -> Self {
        DescriptorJson { media_type: &descriptor.media_type, digest: &descriptor.digest, size: descriptor.size }
    }
}

fn image_config<'a>(
    settings: &'a ImageSettings,
    created: &'a str,
    layers: &'a [BuiltLayer],
    base_history: Vec<serde_json::Value>,
    base_layers: usize,
) -> ImageConfig<'a> {
    let own_history = layers
        .iter()
        .skip(base_layers)
        .map(|layer| serde_json::json!({ "created": created, "created_by": "kuul", "comment": layer.description }));
    let history = base_history.into_iter().chain(own_history).collect();

    ImageConfig {
        created,
        architecture: &settings.architecture,
        variant: settings.variant.as_deref(),
        os: &settings.os,
        config: ExecutionConfig {
            user: &settings.user,
            env: &settings.env,
            entrypoint: &settings.entrypoint,
            working_dir: &settings.workdir,
            labels: &settings.labels,
        },
        rootfs: RootFs { kind: "layers", diff_ids: layers.iter().map(|layer| layer.diff_id.as_str()).collect() },
        history,
    }
}

fn image_manifest<'a>(
    settings: &'a ImageSettings,
    config: &'a Descriptor,
    layers: &'a [BuiltLayer],
) -> ImageManifest<'a> {
    ImageManifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config: config.into(),
        layers: layers.iter().map(|layer| (&layer.descriptor).into()).collect(),
        annotations: &settings.annotations,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::report::SilentReporter;
    use crate::sources::Entry;

    fn settings() -> ImageSettings {
        ImageSettings {
            entrypoint: vec!["/app/run.sh".to_string()],
            env: vec!["PATH=/usr/bin".to_string()],
            user: "65532:65532".to_string(),
            workdir: "/app".to_string(),
            labels: BTreeMap::from([("dev.kuul.job".to_string(), "backup".to_string())]),
            annotations: BTreeMap::from([("org.opencontainers.image.title".to_string(), "backup".to_string())]),
            created: 0,
            architecture: "amd64".to_string(),
            variant: None,
            os: "linux".to_string(),
        }
    }

    fn job_layer() -> LayerContent {
        LayerContent {
            description: "job files".to_string(),
            entries: vec![Entry::inline_file("/app/run.sh", b"#!/bin/sh\necho ok\n".to_vec(), 0o755)],
        }
    }

    fn read_json(layout: &Layout, digest: &str) -> String {
        std::fs::read_to_string(layout.blob_path(digest)).unwrap()
    }

    #[derive(Default)]
    struct RecordingReporter {
        steps: Mutex<Vec<String>>,
    }

    impl Reporter for RecordingReporter {
        fn step(&self, message: &str) {
            self.steps.lock().unwrap().push(message.to_string());
        }
    }

    #[test]
    fn build_writes_canonical_config() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();

        let image = build(&layout, &[job_layer()], &settings(), &SilentReporter).unwrap();

        let expected = format!(
            concat!(
                r#"{{"architecture":"amd64","config":{{"Entrypoint":["/app/run.sh"],"Env":["PATH=/usr/bin"],"#,
                r#""Labels":{{"dev.kuul.job":"backup"}},"User":"65532:65532","WorkingDir":"/app"}},"#,
                r#""created":"1970-01-01T00:00:00Z","history":[{{"comment":"job files","created":"1970-01-01T00:00:00Z","#,
                r#""created_by":"kuul"}}],"os":"linux","rootfs":{{"diff_ids":["{}"],"type":"layers"}}}}"#
            ),
            image.layers[0].diff_id
        );
        assert_eq!(read_json(&layout, &image.config.digest), expected);
    }

    #[test]
    fn build_writes_canonical_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();

        let image = build(&layout, &[job_layer()], &settings(), &SilentReporter).unwrap();

        let layer = &image.layers[0].descriptor;
        let expected = format!(
            concat!(
                r#"{{"annotations":{{"org.opencontainers.image.title":"backup"}},"#,
                r#""config":{{"digest":"{}","mediaType":"application/vnd.oci.image.config.v1+json","size":{}}},"#,
                r#""layers":[{{"digest":"{}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{}}}],"#,
                r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
            ),
            image.config.digest, image.config.size, layer.digest, layer.size
        );
        assert_eq!(read_json(&layout, &image.manifest.digest), expected);
    }

    #[test]
    fn build_omits_empty_config_fields() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let bare = ImageSettings {
            entrypoint: Vec::new(),
            env: Vec::new(),
            user: String::new(),
            workdir: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            ..settings()
        };

        let image = build(&layout, &[job_layer()], &bare, &SilentReporter).unwrap();

        assert!(read_json(&layout, &image.config.digest).contains(r#""config":{}"#));
        assert!(!read_json(&layout, &image.manifest.digest).contains("annotations"));
    }

    #[test]
    fn build_reports_each_layer() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let reporter = RecordingReporter::default();
        let base = LayerContent { description: "system files".to_string(), entries: vec![Entry::directory("/etc")] };

        build(&layout, &[base, job_layer()], &settings(), &reporter).unwrap();

        assert_eq!(*reporter.steps.lock().unwrap(), ["layer system files", "layer job files"]);
    }

    #[test]
    fn build_rejects_conflicting_layers() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let base = LayerContent { description: "base".to_string(), entries: vec![Entry::directory("/app/run.sh")] };

        let result = build(&layout, &[base, job_layer()], &settings(), &SilentReporter);

        assert!(matches!(result, Err(ImageError::Tree(TreeError::DirectoryReplaced { .. }))), "{result:?}");
    }
}
