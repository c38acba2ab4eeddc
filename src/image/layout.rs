//! The OCI image layout on disk: `oci-layout`, `index.json`, `blobs/`.
//!
//! Every file is written to a temporary file in its final directory and then
//! renamed, so a reader never sees a partial blob or index.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::json::to_canonical_json;
use super::layer::DigestWriter;
use super::{BuiltImage, Descriptor, ImageError};

/// Annotation that names a manifest in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const LAYOUT_VERSION: &str = "1.0.0";

/// Distinguishes temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Opens the layout at `dir`, creating the directory, `oci-layout`,
    /// `index.json` (with no manifests) and `blobs/sha256/` where missing.
    ///
    /// An existing `oci-layout` must declare version 1.0.0.
    pub fn open_or_create(dir: &Path) -> Result<Layout, ImageError> {
        let layout = Layout { dir: dir.to_path_buf() };
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|source| ImageError::Write { path: blobs.clone(), source })?;

        let marker = dir.join("oci-layout");
        if marker.exists() {
            check_layout_version(&marker)?;
        } else {
            let content = to_canonical_json(&json!({ "imageLayoutVersion": LAYOUT_VERSION }))
                .map_err(|source| ImageError::Json { path: marker.clone(), source })?;
            write_atomically(&marker, &content)?;
        }

        let index = layout.index_path();
        if !index.exists() {
            let empty = json!({ "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [] });
            layout.write_index(&empty)?;
        }

        Ok(layout)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns where the blob with `digest` (`<algorithm>:<hex>`) is stored,
    /// whether or not it exists.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.dir.join("blobs").join(algorithm).join(hex)
    }

    /// Stores `bytes` as a blob and returns its descriptor.
    pub fn write_blob(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, ImageError> {
        let mut writer = self.blob_writer()?;
        writer.write_all(bytes).map_err(|source| ImageError::Write { path: writer.temp_path.clone(), source })?;
        writer.commit(media_type)
    }

    /// Starts a streamed blob: write its bytes, then call
    /// [`BlobWriter::commit`]. Dropping the writer without committing
    /// removes the temporary file.
    pub fn blob_writer(&self) -> Result<BlobWriter, ImageError> {
        let directory = self.dir.join("blobs").join("sha256");
        let (temp_path, file) = create_temp_file(&directory)?;
        Ok(BlobWriter { layout: self.clone(), temp_path, inner: Some(DigestWriter::new(BufWriter::new(file))) })
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &str) -> Result<File, ImageError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|source| ImageError::Read { path, source })
    }

    /// Adds the image's manifest to `index.json` under the annotation
    /// `org.opencontainers.image.ref.name = name`. A manifest that had that
    /// name before loses its entry. Other entries and fields stay as they were.
    pub fn tag(&self, image: &BuiltImage, name: &str) -> Result<(), ImageError> {
        self.tag_descriptor(&image.manifest, name)
    }

    /// Tags an image manifest or an image index like [`Layout::tag`], keeping
    /// the descriptor's media type.
    pub fn tag_descriptor(&self, descriptor: &Descriptor, name: &str) -> Result<(), ImageError> {
        let mut index = self.read_index()?;
        let index_path = self.index_path();
        let invalid = |reason| ImageError::InvalidLayout { path: index_path.clone(), reason };

        let manifests = index
            .as_object_mut()
            .ok_or_else(|| invalid("the index is not a JSON object"))?
            .entry("manifests")
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or_else(|| invalid("`manifests` is not an array"))?;

        manifests.retain(|descriptor| descriptor["annotations"][REF_NAME_ANNOTATION].as_str() != Some(name));
        manifests.push(json!({
            "mediaType": descriptor.media_type,
            "digest": descriptor.digest,
            "size": descriptor.size,
            "annotations": { REF_NAME_ANNOTATION: name },
        }));

        self.write_index(&index)
    }

    /// Returns the manifest digest tagged `name` in `index.json`, if any.
    pub fn find_tag(&self, name: &str) -> Result<Option<String>, ImageError> {
        let index = self.read_index()?;
        let digest = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|descriptor| descriptor["annotations"][REF_NAME_ANNOTATION].as_str() == Some(name))
            .and_then(|descriptor| descriptor["digest"].as_str())
            .map(str::to_string);
        Ok(digest)
    }

    /// Removes the `sha256` blobs that no entry of `index.json` reaches
    /// through indexes and manifests, such as the layers of earlier builds,
    /// and returns how many it removed. Temporary files are kept, and so is
    /// every blob when a reachable manifest or index cannot be read, because
    /// what it references is then unknown.
    ///
    /// NOTE: a second build writing into the same layout at the same time
    /// could lose blobs it has written but not yet tagged. Builds into one
    /// layout must run one at a time, which `index.json` needs anyway.
    pub fn remove_unreferenced_blobs(&self) -> Result<usize, ImageError> {
        let index = self.read_index()?;
        let mut reachable = std::collections::HashSet::new();
        let mut pending: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
        while let Some(descriptor) = pending.pop() {
            let Some(digest) = descriptor["digest"].as_str() else {
                continue;
            };
            if !reachable.insert(digest.to_owned()) {
                continue;
            }
            let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
            if !(media_type.contains("manifest") || media_type.contains("index")) {
                continue;
            }
            let Some(document) = fs::read(self.blob_path(digest)).ok().and_then(|bytes| parse_json(&bytes)) else {
                return Ok(0);
            };
            pending.extend(document["manifests"].as_array().cloned().unwrap_or_default());
            pending.extend(document["layers"].as_array().cloned().unwrap_or_default());
            if document["config"].is_object() {
                pending.push(document["config"].clone());
            }
        }

        let directory = self.dir.join("blobs").join("sha256");
        let entries =
            fs::read_dir(&directory).map_err(|source| ImageError::Read { path: directory.clone(), source })?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_blob = name.len() == 64 && name.bytes().all(|byte| byte.is_ascii_hexdigit());
            if is_blob && !reachable.contains(&format!("sha256:{name}")) {
                fs::remove_file(entry.path()).map_err(|source| ImageError::Write { path: entry.path(), source })?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn read_index(&self) -> Result<Value, ImageError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(|source| ImageError::Read { path: path.clone(), source })?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json { path, source })
    }

    fn write_index(&self, index: &Value) -> Result<(), ImageError> {
        let path = self.index_path();
        let content = to_canonical_json(index).map_err(|source| ImageError::Json { path: path.clone(), source })?;
        write_atomically(&path, &content)
    }
}

