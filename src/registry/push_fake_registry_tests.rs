//! Pushes against a fake registry that records every request, to check
//! what kuul sends: token requests, retries, restarted uploads.

use std::time::Duration;

use super::tests::{descriptor_for, small_image};
use super::*;
use crate::image::BuiltLayer;
use crate::image::base::manifest::Platform;
use crate::image::index::PlatformImage;
use crate::registry::fake_registry::{FakeRegistry, Recorded, Reply, respond, respond_with};
use crate::report::SilentReporter;

/// Replies like a registry that stores nothing yet: blobs are missing,
/// uploads and manifest PUTs succeed.
fn registry_reply(request: &Recorded) -> Reply {
    match (request.method.as_str(), request.target.as_str()) {
        ("GET", "/v2/") => respond("200 OK"),
        ("HEAD", _) => respond("404 Not Found"),
        ("POST", _) => respond_with("202 Accepted", &[("Location", "/v2/backup/blobs/uploads/session".to_string())]),
        ("PUT", _) => respond("201 Created"),
        _ => respond("400 Bad Request"),
    }
}

/// Replies like a registry behind a token service at `/token`, which hands
/// out `token-1`, `token-2` and so on. The registry accepts only the
/// latest token.
fn token_registry_reply(request: &Recorded, earlier: &[Recorded], address: &str) -> Reply {
    let issued = earlier.iter().filter(|request| request.target.starts_with("/token")).count();
    if request.target.starts_with("/token") {
        let body = format!(r#"{{"token":"token-{}"}}"#, issued + 1);
        return Reply::Respond { status: "200 OK", headers: Vec::new(), body };
    }

    let challenge = format!(r#"Bearer realm="http://{address}/token",service="fake-registry""#);
    let expected = format!("Bearer token-{issued}");
    if issued == 0 || request.authorization.as_deref() != Some(expected.as_str()) {
        return respond_with("401 Unauthorized", &[("WWW-Authenticate", challenge)]);
    }
    registry_reply(request)
}

/// The identity token in the Docker config of the OAuth2 tests.
const IDENTITY_TOKEN: &str = "identity-token-secret";

/// The access token that the fake token service returns for
/// [`IDENTITY_TOKEN`].
const ACCESS_TOKEN: &str = "access-token-from-refresh";

/// Replies like a registry behind an OAuth2 token service at `/token`,
/// which exchanges the refresh token [`IDENTITY_TOKEN`] for
/// [`ACCESS_TOKEN`]. The registry accepts only that access token.
fn oauth_registry_reply(request: &Recorded, address: &str) -> Reply {
    if request.target.starts_with("/token") {
        let refresh_token = form_fields(&request.body).into_iter().find(|(name, _)| name == "refresh_token");
        if refresh_token.is_some_and(|(_, value)| value == IDENTITY_TOKEN) {
            let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":300,"scope":""}}"#);
            return Reply::Respond { status: "200 OK", headers: Vec::new(), body };
        }
        return respond("401 Unauthorized");
    }

    if request.authorization.as_deref() != Some(format!("Bearer {ACCESS_TOKEN}").as_str()) {
        let challenge = format!(r#"Bearer realm="http://{address}/token",service="fake-registry""#);
        return respond_with("401 Unauthorized", &[("WWW-Authenticate", challenge)]);
    }
    registry_reply(request)
}

/// Decodes an `application/x-www-form-urlencoded` body into sorted pairs.
fn form_fields(body: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://127.0.0.1/?{body}")).unwrap();
    let mut fields: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    fields.sort();
    fields
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_tries: 3,
        first_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
        max_elapsed: Duration::from_secs(30),
    }
}

async fn push_to(registry: &FakeRegistry) -> Result<PushOutcome, RegistryError> {
    push_with_docker_config(registry, None).await
}

/// Pushes a small image to `registry`, with `docker_config` as the
/// contents of the Docker `config.json`, or with no config file.
async fn push_with_docker_config(
    registry: &FakeRegistry,
    docker_config: Option<serde_json::Value>,
) -> Result<PushOutcome, RegistryError> {
    let layout = tempfile::tempdir().unwrap();
    let image = small_image(layout.path());
    let target = Target::from_prefix(&registry.address, "backup", "latest").unwrap();
    let config_dir = layout.path().join("docker-config");
    if let Some(config) = docker_config {
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::write(config_dir.join("config.json"), config.to_string()).unwrap();
    }
    let options =
        PushOptions { insecure_registries: Vec::new(), docker_config_dir: Some(config_dir), mount_from: None };

    push_with_policy(layout.path(), &image, &target, &options, &SilentReporter, &fast_policy()).await
}

#[tokio::test]
async fn token_request_sends_scope_and_service() {
    let registry = FakeRegistry::start(token_registry_reply);

    push_to(&registry).await.unwrap();

    let requests = registry.requests();
    let token_requests: Vec<&Recorded> = requests.iter().filter(|r| r.target.starts_with("/token")).collect();
    assert_eq!(token_requests.len(), 1, "{requests:#?}");
    assert!(
        token_requests[0].target.contains("scope=repository%3Abackup%3Apull%2Cpush"),
        "{}",
        token_requests[0].target
    );
    assert!(token_requests[0].target.contains("service=fake-registry"), "{}", token_requests[0].target);
}

#[tokio::test]
async fn cached_token_sent_with_every_request() {
    let registry = FakeRegistry::start(token_registry_reply);

    push_to(&registry).await.unwrap();

    let requests = registry.requests();
    let after_token = requests.iter().skip_while(|r| !r.target.starts_with("/token")).skip(1);
    for request in after_token {
        assert_eq!(request.authorization.as_deref(), Some("Bearer token-1"), "{request:?}");
    }
    assert_eq!(registry.count("PUT", "/v2/backup/manifests/latest"), 1);
}

#[tokio::test]
async fn identity_token_exchanged_for_access_token() {
    let registry = FakeRegistry::start(|request, _earlier, address| oauth_registry_reply(request, address));
    let config = serde_json::json!({ "auths": { registry.address.clone(): { "identitytoken": IDENTITY_TOKEN } } });

    push_with_docker_config(&registry, Some(config)).await.unwrap();

    let requests = registry.requests();
    let token_requests: Vec<&Recorded> = requests.iter().filter(|r| r.target.starts_with("/token")).collect();
    assert_eq!(token_requests.len(), 1, "{requests:#?}");
    let token_request = token_requests[0];
    assert_eq!(token_request.method, "POST");
    assert_eq!(token_request.target, "/token");
    assert_eq!(token_request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(token_request.authorization, None, "an OAuth2 refresh request needs no Authorization header");
    let expected_fields: Vec<(String, String)> = [
        ("client_id", "kuul"),
        ("grant_type", "refresh_token"),
        ("refresh_token", IDENTITY_TOKEN),
        ("scope", "repository:backup:pull,push"),
        ("service", "fake-registry"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    assert_eq!(form_fields(&token_request.body), expected_fields);
}

#[tokio::test]
async fn identity_token_falls_back_to_get() {
    // A token service that serves only the GET of the Docker token protocol.
    let registry = FakeRegistry::start(|request, _earlier, address| {
        if request.target.starts_with("/token") {
            if request.method == "POST" {
                return respond("404 Not Found");
            }
            let body = format!(r#"{{"token":"{ACCESS_TOKEN}"}}"#);
            return Reply::Respond { status: "200 OK", headers: Vec::new(), body };
        }
        oauth_registry_reply(request, address)
    });
    let config = serde_json::json!({ "auths": { registry.address.clone(): { "identitytoken": IDENTITY_TOKEN } } });

    push_with_docker_config(&registry, Some(config)).await.unwrap();

    let requests = registry.requests();
    let token_requests: Vec<&Recorded> = requests.iter().filter(|r| r.target.starts_with("/token")).collect();
    assert_eq!(token_requests.len(), 2, "{requests:#?}");
    assert_eq!(token_requests[1].method, "GET");
    assert_eq!(token_requests[1].authorization, None);
    assert!(!token_requests[1].target.contains(IDENTITY_TOKEN), "{}", token_requests[1].target);
    assert_eq!(registry.count("PUT", "/v2/backup/manifests/latest"), 1);
}

#[tokio::test]
async fn access_token_sent_to_registry() {
    let registry = FakeRegistry::start(|request, _earlier, address| oauth_registry_reply(request, address));
    let config = serde_json::json!({ "auths": { registry.address.clone(): { "identitytoken": IDENTITY_TOKEN } } });

    push_with_docker_config(&registry, Some(config)).await.unwrap();

    let requests = registry.requests();
    let after_token = requests.iter().skip_while(|r| !r.target.starts_with("/token")).skip(1);
    let expected = format!("Bearer {ACCESS_TOKEN}");
    for request in after_token {
        assert_eq!(request.authorization.as_deref(), Some(expected.as_str()), "{request:?}");
    }
    assert_eq!(registry.count("PUT", "/v2/backup/manifests/latest"), 1);
    let leaked = requests.iter().filter(|r| r.authorization.as_deref().is_some_and(|a| a.contains(IDENTITY_TOKEN)));
    assert_eq!(leaked.count(), 0, "the identity token went to the registry in a header");
}

#[tokio::test]
async fn expired_token_renewed_once() {
    // The registry revokes the first token once the blobs are in, so the
    // manifest PUT gets a 401 and kuul must fetch one new token.
    let registry = FakeRegistry::start(|request, earlier, address| {
        let blob_puts = earlier.iter().filter(|r| r.method == "PUT" && r.target.contains("uploads")).count();
        let tokens = earlier.iter().filter(|r| r.target.starts_with("/token")).count();
        if request.target.starts_with("/v2/backup/manifests/") && blob_puts == 2 && tokens == 1 {
            let challenge = format!(r#"Bearer realm="http://{address}/token",service="fake-registry""#);
            return respond_with("401 Unauthorized", &[("WWW-Authenticate", challenge)]);
        }
        token_registry_reply(request, earlier, address)
    });

    push_to(&registry).await.unwrap();

    assert_eq!(registry.count("GET", "/token"), 2);
    let manifest_puts: Vec<Recorded> =
        registry.requests().into_iter().filter(|r| r.target.starts_with("/v2/backup/manifests/")).collect();
    assert_eq!(manifest_puts.len(), 2);
    assert_eq!(manifest_puts[1].authorization.as_deref(), Some("Bearer token-2"));
}

#[tokio::test]
async fn rejected_new_token_not_renewed_again() {
    let registry = FakeRegistry::start(|request, earlier, address| {
        if request.method == "HEAD" {
            let challenge = format!(r#"Bearer realm="http://{address}/token",service="fake-registry""#);
            return respond_with("401 Unauthorized", &[("WWW-Authenticate", challenge)]);
        }
        token_registry_reply(request, earlier, address)
    });

    let error = push_to(&registry).await.unwrap_err();

    assert!(matches!(error, RegistryError::CredentialsMissing { .. }), "{error}");
    // Each blob check sends its request, fetches one new token after the
    // 401 and sends once more. The first check that fails ends the push and
    // may cancel the other one before its re-auth.
    let requests = registry.requests();
    let heads: Vec<&Recorded> = requests.iter().filter(|r| r.method == "HEAD").collect();
    for head in &heads {
        let sends = heads.iter().filter(|other| other.target == head.target).count();
        assert!(sends <= 2, "{heads:#?}");
    }
    assert!(registry.count("GET", "/token") <= 3, "{requests:#?}");
}

#[tokio::test]
async fn retry_after_seconds_honoured() {
    let registry = FakeRegistry::start(|request, earlier, _address| {
        let first_head = request.method == "HEAD" && !earlier.iter().any(|r| r.method == "HEAD");
        if first_head {
            return respond_with("429 Too Many Requests", &[("Retry-After", "1".to_string())]);
        }
        registry_reply(request)
    });

    push_to(&registry).await.unwrap();

    let requests = registry.requests();
    let first_head = requests.iter().find(|r| r.method == "HEAD").unwrap();
    let retried = requests.iter().filter(|r| r.target == first_head.target && r.method == "HEAD").nth(1).unwrap();
    let waited = retried.at - first_head.at;
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
}

#[tokio::test]
async fn server_error_given_up_with_status() {
    let registry = FakeRegistry::start(|request, _earlier, _address| match request.method.as_str() {
        "HEAD" => respond("502 Bad Gateway"),
        _ => registry_reply(request),
    });

    let error = push_to(&registry).await.unwrap_err();

    assert!(matches!(error, RegistryError::ServerError { status: 502, .. }), "{error}");
    // The first blob check that gives up ends the push and cancels the
    // other, so only the failed check has all three tries.
    let requests = registry.requests();
    let heads: Vec<&Recorded> = requests.iter().filter(|r| r.method == "HEAD").collect();
    let max_tries_per_blob =
        heads.iter().map(|head| heads.iter().filter(|other| other.target == head.target).count()).max();
    assert_eq!(max_tries_per_blob, Some(3), "{heads:#?}");
}

#[tokio::test]
async fn dropped_upload_restarted_in_new_session() {
    let registry = FakeRegistry::start(|request, earlier, _address| {
        let first_blob_put =
            request.method == "PUT" && request.target.contains("uploads") && !earlier.iter().any(|r| r.method == "PUT");
        if first_blob_put {
            return Reply::Drop;
        }
        registry_reply(request)
    });

    let outcome = push_to(&registry).await.unwrap();

    assert_eq!(outcome.blobs_uploaded, 2);
    assert_eq!(registry.count("POST", "/v2/backup/blobs/uploads/"), 3);
    assert_eq!(registry.count("PUT", "/v2/backup/blobs/uploads/"), 3);
    assert_eq!(registry.count("PUT", "/v2/backup/manifests/"), 1);
}

#[tokio::test]
async fn failed_blob_prevents_manifest_put() {
    let registry = FakeRegistry::start(|request, _earlier, _address| {
        if request.method == "PUT" && request.target.contains("uploads") {
            return respond("503 Service Unavailable");
        }
        registry_reply(request)
    });

    let error = push_to(&registry).await.unwrap_err();

    assert!(matches!(error, RegistryError::ServerError { status: 503, .. }), "{error}");
    assert_eq!(registry.count("PUT", "/v2/backup/manifests/"), 0);
}

/// Writes a layout with two platform images that share their one layer,
/// and an index over them. The contents need not be valid JSON or tar,
/// because the fake registry never reads them.
fn two_platform_index(layout: &Path) -> BuiltIndex {
    let layer = descriptor_for(layout, "application/vnd.oci.image.layer.v1.tar+gzip", b"shared layer");
    let image = |architecture: &str| {
        let config = format!("{{\"architecture\":\"{architecture}\"}}");
        let manifest = format!("{{\"manifest\":\"{architecture}\"}}");
        BuiltImage {
            manifest: descriptor_for(layout, "application/vnd.oci.image.manifest.v1+json", manifest.as_bytes()),
            config: descriptor_for(layout, "application/vnd.oci.image.config.v1+json", config.as_bytes()),
            layers: vec![BuiltLayer {
                descriptor: layer.clone(),
                diff_id: layer.digest.clone(),
                description: "job files".to_string(),
                entries: 1,
            }],
        }
    };
    let images = vec![
        PlatformImage { platform: Platform::linux("amd64"), image: image("amd64") },
        PlatformImage { platform: Platform::linux("arm64"), image: image("arm64") },
    ];
    let descriptor = descriptor_for(layout, "application/vnd.oci.image.index.v1+json", b"{\"index\":2}");

    BuiltIndex { descriptor, images }
}

async fn push_index_to(registry: &FakeRegistry) -> (Result<PushOutcome, RegistryError>, BuiltIndex) {
    let layout = tempfile::tempdir().unwrap();
    let index = two_platform_index(layout.path());
    let target = Target::from_prefix(&registry.address, "backup", "latest").unwrap();
    let options = PushOptions {
        insecure_registries: Vec::new(),
        docker_config_dir: Some(layout.path().join("no-docker-config")),
        mount_from: None,
    };

    let result =
        push_index_with_policy(layout.path(), &index, &target, &options, &SilentReporter, &fast_policy()).await;
    (result, index)
}

#[tokio::test]
async fn index_pushed_after_platform_manifests() {
    let registry = FakeRegistry::start(token_registry_reply);

    let (result, index) = push_index_to(&registry).await;

    let outcome = result.unwrap();
    let manifest_puts: Vec<String> = registry
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.target.starts_with("/v2/backup/manifests/"))
        .map(|r| r.target)
        .collect();
    let expected: Vec<String> = [&index.images[0].image.manifest.digest, &index.images[1].image.manifest.digest]
        .iter()
        .map(|digest| format!("/v2/backup/manifests/{digest}"))
        .chain(["/v2/backup/manifests/latest".to_string()])
        .collect();
    assert_eq!(manifest_puts, expected);
    assert_eq!(outcome.digest, index.descriptor.digest);
    assert_eq!(registry.count("GET", "/token"), 1);
}

#[tokio::test]
async fn index_push_uploads_shared_blob_once() {
    let registry = FakeRegistry::start(|request, _earlier, _address| registry_reply(request));

    let (result, _index) = push_index_to(&registry).await;

    let outcome = result.unwrap();
    assert_eq!(outcome.blobs_uploaded, 3);
    assert_eq!(registry.count("HEAD", "/v2/backup/blobs/"), 3);
    assert_eq!(registry.count("PUT", "/v2/backup/blobs/uploads/"), 3);
}

#[tokio::test]
async fn failed_blob_prevents_index_put() {
    let registry = FakeRegistry::start(|request, _earlier, _address| {
        if request.method == "PUT" && request.target.contains("uploads") {
            return respond("503 Service Unavailable");
        }
        registry_reply(request)
    });

    let (result, _index) = push_index_to(&registry).await;

    let error = result.unwrap_err();
    assert!(matches!(error, RegistryError::ServerError { status: 503, .. }), "{error}");
    assert_eq!(registry.count("PUT", "/v2/backup/manifests/"), 0);
}

#[tokio::test]
async fn failed_platform_manifest_keeps_tag() {
    let registry = FakeRegistry::start(|request, _earlier, _address| {
        let platform_manifest = request.target.starts_with("/v2/backup/manifests/sha256:");
        if request.method == "PUT" && platform_manifest {
            return respond("503 Service Unavailable");
        }
        registry_reply(request)
    });

    let (result, _index) = push_index_to(&registry).await;

    let error = result.unwrap_err();
    assert!(matches!(error, RegistryError::ServerError { status: 503, .. }), "{error}");
    assert_eq!(registry.count("PUT", "/v2/backup/manifests/latest"), 0);
}

/// Writes a layout with seven layers and a config, eight blobs in all. The
/// contents need not be valid tar or JSON, because the fake registry never
/// reads them.
fn eight_blob_image(layout: &Path) -> BuiltImage {
    let layers = (1..=7)
        .map(|number| {
            let content = format!("layer {number} bytes");
            let descriptor = descriptor_for(layout, "application/vnd.oci.image.layer.v1.tar+gzip", content.as_bytes());
            BuiltLayer {
                diff_id: descriptor.digest.clone(),
                descriptor,
                description: format!("layer {number}"),
                entries: 1,
            }
        })
        .collect();

    BuiltImage {
        manifest: descriptor_for(layout, "application/vnd.oci.image.manifest.v1+json", b"{\"layers\":7}"),
        config: descriptor_for(layout, "application/vnd.oci.image.config.v1+json", b"{}"),
        layers,
    }
}

#[tokio::test]
async fn blob_transfers_bounded_in_parallel() {
    // Blob checks and upload PUTs are served slowly enough that they
    // overlap.
    let registry = FakeRegistry::start(|request, _earlier, _address| {
        let reply = registry_reply(request);
        let slow = request.method == "HEAD" || (request.method == "PUT" && request.target.contains("/blobs/uploads/"));
        if slow {
            return Reply::Delayed(Duration::from_millis(150), Box::new(reply));
        }
        reply
    });
    let layout = tempfile::tempdir().unwrap();
    let image = eight_blob_image(layout.path());
    let target = Target::from_prefix(&registry.address, "backup", "latest").unwrap();
    let options = PushOptions {
        insecure_registries: Vec::new(),
        docker_config_dir: Some(layout.path().join("no-docker-config")),
        mount_from: None,
    };

    let outcome =
        push_with_policy(layout.path(), &image, &target, &options, &SilentReporter, &fast_policy()).await.unwrap();

    assert_eq!(outcome.blobs_uploaded, 8);
    assert_eq!(registry.max_in_flight("HEAD", "/v2/backup/blobs/"), PARALLEL_UPLOADS);
    assert_eq!(registry.max_in_flight("PUT", "/v2/backup/blobs/uploads/"), PARALLEL_UPLOADS);
}
