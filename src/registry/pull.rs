//! Pulling a base image: the manifest (or the index and the manifest chosen
//! from it), the config and the layer blobs, each checked against its
//! digest. Layer blobs go into a content-addressed cache shared by all jobs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::RegistryError;
use super::auth::{Credential, docker_config_dir, resolve_credential};
use super::error::RequestContext;
use super::http::RegistryHttp;
use super::push::report_progress;
use super::reference::BaseReference;
use super::retry::{Failure, RetryPolicy, retry};
use super::transport::{is_loopback, uses_plain_http};
use crate::image::Descriptor;
use crate::image::base::manifest::{self, ACCEPTED_MANIFEST_TYPES, ImageManifest, ManifestDocument, Platform};
use crate::image::base::{BaseError, PulledBase};
use crate::report::Reporter;

/// Maximum time for a manifest or config request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Slowest average download rate, in bytes per second, before a blob
/// download times out.
const MIN_DOWNLOAD_RATE: u64 = 256 * 1024;

/// Maximum number of layer blobs downloaded at the same time.
const PARALLEL_DOWNLOADS: usize = 4;

/// Settings for [`pull_base`].
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Directory with the Docker `config.json`. `None` means
    /// [`docker_config_dir`].
    pub docker_config_dir: Option<PathBuf>,
    /// Root of the cache; blobs go under `blobs/sha256/`.
    pub cache_dir: PathBuf,
}

/// A failure to pull a base image.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Base(#[from] BaseError),
}