/// A blob being written into a layout. It computes the SHA-256 of the bytes
/// as they pass, so the final name is known at [`BlobWriter::commit`].
pub struct BlobWriter {
    layout: Layout,
    temp_path: PathBuf,
    inner: Option<DigestWriter<BufWriter<File>>>,
}

impl BlobWriter {
    /// Moves the blob to `blobs/sha256/<hex>` and returns its descriptor. If
    /// the layout already has that blob, the new copy is discarded.
    pub fn commit(mut self, media_type: &str) -> Result<Descriptor, ImageError> {
        let write_error = |source| ImageError::Write { path: self.temp_path.clone(), source };
        let inner = self.inner.take().expect("commit runs once");
        let (buffered, digest, size) = inner.finish();
        let file = buffered.into_inner().map_err(|error| write_error(error.into_error()))?;
        file.sync_all().map_err(write_error)?;
        drop(file);

        let final_path = self.layout.blob_path(&digest);
        if final_path.exists() {
            remove_quietly(&self.temp_path);
        } else {
            fs::rename(&self.temp_path, &final_path)
                .map_err(|source| ImageError::Write { path: final_path.clone(), source })?;
        }

        Ok(Descriptor { media_type: media_type.to_string(), digest, size })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.as_mut().expect("written before commit").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().expect("flushed before commit").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            remove_quietly(&self.temp_path);
        }
    }
}

fn check_layout_version(marker: &Path) -> Result<(), ImageError> {
    let bytes = fs::read(marker).map_err(|source| ImageError::Read { path: marker.to_path_buf(), source })?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json { path: marker.to_path_buf(), source })?;

    if value["imageLayoutVersion"].as_str() != Some(LAYOUT_VERSION) {
        return Err(ImageError::InvalidLayout {
            path: marker.to_path_buf(),
            reason: "`imageLayoutVersion` is not `1.0.0`",
        });
    }
    Ok(())
}

/// Writes `content` to `path` through a temporary file in the same
/// directory and a rename.
pub(crate) fn write_atomically(path: &Path, content: &[u8]) -> Result<(), ImageError> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let (temp_path, mut file) = create_temp_file(directory)?;

    let result = file.write_all(content).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&temp_path, path));
    if let Err(source) = result {
        remove_quietly(&temp_path);
        return Err(ImageError::Write { path: path.to_path_buf(), source });
    }
    Ok(())
}

