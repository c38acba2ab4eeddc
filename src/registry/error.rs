//! The error type shared by every registry operation, and the mapping from
//! HTTP statuses and `reqwest` errors to it.

use std::path::PathBuf;

use oci_client::errors::OciEnvelope;

/// A failure to parse a reference, read credentials, or push or pull an image.
///
/// Network failures name the registry and the repository so that a user who
/// pushes to several registries can tell which one failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid registry prefix `{prefix}`\nhint: {hint}")]
    InvalidPrefix { prefix: String, hint: String },

    #[error(
        "registry prefix `{prefix}` names no registry host\n\
         hint: start the prefix with the registry, such as `localhost:5000/{prefix}`"
    )]
    MissingRegistryHost { prefix: String },

    #[error(
        "invalid registry host `{host}`: {reason}\n\
         hint: use a host name, an IPv4 address or a bracketed IPv6 address, with an optional `:PORT`"
    )]
    InvalidRegistryHost { host: String, reason: &'static str },

    #[error(
        "invalid repository name `{repository}`: {reason}\n\
         hint: use lowercase letters and digits, separated by `.`, `_`, `-` or `/`"
    )]
    InvalidRepository { repository: String, reason: &'static str },

    #[error(
        "invalid tag `{tag}`\n\
         hint: a tag has 1 to 128 characters from `A-Z a-z 0-9 _ . -` and does not start with `.` or `-`"
    )]
    InvalidTag { tag: String },

    #[error(
        "invalid image reference `{reference}`: {reason}\n\
         hint: write `REGISTRY/REPOSITORY[:TAG]@sha256:DIGEST`, such as `localhost:5000/kuul/backup:latest@sha256:...`"
    )]
    InvalidReference { reference: String, reason: String },

    #[error(
        "failed to read the Docker config `{}`: {source}\n\
         hint: check the file, or set `DOCKER_CONFIG` to the directory that holds `config.json`",
        path.display()
    )]
    DockerConfigRead { path: PathBuf, source: std::io::Error },

    #[error(
        "invalid Docker config `{}`: {source}\n\
         hint: fix the JSON, or log in again with `docker login`",
        path.display()
    )]
    DockerConfigInvalid { path: PathBuf, source: serde_json::Error },

    #[error(
        "invalid `auth` value for `{key}` in the Docker config `{}`\n\
         hint: `auth` is base64 of `USERNAME:PASSWORD`; log in again with `docker login {key}`",
        path.display()
    )]
    InvalidAuthEntry { path: PathBuf, key: String },

    #[error(
        "credential helper `{helper}` failed for `{registry}`: {reason}\n\
         hint: check that `{helper}` is on PATH and run `echo {registry} | {helper} get`"
    )]
    CredentialHelper { helper: String, registry: String, reason: String },

    #[error(
        "failed to read blob `{digest}` from the image layout at `{}`: {source}\n\
         hint: rebuild the image with `kuul build`",
        path.display()
    )]
    LayoutBlob { digest: String, path: PathBuf, source: std::io::Error },

    #[error(
        "blob `{digest}` in the image layout has {actual} bytes, but the manifest lists {expected}\n\
         hint: the layout changed after the build; rebuild the image with `kuul build`"
    )]
    LayoutBlobSize { digest: String, expected: u64, actual: u64 },

    #[error(
        "manifest blob `{expected}` in the image layout has digest `{actual}`\n\
         hint: the layout changed after the build; rebuild the image with `kuul build`"
    )]
    LayoutManifestDigest { expected: String, actual: String },

    #[error(
        "authentication to registry `{registry}` failed for `{repository}` (401 Unauthorized)\n\
         hint: run `docker login {registry}` or check the credentials in the Docker config"
    )]
    Unauthorized { registry: String, repository: String },

    #[error(
        "registry `{registry}` requires credentials for `{repository}`, but the Docker config has none for it (401 Unauthorized)\n\
         hint: run `docker login {registry}`; kuul reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`"
    )]
    CredentialsMissing { registry: String, repository: String },

    #[error(
        "no permission to push to `{repository}` on registry `{registry}` (403 Forbidden)\n\
         hint: ask the registry's administrator for push access, or push to a repository you own"
    )]
    Forbidden { registry: String, repository: String },

    #[error(
        "repository `{repository}` not found on registry `{registry}` (404 Not Found)\n\
         hint: create the repository on the registry, or check the path in `--registry`"
    )]
    NotFound { registry: String, repository: String },

    #[error(
        "no permission to pull `{repository}` from registry `{registry}` (403 Forbidden)\n\
         hint: check the credentials for `{registry}` in the Docker config, or ask the registry's administrator for pull access"
    )]
    PullForbidden { registry: String, repository: String },

    #[error(
        "base image repository `{repository}` not found on registry `{registry}` (404 Not Found)\n\
         hint: check the repository in `image.base`"
    )]
    BaseRepositoryNotFound { registry: String, repository: String },

    #[error(
        "base image `{image}` not found on its registry (404 Not Found)\n\
         hint: check the repository and the tag in `image.base`, and that the base image was pushed"
    )]
    ManifestNotFound { image: String },

    #[error(
        "registry `{registry}` failed a request for `{repository}` ({status})\n\
         hint: this is a registry-side error; retry later"
    )]
    ServerError { registry: String, repository: String, status: u16 },

    #[error(
        "registry `{registry}` rejected a request for `{repository}`: {detail}\n\
         hint: rebuild the image with `kuul build` and push again; if this repeats, check the registry's logs"
    )]
    Rejected { registry: String, repository: String, detail: String },

    #[error(
        "`{registry}` is not an OCI registry: `GET /v2/` returned {status}\n\
         hint: check the host and port in `--registry`; every registry serves `/v2/`"
    )]
    NotARegistry { registry: String, status: u16 },

    #[error(
        "connection refused: nothing is listening at `{registry}`\n\
         hint: is the registry running? check the host and port"
    )]
    ConnectionRefused { registry: String },

    #[error(
        "request to registry `{registry}` timed out after {seconds} s\n\
         hint: check that `{registry}` is reachable and responding, then retry"
    )]
    TimedOut { registry: String, seconds: u64 },

    #[error(
        "TLS connection to registry `{registry}` failed: {detail}\n\
         hint: if the registry serves plain HTTP, pass `--insecure-registry {registry}`"
    )]
    Tls { registry: String, detail: String },

    #[error(
        "failed to connect to registry `{registry}`: {detail}\n\
         hint: check the host name and the network path to the registry"
    )]
    Connect { registry: String, detail: String },

    #[error(
        "connection to registry `{registry}` lost during a request for `{repository}`: {detail}\n\
         hint: check the network path to the registry and its logs, then retry"
    )]
    ConnectionLost { registry: String, repository: String, detail: String },

    #[error(
        "registry `{registry}` stored the manifest for `{repository}` as `{actual}`, expected `{expected}`\n\
         hint: the registry rewrote the manifest; push to a registry that stores manifests unchanged"
    )]
    ManifestDigestMismatch { registry: String, repository: String, expected: String, actual: String },

    #[error(
        "request to registry `{registry}` for `{repository}` failed: {detail}\n\
         hint: retry; if this repeats, check the registry's logs for this request"
    )]
    Request { registry: String, repository: String, detail: String },
}

