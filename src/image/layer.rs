//! Deterministic, streaming tar + gzip layers.
//!
//! Entries are written in path order with fixed metadata (the given mtime,
//! numeric owners, no user names), in GNU tar format with GNU long-name
//! records for paths and link targets over 100 bytes. The tar stream goes
//! through a gzip encoder, and SHA-256 is computed over both streams on the
//! way, so a layer of any size passes through a fixed set of buffers.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::ImageError;
use crate::sources::{Content, Entry, EntryKind, LayerContent};

/// Gzip level for layers: the zlib default, a usual trade of size for speed.
const GZIP_LEVEL: u32 = 6;

/// Gzip header OS byte: 255 means "unknown", so the build host does not
/// change the digest.
const GZIP_OS_UNKNOWN: u8 = 255;

/// The settings that decide a layer's bytes besides its entries and mtime,
/// for the layer cache key. Changing any of them must change this text.
pub(super) const FORMAT: &str = "gnu tar, path order, gzip level 6, gzip os 255";

/// Digests and sizes of one written layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// `sha256:<hex>` of the compressed stream, the blob digest.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar, the config's `diff_id`.
    pub diff_id: String,
    /// Bytes of the compressed stream.
    pub size: u64,
    /// Tar entries written, not counting GNU long-name records.
    pub entries: usize,
}

/// Writes `layer` as a gzip-compressed tar to `out` and returns its digests.
///
/// Entries are sorted by path in byte order, so a directory comes before its
/// contents. Paths must be absolute and unique, as [`ImageTree::add_layer`]
/// returns them. `mtime` is seconds since the Unix epoch and must not be
/// negative. A host file whose size differs from its entry is an error,
/// because the tar header already promised that size.
///
/// [`ImageTree::add_layer`]: super::tree::ImageTree::add_layer
pub fn write_layer(layer: &LayerContent, mtime: i64, out: impl Write) -> Result<LayerStats, ImageError> {
    let mtime = u64::try_from(mtime).map_err(|_| ImageError::InvalidTime { seconds: mtime })?;
    let entries = sorted_entries(layer)?;

    let compressed = DigestWriter::new(out);
    let gzip = GzBuilder::new().operating_system(GZIP_OS_UNKNOWN).write(compressed, Compression::new(GZIP_LEVEL));
    let uncompressed = DigestWriter::new(gzip);
    let mut builder = tar::Builder::new(uncompressed);

    for entry in &entries {
        append_entry(&mut builder, entry, mtime)?;
    }

    let finish_error = |source| ImageError::WriteLayer { description: layer.description.clone(), source };
    let uncompressed = builder.into_inner().map_err(finish_error)?;
    let (gzip, diff_id, _) = uncompressed.finish();
    let compressed = gzip.finish().map_err(finish_error)?;
    let (mut out, digest, size) = compressed.finish();
    out.flush().map_err(finish_error)?;

    Ok(LayerStats { digest, diff_id, size, entries: entries.len() })
}

/// Returns the entries sorted by path, rejecting relative or repeated paths.
fn sorted_entries(layer: &LayerContent) -> Result<Vec<&Entry>, ImageError> {
    let mut entries: Vec<&Entry> = layer.entries.iter().collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));

    for entry in &entries {
        if !entry.path.starts_with('/') || entry.path == "/" {
            return Err(ImageError::InvalidEntry { path: entry.path.clone(), reason: "the path is not absolute" });
        }
    }
    for pair in entries.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(ImageError::InvalidEntry { path: pair[0].path.clone(), reason: "the path occurs twice" });
        }
    }

    Ok(entries)
}

/// Appends one entry with its header. File content streams from its source.
fn append_entry<W: Write>(builder: &mut tar::Builder<W>, entry: &Entry, mtime: u64) -> Result<(), ImageError> {
    let mut header = Header::new_gnu();
    header.set_mtime(mtime);
    header.set_uid(u64::from(entry.uid));
    header.set_gid(u64::from(entry.gid));
    header.set_mode(entry.mode & 0o7777);
    header.set_size(0);

    let tar_path = entry.path.trim_start_matches('/');
    let write_error = |source| ImageError::WriteEntry { path: entry.path.clone(), source };

    match &entry.kind {
        EntryKind::Directory => {
            header.set_entry_type(EntryType::Directory);
            builder.append_data(&mut header, format!("{tar_path}/"), io::empty()).map_err(write_error)
        }
        EntryKind::Symlink { target } => {
            header.set_entry_type(EntryType::Symlink);
            builder.append_link(&mut header, tar_path, target).map_err(write_error)
        }
        EntryKind::Hardlink { target } => {
            header.set_entry_type(EntryType::Link);
            builder.append_link(&mut header, tar_path, target.trim_start_matches('/')).map_err(write_error)
        }
        EntryKind::File { content: Content::Inline(bytes), size } => {
            if *size != bytes.len() as u64 {
                return Err(ImageError::InvalidEntry {
                    path: entry.path.clone(),
                    reason: "the size differs from the content length",
                });
            }
            header.set_entry_type(EntryType::Regular);
            header.set_size(*size);
            builder.append_data(&mut header, tar_path, bytes.as_slice()).map_err(write_error)
        }
        EntryKind::File { content: Content::Host(host_path), size } => {
            header.set_entry_type(EntryType::Regular);
            header.set_size(*size);
            append_host_file(builder, &mut header, entry, host_path, *size)
        }
    }
}