fn parse_json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// Creates a new, empty file named `.tmp-<pid>-<n>` in `directory`.
pub(crate) fn create_temp_file(directory: &Path) -> Result<(PathBuf, File), ImageError> {
    loop {
        let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = directory.join(format!(".tmp-{}-{counter}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(ImageError::Write { path, source }),
        }
    }
}

/// Removes a temporary file. A failure leaves a stray `.tmp-*` file but does
/// not change the result, so it is ignored.
fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::MANIFEST_MEDIA_TYPE;

    fn image_with_manifest(digest: &str) -> BuiltImage {
        let descriptor =
            Descriptor { media_type: MANIFEST_MEDIA_TYPE.to_string(), digest: digest.to_string(), size: 42 };
        BuiltImage { manifest: descriptor.clone(), config: descriptor, layers: Vec::new() }
    }

    #[test]
    fn open_or_create_writes_marker_and_index() {
        let dir = tempfile::tempdir().unwrap();

        Layout::open_or_create(dir.path()).unwrap();

        let marker = fs::read_to_string(dir.path().join("oci-layout")).unwrap();
        let index = fs::read_to_string(dir.path().join("index.json")).unwrap();
        assert_eq!(marker, r#"{"imageLayoutVersion":"1.0.0"}"#);
        assert_eq!(
            index,
            r#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#
        );
    }

    #[test]
    fn open_or_create_rejects_other_version() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();

        let result = Layout::open_or_create(dir.path());

        assert!(matches!(result, Err(ImageError::InvalidLayout { .. })), "{result:?}");
    }

    #[test]
    fn write_blob_stores_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();

        let descriptor = layout.write_blob("text/plain", b"hello").unwrap();

        assert_eq!(descriptor.digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(descriptor.size, 5);
        assert_eq!(fs::read(layout.blob_path(&descriptor.digest)).unwrap(), b"hello");
    }

    #[test]
    fn write_blob_twice_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();

        layout.write_blob("text/plain", b"hello").unwrap();
        layout.write_blob("text/plain", b"hello").unwrap();

        let names: Vec<_> =
            fs::read_dir(dir.path().join("blobs/sha256")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn dropped_blob_writer_removes_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();

        let mut writer = layout.blob_writer().unwrap();
        writer.write_all(b"partial").unwrap();
        drop(writer);

        assert_eq!(fs::read_dir(dir.path().join("blobs/sha256")).unwrap().count(), 0);
    }

    #[test]
    fn tag_replaces_same_name_keeps_others() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();

        layout.tag(&image_with_manifest("sha256:aaaa"), "v1").unwrap();
        layout.tag(&image_with_manifest("sha256:bbbb"), "v2").unwrap();
        layout.tag(&image_with_manifest("sha256:cccc"), "v1").unwrap();

        assert_eq!(layout.find_tag("v1").unwrap().as_deref(), Some("sha256:cccc"));
        assert_eq!(layout.find_tag("v2").unwrap().as_deref(), Some("sha256:bbbb"));
        assert_eq!(layout.read_index().unwrap()["manifests"].as_array().unwrap().len(), 2);
    }

    fn write_json(layout: &Layout, media_type: &str, value: &Value) -> Descriptor {
        layout.write_blob(media_type, &to_canonical_json(value).unwrap()).unwrap()
    }

    fn image(layout: &Layout, layer: &[u8]) -> Descriptor {
        let layer = layout.write_blob("application/vnd.oci.image.layer.v1.tar+gzip", layer).unwrap();
        let config = layout.write_blob("application/vnd.oci.image.config.v1+json", b"{}").unwrap();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": { "mediaType": config.media_type, "digest": config.digest, "size": config.size },
            "layers": [{ "mediaType": layer.media_type, "digest": layer.digest, "size": layer.size }],
        });
        write_json(layout, MANIFEST_MEDIA_TYPE, &manifest)
    }

    #[test]
    fn unreferenced_blobs_removed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let old = image(&layout, b"old layer");
        layout.tag_descriptor(&old, "latest").unwrap();
        let new = image(&layout, b"new layer");
        layout.tag_descriptor(&new, "latest").unwrap();

        let removed = layout.remove_unreferenced_blobs().unwrap();

        assert_eq!(removed, 2, "the old manifest and the old layer");
        assert!(layout.blob_path(&new.digest).exists());
        assert!(!layout.blob_path(&old.digest).exists());
    }

    #[test]
    fn blobs_behind_index_kept() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let first = image(&layout, b"amd64 layer");
        let second = image(&layout, b"arm64 layer");
        let entry = |descriptor: &Descriptor| json!({ "mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size });
        let index =
            json!({ "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [entry(&first), entry(&second)] });
        let index = write_json(&layout, INDEX_MEDIA_TYPE, &index);
        layout.tag_descriptor(&index, "latest").unwrap();

        let removed = layout.remove_unreferenced_blobs().unwrap();

        assert_eq!(removed, 0);
    }

    #[test]
    fn unreadable_manifest_keeps_every_blob() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let stray = layout.write_blob("application/octet-stream", b"stray").unwrap();
        let broken = Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.to_string(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
        };
        layout.tag_descriptor(&broken, "latest").unwrap();

        let removed = layout.remove_unreferenced_blobs().unwrap();

        assert_eq!(removed, 0);
        assert!(layout.blob_path(&stray.digest).exists());
    }
}
