//! Pushing an image or an image index from an OCI image layout to a
//! registry: each blob is checked with HEAD and uploaded only if missing, up
//! to [`PARALLEL_UPLOADS`] at a time, then the manifests are put byte for
//! byte as they are in the layout, the one that the tag names last.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::auth::{Credential, docker_config_dir, resolve_credential};
use super::error::RequestContext;
use super::http::RegistryHttp;
use super::retry::{Failure, RetryPolicy, retry};
use super::transport::{is_loopback, uses_plain_http};
use super::{RegistryError, Target};
use crate::image::index::BuiltIndex;
use crate::image::{BuiltImage, Descriptor};
use crate::report::Reporter;

/// Maximum time to open a TCP connection (and finish the TLS handshake).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum time for one request without a large body: the version check,
/// a HEAD, a manifest PUT.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Slowest average upload rate, in bytes per second, that a blob upload may
/// have before it times out. Together with [`REQUEST_TIMEOUT`] this sizes
/// the time limit of each upload.
const MIN_UPLOAD_RATE: u64 = 256 * 1024;

/// Blob checks and uploads that run at the same time.
pub(crate) const PARALLEL_UPLOADS: usize = 4;

/// Size of each read from a blob file while it streams to the registry.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Interval between progress reports while blobs upload.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Settings for [`push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Registries (`HOST` or `HOST:PORT`) reached over plain HTTP, from
    /// `--insecure-registry`. Loopback registries always use plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Directory with the Docker `config.json`. `None` means
    /// [`docker_config_dir`].
    pub docker_config_dir: Option<PathBuf>,
    /// Blobs to mount from another repository of the same registry instead
    /// of uploading them, such as the layers of a base image.
    pub mount_from: Option<MountSource>,
}

/// A repository of the target registry that already contains some of the
/// image's blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSource {
    /// `host[:port]`. Mounts are tried only when it equals the target's.
    pub registry: String,
    pub repository: String,
    pub digests: Vec<String>,
}

/// The result of a [`push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// `host:port/repository:tag@sha256:...`.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// Bytes of the config and layer blobs that were uploaded. The manifest
    /// is always put and is not counted.
    pub bytes_uploaded: u64,
    pub blobs_uploaded: usize,
    /// Blobs the registry already had.
    pub blobs_skipped: usize,
    /// Blobs mounted from [`PushOptions::mount_from`] without an upload.
    pub blobs_mounted: usize,
}