impl RegistryError {
    /// Returns `true` if one more try could succeed: after connection
    /// failures, lost connections, timeouts, 429 and 5xx responses. Rejections and local errors
    /// would repeat.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RegistryError::ServerError { .. }
                | RegistryError::ConnectionRefused { .. }
                | RegistryError::TimedOut { .. }
                | RegistryError::Connect { .. }
                | RegistryError::ConnectionLost { .. }
        )
    }
}

/// The registry and repository a request went to, for error messages.
pub(crate) struct RequestContext<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    /// Whether the request used HTTPS, so a connection failure may be a TLS
    /// failure.
    pub https: bool,
    /// Whether kuul pulls from the repository rather than pushes to it,
    /// which changes the advice in errors.
    pub pull: bool,
}

impl RequestContext<'_> {
    /// Maps a failed `reqwest` request.
    pub(crate) fn map_reqwest_error(&self, error: &reqwest::Error) -> RegistryError {
        let status = error.status().map(|status| status.as_u16());
        // A request or body error without a status means the connection
        // failed after it was open, such as a registry that closed it in
        // the middle of a blob upload. reqwest 0.13 reports a response body
        // cut short as a decode error, and kuul enables no decompression
        // that could fail otherwise.
        let lost = error.is_request() || error.is_body() || error.is_decode();
        self.map_transport_failure(status, error.is_timeout(), error.is_connect(), lost, error)
    }

    /// Maps an HTTP status and response body.
    pub(crate) fn map_status(&self, status: u16, body: &str) -> RegistryError {
        let registry = self.registry.to_string();
        let repository = self.repository.to_string();

        match status {
            401 => RegistryError::Unauthorized { registry, repository },
            403 if self.pull => RegistryError::PullForbidden { registry, repository },
            403 => RegistryError::Forbidden { registry, repository },
            404 if self.pull => RegistryError::BaseRepositoryNotFound { registry, repository },
            404 => RegistryError::NotFound { registry, repository },
            // A 429 Too Many Requests response is retried like a 5xx, because it
            // clears after a wait.
            429 | 500..=599 => RegistryError::ServerError { registry, repository, status },
            _ => {
                let detail = match serde_json::from_str::<OciEnvelope>(body) {
                    Ok(envelope) => format!("{status} {}", describe_envelope(&envelope)),
                    Err(_) => format!("HTTP status {status}"),
                };
                RegistryError::Rejected { registry, repository, detail }
            }
        }
    }

    /// Sorts a failed `reqwest` request into an HTTP status, a timeout, a
    /// refused connection, a TLS failure, a lost connection or another
    /// connection failure, looking through the error's source chain.
    fn map_transport_failure(
        &self,
        status: Option<u16>,
        timed_out: bool,
        connect: bool,
        lost: bool,
        error: &(dyn std::error::Error + 'static),
    ) -> RegistryError {
        let registry = self.registry.to_string();

        if let Some(status) = status {
            return self.map_status(status, "");
        }
        if timed_out {
            return RegistryError::TimedOut { registry, seconds: super::push::CONNECT_TIMEOUT.as_secs() };
        }
        if chain_has_io_kind(error, std::io::ErrorKind::ConnectionRefused) {
            return RegistryError::ConnectionRefused { registry };
        }

        let detail = innermost_message(error);
        if self.https && connect && looks_like_tls_failure(error) {
            return RegistryError::Tls { registry, detail };
        }
        if connect {
            return RegistryError::Connect { registry, detail };
        }
        if lost {
            let repository = self.repository.to_string();
            return RegistryError::ConnectionLost { registry, repository, detail };
        }

        self.request_failed(detail)
    }

    fn request_failed(&self, detail: String) -> RegistryError {
        RegistryError::Request { registry: self.registry.to_string(), repository: self.repository.to_string(), detail }
    }
}

