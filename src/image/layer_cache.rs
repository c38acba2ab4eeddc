//! A cache of compressed layers, shared by every build of the user, so a
//! layer whose contents did not change is copied instead of compressed
//! again. Compressing is most of a warm build's time: a job of 64 Debian
//! packages built in 1.7 s with its 44 MiB layer compressed, and in 0.2 s
//! with the layer copied (`docs/benchmarks.md`).
//!
//! A layer's key is the SHA-256 of everything that decides its bytes: each
//! entry's path, kind, mode, owner, link target and content, the mtime, the
//! compression settings and kuul's version. A file's content counts by its
//! SHA-256, which is the file name for files in the Debian package cache
//! and is computed for any other host file. The cached blob is checked
//! against its digest while it is copied, so a damaged cache entry is
//! dropped and the layer is compressed again.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::layout::Layout;
use super::{BuiltLayer, Descriptor, ImageError, LAYER_MEDIA_TYPE, layer};
use crate::sources::{Content, EntryKind, LayerContent};

/// Layers whose files hold fewer bytes than this compress in a few
/// milliseconds, so they are not cached, which keeps the cache from
/// filling with every edit of a job script.
const MIN_CACHED_BYTES: u64 = 1 << 20;

/// The compressed layers under `ROOT/layers`.
///
/// NOTE: nothing removes entries, so the cache grows with every distinct
/// large layer until `ROOT/layers` is deleted.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
    /// Directories whose files are named by their SHA-256, so their content
    /// need not be read to know it.
    content_addressed: Vec<PathBuf>,
}

/// The cache's record of one layer, stored beside its blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    digest: String,
    diff_id: String,
    size: u64,
    entries: usize,
}

impl LayerCache {
    /// Opens the layer cache below the cache root `root`. Files below each
    /// of `content_addressed` must be named by the SHA-256 of their content.
    pub fn new(root: &Path, content_addressed: Vec<PathBuf>) -> LayerCache {
        LayerCache { dir: root.join("layers"), content_addressed }
    }

    /// Writes `layer` into `layout` as a gzip-compressed tar, from the cache
    /// when an identical layer was written before, and returns it. Cache
    /// failures are logged and never fail the build.
    pub fn write_layer(&self, layout: &Layout, layer: &LayerContent, mtime: i64) -> Result<BuiltLayer, ImageError> {
        let key = match self.key(layer, mtime) {
            Ok(key) => key,
            Err(error) => {
                tracing::debug!("layer `{}` not cached: {error}", layer.description);
                None
            }
        };
        let Some(key) = key else {
            return write_compressed(layout, layer, mtime);
        };

        if let Some(built) = self.copy_cached(layout, layer, &key) {
            return Ok(built);
        }
        let built = write_compressed(layout, layer, mtime)?;
        if let Err(error) = self.store(layout, &key, &built) {
            tracing::warn!("failed to cache layer `{}` in `{}`: {error}", layer.description, self.dir.display());
        }
        Ok(built)
    }

    /// Returns the layer's cache key, or `None` for a layer too small to
    /// cache.
    fn key(&self, layer: &LayerContent, mtime: i64) -> io::Result<Option<String>> {
        let file_bytes: u64 = layer
            .entries
            .iter()
            .map(|entry| match entry.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum();
        if file_bytes < MIN_CACHED_BYTES {
            return Ok(None);
        }

        let mut entries: Vec<_> = layer.entries.iter().collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));

