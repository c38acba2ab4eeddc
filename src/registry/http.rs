//! HTTP requests to one registry with its authentication: anonymous, basic,
//! or a bearer token from the token service that the registry's
//! `WWW-Authenticate` challenge names (realm, service, scope).
//!
//! Pushes and pulls use this client instead of `oci-client` 0.18, because that
//! client turns a 401 into an error without fetching a new token, and drops
//! the `Retry-After` header of a 429 or 503 response.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use super::auth::Credential;
use super::error::RequestContext;
use super::retry::{Failure, parse_retry_after};
use super::{RegistryError, push::CONNECT_TIMEOUT};

/// Maximum time for a request to the token service.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// A client for one registry. Bearer tokens are cached per scope for the
/// life of the client, which is one push or one pull.
pub(crate) struct RegistryHttp<'a> {
    http: reqwest::Client,
    base_url: String,
    credential: Credential,
    pub context: RequestContext<'a>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

impl<'a> RegistryHttp<'a> {
    pub fn new(context: RequestContext<'a>, credential: Credential) -> Result<RegistryHttp<'a>, RegistryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|error| context.map_reqwest_error(&error))?;
        let scheme = if context.https { "https" } else { "http" };
        let base_url = format!("{scheme}://{}", api_host(context.registry));

        Ok(RegistryHttp {
            http,
            base_url,
            credential,
            context,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Returns the absolute URL of `path_or_url`, which is a path on the
    /// registry such as `/v2/`, or a `Location` header value, relative or
    /// absolute.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            return path_or_url.to_string();
        }
        format!("{}{path_or_url}", self.base_url)
    }

    /// Checks the API version endpoint, learns the challenge a registry
    /// that requires authentication sends, and fetches the token for
    /// `scopes`, so that an unreachable registry or wrong credentials fail
    /// before any blob.
    pub async fn authenticate(&self, scopes: &[String]) -> Result<(), Failure> {
        let response = self.http.get(self.url("/v2/")).send().await.map_err(|error| self.failure(&error))?;

        match response.status() {
            StatusCode::UNAUTHORIZED => {
                let challenge = parse_challenge(response.headers()).ok_or_else(|| self.unauthorized())?;
                *self.challenge.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(challenge);
                self.refresh_token(scopes).await
            }
            // The distribution spec has every registry serve `GET /v2/`, so
            // a 404 there means the server is not a registry.
            StatusCode::NOT_FOUND => Err(Failure::from(RegistryError::NotARegistry {
                registry: self.context.registry.to_string(),
                status: 404,
            })),
            status if status.is_success() => Ok(()),
            _ => Err(self.status_failure(response).await),
        }
    }

    /// Sends the request that `build` makes, with the credentials for
    /// `scopes`, and returns the response whatever its status, except a
    /// 401. After a 401 the token for `scopes` is fetched again and the
    /// request is sent once more, and a second 401 is an error.
    pub async fn send(
        &self,
        scopes: &[String],
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let response = self.authorize(build(&self.http), scopes).send().await.map_err(|error| self.failure(&error))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }

        let challenge = parse_challenge(response.headers()).ok_or_else(|| self.unauthorized())?;
        let known = self.challenge.lock().unwrap_or_else(std::sync::PoisonError::into_inner).replace(challenge.clone());
        if challenge == Challenge::Basic && known == Some(Challenge::Basic) {
            // The basic credentials went with the request and were rejected.
            return Err(self.unauthorized());
        }
        tracing::info!(registry = self.context.registry, scope = %scopes.join(" "), "registry returned 401, authenticating again");
        self.refresh_token(scopes).await?;