/// Pushes the image that `image` describes from the OCI layout at
/// `layout_dir` to `target`.
///
/// Every blob is checked in the layout before the first request, so a
/// damaged layout fails without a partial push. Blobs the registry already
/// has are skipped. Each request is retried after connection failures, 429
/// and 5xx, as [`RetryPolicy`] bounds it, and an upload that fails midway
/// starts again in a new upload session. The manifest is put only after
/// every blob is in the registry, so a failed push never moves the tag.
///
/// # Errors
///
/// Fails when a blob is missing from the layout or has the wrong size, when
/// the credentials cannot be read, and on any registry failure, each with a
/// hint that names the registry and repository.
pub async fn push(
    layout_dir: &Path,
    image: &BuiltImage,
    target: &Target,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<PushOutcome, RegistryError> {
    push_with_policy(layout_dir, image, target, options, reporter, &RetryPolicy::default()).await
}

/// [`push`] with the retry limits given.
pub(crate) async fn push_with_policy(
    layout_dir: &Path,
    image: &BuiltImage,
    target: &Target,
    options: &PushOptions,
    reporter: &dyn Reporter,
    policy: &RetryPolicy,
) -> Result<PushOutcome, RegistryError> {
    let blobs = image_blobs(image);
    check_blob_sizes(layout_dir, &blobs)?;
    let manifest = read_manifest(layout_dir, &image.manifest)?;

    let session = Session::open(target, options, reporter, policy).await?;
    let mut outcome = PushOutcome::new(target, &image.manifest.digest);
    session.push_blobs(layout_dir, &blobs, reporter, &mut outcome).await?;

    reporter.step("push manifest");
    session.put_manifest(target.tag(), manifest, &image.manifest).await?;

    Ok(outcome)
}

/// Pushes a multi-platform image: the blobs of every platform, each
/// platform's manifest by digest, then the index under the target's tag.
/// The tag is put last, so a push that fails midway leaves it where it was.
///
/// Blobs go through the same checks, retries and parallel uploads as in
/// [`push`]. A blob that several platforms share is checked and uploaded
/// once.
///
/// # Errors
///
/// Fails as [`push`] does, for any of the images or the index.
pub async fn push_index(
    layout_dir: &Path,
    index: &BuiltIndex,
    target: &Target,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<PushOutcome, RegistryError> {
    push_index_with_policy(layout_dir, index, target, options, reporter, &RetryPolicy::default()).await
}

/// [`push_index`] with the retry limits given.
pub(crate) async fn push_index_with_policy(
    layout_dir: &Path,
    index: &BuiltIndex,
    target: &Target,
    options: &PushOptions,
    reporter: &dyn Reporter,
    policy: &RetryPolicy,
) -> Result<PushOutcome, RegistryError> {
    let blobs = index_blobs(index);
    check_blob_sizes(layout_dir, &blobs)?;
    let mut manifests = Vec::with_capacity(index.images.len());
    for entry in &index.images {
        manifests.push(read_manifest(layout_dir, &entry.image.manifest)?);
    }
    let index_bytes = read_manifest(layout_dir, &index.descriptor)?;

    let session = Session::open(target, options, reporter, policy).await?;
    let mut outcome = PushOutcome::new(target, &index.descriptor.digest);
    session.push_blobs(layout_dir, &blobs, reporter, &mut outcome).await?;

    for (entry, manifest) in index.images.iter().zip(manifests) {
        reporter.step(&format!("push manifest for {}", entry.platform));
        let descriptor = &entry.image.manifest;
        session.put_manifest(&descriptor.digest, manifest, descriptor).await?;
    }

    reporter.step("push index");
    session.put_manifest(target.tag(), index_bytes, &index.descriptor).await?;

    Ok(outcome)
}

/// Tags an image or index that an earlier push in this run already put in
/// the target's repository. Only its manifest (`descriptor`, read from the
/// layout) is put, under the target's tag, because every blob and platform
/// manifest it references is there already.
///
/// # Errors
///
/// Fails as [`push`] does.
pub async fn push_tag(
    layout_dir: &Path,
    descriptor: &Descriptor,
    target: &Target,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<PushOutcome, RegistryError> {
    let manifest = read_manifest(layout_dir, descriptor)?;

    let session = Session::open(target, options, reporter, &RetryPolicy::default()).await?;
    reporter.step(&format!("tag {}", target.tag()));
    session.put_manifest(target.tag(), manifest, descriptor).await?;

    Ok(PushOutcome::new(target, &descriptor.digest))
}

/// Lists the layer blobs and the config blob of `image`.
fn image_blobs(image: &BuiltImage) -> Vec<&Descriptor> {
    image.layers.iter().map(|layer| &layer.descriptor).chain([&image.config]).collect()
}

/// Lists the layer and config blobs of every platform in `index`, each
/// digest once, in the order of the platforms.
fn index_blobs(index: &BuiltIndex) -> Vec<&Descriptor> {
    let mut seen = std::collections::HashSet::new();
    let all = index.images.iter().flat_map(|entry| image_blobs(&entry.image));
    all.filter(|descriptor| seen.insert(descriptor.digest.as_str())).collect()
}

/// Checks every blob in the layout before the first request, so a damaged
/// layout fails without a partial push.
fn check_blob_sizes(layout_dir: &Path, blobs: &[&Descriptor]) -> Result<(), RegistryError> {
    for descriptor in blobs {
        check_blob_size(&blob_path(layout_dir, &descriptor.digest), descriptor)?;
    }
    Ok(())
}

impl PushOutcome {
    fn new(target: &Target, digest: &str) -> PushOutcome {
        PushOutcome {
            reference: target.pinned(digest),
            digest: digest.to_owned(),
            bytes_uploaded: 0,
            blobs_uploaded: 0,
            blobs_skipped: 0,
            blobs_mounted: 0,
        }
    }
}

/// Looks up the credential for the target's registry, and withholds it when
/// it would cross the network in plain text.
async fn load_credential(
    target: &Target,
    options: &PushOptions,
    plain_http: bool,
    reporter: &dyn Reporter,
) -> Result<Credential, RegistryError> {
    let Some(config_dir) = options.docker_config_dir.clone().or_else(docker_config_dir) else {
        return Ok(Credential::Anonymous);
    };

    // Credential helpers are separate programs and may wait on a keyring,
    // so the lookup runs off the async worker threads.
    let registry = target.registry().to_string();
    let lookup = tokio::task::spawn_blocking(move || resolve_credential(&config_dir, &registry));
    let credential = match lookup.await {
        Ok(result) => result?,
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    };

    if plain_http && !is_loopback(target.registry()) && !credential.is_anonymous() {
        reporter.warning(&format!(
            "credentials for `{}` withheld because it is reached over plain HTTP, so the push is anonymous",
            target.registry()
        ));
        return Ok(Credential::Anonymous);
    }

    Ok(credential)
}

/// One push: the registry client, the repository and the token scopes.
struct Session<'a> {
    http: RegistryHttp<'a>,
    repository: &'a str,
    /// `repository:REPO:pull,push`, the scope of every request of the push.
    push_scope: Vec<String>,
    mount_from: Option<&'a MountSource>,
    policy: RetryPolicy,
}

impl<'a> Session<'a> {
    /// Loads the credential, builds the client and checks the registry's API
    /// before any blob.
    async fn open(
        target: &'a Target,
        options: &'a PushOptions,
        reporter: &dyn Reporter,
        policy: &RetryPolicy,
    ) -> Result<Session<'a>, RegistryError> {
        let plain_http = uses_plain_http(target.registry(), &options.insecure_registries);
        let credential = load_credential(target, options, plain_http, reporter).await?;
        let session = Session::new(target, plain_http, credential, options.mount_from.as_ref(), *policy)?;

        session.authenticate().await?;
        Ok(session)
    }

    fn new(
        target: &'a Target,
        plain_http: bool,
        credential: Credential,
        mount_from: Option<&'a MountSource>,
        policy: RetryPolicy,
    ) -> Result<Session<'a>, RegistryError> {
        let context = RequestContext {
            registry: target.registry(),
            repository: target.repository(),
            https: !plain_http,
            pull: false,
        };
        let push_scope = vec![format!("repository:{}:pull,push", target.repository())];
        let mount_from = mount_from.filter(|source| source.registry == target.registry());

        Ok(Session {
            http: RegistryHttp::new(context, credential)?,
            repository: target.repository(),
            push_scope,
            mount_from,
            policy,
        })
    }

    /// Checks that the registry responds to `/v2/`, and fetches a push token
    /// if it requires one, so that an unreachable registry or a rejected
    /// credential fails before any blob.
    async fn authenticate(&self) -> Result<(), RegistryError> {
        retry(&self.policy, &self.http.context, "registry API check", REQUEST_TIMEOUT, || {
            self.http.authenticate(&self.push_scope)
        })
        .await
    }

    /// Skips, mounts or uploads each of `blobs` and counts each in `outcome`.
    async fn push_blobs(
        &self,
        layout_dir: &Path,
        blobs: &[&Descriptor],
        reporter: &dyn Reporter,
        outcome: &mut PushOutcome,
    ) -> Result<(), RegistryError> {
        let missing = self.missing_blobs(blobs, reporter, outcome).await?;
        self.upload_blobs(layout_dir, &missing, reporter).await?;

        outcome.blobs_uploaded += missing.len();
        outcome.bytes_uploaded += missing.iter().map(|descriptor| descriptor.size).sum::<u64>();
        Ok(())
    }

    /// Checks which blobs the registry lacks, mounts those it can, and
    /// returns the rest, in the order of `blobs`.
    async fn missing_blobs<'b>(
        &self,
        blobs: &[&'b Descriptor],
        reporter: &dyn Reporter,
        outcome: &mut PushOutcome,
    ) -> Result<Vec<&'b Descriptor>, RegistryError> {
        let present: Vec<bool> = stream::iter(blobs.iter().map(|descriptor| self.blob_exists(descriptor)))
            .buffered(PARALLEL_UPLOADS)
            .try_collect()
            .await?;

        let mut missing = Vec::new();
        for (descriptor, present) in blobs.iter().zip(present) {
            if present {
                reporter.blob_skipped(&descriptor.digest, descriptor.size);
                outcome.blobs_skipped += 1;
            } else if self.mount_blob(descriptor).await {
                outcome.blobs_mounted += 1;
            } else {
                missing.push(*descriptor);
            }
        }
        Ok(missing)
    }

    async fn blob_exists(&self, descriptor: &Descriptor) -> Result<bool, RegistryError> {
        let url = self.http.url(&format!("/v2/{}/blobs/{}", self.repository, descriptor.digest));

        retry(&self.policy, &self.http.context, "blob check", REQUEST_TIMEOUT, || async {
            let response = self.http.send(&self.push_scope, |client| client.head(&url)).await?;
            match response.status() {
                status if status.is_success() => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(self.http.status_failure(response).await),
            }
        })
        .await
    }

    /// Asks the registry to mount the blob from the source repository and
    /// reports whether it did. Any failure falls back to an upload, and so
    /// does a 202 response, with which a registry declines the mount and
    /// opens an upload session instead.
    async fn mount_blob(&self, descriptor: &Descriptor) -> bool {
        let Some(source) = self.mount_from.filter(|source| source.digests.contains(&descriptor.digest)) else {
            return false;
        };

        let url = self.http.url(&format!(
            "/v2/{}/blobs/uploads/?mount={}&from={}",
            self.repository, descriptor.digest, source.repository
        ));
        let mut scopes = self.push_scope.clone();
        scopes.push(format!("repository:{}:pull", source.repository));
        let mount = self.http.send(&scopes, |client| client.post(&url).header(CONTENT_LENGTH, 0));

        match tokio::time::timeout(REQUEST_TIMEOUT, mount).await {
            Ok(Ok(response)) if response.status() == StatusCode::CREATED => true,
            Ok(Ok(response)) => {
                tracing::info!(registry = self.http.context.registry, digest = descriptor.digest, status = %response.status(), "blob not mounted, uploading");
                false
            }
            Ok(Err(failure)) => {
                tracing::info!(registry = self.http.context.registry, digest = descriptor.digest, error = %failure.error.to_string().lines().next().unwrap_or_default(), "blob mount failed, uploading");
                false
            }
            Err(_elapsed) => {
                tracing::info!(
                    registry = self.http.context.registry,
                    digest = descriptor.digest,
                    "blob mount timed out, uploading"
                );
                false
            }
        }
    }

    /// Uploads `blobs`, up to [`PARALLEL_UPLOADS`] at a time, and reports
    /// the bytes sent as one transfer. The first failure cancels the other
    /// uploads.
    async fn upload_blobs(
        &self,
        layout_dir: &Path,
        blobs: &[&Descriptor],
        reporter: &dyn Reporter,
    ) -> Result<(), RegistryError> {
        if blobs.is_empty() {
            return Ok(());
        }

        let total: u64 = blobs.iter().map(|descriptor| descriptor.size).sum();
        let sent = Arc::new(AtomicU64::new(0));
        reporter.transfer_started(&format!("push {} blobs", blobs.len()), total);

        let uploads = stream::iter(blobs.iter().map(|descriptor| {
            let sent = Arc::clone(&sent);
            async move {
                self.upload_blob(layout_dir, descriptor, sent).await?;
                reporter.blob_uploaded(&descriptor.digest, descriptor.size);
                Ok::<(), RegistryError>(())
            }
        }))
        .buffer_unordered(PARALLEL_UPLOADS)
        .try_collect::<Vec<()>>();

        let result = report_progress(uploads, &sent, reporter).await;
        reporter.transfer_finished();
        result.map(|_| ())
    }

    /// Streams one blob from the layout in a new upload session: a POST that
    /// opens the session, then one PUT with the whole blob. A retry opens a
    /// new session, because the registry may have dropped the old one.
    /// The registry checks the content against the digest in the PUT URL
    /// and rejects a mismatch.
    async fn upload_blob(
        &self,
        layout_dir: &Path,
        descriptor: &Descriptor,
        sent: Arc<AtomicU64>,
    ) -> Result<(), RegistryError> {
        let path = blob_path(layout_dir, &descriptor.digest);
        check_blob_size(&path, descriptor)?;

        let time_limit = REQUEST_TIMEOUT + Duration::from_secs(descriptor.size / MIN_UPLOAD_RATE);
        retry(&self.policy, &self.http.context, "blob upload", time_limit, || async {
            let location = self.begin_upload().await?;
            let url = upload_url(&self.http.url(&location), &descriptor.digest)?;

            let response = self
                .http
                .send(&self.push_scope, |client| {
                    // A resent request after a 401 needs a fresh body, so
                    // the file is opened for each request.
                    let body = reqwest::Body::wrap_stream(read_chunks(path.clone(), Arc::clone(&sent)));
                    client
                        .put(&url)
                        .header(CONTENT_LENGTH, descriptor.size)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(body)
                })
                .await?;

            match response.status() {
                StatusCode::CREATED => Ok(()),
                _ => Err(self.http.status_failure(response).await),
            }
        })
        .await
    }

    /// Opens an upload session and returns its `Location`.
    async fn begin_upload(&self) -> Result<String, Failure> {
        let url = self.http.url(&format!("/v2/{}/blobs/uploads/", self.repository));
        let response = self.http.send(&self.push_scope, |client| client.post(&url).header(CONTENT_LENGTH, 0)).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.http.status_failure(response).await);
        }

        let location = response.headers().get(LOCATION).and_then(|value| value.to_str().ok());
        location.map(str::to_string).ok_or_else(|| {
            Failure::from(RegistryError::Rejected {
                registry: self.http.context.registry.to_string(),
                repository: self.repository.to_string(),
                detail: "the upload session response has no `Location` header".to_string(),
            })
        })
    }

    /// Puts the manifest or index at `reference` (a tag or a digest), byte
    /// for byte, and checks the digest that the registry reports in
    /// `Docker-Content-Digest`, or else at the end of `Location`.
    async fn put_manifest(
        &self,
        reference: &str,
        manifest: Vec<u8>,
        descriptor: &Descriptor,
    ) -> Result<(), RegistryError> {
        let manifest = bytes::Bytes::from(manifest);
        let url = self.http.url(&format!("/v2/{}/manifests/{}", self.repository, reference));

        let reported = retry(&self.policy, &self.http.context, "manifest upload", REQUEST_TIMEOUT, || async {
            let response = self
                .http
                .send(&self.push_scope, |client| {
                    client.put(&url).header(CONTENT_TYPE, descriptor.media_type.as_str()).body(manifest.clone())
                })
                .await?;
            if response.status() != StatusCode::CREATED {
                return Err(self.http.status_failure(response).await);
            }
            Ok(reported_digest(response.headers()))
        })
        .await?;

        match reported {
            Some(reported) if reported != descriptor.digest => Err(RegistryError::ManifestDigestMismatch {
                registry: self.http.context.registry.to_string(),
                repository: self.repository.to_string(),
                expected: descriptor.digest.clone(),
                actual: reported,
            }),
            _ => Ok(()),
        }
    }
}

