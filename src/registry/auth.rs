//! Registry credentials from the Docker config (`config.json`), looked up
//! the way the Docker CLI does: `credHelpers` for the registry first, then
//! `credsStore`, then the `auths` entries.
//!
//! This module reads `config.json` itself instead of using the
//! `docker_credential` crate (1.4), because that crate runs helpers only from
//! the process's PATH, prints a failing helper's stdout in its error and
//! consults `credsStore` after `auths`, where Docker consults it first.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use super::RegistryError;

/// The user name a credential helper returns with an identity token.
const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// The key that `docker login` writes for Docker Hub in `auths` and looks up
/// in `credHelpers`, and the server URL it gives credential helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Host names that mean Docker Hub. The Docker CLI's `GetAuthConfigKey`
/// maps each of them to [`DOCKER_HUB_SERVER`], and config files written by
/// other tools may use any of them as a key.
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", DOCKER_HUB_API_HOST];

/// The host that serves Docker Hub's registry API.
pub(super) const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// The credential kuul sends to one registry.
///
/// `Debug` prints user names but never passwords or tokens.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 identity token, from `identitytoken` or from a helper that
    /// returns the user name `<token>`.
    IdentityToken(String),
}

impl Credential {
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credential::Anonymous)
    }

    /// Returns the secrets in the forms that go over the wire: the password,
    /// the base64 `USERNAME:PASSWORD` of the basic `Authorization` header,
    /// the identity token, and the form-urlencoded spelling of each.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let raw = match self {
            Credential::Anonymous => Vec::new(),
            Credential::Basic { username, password } => {
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
                vec![password.clone(), basic]
            }
            Credential::IdentityToken(token) => vec![token.clone()],
        };

        let mut secrets = Vec::new();
        for secret in raw.into_iter().filter(|secret| !secret.is_empty()) {
            let encoded = form_urlencoded(&secret);
            if encoded != secret {
                secrets.push(encoded);
            }
            secrets.push(secret);
        }
        secrets
    }
}

/// Returns `value` as `application/x-www-form-urlencoded` spells it, the
/// way a token service that echoes its form body would show it.
fn form_urlencoded(value: &str) -> String {
    let mut url = reqwest::Url::parse("http://127.0.0.1/").expect("a fixed valid URL");
    url.query_pairs_mut().append_pair("v", value);
    let query = url.query().unwrap_or_default();
    query.strip_prefix("v=").unwrap_or(query).to_string()
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"<redacted>").finish()
            }
            Credential::IdentityToken(_) => f.debug_tuple("IdentityToken").field(&"<redacted>").finish(),
        }
    }
}

/// Returns the directory that contains the Docker `config.json`: `$DOCKER_CONFIG`,
/// else `$HOME/.docker`. `None` when neither variable is set.
pub fn docker_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir));
    }

    std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker"))
}

/// Looks up the credential for `registry` (`host[:port]`) in
/// `<config_dir>/config.json`, running a credential helper if the config
/// names one.
///
/// A missing `config.json`, a registry without an entry and a helper that
/// reports no stored credentials all give [`Credential::Anonymous`].
///
/// # Errors
///
/// Fails when `config.json` cannot be read or parsed, when an `auth` value
/// is not base64 of `USERNAME:PASSWORD`, and when a helper cannot be run or
/// fails.
pub fn resolve_credential(config_dir: &Path, registry: &str) -> Result<Credential, RegistryError> {
    resolve_with_helper_path(config_dir, registry, None)
}

/// [`resolve_credential`], with `helper_path` as the PATH that helper
/// programs are searched in (the process's PATH when `None`).
pub(crate) fn resolve_with_helper_path(
    config_dir: &Path,
    registry: &str,
    helper_path: Option<&OsStr>,
) -> Result<Credential, RegistryError> {
    let path = config_dir.join("config.json");
    let Some(config) = read_config(&path)? else {
        return Ok(Credential::Anonymous);
    };

    let helper = find_entry(&config.cred_helpers, registry).map(|(_, helper)| helper).or(config.creds_store.as_ref());
    if let Some(helper) = helper.filter(|name| !name.is_empty()) {
        return run_helper(helper, server_address(registry), helper_path);
    }

    match find_entry(&config.auths, registry) {
        Some((key, entry)) => credential_from_entry(&path, key, entry),
        None => Ok(Credential::Anonymous),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
}

/// Reads `config.json`, or returns `Ok(None)` when the file does not exist.
fn read_config(path: &Path) -> Result<Option<DockerConfigFile>, RegistryError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RegistryError::DockerConfigRead { path: path.to_path_buf(), source });
        }
    };

    let config = serde_json::from_str(&text)
        .map_err(|source| RegistryError::DockerConfigInvalid { path: path.to_path_buf(), source })?;
    Ok(Some(config))
}