        let response = self.authorize(build(&self.http), scopes).send().await.map_err(|error| self.failure(&error))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized());
        }
        Ok(response)
    }

    /// Turns a response with an unexpected status into a failure, with the
    /// wait from its `Retry-After` header. The body's error messages go into
    /// the failure with every secret of this client redacted.
    pub async fn status_failure(&self, response: Response) -> Failure {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let body = self.redact(&response.text().await.unwrap_or_default());

        Failure { error: self.without_credentials(self.context.map_status(status, &body)), retry_after }
    }

    /// Turns a 401 into [`RegistryError::CredentialsMissing`] when this
    /// client has no credentials, so the error separates a missing login
    /// from a rejected one.
    fn without_credentials(&self, error: RegistryError) -> RegistryError {
        match error {
            RegistryError::Unauthorized { registry, repository } if self.credential.is_anonymous() => {
                RegistryError::CredentialsMissing { registry, repository }
            }
            other => other,
        }
    }

    /// Replaces the credential's secrets and every bearer token received so
    /// far with `<redacted>`, because a registry, proxy or token service may
    /// echo request headers or form fields in an error body.
    fn redact(&self, text: &str) -> String {
        let mut secrets = self.credential.secrets();
        let tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        secrets.extend(tokens.values().filter(|token| !token.is_empty()).cloned());
        drop(tokens);

        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        let mut redacted = text.to_string();
        for secret in &secrets {
            redacted = redacted.replace(secret.as_str(), "<redacted>");
        }
        redacted
    }

    /// Maps a failed request.
    pub fn failure(&self, error: &reqwest::Error) -> Failure {
        Failure::from(self.context.map_reqwest_error(error))
    }

    fn unauthorized(&self) -> Failure {
        Failure::from(self.without_credentials(self.context.map_status(401, "")))
    }

    /// Adds the credentials that the registry's challenge requests.
    fn authorize(&self, request: RequestBuilder, scopes: &[String]) -> RequestBuilder {
        let challenge = self.challenge.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();

        match (challenge, &self.credential) {
            (Some(Challenge::Bearer { .. }), _) => {
                let tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match tokens.get(&scopes.join(" ")) {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                }
            }
            (Some(Challenge::Basic), Credential::Basic { username, password }) => {
                request.basic_auth(username, Some(password))
            }
            _ => request,
        }
    }

    /// Fetches a bearer token for `scopes` from the realm of the registry's
    /// challenge and caches it. Does nothing for a basic challenge.
    async fn refresh_token(&self, scopes: &[String]) -> Result<(), Failure> {
        let challenge = self.challenge.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some(Challenge::Bearer { realm, service }) = challenge else {
            return Ok(());
        };

        let request = self.token_request(&realm, service.as_deref(), scopes);
        let mut response = request.send().await.map_err(|error| self.failure(&error))?;
        // A token service without the OAuth2 endpoint returns 404 or 405 for
        // the POST. kuul then sends the GET of the Docker token protocol,
        // without credentials, because an identity token cannot go in it.
        if matches!(self.credential, Credential::IdentityToken(_))
            && matches!(response.status(), StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED)
        {
            let request = token_get(&self.http, &realm, service.as_deref(), scopes);
            response = request.send().await.map_err(|error| self.failure(&error))?;
        }
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized());
        }
        if !status.is_success() {
            return Err(self.status_failure(response).await);
        }

        // The token service's body is not shown in errors, because a
        // malformed one may still contain a token.
        let parsed: TokenResponse = response.json().await.map_err(|_| {
            Failure::from(RegistryError::Rejected {
                registry: self.context.registry.to_string(),
                repository: self.context.repository.to_string(),
                detail: "the token service returned invalid JSON".to_string(),
            })
        })?;
        let token = if parsed.token.is_empty() { parsed.access_token } else { parsed.token };
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(scopes.join(" "), token);
        Ok(())
    }

    /// Builds the token request: a GET with basic credentials or none, as
    /// the Docker token protocol specifies, or for an identity token the
    /// OAuth2 refresh-token POST that Docker sends.
    ///
    /// The realm comes from the registry's challenge. Credentials go to it
    /// only over HTTPS or on loopback, as they go to registries, so a
    /// challenge cannot lead them onto the network in clear text.
    fn token_request(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> RequestBuilder {
        if !matches!(self.credential, Credential::Anonymous) && !may_receive_credentials(realm) {
            tracing::warn!(
                "credentials for `{}` withheld from its token service `{realm}`, which is reached over plain HTTP, so the token request is anonymous",
                self.context.registry
            );
            return token_get(&self.http, realm, service, scopes);
        }

        let joined_scopes = scopes.join(" ");
        match &self.credential {
            Credential::IdentityToken(token) => {
                let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
                form.push(("client_id", "kuul"));
                form.push(("scope", &joined_scopes));
                if let Some(service) = service {
                    form.push(("service", service));
                }
                self.http.post(realm).form(&form).timeout(TOKEN_REQUEST_TIMEOUT)
            }
            Credential::Basic { username, password } => {
                token_get(&self.http, realm, service, scopes).basic_auth(username, Some(password))
            }
            Credential::Anonymous => token_get(&self.http, realm, service, scopes),
        }
    }
}

