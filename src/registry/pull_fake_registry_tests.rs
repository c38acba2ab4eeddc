//! Pulls against a fake registry that records every request, to check what
//! kuul sends and what it keeps: token requests, retries, progress, the
//! cache.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::image::{CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::registry::fake_registry::{FakeRegistry, Recorded, Reply, respond, respond_with};
use crate::report::SilentReporter;

const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
const FIRST_LAYER: &str = "first layer bytes";
const SECOND_LAYER: &str = "second layer, a little longer than the first";

/// Replies like a registry that stores `base:1`, an image manifest with
/// [`CONFIG`] and the two layers.
fn registry_reply(request: &Recorded) -> Reply {
    layered_registry_reply(request, &[FIRST_LAYER, SECOND_LAYER])
}

/// Replies like a registry that stores `base:1`, an image manifest with
/// [`CONFIG`] and `layers`.
fn layered_registry_reply(request: &Recorded, layers: &[impl AsRef<str>]) -> Reply {
    if request.method != "GET" {
        return respond("405 Method Not Allowed");
    }

    let blob = [CONFIG]
        .into_iter()
        .chain(layers.iter().map(AsRef::as_ref))
        .find(|content| request.target == format!("/v2/base/blobs/{}", sha256_digest(content.as_bytes())));
    match request.target.as_str() {
        "/v2/" => respond("200 OK"),
        "/v2/base/manifests/1" => Reply::Respond {
            status: "200 OK",
            headers: vec![("Content-Type".to_string(), MANIFEST_MEDIA_TYPE.to_string())],
            body: manifest_with_layers(layers),
        },
        _ => match blob {
            Some(content) => Reply::Respond { status: "200 OK", headers: Vec::new(), body: content.to_string() },
            None => respond("404 Not Found"),
        },
    }
}

fn manifest_json() -> String {
    manifest_with_layers(&[FIRST_LAYER, SECOND_LAYER])
}

fn manifest_with_layers(layers: &[impl AsRef<str>]) -> String {
    let descriptor = |media_type: &str, content: &str| json!({"mediaType": media_type, "digest": sha256_digest(content.as_bytes()), "size": content.len()});
    let layers: Vec<serde_json::Value> =
        layers.iter().map(|layer| descriptor("application/vnd.oci.image.layer.v1.tar", layer.as_ref())).collect();
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(CONFIG_MEDIA_TYPE, CONFIG),
        "layers": layers,
    })
    .to_string()
}

