//! Pushes and pulls with credentials against a fake registry and token
//! service that fail in several ways and echo the `Authorization` header
//! and the request body in their error bodies. No secret may reach the
//! error's text or its `Debug` output.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::fake_registry::{FakeRegistry, Recorded, Reply, respond, respond_with};
use super::pull::{PullError, PullOptions, pull_base_with_policy};
use super::push::{PushOptions, push_with_policy};
use super::retry::RetryPolicy;
use super::{BaseReference, RegistryError, Target};
use crate::image::base::manifest::Platform;
use crate::image::{BuiltImage, BuiltLayer, Descriptor};
use crate::report::SilentReporter;

const USERNAME: &str = "kuul";

// The secrets contain characters that form encoding changes, so that an
// echoed form body shows them in another spelling.
const PASSWORD: &str = "password-secret/+=";
const IDENTITY_TOKEN: &str = "identity-token-secret/+=";
const BEARER_TOKEN: &str = "bearer-token-secret";

/// The authentication scheme that the fake registry's challenge names.
#[derive(Clone, Copy, Debug)]
enum Scheme {
    Basic,
    Bearer,
}

/// The credential in the Docker config.
#[derive(Clone, Copy, Debug)]
enum Login {
    Password,
    IdentityToken,
}

/// The request that fails.
#[derive(Clone, Copy, Debug)]
enum FailingRequest {
    TokenService,
    UploadStart,
    ManifestGet,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    scheme: Scheme,
    login: Login,
    failing: FailingRequest,
    status: &'static str,
}

fn basic_header() -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"));
    format!("Basic {encoded}")
}

/// Returns every secret of the tests, each as it is and form-urlencoded.
fn forbidden_strings() -> Vec<(&'static str, String)> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"));
    let mut forbidden = vec![
        ("password", PASSWORD.to_string()),
        ("base64 basic credential", basic),
        ("identity token", IDENTITY_TOKEN.to_string()),
        ("bearer token", BEARER_TOKEN.to_string()),
    ];
    let encoded: Vec<(&'static str, String)> = forbidden
        .iter()
        .map(|(name, secret)| {
            let mut url = reqwest::Url::parse("http://127.0.0.1/").unwrap();
            url.query_pairs_mut().append_pair("v", secret);
            (*name, url.query().unwrap().trim_start_matches("v=").to_string())
        })
        .collect();
    forbidden.extend(encoded);
    forbidden
}

/// Returns an error response whose OCI error message contains the
/// request's `Authorization` header and body.
fn echo(status: &'static str, request: &Recorded, headers: Vec<(String, String)>) -> Reply {
    let message = format!(
        "rejected request with authorization `{}` and body `{}`",
        request.authorization.as_deref().unwrap_or(""),
        request.body
    );
    let body = json!({ "errors": [{ "code": "DENIED", "message": message }] }).to_string();
    Reply::Respond { status, headers, body }
}

fn challenge(scheme: Scheme, address: &str) -> Vec<(String, String)> {
    let value = match scheme {
        Scheme::Basic => r#"Basic realm="fake-registry""#.to_string(),
        Scheme::Bearer => format!(r#"Bearer realm="http://{address}/token",service="fake-registry""#),
    };
    vec![("WWW-Authenticate".to_string(), value)]
}

fn authorized(case: Case, request: &Recorded) -> bool {
    let expected = match case.scheme {
        Scheme::Basic => basic_header(),
        Scheme::Bearer => format!("Bearer {BEARER_TOKEN}"),
    };
    request.authorization.as_deref() == Some(expected.as_str())
}

/// Replies like a registry that requires `case.scheme` and fails
/// `case.failing` with `case.status`, echoing the request.
fn reply(case: Case, request: &Recorded, address: &str) -> Reply {
    if request.target.starts_with("/token") {
        if matches!(case.failing, FailingRequest::TokenService) {
            return echo(case.status, request, challenge(case.scheme, address));
        }
        let body = json!({ "token": BEARER_TOKEN }).to_string();
        return Reply::Respond { status: "200 OK", headers: Vec::new(), body };
    }

    if !authorized(case, request) {
        return echo("401 Unauthorized", request, challenge(case.scheme, address));
    }

    let upload_start = request.method == "POST" && request.target.contains("/blobs/uploads/");
    let manifest_get = request.method == "GET" && request.target.contains("/manifests/");
    let fails = match case.failing {
        FailingRequest::TokenService => false,
        FailingRequest::UploadStart => upload_start,
        FailingRequest::ManifestGet => manifest_get,
    };
    if fails {
        return echo(case.status, request, challenge(case.scheme, address));
    }

    match request.method.as_str() {
        "GET" if request.target == "/v2/" => respond("200 OK"),
        "HEAD" => respond("404 Not Found"),
        _ => respond_with("400 Bad Request", &[]),
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_tries: 2,
        first_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
        max_elapsed: Duration::from_secs(10),
    }
}

fn write_docker_config(dir: &Path, registry: &str, login: Login) {
    let entry = match login {
        Login::Password => json!({ "username": USERNAME, "password": PASSWORD }),
        Login::IdentityToken => json!({ "identitytoken": IDENTITY_TOKEN }),
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), json!({ "auths": { registry: entry } }).to_string()).unwrap();
}

fn write_blob(layout: &Path, media_type: &str, content: &[u8]) -> Descriptor {
    let hex = hex::encode(Sha256::digest(content));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&hex), content).unwrap();

    Descriptor { media_type: media_type.to_string(), digest: format!("sha256:{hex}"), size: content.len() as u64 }
}