/// Returns the manifest digest a registry reports after a PUT.
fn reported_digest(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(digest) = header("docker-content-digest") {
        return Some(digest.to_string());
    }

    let location = header("location")?;
    location.rsplit('/').next().filter(|segment| segment.starts_with("sha256:")).map(str::to_string)
}

/// Adds `digest=` to an upload session URL, which may already have a query.
fn upload_url(location: &str, digest: &str) -> Result<String, Failure> {
    let mut url = reqwest::Url::parse(location).map_err(|error| {
        Failure::from(RegistryError::Request {
            registry: String::new(),
            repository: String::new(),
            detail: format!("invalid upload location `{location}`: {error}"),
        })
    })?;
    url.query_pairs_mut().append_pair("digest", digest);
    Ok(url.to_string())
}

/// Runs `work` and reports the growth of `sent` to `reporter` every
/// [`PROGRESS_INTERVAL`] until it ends. The counting happens inside the
/// request bodies, which must be `'static` and so cannot hold the reporter.
pub(crate) async fn report_progress<T>(
    work: impl std::future::Future<Output = T>,
    sent: &AtomicU64,
    reporter: &dyn Reporter,
) -> T {
    let mut reported = 0;
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    tokio::pin!(work);

    loop {
        tokio::select! {
            result = &mut work => {
                let now = sent.load(Ordering::Relaxed);
                reporter.transfer_progressed(now.saturating_sub(reported));
                return result;
            }
            _ = ticker.tick() => {
                let now = sent.load(Ordering::Relaxed);
                reporter.transfer_progressed(now.saturating_sub(reported));
                reported = now;
            }
        }
    }
}

