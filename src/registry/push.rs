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

/// Wait before the second try; it doubles before each further try.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Size of each read from a blob file while it streams to the registry.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Settings for [`push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Registries (`HOST` or `HOST:PORT`) reached over plain HTTP, from
    /// `--insecure-registry`. Loopback registries always use plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Directory with the Docker `config.json`; `None` means
    /// [`docker_config_dir`].
    pub docker_config_dir: Option<PathBuf>,
}

/// What [`push`] did.
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
}

/// Pushes the image that `image` describes from the OCI layout at
/// `layout_dir` to `target`.
///
/// Blobs the registry already has are skipped. Connection failures and 5xx
/// answers are retried up to 3 times per request.
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
    let plain_http = uses_plain_http(target.registry(), &options.insecure_registries);
    let credential = load_credential(target, options, plain_http, reporter).await?;
    let session = Session::new(target, plain_http, &credential);

    session.authenticate().await?;

    let mut outcome = PushOutcome {
        reference: String::new(),
        digest: image.manifest.digest.clone(),
        bytes_uploaded: 0,
        blobs_uploaded: 0,
        blobs_skipped: 0,
    };
    let blobs = image
        .layers
        .iter()
        .map(|layer| &layer.descriptor)
        .chain([&image.config]);
    for descriptor in blobs {
        if session.blob_exists(descriptor).await? {
            reporter.blob_skipped(&descriptor.digest, descriptor.size);
            outcome.blobs_skipped += 1;
            continue;
        }

        session.upload_blob(layout_dir, descriptor).await?;
        reporter.blob_uploaded(&descriptor.digest, descriptor.size);
        outcome.blobs_uploaded += 1;
        outcome.bytes_uploaded += descriptor.size;
    }

    reporter.step("push manifest");
    let manifest = read_manifest(layout_dir, &image.manifest)?;
    session.put_manifest(manifest, &image.manifest).await?;

    outcome.reference = target.pinned(&image.manifest.digest);
    Ok(outcome)
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
            "credentials for `{}` withheld because it is reached over plain HTTP; pushing anonymously",
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
    fn new(target: &'a Target, plain_http: bool, credential: &Credential) -> Session<'a> {
        let protocol = if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(CONNECT_TIMEOUT),
            // A monolithic PUT sends a blob in one request, streamed from the
            // file, where a chunked upload would send one PATCH per 4 MiB.
            use_monolithic_push: true,
            ..ClientConfig::default()
        };

        Session {
            client: Client::new(config),
            reference: Reference::with_tag(
                target.registry().to_string(),
                target.repository().to_string(),
                target.tag().to_string(),
            ),
            auth: registry_auth(credential),
            context: RequestContext {
                registry: target.registry(),
                repository: target.repository(),
                https: !plain_http,
            },
        }
    }

    /// Checks that the registry answers `/v2/` and fetches a push token when
    /// it asks for one, so that an unreachable registry fails before any blob.
    async fn authenticate(&self) -> Result<(), RegistryError> {
        self.with_retries("version check", REQUEST_TIMEOUT, || async {
            self.client
                .auth(&self.reference, &self.auth, RegistryOperation::Push)
                .await
                .map(|_token| ())
        })
        .await
    }

    async fn blob_exists(&self, descriptor: &Descriptor) -> Result<bool, RegistryError> {
        self.with_retries("blob check", REQUEST_TIMEOUT, || {
            self.client.blob_exists(&self.reference, &descriptor.digest)
        })
        .await
    }

    /// Streams one blob from the layout. The registry checks the content
    /// against the digest in the upload URL and rejects a mismatch.
    async fn upload_blob(
        &self,
        layout_dir: &Path,
        descriptor: &Descriptor,
    ) -> Result<(), RegistryError> {
        let path = blob_path(layout_dir, &descriptor.digest);
        check_blob_size(&path, descriptor)?;

        let time_limit = REQUEST_TIMEOUT + Duration::from_secs(descriptor.size / MIN_UPLOAD_RATE);
        self.with_retries("blob upload", time_limit, || async {
            let file = tokio::fs::File::open(&path).await?;
            self.client
                .push_blob_stream(
                    &self.reference,
                    read_chunks(file),
                    &descriptor.digest,
                    Some(descriptor.size),
                )
                .await
        })
        .await
        .map(|_location| ())
    }

    /// Puts the manifest by tag, byte for byte, and checks the digest that
    /// the registry reports in the manifest's `Location`.
    ///
    /// `oci-client` 0.18 does not return the `Docker-Content-Digest` header
    /// of a manifest PUT. Distribution puts the digest in `Location`
    /// instead, and when a registry's `Location` holds no digest, there is
    /// nothing to check.
    async fn put_manifest(
        &self,
        manifest: Vec<u8>,
        descriptor: &Descriptor,
    ) -> Result<(), RegistryError> {
        let manifest = bytes::Bytes::from(manifest);

        let location = self
            .with_retries("manifest upload", REQUEST_TIMEOUT, || async {
                let content_type = descriptor.media_type.parse().map_err(|_| {
                    OciDistributionError::UnsupportedMediaTypeError(descriptor.media_type.clone())
                })?;
                self.client
                    .push_manifest_raw(&self.reference, manifest.clone(), content_type)
                    .await
            })
            .await?;

        let reported = location
            .rsplit('/')
            .next()
            .filter(|segment| segment.starts_with("sha256:"));
        match reported {
            Some(reported) if reported != descriptor.digest => {
                Err(RegistryError::ManifestDigestMismatch {
                    registry: self.context.registry.to_string(),
                    repository: self.context.repository.to_string(),
                    expected: descriptor.digest.clone(),
                    actual: reported.to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Runs `request` with a time limit per try, and tries again after a
    /// short, doubling wait when the failure is transient.
    async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
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
                "{what} failed, retrying in {} ms",
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
            delay *= 2;
        }

        unreachable!("the last try returns its result")
    }
}

/// Converts a credential to `oci-client`'s form.
fn registry_auth(credential: &Credential) -> RegistryAuth {
    match credential {
        Credential::Anonymous => RegistryAuth::Anonymous,
        Credential::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
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
        return Err(RegistryError::LayoutManifestDigest {
            expected: descriptor.digest.clone(),
            actual,
        });
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