/// Formats the registry's error codes and messages, such as
/// `DIGEST_INVALID: provided digest did not match uploaded content`.
fn describe_envelope(envelope: &OciEnvelope) -> String {
    let described: Vec<String> = envelope
        .errors
        .iter()
        .map(|error| {
            let code = match serde_json::to_value(&error.code) {
                Ok(serde_json::Value::String(code)) => code,
                _ => format!("{:?}", error.code),
            };
            format!("{code}: {}", error.message)
        })
        .collect();

    if described.is_empty() { "an error without details".to_string() } else { described.join("; ") }
}

fn chain_has_io_kind(error: &(dyn std::error::Error + 'static), kind: std::io::ErrorKind) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == kind) {
            return true;
        }
        current = error.source();
    }
    false
}

/// Returns the message of the last error in the source chain, which names the cause
/// (`Connection refused`, `invalid peer certificate: UnknownIssuer`) where
/// the outer ones only report that a request failed.
fn innermost_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// Returns `true` if a connection failure came from the TLS handshake.
///
/// kuul does not depend on rustls directly, so it cannot downcast to
/// rustls's error type, and this matches the wording of rustls 0.23 errors, such as `received
/// corrupt message of type InvalidContentType` when the server speaks plain
/// HTTP and `invalid peer certificate` for an untrusted certificate.
fn looks_like_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    const TLS_WORDS: [&str; 4] = ["certificate", "tls", "handshake", "corrupt message"];

    let mut current = Some(error);
    while let Some(error) = current {
        let message = error.to_string().to_ascii_lowercase();
        if TLS_WORDS.iter().any(|word| message.contains(word)) {
            return true;
        }
        current = error.source();
    }
    false
}