/// Streams a host file into the layer, checking that it still has the size
/// recorded in its entry, before and while it is read.
fn append_host_file<W: Write>(
    builder: &mut tar::Builder<W>,
    header: &mut Header,
    entry: &Entry,
    host_path: &Path,
    size: u64,
) -> Result<(), ImageError> {
    let read_error = |source| ImageError::ReadHostFile { path: host_path.to_path_buf(), source };
    let file = File::open(host_path).map_err(read_error)?;
    let actual = file.metadata().map_err(read_error)?.len();
    if actual != size {
        return Err(ImageError::SizeChanged { path: host_path.to_path_buf(), expected: size, actual });
    }

    let mut reader = SizeCheckedReader::new(file, host_path, size);
    let result = builder.append_data(header, entry.path.trim_start_matches('/'), &mut reader);

    if let Some(error) = reader.failure.take() {
        return Err(error);
    }
    result.map_err(|source| ImageError::WriteEntry { path: entry.path.clone(), source })
}

/// A reader that yields exactly `size` bytes and fails if the file turns out
/// shorter or longer, keeping the typed error for the caller.
struct SizeCheckedReader {
    file: File,
    path: PathBuf,
    size: u64,
    remaining: u64,
    failure: Option<ImageError>,
}

impl SizeCheckedReader {
    fn new(file: File, path: &Path, size: u64) -> SizeCheckedReader {
        SizeCheckedReader { file, path: path.to_path_buf(), size, remaining: size, failure: None }
    }

    fn fail(&mut self, error: ImageError) -> io::Error {
        let message = error.to_string();
        self.failure = Some(error);
        io::Error::other(message)
    }

    fn size_changed(&mut self, actual: u64) -> io::Error {
        let error = ImageError::SizeChanged { path: self.path.clone(), expected: self.size, actual };
        self.fail(error)
    }
}

impl Read for SizeCheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // One probe read shows whether the file grew past its size.
            let mut probe = [0u8; 1];
            return match self.file.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => {
                    let actual = self.file.metadata().map_or(self.size + 1, |metadata| metadata.len());
                    Err(self.size_changed(actual))
                }
                Err(source) => Err(self.fail(ImageError::ReadHostFile { path: self.path.clone(), source })),
            };
        }

        let limit = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.file.read(&mut buf[..limit]) {
            Ok(0) => Err(self.size_changed(self.size - self.remaining)),
            Ok(read) => {
                self.remaining -= read as u64;
                Ok(read)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(source) => Err(self.fail(ImageError::ReadHostFile { path: self.path.clone(), source })),
        }
    }
}