/// Returns the server address that Docker stores credentials under for
/// `registry`: [`DOCKER_HUB_SERVER`] for a Docker Hub host, else `registry`.
fn server_address(registry: &str) -> &str {
    if is_docker_hub(registry) { DOCKER_HUB_SERVER } else { registry }
}

/// Finds the `auths` or `credHelpers` entry for `registry`. The key
/// `registry` itself wins, then the key Docker uses for it. Otherwise the
/// first key in sorted order that names the same host wins, with scheme,
/// path and case ignored, such as `https://host:port/v1/`. All of
/// [`DOCKER_HUB_HOSTS`] name the same host.
fn find_entry<'a, V>(entries: &'a HashMap<String, V>, registry: &str) -> Option<(&'a str, &'a V)> {
    for key in [registry, server_address(registry)] {
        if let Some((key, entry)) = entries.get_key_value(key) {
            return Some((key, entry));
        }
    }

    let host = canonical_host(registry);
    let mut matching: Vec<(&String, &V)> = entries.iter().filter(|(key, _)| canonical_host(key) == host).collect();
    // Sorted so that the choice among several matching keys does not depend
    // on hash order.
    matching.sort_by(|a, b| a.0.cmp(b.0));
    matching.first().map(|(key, entry)| (key.as_str(), *entry))
}

/// Returns the `host[:port]` of a registry name or config key, without the
/// `http://` or `https://` scheme and any path, in lowercase, and with
/// every Docker Hub host as `docker.io`.
fn canonical_host(key: &str) -> String {
    let without_scheme = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme).to_ascii_lowercase();

    if is_docker_hub(&host) { DOCKER_HUB_HOSTS[0].to_string() } else { host }
}

/// Checks whether `host` is one of the names of Docker Hub.
pub(super) fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS.iter().any(|hub| host.eq_ignore_ascii_case(hub))
}

/// Turns an `auths` entry into a credential. `identitytoken` wins over
/// `auth`, which wins over `username` and `password`. An empty entry, as
/// Docker writes when a helper stores the secret, is anonymous.
fn credential_from_entry(path: &Path, key: &str, entry: &AuthEntry) -> Result<Credential, RegistryError> {
    if !entry.identitytoken.is_empty() {
        return Ok(Credential::IdentityToken(entry.identitytoken.clone()));
    }

    if !entry.auth.is_empty() {
        let invalid = || RegistryError::InvalidAuthEntry { path: path.to_path_buf(), key: key.to_string() };
        let decoded = base64::engine::general_purpose::STANDARD.decode(entry.auth.trim()).map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (username, password) = decoded.split_once(':').ok_or_else(invalid)?;
        return Ok(Credential::Basic { username: username.to_string(), password: password.to_string() });
    }

    if !entry.username.is_empty() && !entry.password.is_empty() {
        return Ok(Credential::Basic { username: entry.username.clone(), password: entry.password.clone() });
    }

    Ok(Credential::Anonymous)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperOutput {
    username: String,
    secret: String,
}

/// Runs `docker-credential-<helper> get` with the server address on stdin,
/// as the Docker credential-helper protocol specifies.
///
/// The helper's stdout contains the secret, so it never goes into an error.
fn run_helper(helper: &str, registry: &str, helper_path: Option<&OsStr>) -> Result<Credential, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let failed = |reason: String| RegistryError::CredentialHelper {
        helper: program.clone(),
        registry: registry.to_string(),
        reason,
    };

    let mut command = Command::new(&program);
    command.arg("get").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(path) = helper_path {
        command.env("PATH", path);
    }

    let mut child = command.spawn().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => failed("program not found on PATH".to_string()),
        _ => failed(format!("could not start it: {error}")),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|error| failed(format!("could not write the registry to its stdin: {error}")))?;
    }
    let output = child.wait_with_output().map_err(|error| failed(format!("could not read its output: {error}")))?;

    if !output.status.success() {
        return helper_failure(&output, failed);
    }

    let parsed: HelperOutput = serde_json::from_slice(&output.stdout)
        .map_err(|_| failed("its output is not JSON with `Username` and `Secret`".to_string()))?;
    if parsed.username == IDENTITY_TOKEN_USERNAME {
        return Ok(Credential::IdentityToken(parsed.secret));
    }
    Ok(Credential::Basic { username: parsed.username, password: parsed.secret })
}