/// Parses a `WWW-Authenticate` header, such as `Bearer
/// realm="https://auth.test/token",service="registry.test"`.
fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let value = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?.trim();
    let (scheme, parameters) = value.split_once(' ').unwrap_or((value, ""));

    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }

    let parameters = parse_parameters(parameters);
    let realm = parameters.get("realm")?.clone();
    let service = parameters.get("service").cloned();
    Some(Challenge::Bearer { realm, service })
}

/// Parses `key="value",key=value` pairs. Quoted values may contain commas.
fn parse_parameters(text: &str) -> HashMap<String, String> {
    let mut parameters = HashMap::new();
    let mut rest = text.trim();

    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();

        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };

        parameters.insert(key, value.to_string());
        rest = remaining.trim_start().trim_start_matches(',');
    }
    parameters
}

/// Builds the GET token request of the Docker token protocol, without
/// credentials.
fn token_get(http: &reqwest::Client, realm: &str, service: Option<&str>, scopes: &[String]) -> RequestBuilder {
    let query: Vec<(&str, &str)> = scopes
        .iter()
        .map(|scope| ("scope", scope.as_str()))
        .chain(service.map(|service| ("service", service)))
        .collect();
    http.get(realm).query(&query).timeout(TOKEN_REQUEST_TIMEOUT)
}

/// Checks whether credentials may be sent to the token service at `realm`:
/// over HTTPS, or over plain HTTP on loopback.
fn may_receive_credentials(realm: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(realm) else {
        return false;
    };
    match (url.scheme(), url.host_str()) {
        ("https", _) => true,
        ("http", Some(host)) => super::transport::is_loopback(host),
        _ => false,
    }
}

/// Returns the host that serves the registry API for `registry`. Docker Hub
/// is named `docker.io` in image references, but its API is served at
/// `registry-1.docker.io`, where the Docker CLI sends every request.
///
/// NOTE: no test reaches Docker Hub, so this mapping is checked by name only.
fn api_host(registry: &str) -> &str {
    if super::auth::is_docker_hub(registry) { super::auth::DOCKER_HUB_API_HOST } else { registry }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(WWW_AUTHENTICATE, value.parse().unwrap());
        headers
    }

    #[test]
    fn bearer_challenge_parsed() {
        let challenge = parse_challenge(&headers(
            r#"Bearer realm="http://127.0.0.1:1/token",service="registry.test",scope="repository:a,b:pull""#,
        ));

        assert_eq!(
            challenge,
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".to_string(),
                service: Some("registry.test".to_string())
            })
        );
    }

    #[test]
    fn basic_challenge_parsed() {
        assert_eq!(parse_challenge(&headers(r#"Basic realm="Registry Realm""#)), Some(Challenge::Basic));
    }

    #[test]
    fn bearer_without_realm_rejected() {
        assert_eq!(parse_challenge(&headers(r#"Bearer service="registry.test""#)), None);
    }

    #[test]
    fn unquoted_parameters_parsed() {
        let parameters = parse_parameters("realm=http://127.0.0.1:1/token, service=test");

        assert_eq!(parameters.get("realm").map(String::as_str), Some("http://127.0.0.1:1/token"));
        assert_eq!(parameters.get("service").map(String::as_str), Some("test"));
    }

    #[test]
    fn docker_hub_names_reach_api_host() {
        for registry in ["docker.io", "index.docker.io", "Docker.IO"] {
            assert_eq!(api_host(registry), "registry-1.docker.io", "{registry}");
        }
    }

    #[test]
    fn other_registry_is_its_own_api_host() {
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn credentials_go_to_https_realm() {
        assert!(may_receive_credentials("https://auth.test/token"));
    }

    #[test]
    fn credentials_go_to_loopback_http_realm() {
        for realm in ["http://127.0.0.1:5001/token", "http://localhost/token", "http://[::1]:5001/token"] {
            assert!(may_receive_credentials(realm), "{realm}");
        }
    }

    #[test]
    fn credentials_withheld_from_remote_http_realm() {
        for realm in ["http://auth.test/token", "http://10.0.0.1:5001/token", "ftp://auth.test/token", "not a url"] {
            assert!(!may_receive_credentials(realm), "{realm}");
        }
    }
}