        let mut hasher = Sha256::new();
        hasher.update(format!("kuul layer {}\n{}\nmtime {mtime}\n", env!("CARGO_PKG_VERSION"), layer::FORMAT));
        for entry in entries {
            let kind = match &entry.kind {
                EntryKind::Directory => "directory".to_owned(),
                EntryKind::Symlink { target } => format!("symlink {target}"),
                EntryKind::Hardlink { target } => format!("hardlink {target}"),
                EntryKind::File { content: Content::Inline(bytes), size } => {
                    format!("file {size} {}", hex::encode(Sha256::digest(bytes)))
                }
                EntryKind::File { content: Content::Host(path), size } => {
                    format!("file {size} {}", self.content_sha256(path)?)
                }
            };
            hasher.update(format!("{}\0{}\0{}\0{}\0{kind}\n", entry.path, entry.mode, entry.uid, entry.gid));
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    /// Returns the SHA-256 of a host file: its name in a content-addressed
    /// directory, else computed from its bytes.
    fn content_sha256(&self, path: &Path) -> io::Result<String> {
        let named = path.file_name().and_then(|name| name.to_str()).filter(|name| is_sha256_hex(name));
        if let Some(name) = named
            && self.content_addressed.iter().any(|dir| path.parent() == Some(dir.as_path()))
        {
            return Ok(name.to_owned());
        }

        let mut file = fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Copies the cached blob for `key` into `layout`. Returns `None` when
    /// there is none or it does not match its record, and then removes the
    /// entry.
    fn copy_cached(&self, layout: &Layout, layer: &LayerContent, key: &str) -> Option<BuiltLayer> {
        let record_path = self.record_path(key);
        let record: Record = serde_json::from_slice(&fs::read(&record_path).ok()?).ok()?;
        let blob_path = self.blob_path(&record.digest);

        match copy_blob(&blob_path, layout) {
            Ok(descriptor) if descriptor.digest == record.digest && descriptor.size == record.size => {
                Some(BuiltLayer {
                    descriptor,
                    diff_id: record.diff_id,
                    description: layer.description.clone(),
                    entries: record.entries,
                })
            }
            other => {
                tracing::warn!(
                    "dropped the cached layer `{}` from `{}`: {}",
                    layer.description,
                    self.dir.display(),
                    match other {
                        Ok(descriptor) =>
                            format!("its blob has digest `{}`, not `{}`", descriptor.digest, record.digest),
                        Err(error) => error.to_string(),
                    }
                );
                let _ = fs::remove_file(&record_path);
                let _ = fs::remove_file(&blob_path);
                None
            }
        }
    }

    /// Copies the layer's blob from `layout` into the cache and records it
    /// under `key`. Both files are written under temporary names and
    /// renamed, so a concurrent build never reads a partial entry.
    fn store(&self, layout: &Layout, key: &str, built: &BuiltLayer) -> io::Result<()> {
        let blob_path = self.blob_path(&built.descriptor.digest);
        fs::create_dir_all(self.dir.join("blobs"))?;
        if !blob_path.exists() {
            let temporary = tempfile::NamedTempFile::new_in(&self.dir)?;
            let mut source = fs::File::open(layout.blob_path(&built.descriptor.digest))?;
            // No fsync: a blob lost in a crash is missed or fails its digest
            // check on the next build, which then compresses the layer again.
            io::copy(&mut source, &mut temporary.as_file())?;
            temporary.persist(&blob_path).map_err(|error| error.error)?;
        }

        let record = Record {
            digest: built.descriptor.digest.clone(),
            diff_id: built.diff_id.clone(),
            size: built.descriptor.size,
            entries: built.entries,
        };
        let mut temporary = tempfile::NamedTempFile::new_in(&self.dir)?;
        temporary.write_all(&serde_json::to_vec(&record).map_err(io::Error::other)?)?;
        temporary.persist(self.record_path(key)).map_err(|error| error.error)?;
        Ok(())
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs").join(digest.trim_start_matches("sha256:"))
    }
}

/// Copies the file at `source` into `layout` as a layer blob and returns its
/// descriptor, with the digest computed on the way.
fn copy_blob(source: &Path, layout: &Layout) -> Result<Descriptor, ImageError> {
    let read_error = |error| ImageError::Read { path: source.to_owned(), source: error };
    let mut file = fs::File::open(source).map_err(read_error)?;
    let mut writer = layout.blob_writer()?;
    io::copy(&mut file, &mut writer).map_err(read_error)?;
    writer.commit(LAYER_MEDIA_TYPE)
}

/// Compresses `layer` into a blob of `layout`.
pub(super) fn write_compressed(layout: &Layout, layer: &LayerContent, mtime: i64) -> Result<BuiltLayer, ImageError> {
    let mut writer = layout.blob_writer()?;
    let stats = layer::write_layer(layer, mtime, &mut writer)?;
    let descriptor = writer.commit(LAYER_MEDIA_TYPE)?;

    if descriptor.digest != stats.digest {
        return Err(ImageError::DigestMismatch {
            description: layer.description.clone(),
            written: stats.digest,
            stored: descriptor.digest,
        });
    }

    Ok(BuiltLayer {
        descriptor,
        diff_id: stats.diff_id,
        description: layer.description.clone(),
        entries: stats.entries,
    })
}

fn is_sha256_hex(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Entry;

    fn big_layer(content: &[u8]) -> LayerContent {
        let mut bytes = content.to_vec();
        bytes.resize(MIN_CACHED_BYTES as usize, b'x');
        let size = bytes.len() as u64;
        LayerContent {
            description: "big".to_owned(),
            entries: vec![
                Entry::directory("/data"),
                Entry {
                    path: "/data/file".to_owned(),
                    kind: EntryKind::File { content: Content::Inline(bytes), size },
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
            ],
        }
    }

    fn cache_and_layout(dir: &Path) -> (LayerCache, Layout) {
        let cache = LayerCache::new(&dir.join("cache"), Vec::new());
        let layout = Layout::open_or_create(&dir.join("layout")).unwrap();
        (cache, layout)
    }

    #[test]
    fn cached_layer_equals_compressed_layer() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, layout) = cache_and_layout(dir.path());
        let fresh = write_compressed(&layout, &big_layer(b"a"), 0).unwrap();

        let first = cache.write_layer(&layout, &big_layer(b"a"), 0).unwrap();
        let second = cache.write_layer(&layout, &big_layer(b"a"), 0).unwrap();

        assert_eq!(first, fresh);
        assert_eq!(second, fresh);
    }

    #[test]
    fn second_write_comes_from_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, layout) = cache_and_layout(dir.path());
        let built = cache.write_layer(&layout, &big_layer(b"a"), 0).unwrap();
        let key = cache.key(&big_layer(b"a"), 0).unwrap().unwrap();

