//! Image references: the push target built from `--registry` and the job
//! name, and the pinned `REF@DIGEST` strings that users pass in.
//!
//! The grammar follows the Docker reference format. A registry host is a
//! host name, an IPv4 address or a bracketed IPv6 address with an optional
//! port. Repository components match `[a-z0-9]+([._-][a-z0-9]+)*`, and a tag
//! matches `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::RegistryError;

/// Maximum length of `registry/repository`, as Docker limits it.
const MAX_NAME_LENGTH: usize = 255;

/// The push destination of `kuul publish`: `registry/repository:tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    registry: String,
    repository: String,
    tag: String,
}

impl Target {
    /// Builds the target `<prefix>/<name>:<tag>` from the `--registry`
    /// prefix (such as `localhost:5000/kuul`) and the job name.
    ///
    /// # Errors
    ///
    /// Rejects a prefix whose first component is not a registry host, because
    /// kuul never falls back to a public registry, and any invalid host,
    /// repository component or tag.
    pub fn from_prefix(prefix: &str, name: &str, tag: &str) -> Result<Target, RegistryError> {
        check_prefix_form(prefix)?;
        let prefix = prefix.trim_end_matches('/');
        let (registry, path) =
            split_registry(prefix).ok_or_else(|| RegistryError::MissingRegistryHost { prefix: prefix.to_string() })?;
        validate_registry_host(registry)?;

        let repository = if path.is_empty() { name.to_string() } else { format!("{path}/{name}") };
        validate_repository(registry, &repository)?;
        validate_tag(tag)?;

        Ok(Target { registry: registry.to_string(), repository, tag: tag.to_string() })
    }

    /// Returns the registry as `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Returns the repository path below the registry, such as `kuul/backup`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Formats `host:port/repository:tag@<digest>`, the form a CronJob uses:
    /// the runtime pulls by digest and the tag stays readable.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{self}@{digest}")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// An image reference that names a manifest digest, such as
/// `localhost:5000/kuul/backup:latest@sha256:<64 hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedReference {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    /// Informational only: the digest decides which image runs.
    pub tag: Option<String>,
    /// `sha256:<64 lowercase hex>`.
    pub digest: String,
}

impl fmt::Display for PinnedReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        write!(f, "@{}", self.digest)
    }
}

/// Parses a `REGISTRY/REPOSITORY[:TAG]@sha256:DIGEST` reference given by a
/// user, such as the value of `kuul manifest --image`.
///
/// # Errors
///
/// Rejects a reference without a registry host, a repository or a `sha256`
/// digest of 64 lowercase hex characters, and any invalid component.
pub fn parse_pinned(reference: &str) -> Result<PinnedReference, RegistryError> {
    let invalid =
        |reason: &str| RegistryError::InvalidReference { reference: reference.to_string(), reason: reason.to_string() };

    let (name_and_tag, digest) = reference.split_once('@').ok_or_else(|| invalid("missing `@sha256:` digest"))?;
    validate_digest(digest).map_err(invalid)?;

    let (name, tag) = split_tag(name_and_tag);
    let (registry, repository) = split_registry(name).ok_or_else(|| invalid("missing registry host"))?;
    if repository.is_empty() {
        return Err(invalid("missing repository"));
    }

    validate_registry_host(registry)?;
    validate_repository(registry, repository)?;
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }

    Ok(PinnedReference {
        registry: registry.to_string(),
        repository: repository.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.to_string(),
    })
}

/// Splits `host/path` into the registry host and the rest.
///
/// As in Docker's reference grammar, the first component is a registry host
/// only if it contains `.` or `:`, starts with `[`, or is `localhost`.
/// Otherwise Docker would read it as a Docker Hub namespace, so this returns
/// `None` and the caller asks for an explicit registry.
fn split_registry(name: &str) -> Option<(&str, &str)> {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, rest),
        None => (name, ""),
    };

    let is_host = first.contains('.') || first.contains(':') || first.starts_with('[') || first == "localhost";
    is_host.then_some((first, rest))
}

