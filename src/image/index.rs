//! The OCI image index of a multi-platform build: one manifest per platform,
//! each listed with its `platform` object.

use serde::Serialize;

use super::base::manifest::Platform;
use super::json::to_canonical_json;
use super::layout::Layout;
use super::{BuiltImage, Descriptor, ImageError, MANIFEST_MEDIA_TYPE};

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// One platform's image in an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    pub platform: Platform,
    pub image: BuiltImage,
}

/// An index written into a layout, with the images it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltIndex {
    pub descriptor: Descriptor,
    pub images: Vec<PlatformImage>,
}

impl BuiltIndex {
    /// Total bytes of the index and of every distinct manifest, config and
    /// layer blob. A blob that several platforms share, such as a layer of
    /// job files, counts once.
    pub fn total_size(&self) -> u64 {
        let mut seen = std::collections::BTreeSet::new();
        let mut total = self.descriptor.size;
        for entry in &self.images {
            let image = &entry.image;
            let blobs = [&image.manifest, &image.config].into_iter().chain(image.layers.iter().map(|l| &l.descriptor));
            for blob in blobs {
                if seen.insert(blob.digest.as_str()) {
                    total += blob.size;
                }
            }
        }
        total
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<IndexEntryJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntryJson<'a> {
    media_type: &'static str,
    digest: &'a str,
    size: u64,
    platform: PlatformJson<'a>,
}

#[derive(Serialize)]
struct PlatformJson<'a> {
    os: &'a str,
    architecture: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

/// Writes the index of `images`, in the given order, as canonical JSON into
/// `layout` and returns its descriptor. The manifests must already be there.
pub fn write_index(layout: &Layout, images: &[PlatformImage]) -> Result<Descriptor, ImageError> {
    let manifests = images
        .iter()
        .map(|entry| IndexEntryJson {
            media_type: MANIFEST_MEDIA_TYPE,
            digest: &entry.image.manifest.digest,
            size: entry.image.manifest.size,
            platform: PlatformJson {
                os: &entry.platform.os,
                architecture: &entry.platform.architecture,
                variant: entry.platform.variant.as_deref(),
            },
        })
        .collect();
    let index = IndexJson { schema_version: 2, media_type: INDEX_MEDIA_TYPE, manifests };

    let path = layout.dir().join("blobs");
    let bytes = to_canonical_json(&index).map_err(|source| ImageError::Json { path, source })?;
    layout.write_blob(INDEX_MEDIA_TYPE, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::BuiltLayer;

    fn image(digest: &str) -> BuiltImage {
        let manifest = Descriptor { media_type: MANIFEST_MEDIA_TYPE.to_owned(), digest: digest.to_owned(), size: 7 };
        BuiltImage { manifest: manifest.clone(), config: manifest, layers: Vec::new() }
    }

    #[test]
    fn write_index_lists_each_platform() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let arm = Platform { variant: Some("v8".to_owned()), ..Platform::linux("arm64") };
        let images = [
            PlatformImage { platform: Platform::linux("amd64"), image: image("sha256:aa") },
            PlatformImage { platform: arm, image: image("sha256:bb") },
        ];

        let descriptor = write_index(&layout, &images).unwrap();

        let written = std::fs::read_to_string(layout.blob_path(&descriptor.digest)).unwrap();
        let expected = concat!(
            r#"{"manifests":["#,
            r#"{"digest":"sha256:aa","mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            r#""platform":{"architecture":"amd64","os":"linux"},"size":7},"#,
            r#"{"digest":"sha256:bb","mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            r#""platform":{"architecture":"arm64","os":"linux","variant":"v8"},"size":7}],"#,
            r#""mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#
        );
        assert_eq!(written, expected);
        assert_eq!(descriptor.media_type, INDEX_MEDIA_TYPE);
    }

    #[test]
    fn total_size_counts_shared_blobs_once() {
        let shared = BuiltLayer {
            descriptor: Descriptor { media_type: String::new(), digest: "sha256:layer".to_owned(), size: 100 },
            diff_id: String::new(),
            description: "job files".to_owned(),
            entries: 1,
        };
        let mut amd = image("sha256:aa");
        amd.layers.push(shared.clone());
        let mut arm = image("sha256:bb");
        arm.layers.push(shared);
        let index = BuiltIndex {
            descriptor: Descriptor { media_type: INDEX_MEDIA_TYPE.to_owned(), digest: "sha256:ii".to_owned(), size: 3 },
            images: vec![
                PlatformImage { platform: Platform::linux("amd64"), image: amd },
                PlatformImage { platform: Platform::linux("arm64"), image: arm },
            ],
        };

        // index 3 + manifest and config `sha256:aa` 7 + `sha256:bb` 7 + layer 100
        assert_eq!(index.total_size(), 117);
    }
}