fn blob_path(layout_dir: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    layout_dir.join("blobs").join(algorithm).join(hex)
}

fn check_blob_size(path: &Path, descriptor: &Descriptor) -> Result<(), RegistryError> {
    let metadata = std::fs::metadata(path).map_err(|source| RegistryError::LayoutBlob {
        digest: descriptor.digest.clone(),
        path: path.to_path_buf(),
        source,
    })?;

    if metadata.len() != descriptor.size {
        return Err(RegistryError::LayoutBlobSize {
            digest: descriptor.digest.clone(),
            expected: descriptor.size,
            actual: metadata.len(),
        });
    }
    Ok(())
}

/// Reads the manifest blob and checks its digest, because the registry
/// stores it under the digest of exactly these bytes.
fn read_manifest(layout_dir: &Path, descriptor: &Descriptor) -> Result<Vec<u8>, RegistryError> {
    let path = blob_path(layout_dir, &descriptor.digest);
    let manifest = std::fs::read(&path).map_err(|source| RegistryError::LayoutBlob {
        digest: descriptor.digest.clone(),
        path: path.clone(),
        source,
    })?;

    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
    if actual != descriptor.digest {
        return Err(RegistryError::LayoutManifestDigest { expected: descriptor.digest.clone(), actual });
    }
    Ok(manifest)
}

