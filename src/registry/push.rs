//! Pushing an image from an OCI image layout to a registry: each blob is
//! checked with HEAD and uploaded only if missing, then the manifest is put
//! by tag, byte for byte as it is in the layout.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::stream::{self, Stream};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::auth::{Credential, docker_config_dir, resolve_credential};
use super::error::RequestContext;
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

/// Tries per request when a connection fails or the registry returns 5xx.
const MAX_TRIES: u32 = 3;

/// Delay before the second try. It doubles before each further try.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Size of each read from a blob file while it streams to the registry.
const READ_CHUNK_BYTES: usize = 256 * 1024;

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
/// has are skipped. Each request is tried up to 3 times when the connection
/// fails or the registry returns 5xx.
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
    check_image_blobs(layout_dir, image)?;
    let manifest = read_manifest(layout_dir, &image.manifest)?;

    let session = Session::open(target, options, reporter).await?;
    let mut outcome = PushOutcome::new(target, &image.manifest.digest);
    session.push_blobs(layout_dir, image, options.mount_from.as_ref(), reporter, &mut outcome).await?;

    reporter.step("push manifest");
    session.put_manifest(&session.reference, manifest, &image.manifest).await?;

    Ok(outcome)
}

/// Pushes a multi-platform image: every platform's blobs and manifest (by
/// digest), then the index under the target's tag. The tag is put last, so
/// a push that fails midway leaves it where it was.
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
    let mut manifests = Vec::with_capacity(index.images.len());
    for entry in &index.images {
        check_image_blobs(layout_dir, &entry.image)?;
        manifests.push(read_manifest(layout_dir, &entry.image.manifest)?);
    }
    let index_bytes = read_manifest(layout_dir, &index.descriptor)?;

    let session = Session::open(target, options, reporter).await?;
    let mut outcome = PushOutcome::new(target, &index.descriptor.digest);
    for (entry, manifest) in index.images.iter().zip(manifests) {
        session.push_blobs(layout_dir, &entry.image, options.mount_from.as_ref(), reporter, &mut outcome).await?;

        reporter.step(&format!("push manifest for {}", entry.platform));
        let by_digest = session.reference.clone_with_digest(entry.image.manifest.digest.clone());
        session.put_manifest(&by_digest, manifest, &entry.image.manifest).await?;
    }

    reporter.step("push index");
    session.put_manifest(&session.reference, index_bytes, &index.descriptor).await?;

    Ok(outcome)
}

/// Checks every blob of `image` in the layout before the first request, so
/// a damaged layout fails without a partial push.
fn check_image_blobs(layout_dir: &Path, image: &BuiltImage) -> Result<(), RegistryError> {
    for descriptor in image_blobs(image) {
        check_blob_size(&blob_path(layout_dir, &descriptor.digest), descriptor)?;
    }
    Ok(())
}

/// Lists the layer blobs and the config blob of `image`.
fn image_blobs(image: &BuiltImage) -> Vec<&Descriptor> {
    image.layers.iter().map(|layer| &layer.descriptor).chain([&image.config]).collect()
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

/// One push: the HTTP client, the target reference and the credential.
struct Session<'a> {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    context: RequestContext<'a>,
}

impl<'a> Session<'a> {
    /// Loads the credential, builds the client and checks the registry's API
    /// before any blob.
    async fn open(
        target: &'a Target,
        options: &PushOptions,
        reporter: &dyn Reporter,
    ) -> Result<Session<'a>, RegistryError> {
        let plain_http = uses_plain_http(target.registry(), &options.insecure_registries);
        let credential = load_credential(target, options, plain_http, reporter).await?;
        let session = Session::new(target, plain_http, &credential)?;