/// Maps a helper's non-zero exit to an error, except the "credentials not
/// found" output, which means anonymous access, as it does for Docker.
fn helper_failure(
    output: &std::process::Output,
    failed: impl Fn(String) -> RegistryError,
) -> Result<Credential, RegistryError> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.trim() == "credentials not found in native keychain" {
        return Ok(Credential::Anonymous);
    }

    let stderr = String::from_utf8_lossy(&output.stderr);
    let first_line = stderr.lines().next().unwrap_or("").trim();
    let status = output.status.code().map_or("a signal".to_string(), |code| format!("status {code}"));
    if first_line.is_empty() {
        Err(failed(format!("exited with {status}")))
    } else {
        Err(failed(format!("exited with {status}: {first_line}")))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const REGISTRY: &str = "127.0.0.1:5000";

    fn config_dir(config: &serde_json::Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        dir
    }

    fn basic(username: &str, password: &str) -> Credential {
        Credential::Basic { username: username.to_string(), password: password.to_string() }
    }

    /// Writes `docker-credential-kuultest` into a new directory. The script
    /// prints `output` for `get` and exits with `exit_code`.
    fn helper_dir(output: &str, exit_code: i32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("docker-credential-kuultest");
        let received = dir.path().join("received");
        // Only shell builtins, because the test runs the helper with PATH
        // set to this directory alone.
        let text = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\necho \"$server\" > '{}'\nprintf '%s' '{output}'\nexit {exit_code}\n",
            received.display()
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[test]
    fn auths_base64_entry_decoded() {
        let auth = base64::engine::general_purpose::STANDARD.encode("kuul:s3cret:with-colon");
        let dir = config_dir(&serde_json::json!({ "auths": { REGISTRY: { "auth": auth } } }));

        let credential = resolve_credential(dir.path(), REGISTRY).unwrap();

        assert_eq!(credential, basic("kuul", "s3cret:with-colon"));
    }

    #[test]
    fn auths_username_password_used() {
        let dir = config_dir(&serde_json::json!({ "auths": { REGISTRY: { "username": "kuul", "password": "pw" } } }));

        assert_eq!(resolve_credential(dir.path(), REGISTRY).unwrap(), basic("kuul", "pw"));
    }

    #[test]
    fn auths_identity_token_preferred() {
        let auth = base64::engine::general_purpose::STANDARD.encode("kuul:pw");
        let dir = config_dir(&serde_json::json!({ "auths": { REGISTRY: { "auth": auth, "identitytoken": "tok" } } }));

        let credential = resolve_credential(dir.path(), REGISTRY).unwrap();

        assert_eq!(credential, Credential::IdentityToken("tok".to_string()));
    }

    #[test]
    fn auths_url_keys_match_host() {
        for key in ["https://127.0.0.1:5000", "http://127.0.0.1:5000", "https://127.0.0.1:5000/v1/"] {
            let dir = config_dir(&serde_json::json!({ "auths": { key: { "username": "kuul", "password": "pw" } } }));
            assert_eq!(resolve_credential(dir.path(), REGISTRY).unwrap(), basic("kuul", "pw"), "{key}");
        }
    }

    #[test]
    fn docker_hub_keys_match_every_hub_host() {
        let keys = [
            "https://index.docker.io/v1/",
            "http://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            "https://registry-1.docker.io/v2/",
            "Docker.IO",
        ];
        for key in keys {
            let dir = config_dir(&serde_json::json!({ "auths": { key: { "username": "kuul", "password": "pw" } } }));
            for registry in DOCKER_HUB_HOSTS {
                let credential = resolve_credential(dir.path(), registry).unwrap();
                assert_eq!(credential, basic("kuul", "pw"), "key `{key}`, registry `{registry}`");
            }
        }
    }

    #[test]
    fn docker_hub_key_not_used_elsewhere() {
        let config = serde_json::json!({ "auths": { DOCKER_HUB_SERVER: { "username": "kuul", "password": "pw" } } });
        let dir = config_dir(&config);

        for registry in [REGISTRY, "registry.test", "docker.io.registry.test"] {
            assert_eq!(resolve_credential(dir.path(), registry).unwrap(), Credential::Anonymous, "{registry}");
        }
    }

    #[test]
    fn docker_login_key_preferred_for_hub() {
        let config = serde_json::json!({ "auths": {
            "docker.io": { "username": "podman-user", "password": "pw" },
            DOCKER_HUB_SERVER: { "username": "docker-user", "password": "pw" },
            "registry-1.docker.io": { "username": "other-user", "password": "pw" },
        } });
        let dir = config_dir(&config);

        let credential = resolve_credential(dir.path(), "index.docker.io").unwrap();

        assert_eq!(credential, basic("docker-user", "pw"));
    }

    #[test]
    fn exact_key_preferred_over_variants() {
        let config = serde_json::json!({ "auths": {
            "https://registry.test:5000/v1/": { "username": "url-user", "password": "pw" },
            "registry.test:5000": { "username": "host-user", "password": "pw" },
        } });
        let dir = config_dir(&config);

        let credential = resolve_credential(dir.path(), "registry.test:5000").unwrap();

        assert_eq!(credential, basic("host-user", "pw"));
    }

    #[test]
    fn other_registry_key_variants_match() {
        let keys = [
            "https://registry.test",
            "http://registry.test",
            "https://registry.test/",
            "https://registry.test/v1/",
            "https://registry.test/v2/",
            "registry.test/v2/",
            "Registry.Test",
        ];
        for key in keys {
            let dir = config_dir(&serde_json::json!({ "auths": { key: { "username": "kuul", "password": "pw" } } }));
            assert_eq!(resolve_credential(dir.path(), "registry.test").unwrap(), basic("kuul", "pw"), "{key}");
        }
    }

    #[test]
    fn key_without_port_not_matched() {
        let config =
            serde_json::json!({ "auths": { "https://registry.test/v1/": { "username": "kuul", "password": "pw" } } });
        let dir = config_dir(&config);

        assert_eq!(resolve_credential(dir.path(), "registry.test:5000").unwrap(), Credential::Anonymous);
    }

    #[test]
    fn auths_other_port_not_matched() {
        let dir =
            config_dir(&serde_json::json!({ "auths": { "127.0.0.1:5001": { "username": "kuul", "password": "pw" } } }));

        assert_eq!(resolve_credential(dir.path(), REGISTRY).unwrap(), Credential::Anonymous);
    }

    #[test]
    fn missing_config_is_anonymous() {
        let dir = tempfile::tempdir().unwrap();

        assert_eq!(resolve_credential(dir.path(), REGISTRY).unwrap(), Credential::Anonymous);
    }

    #[test]
    fn empty_auth_entry_is_anonymous() {
        let dir = config_dir(&serde_json::json!({ "auths": { REGISTRY: {} }, "currentContext": "default" }));

        assert_eq!(resolve_credential(dir.path(), REGISTRY).unwrap(), Credential::Anonymous);
    }

    #[test]
    fn invalid_json_names_config_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();

        let error = resolve_credential(dir.path(), REGISTRY).unwrap_err();

        assert!(matches!(error, RegistryError::DockerConfigInvalid { .. }), "{error}");
        assert!(error.to_string().contains("config.json"), "{error}");
    }

    #[test]
    fn invalid_base64_auth_rejected() {
        let dir = config_dir(&serde_json::json!({ "auths": { REGISTRY: { "auth": "%%%" } } }));

        let error = resolve_credential(dir.path(), REGISTRY).unwrap_err();

        assert!(matches!(error, RegistryError::InvalidAuthEntry { .. }), "{error}");
    }

    #[test]
    fn auth_without_colon_rejected() {
        let auth = base64::engine::general_purpose::STANDARD.encode("no-colon");
        let dir = config_dir(&serde_json::json!({ "auths": { REGISTRY: { "auth": auth } } }));

        let error = resolve_credential(dir.path(), REGISTRY).unwrap_err();

        assert!(matches!(error, RegistryError::InvalidAuthEntry { .. }), "{error}");
    }

    #[test]
    fn cred_helper_runs_with_registry() {
        let helpers =
            helper_dir(r#"{"ServerURL":"127.0.0.1:5000","Username":"helper-user","Secret":"helper-secret"}"#, 0);
        let config = serde_json::json!({
            "auths": { REGISTRY: { "username": "file-user", "password": "file-pw" } },
            "credHelpers": { REGISTRY: "kuultest" },
        });
        let dir = config_dir(&config);

        let credential = resolve_with_helper_path(dir.path(), REGISTRY, Some(helpers.path().as_os_str())).unwrap();

        assert_eq!(credential, basic("helper-user", "helper-secret"));
        let received = std::fs::read_to_string(helpers.path().join("received")).unwrap();
        assert_eq!(received.trim(), REGISTRY);
    }

    #[test]
    fn docker_hub_helper_gets_index_server() {
        let helpers = helper_dir(r#"{"Username":"hub-user","Secret":"hub-secret"}"#, 0);
        let dir = config_dir(&serde_json::json!({ "credHelpers": { DOCKER_HUB_SERVER: "kuultest" } }));

        for registry in DOCKER_HUB_HOSTS {
            let credential = resolve_with_helper_path(dir.path(), registry, Some(helpers.path().as_os_str())).unwrap();

            assert_eq!(credential, basic("hub-user", "hub-secret"), "{registry}");
            let received = std::fs::read_to_string(helpers.path().join("received")).unwrap();
            assert_eq!(received.trim(), DOCKER_HUB_SERVER, "{registry}");
        }
    }

    #[test]
    fn helper_key_variants_match() {
        let helpers = helper_dir(r#"{"Username":"helper-user","Secret":"helper-secret"}"#, 0);
        let cases = [("docker.io", "registry-1.docker.io"), ("https://registry.test/v2/", "registry.test")];

        for (key, registry) in cases {
            let dir = config_dir(&serde_json::json!({ "credHelpers": { key: "kuultest" } }));
            let credential = resolve_with_helper_path(dir.path(), registry, Some(helpers.path().as_os_str())).unwrap();
            assert_eq!(credential, basic("helper-user", "helper-secret"), "key `{key}`, registry `{registry}`");
        }
    }

    #[test]
    fn creds_store_used_without_helper() {
        let helpers = helper_dir(r#"{"Username":"<token>","Secret":"identity"}"#, 0);
        let dir = config_dir(&serde_json::json!({ "credsStore": "kuultest" }));

        let credential = resolve_with_helper_path(dir.path(), REGISTRY, Some(helpers.path().as_os_str())).unwrap();

        assert_eq!(credential, Credential::IdentityToken("identity".to_string()));
    }

    #[test]
    fn helper_not_found_is_anonymous() {
        let helpers = helper_dir("credentials not found in native keychain", 1);
        let dir = config_dir(&serde_json::json!({ "credHelpers": { REGISTRY: "kuultest" } }));

        let credential = resolve_with_helper_path(dir.path(), REGISTRY, Some(helpers.path().as_os_str())).unwrap();

        assert_eq!(credential, Credential::Anonymous);
    }

    #[test]
    fn helper_failure_hides_stdout() {
        let helpers = helper_dir("leaked-secret", 3);
        let dir = config_dir(&serde_json::json!({ "credHelpers": { REGISTRY: "kuultest" } }));

        let error = resolve_with_helper_path(dir.path(), REGISTRY, Some(helpers.path().as_os_str())).unwrap_err();

        let message = error.to_string();
        assert!(message.contains("`docker-credential-kuultest`"), "{message}");
        assert!(message.contains("status 3"), "{message}");
        assert!(!message.contains("leaked-secret"), "{message}");
    }

    #[test]
    fn missing_helper_program_reported() {
        let empty_path = tempfile::tempdir().unwrap();
        let dir = config_dir(&serde_json::json!({ "credHelpers": { REGISTRY: "kuultest" } }));

        let error = resolve_with_helper_path(dir.path(), REGISTRY, Some(empty_path.path().as_os_str())).unwrap_err();

        assert!(error.to_string().contains("not found on PATH"), "{error}");
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let basic = format!("{:?}", basic("kuul", "hunter2"));
        let token = format!("{:?}", Credential::IdentityToken("tok-123".to_string()));

        assert!(basic.contains("kuul"), "{basic}");
        assert!(!basic.contains("hunter2"), "{basic}");
        assert!(!token.contains("tok-123"), "{token}");
    }
}