/// Streams the file at `path` in chunks of [`READ_CHUNK_BYTES`], so memory
/// does not grow with the blob size, and adds each chunk's size to `sent`.
///
/// NOTE: bytes of a try that failed stay counted, so after a retried upload
/// the progress bar passes its total.
fn read_chunks(
    path: PathBuf,
    sent: Arc<AtomicU64>,
) -> impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    stream::try_unfold(None, move |file: Option<tokio::fs::File>| {
        let path = path.clone();
        let sent = Arc::clone(&sent);
        async move {
            let mut file = match file {
                Some(file) => file,
                None => tokio::fs::File::open(&path).await?,
            };
            let mut buffer = vec![0; READ_CHUNK_BYTES];
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                return Ok(None);
            }

            buffer.truncate(read);
            sent.fetch_add(read as u64, Ordering::Relaxed);
            Ok(Some((bytes::Bytes::from(buffer), Some(file))))
        }
    })
}

#[cfg(test)]
#[path = "push_fake_registry_tests.rs"]
mod fake_registry_tests;

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::image::BuiltLayer;
    use crate::report::SilentReporter;

    /// A fake registry that returns fixed statuses and records the request
    /// lines. It reads each connection once, so it also responds to a TLS
    /// ClientHello with plain HTTP.
    struct FixedStatusServer {
        address: String,
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl FixedStatusServer {
        fn start(status_line: &'static str, body: &'static str) -> FixedStatusServer {
            FixedStatusServer::start_with(move |_request_line| (status_line, body))
        }

        /// Starts a server that responds to each request with the status line and
        /// body that `respond` picks for the request line.
        fn start_with(respond: impl Fn(&str) -> (&'static str, &'static str) + Send + 'static) -> FixedStatusServer {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap().to_string();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let recorded = Arc::clone(&requests);

            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut buffer = [0; 8192];
                    let read = stream.read(&mut buffer).unwrap_or(0);
                    let request = String::from_utf8_lossy(&buffer[..read]);
                    let first_line = request.lines().next().unwrap_or("").to_string();
                    let (status_line, body) = respond(&first_line);
                    recorded.lock().unwrap().push(first_line);
                    let response = format!(
                        "HTTP/1.1 {status_line}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes());
                }
            });

            FixedStatusServer { address, requests }
        }

        fn count(&self, method: &str) -> usize {
            let prefix = format!("{method} ");
            self.requests.lock().unwrap().iter().filter(|line| line.starts_with(&prefix)).count()
        }
    }

    pub(super) fn descriptor_for(layout: &Path, media_type: &str, content: &[u8]) -> Descriptor {
        let hex = hex::encode(Sha256::digest(content));
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join(&hex), content).unwrap();

        Descriptor { media_type: media_type.to_string(), digest: format!("sha256:{hex}"), size: content.len() as u64 }
    }

    /// Writes a layout with one layer whose content need not be a real tar,
    /// because the fake servers never read it.
    pub(super) fn small_image(layout: &Path) -> BuiltImage {
        let layer = descriptor_for(layout, "application/vnd.oci.image.layer.v1.tar+gzip", b"layer bytes");
        let config = descriptor_for(layout, "application/vnd.oci.image.config.v1+json", b"{}");
        let manifest = descriptor_for(layout, "application/vnd.oci.image.manifest.v1+json", b"{\"schemaVersion\":2}");

        BuiltImage {
            manifest,
            config,
            layers: vec![BuiltLayer {
                descriptor: layer.clone(),
                diff_id: layer.digest,
                description: "job files".to_string(),
                entries: 1,
            }],
        }
    }

    async fn push_to(server: &FixedStatusServer) -> RegistryError {
        let layout = tempfile::tempdir().unwrap();
        let image = small_image(layout.path());
        let target = Target::from_prefix(&server.address, "backup", "latest").unwrap();
        let options = PushOptions {
            insecure_registries: Vec::new(),
            docker_config_dir: Some(layout.path().join("no-docker-config")),
            mount_from: None,
        };

        push(layout.path(), &image, &target, &options, &SilentReporter).await.unwrap_err()
    }

    #[tokio::test]
    async fn server_error_retried_three_times() {
        let server = FixedStatusServer::start("503 Service Unavailable", "");

        let error = push_to(&server).await;

        assert!(matches!(error, RegistryError::ServerError { status: 503, .. }), "{error}");
        assert_eq!(server.count("GET"), 3);
        assert!(error.to_string().contains("retry later"), "{error}");
    }

    #[tokio::test]
    async fn forbidden_not_retried() {
        let server = FixedStatusServer::start("403 Forbidden", "");

        let error = push_to(&server).await;

        assert!(matches!(error, RegistryError::Forbidden { .. }), "{error}");
        assert_eq!(server.count("GET"), 1);
        assert!(error.to_string().contains("`backup`"), "{error}");
    }

    #[tokio::test]
    async fn unauthorized_hints_docker_login() {
        let server = FixedStatusServer::start("401 Unauthorized", "");

        let error = push_to(&server).await;

        assert!(matches!(error, RegistryError::CredentialsMissing { .. }), "{error}");
        assert!(error.to_string().contains(&format!("`docker login {}`", server.address)), "{error}");
    }

    #[tokio::test]
    async fn not_found_upload_names_repository() {
        let body = r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#;
        let server = FixedStatusServer::start_with(move |request_line| match request_line {
            line if line.starts_with("GET /v2/ ") => ("200 OK", ""),
            _ => ("404 Not Found", body),
        });

        let error = push_to(&server).await;

        assert!(matches!(error, RegistryError::NotFound { .. }), "{error}");
        assert_eq!(server.count("PUT"), 0);
        assert!(error.to_string().contains("repository `backup` not found"), "{error}");
    }

    #[tokio::test]
    async fn other_client_error_shows_registry_code() {
        let body =
            r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#;
        let server = FixedStatusServer::start_with(move |request_line| match request_line {
            line if line.starts_with("HEAD ") => ("404 Not Found", ""),
            line if line.starts_with("POST ") => ("202 Accepted\r\nLocation: /v2/backup/blobs/uploads/1", ""),
            _ => ("400 Bad Request", body),
        });

        let error = push_to(&server).await;

        assert!(matches!(error, RegistryError::Rejected { .. }), "{error}");
        assert!(error.to_string().contains("DIGEST_INVALID"), "{error}");
    }

    #[tokio::test]
    async fn manifest_digest_mismatch_reported() {
        let server = FixedStatusServer::start_with(|request_line| match request_line {
            line if line.starts_with("PUT ") => (
                "201 Created\r\nLocation: /v2/backup/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "",
            ),
            _ => ("200 OK", ""),
        });

        let error = push_to(&server).await;

        assert!(matches!(error, RegistryError::ManifestDigestMismatch { .. }), "{error}");
        assert_eq!(server.count("HEAD"), 2);
        assert_eq!(server.count("PUT"), 1);
    }

    #[tokio::test]
    async fn https_to_plain_server_is_tls_error() {
        let server = FixedStatusServer::start("400 Bad Request", "");
        let target = Target::from_prefix(&server.address, "backup", "latest").unwrap();
        let session = Session::new(&target, false, Credential::Anonymous, None, RetryPolicy::default()).unwrap();

        let error = session.authenticate().await.unwrap_err();

        assert!(matches!(error, RegistryError::Tls { .. }), "{error}");
        assert!(error.to_string().contains(&format!("`--insecure-registry {}`", server.address)), "{error}");
    }

    #[tokio::test]
    async fn missing_blob_names_layout_path() {
        let layout = tempfile::tempdir().unwrap();
        let image = small_image(layout.path());
        let config_path = blob_path(layout.path(), &image.config.digest);
        std::fs::remove_file(&config_path).unwrap();
        let server = FixedStatusServer::start("404 Not Found", "");
        let target = Target::from_prefix(&server.address, "backup", "latest").unwrap();
        let options = PushOptions::default();

        let error = push(layout.path(), &image, &target, &options, &SilentReporter).await.unwrap_err();

        assert!(matches!(error, RegistryError::LayoutBlob { .. }), "{error}");
        assert!(error.to_string().contains(&config_path.display().to_string()), "{error}");
    }

    #[test]
    fn manifest_digest_checked_before_push() {
        let layout = tempfile::tempdir().unwrap();
        let image = small_image(layout.path());
        std::fs::write(blob_path(layout.path(), &image.manifest.digest), b"{\"schemaVersion\":3}").unwrap();

        let error = read_manifest(layout.path(), &image.manifest).unwrap_err();

        assert!(matches!(error, RegistryError::LayoutManifestDigest { .. }), "{error}");
    }

    #[test]
    fn blob_size_mismatch_rejected() {
        let layout = tempfile::tempdir().unwrap();
        let mut image = small_image(layout.path());
        image.config.size += 1;

        let error = check_blob_size(&blob_path(layout.path(), &image.config.digest), &image.config).unwrap_err();

        assert!(matches!(error, RegistryError::LayoutBlobSize { expected: 3, actual: 2, .. }), "{error}");
    }

    /// Records warnings, for the credential policy tests.
    #[derive(Default)]
    struct WarningRecorder {
        warnings: Mutex<Vec<String>>,
    }

    impl Reporter for WarningRecorder {
        fn warning(&self, message: &str) {
            self.warnings.lock().unwrap().push(message.to_string());
        }
    }

    fn options_with_auths(dir: &Path, registry: &str, insecure: &[&str]) -> PushOptions {
        let config = serde_json::json!({ "auths": { registry: { "username": "kuul", "password": "pw" } } });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();

        PushOptions {
            insecure_registries: insecure.iter().map(|entry| entry.to_string()).collect(),
            docker_config_dir: Some(dir.to_path_buf()),
            mount_from: None,
        }
    }

    #[tokio::test]
    async fn insecure_remote_registry_withholds_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let options = options_with_auths(dir.path(), "registry.test:5000", &["registry.test:5000"]);
        let target = Target::from_prefix("registry.test:5000/kuul", "backup", "latest").unwrap();
        let reporter = WarningRecorder::default();

        let credential = load_credential(&target, &options, true, &reporter).await.unwrap();

        assert_eq!(credential, Credential::Anonymous);
        let warnings = reporter.warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("`registry.test:5000`"), "{}", warnings[0]);
        assert!(!warnings[0].contains("pw"), "{}", warnings[0]);
    }

    #[tokio::test]
    async fn loopback_registry_keeps_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let options = options_with_auths(dir.path(), "127.0.0.1:5000", &[]);
        let target = Target::from_prefix("127.0.0.1:5000/kuul", "backup", "latest").unwrap();
        let reporter = WarningRecorder::default();

        let credential = load_credential(&target, &options, true, &reporter).await.unwrap();

        assert!(!credential.is_anonymous());
        assert!(reporter.warnings.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn https_registry_keeps_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let options = options_with_auths(dir.path(), "registry.test:5000", &[]);
        let target = Target::from_prefix("registry.test:5000/kuul", "backup", "latest").unwrap();
        let reporter = WarningRecorder::default();

        let credential = load_credential(&target, &options, false, &reporter).await.unwrap();

        assert!(!credential.is_anonymous());
    }
}