/// Splits `name[:tag]`. A `:` before the last `/` belongs to the registry
/// port, not to a tag.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last_slash = name.rfind('/').unwrap_or(0);
    match name.rfind(':') {
        Some(colon) if colon > last_slash => (&name[..colon], Some(&name[colon + 1..])),
        _ => (name, None),
    }
}

/// Checks `host[:port]`, where host is a DNS name, an IPv4 address or a
/// bracketed IPv6 address.
fn validate_registry_host(registry: &str) -> Result<(), RegistryError> {
    let invalid = |reason| RegistryError::InvalidRegistryHost { host: registry.to_string(), reason };

    let (host, port) = split_host_port(registry).ok_or_else(|| invalid("unbalanced `[` in an IPv6 address"))?;
    if let Some(port) = port {
        let valid_port =
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid_port {
            return Err(invalid("the port must be a number from 1 to 65535"));
        }
    }

    if let Some(inner) = host.strip_prefix('[') {
        let address = inner.strip_suffix(']').ok_or_else(|| invalid("unbalanced `[` in an IPv6 address"))?;
        return match address.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(invalid("not a valid IPv6 address")),
        };
    }

    let looks_like_ipv4 = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if looks_like_ipv4 {
        return match host.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(invalid("not a valid IPv4 address")),
        };
    }

    if is_valid_hostname(host) {
        Ok(())
    } else {
        Err(invalid("a host name has labels of letters, digits and inner `-`, separated by `.`"))
    }
}

/// Splits `host[:port]` and `[ipv6][:port]`. Returns `None` for a `[`
/// without its `]`.
pub(crate) fn split_host_port(registry: &str) -> Option<(&str, Option<&str>)> {
    if registry.starts_with('[') {
        let end = registry.find(']')?;
        let (host, rest) = registry.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }

    match registry.split_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((registry, None)),
    }
}

fn is_valid_hostname(host: &str) -> bool {
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };

    !host.is_empty() && host.len() <= 253 && host.split('.').all(valid_label)
}

/// Rejects the two forms people give by mistake for a prefix: a URL with a
/// scheme, and a whole image reference with a tag or digest.
fn check_prefix_form(prefix: &str) -> Result<(), RegistryError> {
    let invalid = |hint: String| RegistryError::InvalidPrefix { prefix: prefix.to_string(), hint };

    if let Some((scheme, rest)) = prefix.split_once("://") {
        return Err(invalid(format!(
            "drop `{scheme}://`, as in `--registry {rest}`; kuul picks HTTP for loopback registries and for \
             `--insecure-registry` hosts, HTTPS for the rest"
        )));
    }

    let path = prefix.split_once('/').map_or("", |(_, path)| path);
    if path.contains(':') || path.contains('@') {
        return Err(invalid(
            "give a registry and repository prefix, such as `localhost:5000/ops`; kuul appends the job name, \
             and the tag comes from `image.tag`"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Checks the total length of `registry/repository` and each `/`-separated
/// component.
fn validate_repository(registry: &str, repository: &str) -> Result<(), RegistryError> {
    let invalid = |reason| RegistryError::InvalidRepository { repository: repository.to_string(), reason };

    if repository.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if registry.len() + 1 + repository.len() > MAX_NAME_LENGTH {
        return Err(invalid("`registry/repository` is longer than 255 characters"));
    }
    if !crate::spec::names::is_repository(repository) {
        return Err(invalid("each `/`-separated component must match `[a-z0-9]+([._-][a-z0-9]+)*`"));
    }

    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), RegistryError> {
    if crate::spec::names::is_tag(tag) { Ok(()) } else { Err(RegistryError::InvalidTag { tag: tag.to_string() }) }
}

/// Checks `sha256:` followed by 64 lowercase hex characters.
pub(crate) fn validate_digest(digest: &str) -> Result<(), &'static str> {
    let hex = digest.strip_prefix("sha256:").ok_or("the digest must start with `sha256:`")?;
    let valid_hex = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));

    if valid_hex { Ok(()) } else { Err("a `sha256` digest has 64 lowercase hex characters") }
}

/// A base image reference from `image.base`:
/// `REGISTRY/REPOSITORY:TAG`, `REGISTRY/REPOSITORY@sha256:DIGEST` or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseReference {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// When given, the pull is by this digest and the tag is informational.
    pub digest: Option<String>,
}