/// Pulls `reference` for `platform` and returns its manifest, config and
/// cached layer paths.
///
/// # Errors
///
/// Fails on registry errors, on any digest mismatch, on an index without a
/// manifest for `platform`, and on unsupported media types.
pub async fn pull_base(
    reference: &BaseReference,
    platform: &Platform,
    options: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<PulledBase, PullError> {
    pull_base_with_policy(reference, platform, options, reporter, &RetryPolicy::default()).await
}

/// [`pull_base`] with the retry limits given.
pub(crate) async fn pull_base_with_policy(
    reference: &BaseReference,
    platform: &Platform,
    options: &PullOptions,
    reporter: &dyn Reporter,
    policy: &RetryPolicy,
) -> Result<PulledBase, PullError> {
    let plain_http = uses_plain_http(&reference.registry, &options.insecure_registries);
    let credential = load_credential(&reference.registry, options, plain_http, reporter).await?;
    let session = PullSession::new(reference, plain_http, credential, *policy)?;

    reporter.step(&format!("pull base {reference}"));
    session.authenticate().await?;
    let (bytes, digest) = session.manifest(&top_reference(reference), reference.digest.as_deref()).await?;

    let (image, single_platform) = match manifest::parse_document(&bytes, None)? {
        ManifestDocument::Image(image) => (image, true),
        ManifestDocument::Index(entries) => {
            let chosen = manifest::select_platform(&entries, platform)?;
            let child = &chosen.descriptor.digest;
            let (bytes, _) = session.manifest(child, Some(child)).await?;
            match manifest::parse_document(&bytes, Some(&chosen.descriptor.media_type))? {
                ManifestDocument::Image(image) => (image, false),
                ManifestDocument::Index(_) => {
                    return Err(BaseError::InvalidManifest { reason: "an index lists another index".to_owned() }.into());
                }
            }
        }
    };

    let config = session.small_blob(&image.config).await?;
    if single_platform {
        manifest::check_config_platform(&config, platform)?;
    }
    let layer_paths = session.layers(&image, &options.cache_dir, reporter).await?;

    Ok(PulledBase { name: reference.to_string(), digest, manifest: image, config, layer_paths })
}

/// Fetches the manifest or index that `reference` names and returns its
/// digest, computed from the bytes received. `kuul lock` and `--locked`
/// use it to see where a tag points without pulling the layers.
///
/// # Errors
///
/// Fails on registry errors, and when the reference has a digest that the
/// bytes received do not match.
pub async fn resolve_digest(
    reference: &BaseReference,
    options: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<String, PullError> {
    let plain_http = uses_plain_http(&reference.registry, &options.insecure_registries);
    let credential = load_credential(&reference.registry, options, plain_http, reporter).await?;
    let session = PullSession::new(reference, plain_http, credential, RetryPolicy::default())?;

    reporter.step(&format!("resolve base {reference}"));
    session.authenticate().await?;
    let (_bytes, digest) = session.manifest(&top_reference(reference), reference.digest.as_deref()).await?;
    Ok(digest)
}

/// Returns the manifest reference to request: the digest if the reference
/// has one, else its tag, `latest` by default.
fn top_reference(reference: &BaseReference) -> String {
    match (&reference.digest, &reference.tag) {
        (Some(digest), _) => digest.clone(),
        (None, Some(tag)) => tag.clone(),
        (None, None) => "latest".to_owned(),
    }
}

async fn load_credential(
    registry: &str,
    options: &PullOptions,
    plain_http: bool,
    reporter: &dyn Reporter,
) -> Result<Credential, RegistryError> {
    let Some(config_dir) = options.docker_config_dir.clone().or_else(docker_config_dir) else {
        return Ok(Credential::Anonymous);
    };

    // Credential helpers are separate programs and may wait on a keyring.
    let registry_name = registry.to_string();
    let lookup = tokio::task::spawn_blocking(move || resolve_credential(&config_dir, &registry_name));
    let credential = match lookup.await {
        Ok(result) => result?,
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    };

    if plain_http && !is_loopback(registry) && !credential.is_anonymous() {
        reporter.warning(&format!(
            "credentials for `{registry}` withheld because it is reached over plain HTTP, so the pull is anonymous"
        ));
        return Ok(Credential::Anonymous);
    }
    Ok(credential)
}

/// One pull: the registry client, the repository and the pull scope.
struct PullSession<'a> {
    http: RegistryHttp<'a>,
    repository: &'a str,
    /// `repository:REPO:pull`, the scope of every request of the pull.
    pull_scope: Vec<String>,
    policy: RetryPolicy,
}

/// A blob download that ended: its digest and size as received.
struct Received {
    digest: String,
    size: u64,
}

impl<'a> PullSession<'a> {
    fn new(
        base: &'a BaseReference,
        plain_http: bool,
        credential: Credential,
        policy: RetryPolicy,
    ) -> Result<PullSession<'a>, RegistryError> {
        let context =
            RequestContext { registry: &base.registry, repository: &base.repository, https: !plain_http, pull: true };
        let pull_scope = vec![format!("repository:{}:pull", base.repository)];

        Ok(PullSession {
            http: RegistryHttp::new(context, credential)?,
            repository: &base.repository,
            pull_scope,
            policy,
        })
    }

    /// Checks that the registry responds to `/v2/`, and fetches a pull token
    /// if it requires one, so that an unreachable registry or a rejected
    /// credential fails before the manifest request.
    async fn authenticate(&self) -> Result<(), RegistryError> {
        retry(&self.policy, &self.http.context, "registry API check", REQUEST_TIMEOUT, || {
            self.http.authenticate(&self.pull_scope)
        })
        .await
    }

    /// Fetches the manifest or index that `reference` (a tag or a digest)
    /// names and returns its bytes and digest. The digest is computed from
    /// the bytes and must equal `expected` when one is given.
    async fn manifest(&self, reference: &str, expected: Option<&str>) -> Result<(Vec<u8>, String), PullError> {
        let url = self.http.url(&format!("/v2/{}/manifests/{reference}", self.repository));
        let accept = ACCEPTED_MANIFEST_TYPES.join(", ");

        let bytes = retry(&self.policy, &self.http.context, "manifest download", REQUEST_TIMEOUT, || async {
            let response = self.http.send(&self.pull_scope, |client| client.get(&url).header(ACCEPT, &accept)).await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Err(self.manifest_not_found(response, reference).await);
            }
            if response.status() != StatusCode::OK {
                return Err(self.http.status_failure(response).await);
            }
            response.bytes().await.map_err(|error| self.http.failure(&error))
        })
        .await?;

        let actual = sha256_digest(&bytes);
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(
                BaseError::DownloadDigestMismatch { what: "manifest", digest: expected.to_owned(), actual }.into()
            );
        }
        Ok((bytes.to_vec(), actual))
    }

    /// Maps a 404 for a manifest: a missing repository (`NAME_UNKNOWN`, the
    /// distribution spec's code) or, for any other body, a missing tag or
    /// digest.
    async fn manifest_not_found(&self, response: reqwest::Response, reference: &str) -> Failure {
        let body = response.text().await.unwrap_or_default();
        let registry = self.http.context.registry.to_string();
        let repository = self.http.context.repository.to_string();
        let separator = if reference.starts_with("sha256:") { '@' } else { ':' };
        let error = if body.contains("NAME_UNKNOWN") {
            RegistryError::BaseRepositoryNotFound { registry, repository }
        } else {
            RegistryError::ManifestNotFound { image: format!("{registry}/{repository}{separator}{reference}") }
        };
        Failure::from(error)
    }

    /// Fetches a small blob (the config) into memory and checks its digest.
    async fn small_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, PullError> {
        let url = self.blob_url(&descriptor.digest);

        let bytes = retry(&self.policy, &self.http.context, "config download", REQUEST_TIMEOUT, || async {
            let response = self.http.send(&self.pull_scope, |client| client.get(&url)).await?;
            if response.status() != StatusCode::OK {
                return Err(self.http.status_failure(response).await);
            }
            response.bytes().await.map_err(|error| self.http.failure(&error))
        })
        .await?;

        let actual = sha256_digest(&bytes);
        if actual != descriptor.digest {
            let digest = descriptor.digest.clone();
            return Err(BaseError::DownloadDigestMismatch { what: "config", digest, actual }.into());
        }
        Ok(bytes.to_vec())
    }

    /// Downloads each layer blob the cache lacks, up to
    /// [`PARALLEL_DOWNLOADS`] at a time, reports the bytes received as one
    /// transfer, and returns the cache path of every layer. A cached blob
    /// is trusted here; [`crate::image::base::import`] checks its digest
    /// again when it copies it into the layout.
    async fn layers(
        &self,
        image: &ImageManifest,
        cache_dir: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Vec<PathBuf>, PullError> {
        let directory = cache_dir.join("blobs").join("sha256");
        tokio::fs::create_dir_all(&directory)
            .await
            .map_err(|source| BaseError::Io { path: directory.clone(), source })?;

        let mut paths = Vec::new();
        let mut missing: Vec<(&Descriptor, PathBuf)> = Vec::new();
        for layer in &image.layers {
            let path = directory.join(layer.digest.trim_start_matches("sha256:"));
            let cached = tokio::fs::metadata(&path).await.is_ok_and(|metadata| metadata.len() == layer.size);
            let queued = missing.iter().any(|(other, _)| other.digest == layer.digest);
            if !cached && !queued {
                missing.push((layer, path.clone()));
            }
            paths.push(path);
        }

        self.download_all(&missing, reporter).await?;
        Ok(paths)
    }

    /// Downloads `blobs` into their cache paths as one reported transfer.
    /// The first failure cancels the other downloads.
    async fn download_all(&self, blobs: &[(&Descriptor, PathBuf)], reporter: &dyn Reporter) -> Result<(), PullError> {
        if blobs.is_empty() {
            return Ok(());
        }

        let total: u64 = blobs.iter().map(|(descriptor, _)| descriptor.size).sum();
        let received = Arc::new(AtomicU64::new(0));
        let label = format!("download {} base image layers", blobs.len());
        reporter.step(&label);
        reporter.transfer_started(&label, total);

        let downloads = stream::iter(blobs.iter().map(|(descriptor, path)| self.download(descriptor, path, &received)))
            .buffer_unordered(PARALLEL_DOWNLOADS)
            .try_collect::<Vec<()>>();

        let result = report_progress(downloads, &received, reporter).await;
        reporter.transfer_finished();
        result.map(|_| ())
    }

    /// Streams one blob into a temporary file next to `path` while hashing
    /// it, checks its digest and size, then renames it into place. A blob
    /// that does not match is deleted and never reaches the cache.
    async fn download(&self, layer: &Descriptor, path: &Path, received: &AtomicU64) -> Result<(), PullError> {
        let temp = PartFile(path.with_extension(format!("part-{}", std::process::id())));
        let time_limit = REQUEST_TIMEOUT + Duration::from_secs(layer.size / MIN_DOWNLOAD_RATE);
        // The maximum bytes any try has received, so that a retry adds to the
        // progress only what goes beyond the earlier tries.
        let counted = AtomicU64::new(0);

        let received = retry(&self.policy, &self.http.context, "blob download", time_limit, || async {
            let response = self.http.send(&self.pull_scope, |client| client.get(self.blob_url(&layer.digest))).await?;
            if response.status() != StatusCode::OK {
                return Err(self.http.status_failure(response).await);
            }
            self.stream_to_file(response, layer, &temp.0, received, &counted).await
        })
        .await??;

        if received.digest != layer.digest || received.size != layer.size {
            let digest = layer.digest.clone();
            return Err(BaseError::DownloadDigestMismatch { what: "layer", digest, actual: received.digest }.into());
        }
        std::fs::rename(&temp.0, path).map_err(|source| BaseError::Io { path: path.to_path_buf(), source })?;
        Ok(())
    }

    /// Writes the body of `response` to `temp` and hashes it on the way.
    /// Reading stops at the first chunk that goes past the descriptor's
    /// size, which is enough to reject the blob. A failed connection is a [`Failure`],
    /// so the caller retries it, and a failed write is a [`BaseError`],
    /// which ends the download.
    async fn stream_to_file(
        &self,
        response: reqwest::Response,
        layer: &Descriptor,
        temp: &Path,
        received: &AtomicU64,
        counted: &AtomicU64,
    ) -> Result<Result<Received, BaseError>, Failure> {
        let io_error = |source| BaseError::Io { path: temp.to_path_buf(), source };
        let mut file = match tokio::fs::File::create(temp).await {
            Ok(file) => file,
            Err(source) => return Ok(Err(io_error(source))),
        };

        let mut hasher = Sha256::new();
        let mut size = 0;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| self.http.failure(&error))?;
            hasher.update(&chunk);
            if let Err(source) = file.write_all(&chunk).await {
                return Ok(Err(io_error(source)));
            }
            size += chunk.len() as u64;

            let earlier = counted.fetch_max(size, Ordering::Relaxed);
            received.fetch_add(size.saturating_sub(earlier), Ordering::Relaxed);
            if size > layer.size {
                break;
            }
        }

        if let Err(source) = file.sync_all().await {
            return Ok(Err(io_error(source)));
        }
        Ok(Ok(Received { digest: format!("sha256:{}", hex::encode(hasher.finalize())), size }))
    }

    fn blob_url(&self, digest: &str) -> String {
        self.http.url(&format!("/v2/{}/blobs/{digest}", self.repository))
    }
}

/// A partly downloaded blob, deleted when dropped unless it was renamed
/// into the cache. A download cancelled because another one failed leaves
/// no file behind either.
struct PartFile(PathBuf);

impl Drop for PartFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
#[path = "pull_fake_registry_tests.rs"]
mod fake_registry_tests;