/// Pushes a one-layer image and returns the error's text and `Debug`.
async fn failed_push(case: Case) -> (String, String) {
    let registry = FakeRegistry::start(move |request, _earlier, address| reply(case, request, address));
    let layout = tempfile::tempdir().unwrap();
    let layer = write_blob(layout.path(), "application/vnd.oci.image.layer.v1.tar+gzip", b"layer");
    let image = BuiltImage {
        manifest: write_blob(layout.path(), "application/vnd.oci.image.manifest.v1+json", b"{}"),
        config: write_blob(layout.path(), "application/vnd.oci.image.config.v1+json", b"{\"config\":1}"),
        layers: vec![BuiltLayer {
            diff_id: layer.digest.clone(),
            descriptor: layer,
            description: "job files".to_string(),
            entries: 1,
        }],
    };
    let config_dir = layout.path().join("docker-config");
    write_docker_config(&config_dir, &registry.address, case.login);
    let target = Target::from_prefix(&registry.address, "backup", "latest").unwrap();
    let options =
        PushOptions { insecure_registries: Vec::new(), docker_config_dir: Some(config_dir), mount_from: None };

    let result = push_with_policy(layout.path(), &image, &target, &options, &SilentReporter, &fast_policy()).await;

    let error: RegistryError = result.expect_err("the fake registry fails every push");
    (error.to_string(), format!("{error:?}"))
}

/// Pulls a base image and returns the error's text and `Debug`.
async fn failed_pull(case: Case) -> (String, String) {
    let registry = FakeRegistry::start(move |request, _earlier, address| reply(case, request, address));
    let cache = tempfile::tempdir().unwrap();
    let config_dir = cache.path().join("docker-config");
    write_docker_config(&config_dir, &registry.address, case.login);
    let reference = BaseReference {
        registry: registry.address.clone(),
        repository: "base".to_string(),
        tag: Some("1".to_string()),
        digest: None,
    };
    let options = PullOptions {
        insecure_registries: Vec::new(),
        docker_config_dir: Some(config_dir),
        cache_dir: cache.path().to_path_buf(),
    };

    let result =
        pull_base_with_policy(&reference, &Platform::linux("amd64"), &options, &SilentReporter, &fast_policy()).await;

    let error: PullError = result.expect_err("the fake registry fails every pull");
    (error.to_string(), format!("{error:?}"))
}

fn assert_no_secret(case: Case, text: &str) {
    for (name, secret) in forbidden_strings() {
        assert!(!text.contains(&secret), "the {name} leaked in {case:?}:\n{text}");
    }
}

const FAILING_STATUSES: [&str; 4] =
    ["400 Bad Request", "401 Unauthorized", "403 Forbidden", "500 Internal Server Error"];

const LOGINS: [(Scheme, Login); 3] =
    [(Scheme::Basic, Login::Password), (Scheme::Bearer, Login::Password), (Scheme::Bearer, Login::IdentityToken)];

#[tokio::test]
async fn failed_upload_errors_hide_secrets() {
    for (scheme, login) in LOGINS {
        for status in FAILING_STATUSES {
            let case = Case { scheme, login, failing: FailingRequest::UploadStart, status };

            let (text, debug) = failed_push(case).await;

            assert_no_secret(case, &text);
            assert_no_secret(case, &debug);
        }
    }
}

#[tokio::test]
async fn failed_token_errors_hide_secrets() {
    for login in [Login::Password, Login::IdentityToken] {
        for status in FAILING_STATUSES {
            let case = Case { scheme: Scheme::Bearer, login, failing: FailingRequest::TokenService, status };

            let (text, debug) = failed_push(case).await;

            assert_no_secret(case, &text);
            assert_no_secret(case, &debug);
        }
    }
}

#[tokio::test]
async fn failed_pull_errors_hide_secrets() {
    for (scheme, login) in LOGINS {
        for status in FAILING_STATUSES {
            let case = Case { scheme, login, failing: FailingRequest::ManifestGet, status };

            let (text, debug) = failed_pull(case).await;

            assert_no_secret(case, &text);
            assert_no_secret(case, &debug);
        }
    }
}

#[tokio::test]
async fn echoed_error_message_kept_redacted() {
    // A 400 response's OCI error message is shown, so the echo reaches the
    // error text, with each secret replaced.
    for (scheme, login) in LOGINS {
        let case = Case { scheme, login, failing: FailingRequest::UploadStart, status: "400 Bad Request" };

        let (text, _debug) = failed_push(case).await;

        assert!(text.contains("rejected request with authorization `"), "{case:?}: {text}");
        assert!(text.contains("<redacted>"), "{case:?}: {text}");
    }
}

#[tokio::test]
async fn echoed_token_form_kept_redacted() {
    let case = Case {
        scheme: Scheme::Bearer,
        login: Login::IdentityToken,
        failing: FailingRequest::TokenService,
        status: "400 Bad Request",
    };

    let (text, _debug) = failed_push(case).await;

    assert!(text.contains("refresh_token=<redacted>"), "{text}");
}