        session.authenticate().await?;
        Ok(session)
    }

    /// Uploads the blobs of `image` that the registry lacks, mounting those
    /// that `mount_from` has, and counts each in `outcome`.
    async fn push_blobs(
        &self,
        layout_dir: &Path,
        image: &BuiltImage,
        mount_from: Option<&MountSource>,
        reporter: &dyn Reporter,
        outcome: &mut PushOutcome,
    ) -> Result<(), RegistryError> {
        for descriptor in image_blobs(image) {
            if self.blob_exists(descriptor).await? {
                reporter.blob_skipped(&descriptor.digest, descriptor.size);
                outcome.blobs_skipped += 1;
                continue;
            }
            if self.mount_blob(mount_from, descriptor).await {
                outcome.blobs_mounted += 1;
                continue;
            }

            self.upload_blob(layout_dir, descriptor).await?;
            reporter.blob_uploaded(&descriptor.digest, descriptor.size);
            outcome.blobs_uploaded += 1;
            outcome.bytes_uploaded += descriptor.size;
        }
        Ok(())
    }

    fn new(target: &'a Target, plain_http: bool, credential: &Credential) -> Result<Session<'a>, RegistryError> {
        let protocol = if plain_http { ClientProtocol::Http } else { ClientProtocol::Https };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(CONNECT_TIMEOUT),
            // A monolithic PUT sends a blob in one request, streamed from the
            // file, where a chunked upload would send one PATCH per 4 MiB.
            use_monolithic_push: true,
            ..ClientConfig::default()
        };

        let context =
            RequestContext { registry: target.registry(), repository: target.repository(), https: !plain_http };
        // `Client::new` would fall back to a default client on this error and
        // lose the protocol and timeouts set above.
        let client = Client::try_from(config).map_err(|error| context.map_error(error))?;

        Ok(Session {
            client,
            reference: Reference::with_tag(
                target.registry().to_string(),
                target.repository().to_string(),
                target.tag().to_string(),
            ),
            auth: registry_auth(credential),
            context,
        })
    }

    /// Checks that the registry responds to `/v2/`, and fetches a push token
    /// if it requires one, so that an unreachable registry fails before any
    /// blob.
    async fn authenticate(&self) -> Result<(), RegistryError> {
        self.with_retries("registry API check", REQUEST_TIMEOUT, || async {
            self.client.auth(&self.reference, &self.auth, RegistryOperation::Push).await.map(|_token| ())
        })
        .await?;

        self.check_api_status().await
    }

    /// Rejects a server that is not a registry, such as a web server on the
    /// wrong port. oci-client accepts any `/v2/` answer as "no auth needed",
    /// and the push would then fail later with a confusing status. The
    /// distribution spec has every registry serve `GET /v2/`, so a 404 there
    /// means the server is not one.
    async fn check_api_status(&self) -> Result<(), RegistryError> {
        let scheme = if self.context.https { "https" } else { "http" };
        let url = format!("{scheme}://{}/v2/", self.context.registry);
        let client =
            reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT).build().map_err(
                |error| RegistryError::Rejected {
                    registry: self.context.registry.to_string(),
                    repository: self.context.repository.to_string(),
                    detail: error.to_string(),
                },
            )?;

        // The request before this one reached the server, so a failure here
        // is left to the push itself to report.
        let Ok(response) = client.get(&url).send().await else {
            return Ok(());
        };
        // Only 404 marks a non-registry. Other statuses (403, 429, 5xx) can
        // come from a registry too, and the push reports them with their
        // own hints.
        match response.status().as_u16() {
            404 => Err(RegistryError::NotARegistry { registry: self.context.registry.to_string(), status: 404 }),
            _ => Ok(()),
        }
    }

    async fn blob_exists(&self, descriptor: &Descriptor) -> Result<bool, RegistryError> {
        self.with_retries("blob check", REQUEST_TIMEOUT, || {
            self.client.blob_exists(&self.reference, &descriptor.digest)
        })
        .await
    }

    /// Asks the registry to mount the blob from `source`'s repository and
    /// reports whether it did. Any failure falls back to an upload, because
    /// a registry may respond to a mount with 202 (start an upload instead),
    /// and oci-client 0.18 treats that response as an error.
    async fn mount_blob(&self, source: Option<&MountSource>, descriptor: &Descriptor) -> bool {
        let Some(source) = source else {
            return false;
        };
        if source.registry != self.context.registry || !source.digests.contains(&descriptor.digest) {
            return false;
        }

        let from = Reference::with_tag(source.registry.clone(), source.repository.clone(), "latest".to_owned());
        let mount = self.client.mount_blob(&self.reference, &from, &descriptor.digest);
        match tokio::time::timeout(REQUEST_TIMEOUT, mount).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::info!(registry = self.context.registry, digest = descriptor.digest, %error, "blob mount failed, uploading");
                false
            }
            Err(_elapsed) => {
                tracing::info!(
                    registry = self.context.registry,
                    digest = descriptor.digest,
                    "blob mount timed out, uploading"
                );
                false
            }
        }
    }

    /// Streams one blob from the layout. The registry checks the content
    /// against the digest in the upload URL and rejects a mismatch.
    async fn upload_blob(&self, layout_dir: &Path, descriptor: &Descriptor) -> Result<(), RegistryError> {
        let path = blob_path(layout_dir, &descriptor.digest);
        check_blob_size(&path, descriptor)?;

        let time_limit = REQUEST_TIMEOUT + Duration::from_secs(descriptor.size / MIN_UPLOAD_RATE);
        self.with_retries("blob upload", time_limit, || async {
            let file = tokio::fs::File::open(&path).await?;
            self.client
                .push_blob_stream(&self.reference, read_chunks(file), &descriptor.digest, Some(descriptor.size))
                .await
        })
        .await
        .map(|_location| ())
    }

    /// Puts the manifest at `reference` (a tag or a digest), byte for byte,
    /// and checks the digest that the registry reports in the manifest's
    /// `Location`.
    ///
    /// `oci-client` 0.18 does not return the `Docker-Content-Digest` header
    /// of a manifest PUT. Distribution puts the digest in `Location`
    /// instead, and when a registry's `Location` contains no digest, there is
    /// nothing to check.
    async fn put_manifest(
        &self,
        reference: &Reference,
        manifest: Vec<u8>,
        descriptor: &Descriptor,
    ) -> Result<(), RegistryError> {
        let manifest = bytes::Bytes::from(manifest);

        let location = self
            .with_retries("manifest upload", REQUEST_TIMEOUT, || async {
                let content_type = descriptor
                    .media_type
                    .parse()
                    .map_err(|_| OciDistributionError::UnsupportedMediaTypeError(descriptor.media_type.clone()))?;
                self.client.push_manifest_raw(reference, manifest.clone(), content_type).await
            })
            .await?;

        let reported = location.rsplit('/').next().filter(|segment| segment.starts_with("sha256:"));
        match reported {
            Some(reported) if reported != descriptor.digest => Err(RegistryError::ManifestDigestMismatch {
                registry: self.context.registry.to_string(),
                repository: self.context.repository.to_string(),
                expected: descriptor.digest.clone(),
                actual: reported.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Runs `request` with a time limit per try, and tries again after a
    /// short, doubling wait when the failure is transient.
    async fn with_retries<T, F, Fut>(
        &self,
        operation: &str,
        time_limit: Duration,
        request: F,
    ) -> Result<T, RegistryError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let mut delay = FIRST_RETRY_DELAY;

        for attempt in 1..=MAX_TRIES {
            let error = match tokio::time::timeout(time_limit, request()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => self.context.map_error(error),
                Err(_elapsed) => RegistryError::TimedOut {
                    registry: self.context.registry.to_string(),
                    seconds: time_limit.as_secs(),
                },
            };

            if !error.is_transient() || attempt == MAX_TRIES {
                return Err(error);
            }

            tracing::warn!(
                registry = self.context.registry,
                repository = self.context.repository,
                attempt,
                error = %error.to_string().lines().next().unwrap_or_default(),
                "{operation} failed, retrying in {} ms",
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
            delay *= 2;
        }

        unreachable!("the last try returns its result")
    }
}

/// Converts a credential to `oci-client`'s form.
pub(crate) fn registry_auth(credential: &Credential) -> RegistryAuth {
    match credential {
        Credential::Anonymous => RegistryAuth::Anonymous,
        Credential::Basic { username, password } => RegistryAuth::Basic(username.clone(), password.clone()),
        // NOTE: Docker exchanges an identity token (an OAuth2 refresh token)
        // for an access token at the registry's token service. oci-client
        // 0.18 has no such exchange, so the token is sent as the bearer token
        // itself, which only registries that accept it directly understand.
        Credential::IdentityToken(token) => RegistryAuth::Bearer(token.clone()),
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

/// Streams a file in chunks of [`READ_CHUNK_BYTES`], so memory does not grow
/// with the blob size.
fn read_chunks(
    file: tokio::fs::File,
) -> impl Stream<Item = Result<bytes::Bytes, OciDistributionError>> + Send + 'static {
    stream::try_unfold(file, |mut file| async move {
        let mut buffer = vec![0; READ_CHUNK_BYTES];
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }

        buffer.truncate(read);
        Ok(Some((bytes::Bytes::from(buffer), file)))
    })
}

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

    fn descriptor_for(layout: &Path, media_type: &str, content: &[u8]) -> Descriptor {
        let hex = hex::encode(Sha256::digest(content));
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join(&hex), content).unwrap();

        Descriptor { media_type: media_type.to_string(), digest: format!("sha256:{hex}"), size: content.len() as u64 }
    }

    /// Writes a layout with one layer whose content need not be a real tar,
    /// because the fake servers never read it.
    fn small_image(layout: &Path) -> BuiltImage {
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
        assert_eq!(server.count("HEAD"), 3);
        assert!(error.to_string().contains("retry later"), "{error}");
    }

    #[tokio::test]
    async fn forbidden_not_retried() {
        let server = FixedStatusServer::start("403 Forbidden", "");

        let error = push_to(&server).await;

        assert!(matches!(error, RegistryError::Forbidden { .. }), "{error}");
        assert_eq!(server.count("HEAD"), 1);
        assert!(error.to_string().contains("`backup`"), "{error}");
    }

    #[tokio::test]
    async fn unauthorized_hints_docker_login() {
        let server = FixedStatusServer::start("401 Unauthorized", "");

        let error = push_to(&server).await;

        assert!(matches!(error, RegistryError::Unauthorized { .. }), "{error}");
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
        assert_eq!(server.count("POST"), 1);
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
        let session = Session::new(&target, false, &Credential::Anonymous).unwrap();

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
