//! Reading files from a repository over HTTP(S) or from a `file://` mirror,
//! and the content-addressed download cache for `.deb` files.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::DebianError;
use crate::report::Reporter;

/// How many `.deb` files are downloaded at the same time.
const PARALLEL_DOWNLOADS: usize = 8;

/// A repository base URL and the client that reads from it.
pub struct Fetcher {
    base: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// A file to download into the cache, checked against its SHA256.
#[derive(Debug, Clone)]
pub struct Download {
    /// Path below the repository base, such as `pool/main/b/busybox/…deb`.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// Counts of one round of downloads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DownloadStats {
    pub downloaded: usize,
    pub bytes: u64,
    pub cached: usize,
}

impl Fetcher {
    /// Creates a fetcher for the repository at `base` (`http://`,
    /// `https://` or `file://`).
    pub fn new(base: &str) -> Result<Fetcher, DebianError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| DebianError::Io { path: PathBuf::from("(tokio runtime)"), source })?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("kuul/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| DebianError::Fetch { url: base.to_owned(), reason: error.to_string() })?;

        Ok(Fetcher { base: base.trim_end_matches('/').to_owned(), client, runtime })
    }

    /// Returns the full URL of `path` below the repository base. For HTTP
    /// the path is percent-encoded, as apt does, because pool file names may
    /// contain `%` or `:`. A `file://` path is used as it is.
    pub fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        if self.base.starts_with("file://") {
            return format!("{}/{path}", self.base);
        }
        format!("{}/{}", self.base, percent_encode_path(path))
    }

    /// Reads `path` below the base into memory. Returns `None` when the file
    /// does not exist (HTTP 404 or 410, or a missing local file).
    pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>, DebianError> {
        let url = self.url(path);
        if let Some(local) = url.strip_prefix("file://") {
            return match std::fs::read(local) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(DebianError::Io { path: PathBuf::from(local), source }),
            };
        }

        self.runtime.block_on(async {
            let response = self.client.get(&url).send().await.map_err(|error| fetch_error(&url, &error))?;
            if matches!(response.status().as_u16(), 404 | 410) {
                return Ok(None);
            }
            let response = response.error_for_status().map_err(|error| fetch_error(&url, &error))?;
            let bytes = response.bytes().await.map_err(|error| fetch_error(&url, &error))?;
            Ok(Some(bytes.to_vec()))
        })
    }

    /// Downloads every file that the cache does not have yet, in parallel,
    /// and checks each against its size and SHA256 before it enters the
    /// cache. Stops at the first failure.
    pub fn download_all(
        &self,
        downloads: &[Download],
        cache: &Cache,
        reporter: &dyn Reporter,
    ) -> Result<DownloadStats, DebianError> {
        let mut stats = DownloadStats::default();
        let missing: Vec<&Download> =
            downloads.iter().filter(|download| !cache.deb_path(&download.sha256).exists()).collect();
        stats.cached = downloads.len() - missing.len();

        let total: u64 = missing.iter().map(|download| download.size).sum();
        reporter.transfer_started(&format!("download {} Debian packages", missing.len()), total);
        let result = self.runtime.block_on(async {
            let mut results = futures_util::stream::iter(
                missing.into_iter().map(|download| self.download(download, cache, reporter)),
            )
            .buffer_unordered(PARALLEL_DOWNLOADS);
            while let Some(result) = results.next().await {
                stats.bytes += result?;
                stats.downloaded += 1;
            }
            Ok::<(), DebianError>(())
        });
        reporter.transfer_finished();

        result?;
        Ok(stats)
    }

    /// Streams one file into a temporary file in the cache while hashing
    /// it, then renames it to its digest. Returns the byte count.
    async fn download(&self, download: &Download, cache: &Cache, reporter: &dyn Reporter) -> Result<u64, DebianError> {
        let url = self.url(&download.path);
        let staging = cache.temporary_file()?;
        let mut file = staging.as_file();
        let mut hasher = Sha256::new();
        let mut written: u64 = 0;

        if let Some(local) = url.strip_prefix("file://") {
            let mut source = std::fs::File::open(local).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => {
                    DebianError::Fetch { url: url.clone(), reason: "no such file".to_owned() }
                }
                _ => DebianError::Io { path: PathBuf::from(local), source },
            })?;
            let mut writer = HashingWriter { inner: &mut file, hasher: &mut hasher, written: &mut written };
            let copied = std::io::copy(&mut source, &mut writer)
                .map_err(|source| DebianError::Io { path: PathBuf::from(local), source })?;
            reporter.transfer_progressed(copied);
        } else {
            let response = self.client.get(&url).send().await.map_err(|error| fetch_error(&url, &error))?;
            let mut response = response.error_for_status().map_err(|error| fetch_error(&url, &error))?;
            while let Some(chunk) = response.chunk().await.map_err(|error| fetch_error(&url, &error))? {
                hasher.update(&chunk);
                written += chunk.len() as u64;
                reporter.transfer_progressed(chunk.len() as u64);
                file.write_all(&chunk).map_err(|source| DebianError::Io { path: staging.path().to_owned(), source })?;
            }
        }

        let actual = hex::encode(hasher.finalize());
        if actual != download.sha256 || written != download.size {
            return Err(DebianError::PackageChecksumMismatch {
                what: format!("package file `{url}`"),
                expected: format!("{} ({} bytes)", download.sha256, download.size),
                actual: format!("{actual} ({written} bytes)"),
            });
        }

        let destination = cache.deb_path(&download.sha256);
        staging
            .persist(&destination)
            .map_err(|error| DebianError::Io { path: destination.clone(), source: error.error })?;
        Ok(written)
    }
}

