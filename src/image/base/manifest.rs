//! Manifests and indexes of a base image: parsing, platform choice and the
//! conversion of Docker v2 schema 2 media types to OCI.

use serde::Deserialize;

use super::BaseError;
use crate::image::{Descriptor, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The media types kuul sends in `Accept` when it pulls a base manifest.
pub const ACCEPTED_MANIFEST_TYPES: [&str; 4] = [MANIFEST_MEDIA_TYPE, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Annotation that buildkit puts on the index entries of attestation
/// manifests (provenance, SBOM).
const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";

/// An operating system and CPU architecture in OCI terms, such as
/// `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    /// GOARCH name, such as `amd64`.
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux(architecture: &str) -> Platform {
        Platform { os: "linux".to_owned(), architecture: architecture.to_owned(), variant: None }
    }

    /// Reports whether an index entry's platform matches the requested
    /// platform `self`. A request without a variant accepts any variant, and
    /// `arm64` treats a missing variant as `v8`.
    fn accepts(&self, other: &IndexPlatform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        let Some(requested) = &self.variant else {
            return true;
        };
        let variant = other.variant.as_deref().or((self.architecture == "arm64").then_some("v8"));
        variant == Some(requested.as_str())
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A pulled manifest document: either an index of per-platform manifests or
/// one image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestDocument {
    Index(Vec<IndexEntry>),
    Image(ImageManifest),
}

/// One manifest listed in an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub descriptor: Descriptor,
    pub platform: Option<IndexPlatform>,
    /// The entry is an attestation (`vnd.docker.reference.type`), not an image.
    pub attestation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IndexPlatform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image manifest with its media types already converted to OCI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// The manifest was a Docker v2 schema 2 manifest.
    pub converted_from_docker: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<IndexPlatform>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// Parses a manifest or index. `content_type` is the response's
/// `Content-Type`, used when the document has no `mediaType` field (the
/// OCI spec makes that field optional).
pub fn parse_document(bytes: &[u8], content_type: Option<&str>) -> Result<ManifestDocument, BaseError> {
    let raw: RawDocument =
        serde_json::from_slice(bytes).map_err(|source| BaseError::InvalidManifest { reason: source.to_string() })?;

    let media_type = raw.media_type.as_deref().or(content_type).unwrap_or_default();
    let is_index = matches!(media_type, OCI_INDEX | DOCKER_LIST) || (media_type.is_empty() && raw.manifests.is_some());
    if is_index {
        let entries = raw.manifests.unwrap_or_default().into_iter().map(index_entry).collect();
        return Ok(ManifestDocument::Index(entries));
    }

    match media_type {
        MANIFEST_MEDIA_TYPE | DOCKER_MANIFEST | "" => {}
        other => return Err(BaseError::UnsupportedMediaType { media_type: other.to_owned(), what: "manifest" }),
    }
    let converted_from_docker = media_type == DOCKER_MANIFEST;
    let config = raw.config.ok_or(BaseError::InvalidManifest { reason: "the manifest has no `config`".to_owned() })?;
    let config =
        Descriptor { media_type: convert_config_type(&config.media_type)?, digest: config.digest, size: config.size };

    let mut layers = Vec::new();
    for layer in raw.layers.unwrap_or_default() {
        let media_type = convert_layer_type(&layer.media_type)?;
        layers.push(Descriptor { media_type, digest: layer.digest, size: layer.size });
    }

    for descriptor in layers.iter().chain([&config]) {
        crate::registry::reference::validate_digest(&descriptor.digest).map_err(|reason| {
            BaseError::InvalidManifest { reason: format!("digest `{}`: {reason}", descriptor.digest) }
        })?;
    }
    Ok(ManifestDocument::Image(ImageManifest { config, layers, converted_from_docker }))
}

fn index_entry(raw: RawDescriptor) -> IndexEntry {
    let attestation = raw.annotations.contains_key(REFERENCE_TYPE_ANNOTATION);
    IndexEntry {
        descriptor: Descriptor { media_type: raw.media_type, digest: raw.digest, size: raw.size },
        platform: raw.platform,
        attestation,
    }
}

/// Checks that a single-platform base's config is for `platform`, since
/// nothing else marks the platform of an image manifest. A config without
/// `architecture` is accepted, because nothing can be checked.
pub fn check_config_platform(config: &[u8], platform: &Platform) -> Result<(), BaseError> {
    #[derive(Deserialize)]
    struct ConfigPlatform {
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
        #[serde(default)]
        variant: Option<String>,
    }

    let found: ConfigPlatform =
        serde_json::from_slice(config).map_err(|error| BaseError::InvalidConfig { reason: error.to_string() })?;
    if found.architecture.is_empty() {
        return Ok(());
    }

    let os = if found.os.is_empty() { "linux".to_owned() } else { found.os };
    let found = IndexPlatform { os, architecture: found.architecture, variant: found.variant };
    if platform.accepts(&found) {
        return Ok(());
    }
    let found = match &found.variant {
        Some(variant) => format!("{}/{}/{variant}", found.os, found.architecture),
        None => format!("{}/{}", found.os, found.architecture),
    };
    Err(BaseError::PlatformMismatch { platform: platform.to_string(), found })
}

/// Picks the manifest for `platform` from an index. Attestation entries,
/// `unknown/unknown` entries and entries that are not image manifests are
/// skipped. A platform the index lacks is an error, never a fallback.
pub fn select_platform<'a>(entries: &'a [IndexEntry], platform: &Platform) -> Result<&'a IndexEntry, BaseError> {
    let images: Vec<&IndexEntry> = entries
        .iter()
        .filter(|entry| !entry.attestation)
        .filter(|entry| matches!(entry.descriptor.media_type.as_str(), MANIFEST_MEDIA_TYPE | DOCKER_MANIFEST))
        .filter(|entry| entry.platform.as_ref().is_some_and(|p| p.os != "unknown" && p.architecture != "unknown"))
        .collect();

    if let Some(found) = images.iter().find(|entry| entry.platform.as_ref().is_some_and(|p| platform.accepts(p))) {
        return Ok(found);
    }

    let available = images
        .iter()
        .filter_map(|entry| entry.platform.as_ref())
        .map(|p| match &p.variant {
            Some(variant) => format!("{}/{}/{variant}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(BaseError::PlatformNotFound { platform: platform.to_string(), available })
}

/// Maps a config media type to OCI. The Docker config JSON has the same
/// fields that kuul reads, so only the type name changes.
fn convert_config_type(media_type: &str) -> Result<String, BaseError> {
    match media_type {
        OCI_CONFIG | DOCKER_CONFIG => Ok(OCI_CONFIG.to_owned()),
        other => Err(BaseError::UnsupportedMediaType { media_type: other.to_owned(), what: "config" }),
    }
}

/// Maps a layer media type to OCI. A Docker gzip layer is a gzip-compressed
/// tar, the same bytes as an OCI `tar+gzip` layer, so the blob is kept.
/// Foreign and non-distributable layers are rejected, because kuul cannot
/// copy them into the image.
fn convert_layer_type(media_type: &str) -> Result<String, BaseError> {
    match media_type {
        LAYER_MEDIA_TYPE | DOCKER_LAYER_GZIP => Ok(LAYER_MEDIA_TYPE.to_owned()),
        OCI_LAYER_TAR | OCI_LAYER_ZSTD => Ok(media_type.to_owned()),
        other => Err(BaseError::UnsupportedMediaType { media_type: other.to_owned(), what: "layer" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const DIGEST_C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn index_json() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{MANIFEST_MEDIA_TYPE}","digest":"{DIGEST_C}","size":3,
                "platform":{{"os":"unknown","architecture":"unknown"}},
                "annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}},
              {{"mediaType":"{MANIFEST_MEDIA_TYPE}","digest":"{DIGEST_A}","size":1,
                "platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{MANIFEST_MEDIA_TYPE}","digest":"{DIGEST_B}","size":2,
                "platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        )
    }

    fn entries() -> Vec<IndexEntry> {
        match parse_document(index_json().as_bytes(), None).unwrap() {
            ManifestDocument::Index(entries) => entries,
            other => panic!("expected an index, got {other:?}"),
        }
    }

    #[test]
    fn select_platform_picks_amd64() {
        let entries = entries();
        let chosen = select_platform(&entries, &Platform::linux("amd64")).unwrap();
        assert_eq!(chosen.descriptor.digest, DIGEST_B);
    }

    #[test]
    fn select_platform_arm64_accepts_v8() {
        let entries = entries();
        let requested = Platform { variant: Some("v8".to_owned()), ..Platform::linux("arm64") };
        assert_eq!(select_platform(&entries, &requested).unwrap().descriptor.digest, DIGEST_A);
    }

    #[test]
    fn select_platform_missing_is_error() {
        let entries = entries();
        let error = select_platform(&entries, &Platform::linux("s390x")).unwrap_err().to_string();
        assert!(error.contains("`linux/s390x`"), "{error}");
        assert!(error.contains("linux/arm64/v8, linux/amd64"), "{error}");
    }

    #[test]
    fn select_platform_skips_attestation() {
        let entries = entries();
        let error = select_platform(&entries, &Platform::linux("unknown")).unwrap_err().to_string();
        assert!(!error.contains("unknown/unknown"), "{error}");
    }

    #[test]
    fn docker_manifest_converted_to_oci() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
              "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{DIGEST_A}","size":10}},
              "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{DIGEST_B}","size":20}}]}}"#
        );
        let ManifestDocument::Image(image) = parse_document(manifest.as_bytes(), None).unwrap() else {
            panic!("expected an image manifest");
        };
        assert_eq!(image.config.media_type, OCI_CONFIG);
        assert_eq!(image.layers[0].media_type, LAYER_MEDIA_TYPE);
        assert_eq!(image.layers[0].digest, DIGEST_B);
        assert!(image.converted_from_docker);
    }

    #[test]
    fn zstd_layer_type_kept() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{DIGEST_A}","size":10}},
              "layers":[{{"mediaType":"{OCI_LAYER_ZSTD}","digest":"{DIGEST_B}","size":20}}]}}"#
        );
        let ManifestDocument::Image(image) = parse_document(manifest.as_bytes(), None).unwrap() else {
            panic!("expected an image manifest");
        };
        assert_eq!(image.layers[0].media_type, OCI_LAYER_ZSTD);
    }

    #[test]
    fn foreign_layer_rejected() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
              "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{DIGEST_A}","size":10}},
              "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{DIGEST_B}","size":20}}]}}"#
        );
        let error = parse_document(manifest.as_bytes(), None).unwrap_err();
        assert!(matches!(error, BaseError::UnsupportedMediaType { what: "layer", .. }), "{error:?}");
    }

    #[test]
    fn config_of_requested_platform_accepted() {
        let config = br#"{"os":"linux","architecture":"arm64","variant":"v8"}"#;

        assert!(check_config_platform(config, &Platform::linux("arm64")).is_ok());
    }

    #[test]
    fn config_of_other_platform_rejected() {
        let config = br#"{"os":"linux","architecture":"amd64"}"#;

        let error = check_config_platform(config, &Platform::linux("arm64")).unwrap_err().to_string();

        assert!(error.contains("single-platform image for `linux/amd64`, not `linux/arm64`"), "{error}");
    }

    #[test]
    fn config_without_architecture_accepted() {
        assert!(check_config_platform(br#"{"rootfs":{}}"#, &Platform::linux("arm64")).is_ok());
    }
}
