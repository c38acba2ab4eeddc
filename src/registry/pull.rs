//! Pulling a base image: the manifest (or the index and the manifest chosen
//! from it), the config and the layer blobs, each checked against its
//! digest. Layer blobs go into a content-addressed cache shared by all jobs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::RegistryError;
use super::auth::{Credential, docker_config_dir, resolve_credential};
use super::error::RequestContext;
use super::push::{CONNECT_TIMEOUT, registry_auth};
use super::reference::BaseReference;
use super::retry::with_retries;
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
    let plain_http = uses_plain_http(&reference.registry, &options.insecure_registries);
    let credential = load_credential(&reference.registry, options, plain_http, reporter).await?;
    let session = PullSession::new(reference, plain_http, &credential)?;

    reporter.step(&format!("pull base {reference}"));
    let top_reference = match &reference.digest {
        Some(digest) => session.by_digest(digest),
        None => session.reference.clone(),
    };
    let (bytes, digest) = session.manifest(&top_reference, reference.digest.as_deref()).await?;

    let image = match manifest::parse_document(&bytes, None)? {
        ManifestDocument::Image(image) => image,
        ManifestDocument::Index(entries) => {
            let chosen = manifest::select_platform(&entries, platform)?;
            let child = session.by_digest(&chosen.descriptor.digest);
            let (bytes, _) = session.manifest(&child, Some(&chosen.descriptor.digest)).await?;
            match manifest::parse_document(&bytes, Some(&chosen.descriptor.media_type))? {
                ManifestDocument::Image(image) => image,
                ManifestDocument::Index(_) => {
                    return Err(BaseError::InvalidManifest { reason: "an index lists another index".to_owned() }.into());
                }
            }
        }
    };

    let config = session.small_blob(&image.config).await?;
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
    let session = PullSession::new(reference, plain_http, &credential)?;

    reporter.step(&format!("resolve base {reference}"));
    let top_reference = match &reference.digest {
        Some(digest) => session.by_digest(digest),
        None => session.reference.clone(),
    };
    let (_bytes, digest) = session.manifest(&top_reference, reference.digest.as_deref()).await?;
    Ok(digest)
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

struct PullSession<'a> {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    context: RequestContext<'a>,
}

impl<'a> PullSession<'a> {
    fn new(
        base: &'a BaseReference,
        plain_http: bool,
        credential: &Credential,
    ) -> Result<PullSession<'a>, RegistryError> {
        let protocol = if plain_http { ClientProtocol::Http } else { ClientProtocol::Https };
        let config = ClientConfig { protocol, connect_timeout: Some(CONNECT_TIMEOUT), ..ClientConfig::default() };
        let context = RequestContext { registry: &base.registry, repository: &base.repository, https: !plain_http };
        let client = Client::try_from(config).map_err(|error| context.map_error(error))?;

        let reference = Reference::with_tag(
            base.registry.clone(),
            base.repository.clone(),
            base.tag.clone().unwrap_or_else(|| "latest".to_owned()),
        );
        Ok(PullSession { client, reference, auth: registry_auth(credential), context })
    }

    fn by_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_owned(),
            self.reference.repository().to_owned(),
            digest.to_owned(),
        )
    }

    /// Fetches a manifest or index and returns its bytes and digest. The
    /// digest is computed from the bytes and must equal `expected` when
    /// one is given.
    async fn manifest(&self, reference: &Reference, expected: Option<&str>) -> Result<(Vec<u8>, String), PullError> {
        let (bytes, _reported) = with_retries(&self.context, "manifest download", REQUEST_TIMEOUT, || {
            self.client.pull_manifest_raw(reference, &self.auth, &ACCEPTED_MANIFEST_TYPES)
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

    /// Fetches a small blob (the config) into memory and checks its digest.
    async fn small_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, PullError> {
        let bytes = with_retries(&self.context, "config download", REQUEST_TIMEOUT, || async {
            let mut bytes = Vec::new();
            self.client.pull_blob(&self.reference, descriptor.digest.as_str(), &mut bytes).await?;
            Ok(bytes)
        })
        .await?;

        let actual = sha256_digest(&bytes);
        if actual != descriptor.digest {
            let digest = descriptor.digest.clone();
            return Err(BaseError::DownloadDigestMismatch { what: "config", digest, actual }.into());
        }
        Ok(bytes)
    }

    /// Downloads each layer blob the cache lacks and returns the cache path
    /// of every layer. A cached blob is trusted here; [`crate::image::base::import`]
    /// checks its digest again when it copies it into the layout.
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
        for layer in &image.layers {
            let hex = layer.digest.trim_start_matches("sha256:");
            let path = directory.join(hex);
            let cached = tokio::fs::metadata(&path).await.is_ok_and(|metadata| metadata.len() == layer.size);
            if !cached {
                reporter.step(&format!("download {}", layer.digest));
                self.download(layer, &path).await?;
            }
            paths.push(path);
        }
        Ok(paths)
    }

    /// Streams one blob into a temporary file next to `path`, checks its
    /// digest and size, then renames it into place.
    async fn download(&self, layer: &Descriptor, path: &Path) -> Result<(), PullError> {
        let temp = path.with_extension(format!("part-{}", std::process::id()));
        let time_limit = REQUEST_TIMEOUT + Duration::from_secs(layer.size / MIN_DOWNLOAD_RATE);
        let io_error = |source| BaseError::Io { path: temp.clone(), source };

        with_retries(&self.context, "blob download", time_limit, || async {
            let mut file = tokio::fs::File::create(&temp).await?;
            self.client.pull_blob(&self.reference, layer.digest.as_str(), &mut file).await?;
            file.flush().await?;
            file.sync_all().await?;
            Ok(())
        })
        .await?;

        let (actual, size) = file_digest(&temp).map_err(io_error)?;
        if actual != layer.digest || size != layer.size {
            let _ = std::fs::remove_file(&temp);
            let digest = layer.digest.clone();
            return Err(BaseError::DownloadDigestMismatch { what: "layer", digest, actual }.into());
        }
        std::fs::rename(&temp, path).map_err(io_error)?;
        Ok(())
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn file_digest(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;

    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut size = 0;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}