struct HashingWriter<'a, W: Write> {
    inner: W,
    hasher: &'a mut Sha256,
    written: &'a mut u64,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let count = self.inner.write(buf)?;
        self.hasher.update(&buf[..count]);
        *self.written += count as u64;
        Ok(count)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Percent-encodes every byte of `path` except unreserved characters,
/// `/` and `+` (RFC 3986, section 2).
fn percent_encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/' | b'+') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn fetch_error(url: &str, error: &reqwest::Error) -> DebianError {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        reason.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    DebianError::Fetch { url: url.to_owned(), reason }
}

/// The download and unpack cache, shared by every job on the machine.
/// `debs/SHA256.deb` contains verified package files, `files/SHA256` the
/// regular files unpacked from them, and `unpacked/SHA256.json` the entry
/// list of each package.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (and creates) the cache under `root`.
    pub fn open(root: &Path) -> Result<Cache, DebianError> {
        for sub in ["debs", "files", "unpacked", "tmp"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|source| DebianError::Io { path: dir, source })?;
        }
        Ok(Cache { root: root.to_owned() })
    }

    /// Returns the default location: `$KUUL_CACHE_DIR`, else `$XDG_CACHE_HOME/kuul`,
    /// else `$HOME/.cache/kuul`, else a `kuul-cache` directory under the
    /// system temporary directory.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("KUUL_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(dir).join("kuul");
        }
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(".cache").join("kuul");
        }
        std::env::temp_dir().join("kuul-cache")
    }

    pub fn deb_path(&self, sha256: &str) -> PathBuf {
        self.root.join("debs").join(format!("{sha256}.deb"))
    }

    pub fn file_path(&self, sha256: &str) -> PathBuf {
        self.root.join("files").join(sha256)
    }

    pub fn manifest_path(&self, deb_sha256: &str) -> PathBuf {
        self.root.join("unpacked").join(format!("{deb_sha256}.json"))
    }

    /// Creates a file in the cache's `tmp` directory, on the same filesystem as
    /// its final place, so that a rename moves it there atomically.
    pub fn temporary_file(&self) -> Result<tempfile::NamedTempFile, DebianError> {
        let dir = self.root.join("tmp");
        tempfile::NamedTempFile::new_in(&dir).map_err(|source| DebianError::Io { path: dir, source })
    }
}

/// Returns the lowercase hex SHA256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_paths_percent_encoded() {
        let fetcher = Fetcher::new("http://127.0.0.1:1/debian/").unwrap();

        assert_eq!(
            fetcher.url("pool/main/b/busybox_1%3a1.35_amd64.deb"),
            "http://127.0.0.1:1/debian/pool/main/b/busybox_1%253a1.35_amd64.deb"
        );
        assert_eq!(fetcher.url("pool/g++_1:2+b1.deb"), "http://127.0.0.1:1/debian/pool/g++_1%3A2+b1.deb");
    }

    #[test]
    fn file_paths_kept_verbatim() {
        let fetcher = Fetcher::new("file:///srv/repo").unwrap();

        assert_eq!(fetcher.url("pool/a_1%3a2.deb"), "file:///srv/repo/pool/a_1%3a2.deb");
    }

    /// Records the transfer events a download round reports.
    #[derive(Default)]
    struct TransferRecorder {
        events: std::sync::Mutex<Vec<String>>,
    }

    impl Reporter for TransferRecorder {
        fn transfer_started(&self, label: &str, total_bytes: u64) {
            self.events.lock().unwrap().push(format!("start {label} {total_bytes}"));
        }

        fn transfer_progressed(&self, bytes: u64) {
            self.events.lock().unwrap().push(format!("progress {bytes}"));
        }

        fn transfer_finished(&self) {
            self.events.lock().unwrap().push("finish".to_owned());
        }
    }

    #[test]
    fn download_round_reports_transfer() {
        let mirror = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let contents: [&[u8]; 2] = [b"first package", b"second, longer package"];
        let mut downloads = Vec::new();
        for (index, content) in contents.iter().enumerate() {
            let path = format!("pool/p{index}.deb");
            std::fs::create_dir_all(mirror.path().join("pool")).unwrap();
            std::fs::write(mirror.path().join(&path), content).unwrap();
            downloads.push(Download { path, sha256: sha256_hex(content), size: content.len() as u64 });
        }
        let fetcher = Fetcher::new(&format!("file://{}", mirror.path().display())).unwrap();
        let cache = Cache::open(cache_dir.path()).unwrap();
        let recorder = TransferRecorder::default();

        let stats = fetcher.download_all(&downloads, &cache, &recorder).unwrap();

        let events = recorder.events.lock().unwrap().clone();
        assert_eq!(stats.downloaded, 2);
        assert_eq!(events.first().map(String::as_str), Some("start download 2 Debian packages 35"));
        assert_eq!(events.last().map(String::as_str), Some("finish"));
        let progressed: u64 =
            events.iter().filter_map(|event| event.strip_prefix("progress ")?.parse::<u64>().ok()).sum();
        assert_eq!(progressed, 35);
    }
}