impl fmt::Display for BaseReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Parses the `image.base` reference.
///
/// # Errors
///
/// Rejects a reference without a registry host, because kuul never falls
/// back to a public registry, one with neither tag nor digest, and any
/// invalid component.
pub fn parse_base(reference: &str) -> Result<BaseReference, RegistryError> {
    let invalid =
        |reason: &str| RegistryError::InvalidReference { reference: reference.to_string(), reason: reason.to_string() };

    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((name, digest)) => {
            validate_digest(digest).map_err(invalid)?;
            (name, Some(digest))
        }
        None => (reference, None),
    };

    let (name, tag) = split_tag(name_and_tag);
    let (registry, repository) = split_registry(name).ok_or_else(|| invalid("missing registry host"))?;
    if repository.is_empty() {
        return Err(invalid("missing repository"));
    }
    if tag.is_none() && digest.is_none() {
        return Err(invalid("missing `:TAG` or `@sha256:` digest"));
    }

    validate_registry_host(registry)?;
    validate_repository(registry, repository)?;
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }

    // Docker Hub keeps its official images under `library/`, and the Docker
    // CLI adds that prefix to one-component names, so kuul does too.
    let repository = if super::auth::is_docker_hub(registry) && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    };

    Ok(BaseReference {
        registry: registry.to_string(),
        repository,
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn from_prefix_appends_name_and_tag() {
        let target = Target::from_prefix("127.0.0.1:5000/kuul", "backup", "latest").unwrap();

        assert_eq!(target.registry(), "127.0.0.1:5000");
        assert_eq!(target.repository(), "kuul/backup");
        assert_eq!(target.tag(), "latest");
    }

    #[test]
    fn from_prefix_accepts_bare_host() {
        let target = Target::from_prefix("localhost:5000", "backup", "v1").unwrap();

        assert_eq!(target.registry(), "localhost:5000");
        assert_eq!(target.repository(), "backup");
    }

    #[test]
    fn from_prefix_accepts_ipv6_and_dns_hosts() {
        for prefix in ["[::1]:5000/jobs", "registry.example.test/team/jobs", "localhost/jobs", "[fe80::1]/jobs"] {
            assert!(Target::from_prefix(prefix, "backup", "latest").is_ok(), "{prefix}");
        }
    }

    #[test]
    fn from_prefix_without_host_names_fix() {
        let error = Target::from_prefix("kuul", "backup", "latest").unwrap_err();

        assert!(matches!(error, RegistryError::MissingRegistryHost { .. }));
        assert!(error.to_string().contains("`localhost:5000/kuul`"), "{error}");
    }

    #[test]
    fn from_prefix_hub_namespace_rejected() {
        let error = Target::from_prefix("team/jobs", "backup", "latest").unwrap_err();

        assert!(matches!(error, RegistryError::MissingRegistryHost { .. }), "{error}");
    }

    #[test]
    fn from_prefix_rejects_bad_hosts() {
        let cases = [
            "127.0.0.1:0/kuul",
            "127.0.0.1:70000/kuul",
            "127.0.0.1:/kuul",
            "300.1.1.1:5000/kuul",
            "[::1/kuul",
            "[not-ipv6]:5000/kuul",
            "bad_host.test/kuul",
            "-bad.test/kuul",
        ];
        for prefix in cases {
            let error = Target::from_prefix(prefix, "backup", "latest").unwrap_err();
            assert!(matches!(error, RegistryError::InvalidRegistryHost { .. }), "{prefix}: {error}");
        }
    }

    #[test]
    fn invalid_host_error_names_value() {
        let error = Target::from_prefix("127.0.0.1:99999/kuul", "backup", "latest").unwrap_err();

        assert!(error.to_string().contains("`127.0.0.1:99999`"), "{error}");
    }

    #[test]
    fn from_prefix_rejects_bad_repository() {
        for (prefix, name) in [
            ("localhost:5000/Kuul", "backup"),
            ("localhost:5000/kuul", "Backup"),
            ("localhost:5000/kuul", "back..up"),
            ("localhost:5000/kuul", "-backup"),
            ("localhost:5000/kuul", "backup-"),
            ("localhost:5000/kuul//jobs", "backup"),
            ("localhost:5000/kuul", ""),
        ] {
            let error = Target::from_prefix(prefix, name, "latest").unwrap_err();
            assert!(matches!(error, RegistryError::InvalidRepository { .. }), "{prefix} {name}: {error}");
        }
    }

    #[test]
    fn repository_accepts_docker_separators() {
        for name in ["back.up", "back_up", "back__up", "back-up", "back--up", "b4ckup2"] {
            assert!(Target::from_prefix("localhost:5000", name, "latest").is_ok(), "{name}");
        }
    }

    #[test]
    fn repository_over_255_characters_rejected() {
        let name = "a".repeat(250);

        let error = Target::from_prefix("localhost:5000", &name, "latest").unwrap_err();

        assert!(matches!(error, RegistryError::InvalidRepository { .. }), "{error}");
    }

    #[test]
    fn tag_grammar_enforced() {
        for tag in ["latest", "v1.2.3", "_build-7", "A", &"a".repeat(128)] {
            assert!(Target::from_prefix("localhost:5000", "backup", tag).is_ok(), "{tag}");
        }
        for tag in ["", ".hidden", "-dash", "has space", "a/b", &"a".repeat(129)] {
            let error = Target::from_prefix("localhost:5000", "backup", tag).unwrap_err();
            assert!(matches!(error, RegistryError::InvalidTag { .. }), "{tag}: {error}");
        }
    }

    #[test]
    fn pinned_keeps_tag_and_digest() {
        let target = Target::from_prefix("127.0.0.1:5000/kuul", "backup", "latest").unwrap();

        assert_eq!(target.pinned(DIGEST), format!("127.0.0.1:5000/kuul/backup:latest@{DIGEST}"));
    }

    #[test]
    fn parse_pinned_splits_components() {
        let reference = parse_pinned(&format!("localhost:5000/kuul/backup:v1@{DIGEST}")).unwrap();

        assert_eq!(reference.registry, "localhost:5000");
        assert_eq!(reference.repository, "kuul/backup");
        assert_eq!(reference.tag.as_deref(), Some("v1"));
        assert_eq!(reference.digest, DIGEST);
    }

    #[test]
    fn parse_pinned_tag_is_optional() {
        let reference = parse_pinned(&format!("localhost:5000/kuul/backup@{DIGEST}")).unwrap();

        assert_eq!(reference.tag, None);
        assert_eq!(reference.repository, "kuul/backup");
    }

    #[test]
    fn parse_pinned_round_trips_display() {
        let text = format!("[::1]:5000/kuul/backup:latest@{DIGEST}");

        assert_eq!(parse_pinned(&text).unwrap().to_string(), text);
    }

    #[test]
    fn parse_pinned_rejects_malformed_references() {
        let short = "sha256:0123";
        let upper = DIGEST.to_uppercase().replace("SHA256", "sha256");
        let cases = [
            "localhost:5000/kuul/backup:latest".to_string(),
            format!("localhost:5000/kuul/backup@{short}"),
            format!("localhost:5000/kuul/backup@{upper}"),
            format!("localhost:5000/kuul/backup@sha512:{}", &DIGEST[7..]),
            format!("kuul/backup@{DIGEST}"),
            format!("backup@{DIGEST}"),
            format!("localhost:5000@{DIGEST}"),
            format!("localhost:5000/@{DIGEST}"),
        ];
        for case in cases {
            let error = parse_pinned(&case).unwrap_err();
            assert!(matches!(error, RegistryError::InvalidReference { .. }), "{case}: {error}");
        }
    }

    #[test]
    fn parse_pinned_rejects_bad_parts() {
        let bad_tag = parse_pinned(&format!("localhost:5000/kuul/backup:-x@{DIGEST}")).unwrap_err();
        let bad_repository = parse_pinned(&format!("localhost:5000/Kuul@{DIGEST}")).unwrap_err();
        let bad_host = parse_pinned(&format!("local_host.test/kuul@{DIGEST}")).unwrap_err();

        assert!(matches!(bad_tag, RegistryError::InvalidTag { .. }), "{bad_tag}");
        assert!(matches!(bad_repository, RegistryError::InvalidRepository { .. }), "{bad_repository}");
        assert!(matches!(bad_host, RegistryError::InvalidRegistryHost { .. }), "{bad_host}");
    }

    #[test]
    fn invalid_reference_error_names_value() {
        let error = parse_pinned("kuul/backup:latest").unwrap_err();

        assert!(error.to_string().contains("`kuul/backup:latest`"), "{error}");
    }

    #[test]
    fn prefix_with_scheme_rejected() {
        let error = Target::from_prefix("http://127.0.0.1:5000/ops", "backup", "latest").unwrap_err();

        let message = error.to_string();
        assert!(message.contains("invalid registry prefix `http://127.0.0.1:5000/ops`"), "{message}");
        assert!(message.contains("drop `http://`"), "{message}");
    }

    #[test]
    fn prefix_with_tag_rejected() {
        for prefix in ["127.0.0.1:5000/ops/backup:v1", "localhost:5000/ops@sha256:00"] {
            let error = Target::from_prefix(prefix, "backup", "latest").unwrap_err();

            let message = error.to_string();
            assert!(message.contains(&format!("invalid registry prefix `{prefix}`")), "{message}");
            assert!(message.contains("kuul appends the job name"), "{message}");
        }
    }

    #[test]
    fn prefix_port_colon_still_accepted() {
        let target = Target::from_prefix("localhost:5000/ops", "backup", "latest").unwrap();

        assert_eq!(target.to_string(), "localhost:5000/ops/backup:latest");
    }

    #[test]
    fn parse_base_accepts_tag() {
        let base = parse_base("127.0.0.1:5000/ops/base:v1").unwrap();
        assert_eq!(base.registry, "127.0.0.1:5000");
        assert_eq!(base.repository, "ops/base");
        assert_eq!(base.tag.as_deref(), Some("v1"));
        assert_eq!(base.digest, None);
    }

    #[test]
    fn parse_base_accepts_digest() {
        let base = parse_base(&format!("localhost:5000/base@{DIGEST}")).unwrap();
        assert_eq!(base.digest.as_deref(), Some(DIGEST));
        assert_eq!(base.tag, None);
    }

    #[test]
    fn parse_base_rejects_bare_name() {
        let error = parse_base("localhost:5000/base").unwrap_err().to_string();
        assert!(error.contains("missing `:TAG`"), "{error}");
    }

    #[test]
    fn parse_base_rejects_docker_hub_name() {
        let error = parse_base("debian:12").unwrap_err().to_string();
        assert!(error.contains("missing registry host"), "{error}");
    }

    #[test]
    fn docker_hub_official_image_gets_library_prefix() {
        let reference = parse_base("docker.io/debian:bookworm").unwrap();

        assert_eq!(reference.repository, "library/debian");
    }

    #[test]
    fn docker_hub_user_image_keeps_repository() {
        let reference = parse_base("docker.io/someone/tool:1").unwrap();

        assert_eq!(reference.repository, "someone/tool");
    }

    #[test]
    fn other_registry_keeps_one_component_repository() {
        let reference = parse_base("127.0.0.1:5000/debian:bookworm").unwrap();

        assert_eq!(reference.repository, "debian");
    }
}