/// A writer that passes bytes through and computes their SHA-256 and count.
pub(crate) struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> DigestWriter<W> {
    pub(crate) fn new(inner: W) -> DigestWriter<W> {
        DigestWriter { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// Returns the inner writer, the `sha256:<hex>` digest and the byte count.
    pub(crate) fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.bytes)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, SystemTime};

    use flate2::read::GzDecoder;

    use super::*;

    fn sample_layer(host_file: &Path) -> LayerContent {
        let host_size = fs::metadata(host_file).unwrap().len();
        LayerContent {
            description: "sample".to_string(),
            entries: vec![
                Entry::inline_file("/usr/bin/tool", b"#!/bin/sh\necho hi\n".to_vec(), 0o755),
                Entry::directory("/usr"),
                Entry::directory("/usr/bin"),
                Entry::symlink("/usr/bin/sh", "busybox"),
                Entry {
                    path: "/usr/bin/busybox".to_string(),
                    kind: EntryKind::File { content: Content::Host(host_file.to_path_buf()), size: host_size },
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
                Entry {
                    path: "/usr/bin/ash".to_string(),
                    kind: EntryKind::Hardlink { target: "/usr/bin/busybox".to_string() },
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
                Entry { uid: 65532, gid: 65532, mode: 0o700, ..Entry::directory("/home") },
            ],
        }
    }

    fn host_file(dir: &Path) -> PathBuf {
        let path = dir.join("busybox");
        fs::write(&path, vec![7u8; 70_000]).unwrap();
        path
    }

    fn layer_bytes(layer: &LayerContent, mtime: i64) -> (Vec<u8>, LayerStats) {
        let mut out = Vec::new();
        let stats = write_layer(layer, mtime, &mut out).unwrap();
        (out, stats)
    }

    fn sha256(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut tar).unwrap();
        tar
    }

    #[test]
    fn write_layer_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample_layer(&host_file(dir.path()));

        let (first, _) = layer_bytes(&layer, 1_700_000_000);
        let (second, _) = layer_bytes(&layer, 1_700_000_000);

        assert_eq!(first, second);
    }

    #[test]
    fn write_layer_ignores_host_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = host_file(dir.path());
        let layer = sample_layer(&path);
        let (_, before) = layer_bytes(&layer, 0);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(12_345)).unwrap();
        let (_, after) = layer_bytes(&layer, 0);

        assert_eq!(before.digest, after.digest);
    }

    #[test]
    fn write_layer_stats_match_streams() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample_layer(&host_file(dir.path()));

        let (out, stats) = layer_bytes(&layer, 0);

        assert_eq!(stats.digest, sha256(&out));
        assert_eq!(stats.diff_id, sha256(&gunzip(&out)));
        assert_eq!(stats.size, out.len() as u64);
        assert_eq!(stats.entries, 7);
    }

    #[test]
    fn write_layer_gzip_header_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample_layer(&host_file(dir.path()));

        let (out, _) = layer_bytes(&layer, 1_700_000_000);

        assert_eq!(out[3], 0, "no FNAME or other flags");
        assert_eq!(&out[4..8], &[0, 0, 0, 0], "no gzip mtime");
        assert_eq!(out[9], GZIP_OS_UNKNOWN);
    }

    #[test]
    fn write_layer_reads_back_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample_layer(&host_file(dir.path()));
        let (out, _) = layer_bytes(&layer, 1_700_000_000);

        let tar = gunzip(&out);
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut listed = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            let link = entry.link_name().unwrap().map(|link| link.to_string_lossy().into_owned());
            listed.push((
                entry.path().unwrap().to_string_lossy().into_owned(),
                header.entry_type(),
                header.mode().unwrap(),
                header.uid().unwrap(),
                link,
            ));
            assert_eq!(header.mtime().unwrap(), 1_700_000_000);
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
        }

        let expected = vec![
            ("home/".to_string(), EntryType::Directory, 0o700, 65532, None),
            ("usr/".to_string(), EntryType::Directory, 0o755, 0, None),
            ("usr/bin/".to_string(), EntryType::Directory, 0o755, 0, None),
            ("usr/bin/ash".to_string(), EntryType::Link, 0o755, 0, Some("usr/bin/busybox".to_string())),
            ("usr/bin/busybox".to_string(), EntryType::Regular, 0o755, 0, None),
            ("usr/bin/sh".to_string(), EntryType::Symlink, 0o777, 0, Some("busybox".to_string())),
            ("usr/bin/tool".to_string(), EntryType::Regular, 0o755, 0, None),
        ];
        assert_eq!(listed, expected);
    }

    #[test]
    fn write_layer_stores_long_paths() {
        let long_path = format!("/opt/{}/{}", "d".repeat(80), "f".repeat(60));
        let layer = LayerContent {
            description: "long".to_string(),
            entries: vec![Entry::inline_file(long_path.clone(), b"x".to_vec(), 0o644)],
        };
        let (out, _) = layer_bytes(&layer, 0);

        let tar = gunzip(&out);
        let mut archive = tar::Archive::new(tar.as_slice());
        let paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();

        assert_eq!(paths, [long_path.trim_start_matches('/')]);
    }

    #[test]
    fn write_layer_rejects_changed_host_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = host_file(dir.path());
        let layer = sample_layer(&path);
        fs::write(&path, b"shorter now").unwrap();

        let result = write_layer(&layer, 0, io::sink());

        assert!(matches!(&result, Err(ImageError::SizeChanged { expected: 70_000, actual: 11, .. })), "{result:?}");
    }

    #[test]
    fn write_layer_rejects_negative_mtime() {
        let layer = LayerContent { description: "empty".to_string(), entries: Vec::new() };

        let result = write_layer(&layer, -1, io::sink());

        assert!(matches!(result, Err(ImageError::InvalidTime { seconds: -1 })), "{result:?}");
    }

    #[test]
    fn size_checked_reader_detects_growth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grown");
        fs::write(&path, b"0123456789").unwrap();
        let mut reader = SizeCheckedReader::new(File::open(&path).unwrap(), &path, 4);

        let result = io::copy(&mut reader, &mut io::sink());

        assert!(result.is_err());
        assert!(matches!(reader.failure, Some(ImageError::SizeChanged { expected: 4, actual: 10, .. })));
    }

    #[test]
    fn size_checked_reader_detects_shrinking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shrunk");
        fs::write(&path, b"0123").unwrap();
        let mut reader = SizeCheckedReader::new(File::open(&path).unwrap(), &path, 10);

        let result = io::copy(&mut reader, &mut io::sink());

        assert!(result.is_err());
        assert!(matches!(reader.failure, Some(ImageError::SizeChanged { expected: 10, actual: 4, .. })));
    }
}