/// Replies like [`registry_reply`] behind a token service at `/token`,
/// which hands out `token-1`, `token-2` and so on. The registry accepts
/// only the latest token.
fn token_registry_reply(request: &Recorded, earlier: &[Recorded], address: &str) -> Reply {
    let issued = earlier.iter().filter(|request| request.target.starts_with("/token")).count();
    if request.target.starts_with("/token") {
        let body = format!(r#"{{"token":"token-{}"}}"#, issued + 1);
        return Reply::Respond { status: "200 OK", headers: Vec::new(), body };
    }

    let expected = format!("Bearer token-{issued}");
    if issued == 0 || request.authorization.as_deref() != Some(expected.as_str()) {
        return unauthorized(address);
    }
    registry_reply(request)
}

fn unauthorized(address: &str) -> Reply {
    let challenge = format!(r#"Bearer realm="http://{address}/token",service="fake-registry""#);
    respond_with("401 Unauthorized", &[("WWW-Authenticate", challenge)])
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_tries: 3,
        first_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
        max_elapsed: Duration::from_secs(30),
    }
}

fn blob_path(cache: &Path, content: &str) -> PathBuf {
    let digest = sha256_digest(content.as_bytes());
    cache.join("blobs").join("sha256").join(digest.trim_start_matches("sha256:"))
}

async fn pull_from(registry: &FakeRegistry, cache: &Path, reporter: &dyn Reporter) -> Result<PulledBase, PullError> {
    let reference = BaseReference {
        registry: registry.address.clone(),
        repository: "base".to_string(),
        tag: Some("1".to_string()),
        digest: None,
    };
    let options = PullOptions {
        insecure_registries: Vec::new(),
        docker_config_dir: Some(cache.join("no-docker-config")),
        cache_dir: cache.to_path_buf(),
    };

    pull_base_with_policy(&reference, &Platform::linux("amd64"), &options, reporter, &fast_policy()).await
}

/// Records the transfer events.
#[derive(Default)]
struct TransferReporter {
    started: Mutex<Vec<u64>>,
    progressed: Mutex<u64>,
    finished: Mutex<usize>,
}

impl Reporter for TransferReporter {
    fn transfer_started(&self, _label: &str, total_bytes: u64) {
        self.started.lock().unwrap().push(total_bytes);
    }

    fn transfer_progressed(&self, bytes: u64) {
        *self.progressed.lock().unwrap() += bytes;
    }

    fn transfer_finished(&self) {
        *self.finished.lock().unwrap() += 1;
    }
}

#[tokio::test]
async fn pull_caches_verified_layers() {
    let registry = FakeRegistry::start(|request, _earlier, _address| registry_reply(request));
    let cache = tempfile::tempdir().unwrap();

    let pulled = pull_from(&registry, cache.path(), &SilentReporter).await.unwrap();

    let expected_paths = vec![blob_path(cache.path(), FIRST_LAYER), blob_path(cache.path(), SECOND_LAYER)];
    assert_eq!(pulled.layer_paths, expected_paths);
    assert_eq!(std::fs::read_to_string(&expected_paths[0]).unwrap(), FIRST_LAYER);
    assert_eq!(std::fs::read_to_string(&expected_paths[1]).unwrap(), SECOND_LAYER);
    assert_eq!(pulled.config, CONFIG.as_bytes());
    assert_eq!(pulled.digest, sha256_digest(manifest_json().as_bytes()));
}

#[tokio::test]
async fn pull_token_has_pull_scope() {
    let registry = FakeRegistry::start(token_registry_reply);
    let cache = tempfile::tempdir().unwrap();

    pull_from(&registry, cache.path(), &SilentReporter).await.unwrap();

    let requests = registry.requests();
    let token_requests: Vec<&Recorded> = requests.iter().filter(|r| r.target.starts_with("/token")).collect();
    assert_eq!(token_requests.len(), 1, "{requests:#?}");
    assert!(token_requests[0].target.contains("scope=repository%3Abase%3Apull&"), "{}", token_requests[0].target);
    assert!(!token_requests[0].target.contains("push"), "{}", token_requests[0].target);
    assert!(token_requests[0].target.contains("service=fake-registry"), "{}", token_requests[0].target);
}

#[tokio::test]
async fn pull_token_sent_with_every_request() {
    let registry = FakeRegistry::start(token_registry_reply);
    let cache = tempfile::tempdir().unwrap();

    pull_from(&registry, cache.path(), &SilentReporter).await.unwrap();

    let requests = registry.requests();
    let after_token: Vec<&Recorded> = requests.iter().skip_while(|r| !r.target.starts_with("/token")).skip(1).collect();
    assert_eq!(after_token.len(), 4, "{requests:#?}");
    for request in after_token {
        assert_eq!(request.authorization.as_deref(), Some("Bearer token-1"), "{request:?}");
    }
}

#[tokio::test]
async fn expired_pull_token_renewed_once() {
    // The registry revokes the first token once the manifest is out, so the
    // config request gets a 401 and kuul must fetch one new token.
    let registry = FakeRegistry::start(|request, earlier, address| {
        let manifest_sent = earlier.iter().any(|r| r.target.starts_with("/v2/base/manifests/"));
        let tokens = earlier.iter().filter(|r| r.target.starts_with("/token")).count();
        if request.target.starts_with("/v2/base/blobs/") && manifest_sent && tokens == 1 {
            return unauthorized(address);
        }
        token_registry_reply(request, earlier, address)
    });
    let cache = tempfile::tempdir().unwrap();

    pull_from(&registry, cache.path(), &SilentReporter).await.unwrap();

    assert_eq!(registry.count("GET", "/token"), 2);
    let blob_requests: Vec<Recorded> =
        registry.requests().into_iter().filter(|r| r.target.starts_with("/v2/base/blobs/")).collect();
    assert_eq!(blob_requests.len(), 4, "{blob_requests:#?}");
    assert_eq!(blob_requests[1].authorization.as_deref(), Some("Bearer token-2"));
}

#[tokio::test]
async fn rejected_new_pull_token_fails() {
    let registry = FakeRegistry::start(|request, earlier, address| {
        if request.target.starts_with("/v2/base/manifests/") {
            return unauthorized(address);
        }
        token_registry_reply(request, earlier, address)
    });
    let cache = tempfile::tempdir().unwrap();

    let error = pull_from(&registry, cache.path(), &SilentReporter).await.unwrap_err();

    assert!(matches!(error, PullError::Registry(RegistryError::CredentialsMissing { .. })), "{error}");
    assert_eq!(registry.count("GET", "/v2/base/manifests/"), 2);
    assert_eq!(registry.count("GET", "/token"), 2);
}

#[tokio::test]
async fn pull_retry_after_honoured() {
    let registry = FakeRegistry::start(|request, earlier, _address| {
        let first_manifest = request.target.starts_with("/v2/base/manifests/")
            && !earlier.iter().any(|r| r.target.starts_with("/v2/base/manifests/"));
        if first_manifest {
            return respond_with("429 Too Many Requests", &[("Retry-After", "1".to_string())]);
        }
        registry_reply(request)
    });
    let cache = tempfile::tempdir().unwrap();

    pull_from(&registry, cache.path(), &SilentReporter).await.unwrap();

    let requests = registry.requests();
    let manifests: Vec<&Recorded> = requests.iter().filter(|r| r.target.starts_with("/v2/base/manifests/")).collect();
    assert_eq!(manifests.len(), 2, "{requests:#?}");
    let waited = manifests[1].at - manifests[0].at;
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
}

#[tokio::test]
async fn pull_server_error_retried_then_reported() {
    let second_layer = format!("/v2/base/blobs/{}", sha256_digest(SECOND_LAYER.as_bytes()));
    let failing = second_layer.clone();
    let registry = FakeRegistry::start(move |request, _earlier, _address| {
        if request.target == failing {
            return respond("502 Bad Gateway");
        }
        registry_reply(request)
    });
    let cache = tempfile::tempdir().unwrap();

    let error = pull_from(&registry, cache.path(), &SilentReporter).await.unwrap_err();

    assert!(matches!(error, PullError::Registry(RegistryError::ServerError { status: 502, .. })), "{error}");
    assert_eq!(registry.count("GET", &second_layer), 3);
    assert!(!blob_path(cache.path(), SECOND_LAYER).exists());
}

#[tokio::test]
async fn pull_server_error_recovers_on_retry() {
    let second_layer = format!("/v2/base/blobs/{}", sha256_digest(SECOND_LAYER.as_bytes()));
    let failing = second_layer.clone();
    let registry = FakeRegistry::start(move |request, earlier, _address| {
        if request.target == failing && !earlier.iter().any(|r| r.target == failing) {
            return respond("503 Service Unavailable");
        }
        registry_reply(request)
    });
    let cache = tempfile::tempdir().unwrap();

    pull_from(&registry, cache.path(), &SilentReporter).await.unwrap();

    assert_eq!(registry.count("GET", &second_layer), 2);
    assert_eq!(std::fs::read_to_string(blob_path(cache.path(), SECOND_LAYER)).unwrap(), SECOND_LAYER);
}

#[tokio::test]
async fn corrupt_layer_rejected_and_not_cached() {
    let first_layer = format!("/v2/base/blobs/{}", sha256_digest(FIRST_LAYER.as_bytes()));
    let registry = FakeRegistry::start(move |request, _earlier, _address| {
        if request.target == first_layer {
            // The same size as the layer, with other bytes.
            let body = "X".repeat(FIRST_LAYER.len());
            return Reply::Respond { status: "200 OK", headers: Vec::new(), body };
        }
        registry_reply(request)
    });
    let cache = tempfile::tempdir().unwrap();

    let error = pull_from(&registry, cache.path(), &SilentReporter).await.unwrap_err();

    let expected_digest = sha256_digest(FIRST_LAYER.as_bytes());
    assert!(
        matches!(&error, PullError::Base(BaseError::DownloadDigestMismatch { what: "layer", digest, .. }) if *digest == expected_digest),
        "{error}"
    );
    assert!(!blob_path(cache.path(), FIRST_LAYER).exists());
    let leftovers: Vec<_> = std::fs::read_dir(cache.path().join("blobs").join("sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains(".part-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn oversized_layer_rejected_and_not_cached() {
    let first_layer = format!("/v2/base/blobs/{}", sha256_digest(FIRST_LAYER.as_bytes()));
    let registry = FakeRegistry::start(move |request, _earlier, _address| {
        if request.target == first_layer {
            let body = format!("{FIRST_LAYER} and more");
            return Reply::Respond { status: "200 OK", headers: Vec::new(), body };
        }
        registry_reply(request)
    });
    let cache = tempfile::tempdir().unwrap();

    let error = pull_from(&registry, cache.path(), &SilentReporter).await.unwrap_err();

    assert!(matches!(error, PullError::Base(BaseError::DownloadDigestMismatch { what: "layer", .. })), "{error}");
    assert!(!blob_path(cache.path(), FIRST_LAYER).exists());
}

#[tokio::test]
async fn layer_download_reports_progress() {
    let registry = FakeRegistry::start(|request, _earlier, _address| registry_reply(request));
    let cache = tempfile::tempdir().unwrap();
    let reporter = TransferReporter::default();

    pull_from(&registry, cache.path(), &reporter).await.unwrap();

    let total = (FIRST_LAYER.len() + SECOND_LAYER.len()) as u64;
    assert_eq!(*reporter.started.lock().unwrap(), vec![total]);
    assert_eq!(*reporter.progressed.lock().unwrap(), total);
    assert_eq!(*reporter.finished.lock().unwrap(), 1);
}

#[tokio::test]
async fn retried_layer_progress_counted_once() {
    // The first response of the second layer ends after 20 of its bytes, so
    // the bytes of the failed try must not count twice.
    let second_layer = format!("/v2/base/blobs/{}", sha256_digest(SECOND_LAYER.as_bytes()));
    let registry = FakeRegistry::start(move |request, earlier, _address| {
        if request.target == second_layer && !earlier.iter().any(|r| r.target == second_layer) {
            return Reply::Truncated { content_length: SECOND_LAYER.len(), body: SECOND_LAYER[..20].to_string() };
        }
        registry_reply(request)
    });
    let cache = tempfile::tempdir().unwrap();
    let reporter = TransferReporter::default();

    pull_from(&registry, cache.path(), &reporter).await.unwrap();

    let total = (FIRST_LAYER.len() + SECOND_LAYER.len()) as u64;
    assert_eq!(*reporter.progressed.lock().unwrap(), total);
    assert_eq!(std::fs::read_to_string(blob_path(cache.path(), SECOND_LAYER)).unwrap(), SECOND_LAYER);
}

#[tokio::test]
async fn cached_layers_not_downloaded_again() {
    let registry = FakeRegistry::start(|request, _earlier, _address| registry_reply(request));
    let cache = tempfile::tempdir().unwrap();
    pull_from(&registry, cache.path(), &SilentReporter).await.unwrap();
    let reporter = TransferReporter::default();

    pull_from(&registry, cache.path(), &reporter).await.unwrap();

    assert_eq!(registry.count("GET", &format!("/v2/base/blobs/{}", sha256_digest(FIRST_LAYER.as_bytes()))), 1);
    assert_eq!(registry.count("GET", &format!("/v2/base/blobs/{}", sha256_digest(SECOND_LAYER.as_bytes()))), 1);
    assert!(reporter.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn layer_downloads_bounded_in_parallel() {
    // Eight layers, each served slowly enough that the downloads overlap.
    let layers: Vec<String> = (1..=8).map(|number| format!("layer {number} bytes")).collect();
    let served = layers.clone();
    let registry = FakeRegistry::start(move |request, _earlier, _address| {
        let reply = layered_registry_reply(request, &served);
        if request.target.starts_with("/v2/base/blobs/") {
            return Reply::Delayed(Duration::from_millis(200), Box::new(reply));
        }
        reply
    });
    let cache = tempfile::tempdir().unwrap();

    let pulled = pull_from(&registry, cache.path(), &SilentReporter).await.unwrap();

    assert_eq!(pulled.layer_paths.len(), layers.len());
    assert_eq!(registry.max_in_flight("GET", "/v2/base/blobs/"), PARALLEL_DOWNLOADS);
}