        let copied = cache.copy_cached(&layout, &big_layer(b"a"), &key);

        assert_eq!(copied, Some(built));
    }

    #[test]
    fn changed_content_changes_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, _) = cache_and_layout(dir.path());

        assert_ne!(cache.key(&big_layer(b"a"), 0).unwrap(), cache.key(&big_layer(b"b"), 0).unwrap());
    }

    #[test]
    fn changed_mtime_changes_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, _) = cache_and_layout(dir.path());

        assert_ne!(cache.key(&big_layer(b"a"), 0).unwrap(), cache.key(&big_layer(b"a"), 1).unwrap());
    }

    #[test]
    fn small_layer_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, _) = cache_and_layout(dir.path());
        let small = LayerContent { description: "small".to_owned(), entries: vec![Entry::directory("/data")] };

        assert_eq!(cache.key(&small, 0).unwrap(), None);
    }

    #[test]
    fn damaged_cache_blob_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, layout) = cache_and_layout(dir.path());
        let built = cache.write_layer(&layout, &big_layer(b"a"), 0).unwrap();
        fs::write(cache.blob_path(&built.descriptor.digest), b"damaged").unwrap();
        let key = cache.key(&big_layer(b"a"), 0).unwrap().unwrap();

        let copied = cache.copy_cached(&layout, &big_layer(b"a"), &key);
        let rebuilt = cache.write_layer(&layout, &big_layer(b"a"), 0).unwrap();

        assert_eq!(copied, None);
        assert_eq!(rebuilt, built);
    }

    #[test]
    fn content_addressed_file_named_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        fs::create_dir_all(&files).unwrap();
        let name = "ab".repeat(32);
        fs::write(files.join(&name), b"not what the name says").unwrap();
        let cache = LayerCache::new(dir.path(), vec![files.clone()]);

        assert_eq!(cache.content_sha256(&files.join(&name)).unwrap(), name);
    }

    #[test]
    fn other_host_file_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        fs::write(&path, b"abc").unwrap();
        let cache = LayerCache::new(dir.path(), Vec::new());

        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(cache.content_sha256(&path).unwrap(), expected);
    }
}
